package auth

import (
	"fmt"
	"net/textproto"

	"github.com/easgate/easgate/policy"
)

// UpstreamIdentity decides which identity headers go to the CAS.
//
// The rule (easgate issue 5): when the phone sent Basic credentials they are
// forwarded unchanged, and the CAS authenticates the user itself. Otherwise
// (certificate-only requests) the phone's Authorization header, whatever its
// scheme, is removed and the configured identity header
// (upstreams.identity_header) carries the certificate identity; easgate
// authenticates itself to the CAS with its own client certificate
// (upstreams.tls.client_certificate), and the Exchange side must be set up to
// trust that certificate and header. An incoming copy of the identity header
// is always removed, so a phone can never choose its own identity.
//
// Negotiate, NTLM and Bearer headers are forwarded unchanged only when
// auth.pass_schemes lists their scheme. With Kerberos constrained
// delegation (upstreams.kerberos) the proxy replaces this plan for
// certificate requests: see proxy/kerberos.go.
type UpstreamIdentity struct {
	header string // canonical MIME header name; "" when none is configured
}

// NewUpstreamIdentity validates upstreams.identity_header ("" for none).
func NewUpstreamIdentity(header string) (UpstreamIdentity, error) {
	if header == "" {
		return UpstreamIdentity{}, nil
	}
	for i := 0; i < len(header); i++ {
		if !tokenByte(header[i]) {
			return UpstreamIdentity{}, fmt.Errorf("auth: identity header %q: byte %d is not an HTTP token character", header, i)
		}
	}
	c := textproto.CanonicalMIMEHeaderKey(header)
	switch c {
	case "Authorization", "Proxy-Authorization", "Host", "Content-Length", "Transfer-Encoding", "Connection",
		"Content-Type", "Cookie", "Te", "Trailer", "Upgrade", "Keep-Alive", "Expect", "User-Agent",
		"Ms-Asprotocolversion", "X-Ms-Policykey":
		return UpstreamIdentity{}, fmt.Errorf("auth: identity header %q would replace a header the request needs; choose a dedicated name such as X-EASGate-User", header)
	}
	return UpstreamIdentity{header: c}, nil
}

// Header returns the canonical identity header name ("" when none).
func (u UpstreamIdentity) Header() string { return u.header }

func tokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// Forward says what to do with the identity headers of one request.
type Forward struct {
	// KeepAuthorization: pass the phone's Authorization header on
	// unchanged; otherwise delete it.
	KeepAuthorization bool
	// StripHeader is the identity header to delete from the phone's
	// request ("" when none is configured). Always set when configured.
	StripHeader string
	// IdentityValue, when not nil, is the value to set in StripHeader after
	// deleting the incoming copy. It aliases the Result.
	IdentityValue []byte
}

// Plan applies the rule to a request that Check accepted (res.OK). For a
// refused request it returns the safe default: strip everything.
func (u UpstreamIdentity) Plan(in Input, res Result) Forward {
	f := Forward{StripHeader: u.header}
	if !res.OK {
		return f
	}
	if len(in.AuthLogin) > 0 || res.Method == policy.AuthPassthrough {
		f.KeepAuthorization = true
		return f
	}
	if u.header != "" && len(res.Identity) > 0 && !hasControl(res.Identity) {
		f.IdentityValue = res.Identity
	}
	return f
}
