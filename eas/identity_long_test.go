package eas

import (
	"errors"
	"strings"
	"testing"
)

// A Kerberos ticket for a user in many groups makes a Negotiate header of
// many kilobytes; it must parse (only its scheme matters to easgate), while
// an oversized Basic header is still refused.
func TestLongNonBasicAuthorizationParses(t *testing.T) {
	q := []byte("Cmd=Sync&User=jdoe&DeviceId=ApplDMPL69PZF18P&DeviceType=iPhone")
	for _, scheme := range []string{"Negotiate", "Bearer"} {
		var r Request
		h := HeaderMap{"Authorization": scheme + " " + strings.Repeat("YIIK", 3000), "MS-ASProtocolVersion": "14.1"}
		if err := r.Parse([]byte("POST"), []byte("/Microsoft-Server-ActiveSync"), q, h); err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		if string(r.AuthScheme) != scheme || len(r.AuthUser) != 0 {
			t.Fatalf("%s: scheme %q user %q", scheme, r.AuthScheme, r.AuthUser)
		}
	}
	var r Request
	h := HeaderMap{"Authorization": "Basic " + strings.Repeat("QUFB", 1000), "MS-ASProtocolVersion": "14.1"}
	err := r.Parse([]byte("POST"), []byte("/Microsoft-Server-ActiveSync"), q, h)
	if !errors.Is(err, ErrOversize) {
		t.Fatalf("oversized Basic: %v", err)
	}
}
