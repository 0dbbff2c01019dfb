package bench

import (
	"fmt"
	"net/url"
	"strings"
)

// easPath is the path of every EAS request.
const easPath = "/Microsoft-Server-ActiveSync"

// NormalizeTarget accepts the gateway's base URL (https://host:port) or
// the EAS URL an admin copies from a phone or from Exchange
// (https://host/Microsoft-Server-ActiveSync, any case, with or without a
// trailing slash or query) and returns the base URL the simulated devices
// add their paths to. Anything else is an error that says what to give.
func NormalizeTarget(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("--target %q: give an http:// or https:// URL, such as https://127.0.0.1:8443 (%v)", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("--target %q: give an http:// or https:// URL, such as https://127.0.0.1:8443", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("--target %q: no host", s)
	}
	if u.User != nil {
		return "", fmt.Errorf("--target %q: give the password with --password, not in the URL", s)
	}
	switch p := strings.TrimSuffix(u.Path, "/"); {
	case p == "", strings.EqualFold(p, easPath):
	default:
		return "", fmt.Errorf("--target %q: path %q: give the gateway's base URL (%s://%s) or its EAS URL (%s://%s%s)",
			s, u.Path, u.Scheme, u.Host, u.Scheme, u.Host, easPath)
	}
	return u.Scheme + "://" + u.Host, nil
}
