package kerberos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Options configure a Delegator.
type Options struct {
	// Realm is the Kerberos realm of the service account, the users and
	// the CAS (upper case, e.g. CORP.EXAMPLE.COM).
	Realm string
	// KDCs are host:port addresses tried in order.
	KDCs []string
	// ServicePrincipal is the gateway's service account ("easgate-svc",
	// without the realm), trusted for protocol transition and allowed to
	// delegate to the CAS's SPN.
	ServicePrincipal string
	// Keytab holds the service account's keys (LoadKeytab).
	Keytab *keytab.Keytab
	// Lifetime is the service-ticket lifetime asked for (the KDC may give
	// less); 0 means 10 hours.
	Lifetime time.Duration
	// RenewBefore: a cached ticket that ends within this is fetched again,
	// in the background while it is still valid; 0 means 5 minutes.
	RenewBefore time.Duration
	// Timeout bounds one KDC exchange over all KDCs; 0 means 5 seconds.
	Timeout time.Duration
	// FailureTTL: how long a refused request (unknown user, delegation
	// refused) is remembered before the KDC is asked again; 0 means 30 s.
	// KDC outages are never remembered.
	FailureTTL time.Duration
	// MaxEntries bounds the ticket cache (users x SPNs); 0 means 100000.
	MaxEntries int

	// Dial and Now replace net.Dialer and time.Now in tests.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	Now  func() time.Time
}

// Stats counts a Delegator's KDC exchanges.
type Stats struct {
	ASExchanges    uint64 // service-account TGTs fetched from the keytab
	S4UExchanges   uint64 // S4U2Self + S4U2Proxy pairs started
	CacheHits      uint64 // Authorization answered from a cached ticket
	Failures       uint64 // ticket requests that failed
	CachedTickets  int
	RemembersError int
}

// Delegator gets and caches service tickets in users' names. It is safe
// for concurrent use; Authorization blocks only when no valid ticket is
// cached, for at most the Timeout (or the context's deadline).
type Delegator struct {
	o   Options
	svc types.PrincipalName
	tr  kdcTransport
	p   tgsParams
	cfg *config.Config // for gokrb5's AS-REQ and AS-REP checks

	tgtMu sync.Mutex
	tgt   *tgtState

	mu      sync.Mutex
	entries map[key]*entry

	asN, s4uN, hits, fails atomic.Uint64
}

type key struct{ user, spn string }

// tgtState is the service account's TGT and its session key.
type tgtState struct {
	tkt   messages.Ticket
	key   types.EncryptionKey
	end   time.Time
	renew time.Time
}

// ticket is one service ticket in a user's name. It never changes once
// made: a renewal replaces the entry's pointer.
type ticket struct {
	ticketDER []byte // the ticket as sent in every AP-REQ
	key       types.EncryptionKey
	cname     types.PrincipalName // the user, for the authenticator
	crealm    string
	end       time.Time
	renew     time.Time // fetch again from here on
}

// entry is one user's ticket to one SPN, or the error that came instead,
// plus the fetch in flight (at most one). Its fields are guarded by
// Delegator.mu.
type entry struct {
	t *ticket // nil before the first good fetch

	err      *Error // the last fetch failed; remembered until errUntil
	errUntil time.Time

	flight chan struct{} // closed when the fetch in flight ends; nil when none
}

func (e *entry) valid(now time.Time) bool { return e.t != nil && now.Before(e.t.end) }

