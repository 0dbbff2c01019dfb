package certs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ClientConfig configures client-certificate verification.
type ClientConfig struct {
	// Mode is "off", "optional" or "required" ("" = off).
	Mode string
	// TrustedCAs is a PEM bundle of CA certificates that client chains must
	// end in. Intermediates may also come from the client's chain. Required
	// unless Mode is off.
	TrustedCAs string
	// CRLFiles are CRLs (DER or PEM "X509 CRL"); each is matched to a
	// certificate by issuer name and used only when its signature verifies
	// against that certificate's issuing CA. Delta CRLs are not supported.
	CRLFiles []string
	// OCSP is "off", "soft" or "hard" ("" = off). soft: a responder that is
	// unreachable, times out or answers garbage/"unknown" does not block.
	// hard: it does; and a certificate without an OCSP URL must then be
	// covered by a current (not past NextUpdate) CRL of its issuer.
	OCSP string
	// OCSPTimeout bounds one OCSP exchange (default 3s).
	OCSPTimeout time.Duration
	// IdentityFrom is "upn" (default), "email" or "subject_cn". There is no
	// fallback: when the chosen field is missing the certificate is refused
	// with ReasonNoIdentity.
	IdentityFrom string
	// HTTPClient is used for OCSP (default: a client with no overall
	// timeout; OCSPTimeout applies per request).
	HTTPClient *http.Client
	// Now returns the current time (default time.Now); for tests.
	Now func() time.Time
}

type clientMode uint8

const (
	modeOff clientMode = iota
	modeOptional
	modeRequired
)

type ocspMode uint8

const (
	ocspOff ocspMode = iota
	ocspSoft
	ocspHard
)

// Bounds of the caches.
const (
	resultCacheMax = 16384            // verified leaves remembered
	resultTTL      = 5 * time.Minute  // a positive result is re-checked at least this often
	maxChainLen    = 10               // certificates accepted from a client
	defaultOCSPTTL = 5 * time.Minute  // OCSP answer without NextUpdate
	maxOCSPTTL     = 24 * time.Hour   // upper bound whatever NextUpdate says
	ocspFailTTL    = 30 * time.Second // a failed OCSP exchange is not retried sooner
	ocspCacheMax   = 16384
	maxOCSPBody    = 64 << 10
	clockSkew      = 5 * time.Minute
)

// Verifier verifies client certificates. It is safe for concurrent use.
// With a warm cache, VerifyChain costs one SHA-256 of the leaf and a map
// lookup and allocates nothing.
type Verifier struct {
	mode     clientMode
	ocspMode ocspMode
	from     IdentitySource
	now      func() time.Time
	caFile   string
	crlFiles []string

	state atomic.Pointer[verifierState]
	mu    sync.Mutex // serialises Reload

	results resultCache
	ocsp    *ocspChecker
}

type verifierState struct {
	roots   *x509.CertPool
	cas     []*x509.Certificate
	crls    map[string][]*crlEntry // by raw issuer name
	stats   []fileStat
	sig     [32]byte
	gen     uint64
	loaded  time.Time
	crlList []*crlEntry
}

type crlEntry struct {
	path    string
	list    *x509.RevocationList
	revoked map[string]time.Time // serial (big-endian bytes) -> revocation time
	sigOK   sync.Map             // issuer SHA-256 -> bool
}

