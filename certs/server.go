package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// ServerConfig names the gateway's server certificate files. Either
// Certificate (+Key) or PFX (+PFXPasswordFile) is set. Extra certificates
// are offered by SNI; the first certificate is the fallback.
type ServerConfig struct {
	Certificate     string // PEM: leaf first, then intermediates; may also hold the key
	Key             string // PEM private key (PKCS#1, PKCS#8 or SEC 1); empty: taken from Certificate
	PFX             string // PKCS#12 bundle instead of Certificate/Key
	PFXPasswordFile string // file holding the PFX password (one trailing newline is ignored)
	Extra           []CertFiles
	MinVersion      string // "1.2" (default) or "1.3"
}

// CertFiles is one certificate: PEM Certificate+Key or PFX+PFXPasswordFile.
type CertFiles struct {
	Certificate, Key, PFX, PFXPasswordFile string
}

// maxCertFileSize bounds any certificate, key, PFX, CRL or CA file read.
const maxCertFileSize = 16 << 20

// Store holds hot-reloadable server certificates. It is safe for concurrent
// use; GetCertificate never blocks on a reload.
type Store struct {
	files      []CertFiles
	minVersion uint16

	state atomic.Pointer[storeState]

	mu          sync.Mutex // serialises Reload
	lastErrSig  [32]byte   // content hash of the files behind the last reported error
	lastErrSeen bool
}

type storeState struct {
	certs []*serverCert
	sig   [32]byte // hash over every file's content
	stats []fileStat
}

type serverCert struct {
	cert  *tls.Certificate
	names []string // DNS SANs (or CN when there are none), lowercase, no trailing dot
}

type fileStat struct {
	path    string
	size    int64
	modTime time.Time
}

// NewStore loads every configured certificate. Errors name the file and the
// problem, never the password.
func NewStore(cfg ServerConfig) (*Store, error) {
	mv, err := parseMinVersion(cfg.MinVersion)
	if err != nil {
		return nil, err
	}
	files := append([]CertFiles{{Certificate: cfg.Certificate, Key: cfg.Key, PFX: cfg.PFX, PFXPasswordFile: cfg.PFXPasswordFile}}, cfg.Extra...)
	for i, f := range files {
		if err := f.validate(); err != nil {
			return nil, fmt.Errorf("certs: server certificate #%d: %w", i+1, err)
		}
	}
	s := &Store{files: files, minVersion: mv}
	st, err := loadStoreState(files)
	if err != nil {
		return nil, err
	}
	s.state.Store(st)
	return s, nil
}

func parseMinVersion(v string) (uint16, error) {
	switch v {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("certs: min_version %q: want \"1.2\" or \"1.3\"", v)
}

func (f CertFiles) validate() error {
	switch {
	case f.PFX != "" && (f.Certificate != "" || f.Key != ""):
		return errors.New("set either certificate/key or pfx, not both")
	case f.PFX == "" && f.Certificate == "":
		return errors.New("no certificate or pfx file configured")
	case f.PFX == "" && f.PFXPasswordFile != "":
		return errors.New("pfx_password_file set without pfx")
	}
	return nil
}

func (f CertFiles) paths() []string {
	var p []string
	for _, s := range []string{f.Certificate, f.Key, f.PFX, f.PFXPasswordFile} {
		if s != "" {
			p = append(p, s)
		}
	}
	return p
}

func statFiles(files []CertFiles) ([]fileStat, error) {
	var out []fileStat
	for _, f := range files {
		for _, p := range f.paths() {
			fi, err := os.Stat(p)
			if err != nil {
				return nil, fmt.Errorf("certs: %w", err)
			}
			out = append(out, fileStat{path: p, size: fi.Size(), modTime: fi.ModTime()})
		}
	}
	return out, nil
}

func sameStats(a, b []fileStat) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].path != b[i].path || a[i].size != b[i].size || !a[i].modTime.Equal(b[i].modTime) {
			return false
		}
	}
	return true
}