// New checks the options and builds a Delegator. No KDC is contacted.
func New(o Options) (*Delegator, error) {
	if o.Realm == "" || o.ServicePrincipal == "" || len(o.KDCs) == 0 || o.Keytab == nil {
		return nil, errors.New("kerberos: realm, kdcs, service_principal and keytab are required")
	}
	if strings.ContainsAny(o.ServicePrincipal, "@") {
		return nil, fmt.Errorf("kerberos: service principal %q: give the name without @REALM", o.ServicePrincipal)
	}
	if err := CheckKeytab(o.Keytab, o.ServicePrincipal, o.Realm); err != nil {
		return nil, err
	}
	if o.Lifetime <= 0 {
		o.Lifetime = 10 * time.Hour
	}
	if o.RenewBefore <= 0 {
		o.RenewBefore = 5 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.FailureTTL <= 0 {
		o.FailureTTL = 30 * time.Second
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 100000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Dial == nil {
		var d net.Dialer
		o.Dial = d.DialContext
	}
	d := &Delegator{
		o:       o,
		svc:     types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, o.ServicePrincipal),
		tr:      kdcTransport{kdcs: o.KDCs, dial: o.Dial},
		entries: map[key]*entry{},
	}
	d.p = tgsParams{realm: o.Realm, lifetime: o.Lifetime, etypes: keytabEtypes(o.Keytab, d.svc, o.Realm), now: o.Now}
	cfg := config.New()
	cfg.LibDefaults.DefaultRealm = o.Realm
	cfg.LibDefaults.NoAddresses = true
	cfg.LibDefaults.Forwardable = true
	cfg.LibDefaults.TicketLifetime = o.Lifetime
	cfg.LibDefaults.RenewLifetime = 0
	cfg.LibDefaults.DefaultTktEnctypeIDs = d.p.etypes
	cfg.LibDefaults.DefaultTGSEnctypeIDs = d.p.etypes
	d.cfg = cfg
	return d, nil
}

// Authorization returns the Authorization header value for a request in
// user's name to spn ("Negotiate " and a fresh SPNEGO token). user is the
// name part only (UserPrincipal); spn is "HTTP/cas.example.com". It
// fetches a ticket when none is cached (one fetch per user and SPN at a
// time; others wait for it) and starts a background fetch when the cached
// one is about to expire.
func (d *Delegator) Authorization(ctx context.Context, user, spn string) (string, error) {
	t, err := d.ticket(ctx, user, spn)
	if err != nil {
		return "", err
	}
	tok, err := negotiateToken(t)
	if err != nil {
		d.fails.Add(1)
		return "", &Error{Cause: CauseKDCError, Principal: user + "@" + d.o.Realm, Err: err}
	}
	return tok, nil
}

// Invalidate drops the cached ticket of user to spn (the CAS refused it):
// the next Authorization fetches a new one.
func (d *Delegator) Invalidate(user, spn string) {
	d.mu.Lock()
	if e, ok := d.entries[key{user, spn}]; ok && e.flight == nil {
		delete(d.entries, key{user, spn})
	}
	d.mu.Unlock()
}

// Stats returns the counters.
func (d *Delegator) Stats() Stats {
	d.mu.Lock()
	n, bad := 0, 0
	for _, e := range d.entries {
		if e.t != nil {
			n++
		}
		if e.err != nil {
			bad++
		}
	}
	d.mu.Unlock()
	return Stats{ASExchanges: d.asN.Load(), S4UExchanges: d.s4uN.Load(), CacheHits: d.hits.Load(), Failures: d.fails.Load(),
		CachedTickets: n, RemembersError: bad}
}

// ticket returns a valid cached ticket, fetching one when needed.
func (d *Delegator) ticket(ctx context.Context, user, spn string) (*ticket, error) {
	k := key{user, spn}
	for {
		now := d.o.Now()
		d.mu.Lock()
		e := d.entries[k]
		if e == nil {
			e = &entry{}
			d.evictLocked(now)
			d.entries[k] = e
		}
		if e.valid(now) {
			t := e.t
			if !now.Before(t.renew) && e.flight == nil {
				d.startFetchLocked(k, e) // renew in the background; this one is still good
			}
			d.mu.Unlock()
			d.hits.Add(1)
			return t, nil
		}
		if e.err != nil && now.Before(e.errUntil) {
			err := e.err
			d.mu.Unlock()
			return nil, err
		}
		if e.flight == nil {
			d.startFetchLocked(k, e)
		}
		wait := e.flight
		d.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, &Error{Cause: CauseKDCUnreachable, Principal: user + "@" + d.o.Realm, Err: ctx.Err()}
		}
		d.mu.Lock()
		cur, t, ferr := d.entries[k], e.t, e.err
		valid := e.valid(d.o.Now())
		d.mu.Unlock()
		switch {
		case cur != e:
			continue // dropped meanwhile (Invalidate, eviction): look again
		case valid:
			return t, nil
		case ferr != nil:
			return nil, ferr // this fetch failed; do not start another
		default:
			return nil, &Error{Cause: CauseKDCError, Principal: user + "@" + d.o.Realm, Err: errors.New("no valid ticket after the fetch")}
		}
	}
}

