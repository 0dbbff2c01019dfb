package auth

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/easgate/easgate/certs"
	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/config"
)

func mustAuth(t testing.TB, mode string) *Authenticator {
	t.Helper()
	a, err := New(config.Auth{Mode: mode}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func certFor(name string) *certs.Identity {
	return &certs.Identity{Name: name, UPN: name, Fingerprint: strings.Repeat("ab", 32)}
}

func verr(r certs.Reason) error { return &certs.VerifyError{Reason: r, Msg: "test"} }

// TestCheckTable documents every decision of Check. Columns: mode, Basic
// login (scheme Basic when set), other Authorization scheme, EAS User,
// certificate identity or verification error; then the expected answer.
func TestCheckTable(t *testing.T) {
	const (
		upn   = "jdoe@corp.example.com"
		other = "mallory@corp.example.com"
	)
	cases := []struct {
		name    string
		mode    string
		login   string // Basic user name ("" = no Basic)
		scheme  string // Authorization scheme when not Basic
		user    string // EAS User
		cert    string // verified certificate identity ("" = none)
		certErr error

		ok        bool
		method    policy.AuthMethod
		identity  string
		status    int
		reason    Reason
		challenge bool
	}{
		// credentials
		{name: "credentials/basic matches DOMAIN\\user", mode: "credentials", login: `CORP\jdoe`, user: `CORP\jdoe`, ok: true, method: policy.AuthBasic, identity: `CORP\jdoe`},
		{name: "credentials/basic UPN vs NetBIOS user", mode: "credentials", login: upn, user: `corp\JDOE`, ok: true, method: policy.AuthBasic, identity: upn},
		{name: "credentials/basic plain vs UPN user, case", mode: "credentials", login: "JDoe", user: upn, ok: true, method: policy.AuthBasic, identity: "JDoe"},
		{name: "credentials/no EAS user binds nothing", mode: "credentials", login: upn, ok: true, method: policy.AuthBasic, identity: upn},
		{name: "credentials/no Authorization", mode: "credentials", user: upn, status: 401, reason: ReasonNoCredentials, challenge: true},
		{name: "credentials/Negotiate is not supported", mode: "credentials", scheme: "Negotiate", user: upn, status: 401, reason: ReasonUnsupportedScheme, challenge: true},
		{name: "credentials/Bearer is not supported", mode: "credentials", scheme: "Bearer", user: upn, status: 401, reason: ReasonUnsupportedScheme, challenge: true},
		{name: "credentials/basic other user", mode: "credentials", login: other, user: upn, status: 403, reason: ReasonUserMismatch},
		{name: "credentials/basic other UPN domain", mode: "credentials", login: "jdoe@evil.example", user: upn, status: 403, reason: ReasonUserMismatch},
		{name: "credentials/basic other NetBIOS domain", mode: "credentials", login: `EVIL\jdoe`, user: `CORP\jdoe`, status: 403, reason: ReasonUserMismatch},
		{name: "credentials/empty user part", mode: "credentials", login: `CORP\`, user: upn, status: 401, reason: ReasonBadCredentials, challenge: true},
		{name: "credentials/empty user part, no EAS user", mode: "credentials", login: `CORP\`, status: 401, reason: ReasonBadCredentials, challenge: true},
		{name: "credentials/matching certificate too", mode: "credentials", login: upn, user: upn, cert: upn, ok: true, method: policy.AuthBoth, identity: upn},
		{name: "credentials/certificate names someone else", mode: "credentials", login: upn, user: upn, cert: other, status: 403, reason: ReasonCertUserMismatch},
		{name: "credentials/revoked certificate presented", mode: "credentials", login: upn, user: upn, certErr: verr(certs.ReasonRevokedCRL), status: 403, reason: ReasonCertRevoked},
		{name: "credentials/no certificate is fine", mode: "credentials", login: upn, user: upn, certErr: certs.ErrNoCertificate, ok: true, method: policy.AuthBasic, identity: upn},
		{name: "credentials/client certificates off", mode: "credentials", login: upn, user: upn, certErr: verr(certs.ReasonDisabled), ok: true, method: policy.AuthBasic, identity: upn},

		// certificate
		{name: "certificate/match", mode: "certificate", user: upn, cert: upn, ok: true, method: policy.AuthCertificate, identity: upn},
		{name: "certificate/match NetBIOS EAS user", mode: "certificate", user: `CORP\jdoe`, cert: upn, ok: true, method: policy.AuthCertificate, identity: upn},
		{name: "certificate/none", mode: "certificate", user: upn, certErr: certs.ErrNoCertificate, status: 403, reason: ReasonCertRequired},
		{name: "certificate/none, Basic does not help", mode: "certificate", login: upn, user: upn, status: 403, reason: ReasonCertRequired},
		{name: "certificate/other user", mode: "certificate", user: upn, cert: other, status: 403, reason: ReasonCertUserMismatch},
		{name: "certificate/expired", mode: "certificate", user: upn, certErr: verr(certs.ReasonExpired), status: 403, reason: ReasonCertExpired},
		{name: "certificate/not yet valid", mode: "certificate", user: upn, certErr: verr(certs.ReasonNotYetValid), status: 403, reason: ReasonCertNotYetValid},
		{name: "certificate/untrusted", mode: "certificate", user: upn, certErr: verr(certs.ReasonUntrustedChain), status: 403, reason: ReasonCertUntrusted},
		{name: "certificate/wrong EKU", mode: "certificate", user: upn, certErr: verr(certs.ReasonWrongEKU), status: 403, reason: ReasonCertWrongEKU},
		{name: "certificate/OCSP revoked", mode: "certificate", user: upn, certErr: verr(certs.ReasonRevokedOCSP), status: 403, reason: ReasonCertRevoked},
		{name: "certificate/OCSP unavailable (hard)", mode: "certificate", user: upn, certErr: verr(certs.ReasonOCSPUnavailable), status: 403, reason: ReasonCertRevocationUnknown},
		{name: "certificate/stale CRL (hard)", mode: "certificate", user: upn, certErr: verr(certs.ReasonCRLExpired), status: 403, reason: ReasonCertRevocationUnknown},
		{name: "certificate/no identity", mode: "certificate", user: upn, certErr: verr(certs.ReasonNoIdentity), status: 403, reason: ReasonCertNoIdentity},
		{name: "certificate/malformed", mode: "certificate", user: upn, certErr: verr(certs.ReasonMalformed), status: 403, reason: ReasonCertMalformed},
		{name: "certificate/foreign error", mode: "certificate", user: upn, certErr: errors.New("boom"), status: 403, reason: ReasonCertInvalid},
		{name: "certificate/identity with CR LF", mode: "certificate", user: upn, cert: "jdoe@corp.example.com\r\nX-Evil: 1", status: 403, reason: ReasonCertBadIdentity},
		{name: "certificate/empty identity", mode: "certificate", user: upn, cert: "\x00", status: 403, reason: ReasonCertBadIdentity},
		{name: "certificate/with matching Basic too", mode: "certificate", login: `CORP\jdoe`, user: upn, cert: upn, ok: true, method: policy.AuthBoth, identity: upn},
		{name: "certificate/Basic names someone else", mode: "certificate", login: other, user: upn, cert: upn, status: 403, reason: ReasonUserMismatch},
		{name: "certificate/Basic with empty user part", mode: "certificate", login: `CORP\`, user: upn, cert: upn, status: 403, reason: ReasonBadCredentials},
		{name: "certificate/Negotiate header ignored", mode: "certificate", scheme: "Negotiate", user: upn, cert: upn, ok: true, method: policy.AuthCertificate, identity: upn},
		{name: "certificate/no EAS user", mode: "certificate", cert: upn, ok: true, method: policy.AuthCertificate, identity: upn},

		// either
		{name: "either/certificate only", mode: "either", user: upn, cert: upn, ok: true, method: policy.AuthCertificate, identity: upn},
		{name: "either/Basic only", mode: "either", login: upn, user: upn, ok: true, method: policy.AuthBasic, identity: upn},
		{name: "either/both match", mode: "either", login: `CORP\jdoe`, user: upn, cert: upn, ok: true, method: policy.AuthBoth, identity: upn},
		{name: "either/neither", mode: "either", user: upn, status: 401, reason: ReasonNoCredentials, challenge: true},
		{name: "either/neither, Bearer", mode: "either", scheme: "Bearer", user: upn, status: 401, reason: ReasonUnsupportedScheme, challenge: true},
		{name: "either/both, Basic wrong", mode: "either", login: other, user: upn, cert: upn, status: 403, reason: ReasonUserMismatch},
		{name: "either/both, certificate wrong", mode: "either", login: upn, user: upn, cert: other, status: 403, reason: ReasonCertUserMismatch},
		{name: "either/both, no EAS user, disagree", mode: "either", login: other, cert: upn, status: 403, reason: ReasonIdentityMismatch},
		{name: "either/both agree with NetBIOS user only", mode: "either", login: "jdoe@a.example", user: `CORP\jdoe`, cert: "jdoe@b.example", status: 403, reason: ReasonIdentityMismatch},
		{name: "either/revoked certificate with good Basic", mode: "either", login: upn, user: upn, certErr: verr(certs.ReasonRevokedOCSP), status: 403, reason: ReasonCertRevoked},

		// both
		{name: "both/match", mode: "both", login: upn, user: upn, cert: upn, ok: true, method: policy.AuthBoth, identity: upn},
		{name: "both/no certificate", mode: "both", login: upn, user: upn, status: 403, reason: ReasonCertRequired},
		{name: "both/no Basic", mode: "both", user: upn, cert: upn, status: 401, reason: ReasonNoCredentials, challenge: true},
		{name: "both/neither: certificate first", mode: "both", user: upn, status: 403, reason: ReasonCertRequired},
		{name: "both/NTLM instead of Basic", mode: "both", scheme: "NTLM", user: upn, cert: upn, status: 401, reason: ReasonUnsupportedScheme, challenge: true},
		{name: "both/certificate is someone else", mode: "both", login: upn, user: upn, cert: other, status: 403, reason: ReasonCertUserMismatch},
		{name: "both/Basic is someone else", mode: "both", login: other, user: upn, cert: upn, status: 403, reason: ReasonUserMismatch},
		{name: "both/empty user part", mode: "both", login: `CORP\`, user: upn, cert: upn, status: 401, reason: ReasonBadCredentials, challenge: true},
		{name: "default mode is credentials", mode: "", user: upn, status: 401, reason: ReasonNoCredentials, challenge: true},
	}
	if len(cases) < 25 {
		t.Fatalf("table has %d cases, want at least 25", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := mustAuth(t, tc.mode)
			in := Input{User: []byte(tc.user), CertErr: tc.certErr}
			if tc.login != "" {
				in.AuthScheme, in.AuthLogin = []byte("Basic"), []byte(tc.login)
			} else if tc.scheme != "" {
				in.AuthScheme = []byte(tc.scheme)
			}
			if tc.cert != "" {
				in.Cert = certFor(tc.cert)
			}
			got := a.Check(in)
			want := Result{OK: tc.ok, Method: tc.method, Status: tc.status, Reason: tc.reason, WWWAuthenticate: tc.challenge}
			if tc.identity != "" {
				want.Identity = []byte(tc.identity)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Check = %+v (identity %q)\nwant    %+v (identity %q)", got, got.Identity, want, want.Identity)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"credentials", "certificate", "either", "both"} {
		m, err := ParseMode(s)
		if err != nil || m.String() != s {
			t.Errorf("ParseMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseMode("kerberos"); err == nil || !strings.Contains(err.Error(), `"kerberos"`) {
		t.Errorf("ParseMode(kerberos) error = %v", err)
	}
	if _, err := New(config.Auth{Mode: "nope"}, Options{}); err == nil {
		t.Error("New accepted an unknown mode")
	}
	if _, err := New(config.Auth{}, Options{Realm: `a"b`}); err == nil {
		t.Error("New accepted a realm with a quote")
	}
	if got := Mode(9).String(); got != "mode(9)" {
		t.Errorf("Mode(9) = %q", got)
	}
}

func TestAppendChallenge(t *testing.T) {
	a := mustAuth(t, "credentials")
	if got := string(a.AppendChallenge(nil, []byte("mail.corp.example.com"))); got != `Basic realm="mail.corp.example.com"` {
		t.Errorf("challenge = %s", got)
	}
	if got := string(a.AppendChallenge(nil, []byte("evil\"\r\n\\host"))); got != `Basic realm="evilhost"` {
		t.Errorf("challenge with bad host bytes = %s", got)
	}
	b, err := New(config.Auth{}, Options{Realm: "Exchange"})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b.AppendChallenge([]byte("x "), []byte("ignored"))); got != `x Basic realm="Exchange"` {
		t.Errorf("challenge with realm = %s", got)
	}
}

func TestInputFromRequest(t *testing.T) {
	var r eas.Request
	h := eas.HeaderMap{
		"Authorization":        "Basic " + b64("CORP\\jdoe:s3cret"),
		"User-Agent":           "Apple-iPhone15C2/2104.100",
		"MS-ASProtocolVersion": "16.1",
	}
	if err := r.Parse([]byte("POST"), []byte("/Microsoft-Server-ActiveSync"),
		[]byte("Cmd=Sync&User=jdoe%40corp.example.com&DeviceId=ApplDMPL69PZF18P&DeviceType=iPhone"), h); err != nil {
		t.Fatal(err)
	}
	id := certFor("jdoe@corp.example.com")
	in := InputFrom(&r, id, nil)
	if string(in.AuthLogin) != `CORP\jdoe` || string(in.User) != "jdoe@corp.example.com" || in.Cert != id {
		t.Fatalf("InputFrom = %+v", in)
	}
	res := mustAuth(t, "both").Check(in)
	if !res.OK || res.Method != policy.AuthBoth {
		t.Fatalf("Check = %+v", res)
	}
	in = InputFrom(&r, id, certs.ErrNoCertificate)
	if in.Cert != nil {
		t.Error("InputFrom kept the identity despite an error")
	}
}

// TestCheckNoSecrets: reasons are fixed labels, so nothing from the request
// (a password in particular) can reach a log through them.
func TestCheckNoSecrets(t *testing.T) {
	const secret = "Hunter2-secret"
	for _, mode := range []string{"credentials", "certificate", "either", "both"} {
		a := mustAuth(t, mode)
		for _, login := range []string{secret, "x", `CORP\` + secret} {
			res := a.Check(Input{AuthScheme: []byte("Basic"), AuthLogin: []byte(login), User: []byte("jdoe")})
			if strings.Contains(string(res.Reason), "Hunter2") {
				t.Errorf("%s: reason %q contains request data", mode, res.Reason)
			}
		}
	}
}

func TestCheckAllocs(t *testing.T) {
	a := mustAuth(t, "either")
	in := Input{AuthScheme: []byte("Basic"), AuthLogin: []byte(`CORP\jdoe`), User: []byte("jdoe@corp.example.com"), Cert: certFor("jdoe@corp.example.com")}
	refused := Input{User: []byte("jdoe"), CertErr: verr(certs.ReasonRevokedCRL)}
	n := testing.AllocsPerRun(1000, func() {
		if !a.Check(in).OK || a.Check(refused).OK {
			panic("unexpected result")
		}
	})
	if n != 0 {
		t.Errorf("Check allocates %v times per run, want 0", n)
	}
}

func BenchmarkCheck(b *testing.B) {
	a := mustAuth(b, "either")
	in := Input{AuthScheme: []byte("Basic"), AuthLogin: []byte(`CORP\jdoe`), User: []byte("jdoe@corp.example.com"), Cert: certFor("jdoe@corp.example.com")}
	b.ReportAllocs()
	for b.Loop() {
		if !a.Check(in).OK {
			b.Fatal("refused")
		}
	}
}

// auth.pass_schemes: a listed scheme is forwarded for the CAS to judge in
// modes credentials and either; unlisted schemes, and modes that need a
// certificate, still refuse.
func TestCheckPassSchemes(t *testing.T) {
	mk := func(mode string) *Authenticator {
		a, err := New(config.Auth{Mode: mode, PassSchemes: []string{"Bearer", "negotiate"}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	user := []byte("jdoe@corp.example.com")
	cases := []struct {
		mode, scheme string
		ok           bool
		status       int
	}{
		{"credentials", "Bearer", true, 0},
		{"credentials", "BEARER", true, 0},
		{"credentials", "Negotiate", true, 0},
		{"either", "Bearer", true, 0},
		{"credentials", "NTLM", false, 401},
		{"certificate", "Bearer", false, 403},
		{"both", "Bearer", false, 403},
	}
	for _, c := range cases {
		res := mk(c.mode).Check(Input{AuthScheme: []byte(c.scheme), User: user})
		if res.OK != c.ok || (!c.ok && res.Status != c.status) {
			t.Errorf("%s/%s: %+v", c.mode, c.scheme, res)
			continue
		}
		if c.ok {
			if res.Method != policy.AuthPassthrough || len(res.Identity) != 0 {
				t.Errorf("%s/%s: method %s identity %q", c.mode, c.scheme, res.Method, res.Identity)
			}
			up, _ := NewUpstreamIdentity("X-EASGate-User")
			if f := up.Plan(Input{AuthScheme: []byte(c.scheme), User: user}, res); !f.KeepAuthorization || f.IdentityValue != nil {
				t.Errorf("%s/%s: plan %+v: a pass-through Authorization must reach the CAS, with no identity header", c.mode, c.scheme, f)
			}
		}
	}
	if _, err := New(config.Auth{Mode: "credentials", PassSchemes: []string{"Basic"}}, Options{}); err == nil {
		t.Fatal("Basic accepted as a pass-through scheme")
	}
}
