package certs_test

import (
	"crypto/tls"
	"testing"

	"github.com/easgate/easgate/certs"
	"github.com/easgate/easgate/certs/internal/testpki"
)

func BenchmarkVerifyChainWarm(b *testing.B) {
	f := newFixture(b)
	v, err := certs.NewVerifier(certs.ClientConfig{Mode: "required", TrustedCAs: f.rootPEM, CRLFiles: []string{f.crl}, OCSP: "soft"})
	if err != nil {
		b.Fatal(err)
	}
	cs := &tls.ConnectionState{PeerCertificates: f.chain(f.ocspGood)}
	if _, err := v.Verify(cs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(cs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyChainCold measures a full verification (chain building,
// signatures, CRL lookup, identity) with the result cache defeated by a
// Reload-free fresh verifier per batch; OCSP is off so no network is timed.
func BenchmarkVerifyChainCold(b *testing.B) {
	f := newFixture(b)
	chain := f.chain(f.upn)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		v, err := certs.NewVerifier(certs.ClientConfig{Mode: "required", TrustedCAs: f.rootPEM, CRLFiles: []string{f.crl}})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := v.VerifyChain(chain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIdentityFromCertificate(b *testing.B) {
	p := testpki.New(b)
	c := p.Issue(testpki.Options{CN: "Alice", UPN: "alice@corp.example.com", Emails: []string{"alice@corp.example.com"}}).Cert
	b.ReportAllocs()
	for b.Loop() {
		if upn, _, _, err := certs.IdentityFromCertificate(c); err != nil || upn == "" {
			b.Fatal(upn, err)
		}
	}
}

func BenchmarkGetCertificateSNI(b *testing.B) {
	p := testpki.New(b)
	dir := b.TempDir()
	a := p.Issue(testpki.Options{CN: "a", DNSNames: []string{"a.example.test"}})
	z := p.Issue(testpki.Options{CN: "b", DNSNames: []string{"*.b.example.test"}})
	ac, ak := a.WriteFiles(b, dir, "a")
	zc, zk := z.WriteFiles(b, dir, "b")
	s, err := certs.NewStore(certs.ServerConfig{Certificate: ac, Key: ak, Extra: []certs.CertFiles{{Certificate: zc, Key: zk}}})
	if err != nil {
		b.Fatal(err)
	}
	hello := &tls.ClientHelloInfo{ServerName: "mail.b.example.test"}
	b.ReportAllocs()
	for b.Loop() {
		if c, err := s.GetCertificate(hello); err != nil || c == nil {
			b.Fatal(err)
		}
	}
}