// startFetchLocked starts the one fetch of k (d.mu held).
func (d *Delegator) startFetchLocked(k key, e *entry) {
	done := make(chan struct{})
	e.flight = done
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), d.o.Timeout)
		r, err := d.fetch(ctx, k.user, k.spn)
		cancel()
		now := d.o.Now()
		d.mu.Lock()
		if err != nil {
			d.fails.Add(1)
			if !e.valid(now) { // keep a still-valid ticket through a failed renewal
				e.err = err
				e.errUntil = now
				if err.Cause != CauseKDCUnreachable {
					e.errUntil = now.Add(d.o.FailureTTL)
				}
			}
		} else {
			e.t, e.err = r, nil
		}
		e.flight = nil
		d.mu.Unlock()
		close(done)
	}()
}

// evictLocked makes room for one more entry (d.mu held): expired entries
// and remembered errors go first, then any.
func (d *Delegator) evictLocked(now time.Time) {
	if len(d.entries) < d.o.MaxEntries {
		return
	}
	for k, e := range d.entries {
		if e.flight == nil && !e.valid(now) {
			delete(d.entries, k)
		}
	}
	for k, e := range d.entries {
		if len(d.entries) < d.o.MaxEntries {
			return
		}
		if e.flight == nil {
			delete(d.entries, k)
		}
	}
}

// fetch does S4U2Self then S4U2Proxy for user to spn.
func (d *Delegator) fetch(ctx context.Context, user, spn string) (*ticket, *Error) {
	d.s4uN.Add(1)
	upn := user + "@" + d.o.Realm
	tgt, err := d.serviceTGT(ctx)
	if err != nil {
		return nil, err
	}
	u := userName(user)
	selfReq, e := newS4U2SelfReq(d.p, d.svc, tgt.tkt, tgt.key, u, d.o.Realm)
	if e != nil {
		return nil, classify(e, stageSelf, upn)
	}
	self, e := d.tgs(ctx, selfReq, tgt.key, u)
	if e != nil {
		return nil, classify(e, stageSelf, upn)
	}
	if !types.IsFlagSet(&self.DecryptedEncPart.Flags, flags.Forwardable) {
		return nil, classify(errNotForwardable, stageSelf, upn)
	}
	target := types.NewPrincipalName(nametype.KRB_NT_SRV_INST, spn)
	proxyReq, e := newS4U2ProxyReq(d.p, d.svc, tgt.tkt, tgt.key, self.Ticket, target)
	if e != nil {
		return nil, classify(e, stageProxy, spn)
	}
	rep, e := d.tgs(ctx, proxyReq, tgt.key, u)
	if e != nil {
		err := classify(e, stageProxy, spn)
		err.Principal = upn + " to " + spn
		return nil, err
	}
	p := rep.DecryptedEncPart
	now := d.o.Now()
	if !p.EndTime.After(now) {
		return nil, &Error{Cause: CauseClockSkew, Principal: upn + " to " + spn,
			Err: fmt.Errorf("the KDC issued a ticket ending %s, already past by this machine's clock", p.EndTime.UTC().Format(time.RFC3339))}
	}
	der, merr := rep.Ticket.Marshal()
	if merr != nil {
		return nil, &Error{Cause: CauseKDCError, Principal: upn + " to " + spn, Err: fmt.Errorf("encoding the ticket: %w", merr)}
	}
	return &ticket{ticketDER: der, key: p.Key, cname: rep.CName, crealm: rep.CRealm, end: p.EndTime,
		renew: renewAt(now, p.EndTime, d.o.RenewBefore)}, nil
}