// readFileBounded reads a file of at most maxCertFileSize bytes.
func readFileBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxCertFileSize {
		return nil, fmt.Errorf("%s: file is %d bytes, larger than the %d byte limit", path, fi.Size(), maxCertFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxCertFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxCertFileSize {
		return nil, fmt.Errorf("%s: file larger than the %d byte limit", path, maxCertFileSize)
	}
	return b, nil
}

// keyMatches checks that key is the private key of leaf's public key.
func keyMatches(leaf *x509.Certificate, key any) error {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return fmt.Errorf("private key of type %T cannot sign", key)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return errors.New("private key does not match the certificate's public key")
	}
	return nil
}

// loadStoreState reads and parses every file. The returned state's sig is a
// hash over all file contents, in order.
func loadStoreState(files []CertFiles) (*storeState, error) {
	stats, err := statFiles(files)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	st := &storeState{stats: stats}
	for i, f := range files {
		c, err := loadCertFiles(f, h)
		if err != nil {
			return nil, fmt.Errorf("certs: server certificate #%d: %w", i+1, err)
		}
		st.certs = append(st.certs, &serverCert{cert: c, names: certNames(c.Leaf)})
	}
	copy(st.sig[:], h.Sum(nil))
	return st, nil
}

func loadCertFiles(f CertFiles, h io.Writer) (*tls.Certificate, error) {
	if f.PFX != "" {
		data, err := readFileBounded(f.PFX)
		if err != nil {
			return nil, err
		}
		pw, err := readPassword(f.PFXPasswordFile)
		if err != nil {
			return nil, err
		}
		h.Write(data)
		h.Write([]byte{0})
		h.Write(pw)
		h.Write([]byte{0})
		c, err := decodePFX(data, string(pw), f.PFX, f.PFXPasswordFile)
		if err != nil {
			return nil, err
		}
		return &c, nil
	}
	certPEM, err := readFileBounded(f.Certificate)
	if err != nil {
		return nil, err
	}
	keyPEM := certPEM
	keyPath := f.Certificate
	if f.Key != "" {
		keyPath = f.Key
		if keyPEM, err = readFileBounded(f.Key); err != nil {
			return nil, err
		}
	}
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	h.Write([]byte{0})
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate %s with key %s: %w (the certificate file must hold the leaf first, then intermediates)", f.Certificate, keyPath, err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certificate %s: %w", f.Certificate, err)
		}
	}
	return &c, nil
}

// readPassword reads a password file; one trailing "\n" or "\r\n" is
// dropped. An empty path means the empty password.
func readPassword(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := readFileBounded(path)
	if err != nil {
		return nil, fmt.Errorf("pfx password file: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	return b, nil
}

// LoadPFX loads a PKCS#12/PFX file (modern PBES2/AES as well as legacy
// 3DES/RC2 encryption, as Windows and OpenSSL export them) into a
// tls.Certificate whose chain is ordered leaf first. The password is read
// from passwordFile (empty path: empty password). Errors name the files,
// never the password.
func LoadPFX(path, passwordFile string) (tls.Certificate, error) {
	data, err := readFileBounded(path)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: %w", err)
	}
	pw, err := readPassword(passwordFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: %w", err)
	}
	c, err := decodePFX(data, string(pw), path, passwordFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: %w", err)
	}
	return c, nil
}

func decodePFX(data []byte, password, path, passwordFile string) (tls.Certificate, error) {
	key, leaf, cas, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) || errors.Is(err, pkcs12.ErrDecryption) {
			src := "the empty password"
			if passwordFile != "" {
				src = "the password in " + passwordFile
			}
			return tls.Certificate{}, fmt.Errorf("PFX %s: wrong password (tried %s) or damaged file", path, src)
		}
		return tls.Certificate{}, fmt.Errorf("PFX %s: %w", path, err)
	}
	c := tls.Certificate{PrivateKey: key, Leaf: leaf, Certificate: [][]byte{leaf.Raw}}
	for _, ca := range orderChain(leaf, cas) {
		c.Certificate = append(c.Certificate, ca.Raw)
	}
	if err := keyMatches(leaf, key); err != nil {
		return tls.Certificate{}, fmt.Errorf("PFX %s: %w", path, err)
	}
	return c, nil
}

