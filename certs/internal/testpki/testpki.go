// Package testpki builds a throw-away PKI for certs tests: a root CA, an
// intermediate CA, client and server certificates with UPN/e-mail/CN
// identities, CRLs, and an OCSP responder on 127.0.0.1. It is test support
// only; production code must never import it. It imports only the standard
// library and golang.org/x/crypto.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

// T is the part of testing.TB the helpers need; examples can pass a
// small adapter.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// CA is a certificate authority with its key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	PEM  []byte
}

// PKI is a root and an intermediate CA; leaves are issued by the
// intermediate unless told otherwise.
type PKI struct {
	Root, Intermediate *CA
	t                  T
	serial             atomic.Int64
}

// Leaf is an issued end-entity certificate.
type Leaf struct {
	Cert     *x509.Certificate
	Key      crypto.Signer
	CertPEM  []byte // leaf only
	KeyPEM   []byte // PKCS#8
	ChainPEM []byte // leaf then the intermediate
}

// Options describe a leaf certificate.
type Options struct {
	CN         string
	UPN        string // SAN otherName 1.3.6.1.4.1.311.20.2.3 (UTF8String)
	Emails     []string
	DNSNames   []string
	IPs        []net.IP
	NotBefore  time.Time // default: now - 1h
	NotAfter   time.Time // default: now + 24h
	EKU        []x509.ExtKeyUsage
	OCSPServer string
	Issuer     *CA // default: the intermediate
	RSA        bool
}

// New creates a root CA and an intermediate CA signed by it.
func New(t T) *PKI {
	t.Helper()
	p := &PKI{t: t}
	p.serial.Store(1000)
	now := time.Now()
	p.Root = p.newCA("easgate test root", nil, now.Add(-time.Hour), now.Add(10*365*24*time.Hour))
	p.Intermediate = p.newCA("easgate test issuing CA", p.Root, now.Add(-time.Hour), now.Add(5*365*24*time.Hour))
	return p
}

// NewCA creates another CA signed by parent (nil: self-signed root).
func (p *PKI) NewCA(cn string, parent *CA, notBefore, notAfter time.Time) *CA {
	p.t.Helper()
	return p.newCA(cn, parent, notBefore, notAfter)
}

func (p *PKI) newCA(cn string, parent *CA, nb, na time.Time) *CA {
	key := ecKey(p.t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(p.serial.Add(1)),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"easgate tests"}},
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.Key, parent.Cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), signer)
	if err != nil {
		p.t.Fatalf("testpki: create CA: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		p.t.Fatalf("testpki: parse CA: %v", err)
	}
	return &CA{Cert: c, Key: key, PEM: PEMCert(der)}
}

func ecKey(t T) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testpki: key: %v", err)
	}
	return k
}

// Issue creates a leaf certificate.
func (p *PKI) Issue(o Options) *Leaf {
	p.t.Helper()
	var key crypto.Signer
	if o.RSA {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			p.t.Fatalf("testpki: rsa key: %v", err)
		}
		key = k
	} else {
		key = ecKey(p.t)
	}
	issuer := o.Issuer
	if issuer == nil {
		issuer = p.Intermediate
	}
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(24 * time.Hour)
	}
	if o.EKU == nil {
		o.EKU = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial.Add(1)),
		Subject:      pkix.Name{CommonName: o.CN, Organization: []string{"easgate tests"}},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  o.EKU,
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPs,
	}
	if o.OCSPServer != "" {
		tmpl.OCSPServer = []string{o.OCSPServer}
	}
	if o.UPN != "" {
		tmpl.ExtraExtensions = []pkix.Extension{SANExtension(o.UPN, o.Emails, o.DNSNames, o.IPs)}
	} else {
		tmpl.EmailAddresses = o.Emails
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer.Cert, key.Public(), issuer.Key)
	if err != nil {
		p.t.Fatalf("testpki: create leaf: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		p.t.Fatalf("testpki: parse leaf: %v", err)
	}
	k8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		p.t.Fatalf("testpki: marshal key: %v", err)
	}
	l := &Leaf{Cert: c, Key: key, CertPEM: PEMCert(der), KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k8})}
	l.ChainPEM = append(append([]byte{}, l.CertPEM...), issuer.PEM...)
	return l
}

