package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"hash"
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/config"
)

// BucketLockout is the policy.Store bucket holding the shield's counters.
const BucketLockout = "lockout"

// Limits of the shield's memory.
const (
	// DefaultMaxEntries bounds the entries (user+device, user+address,
	// address, per-user counters and digest sets, and, with
	// auth.lockout.user_failures on, one per device that had a real success
	// within GoodFor) kept in memory. Evicting a known device only costs it
	// the exception to a per-user lock.
	DefaultMaxEntries = 1 << 17
	// maxFailuresTracked bounds the timestamps kept per counter (and so the
	// configurable auth.lockout.failures).
	maxFailuresTracked = config.MaxLockoutFailures
	// maxSprayUsersTracked bounds the distinct users remembered per address.
	maxSprayUsersTracked = 1000
	// maxDigests is how many recently failed passwords are remembered per
	// user (newest kept).
	maxDigests = 8
	// StaleAfter is how many CAS 401s the same password of a user must get
	// within the window before Allow refuses it locally. One is not
	// enough: a single 401 to a right password happens (a domain
	// controller briefly unreachable, an account unlocked a moment later),
	// and refusing that password for the whole window would lock the user
	// out; two identical failures are a stale password.
	StaleAfter = 2
	// GoodFor is how long the digest of a password that got a real success
	// on a device is remembered (from its last success). It is longer than
	// Exchange's longest Ping heartbeat (59 minutes), so a push phone that
	// was idle between two heartbeats is still known when its user is locked.
	GoodFor = 2 * time.Hour
	// goodMisses is how many other passwords a known device may send while
	// its user is locked before its known-good digest is forgotten: a
	// guesser that learned the DeviceId gets at most this many local
	// comparisons, a user who mistypes once or twice keeps the device.
	goodMisses = 3
	// StatusNeedsProvisioning is the EAS HTTP status 449 ("Retry after
	// sending a Provision command"). It counts as a success: see Record.
	StatusNeedsProvisioning = 449
	// evictSample is how many entries a full shard examines to pick one to
	// evict.
	evictSample = 16
	shardCount  = 32
)

type kind uint8

const (
	kindUserDevice kind = iota + 1 // CAS 401s of one user on one device
	kindUserAddr                   // CAS 401s of one user from one client address
	kindAddr                       // distinct users failing from one address (spraying)
	kindUser                       // digests of the user's recently failed passwords (memory only)
	kindUserAll                    // CAS 401s of one user summed over all devices and addresses
	kindGood                       // digest of the password that last got a real success on one user+device (memory only)
)

// kindNames are the kinds of the persisted records ("kind" in the store);
// kindUser and kindGood are never written.
var kindNames = [...]string{kindUserDevice: "user_device", kindUserAddr: "user_addr", kindAddr: "addr",
	kindUser: "digests", kindUserAll: "user", kindGood: "good"}

// entry is one counter. Its fields are guarded by its shard's lock.
type entry struct {
	kind   kind
	user   string     // lower-cased user part (eas.SplitUser), "" for kindAddr
	device string     // kindUserDevice
	addr   netip.Addr // kindUserAddr, kindAddr (normalised, see normAddr)
	key    string     // store key

	fails   []int64    // unix ns of counted CAS 401s in the window, oldest first
	until   int64      // unix ns: locked (user kinds) or blocked (kindAddr) until
	users   []userMark // kindAddr: distinct users that failed, oldest first
	digests []digestAt // kindUser: recently failed password digests, oldest first
	good    digestAt   // kindGood: the password's digest, its last success, n = misses while locked
	seen    int64      // last change, for eviction
}

type userMark struct {
	user string
	at   int64
}

type digestAt struct {
	sum [sha256.Size]byte
	at  int64 // last failure
	n   uint8 // failures within the window, up to StaleAfter
}

type shard struct {
	mu sync.RWMutex
	m  map[uint64]*entry
}