// orderChain returns the CA certificates that chain up from leaf, in order,
// leaving out a self-signed root (clients must already trust it) and any
// certificate unrelated to the leaf.
func orderChain(leaf *x509.Certificate, cas []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	used := make([]bool, len(cas))
	cur := leaf
	for range cas {
		next := -1
		for i, ca := range cas {
			if !used[i] && bytes.Equal(cur.RawIssuer, ca.RawSubject) && cur.CheckSignatureFrom(ca) == nil {
				next = i
				break
			}
		}
		if next < 0 {
			break
		}
		used[next] = true
		ca := cas[next]
		if bytes.Equal(ca.RawIssuer, ca.RawSubject) {
			break // self-signed root
		}
		out = append(out, ca)
		cur = ca
	}
	return out
}

// certNames returns the names a certificate answers to for SNI.
func certNames(leaf *x509.Certificate) []string {
	src := leaf.DNSNames
	if len(src) == 0 && leaf.Subject.CommonName != "" {
		src = []string{leaf.Subject.CommonName}
	}
	out := make([]string, 0, len(src))
	for _, n := range src {
		out = append(out, strings.TrimSuffix(strings.ToLower(n), "."))
	}
	return out
}

// GetCertificate picks the certificate for a handshake: an exact SNI match,
// then a wildcard match (one label), preferring a certificate the client
// supports (e.g. ECDSA vs RSA); without a match, the first certificate.
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	st := s.state.Load()
	if st == nil || len(st.certs) == 0 {
		return nil, errors.New("certs: no server certificate loaded")
	}
	name := ""
	if hello != nil {
		name = strings.TrimSuffix(hello.ServerName, ".")
	}
	if name == "" || len(st.certs) == 1 {
		return st.certs[0].cert, nil
	}
	var fallback *tls.Certificate
	for _, sc := range st.certs {
		if !sc.matches(name) {
			continue
		}
		if len(hello.SignatureSchemes) == 0 || hello.SupportsCertificate(sc.cert) == nil {
			return sc.cert, nil
		}
		if fallback == nil {
			fallback = sc.cert
		}
	}
	if fallback != nil {
		return fallback, nil
	}
	return st.certs[0].cert, nil
}

func (sc *serverCert) matches(name string) bool {
	for _, n := range sc.names {
		if strings.EqualFold(n, name) {
			return true
		}
		if len(n) > 2 && n[0] == '*' && n[1] == '.' {
			if i := strings.IndexByte(name, '.'); i > 0 && strings.EqualFold(n[1:], name[i:]) {
				return true
			}
		}
	}
	return false
}

// Leaves returns the currently served leaf certificates (first = fallback),
// for logging and expiry metrics.
func (s *Store) Leaves() []*x509.Certificate {
	st := s.state.Load()
	out := make([]*x509.Certificate, len(st.certs))
	for i, sc := range st.certs {
		out[i] = sc.cert.Leaf
	}
	return out
}

// Reload re-reads the files when their size, modification time or content
// changed. On error the previous certificates stay in service and the error
// (naming the file) is returned.
func (s *Store) Reload() (changed bool, err error) {
	changed, _, err = s.reload()
	return changed, err
}

// reload returns the content signature the attempt saw, so Watch can report
// each broken version once.
func (s *Store) reload() (changed bool, sig [32]byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.state.Load()
	stats, err := statFiles(s.files)
	if err != nil {
		return false, sig, err
	}
	next, err := loadStoreState(s.files)
	if err != nil {
		// Identify the broken version by a hash of the raw bytes we can read.
		h := sha256.New()
		for _, st := range stats {
			if b, rerr := readFileBounded(st.path); rerr == nil {
				h.Write(b)
			}
			h.Write([]byte{0})
		}
		copy(sig[:], h.Sum(nil))
		return false, sig, err
	}
	if next.sig == cur.sig {
		// Touched but identical: remember the new stats, keep the objects.
		cp := *cur
		cp.stats = next.stats
		s.state.Store(&cp)
		return false, next.sig, nil
	}
	s.state.Store(next)
	return true, next.sig, nil
}