// SANExtension encodes a subjectAltName with a UPN otherName (which
// crypto/x509 cannot write), rfc822Names, dNSNames and iPAddresses.
func SANExtension(upn string, emails, dns []string, ips []net.IP) pkix.Extension {
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if upn != "" {
			b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3})
				b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1(casn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(upn)) })
				})
			})
		}
		for _, e := range emails {
			b.AddASN1(casn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(e)) })
		}
		for _, d := range dns {
			b.AddASN1(casn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(d)) })
		}
		for _, ip := range ips {
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			b.AddASN1(casn1.Tag(7).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(ip) })
		}
	})
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: b.BytesOrPanic()}
}

// CRL returns a DER CRL signed by issuer listing revoked.
func (p *PKI) CRL(issuer *CA, revoked []*x509.Certificate, thisUpdate, nextUpdate time.Time) []byte {
	p.t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: thisUpdate.Add(-time.Minute), ReasonCode: 1})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(p.serial.Add(1)),
		ThisUpdate:                thisUpdate,
		NextUpdate:                nextUpdate,
		RevokedCertificateEntries: entries,
	}, issuer.Cert, issuer.Key)
	if err != nil {
		p.t.Fatalf("testpki: CRL: %v", err)
	}
	return der
}

// Responder is an OCSP responder on 127.0.0.1 signing with the issuer key.
type Responder struct {
	URL  string
	Hits atomic.Int64

	issuer  *CA
	mu      sync.Mutex
	revoked map[string]time.Time
	status  int // forced status for unknown certificates: ocsp.Good by default
}

// OCSPResponder starts a responder for certificates issued by issuer; it is
// closed when the test ends.
func OCSPResponder(t T, issuer *CA) *Responder {
	t.Helper()
	r := &Responder{issuer: issuer, revoked: map[string]time.Time{}, status: ocsp.Good}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Revoke marks c as revoked from now on.
func (r *Responder) Revoke(c *x509.Certificate) {
	r.mu.Lock()
	r.revoked[c.SerialNumber.String()] = time.Now().Add(-time.Minute)
	r.mu.Unlock()
}

// AnswerUnknown makes the responder answer "unknown" for non-revoked certificates.
func (r *Responder) AnswerUnknown() {
	r.mu.Lock()
	r.status = ocsp.Unknown
	r.mu.Unlock()
}

func (r *Responder) serve(w http.ResponseWriter, req *http.Request) {
	r.Hits.Add(1)
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<16))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	oreq, err := ocsp.ParseRequest(body)
	if err != nil {
		w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	now := time.Now()
	tmpl := ocsp.Response{SerialNumber: oreq.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}
	r.mu.Lock()
	tmpl.Status = r.status
	if at, ok := r.revoked[oreq.SerialNumber.String()]; ok {
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, at, ocsp.KeyCompromise
	}
	r.mu.Unlock()
	resp, err := ocsp.CreateResponse(r.issuer.Cert, r.issuer.Cert, tmpl, r.issuer.Key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(resp)
}

// ClosedURL returns an http URL on 127.0.0.1 whose port was just closed, so
// connections are refused.
func ClosedURL(t T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testpki: listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/ocsp"
}

// PEMCert encodes DER as a PEM CERTIFICATE block.
func PEMCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// PEMCRL encodes a DER CRL as a PEM "X509 CRL" block.
func PEMCRL(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// Write writes data to dir/name and returns the path.
func Write(t T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatalf("testpki: write %s: %v", p, err)
	}
	return p
}

// WriteFiles writes the leaf's chain and key as PEM files into dir and
// returns their paths.
func (l *Leaf) WriteFiles(t T, dir, name string) (certPath, keyPath string) {
	t.Helper()
	return Write(t, dir, name+".pem", l.ChainPEM), Write(t, dir, name+".key", l.KeyPEM)
}