// NewVerifier validates cfg and loads the CA bundle and CRLs.
func NewVerifier(cfg ClientConfig) (*Verifier, error) {
	v := &Verifier{caFile: cfg.TrustedCAs, crlFiles: append([]string(nil), cfg.CRLFiles...), now: cfg.Now}
	if v.now == nil {
		v.now = time.Now
	}
	switch cfg.Mode {
	case "", "off":
		v.mode = modeOff
	case "optional":
		v.mode = modeOptional
	case "required":
		v.mode = modeRequired
	default:
		return nil, fmt.Errorf("certs: client certificate mode %q: want off, optional or required", cfg.Mode)
	}
	switch cfg.OCSP {
	case "", "off":
		v.ocspMode = ocspOff
	case "soft":
		v.ocspMode = ocspSoft
	case "hard":
		v.ocspMode = ocspHard
	default:
		return nil, fmt.Errorf("certs: ocsp %q: want off, soft or hard", cfg.OCSP)
	}
	switch IdentitySource(cfg.IdentityFrom) {
	case "":
		v.from = IdentityUPN
	case IdentityUPN, IdentityEmail, IdentitySubjectCN:
		v.from = IdentitySource(cfg.IdentityFrom)
	default:
		return nil, fmt.Errorf("certs: certificate identity %q: want upn, email or subject_cn", cfg.IdentityFrom)
	}
	if cfg.OCSPTimeout < 0 {
		return nil, fmt.Errorf("certs: ocsp timeout %v must not be negative", cfg.OCSPTimeout)
	}
	timeout := cfg.OCSPTimeout
	if timeout == 0 {
		timeout = 3 * time.Second
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	v.ocsp = newOCSPChecker(hc, timeout)
	v.results.m = make(map[[32]byte]resultEntry)
	if v.mode == modeOff {
		v.state.Store(&verifierState{roots: x509.NewCertPool()})
		return v, nil
	}
	if cfg.TrustedCAs == "" {
		return nil, errors.New("certs: client certificates are " + cfg.Mode + " but no trusted_cas bundle is configured")
	}
	st, err := v.load()
	if err != nil {
		return nil, err
	}
	v.state.Store(st)
	return v, nil
}

// Mode returns "off", "optional" or "required".
func (v *Verifier) Mode() string {
	switch v.mode {
	case modeOptional:
		return "optional"
	case modeRequired:
		return "required"
	}
	return "off"
}

func (v *Verifier) paths() []string {
	return append([]string{v.caFile}, v.crlFiles...)
}

func statPaths(paths []string) ([]fileStat, error) {
	out := make([]fileStat, 0, len(paths))
	for _, p := range paths {
		fs, err := statFiles([]CertFiles{{Certificate: p}})
		if err != nil {
			return nil, err
		}
		out = append(out, fs...)
	}
	return out, nil
}

// load reads the CA bundle and CRLs into a new state (gen not set).
func (v *Verifier) load() (*verifierState, error) {
	stats, err := statPaths(v.paths())
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	st := &verifierState{roots: x509.NewCertPool(), crls: map[string][]*crlEntry{}, stats: stats, loaded: v.now()}
	data, err := readFileBounded(v.caFile)
	if err != nil {
		return nil, fmt.Errorf("certs: trusted CAs: %w", err)
	}
	h.Write(data)
	h.Write([]byte{0})
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certs: trusted CAs %s: certificate #%d: %w", v.caFile, len(st.cas)+1, err)
		}
		st.cas = append(st.cas, c)
		st.roots.AddCert(c)
	}
	if len(st.cas) == 0 {
		return nil, fmt.Errorf("certs: trusted CAs %s: no PEM CERTIFICATE blocks found", v.caFile)
	}
	for _, p := range v.crlFiles {
		data, err := readFileBounded(p)
		if err != nil {
			return nil, fmt.Errorf("certs: CRL: %w", err)
		}
		h.Write(data)
		h.Write([]byte{0})
		ders, err := crlDERs(data)
		if err != nil {
			return nil, fmt.Errorf("certs: CRL %s: %w", p, err)
		}
		for i, der := range ders {
			rl, err := x509.ParseRevocationList(der)
			if err != nil {
				return nil, fmt.Errorf("certs: CRL %s (#%d): %w", p, i+1, err)
			}
			e := &crlEntry{path: p, list: rl, revoked: make(map[string]time.Time, len(rl.RevokedCertificateEntries))}
			for _, r := range rl.RevokedCertificateEntries {
				if r.SerialNumber != nil {
					e.revoked[string(r.SerialNumber.Bytes())] = r.RevocationTime
				}
			}
			// When the issuing CA is in the bundle, check the signature now
			// so a wrong CRL fails the load instead of being ignored later.
			for _, ca := range st.cas {
				if bytes.Equal(ca.RawSubject, rl.RawIssuer) {
					if err := rl.CheckSignatureFrom(ca); err != nil {
						return nil, fmt.Errorf("certs: CRL %s: signature does not verify against CA %q: %w", p, ca.Subject.String(), err)
					}
					e.sigOK.Store(sha256.Sum256(ca.Raw), true)
				}
			}
			st.crls[string(rl.RawIssuer)] = append(st.crls[string(rl.RawIssuer)], e)
			st.crlList = append(st.crlList, e)
		}
	}
	copy(st.sig[:], h.Sum(nil))
	return st, nil
}