// ShieldOptions tune a Shield beyond the configuration file.
type ShieldOptions struct {
	// Store persists the counters (bucket "lockout"); nil keeps them in
	// memory only.
	Store policy.Store
	// MaxEntries bounds memory (default DefaultMaxEntries). A full shard
	// drops expired entries first, then the least recently changed known
	// device, then the least recently changed unlocked counter.
	MaxEntries int
	// Now is the clock used by Flush, Load and Stats (default time.Now);
	// Allow and Record take the time as an argument.
	Now func() time.Time
	// FullNames keys users by the whole name handed in, which is then the
	// canonical user@domain of auth.domains: alice@corp and alice@partner
	// are two accounts with two budgets. Without it (no auth.domains, where
	// "CORP\jdoe" and "jdoe@corp.example.com" are two spellings of one
	// account) users are keyed by their user part.
	FullNames bool
}

// Shield is the lockout shield in front of the CAS. It is safe for
// concurrent use.
//
// What it keeps; failures are only 401s from the CAS to requests that
// carried a password (a 401 to a request without one guesses nothing):
//
//   - per user+device and per user+client address: auth.lockout.failures
//     401s within auth.lockout.window lock that pair for
//     auth.lockout.backoff; while locked, Allow refuses without asking the
//     CAS. The address counter stops a guesser that rotates DeviceIds, the
//     device counter one that rotates addresses.
//   - per user, over all devices and addresses: auth.lockout.user_failures
//     401s within the window lock the user for the backoff on every device
//     and address, so rotating both DeviceIds and addresses no longer buys
//     unlimited guesses. A success does not reset this counter (the user's
//     own phone syncing would otherwise refill a guesser's budget): it
//     forgets failures only as they leave the window. This lets anyone who
//     knows a user name lock that user out of mail for the backoff, the
//     trade-off Active Directory's own lockout makes; the exception below
//     keeps the user's phones that already work working.
//   - per user+device, the digest of the password that last got a real
//     success there (memory only, for GoodFor). While the user is locked,
//     a request from that device with exactly that password still goes to
//     the CAS: it is not a guess, the CAS accepted it recently. Any other
//     password from the device is refused locally and counted as a miss;
//     goodMisses misses forget the device, so a guesser who knows the
//     DeviceId gets a few local comparisons, never the CAS. A 401 to the
//     remembered password (changed in the directory) forgets it too.
//   - per user: HMAC-SHA256 digests (key random per process, never the
//     password itself) of the last few passwords the CAS refused, kept for
//     the window. Once the same password has failed StaleAfter (2) times it
//     is refused locally and not counted again, so a phone retrying an old
//     password after a password change costs Active Directory two bad
//     attempts instead of locking the account; a new password goes to the
//     CAS and counts normally.
//   - per client address: the distinct users failing from it within
//     auth.lockout.spray_window; auth.lockout.spray_users of them block the
//     address for auth.lockout.spray_block (password spraying).
//
// Users are compared by the user part of their login (eas.SplitUser, ASCII
// case ignored), so "CORP\jdoe", "jdoe@corp.example.com" and "JDoe" share
// one budget and switching forms does not buy more guesses. IPv6 client
// addresses are grouped by /64, the smallest block a client usually owns.
//
// Only a real success resets the user+device and user+address counters: a
// 2xx (or 449, see Record) answer to an ActiveSync command (RouteEAS).
// Autodiscover answers, OPTIONS, 3xx, 403, 404, 451 and the rest neither
// reset nor count; 5xx answers and transport errors change nothing either.
//
// Counters, locks and address blocks are written to the Store in batches by
// Flush and read back by Load, so a restart does not reset them. Digests are
// not persisted (their key dies with the process): after a restart a stale
// password reaches the CAS once more and is counted, and a locked user's
// phones wait for the backoff like any other device.
type Shield struct {
	failures     int
	userFailures int
	window       int64
	backoff      int64
	sprayUsers   int
	sprayWindow  int64
	sprayBlock   int64
	perShard     int
	fullNames    bool // ShieldOptions.FullNames

	seed   maphash.Seed
	shards [shardCount]shard
	n      atomic.Int64 // entries in all shards
	store  policy.Store
	now    func() time.Time
	macs   sync.Pool // *digester

	dirtyMu sync.Mutex
	dirty   map[uint64]string // entry hash -> store key, changed since the last Flush
}

type digester struct {
	h   hash.Hash
	sum [sha256.Size]byte
	buf [64]byte // lower-cased user bytes (a field: a stack array would escape through h.Write)
}

