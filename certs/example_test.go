package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/easgate/easgate/certs"
	"github.com/easgate/easgate/certs/internal/testpki"
)

// exampleT adapts testpki's helper interface for examples.
type exampleT struct{ cleanups []func() }

func (*exampleT) Helper()                        {}
func (*exampleT) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
func (e *exampleT) Cleanup(f func())             { e.cleanups = append(e.cleanups, f) }
func (e *exampleT) done() {
	for _, f := range e.cleanups {
		f()
	}
}

// Example wires a server certificate store and a client-certificate
// verifier into a crypto/tls server config, then verifies a phone's
// certificate the way the proxy does after the handshake.
func Example() {
	t := &exampleT{}
	defer t.done()
	dir, _ := os.MkdirTemp("", "certs-example")
	defer os.RemoveAll(dir)

	pki := testpki.New(t)
	gw := pki.Issue(testpki.Options{CN: "mail.example.test", DNSNames: []string{"mail.example.test"}})
	certFile, keyFile := gw.WriteFiles(t, dir, "gateway")
	caFile := testpki.Write(t, dir, "client-ca.pem", pki.Root.PEM)

	store, err := certs.NewStore(certs.ServerConfig{Certificate: certFile, Key: keyFile, MinVersion: "1.2"})
	if err != nil {
		fmt.Println(err)
		return
	}
	verifier, err := certs.NewVerifier(certs.ClientConfig{Mode: "optional", TrustedCAs: caFile, OCSP: "soft", IdentityFrom: "upn"})
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg := store.TLSConfig(verifier)
	fmt.Println(cfg.ClientAuth == tls.RequestClientCert)

	phone := pki.Issue(testpki.Options{CN: "Alice", UPN: "alice@corp.example.com"})
	state := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{phone.Cert, pki.Intermediate.Cert}}
	id, err := verifier.Verify(state)
	fmt.Println(id.Name, err)

	_, err = verifier.Verify(&tls.ConnectionState{})
	fmt.Println(certs.ReasonOf(err))
	// Output:
	// true
	// alice@corp.example.com <nil>
	// no_certificate
}