// crlDERs returns the DER CRLs in a DER or PEM file.
func crlDERs(data []byte) ([][]byte, error) {
	trimmed := bytes.TrimSpace(data)
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		if len(trimmed) == 0 {
			return nil, errors.New("file is empty")
		}
		return [][]byte{data}, nil
	}
	var out [][]byte
	rest := trimmed
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "X509 CRL" {
			out = append(out, b.Bytes)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM \"X509 CRL\" block found")
	}
	return out, nil
}

// Reload re-reads the CA bundle and the CRLs. When they are unchanged it
// does nothing; on error the previous ones stay in use.
func (v *Verifier) Reload() error {
	_, err := v.reload()
	return err
}

func (v *Verifier) reload() (bool, error) {
	if v.mode == modeOff {
		return false, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	cur := v.state.Load()
	next, err := v.load()
	if err != nil {
		return false, err
	}
	if next.sig == cur.sig {
		cp := *cur
		cp.stats = next.stats
		v.state.Store(&cp)
		return false, nil
	}
	next.gen = cur.gen + 1
	v.state.Store(next)
	v.results.clear()
	return true, nil
}

// Watch polls the CA bundle and CRL files every interval until ctx is
// done and reloads them when they change (after they have stayed the same
// for one interval, so half-written files are not read). onErr (may be
// nil) gets each distinct error; the previous state stays in use.
func (v *Verifier) Watch(ctx context.Context, every time.Duration, onErr func(error)) {
	if v.mode == modeOff {
		return
	}
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var pending, lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		stats, serr := statPaths(v.paths())
		if serr == nil && sameStats(stats, v.state.Load().stats) {
			pending = ""
			continue
		}
		if k := statKey(stats, serr); k != pending {
			pending = k
			continue
		}
		_, err := v.reload()
		if err != nil && err.Error() != lastErr && onErr != nil {
			onErr(err)
		}
		if err != nil {
			lastErr = err.Error()
		} else {
			lastErr = ""
		}
	}
}

// Verify verifies the client certificate of a TLS connection.
// It returns an error matching ErrNoCertificate when none was presented.
func (v *Verifier) Verify(cs *tls.ConnectionState) (Identity, error) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		if v.mode == modeOff {
			return Identity{}, errDisabled
		}
		return Identity{}, ErrNoCertificate
	}
	return v.VerifyChain(cs.PeerCertificates)
}

var errDisabled = &VerifyError{Reason: ReasonDisabled, Msg: "client certificates are off in the configuration"}

// VerifyChain verifies chain (leaf first, then any intermediates the client
// sent) and returns the identity. Positive results are cached per leaf
// until the earliest of: 5 minutes, the leaf's NotAfter, the OCSP answer's
// NextUpdate, the CRL's NextUpdate, or a Reload that changed something.
func (v *Verifier) VerifyChain(chain []*x509.Certificate) (Identity, error) {
	if v.mode == modeOff {
		return Identity{}, errDisabled
	}
	if len(chain) == 0 || chain[0] == nil {
		return Identity{}, ErrNoCertificate
	}
	leaf := chain[0]
	st := v.state.Load()
	now := v.now()
	key := sha256.Sum256(leaf.Raw)
	if id, ok := v.results.get(key, st.gen, now); ok {
		return id, nil
	}
	id, until, err := v.verifySlow(st, chain, now)
	if err != nil {
		return Identity{}, err
	}
	v.results.put(key, resultEntry{id: id, gen: st.gen, until: until})
	return id, nil
}

