package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/certs"
	"github.com/easgate/easgate/certs/internal/testpki"
)

// tlsServer runs an HTTPS server on 127.0.0.1 with store.TLSConfig(v); it
// answers with the verified identity name, or "anonymous".
type tlsServer struct {
	addr    string
	rootPEM string
	dir     string
}

func startTLSServer(t *testing.T, f *fixture, v *certs.Verifier, minVersion string) *tlsServer {
	t.Helper()
	srvLeaf := f.pki.Issue(testpki.Options{CN: "localhost", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	certPath, keyPath := srvLeaf.WriteFiles(t, f.dir, "server")
	store, err := certs.NewStore(certs.ServerConfig{Certificate: certPath, Key: keyPath, MinVersion: minVersion})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := v.Verify(r.TLS)
			switch {
			case errors.Is(err, certs.ErrNoCertificate):
				fmt.Fprint(w, "anonymous")
			case err != nil:
				http.Error(w, string(certs.ReasonOf(err)), http.StatusForbidden)
			default:
				fmt.Fprint(w, id.Name)
			}
		}),
		ErrorLog:          log.New(io.Discard, "", 0), // refused handshakes are expected
		ReadHeaderTimeout: 10 * time.Second,
	}
	srv.SetKeepAlivesEnabled(false)
	go srv.Serve(tls.NewListener(ln, store.TLSConfig(v)))
	t.Cleanup(func() { srv.Close() })
	return &tlsServer{addr: ln.Addr().String(), rootPEM: f.rootPEM, dir: f.dir}
}

// get performs one HTTPS request presenting leaf (nil: no certificate).
func (s *tlsServer) get(t *testing.T, f *fixture, leaf *testpki.Leaf, maxVersion uint16) (string, error) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(f.pki.Root.Cert)
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost", MaxVersion: maxVersion}
	if leaf != nil {
		cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{leaf.Cert.Raw, f.pki.Intermediate.Cert.Raw}, PrivateKey: leaf.Key, Leaf: leaf.Cert}}
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}, Timeout: 20 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + s.addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestHandshake(t *testing.T) {
	f := newFixture(t)
	for _, mode := range []string{"required", "optional"} {
		v, err := certs.NewVerifier(certs.ClientConfig{Mode: mode, TrustedCAs: f.rootPEM, CRLFiles: []string{f.crl}, OCSP: "soft"})
		if err != nil {
			t.Fatal(err)
		}
		srv := startTLSServer(t, f, v, "1.2")
		cases := []struct {
			name string
			leaf *testpki.Leaf
			want string // "" = handshake or request must fail
		}{
			{"upn", f.upn, "alice@corp.example.com"},
			{"ocsp good", f.ocspGood, "judy@corp.example.com"},
			{"ocsp down soft", f.ocspDown, "niaj@corp.example.com"},
			{"expired", f.expired, ""},
			{"not yet valid", f.notYet, ""},
			{"wrong EKU", f.serverEKU, ""},
			{"revoked CRL", f.crlRevoked, ""},
			{"revoked OCSP", f.ocspRevoked, ""},
			{"untrusted", f.foreign, ""},
			{"no certificate", nil, map[string]string{"required": "", "optional": "anonymous"}[mode]},
		}
		for _, tc := range cases {
			for _, ver := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				t.Run(fmt.Sprintf("%s/%s/%s", mode, tc.name, tls.VersionName(ver)), func(t *testing.T) {
					got, err := srv.get(t, f, tc.leaf, ver)
					if tc.want == "" {
						if err == nil {
							t.Fatalf("accepted, body %q", got)
						}
						return
					}
					if err != nil || got != tc.want {
						t.Fatalf("got %q, %v; want %q", got, err, tc.want)
					}
				})
			}
		}
	}
}