// NewShield builds a Shield from auth.lockout. Failures 0 disables the
// user+device and user+address counters and the digests; UserFailures 0
// disables the per-user cap (and the known-good digests that go with it);
// SprayUsers 0 disables spray detection. Call Load to restore persisted
// counters.
func NewShield(cfg config.Lockout, opts ShieldOptions) (*Shield, error) {
	s := &Shield{
		fullNames:    opts.FullNames,
		failures:     cfg.Failures,
		userFailures: cfg.UserFailures,
		window:       int64(cfg.Window.D()),
		backoff:      int64(cfg.Backoff.D()),
		sprayUsers:   cfg.SprayUsers,
		sprayWindow:  int64(cfg.SprayWindow.D()),
		sprayBlock:   int64(cfg.SprayBlock.D()),
		seed:         maphash.MakeSeed(),
		store:        opts.Store,
		now:          opts.Now,
		dirty:        map[uint64]string{},
	}
	switch {
	case s.failures < 0 || s.failures > maxFailuresTracked:
		return nil, fmt.Errorf("auth: lockout.failures %d: want 0 (off) to %d", s.failures, maxFailuresTracked)
	case s.failures > 0 && (s.window <= 0 || s.backoff <= 0):
		return nil, fmt.Errorf("auth: lockout.window and lockout.backoff must be positive when lockout.failures is set")
	case s.userFailures < 0 || s.userFailures > maxFailuresTracked:
		return nil, fmt.Errorf("auth: lockout.user_failures %d: want 0 (off) to %d", s.userFailures, maxFailuresTracked)
	case s.userFailures > 0 && (s.window <= 0 || s.backoff <= 0):
		return nil, fmt.Errorf("auth: lockout.window and lockout.backoff must be positive when lockout.user_failures is set")
	case s.sprayUsers < 0 || s.sprayUsers > maxSprayUsersTracked:
		return nil, fmt.Errorf("auth: lockout.spray_users %d: want 0 (off) to %d", s.sprayUsers, maxSprayUsersTracked)
	case s.sprayUsers > 0 && (s.sprayWindow <= 0 || s.sprayBlock <= 0):
		return nil, fmt.Errorf("auth: lockout.spray_window and lockout.spray_block must be positive when lockout.spray_users is set")
	case opts.MaxEntries < 0:
		return nil, fmt.Errorf("auth: shield max entries %d must not be negative", opts.MaxEntries)
	}
	if s.now == nil {
		s.now = time.Now
	}
	maxEntries := opts.MaxEntries
	if maxEntries == 0 {
		maxEntries = DefaultMaxEntries
	}
	s.perShard = max(maxEntries/shardCount, 1)
	for i := range s.shards {
		s.shards[i].m = map[uint64]*entry{}
	}
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, fmt.Errorf("auth: digest key: %w", err)
	}
	s.macs.New = func() any { return &digester{h: hmac.New(sha256.New, key[:])} }
	return s, nil
}

// Enabled reports whether any counting is configured.
func (s *Shield) Enabled() bool { return s.failures > 0 || s.userFailures > 0 || s.sprayUsers > 0 }

// limit is the number of failures that locks an entry of kind k.
func (s *Shield) limit(k kind) int {
	if k == kindUserAll {
		return s.userFailures
	}
	return s.failures
}

// normAddr unmaps IPv4-in-IPv6 and reduces IPv6 to its /64.
func normAddr(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// key is the name a user's counters are kept under (ShieldOptions.FullNames).
func (s *Shield) key(user []byte) []byte {
	if s.fullNames {
		return user
	}
	return userPart(user)
}

func userPart(user []byte) []byte {
	u, _ := eas.SplitUser(user)
	return u
}

func (s *Shield) hash(k kind, u, dev []byte, addr netip.Addr) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteByte(byte(k))
	for _, c := range u {
		h.WriteByte(lower(c))
	}
	h.WriteByte(0)
	h.Write(dev)
	if addr.IsValid() {
		a := addr.As16()
		h.Write(a[:])
	}
	return h.Sum64()
}