func (v *Verifier) verifySlow(st *verifierState, chain []*x509.Certificate, now time.Time) (Identity, time.Time, error) {
	leaf := chain[0]
	if len(chain) > maxChainLen {
		return Identity{}, time.Time{}, &VerifyError{Reason: ReasonMalformed, Msg: fmt.Sprintf("client sent %d certificates, more than %d", len(chain), maxChainLen)}
	}
	desc := certDesc(leaf)
	if now.After(leaf.NotAfter) {
		return Identity{}, time.Time{}, &VerifyError{Reason: ReasonExpired, Msg: desc + " expired at " + leaf.NotAfter.UTC().Format(time.RFC3339)}
	}
	if now.Before(leaf.NotBefore) {
		return Identity{}, time.Time{}, &VerifyError{Reason: ReasonNotYetValid, Msg: desc + " is not valid before " + leaf.NotBefore.UTC().Format(time.RFC3339)}
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		if c != nil {
			inter.AddCert(c)
		}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         st.roots,
		Intermediates: inter,
		CurrentTime:   now,
		// crypto/x509 accepts a certificate without an EKU extension or
		// with anyExtendedKeyUsage here, as RFC 5280 4.2.1.12 intends.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return Identity{}, time.Time{}, mapX509Error(err, desc)
	}
	ch := chains[0]
	until := now.Add(resultTTL)
	for _, c := range ch {
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}

	var rev []string
	leafCRLFresh, leafCRLStale := false, false
	for i := 0; i+1 < len(ch); i++ {
		r := st.checkCRL(ch[i], ch[i+1], now)
		if r.revoked {
			return Identity{}, time.Time{}, &VerifyError{Reason: ReasonRevokedCRL, Msg: fmt.Sprintf("%s was revoked at %s (CRL %s)", certDesc(ch[i]), r.at.UTC().Format(time.RFC3339), r.path)}
		}
		if i == 0 {
			leafCRLFresh, leafCRLStale = r.fresh, r.covered && !r.fresh
			if r.fresh && !r.nextUpdate.IsZero() && r.nextUpdate.Before(until) {
				until = r.nextUpdate
			}
		}
	}
	if leafCRLFresh {
		rev = append(rev, "crl")
	} else if leafCRLStale {
		rev = append(rev, "crl_stale")
	}

	if v.ocspMode != ocspOff && len(ch) > 1 {
		issuer := ch[1]
		url := ocspURL(leaf)
		switch {
		case url != "":
			res := v.ocsp.check(leaf, issuer, url, now)
			switch res.status {
			case ocspStatusGood:
				rev = append(rev, "ocsp")
			case ocspStatusRevoked:
				return Identity{}, time.Time{}, &VerifyError{Reason: ReasonRevokedOCSP, Msg: fmt.Sprintf("%s was revoked at %s (OCSP %s)", desc, res.revokedAt.UTC().Format(time.RFC3339), url)}
			default:
				if v.ocspMode == ocspHard {
					return Identity{}, time.Time{}, &VerifyError{Reason: ReasonOCSPUnavailable, Msg: fmt.Sprintf("%s: no usable OCSP answer from %s: %s", desc, url, res.msg)}
				}
				rev = append(rev, "ocsp_unavailable")
			}
			if res.until.Before(until) {
				until = res.until
			}
		case v.ocspMode == ocspHard && !leafCRLFresh:
			if leafCRLStale {
				return Identity{}, time.Time{}, &VerifyError{Reason: ReasonCRLExpired, Msg: desc + " has no OCSP responder and the CRL of its issuer is past its NextUpdate"}
			}
			return Identity{}, time.Time{}, &VerifyError{Reason: ReasonOCSPUnavailable, Msg: desc + " has no OCSP responder in its AIA and no CRL of its issuer is loaded"}
		}
	}

	id, err := newIdentity(leaf, v.from)
	if err != nil {
		return Identity{}, time.Time{}, err
	}
	id.Revocation = "unchecked"
	if len(rev) > 0 {
		id.Revocation = strings.Join(rev, "+")
	}
	return id, until, nil
}

