package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// testPKI is a throw-away CA for the gateway's TLS tests (certs/internal/testpki
// cannot be imported from proxy: Go's internal rule).
type testPKI struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPath string
	serial int64
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), serial: 1}
	p.caKey = pkiKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "easgate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caPath = p.write(t, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return p
}

func pkiKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (p *testPKI) write(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue writes a leaf certificate and key; upn (client certificates) goes
// into a SAN otherName, dns/ips (server certificates) into the SAN.
func (p *testPKI) issue(t testing.TB, name, upn string, server bool) (certPath, keyPath string, cert *x509.Certificate) {
	t.Helper()
	p.serial++
	key := pkiKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.ExtraExtensions = []pkix.Extension{upnSAN(upn)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	k8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath = p.write(t, name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPath = p.write(t, name+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k8}))
	return certPath, keyPath, cert
}

// upnSAN is a subjectAltName with one Microsoft UPN otherName
// (1.3.6.1.4.1.311.20.2.3), which crypto/x509 cannot write.
func upnSAN(upn string) pkix.Extension {
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3})
			b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1(casn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(upn)) })
			})
		})
	})
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: b.BytesOrPanic()}
}

// crl writes a CRL of the CA listing revoked.
func (p *testPKI) crl(t testing.TB, name string, revoked ...*x509.Certificate) string {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)})
	}
	p.serial++
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(p.serial),
		ThisUpdate:                time.Now().Add(-time.Minute),
		NextUpdate:                time.Now().Add(time.Hour),
		RevokedCertificateEntries: entries,
	}, p.ca, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
}

// tlsListenYAML turns testYAML's plain-HTTP listener into TLS with the
// given server certificate, plus the client-certificate section (may be "").
func tlsListenYAML(y, certPath, keyPath, clientCerts string) string {
	return strings.Replace(y, "  plain_http: true\n", "  tls:\n    certificate: "+certPath+"\n    key: "+keyPath+"\n"+clientCerts, 1)
}

// tlsPhoneConfig trusts the test CA (the gateway's server certificate).
func (p *testPKI) clientTLS(t testing.TB, certPath, keyPath string) *tls.Config {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(p.ca)
	c := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	if certPath != "" {
		kp, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			t.Fatal(err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c
}

// curlBin finds curl; without it the test is skipped, or fails when CI=true.
func curlBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("curl is required in CI: %v", err)
		}
		t.Skipf("curl not installed (Debian: apt-get install curl): %v", err)
	}
	return p
}