func (e *entry) is(k kind, u, dev []byte, addr netip.Addr) bool {
	if e.kind != k || len(e.user) != len(u) || e.device != string(dev) || e.addr != addr {
		return false
	}
	for i := range u {
		if e.user[i] != lower(u[i]) {
			return false
		}
	}
	return true
}

func (s *Shield) shardOf(h uint64) *shard { return &s.shards[h%shardCount] }

// lockedUntil returns the entry's until (0 when absent).
func (s *Shield) lockedUntil(k kind, u, dev []byte, addr netip.Addr) int64 {
	h := s.hash(k, u, dev, addr)
	sh := s.shardOf(h)
	sh.mu.RLock()
	var until int64
	if e, ok := sh.m[h]; ok && e.is(k, u, dev, addr) {
		until = e.until
	}
	sh.mu.RUnlock()
	return until
}

// Allow reports whether a request may go to the CAS. user is the login
// (Basic user, else the EAS User), device the DeviceId, addr the client
// address (the zero Addr skips the address checks) and password the Basic
// password (nil without one; it is only digested, never stored). When ok is
// false the caller answers 401 itself and does not call Record.
//
// While the user is locked across devices (ReasonUserLockout), a device
// whose known-good password this is goes through; a different password
// from it counts a miss (see Shield), so Allow may change the shield.
//
// Allow does not allocate when nothing is on record for this user, device
// and address, nor when it compares a known device's password.
func (s *Shield) Allow(user, device []byte, addr netip.Addr, password []byte, now time.Time) (ok bool, reason Reason) {
	if s.n.Load() == 0 {
		return true, ""
	}
	t := now.UnixNano()
	addr = normAddr(addr)
	if s.sprayUsers > 0 && addr.IsValid() && s.lockedUntil(kindAddr, nil, nil, addr) > t {
		return false, ReasonSprayBlock
	}
	u := s.key(user)
	if s.failures > 0 {
		if s.lockedUntil(kindUserDevice, u, device, netip.Addr{}) > t {
			return false, ReasonLockout
		}
		if addr.IsValid() && s.lockedUntil(kindUserAddr, u, nil, addr) > t {
			return false, ReasonLockout
		}
		if len(password) > 0 && s.isStale(u, password, t) {
			return false, ReasonStalePassword
		}
	}
	if s.userFailures > 0 && s.lockedUntil(kindUserAll, u, nil, netip.Addr{}) > t && !s.knownGood(u, device, password, t) {
		return false, ReasonUserLockout
	}
	return true, ""
}

// knownGood reports whether password is the one that last got a real
// success for the user on device within GoodFor. Only then is a digest
// computed; a different password counts a miss, and goodMisses of them
// forget the device.
func (s *Shield) knownGood(u, device, password []byte, t int64) bool {
	if len(device) == 0 || len(password) == 0 || len(u) == 0 {
		return false
	}
	h := s.hash(kindGood, u, device, netip.Addr{})
	sh := s.shardOf(h)
	sh.mu.RLock()
	e, ok := sh.m[h]
	ok = ok && e.is(kindGood, u, device, netip.Addr{}) && e.good.at > t-int64(GoodFor)
	sh.mu.RUnlock()
	if !ok {
		return false
	}
	d := s.digest(u, password)
	match := false
	sh.mu.Lock()
	if e, ok := sh.m[h]; ok && e.is(kindGood, u, device, netip.Addr{}) && e.good.at > t-int64(GoodFor) {
		if subtle.ConstantTimeCompare(e.good.sum[:], d.sum[:]) == 1 {
			match = true
		} else if e.good.n++; e.good.n >= goodMisses {
			delete(sh.m, h)
			s.n.Add(-1)
		}
	}
	sh.mu.Unlock()
	s.macs.Put(d)
	return match
}

