package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/internal/testkit"
)

// TestTLSBothSides runs the phone side over TLS (certs.Store) and the CAS
// side over https with a private CA and a configured server name.
func TestTLSBothSides(t *testing.T) {
	dir := t.TempDir()
	gwCert, gwKey, _ := testkit.SelfSignedCert(t, dir, "mail.example.com")
	casCertPath, _, casCert := testkit.SelfSignedCert(t, dir, "cas.corp.example.com")

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