func certDesc(c *x509.Certificate) string {
	return fmt.Sprintf("certificate %q (serial %s)", c.Subject.String(), c.SerialNumber.Text(16))
}

func mapX509Error(err error, desc string) error {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		switch inv.Reason {
		case x509.Expired:
			if strings.Contains(inv.Detail, "before") {
				return &VerifyError{Reason: ReasonNotYetValid, Msg: desc + ": a CA in the chain is not yet valid: " + err.Error()}
			}
			return &VerifyError{Reason: ReasonExpired, Msg: desc + ": a CA in the chain has expired: " + err.Error()}
		case x509.IncompatibleUsage:
			return &VerifyError{Reason: ReasonWrongEKU, Msg: desc + " is not valid for client authentication (needs the clientAuth extended key usage)"}
		}
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return &VerifyError{Reason: ReasonUntrustedChain, Msg: desc + " does not chain to a trusted CA: " + err.Error()}
	}
	return &VerifyError{Reason: ReasonUntrustedChain, Msg: desc + ": " + err.Error()}
}

type crlResult struct {
	revoked    bool
	at         time.Time
	path       string
	covered    bool // a CRL signed by the issuer exists
	fresh      bool // ... and it is not past NextUpdate
	nextUpdate time.Time
}

// checkCRL looks cert up in the CRLs issued by issuer whose signature
// verifies against issuer.
func (st *verifierState) checkCRL(cert, issuer *x509.Certificate, now time.Time) crlResult {
	var r crlResult
	entries := st.crls[string(cert.RawIssuer)]
	if len(entries) == 0 {
		return r
	}
	ifp := sha256.Sum256(issuer.Raw)
	serial := cert.SerialNumber.Bytes()
	for _, e := range entries {
		if !e.signedBy(issuer, ifp) {
			continue
		}
		r.covered = true
		if e.list.NextUpdate.IsZero() || now.Before(e.list.NextUpdate) {
			r.fresh = true
			if r.nextUpdate.IsZero() || e.list.NextUpdate.Before(r.nextUpdate) {
				r.nextUpdate = e.list.NextUpdate
			}
		}
		if at, ok := e.revoked[string(serial)]; ok {
			r.revoked, r.at, r.path = true, at, e.path
			return r
		}
	}
	return r
}

func (e *crlEntry) signedBy(issuer *x509.Certificate, ifp [32]byte) bool {
	if ok, found := e.sigOK.Load(ifp); found {
		return ok.(bool)
	}
	ok := e.list.CheckSignatureFrom(issuer) == nil
	e.sigOK.Store(ifp, ok)
	return ok
}

func ocspURL(c *x509.Certificate) string {
	for _, u := range c.OCSPServer {
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			return u
		}
	}
	return ""
}

// resultCache remembers positive verification results per leaf.
type resultCache struct {
	mu sync.RWMutex
	m  map[[32]byte]resultEntry
}

type resultEntry struct {
	id    Identity
	gen   uint64
	until time.Time
}

func (c *resultCache) get(key [32]byte, gen uint64, now time.Time) (Identity, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || e.gen != gen || !now.Before(e.until) {
		return Identity{}, false
	}
	return e.id, true
}

func (c *resultCache) put(key [32]byte, e resultEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= resultCacheMax {
		evict(c.m, func(r resultEntry) time.Time { return r.until }, time.Now())
	}
	c.m[key] = e
}

func (c *resultCache) clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

// evict removes expired entries and, if that frees nothing, an eighth of
// the map (arbitrary entries: map iteration order is random).
func evict[V any](m map[[32]byte]V, until func(V) time.Time, now time.Time) {
	n := 0
	for k, v := range m {
		if until(v).Before(now) {
			delete(m, k)
			n++
		}
	}
	if n > 0 {
		return
	}
	drop := len(m)/8 + 1
	for k := range m {
		if drop == 0 {
			break
		}
		delete(m, k)
		drop--
	}
}