// isStale reports whether password is among the user's recently failed
// ones. The digest is computed only when the user has a stale one on record.
func (s *Shield) isStale(u, password []byte, t int64) bool {
	h := s.hash(kindUser, u, nil, netip.Addr{})
	sh := s.shardOf(h)
	sh.mu.RLock()
	e, ok := sh.m[h]
	live := false
	if ok && e.is(kindUser, u, nil, netip.Addr{}) {
		for i := range e.digests {
			if e.digests[i].n >= StaleAfter && e.digests[i].at > t-s.window {
				live = true
				break
			}
		}
	}
	sh.mu.RUnlock()
	if !live {
		return false
	}
	d := s.digest(u, password)
	stale := false
	sh.mu.RLock()
	if e, ok := sh.m[h]; ok && e.is(kindUser, u, nil, netip.Addr{}) {
		for i := range e.digests {
			if e.digests[i].at > t-s.window && e.digests[i].n >= StaleAfter &&
				subtle.ConstantTimeCompare(e.digests[i].sum[:], d.sum[:]) == 1 {
				stale = true
				break
			}
		}
	}
	sh.mu.RUnlock()
	s.macs.Put(d)
	return stale
}

// digest returns a pooled digester holding HMAC(key, lower(user) 0 password).
// The caller puts it back.
func (s *Shield) digest(u, password []byte) *digester {
	d := s.macs.Get().(*digester)
	d.h.Reset()
	for len(u) > 0 {
		n := min(len(u), len(d.buf))
		for i := 0; i < n; i++ {
			d.buf[i] = lower(u[i])
		}
		d.h.Write(d.buf[:n])
		u = u[n:]
	}
	d.buf[0] = 0
	d.h.Write(d.buf[:1])
	d.h.Write(password)
	d.h.Sum(d.sum[:0])
	return d
}

// Digest is a keyed digest of one user's password, for RecordDigest when
// the caller cannot keep the password until the CAS answers. The zero
// Digest means "no password". It is useless outside this process (the key
// is random per Shield) and compares only within one user.
type Digest struct {
	sum [sha256.Size]byte
	set bool
}

// IsZero reports whether d stands for "no password".
func (d Digest) IsZero() bool { return !d.set }

// Digest computes the digest Record would keep for user's password (the
// zero Digest for an empty password or user part). It costs one
// HMAC-SHA256 and does not allocate.
func (s *Shield) Digest(user, password []byte) Digest {
	u := s.key(user)
	if len(password) == 0 || len(u) == 0 {
		return Digest{}
	}
	d := s.digest(u, password)
	out := Digest{sum: d.sum, set: true}
	s.macs.Put(d)
	return out
}

// Route says what kind of request the CAS answered, for Record: only an
// ActiveSync command can prove a password right.
type Route uint8

// Routes.
const (
	RouteOther        Route = iota // OPTIONS or anything else: only a 401 counts
	RouteEAS                       // an ActiveSync command (not OPTIONS)
	RouteAutodiscover              // /autodiscover/autodiscover.xml: only a 401 counts
)

type outcome uint8

const (
	outcomeNone    outcome = iota // proves nothing: no counter changes
	outcomeFailure                // a 401: the password (if any) was refused
	outcomeSuccess                // the CAS accepted the password
)

// classify decides what a CAS answer proves about the password.
//
// Only a 2xx answer to an ActiveSync command is a success. Autodiscover is
// not: a CAS (or a load balancer in front of it) may answer it 404, 302 or
// even 200 before checking the password. A 449 to an ActiveSync command
// also counts: Exchange's ActiveSync handler produces it ("send Provision
// first") and IIS runs that handler only for an authenticated user, so the
// password worked; refusing to count it would lock out a phone that keeps
// failing its provisioning. A 451 (mailbox on another server) proves as
// much but is rare and is followed by a request elsewhere, so it is left
// neutral. A 403 may be Exchange refusing a device or a disabled user, or
// IIS refusing before authentication (403.4 SSL required, an IP
// restriction): it is neutral, as are 3xx, 404 and every 5xx. A 401
// counts as a failure on any route (Autodiscover is where sprays go).
func classify(route Route, status int) outcome {
	switch {
	case status == 401:
		return outcomeFailure
	case route != RouteEAS:
		return outcomeNone
	case status >= 200 && status < 300, status == StatusNeedsProvisioning:
		return outcomeSuccess
	}
	return outcomeNone
}

