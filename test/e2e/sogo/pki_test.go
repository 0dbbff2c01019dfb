package sogo_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// testPKI is a throw-away CA made for one run: it issues easgate's server
// certificate (127.0.0.1) and the phones' client certificates, whose
// subjectAltName carries the user's UPN as Windows CAs write it.
type testPKI struct {
	mu     sync.Mutex
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

func newTestPKI() (*testPKI, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "easgate e2e device CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &testPKI{ca: ca, caKey: key, serial: 1}, nil
}

// issue makes a leaf: a server certificate for 127.0.0.1 when upn is "",
// else a client certificate with upn in a SAN otherName.
func (p *testPKI) issue(cn, upn string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	p.mu.Lock()
	p.serial++
	serial := p.serial
	p.mu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if upn == "" {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		san, err := upnSAN(upn)
		if err != nil {
			return tls.Certificate{}, err
		}
		tmpl.ExtraExtensions = []pkix.Extension{san}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// upnSAN is a subjectAltName with one Microsoft UPN otherName
// (1.3.6.1.4.1.311.20.2.3, a UTF8String), which crypto/x509 cannot write:
// GeneralNames ::= SEQUENCE { [0] IMPLICIT OtherName { type-id, [0] EXPLICIT value } }.
func upnSAN(upn string) (pkix.Extension, error) {
	value, err := asn1.MarshalWithParams(upn, "utf8")
	if err != nil {
		return pkix.Extension{}, err
	}
	explicit, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: value})
	if err != nil {
		return pkix.Extension{}, err
	}
	oid, err := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3})
	if err != nil {
		return pkix.Extension{}, err
	}
	other, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true,
		Bytes: append(oid, explicit...)})
	if err != nil {
		return pkix.Extension{}, err
	}
	names, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: other})
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: names}, nil
}

// writeServer writes the CA (as the trusted CA for client certificates)
// and a server certificate and key into dir, and returns their paths.
func (p *testPKI) writeServer(dir string) (caPath, certPath, keyPath string, err error) {
	srv, err := p.issue("easgate e2e gateway", "")
	if err != nil {
		return "", "", "", err
	}
	k8, err := x509.MarshalPKCS8PrivateKey(srv.PrivateKey)
	if err != nil {
		return "", "", "", err
	}
	files := []struct {
		path, typ string
		der       []byte
	}{
		{filepath.Join(dir, "ca.pem"), "CERTIFICATE", p.ca.Raw},
		{filepath.Join(dir, "server.pem"), "CERTIFICATE", srv.Certificate[0]},
		{filepath.Join(dir, "server.key"), "PRIVATE KEY", k8},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			return "", "", "", fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	return files[0].path, files[1].path, files[2].path, nil
}

// phoneTLS trusts the CA, which issued easgate's server certificate.
func (p *testPKI) phoneTLS() *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(p.ca)
	return &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}
