package certs_test

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/certs"
	"github.com/easgate/easgate/certs/internal/testpki"
)

// fixture is a PKI with every kind of client certificate the gateway meets.
type fixture struct {
	pki     *testpki.PKI
	dir     string
	rootPEM string // trusted_cas: the root only; intermediates come from clients
	crl     string // CRL signed by the intermediate, revoking crlRevoked
	ocsp    *testpki.Responder
	down    string // OCSP URL with nothing listening

	upn, email, cnOnly, expired, notYet, serverEKU, anyEKU, noEKU *testpki.Leaf
	crlRevoked, ocspGood, ocspRevoked, ocspDown, foreign          *testpki.Leaf
	noOCSP                                                        *testpki.Leaf
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	p := testpki.New(t)
	f := &fixture{pki: p, dir: t.TempDir()}
	f.ocsp = testpki.OCSPResponder(t, p.Intermediate)
	f.down = testpki.ClosedURL(t)
	now := time.Now()
	f.upn = p.Issue(testpki.Options{CN: "Alice Example", UPN: "alice@corp.example.com", Emails: []string{"alice.mail@corp.example.com"}})
	f.email = p.Issue(testpki.Options{CN: "Bob Example", Emails: []string{"bob@corp.example.com"}})
	f.cnOnly = p.Issue(testpki.Options{CN: "carol"})
	f.expired = p.Issue(testpki.Options{CN: "dave", UPN: "dave@corp.example.com", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	f.notYet = p.Issue(testpki.Options{CN: "erin", UPN: "erin@corp.example.com", NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)})
	f.serverEKU = p.Issue(testpki.Options{CN: "frank", UPN: "frank@corp.example.com", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	f.anyEKU = p.Issue(testpki.Options{CN: "grace", UPN: "grace@corp.example.com", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	f.noEKU = p.Issue(testpki.Options{CN: "heidi", UPN: "heidi@corp.example.com", EKU: []x509.ExtKeyUsage{}})
	f.crlRevoked = p.Issue(testpki.Options{CN: "ivan", UPN: "ivan@corp.example.com"})
	f.ocspGood = p.Issue(testpki.Options{CN: "judy", UPN: "judy@corp.example.com", OCSPServer: f.ocsp.URL})
	f.ocspRevoked = p.Issue(testpki.Options{CN: "mallory", UPN: "mallory@corp.example.com", OCSPServer: f.ocsp.URL})
	f.ocspDown = p.Issue(testpki.Options{CN: "niaj", UPN: "niaj@corp.example.com", OCSPServer: f.down})
	f.noOCSP = p.Issue(testpki.Options{CN: "olivia", UPN: "olivia@corp.example.com"})
	other := p.NewCA("other root", nil, now.Add(-time.Hour), now.Add(time.Hour*24*365))
	f.foreign = p.Issue(testpki.Options{CN: "trent", UPN: "trent@corp.example.com", Issuer: other})
	f.ocsp.Revoke(f.ocspRevoked.Cert)

	f.rootPEM = testpki.Write(t, f.dir, "root.pem", p.Root.PEM)
	f.crl = testpki.Write(t, f.dir, "issuing.crl", p.CRL(p.Intermediate, []*x509.Certificate{f.crlRevoked.Cert}, now.Add(-time.Hour), now.Add(24*time.Hour)))
	return f
}

func (f *fixture) chain(l *testpki.Leaf) []*x509.Certificate {
	return []*x509.Certificate{l.Cert, f.pki.Intermediate.Cert}
}

func TestVerifyChain(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	staleCRL := testpki.Write(t, f.dir, "stale.crl", testpki.PEMCRL(f.pki.CRL(f.pki.Intermediate, nil, now.Add(-48*time.Hour), now.Add(-24*time.Hour))))
	// A CRL that claims to come from the issuing CA (same name) but is signed
	// by another key must be ignored.
	impostor := f.pki.NewCA("easgate test issuing CA", f.pki.Root, now.Add(-time.Hour), now.Add(time.Hour*24))
	forgedCRL := testpki.Write(t, f.dir, "forged.crl", f.pki.CRL(impostor, []*x509.Certificate{f.upn.Cert}, now.Add(-time.Hour), now.Add(24*time.Hour)))
	// The root revokes the intermediate.
	rootCRL := testpki.Write(t, f.dir, "root.crl", f.pki.CRL(f.pki.Root, []*x509.Certificate{f.pki.Intermediate.Cert}, now.Add(-time.Hour), now.Add(24*time.Hour)))

	oldCA := f.pki.NewCA("retired issuing CA", f.pki.Root, now.Add(-72*time.Hour), now.Add(-24*time.Hour))
	oldCALeaf := f.pki.Issue(testpki.Options{CN: "peggy", UPN: "peggy@corp.example.com", Issuer: oldCA})
	futureCA := f.pki.NewCA("future issuing CA", f.pki.Root, now.Add(24*time.Hour), now.Add(72*time.Hour))
	futureCALeaf := f.pki.Issue(testpki.Options{CN: "quentin", UPN: "quentin@corp.example.com", Issuer: futureCA})

	base := certs.ClientConfig{Mode: "required", TrustedCAs: f.rootPEM, CRLFiles: []string{f.crl}, OCSP: "soft", IdentityFrom: "upn", OCSPTimeout: 2 * time.Second}
	with := func(mod func(*certs.ClientConfig)) certs.ClientConfig {
		c := base
		c.CRLFiles = append([]string(nil), base.CRLFiles...)
		if mod != nil {
			mod(&c)
		}
		return c
	}
	cases := []struct {
		name       string
		cfg        certs.ClientConfig
		chain      []*x509.Certificate
		wantReason certs.Reason // "" = accepted
		wantName   string
		wantRev    string
	}{
		{"upn", base, f.chain(f.upn), "", "alice@corp.example.com", "crl"},
		{"email identity", with(func(c *certs.ClientConfig) { c.IdentityFrom = "email" }), f.chain(f.email), "", "bob@corp.example.com", "crl"},
		{"email of a upn cert", with(func(c *certs.ClientConfig) { c.IdentityFrom = "email" }), f.chain(f.upn), "", "alice.mail@corp.example.com", "crl"},
		{"cn identity", with(func(c *certs.ClientConfig) { c.IdentityFrom = "subject_cn" }), f.chain(f.cnOnly), "", "carol", "crl"},
		{"upn wanted, cn only", base, f.chain(f.cnOnly), certs.ReasonNoIdentity, "", ""},
		{"email wanted, none", with(func(c *certs.ClientConfig) { c.IdentityFrom = "email" }), f.chain(f.cnOnly), certs.ReasonNoIdentity, "", ""},
		{"expired", base, f.chain(f.expired), certs.ReasonExpired, "", ""},
		{"not yet valid", base, f.chain(f.notYet), certs.ReasonNotYetValid, "", ""},
		{"serverAuth only", base, f.chain(f.serverEKU), certs.ReasonWrongEKU, "", ""},
		{"anyExtendedKeyUsage", base, f.chain(f.anyEKU), "", "grace@corp.example.com", "crl"},
		{"no EKU extension", base, f.chain(f.noEKU), "", "heidi@corp.example.com", "crl"},
		{"issuing CA expired", base, []*x509.Certificate{oldCALeaf.Cert, oldCA.Cert}, certs.ReasonExpired, "", ""},
		{"issuing CA not yet valid", base, []*x509.Certificate{futureCALeaf.Cert, futureCA.Cert}, certs.ReasonNotYetValid, "", ""},
		{"foreign root", base, []*x509.Certificate{f.foreign.Cert}, certs.ReasonUntrustedChain, "", ""},
		{"intermediate missing", base, []*x509.Certificate{f.upn.Cert}, certs.ReasonUntrustedChain, "", ""},
		{"revoked by CRL", base, f.chain(f.crlRevoked), certs.ReasonRevokedCRL, "", ""},
		{"revoked by CRL, crl off list", with(func(c *certs.ClientConfig) { c.CRLFiles = nil }), f.chain(f.crlRevoked), "", "ivan@corp.example.com", "unchecked"},
		{"intermediate revoked by root CRL", with(func(c *certs.ClientConfig) { c.CRLFiles = append(c.CRLFiles, rootCRL) }), f.chain(f.upn), certs.ReasonRevokedCRL, "", ""},
		{"forged CRL ignored", with(func(c *certs.ClientConfig) { c.CRLFiles = []string{forgedCRL} }), f.chain(f.upn), "", "alice@corp.example.com", "unchecked"},
		{"OCSP good", base, f.chain(f.ocspGood), "", "judy@corp.example.com", "crl+ocsp"},
		{"OCSP revoked soft", base, f.chain(f.ocspRevoked), certs.ReasonRevokedOCSP, "", ""},
		{"OCSP revoked hard", with(func(c *certs.ClientConfig) { c.OCSP = "hard" }), f.chain(f.ocspRevoked), certs.ReasonRevokedOCSP, "", ""},
		{"OCSP revoked, ocsp off", with(func(c *certs.ClientConfig) { c.OCSP = "off" }), f.chain(f.ocspRevoked), "", "mallory@corp.example.com", "crl"},
		{"OCSP down soft", base, f.chain(f.ocspDown), "", "niaj@corp.example.com", "crl+ocsp_unavailable"},
		{"OCSP down hard", with(func(c *certs.ClientConfig) { c.OCSP = "hard" }), f.chain(f.ocspDown), certs.ReasonOCSPUnavailable, "", ""},
		{"no OCSP URL, hard, fresh CRL", with(func(c *certs.ClientConfig) { c.OCSP = "hard" }), f.chain(f.noOCSP), "", "olivia@corp.example.com", "crl"},
		{"no OCSP URL, hard, stale CRL", with(func(c *certs.ClientConfig) { c.OCSP = "hard"; c.CRLFiles = []string{staleCRL} }), f.chain(f.noOCSP), certs.ReasonCRLExpired, "", ""},
		{"no OCSP URL, soft, stale CRL", with(func(c *certs.ClientConfig) { c.CRLFiles = []string{staleCRL} }), f.chain(f.noOCSP), "", "olivia@corp.example.com", "crl_stale"},
		{"no OCSP URL, hard, no CRL", with(func(c *certs.ClientConfig) { c.OCSP = "hard"; c.CRLFiles = nil }), f.chain(f.noOCSP), certs.ReasonOCSPUnavailable, "", ""},
		{"no certificate", base, nil, certs.ReasonNoCertificate, "", ""},
		{"mode off", with(func(c *certs.ClientConfig) { c.Mode = "off" }), f.chain(f.upn), certs.ReasonDisabled, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := certs.NewVerifier(tc.cfg)
			if err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			id, err := v.VerifyChain(tc.chain)
			if tc.wantReason != "" {
				if err == nil {
					t.Fatalf("accepted %+v, want %s", id, tc.wantReason)
				}
				var ve *certs.VerifyError
				if !errors.As(err, &ve) || ve.Reason != tc.wantReason {
					t.Fatalf("err = %v, want reason %s", err, tc.wantReason)
				}
				if certs.ReasonOf(err) != tc.wantReason {
					t.Fatalf("ReasonOf = %q", certs.ReasonOf(err))
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if id.Name != tc.wantName {
				t.Fatalf("Name = %q, want %q", id.Name, tc.wantName)
			}
			if id.Revocation != tc.wantRev {
				t.Fatalf("Revocation = %q, want %q", id.Revocation, tc.wantRev)
			}
			leaf := tc.chain[0]
			if id.NotAfter != leaf.NotAfter || id.SerialNumber != leaf.SerialNumber.Text(16) || len(id.Fingerprint) != 64 {
				t.Fatalf("identity details wrong: %+v", id)
			}
			if !strings.Contains(id.Issuer, "easgate test issuing CA") {
				t.Fatalf("Issuer = %q", id.Issuer)
			}
		})
	}
}

func TestVerifyErrorsIs(t *testing.T) {
	f := newFixture(t)
	v, err := certs.NewVerifier(certs.ClientConfig{Mode: "optional", TrustedCAs: f.rootPEM})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(nil); !errors.Is(err, certs.ErrNoCertificate) {
		t.Fatalf("Verify(nil) = %v", err)
	}
	_, err = v.VerifyChain(f.chain(f.expired))
	if errors.Is(err, certs.ErrNoCertificate) {
		t.Fatal("expired matched ErrNoCertificate")
	}
	if !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "dave") {
		t.Fatalf("message not explicit: %v", err)
	}
}

func TestOCSPCached(t *testing.T) {
	f := newFixture(t)
	v, err := certs.NewVerifier(certs.ClientConfig{Mode: "required", TrustedCAs: f.rootPEM, OCSP: "hard"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := v.VerifyChain(f.chain(f.ocspGood)); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.ocsp.Hits.Load(); n != 1 {
		t.Fatalf("responder hit %d times, want 1 (cached)", n)
	}
	// A revoked answer is cached too, and never turned into a success.
	for i := 0; i < 2; i++ {
		if _, err := v.VerifyChain(f.chain(f.ocspRevoked)); certs.ReasonOf(err) != certs.ReasonRevokedOCSP {
			t.Fatalf("err = %v", err)
		}
	}
	if n := f.ocsp.Hits.Load(); n != 2 {
		t.Fatalf("responder hit %d times, want 2", n)
	}
}

func TestOCSPUnknown(t *testing.T) {
	f := newFixture(t)
	f.ocsp.AnswerUnknown()
	for _, mode := range []string{"soft", "hard"} {
		v, err := certs.NewVerifier(certs.ClientConfig{Mode: "required", TrustedCAs: f.rootPEM, OCSP: mode})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.VerifyChain(f.chain(f.ocspGood))
		if mode == "soft" && err != nil {
			t.Fatalf("soft: %v", err)
		}
		if mode == "hard" && certs.ReasonOf(err) != certs.ReasonOCSPUnavailable {
			t.Fatalf("hard: %v", err)
		}
	}
}

func TestVerifierReloadCRL(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	crl := testpki.Write(t, f.dir, "live.crl", f.pki.CRL(f.pki.Intermediate, nil, now.Add(-time.Hour), now.Add(time.Hour)))
	v, err := certs.NewVerifier(certs.ClientConfig{Mode: "required", TrustedCAs: f.rootPEM, CRLFiles: []string{crl}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyChain(f.chain(f.upn)); err != nil {
		t.Fatal(err)
	}
	// Revoke alice; the cached positive result must not survive the reload.
	testpki.Write(t, f.dir, "live.crl", testpki.PEMCRL(f.pki.CRL(f.pki.Intermediate, []*x509.Certificate{f.upn.Cert}, now.Add(-time.Hour), now.Add(time.Hour))))
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyChain(f.chain(f.upn)); certs.ReasonOf(err) != certs.ReasonRevokedCRL {
		t.Fatalf("after reload: %v", err)
	}
	// A broken CRL keeps the previous one and reports the file.
	testpki.Write(t, f.dir, "live.crl", []byte("garbage"))
	if err := v.Reload(); err == nil || !strings.Contains(err.Error(), "live.crl") {
		t.Fatalf("broken CRL: %v", err)
	}
	if _, err := v.VerifyChain(f.chain(f.upn)); certs.ReasonOf(err) != certs.ReasonRevokedCRL {
		t.Fatalf("after broken reload: %v", err)
	}
}

func TestNewVerifierErrors(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	// The bundle holds the intermediate, so a CRL in its name with a bad
	// signature is caught at load time.
	bundle := testpki.Write(t, f.dir, "both.pem", append(append([]byte{}, f.pki.Root.PEM...), f.pki.Intermediate.PEM...))
	impostor := f.pki.NewCA("easgate test issuing CA", nil, now.Add(-time.Hour), now.Add(time.Hour))
	forged := testpki.Write(t, f.dir, "forged.crl", f.pki.CRL(impostor, nil, now.Add(-time.Hour), now.Add(time.Hour)))
	empty := testpki.Write(t, f.dir, "empty.pem", []byte("nothing here\n"))
	cases := []struct {
		name string
		cfg  certs.ClientConfig
		want string
	}{
		{"bad mode", certs.ClientConfig{Mode: "sometimes"}, "mode"},
		{"bad ocsp", certs.ClientConfig{Mode: "required", TrustedCAs: f.rootPEM, OCSP: "maybe"}, "ocsp"},
		{"bad identity", certs.ClientConfig{Mode: "required", TrustedCAs: f.rootPEM, IdentityFrom: "sid"}, "identity"},
		{"no CAs", certs.ClientConfig{Mode: "required"}, "trusted_cas"},
		{"missing CA file", certs.ClientConfig{Mode: "required", TrustedCAs: f.dir + "/nope.pem"}, "nope.pem"},
		{"empty CA file", certs.ClientConfig{Mode: "required", TrustedCAs: empty}, "empty.pem"},
		{"missing CRL", certs.ClientConfig{Mode: "required", TrustedCAs: f.rootPEM, CRLFiles: []string{f.dir + "/x.crl"}}, "x.crl"},
		{"forged CRL", certs.ClientConfig{Mode: "required", TrustedCAs: bundle, CRLFiles: []string{forged}}, "signature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := certs.NewVerifier(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
		})
	}
}

func TestVerifyWarmNoAllocs(t *testing.T) {
	f := newFixture(t)
	v, err := certs.NewVerifier(certs.ClientConfig{Mode: "required", TrustedCAs: f.rootPEM, CRLFiles: []string{f.crl}, OCSP: "soft"})
	if err != nil {
		t.Fatal(err)
	}
	chain := f.chain(f.ocspGood)
	if _, err := v.VerifyChain(chain); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := v.VerifyChain(chain); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("warm VerifyChain allocates %v times", allocs)
	}
}

func TestVerifierWatch(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	path := f.dir + "/watched.crl"
	replace := func(data []byte) {
		tmp := testpki.Write(t, f.dir, "watched.tmp", data)
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	replace(f.pki.CRL(f.pki.Intermediate, nil, now.Add(-time.Hour), now.Add(time.Hour)))
	v, err := certs.NewVerifier(certs.ClientConfig{Mode: "required", TrustedCAs: f.rootPEM, CRLFiles: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyChain(f.chain(f.upn)); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { v.Watch(ctx, 5*time.Millisecond, func(err error) { errs <- err }); close(done) }()
	defer func() { cancel(); <-done }()

	replace([]byte("-----BEGIN X509 CRL-----\nbroken\n-----END X509 CRL-----\n"))
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "watched.crl") {
			t.Fatalf("watch error: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("broken CRL never reported")
	}
	replace(f.pki.CRL(f.pki.Intermediate, []*x509.Certificate{f.upn.Cert}, now.Add(-time.Hour), now.Add(time.Hour)))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, err := v.VerifyChain(f.chain(f.upn))
		if certs.ReasonOf(err) == certs.ReasonRevokedCRL {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new CRL never applied: %v", err)
		}
	}
}
