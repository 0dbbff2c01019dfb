// Package testkit holds the small fixtures that tests of several packages
// build the same way: EAS request bodies (a Ping with a heartbeat, a Sync
// with a Wait) and a self-signed certificate on disk.
//
// It is for tests only and must never be imported by code that ships in
// the easgate binary; it imports nothing of easgate's but eas/wbxml.
package testkit

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
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/eas/wbxml"
)

// PingBody is a Ping request (WBXML) with the given HeartbeatInterval in
// seconds and one folder (Id 5, Email).
func PingBody(t testing.TB, seconds int) []byte {
	t.Helper()
	e := wbxml.NewEncoder(nil)
	e.Header()
	e.Start(wbxml.PingPing)
	e.Element(wbxml.PingHeartbeatInterval, strconv.Itoa(seconds))
	e.Start(wbxml.PingFolders)
	e.Start(wbxml.PingFolder)
	e.Element(wbxml.PingId, "5")
	e.Element(wbxml.PingClass, "Email")
	e.End()
	e.End()
	e.End()
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), e.Bytes()...)
}

// SyncWaitBody is a Sync request (WBXML) of collection 5 with the given
// Wait in minutes (none for 0).
func SyncWaitBody(t testing.TB, wait int) []byte {
	t.Helper()
	e := wbxml.NewEncoder(nil)
	e.Header()
	e.Start(wbxml.AirSyncSync)
	e.Start(wbxml.AirSyncCollections)
	e.Start(wbxml.AirSyncCollection)
	e.Element(wbxml.AirSyncSyncKey, "1")
	e.Element(wbxml.AirSyncCollectionId, "5")
	e.End()
	e.End()
	if wait > 0 {
		e.Element(wbxml.AirSyncWait, strconv.Itoa(wait))
	}
	e.End()
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), e.Bytes()...)
}

// SelfSignedCert writes a self-signed CA certificate for names (the first
// is its common name and file name) and 127.0.0.1, valid for an hour on
// either side of now, with its PKCS#8 key, into dir.
func SelfSignedCert(t testing.TB, dir string, names ...string) (certPath, keyPath string, cert tls.Certificate) {
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

// Deps lists the packages outside the standard library that the packages
// named by patterns depend on, themselves included (`go list -deps`), for
// the imports tests that keep each package's dependency rule. Without the go
// tool in PATH it skips t, and fails it when CI=true.
func Deps(t testing.TB, patterns ...string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("go tool not found in PATH")
		}
		t.Skip("go tool not found in PATH; skipping the dependency check")
	}
	var stderr strings.Builder
	cmd := exec.Command(gobin, append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}, patterns...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", strings.Join(patterns, " "), err, stderr.String())
	}
	return strings.Fields(string(out))
}
