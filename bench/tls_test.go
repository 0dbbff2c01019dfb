package bench

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
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// TestDeviceOverTLS runs the life cycle over HTTPS, verifying the server
// against a CA file as `easbench run --ca` does.
func TestDeviceOverTLS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fakecas.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	cas := NewFakeCAS(FakeCASConfig{Messages: 5})
	go func() { _ = cas.Serve(tln) }()
	defer cas.Close()

	tc, err := ClientTLS(false, caFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	d := NewDevice(DeviceConfig{Target: "https://" + ln.Addr().String(), User: "tls", Password: "x", DeviceID: "ApplTLS1",
		Profile: testProfile(eas.V161, true), Client: NewHTTPClient(tc)})
	if err := d.Setup(); err != nil {
		t.Fatalf("Setup over TLS: %v", err)
	}
	if d.Items != 5 {
		t.Errorf("items %d", d.Items)
	}
	// Without the CA the handshake fails.
	bad := NewDevice(DeviceConfig{Target: "https://" + ln.Addr().String(), User: "tls", DeviceID: "ApplTLS2",
		Profile: testProfile(eas.V161, true), Client: NewHTTPClient(&tls.Config{MinVersion: tls.VersionTLS12})})
	if err := bad.Options(); err == nil {
		t.Errorf("unverified server accepted")
	}
	for _, args := range [][4]string{{"", "/nonexistent.pem", "", ""}, {"", "", "c.pem", ""}, {"", caFile, "/x.pem", "/y.pem"}} {
		if _, err := ClientTLS(false, args[1], args[2], args[3]); err == nil {
			t.Errorf("ClientTLS%v accepted", args)
		}
	}
}

// TestFakeCASItemFetch fetches a whole message by ServerId with
// ItemOperations.
func TestFakeCASItemFetch(t *testing.T) {
	url := startCAS(t, NewFakeCAS(FakeCASConfig{Messages: 3, MessageSize: 700}))
	d := NewDevice(DeviceConfig{Target: url, User: "fetch", Password: "x", DeviceID: "ApplFETCH", Profile: testProfile(eas.V141, false)})
	if err := d.Setup(); err != nil {
		t.Fatal(err)
	}
	body := doc(func(e *wbxml.Encoder) {
		e.Start(wbxml.ItemOperationsItemOperations)
		for _, id := range []string{"5:2", "5:99"} {
			e.Start(wbxml.ItemOperationsFetch)
			e.Element(wbxml.ItemOperationsStore, "Mailbox")
			e.Element(wbxml.AirSyncCollectionId, "5")
			e.Element(wbxml.AirSyncServerId, id)
			e.End()
		}
		e.End()
	})
	r, err := d.eas(eas.CmdItemOperations, body, &reqOpts{})
	if err != nil {
		t.Fatal(err)
	}
	fetches := r.tree.path(wbxml.ItemOperationsResponse).children(wbxml.ItemOperationsFetch)
	if len(fetches) != 2 {
		t.Fatalf("%d Fetch answers", len(fetches))
	}
	props := fetches[0].child(wbxml.ItemOperationsProperties)
	if fetches[0].str(wbxml.ItemOperationsStatus) != "1" || props.str(wbxml.EmailSubject) != "Generated message 2 for fetch" ||
		len(props.path(wbxml.AirSyncBaseBody, wbxml.AirSyncBaseData).text) != 700 {
		t.Errorf("fetched item: status %s subject %q", fetches[0].str(wbxml.ItemOperationsStatus), props.str(wbxml.EmailSubject))
	}
	if fetches[1].str(wbxml.ItemOperationsStatus) != "6" {
		t.Errorf("missing item: Status %s, want 6", fetches[1].str(wbxml.ItemOperationsStatus))
	}
}