// Record tells the shield how the CAS answered a request that Allow let
// through: route is what the request was, status the CAS's HTTP status (0
// when there was no answer). Only 401s to requests with a password count
// as failures and only real successes reset; see Shield. A real success is
// a 2xx to an ActiveSync command, or a 449 (StatusNeedsProvisioning), which
// Exchange's ActiveSync handler sends only after IIS has authenticated the
// user. The password is digested for a 401, and for a success when the
// per-user cap is on (the device's known-good password).
func (s *Shield) Record(user, device []byte, addr netip.Addr, password []byte, route Route, status int, now time.Time) {
	if !s.Enabled() {
		return
	}
	var d Digest
	switch classify(route, status) {
	case outcomeFailure:
		d = s.Digest(user, password)
	case outcomeSuccess:
		if s.userFailures > 0 && len(device) > 0 {
			d = s.Digest(user, password)
		}
	default:
		return
	}
	s.RecordDigest(user, device, addr, d, route, status, now)
}

// RecordDigest is Record with the password already digested (Shield.Digest).
func (s *Shield) RecordDigest(user, device []byte, addr netip.Addr, d Digest, route Route, status int, now time.Time) {
	if !s.Enabled() {
		return
	}
	t := now.UnixNano()
	addr = normAddr(addr)
	u := s.key(user)
	switch classify(route, status) {
	case outcomeFailure:
		if !d.set || len(u) == 0 {
			return
		}
		if s.failures > 0 {
			s.countFailure(kindUserDevice, u, device, netip.Addr{}, t)
			if addr.IsValid() {
				s.countFailure(kindUserAddr, u, nil, addr, t)
			}
			s.addDigest(u, d.sum, t)
		}
		if s.userFailures > 0 {
			s.countFailure(kindUserAll, u, nil, netip.Addr{}, t)
			s.forgetGood(u, device, d.sum)
		}
		if s.sprayUsers > 0 && addr.IsValid() {
			s.countSpray(u, addr, t)
		}
	case outcomeSuccess:
		if len(u) == 0 {
			return
		}
		if s.failures > 0 && s.n.Load() > 0 {
			s.reset(kindUserDevice, u, device, netip.Addr{})
			if addr.IsValid() {
				s.reset(kindUserAddr, u, nil, addr)
			}
		}
		if s.userFailures > 0 && d.set && len(device) > 0 {
			s.rememberGood(u, device, d.sum, t)
		}
	}
}

// rememberGood keeps the digest of the password that just got a real
// success on this user+device. The misses survive a success with the same
// password, so a guesser cannot refill them by waiting for the user's own
// phone to sync.
func (s *Shield) rememberGood(u, device []byte, sum [sha256.Size]byte, t int64) {
	_, sh, e := s.getOrCreate(kindGood, u, device, netip.Addr{}, t)
	if e.good.sum != sum {
		e.good = digestAt{sum: sum}
	}
	e.good.at = t
	e.seen = t
	sh.mu.Unlock()
}

// forgetGood drops the device's known-good digest when the CAS refused
// that very password (changed or expired in the directory).
func (s *Shield) forgetGood(u, device []byte, sum [sha256.Size]byte) {
	if len(device) == 0 {
		return
	}
	h := s.hash(kindGood, u, device, netip.Addr{})
	sh := s.shardOf(h)
	sh.mu.Lock()
	if e, ok := sh.m[h]; ok && e.is(kindGood, u, device, netip.Addr{}) &&
		subtle.ConstantTimeCompare(e.good.sum[:], sum[:]) == 1 {
		delete(sh.m, h)
		s.n.Add(-1)
	}
	sh.mu.Unlock()
}

// getOrCreate returns the entry for the key with its shard locked for
// writing; the caller unlocks sh.mu.
func (s *Shield) getOrCreate(k kind, u, dev []byte, addr netip.Addr, t int64) (h uint64, sh *shard, e *entry) {
	h = s.hash(k, u, dev, addr)
	sh = s.shardOf(h)
	sh.mu.Lock()
	if e, ok := sh.m[h]; ok && e.is(k, u, dev, addr) {
		return h, sh, e
	}
	if _, ok := sh.m[h]; !ok && len(sh.m) >= s.perShard {
		s.evictLocked(sh, t)
	}
	e = &entry{kind: k, user: lowerString(u), device: string(dev), addr: addr}
	e.key = storeKey(e)
	if old, ok := sh.m[h]; ok {
		s.markDirty(h, old.key) // a 64-bit hash collision: the newcomer wins
	} else {
		s.n.Add(1)
	}
	sh.m[h] = e
	return h, sh, e
}