// curlEAS runs curl against the gateway: one EAS FolderSync for user with
// the given client certificate (and extra headers). It returns the HTTP
// status (0 when the TLS handshake failed) and curl's exit code.
func curlEAS(t *testing.T, curl string, p *testPKI, addr, user, certPath, keyPath string, headers ...string) (status, exit int) {
	t.Helper()
	url := "https://" + addr + "/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=" + user + "&DeviceId=ApplDMPL69PZF18P&DeviceType=iPhone"
	args := []string{"--silent", "--show-error", "--output", os.DevNull, "--write-out", "%{http_code}",
		"--max-time", "20", "--cacert", p.caPath, "-X", "POST", "--data-binary", "",
		"-H", "MS-ASProtocolVersion: 14.1", "-H", "User-Agent: Apple-iPhone15C2/2104.100",
		"-H", "Content-Type: application/vnd.ms-sync.wbxml"}
	if certPath != "" {
		args = append(args, "--cert", certPath, "--key", keyPath)
	}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	cmd := exec.Command(curl, append(args, url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("curl: %v", err)
	}
	status, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	t.Logf("curl %s as %s: status %d exit %d %s", url, user, status, exit, strings.TrimSpace(stderr.String()))
	return status, exit
}

// TestCurlClientCertificate: a real client (Debian curl) with a client
// certificate talks to the running gateway in auth.mode certificate:
// accepted with the right certificate and User (the CAS gets the identity
// header, not the phone's copy), refused on a User mismatch, refused when
// the certificate is revoked (in the TLS handshake, logged and counted).
func TestCurlClientCertificate(t *testing.T) {
	curl := curlBin(t)
	p := newTestPKI(t)
	srvCert, srvKey, _ := p.issue(t, "gateway", "", true)
	jdoeCert, jdoeKey, _ := p.issue(t, "jdoe", "jdoe@corp.example.com", false)
	lostCert, lostKey, lost := p.issue(t, "jdoe-lost-phone", "jdoe@corp.example.com", false)
	otherCert, otherKey, _ := p.issue(t, "jdoe-other-phone", "jdoe@corp.example.com", false)
	crl := p.crl(t, "issuing.crl", lost)

	cas := newFakeCAS(t)
	y := tlsListenYAML(testYAML([]string{cas.url()}, nil), srvCert, srvKey,
		"    client_certificates:\n      mode: optional\n      trusted_cas: "+p.caPath+"\n      revocation:\n        crl_files: ["+crl+"]\n")
	y = strings.Replace(y, "upstreams:\n", "upstreams:\n  identity_header: X-EASGate-User\n", 1)
	y += "auth:\n  mode: certificate\n  certificate_identity: upn\n  device_binding: enforce\n"
	g := startGateway(t, mustParse(t, y))

	// accepted: the right certificate and User; the phone's own identity
	// header is replaced
	if st, _ := curlEAS(t, curl, p, g.addr, "jdoe@corp.example.com", jdoeCert, jdoeKey, "X-EASGate-User: ceo@corp.example.com"); st != 200 {
		t.Fatalf("right certificate: status %d", st)
	}
	reqs := cas.requests()
	if len(reqs) != 1 || reqs[0].header["x-easgate-user"] != "jdoe@corp.example.com" || reqs[0].header["authorization"] != "" {
		t.Fatalf("the CAS saw %+v", reqs)
	}
	// NetBIOS form of the same user
	if st, _ := curlEAS(t, curl, p, g.addr, `CORP%5Cjdoe`, jdoeCert, jdoeKey); st != 200 {
		t.Fatalf("NetBIOS User: status %d", st)
	}
	// refused: another EAS User
	if st, _ := curlEAS(t, curl, p, g.addr, "ceo@corp.example.com", jdoeCert, jdoeKey); st != 403 {
		t.Fatalf("User mismatch: status %d", st)
	}
	// refused: no certificate (mode certificate)
	if st, _ := curlEAS(t, curl, p, g.addr, "jdoe@corp.example.com", "", ""); st != 403 {
		t.Fatalf("no certificate: status %d", st)
	}
	// refused: the device is bound to the first certificate it used
	// (auth.device_binding enforce), even though this one is valid for jdoe
	if st, _ := curlEAS(t, curl, p, g.addr, "jdoe@corp.example.com", otherCert, otherKey); st != 403 {
		t.Fatalf("another certificate on a bound device: status %d", st)
	}
	// refused: revoked, in the handshake
	if st, exit := curlEAS(t, curl, p, g.addr, "jdoe@corp.example.com", lostCert, lostKey); st != 0 || exit == 0 {
		t.Fatalf("revoked certificate: status %d, curl exit %d", st, exit)
	}
	if n := len(cas.requests()); n != 2 {
		t.Fatalf("the CAS saw %d requests, want 2", n)
	}
	wantMetrics(t, g.s,
		`easgate_auth_accepted_total{method="certificate"} 2`,
		`easgate_rejected_requests_total{reason="cert_user_mismatch"} 1`,
		`easgate_rejected_requests_total{reason="cert_required"} 1`,
		`easgate_rejected_requests_total{reason="device_binding"} 1`,
		`easgate_device_binding_mismatches_total{mode="enforce"} 1`,
		`easgate_tls_client_certificate_refusals_total{reason="cert_revoked"} 1`)
}
