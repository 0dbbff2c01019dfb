package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/internal/testkit"
)

// The admin listener over TLS (admin.tls) and the console's sign-in with
// an admin client certificate: the console runs inside the real Server,
// on the listener ServeAdmin serves.

// adminPKI is a CA and a client certificate it signs.
type adminPKI struct {
	caPath string
	client tls.Certificate
	pool   *x509.CertPool
}

func newAdminPKI(t *testing.T, dir, clientName string) adminPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "easgate admin CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: clientName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p := adminPKI{caPath: filepath.Join(dir, "admin-ca.pem"), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	if err := os.WriteFile(p.caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	p.client = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return p
}

// serveAdminTLS runs the Server of cfg and its admin listener.
func serveAdminTLS(t *testing.T, yaml string) string {
	t.Helper()
	p := startProxy(t, mustParse(t, yaml))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.s.ServeAdmin(ln) }()
	return "https://" + ln.Addr().String()
}

func httpsClient(roots *x509.CertPool, certs ...tls.Certificate) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12},
			Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestAdminTLSAndCertificateSignIn(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, srvCert := testkit.SelfSignedCert(t, dir, "admin.corp.example.com")
	pki := newAdminPKI(t, dir, "alice@corp.example.com")
	other := newAdminPKI(t, t.TempDir(), "alice@corp.example.com") // same name, a CA the gateway does not trust
	tokenFile := tempFile(t, "op.token", "op-token-c0ffee")
	yaml := strings.Replace(testYAML([]string{"http://127.0.0.1:1"}, nil), "admin:\n  address: \"\"\n",
		"admin:\n  address: \"127.0.0.1:0\"\n  tokens:\n    - {name: helpdesk, file: "+tokenFile+", role: operate}\n"+
			"  tls:\n    certificate: "+certPath+"\n    key: "+keyPath+"\n    client_cas: "+pki.caPath+"\n"+
			"    clients:\n      - {name: ALICE@corp.example.com, role: operate}\n", 1)
	base := serveAdminTLS(t, yaml)
	roots := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(srvCert.Certificate[0])
	roots.AddCert(leaf)

	// With the admin certificate: the sign-in page offers it, and signing
	// in sets a Secure, HttpOnly, SameSite=Strict session cookie.
	c := httpsClient(roots, pki.client)
	resp, body := get(t, c, base+"/signin")
	if resp.StatusCode != 200 || !strings.Contains(body, "cert:ALICE@corp.example.com (operate)") || resp.TLS == nil {
		t.Fatalf("sign-in page over TLS: %d %.2000s", resp.StatusCode, body)
	}
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF field")
	}
	resp, err := c.PostForm(base+"/signin", url.Values{"csrf": {m[1]}, "method": {"certificate"}, "next": {"/queue"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session string
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "easgate_session=") {
			session = sc
		}
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/queue" {
		t.Fatalf("certificate sign-in: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, want := range []string{"secure", "httponly", "samesite=strict"} {
		if !strings.Contains(strings.ToLower(session), want) {
			t.Errorf("session cookie %q lacks %s", session, want)
		}
	}
	resp, body = get(t, c, base+"/queue")
	if resp.StatusCode != 200 || !strings.Contains(body, "cert:ALICE@corp.example.com") || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("queue after certificate sign-in: %d %v %.1000s", resp.StatusCode, resp.Header, body)
	}

	// Without a certificate the token still works, for the console and
	// the API, and no certificate is offered.
	plain := httpsClient(roots)
	if resp, body = get(t, plain, base+"/signin"); resp.StatusCode != 200 || strings.Contains(body, "Sign in with this certificate") {
		t.Fatalf("sign-in without a certificate: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", base+"/api/v1/devices", nil)
	req.Header.Set("Authorization", "Bearer op-token-c0ffee")
	if resp, err = plain.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("API over TLS: %v %v", err, resp)
	}
	resp.Body.Close()
	// A session made with a certificate is not carried over to a
	// connection without it.
	u, _ := url.Parse(base)
	plain.Jar.SetCookies(u, c.Jar.Cookies(u))
	if resp, _ = get(t, plain, base+"/queue"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a certificate session on a connection without the certificate: %d", resp.StatusCode)
	}

	// A certificate of another CA fails the handshake.
	if _, err := httpsClient(roots, other.client).Get(base + "/signin"); err == nil {
		t.Fatal("a certificate of an untrusted CA was accepted")
	}
	// Plain HTTP on the TLS listener gets nothing useful.
	if resp, err := http.Get("http" + strings.TrimPrefix(base, "https") + "/signin"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("the TLS admin listener answered plain HTTP")
		}
	}
}

func TestAdminTLSWithTheGatewayCertificate(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, gwCert := testkit.SelfSignedCert(t, dir, "mail.corp.example.com")
	yaml := strings.Replace(testYAML([]string{"http://127.0.0.1:1"}, nil), "  plain_http: true\n",
		"  tls:\n    certificate: "+certPath+"\n    key: "+keyPath+"\n", 1)
	yaml = strings.Replace(yaml, "admin:\n  address: \"\"\n", "admin:\n  address: \"127.0.0.1:0\"\n  tls:\n    use_gateway_certificate: true\n", 1)
	base := serveAdminTLS(t, yaml)
	roots := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(gwCert.Certificate[0])
	roots.AddCert(leaf)
	resp, _ := get(t, httpsClient(roots), base+"/healthz")
	if resp.StatusCode != 200 || !resp.TLS.PeerCertificates[0].Equal(leaf) {
		t.Fatalf("healthz over the gateway's certificate: %d", resp.StatusCode)
	}
	// No token configured: the console answers this loopback client.
	resp, body := get(t, httpsClient(roots), base+"/signin")
	if resp.StatusCode != 200 || !strings.Contains(body, "Continue as loopback administrator") {
		t.Fatalf("loopback sign-in: %d %.1500s", resp.StatusCode, body)
	}
}