func lowerString(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = lower(c)
	}
	return string(out)
}

func storeKey(e *entry) string {
	switch e.kind {
	case kindUserDevice:
		return "ud\x00" + e.user + "\x00" + e.device
	case kindUserAddr:
		return "ua\x00" + e.user + "\x00" + e.addr.String()
	case kindAddr:
		return "ad\x00" + e.addr.String()
	case kindUserAll:
		return "us\x00" + e.user
	}
	return "" // kindUser and kindGood are never stored
}

func (s *Shield) countFailure(k kind, u, dev []byte, addr netip.Addr, t int64) {
	limit := s.limit(k)
	h, sh, e := s.getOrCreate(k, u, dev, addr, t)
	e.fails = prune(e.fails, t-s.window)
	if len(e.fails) >= limit {
		e.fails = e.fails[1:]
	}
	e.fails = append(e.fails, t)
	if len(e.fails) >= limit {
		// Lock and start a fresh budget for after the backoff.
		e.until = t + s.backoff
		e.fails = e.fails[:0]
	}
	e.seen = t
	sh.mu.Unlock()
	s.markDirty(h, e.key)
}

// prune drops timestamps at or before cutoff (ts is ascending), in place.
func prune(ts []int64, cutoff int64) []int64 {
	i := 0
	for i < len(ts) && ts[i] <= cutoff {
		i++
	}
	if i == 0 {
		return ts
	}
	n := copy(ts, ts[i:])
	return ts[:n]
}

func (s *Shield) addDigest(u []byte, sum [sha256.Size]byte, t int64) {
	_, sh, e := s.getOrCreate(kindUser, u, nil, netip.Addr{}, t)
	kept := e.digests[:0]
	var n uint8 = 1
	for _, x := range e.digests {
		switch {
		case x.at <= t-s.window:
		case x.sum == sum:
			n = min(x.n+1, StaleAfter) // moved to the end below
		default:
			kept = append(kept, x)
		}
	}
	if len(kept) >= maxDigests {
		kept = append(kept[:0], kept[len(kept)-maxDigests+1:]...)
	}
	e.digests = append(kept, digestAt{sum: sum, at: t, n: n})
	e.seen = t
	sh.mu.Unlock()
}

func (s *Shield) countSpray(u []byte, addr netip.Addr, t int64) {
	h, sh, e := s.getOrCreate(kindAddr, nil, nil, addr, t)
	cut := t - s.sprayWindow
	kept := e.users[:0]
	name := ""
	for _, m := range e.users {
		if m.at <= cut {
			continue
		}
		if equalFoldLower(m.user, u) {
			name = m.user // moved to the end with the new time
			continue
		}
		kept = append(kept, m)
	}
	if len(kept) >= maxSprayUsersTracked {
		kept = append(kept[:0], kept[1:]...)
	}
	if name == "" {
		name = lowerString(u)
	}
	e.users = append(kept, userMark{user: name, at: t})
	if len(e.users) >= s.sprayUsers {
		e.until = t + s.sprayBlock
		e.users = e.users[:0]
	}
	e.seen = t
	sh.mu.Unlock()
	s.markDirty(h, e.key)
}

// equalFoldLower compares a lower-cased string with bytes ignoring ASCII case.
func equalFoldLower(l string, b []byte) bool {
	if len(l) != len(b) {
		return false
	}
	for i := range b {
		if l[i] != lower(b[i]) {
			return false
		}
	}
	return true
}

func (s *Shield) reset(k kind, u, dev []byte, addr netip.Addr) {
	h := s.hash(k, u, dev, addr)
	sh := s.shardOf(h)
	sh.mu.RLock()
	e, ok := sh.m[h]
	ok = ok && e.is(k, u, dev, addr)
	sh.mu.RUnlock()
	if !ok {
		return
	}
	sh.mu.Lock()
	e, ok = sh.m[h]
	if ok && e.is(k, u, dev, addr) {
		delete(sh.m, h)
		s.n.Add(-1)
	}
	sh.mu.Unlock()
	if ok {
		s.markDirty(h, e.key)
	}
}