func TestHandshakeTLSPolicy(t *testing.T) {
	f := newFixture(t)
	v, err := certs.NewVerifier(certs.ClientConfig{Mode: "optional", TrustedCAs: f.rootPEM})
	if err != nil {
		t.Fatal(err)
	}
	srv := startTLSServer(t, f, v, "1.3")
	if _, err := srv.get(t, f, nil, tls.VersionTLS12); err == nil {
		t.Fatal("TLS 1.2 accepted with min_version 1.3")
	}
	if got, err := srv.get(t, f, f.upn, tls.VersionTLS13); err != nil || got != "alice@corp.example.com" {
		t.Fatalf("TLS 1.3: %q %v", got, err)
	}
	// TLS 1.2 with a CBC-only client must fail: only ECDHE+AEAD suites.
	srv12 := startTLSServer(t, f, v, "1.2")
	roots := x509.NewCertPool()
	roots.AddCert(f.pki.Root.Cert)
	conn, err := tls.Dial("tcp", srv12.addr, &tls.Config{RootCAs: roots, ServerName: "localhost", MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}})
	if err == nil {
		conn.Close()
		t.Fatal("CBC suite negotiated")
	}
	for _, id := range certs.CipherSuites() {
		for _, s := range tls.CipherSuites() {
			if s.ID == id && (!strings.Contains(s.Name, "ECDHE") || !(strings.Contains(s.Name, "GCM") || strings.Contains(s.Name, "CHACHA20"))) {
				t.Errorf("suite %s is not ECDHE+AEAD", s.Name)
			}
		}
	}
}

func TestHandshakeCAReload(t *testing.T) {
	f := newFixture(t)
	bundle := testpki.Write(t, f.dir, "bundle.pem", f.pki.Root.PEM)
	v, err := certs.NewVerifier(certs.ClientConfig{Mode: "required", TrustedCAs: bundle})
	if err != nil {
		t.Fatal(err)
	}
	srv := startTLSServer(t, f, v, "1.2")
	if _, err := srv.get(t, f, f.upn, 0); err != nil {
		t.Fatal(err)
	}
	// Replace the bundle with an unrelated CA: after Reload the same client is refused.
	other := f.pki.NewCA("other", nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	testpki.Write(t, f.dir, "bundle.pem", other.PEM)
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.get(t, f, f.upn, 0); err == nil {
		t.Fatal("accepted after the CA was removed")
	}
}

func TestCurl(t *testing.T) {
	curl := needTool(t, "curl")
	f := newFixture(t)
	v, err := certs.NewVerifier(certs.ClientConfig{Mode: "required", TrustedCAs: f.rootPEM, CRLFiles: []string{f.crl}, OCSP: "hard"})
	if err != nil {
		t.Fatal(err)
	}
	srv := startTLSServer(t, f, v, "1.2")
	_, port, _ := net.SplitHostPort(srv.addr)
	run := func(leaf *testpki.Leaf, name string) (string, error) {
		args := []string{"-sS", "--max-time", "20", "--cacert", f.rootPEM, "--resolve", "localhost:" + port + ":127.0.0.1"}
		if leaf != nil {
			c, k := leaf.WriteFiles(t, f.dir, "curl-"+name)
			args = append(args, "--cert", c, "--key", k)
		}
		out, err := exec.Command(curl, append(args, "https://localhost:"+port+"/")...).CombinedOutput()
		return string(out), err
	}
	cases := []struct {
		name string
		leaf *testpki.Leaf
		want string
	}{
		{"upn", f.upn, "alice@corp.example.com"},
		{"ocsp good", f.ocspGood, "judy@corp.example.com"},
		{"revoked by CRL", f.crlRevoked, ""},
		{"revoked by OCSP", f.ocspRevoked, ""},
		{"OCSP down, hard", f.ocspDown, ""},
		{"expired", f.expired, ""},
		{"no certificate", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(tc.leaf, strings.ReplaceAll(tc.name, " ", "_"))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("curl succeeded: %s", out)
				}
				return
			}
			if err != nil || out != tc.want {
				t.Fatalf("curl: %v: %s", err, out)
			}
		})
	}
}