// renewAt is when a ticket valid until end should be fetched again: the
// renew-before margin ahead of its end, but not in the first half of a
// short life.
func renewAt(now, end time.Time, before time.Duration) time.Time {
	life := end.Sub(now)
	if before > life/2 {
		before = life / 2
	}
	return end.Add(-before)
}

// tgs sends one S4U TGS-REQ and checks its reply is for want.
func (d *Delegator) tgs(ctx context.Context, req messages.TGSReq, tgtKey types.EncryptionKey, want types.PrincipalName) (*messages.TGSRep, error) {
	b, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	rb, err := d.tr.exchange(ctx, b)
	if err != nil {
		return nil, err
	}
	var rep messages.TGSRep
	if err := safeUnmarshal(func() error { return rep.Unmarshal(rb) }); err != nil {
		return nil, fmt.Errorf("reading the TGS-REP: %w", err)
	}
	if err := checkS4UReply(&rep, req, tgtKey, want, d.o.Realm); err != nil {
		return nil, err
	}
	return &rep, nil
}

// serviceTGT returns the service account's TGT, getting a new one from the
// keytab (AS exchange, RFC 4120 section 3.1) when there is none or it is
// close to its end. One AS exchange at a time.
func (d *Delegator) serviceTGT(ctx context.Context) (*tgtState, *Error) {
	d.tgtMu.Lock()
	defer d.tgtMu.Unlock()
	now := d.o.Now()
	if t := d.tgt; t != nil && now.Before(t.renew) {
		return t, nil
	}
	t, err := d.asExchange(ctx)
	if err != nil {
		if old := d.tgt; old != nil && now.Before(old.end) {
			return old, nil // the KDC failed a renewal: the old TGT still works
		}
		return nil, classify(err, stageAS, d.o.ServicePrincipal+"@"+d.o.Realm)
	}
	d.tgt = t
	return t, nil
}

// asExchange gets a TGT with PA-ENC-TIMESTAMP pre-authentication (RFC 4120
// section 5.2.7.2) using the keytab's strongest key, as Active Directory
// requires pre-authentication.
func (d *Delegator) asExchange(ctx context.Context) (*tgtState, error) {
	d.asN.Add(1)
	req, err := messages.NewASReqForTGT(d.o.Realm, d.cfg, d.svc)
	if err != nil {
		return nil, err
	}
	etype := d.p.etypes[0]
	k, kvno, err := d.o.Keytab.GetEncryptionKey(d.svc, d.o.Realm, 0, etype)
	if err != nil {
		return nil, err
	}
	ts, err := types.GetPAEncTSEncAsnMarshalled()
	if err != nil {
		return nil, err
	}
	enc, err := crypto.GetEncryptedData(ts, k, keyusage.AS_REQ_PA_ENC_TIMESTAMP, kvno)
	if err != nil {
		return nil, err
	}
	eb, err := enc.Marshal()
	if err != nil {
		return nil, err
	}
	req.PAData = append(req.PAData, types.PAData{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: eb})
	b, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	rb, err := d.tr.exchange(ctx, b)
	if err != nil {
		return nil, err
	}
	var rep messages.ASRep
	if err := safeUnmarshal(func() error { return rep.Unmarshal(rb) }); err != nil {
		return nil, fmt.Errorf("reading the AS-REP: %w", err)
	}
	creds := credentials.New(d.o.ServicePrincipal, d.o.Realm).WithKeytab(d.o.Keytab)
	if ok, err := rep.Verify(d.cfg, creds, req); !ok {
		return nil, fmt.Errorf("the AS-REP is not valid: %w", err)
	}
	p := rep.DecryptedEncPart
	if !p.EndTime.After(d.o.Now()) {
		return nil, &Error{Cause: CauseClockSkew, Err: fmt.Errorf("the KDC issued a TGT ending %s, already past by this machine's clock", p.EndTime.UTC().Format(time.RFC3339))}
	}
	return &tgtState{tkt: rep.Ticket, key: p.Key, end: p.EndTime, renew: renewAt(d.o.Now(), p.EndTime, d.o.RenewBefore)}, nil
}