func (s *Shield) markDirty(h uint64, key string) {
	if key == "" || s.store == nil {
		return
	}
	s.dirtyMu.Lock()
	s.dirty[h] = key
	s.dirtyMu.Unlock()
}

// expiry is when the entry stops mattering (unix ns).
func (s *Shield) expiry(e *entry) int64 {
	x := e.until
	if n := len(e.fails); n > 0 {
		x = max(x, e.fails[n-1]+s.window)
	}
	if n := len(e.users); n > 0 {
		x = max(x, e.users[n-1].at+s.sprayWindow)
	}
	if n := len(e.digests); n > 0 {
		x = max(x, e.digests[n-1].at+s.window)
	}
	if e.kind == kindGood {
		x = max(x, e.good.at+int64(GoodFor))
	}
	return x
}

// evictLocked makes room in a full shard (locked by the caller): it
// examines a few entries (map order is random), drops the expired ones and,
// if none was, the least recently changed one of the lowest rank (see
// evictRank).
func (s *Shield) evictLocked(sh *shard, t int64) {
	var victim uint64
	var victimEntry *entry
	victimRank := 0
	removed, seen := 0, 0
	for h, e := range sh.m {
		if seen++; seen > evictSample {
			break
		}
		if s.expiry(e) <= t {
			delete(sh.m, h)
			s.n.Add(-1)
			s.markDirty(h, e.key)
			removed++
			continue
		}
		r := evictRank(e, t)
		if victimEntry == nil || r < victimRank || (r == victimRank && e.seen < victimEntry.seen) {
			victim, victimEntry, victimRank = h, e, r
		}
	}
	if removed == 0 && victimEntry != nil {
		delete(sh.m, victim)
		s.n.Add(-1)
		s.markDirty(victim, victimEntry.key)
	}
}

// evictRank orders entries for eviction, lowest first: a known-good digest
// (losing it only costs a device the exception to a per-user lock), then
// unlocked counters, then running locks and blocks (evicting one would free
// a guesser). Known devices are the bulk of the entries when
// auth.lockout.user_failures is on, so flooding them cannot push a
// guesser's counter out.
func evictRank(e *entry, t int64) int {
	switch {
	case e.until > t:
		return 2
	case e.kind == kindGood:
		return 0
	}
	return 1
}

// Sweep drops every entry that no longer matters at now and returns how
// many it dropped. Flush calls it.
func (s *Shield) Sweep(now time.Time) int {
	t := now.UnixNano()
	dropped := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for h, e := range sh.m {
			if s.expiry(e) <= t {
				delete(sh.m, h)
				s.n.Add(-1)
				s.markDirty(h, e.key)
				dropped++
			}
		}
		sh.mu.Unlock()
	}
	return dropped
}

// ShieldStats is a snapshot of the shield's state.
type ShieldStats struct {
	Entries           int // all entries in memory
	LockedUserDevices int // user+device pairs locked now
	LockedUserAddrs   int // user+address pairs locked now
	BlockedAddrs      int // addresses blocked for spraying now
	LockedUsers       int // users locked on every device and address now (user_failures)
	KnownDevices      int // user+device pairs with a known-good password digest
	StaleUsers        int // users with recently failed password digests
}

// Stats counts the entries at the shield's clock. It walks every shard:
// for the admin interface and tests, not the request path.
func (s *Shield) Stats() ShieldStats {
	t := s.now().UnixNano()
	var st ShieldStats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		st.Entries += len(sh.m)
		for _, e := range sh.m {
			switch {
			case e.kind == kindUserDevice && e.until > t:
				st.LockedUserDevices++
			case e.kind == kindUserAddr && e.until > t:
				st.LockedUserAddrs++
			case e.kind == kindAddr && e.until > t:
				st.BlockedAddrs++
			case e.kind == kindUserAll && e.until > t:
				st.LockedUsers++
			case e.kind == kindGood && e.good.at > t-int64(GoodFor):
				st.KnownDevices++
			case e.kind == kindUser && len(e.digests) > 0 && e.digests[len(e.digests)-1].at > t-s.window:
				st.StaleUsers++
			}
		}
		sh.mu.RUnlock()
	}
	return st
}
