package auth

import (
	"strings"
	"testing"

	"github.com/easgate/easgate/policy"
)

func TestNewUpstreamIdentity(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "", want: ""},
		{in: "x-easgate-user", want: "X-Easgate-User"},
		{in: "X-EASGate-User", want: "X-Easgate-User"},
		{in: "X User", err: "byte 1"},
		{in: "X-User:", err: "byte 6"},
		{in: "authorization", err: "would replace"},
		{in: "Host", err: "would replace"},
		{in: "transfer-encoding", err: "would replace"},
	} {
		u, err := NewUpstreamIdentity(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("NewUpstreamIdentity(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || u.Header() != tc.want {
			t.Errorf("NewUpstreamIdentity(%q) = %q, %v; want %q", tc.in, u.Header(), err, tc.want)
		}
	}
}

func TestUpstreamPlan(t *testing.T) {
	const upn = "jdoe@corp.example.com"
	hdr, _ := NewUpstreamIdentity("X-EASGate-User")
	none, _ := NewUpstreamIdentity("")
	basic := Input{AuthScheme: []byte("Basic"), AuthLogin: []byte(upn), User: []byte(upn)}
	certOnly := Input{User: []byte(upn), Cert: certFor(upn)}
	certNeg := Input{AuthScheme: []byte("Negotiate"), User: []byte(upn), Cert: certFor(upn)}
	both := Input{AuthScheme: []byte("Basic"), AuthLogin: []byte(upn), User: []byte(upn), Cert: certFor(upn)}
	okBasic := Result{OK: true, Method: policy.AuthBasic, Identity: []byte(upn)}
	okCert := Result{OK: true, Method: policy.AuthCertificate, Identity: []byte(upn)}
	okBoth := Result{OK: true, Method: policy.AuthBoth, Identity: []byte(upn)}
	for _, tc := range []struct {
		name string
		u    UpstreamIdentity
		in   Input
		res  Result
		want Forward
	}{
		{"basic forwards the phone's credentials", hdr, basic, okBasic, Forward{KeepAuthorization: true, StripHeader: "X-Easgate-User"}},
		{"both forwards Basic, no identity header", hdr, both, okBoth, Forward{KeepAuthorization: true, StripHeader: "X-Easgate-User"}},
		{"certificate only sets the identity header", hdr, certOnly, okCert, Forward{StripHeader: "X-Easgate-User", IdentityValue: []byte(upn)}},
		{"Negotiate is never forwarded", hdr, certNeg, okCert, Forward{StripHeader: "X-Easgate-User", IdentityValue: []byte(upn)}},
		{"no header configured", none, certOnly, okCert, Forward{}},
		{"refused: strip everything", hdr, basic, Result{Status: 403, Reason: ReasonUserMismatch}, Forward{StripHeader: "X-Easgate-User"}},
		{"identity with control characters is not set", hdr, certOnly, Result{OK: true, Identity: []byte("a\r\nb")}, Forward{StripHeader: "X-Easgate-User"}},
	} {
		got := tc.u.Plan(tc.in, tc.res)
		if got.KeepAuthorization != tc.want.KeepAuthorization || got.StripHeader != tc.want.StripHeader || string(got.IdentityValue) != string(tc.want.IdentityValue) || (got.IdentityValue == nil) != (tc.want.IdentityValue == nil) {
			t.Errorf("%s: Plan = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
