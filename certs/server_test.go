package certs_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/certs"
	"github.com/easgate/easgate/certs/internal/testpki"
)

// needTool skips when an external tool is missing, except in CI where the
// test must run.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed; skipping (install Debian's %s package)", name, name)
	}
	return p
}

func serving(t *testing.T, s *certs.Store, sni string) *x509.Certificate {
	t.Helper()
	c, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
	if err != nil {
		t.Fatalf("GetCertificate(%q): %v", sni, err)
	}
	return c.Leaf
}

func TestStoreSNI(t *testing.T) {
	p := testpki.New(t)
	dir := t.TempDir()
	a := p.Issue(testpki.Options{CN: "mail", DNSNames: []string{"mail.example.test"}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	b := p.Issue(testpki.Options{CN: "wild", DNSNames: []string{"*.corp.example.test"}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	ac, ak := a.WriteFiles(t, dir, "a")
	bc, bk := b.WriteFiles(t, dir, "b")
	s, err := certs.NewStore(certs.ServerConfig{Certificate: ac, Key: ak, Extra: []certs.CertFiles{{Certificate: bc, Key: bk}}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		sni  string
		want *testpki.Leaf
	}{
		{"mail.example.test", a},
		{"MAIL.Example.Test.", a},
		{"eas.corp.example.test", b},
		{"corp.example.test", a},     // wildcard covers one label only: fallback
		{"x.y.corp.example.test", a}, // ditto
		{"unknown.example.test", a},  // fallback to the first
		{"", a},                      // no SNI
	}
	for _, tc := range cases {
		if got := serving(t, s, tc.sni); !got.Equal(tc.want.Cert) {
			t.Errorf("SNI %q: served %s, want %s", tc.sni, got.Subject.CommonName, tc.want.Cert.Subject.CommonName)
		}
	}
	if n := len(s.Leaves()); n != 2 {
		t.Fatalf("Leaves = %d", n)
	}
}

func TestStoreReload(t *testing.T) {
	p := testpki.New(t)
	dir := t.TempDir()
	one := p.Issue(testpki.Options{CN: "one", DNSNames: []string{"mail.example.test"}})
	two := p.Issue(testpki.Options{CN: "two", DNSNames: []string{"mail.example.test"}})
	certPath, keyPath := one.WriteFiles(t, dir, "gw")
	s, err := certs.NewStore(certs.ServerConfig{Certificate: certPath, Key: keyPath, MinVersion: "1.3"})
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := s.Reload(); changed || err != nil {
		t.Fatalf("unchanged reload: %v %v", changed, err)
	}
	// Same content rewritten (new mtime): not a change.
	one.WriteFiles(t, dir, "gw")
	if changed, err := s.Reload(); changed || err != nil {
		t.Fatalf("rewrite with same content: %v %v", changed, err)
	}
	two.WriteFiles(t, dir, "gw")
	if changed, err := s.Reload(); !changed || err != nil {
		t.Fatalf("new files: %v %v", changed, err)
	}
	if got := serving(t, s, "mail.example.test"); !got.Equal(two.Cert) {
		t.Fatalf("serving %s after reload", got.Subject.CommonName)
	}
	// A key that does not match: old certificate stays, error names the file.
	testpki.Write(t, dir, "gw.key", one.KeyPEM)
	changed, err := s.Reload()
	if changed || err == nil || !strings.Contains(err.Error(), "gw.key") {
		t.Fatalf("mismatched key: changed=%v err=%v", changed, err)
	}
	// Truncated certificate file.
	testpki.Write(t, dir, "gw.pem", two.CertPEM[:40])
	if _, err := s.Reload(); err == nil || !strings.Contains(err.Error(), "gw.pem") {
		t.Fatalf("broken cert: %v", err)
	}
	if got := serving(t, s, "mail.example.test"); !got.Equal(two.Cert) {
		t.Fatalf("broken files replaced the certificate")
	}
	if cfg := s.TLSConfig(nil); cfg.MinVersion != tls.VersionTLS13 || cfg.ClientAuth != tls.NoClientCert {
		t.Fatalf("TLSConfig: %+v", cfg)
	}
}

func TestStoreWatch(t *testing.T) {
	p := testpki.New(t)
	dir := t.TempDir()
	one := p.Issue(testpki.Options{CN: "one"})
	two := p.Issue(testpki.Options{CN: "two"})
	// Chain and key in one file, replaced by rename: each version is atomic.
	combined := func(l *testpki.Leaf) []byte { return append(append([]byte{}, l.ChainPEM...), l.KeyPEM...) }
	path := filepath.Join(dir, "gw.pem")
	replace := func(data []byte) {
		tmp := testpki.Write(t, dir, "gw.tmp", data)
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	replace(combined(one))
	s, err := certs.NewStore(certs.ServerConfig{Certificate: path})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Watch(ctx, 5*time.Millisecond, func(err error) { errs <- err }); close(done) }()
	defer func() { cancel(); <-done }()

	replace(append(append([]byte{}, one.ChainPEM...), "-----BEGIN PRIVATE KEY-----\nbroken\n"...))
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "gw.pem") || strings.Contains(err.Error(), "broken") {
			t.Fatalf("watch error: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("broken file never reported")
	}
	if !serving(t, s, "").Equal(one.Cert) {
		t.Fatal("broken file replaced the certificate")
	}
	replace(combined(two))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if serving(t, s, "").Equal(two.Cert) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("new certificate never picked up")
		}
	}
	// The broken version was reported once only.
	if len(errs) > 0 {
		t.Fatalf("extra reports: %v", <-errs)
	}
}

func TestNewStoreErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		cfg  certs.ServerConfig
		want string
	}{
		{"nothing", certs.ServerConfig{}, "no certificate"},
		{"both", certs.ServerConfig{Certificate: "a.pem", PFX: "a.pfx"}, "not both"},
		{"version", certs.ServerConfig{Certificate: "a.pem", MinVersion: "1.1"}, "min_version"},
		{"missing", certs.ServerConfig{Certificate: filepath.Join(dir, "gone.pem")}, "gone.pem"},
		{"extra broken", certs.ServerConfig{Certificate: "testdata/ca.pem", Extra: []certs.CertFiles{{}}}, "#2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := certs.NewStore(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestLoadPFXCommitted(t *testing.T) {
	for _, name := range []string{"server-legacy", "server-aes"} {
		t.Run(name, func(t *testing.T) {
			c, err := certs.LoadPFX("testdata/"+name+".pfx", "testdata/"+name+".pass")
			if err != nil {
				t.Fatal(err)
			}
			if c.Leaf.Subject.CommonName != "pfx.example.test" || len(c.Certificate) != 1 {
				// The bundled CA is self-signed, so it is not sent.
				t.Fatalf("leaf %q, %d certs", c.Leaf.Subject.CommonName, len(c.Certificate))
			}
			s, err := certs.NewStore(certs.ServerConfig{PFX: "testdata/" + name + ".pfx", PFXPasswordFile: "testdata/" + name + ".pass"})
			if err != nil {
				t.Fatal(err)
			}
			if serving(t, s, "pfx.example.test").Subject.CommonName != "pfx.example.test" {
				t.Fatal("store serves the wrong certificate")
			}
		})
	}
}

func TestLoadPFXOpenSSL(t *testing.T) {
	openssl := needTool(t, "openssl")
	p := testpki.New(t)
	dir := t.TempDir()
	leaf := p.Issue(testpki.Options{CN: "gw", DNSNames: []string{"mail.example.test"}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, RSA: true})
	certPath, keyPath := leaf.WriteFiles(t, dir, "gw")
	caPath := testpki.Write(t, dir, "chain.pem", append(append([]byte{}, p.Intermediate.PEM...), p.Root.PEM...))
	const password = "S3cret-pfx-pässword"
	passFile := testpki.Write(t, dir, "pass.txt", []byte(password+"\r\n"))
	wrongFile := testpki.Write(t, dir, "wrong.txt", []byte("nope\n"))

	variants := []struct {
		name string
		args []string
	}{
		{"aes-default", nil},
		{"aes256-sha256", []string{"-certpbe", "AES-256-CBC", "-keypbe", "AES-256-CBC", "-macalg", "sha256"}},
		{"legacy", []string{"-legacy"}},
		{"windows-3des", []string{"-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1"}},
		{"rc2-40", []string{"-legacy", "-certpbe", "PBE-SHA1-RC2-40", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1"}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			out := filepath.Join(dir, v.name+".pfx")
			args := append([]string{"pkcs12", "-export", "-in", certPath, "-inkey", keyPath, "-certfile", caPath, "-out", out, "-passout", "pass:" + password}, v.args...)
			if msg, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
				if v.name == "rc2-40" && bytes.Contains(msg, []byte("unsupported")) {
					t.Skipf("openssl legacy provider unavailable: %s", msg)
				}
				t.Fatalf("openssl %v: %v\n%s", args, err, msg)
			}
			c, err := certs.LoadPFX(out, passFile)
			if err != nil {
				t.Fatal(err)
			}
			if !c.Leaf.Equal(leaf.Cert) {
				t.Fatal("wrong leaf")
			}
			// Leaf, then the intermediate; the self-signed root is left out.
			if len(c.Certificate) != 2 || !bytes.Equal(c.Certificate[1], p.Intermediate.Cert.Raw) {
				t.Fatalf("chain has %d certificates", len(c.Certificate))
			}
			_, err = certs.LoadPFX(out, wrongFile)
			if err == nil || !strings.Contains(err.Error(), "wrong password") || !strings.Contains(err.Error(), "wrong.txt") {
				t.Fatalf("wrong password: %v", err)
			}
			if strings.Contains(err.Error(), "nope") || strings.Contains(err.Error(), password) {
				t.Fatalf("error leaks the password: %v", err)
			}
			if _, err := certs.LoadPFX(out, ""); err == nil || !strings.Contains(err.Error(), "empty password") {
				t.Fatalf("no password: %v", err)
			}
		})
	}
}

func TestLoadPFXGarbage(t *testing.T) {
	dir := t.TempDir()
	p := testpki.Write(t, dir, "bad.pfx", []byte("this is not DER"))
	if _, err := certs.LoadPFX(p, ""); err == nil || !strings.Contains(err.Error(), "bad.pfx") {
		t.Fatalf("err = %v", err)
	}
	if _, err := certs.LoadPFX(filepath.Join(dir, "missing.pfx"), ""); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}

func TestUpstreamTLS(t *testing.T) {
	p := testpki.New(t)
	dir := t.TempDir()
	root := testpki.Write(t, dir, "root.pem", p.Root.PEM)
	cl := p.Issue(testpki.Options{CN: "easgate"})
	cc, ck := cl.WriteFiles(t, dir, "client")
	cfg, err := certs.UpstreamTLS(root, "mail.corp.example.com", cc, ck, false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerName != "mail.corp.example.com" || cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.InsecureSkipVerify || cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("config: %+v", cfg)
	}
	if _, err := certs.UpstreamTLS(filepath.Join(dir, "none.pem"), "", "", "", false); err == nil {
		t.Fatal("missing CA accepted")
	}
	if _, err := certs.UpstreamTLS("", "", "", ck, false); err == nil {
		t.Fatal("key without cert accepted")
	}
	if _, err := certs.UpstreamTLS("", "", cc, filepath.Join(dir, "none.key"), false); err == nil || !strings.Contains(err.Error(), "none.key") {
		t.Fatalf("missing key: %v", err)
	}
}
