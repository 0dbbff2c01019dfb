package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/bench"
	"github.com/easgate/easgate/eas"
)

// smtpServer is Debian's aiosmtpd (package python3-aiosmtpd, installed by
// .ci/run) on a loopback port, requiring STARTTLS with a certificate made
// here, delivering into a Maildir.
type smtpServer struct {
	addr, maildir, caFile string
}

// startSMTP starts the server. Without python3-aiosmtpd the test is
// skipped locally and fails in CI.
func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	const py = "/usr/bin/python3" // Debian's interpreter, where python3-aiosmtpd installs
	if out, err := exec.Command(py, "-c", "import aiosmtpd").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("Debian's SMTP server is missing (apt-get install python3-aiosmtpd): %v %s", err, out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	s := &smtpServer{maildir: filepath.Join(dir, "Maildir"), caFile: filepath.Join(dir, "ca.pem")}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for f, data := range map[string][]byte{certFile: certPEM, s.caFile: certPEM, keyFile: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})} {
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	_ = ln.Close()
	cmd := exec.Command(py, "-m", "aiosmtpd", "-n", "-l", s.addr, "--tlscert", certFile, "--tlskey", keyFile,
		"-c", "aiosmtpd.handlers.Mailbox", s.maildir)
	cmd.Stdout, cmd.Stderr = testLogWriter{t}, testLogWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, "the SMTP server to listen", func() bool {
		c, err := net.Dial("tcp", s.addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	return s
}

// mails returns the messages delivered so far.
func (s *smtpServer) mails() []string {
	var out []string
	files, _ := filepath.Glob(filepath.Join(s.maildir, "new", "*"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			out = append(out, string(b))
		}
	}
	return out
}

// TestAdminDigest: a quarantined and a blocked phone arrive, as one mail,
// at a real SMTP server over STARTTLS.
func TestAdminDigest(t *testing.T) {
	smtp := startSMTP(t)
	cas := startCountingCAS(t, bench.FakeCASConfig{Messages: 1, MessageSize: 256, AttachmentSize: -1})
	y := enforceYAML(cas.url, t.TempDir(), mgmtPolicy("quarantine"))
	y = strings.Replace(y, "admin:\n  address: \"\"\n", fmt.Sprintf(`admin:
  address: ""
  digest:
    smtp: %s
    tls: starttls
    trusted_cas: %s
    from: "easgate <easgate@corp.example.com>"
    to: [it@corp.example.com, secops@corp.example.com]
    interval: 1s
`, smtp.addr, smtp.caFile), 1)
	p := startProxy(t, mustParse(t, y))
	samsung := newPhone(p, user, mgmtSamsung, profile("samsung", eas.V141))
	if err := samsung.Setup(); err != nil {
		t.Fatal(err)
	}
	gmail := newPhone(p, user, mgmtGmail, profile("gmail", eas.V141))
	_ = gmail.Options()
	_ = gmail.Provision()
	waitFor(t, "the digest mail", func() bool { return len(smtp.mails()) > 0 })
	time.Sleep(1500 * time.Millisecond) // a second interval must not send an empty mail
	mails := smtp.mails()
	if len(mails) != 1 {
		t.Fatalf("%d mails, want one digest", len(mails))
	}
	m := mails[0]
	t.Logf("digest as delivered:\n%s", m)
	for _, want := range []string{"Subject: easgate: 1 device(s) quarantined, 1 blocked", "To: <it@corp.example.com>, <secops@corp.example.com>",
		mgmtSamsung, mgmtGmail, "default-access", "individual-block", "X-Peer:"} {
		if !strings.Contains(m, want) {
			t.Errorf("the digest lacks %q:\n%s", want, m)
		}
	}
}
