package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// testCert makes a self-signed certificate for the given names and writes
// cert.pem and key.pem into dir.
func testCert(t *testing.T, dir string, names ...string) (certPath, keyPath string, cert tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	certPath, keyPath = filepath.Join(dir, names[0]+".pem"), filepath.Join(dir, names[0]+".key")
	if err := os.WriteFile(certPath, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath, cert
}

// TestTLSBothSides runs the phone side over TLS (certs.Store) and the CAS
// side over https with a private CA and a configured server name.
func TestTLSBothSides(t *testing.T) {
	dir := t.TempDir()
	gwCert, gwKey, _ := testCert(t, dir, "mail.example.com")
	casCertPath, _, casCert := testCert(t, dir, "cas.corp.example.com")

	cas := &fakeCAS{t: t, record: true}
	cas.health.Store(200)
	cas.srv = &fasthttp.Server{Handler: cas.handle, NoDefaultServerHeader: true}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cas.addr = ln.Addr().String()
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{casCert}, MinVersion: tls.VersionTLS12})
	go func() { _ = cas.srv.Serve(tln) }()
	t.Cleanup(func() { _ = cas.srv.Shutdown() })

	y := testYAML([]string{"https://" + cas.addr}, nil)
	y = strings.Replace(y, "  plain_http: true\n", "  tls:\n    certificate: "+gwCert+"\n    key: "+gwKey+"\n", 1)
	y = strings.Replace(y, "  health_check:", "  tls:\n    trusted_cas: "+casCertPath+"\n    server_name: cas.corp.example.com\n  health_check:", 1)
	cfg := mustParse(t, y)
	s, err := newServer(cfg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(pln) }()
	defer s.Shutdown(t.Context())

	roots := x509.NewCertPool()
	gwPEM, _ := os.ReadFile(gwCert)
	roots.AppendCertsFromPEM(gwPEM)
	p := &testProxy{s: s, addr: pln.Addr().String(), hc: &fasthttp.HostClient{
		Addr: pln.Addr().String(), IsTLS: true,
		TLSConfig: &tls.Config{RootCAs: roots, ServerName: "mail.example.com"},
	}}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("https://" + p.addr + easURI("FolderSync", "jdoe", "d1"))
	req.Header.SetMethod("POST")
	req.Header.Set("Authorization", testBasicAuth) // authn
	req.Header.Set("MS-ASProtocolVersion", "14.1")
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := p.hc.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 200 {
		t.Fatalf("status %d", resp.StatusCode())
	}
	reqs := cas.requests()
	if len(reqs) != 1 || reqs[0].header["host"] != "cas.corp.example.com" || reqs[0].header["x-forwarded-proto"] != "https" {
		t.Fatalf("CAS saw %+v", reqs)
	}
}