// safeUnmarshal runs a gokrb5 decoder on bytes from the network and turns
// a panic of its reflection-based ASN.1 code into an error: a reply that
// cannot be read is refused, whatever it holds.
func safeUnmarshal(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed reply (%v)", p)
		}
	}()
	return f()
}

// keytabEtypes are the acceptable enctypes of the principal's keys in the
// keytab, strongest first.
func keytabEtypes(kt *keytab.Keytab, p types.PrincipalName, realm string) []int32 {
	var out []int32
	for _, et := range acceptableEtypes {
		if _, _, err := kt.GetEncryptionKey(p, realm, 0, et); err == nil {
			out = append(out, et)
		}
	}
	return out
}

// acceptableEtypes, strongest first. DES and the export ciphers are not
// accepted; RC4 (arcfour-hmac) is, as old Active Directory accounts still
// have only that.
var acceptableEtypes = []int32{
	etypeID.AES256_CTS_HMAC_SHA384_192,
	etypeID.AES128_CTS_HMAC_SHA256_128,
	etypeID.AES256_CTS_HMAC_SHA1_96,
	etypeID.AES128_CTS_HMAC_SHA1_96,
	etypeID.RC4_HMAC,
}

// LoadKeytab reads a keytab file.
func LoadKeytab(path string) (*keytab.Keytab, error) {
	kt, err := keytab.Load(path)
	if err != nil {
		return nil, fmt.Errorf("kerberos: keytab %s: %w", path, err)
	}
	return kt, nil
}

// CheckKeytab reports whether kt holds a key of an acceptable enctype for
// principal@realm, and names the enctypes it found otherwise.
func CheckKeytab(kt *keytab.Keytab, principal, realm string) error {
	p := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, principal)
	if len(keytabEtypes(kt, p, realm)) > 0 {
		return nil
	}
	var found []string
	for _, e := range kt.Entries {
		name := strings.Join(e.Principal.Components, "/") + "@" + e.Principal.Realm
		found = append(found, fmt.Sprintf("%s (enctype %d)", name, e.Key.KeyType))
	}
	if len(found) == 0 {
		return fmt.Errorf("kerberos: the keytab is empty; export the keys of %s@%s", principal, realm)
	}
	return fmt.Errorf("kerberos: the keytab has no AES or RC4 key for %s@%s; it has %s", principal, realm, strings.Join(found, ", "))
}

// UserPrincipal maps an authenticated identity to the user name part of a
// Kerberos principal in realm: "alice@corp.test" and "CORP\alice" both
// give "alice" (the user part with the configured realm, not the whole
// UPN as an enterprise name: the KDC does not canonicalise). A name that
// would not be one plain component (empty, or with '/', '@', '\' or a
// control character left) is refused: no KDC is asked.
func UserPrincipal(identity []byte) (string, error) {
	u := identity
	if i := lastIndexByte(u, '@'); i >= 0 {
		u = u[:i]
	} else if i := lastIndexByte(u, '\\'); i >= 0 {
		u = u[i+1:]
	}
	if len(u) == 0 || len(u) > 256 {
		return "", &Error{Cause: CauseBadUser, Err: errors.New("empty or too long user name")}
	}
	for _, c := range u {
		if c < 0x20 || c == 0x7f || c == '/' || c == '@' || c == '\\' {
			return "", &Error{Cause: CauseBadUser, Err: fmt.Errorf("user name %q cannot be a Kerberos principal", u)}
		}
	}
	return string(u), nil
}

func lastIndexByte(b []byte, c byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == c {
			return i
		}
	}
	return -1
}