// Watch polls the files every interval until ctx is done. A change in
// size or modification time is acted on once the files have stayed the
// same for one more interval (so a half-written set is not loaded); then
// the content hash decides whether anything really changed and the new
// certificates are swapped in. onErr (may be nil) is called once per broken
// version of the files; the old certificates stay in service meanwhile.
func (s *Store) Watch(ctx context.Context, every time.Duration, onErr func(error)) {
	if every <= 0 {
		every = 30 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	pending := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		stats, serr := statFiles(s.files)
		if serr == nil && sameStats(stats, s.state.Load().stats) {
			pending = ""
			continue
		}
		if k := statKey(stats, serr); k != pending {
			pending = k // settle: act when the same state is seen twice in a row
			continue
		}
		_, sig, err := s.reload()
		s.mu.Lock()
		report := err != nil && (!s.lastErrSeen || sig != s.lastErrSig)
		if err != nil {
			s.lastErrSig, s.lastErrSeen = sig, true
		} else {
			s.lastErrSeen = false
		}
		s.mu.Unlock()
		if report && onErr != nil {
			onErr(err)
		}
	}
}

// statKey summarises one observation of the files for Watch's settling.
func statKey(stats []fileStat, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	for _, st := range stats {
		fmt.Fprintf(&b, "%s\x00%d\x00%d\x00", st.path, st.size, st.modTime.UnixNano())
	}
	return b.String()
}

// cipherSuites12 are the TLS 1.2 suites offered: ECDHE key exchange with an
// AEAD cipher only. TLS 1.3 suites are not configurable in crypto/tls and
// are all AEAD.
var cipherSuites12 = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// CipherSuites returns a copy of the TLS 1.2 cipher suites TLSConfig uses.
func CipherSuites() []uint16 { return append([]uint16(nil), cipherSuites12...) }

// TLSConfig returns the server TLS configuration: MinVersion, the ECDHE+AEAD
// suites, SNI certificate selection, and client-certificate handling per
// the verifier's mode. client may be nil (no client certificates).
//
// Client certificates are requested with tls.RequestClientCert (optional)
// or tls.RequireAnyClientCert (required), never the VerifyClientCert*
// modes: crypto/tls would then verify against ClientCAs itself, without
// revocation, our EKU rule or our error reasons. Instead VerifyConnection
// runs client.VerifyChain, so a presented certificate that fails (expired,
// revoked, untrusted, ...) aborts the handshake in both modes; a missing
// one aborts only in required mode. The certificate_authorities list sent
// to clients follows the verifier's current CA bundle across reloads.
func (s *Store) TLSConfig(client *Verifier) *tls.Config {
	cfg := &tls.Config{
		MinVersion:     s.minVersion,
		CipherSuites:   CipherSuites(),
		GetCertificate: s.GetCertificate,
	}
	if client == nil || client.mode == modeOff {
		return cfg
	}
	required := client.mode == modeRequired
	if required {
		cfg.ClientAuth = tls.RequireAnyClientCert
	} else {
		cfg.ClientAuth = tls.RequestClientCert
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			if required {
				return ErrNoCertificate
			}
			return nil
		}
		_, err := client.VerifyChain(cs.PeerCertificates)
		return err
	}
	base := cfg.Clone()
	var cached atomic.Pointer[perGenConfig]
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		st := client.state.Load()
		if pc := cached.Load(); pc != nil && pc.gen == st.gen {
			return pc.cfg, nil
		}
		c := base.Clone()
		c.ClientCAs = st.roots
		cached.Store(&perGenConfig{gen: st.gen, cfg: c})
		return c, nil
	}
	return cfg
}

type perGenConfig struct {
	gen uint64
	cfg *tls.Config
}
