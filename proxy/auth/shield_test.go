package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/policy/store"
	"github.com/easgate/easgate/proxy/config"
)

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func lockoutCfg(failures, sprayUsers int) config.Lockout {
	return config.Lockout{
		Failures:    failures,
		Window:      config.Duration(15 * time.Minute),
		Backoff:     config.Duration(30 * time.Minute),
		SprayUsers:  sprayUsers,
		SprayWindow: config.Duration(10 * time.Minute),
		SprayBlock:  config.Duration(30 * time.Minute),
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func newShield(t testing.TB, cfg config.Lockout, st policy.Store, c *clock) *Shield {
	t.Helper()
	if c == nil {
		c = &clock{t: t0}
	}
	s, err := NewShield(cfg, ShieldOptions{Store: st, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	addrA = netip.MustParseAddr("203.0.113.7")
	addrB = netip.MustParseAddr("198.51.100.9")
)

func b(s string) []byte { return []byte(s) }

type allowCase struct {
	user, device string
	addr         netip.Addr
	pw           string
	at           time.Duration
	ok           bool
	reason       Reason
}

func checkAllow(t *testing.T, s *Shield, cases []allowCase) {
	t.Helper()
	for i, c := range cases {
		ok, r := s.Allow(b(c.user), b(c.device), c.addr, b(c.pw), t0.Add(c.at))
		if ok != c.ok || r != c.reason {
			t.Errorf("#%d Allow(%s, %s, %v, pw %d bytes, +%v) = %v, %q; want %v, %q", i, c.user, c.device, c.addr, len(c.pw), c.at, ok, r, c.ok, c.reason)
		}
	}
}

func fail(s *Shield, user, device string, addr netip.Addr, pw string, at time.Duration) {
	s.Record(b(user), b(device), addr, b(pw), RouteEAS, 401, t0.Add(at))
}

func TestShieldLockoutAfterFailures(t *testing.T) {
	s := newShield(t, lockoutCfg(3, 0), nil, nil)
	fail(s, "jdoe", "dev1", addrA, "guess1", 0)
	fail(s, "jdoe", "dev1", addrA, "guess2", time.Minute)
	checkAllow(t, s, []allowCase{
		{user: "jdoe", device: "dev1", addr: addrA, pw: "guess3", at: 2 * time.Minute, ok: true},
	})
	fail(s, "jdoe", "dev1", addrA, "guess3", 2*time.Minute)
	checkAllow(t, s, []allowCase{
		// locked for 30 minutes from the third failure, whatever the password
		{user: "jdoe", device: "dev1", addr: addrA, pw: "right", at: 3 * time.Minute, reason: ReasonLockout},
		{user: "JDOE@corp.example.com", device: "dev1", addr: addrB, pw: "right", at: 3 * time.Minute, reason: ReasonLockout},
		{user: "jdoe", device: "dev1", addr: netip.Addr{}, at: 3 * time.Minute, reason: ReasonLockout},
		// the same user from the same address on another device: the
		// user+address counter locked too (DeviceId rotation)
		{user: "jdoe", device: "dev2", addr: addrA, pw: "right", at: 3 * time.Minute, reason: ReasonLockout},
		// another device from another address goes through
		{user: "jdoe", device: "dev2", addr: addrB, pw: "right", at: 3 * time.Minute, ok: true},
		// other users are not affected
		{user: "alice", device: "dev1", addr: addrA, pw: "guess1", at: 3 * time.Minute, ok: true},
		// the backoff ends 30 minutes after the third failure
		{user: "jdoe", device: "dev1", addr: addrA, pw: "right", at: 32*time.Minute - time.Nanosecond, reason: ReasonLockout},
		{user: "jdoe", device: "dev1", addr: addrA, pw: "right", at: 32 * time.Minute, ok: true},
	})
	if st := s.Stats(); st.LockedUserDevices != 1 || st.LockedUserAddrs != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestShieldStalePassword(t *testing.T) {
	s := newShield(t, lockoutCfg(5, 0), nil, nil)
	fail(s, `CORP\jdoe`, "dev1", addrA, "old-password", 0)
	// One 401 may be transient (a domain controller away): the password
	// is tried once more.
	checkAllow(t, s, []allowCase{{user: "jdoe", device: "dev1", addr: addrA, pw: "old-password", at: time.Second / 2, ok: true}})
	fail(s, `CORP\jdoe`, "dev1", addrA, "old-password", time.Second/2)
	checkAllow(t, s, []allowCase{
		{user: "jdoe", device: "dev1", addr: addrA, pw: "old-password", at: time.Second, reason: ReasonStalePassword},
		// keyed per user, not per device or login form
		{user: "JDoe@corp.example.com", device: "dev2", addr: addrB, pw: "old-password", at: time.Second, reason: ReasonStalePassword},
		// a new password goes through
		{user: "jdoe", device: "dev1", addr: addrA, pw: "new-password", at: time.Second, ok: true},
		// the same password of another user is not this user's stale one
		{user: "alice", device: "dev1", addr: addrA, pw: "old-password", at: time.Second, ok: true},
		// no password: nothing to compare
		{user: "jdoe", device: "dev1", addr: addrA, at: time.Second, ok: true},
		// remembered for the window only (from its last failure)
		{user: "jdoe", device: "dev1", addr: addrA, pw: "old-password", at: 15*time.Minute + time.Second/2, ok: true},
	})
	// A stale password refused locally is never recorded, so a phone
	// retrying it forever costs the directory two bad attempts.
	for i := range 100 {
		if ok, _ := s.Allow(b("jdoe"), b("dev1"), addrA, b("old-password"), t0.Add(time.Duration(i)*time.Second)); ok {
			t.Fatalf("attempt %d reached the CAS", i)
		}
	}
	if st := s.Stats(); st.LockedUserDevices != 0 || st.StaleUsers != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestShieldDigestsBounded(t *testing.T) {
	s := newShield(t, lockoutCfg(100, 0), nil, nil)
	for i := range maxDigests + 3 {
		fail(s, "jdoe", "dev1", addrA, fmt.Sprintf("pw%d", i), time.Duration(i)*time.Second)
		fail(s, "jdoe", "dev1", addrA, fmt.Sprintf("pw%d", i), time.Duration(i)*time.Second)
	}
	// the oldest ones were forgotten, the newest maxDigests are remembered
	checkAllow(t, s, []allowCase{
		{user: "jdoe", device: "dev1", addr: addrA, pw: "pw0", at: time.Minute, ok: true},
		{user: "jdoe", device: "dev1", addr: addrA, pw: "pw3", at: time.Minute, reason: ReasonStalePassword},
		{user: "jdoe", device: "dev1", addr: addrA, pw: fmt.Sprintf("pw%d", maxDigests+2), at: time.Minute, reason: ReasonStalePassword},
	})
}

func TestShieldSuccessResets(t *testing.T) {
	s := newShield(t, lockoutCfg(3, 0), nil, nil)
	fail(s, "jdoe", "dev1", addrA, "a", 0)
	fail(s, "jdoe", "dev1", addrA, "b", time.Second)
	s.Record(b("jdoe"), b("dev1"), addrA, b("right"), RouteEAS, 200, t0.Add(2*time.Second))
	fail(s, "jdoe", "dev1", addrA, "c", 3*time.Second)
	fail(s, "jdoe", "dev1", addrA, "d", 4*time.Second)
	checkAllow(t, s, []allowCase{{user: "jdoe", device: "dev1", addr: addrA, pw: "right", at: 5 * time.Second, ok: true}})

	// 5xx and "no answer" are not successes
	s.Record(b("jdoe"), b("dev1"), addrA, b("right"), RouteEAS, 503, t0.Add(6*time.Second))
	s.Record(b("jdoe"), b("dev1"), addrA, b("right"), RouteEAS, 0, t0.Add(6*time.Second))
	fail(s, "jdoe", "dev1", addrA, "e", 7*time.Second)
	checkAllow(t, s, []allowCase{{user: "jdoe", device: "dev1", addr: addrA, pw: "right", at: 8 * time.Second, reason: ReasonLockout}})

	// An EAS-level 449 (provisioning required) comes after authentication:
	// it resets like a 200.
	s2 := newShield(t, lockoutCfg(2, 0), nil, nil)
	fail(s2, "jdoe", "dev1", addrA, "a", 0)
	s2.Record(b("jdoe"), b("dev1"), addrA, b("right"), RouteEAS, 449, t0.Add(time.Second))
	fail(s2, "jdoe", "dev1", addrA, "b", 2*time.Second)
	checkAllow(t, s2, []allowCase{{user: "jdoe", device: "dev1", addr: addrA, pw: "right", at: 3 * time.Second, ok: true}})
}

func TestShieldSlidingWindow(t *testing.T) {
	s := newShield(t, lockoutCfg(3, 0), nil, nil)
	// three failures, but never three within 15 minutes
	fail(s, "jdoe", "dev1", netip.Addr{}, "a", 0)
	fail(s, "jdoe", "dev1", netip.Addr{}, "b", 10*time.Minute)
	fail(s, "jdoe", "dev1", netip.Addr{}, "c", 16*time.Minute)
	checkAllow(t, s, []allowCase{{user: "jdoe", device: "dev1", pw: "d", at: 17 * time.Minute, ok: true}})
	fail(s, "jdoe", "dev1", netip.Addr{}, "d", 18*time.Minute) // b, c, d within the window
	checkAllow(t, s, []allowCase{{user: "jdoe", device: "dev1", pw: "e", at: 19 * time.Minute, reason: ReasonLockout}})
}

func TestShieldNoPasswordNotCounted(t *testing.T) {
	s := newShield(t, lockoutCfg(1, 1), nil, nil)
	s.Record(b("jdoe"), b("dev1"), addrA, nil, RouteEAS, 401, t0)
	checkAllow(t, s, []allowCase{{user: "jdoe", device: "dev1", addr: addrA, pw: "x", at: time.Second, ok: true}})
	if st := s.Stats(); st.Entries != 0 {
		t.Errorf("a 401 without password created entries: %+v", st)
	}
}

func TestShieldSpray(t *testing.T) {
	s := newShield(t, lockoutCfg(5, 3), nil, nil)
	fail(s, "alice", "d1", addrA, "Winter2026!", 0)
	fail(s, "ALICE", "d2", addrA, "Spring2026!", time.Second) // same user twice is one user
	fail(s, "bob", "d3", addrA, "Winter2026!", 2*time.Second)
	checkAllow(t, s, []allowCase{{user: "carol", device: "d4", addr: addrA, pw: "Winter2026!", at: 3 * time.Second, ok: true}})
	fail(s, "carol", "d4", addrA, "Winter2026!", 3*time.Second)
	checkAllow(t, s, []allowCase{
		{user: "dave", device: "d5", addr: addrA, pw: "Winter2026!", at: 4 * time.Second, reason: ReasonSprayBlock},
		{user: "dave", device: "d5", addr: addrA, at: 4 * time.Second, reason: ReasonSprayBlock},
		{user: "dave", device: "d5", addr: addrB, pw: "Winter2026!", at: 4 * time.Second, ok: true},
		{user: "dave", device: "d5", addr: addrA, pw: "x", at: 3*time.Second + 30*time.Minute, ok: true},
	})
	if st := s.Stats(); st.BlockedAddrs != 1 {
		t.Errorf("Stats = %+v", st)
	}

	// spread over more than the spray window: no block
	s2 := newShield(t, lockoutCfg(5, 3), nil, nil)
	fail(s2, "alice", "d1", addrA, "p", 0)
	fail(s2, "bob", "d1", addrA, "p", 6*time.Minute)
	fail(s2, "carol", "d1", addrA, "p", 11*time.Minute)
	checkAllow(t, s2, []allowCase{{user: "dave", device: "d5", addr: addrA, pw: "x", at: 12 * time.Minute, ok: true}})
}

func TestShieldIPv6Prefix(t *testing.T) {
	s := newShield(t, lockoutCfg(5, 2), nil, nil)
	fail(s, "alice", "d1", netip.MustParseAddr("2001:db8:1:2::1"), "p", 0)
	fail(s, "bob", "d1", netip.MustParseAddr("2001:db8:1:2:ffff::9"), "p", time.Second)
	checkAllow(t, s, []allowCase{
		{user: "carol", device: "d1", addr: netip.MustParseAddr("2001:db8:1:2:abcd::1"), pw: "p", at: 2 * time.Second, reason: ReasonSprayBlock},
		{user: "carol", device: "d1", addr: netip.MustParseAddr("2001:db8:1:3::1"), pw: "p", at: 2 * time.Second, ok: true},
	})
	// IPv4-mapped IPv6 is the IPv4 address
	s3 := newShield(t, lockoutCfg(5, 1), nil, nil)
	fail(s3, "alice", "d1", netip.MustParseAddr("::ffff:203.0.113.7"), "p", 0)
	checkAllow(t, s3, []allowCase{{user: "bob", device: "d1", addr: addrA, pw: "p", at: time.Second, reason: ReasonSprayBlock}})
}

func TestShieldDisabled(t *testing.T) {
	s := newShield(t, config.Lockout{}, nil, nil)
	if s.Enabled() {
		t.Fatal("Enabled with failures and spray_users 0")
	}
	for i := range 50 {
		fail(s, "jdoe", "dev1", addrA, "same", time.Duration(i)*time.Second)
	}
	checkAllow(t, s, []allowCase{{user: "jdoe", device: "dev1", addr: addrA, pw: "same", at: time.Minute, ok: true}})
}

func TestNewShieldErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  config.Lockout
		opts ShieldOptions
		want string
	}{
		{cfg: config.Lockout{Failures: -1}, want: "lockout.failures -1"},
		{cfg: config.Lockout{Failures: 5}, want: "lockout.window and lockout.backoff"},
		{cfg: config.Lockout{Failures: 5000, Window: config.Duration(time.Minute), Backoff: config.Duration(time.Minute)}, want: "lockout.failures 5000"},
		{cfg: config.Lockout{SprayUsers: 3}, want: "spray_window and lockout.spray_block"},
		{cfg: config.Lockout{UserFailures: -1}, want: "lockout.user_failures -1"},
		{cfg: config.Lockout{UserFailures: 1001, Window: config.Duration(time.Minute), Backoff: config.Duration(time.Minute)}, want: "lockout.user_failures 1001"},
		{cfg: config.Lockout{UserFailures: 20}, want: "positive when lockout.user_failures is set"},
		{cfg: config.Lockout{SprayUsers: -2}, want: "spray_users -2"},
		{cfg: config.Lockout{}, opts: ShieldOptions{MaxEntries: -1}, want: "max entries"},
	} {
		_, err := NewShield(tc.cfg, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewShield(%+v) error = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestShieldBoundedMemory(t *testing.T) {
	s, err := NewShield(lockoutCfg(3, 5), ShieldOptions{MaxEntries: 64})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20000 {
		fail(s, fmt.Sprintf("user%d", i), fmt.Sprintf("dev%d", i), netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), "pw", time.Duration(i)*time.Millisecond)
	}
	if st := s.Stats(); st.Entries > 64 || st.Entries == 0 {
		t.Errorf("Entries = %d, want 1..64", st.Entries)
	}
	if got := int(s.n.Load()); got != s.Stats().Entries {
		t.Errorf("entry counter %d != entries %d", got, s.Stats().Entries)
	}
	// Sweep drops everything once it has expired.
	if n := s.Sweep(t0.Add(24 * time.Hour)); n == 0 || s.Stats().Entries != 0 || s.n.Load() != 0 {
		t.Errorf("Sweep dropped %d, left %+v (counter %d)", n, s.Stats(), s.n.Load())
	}
}

// TestShieldEvictionPrefersUnlocked: a full shard drops an unlocked entry
// rather than a running lock, so flooding cannot free a locked account.
func TestShieldEvictionPrefersUnlocked(t *testing.T) {
	s, err := NewShield(lockoutCfg(1, 0), ShieldOptions{MaxEntries: shardCount}) // one entry per shard... per kind pressure
	if err != nil {
		t.Fatal(err)
	}
	sh := &s.shards[0]
	locked := &entry{kind: kindUserDevice, user: "locked", until: t0.Add(time.Hour).UnixNano(), seen: 1}
	open := &entry{kind: kindUserDevice, user: "open", fails: []int64{t0.UnixNano()}, seen: 2}
	sh.m[1], sh.m[2] = locked, open
	s.n.Store(2)
	sh.mu.Lock()
	s.evictLocked(sh, t0.UnixNano())
	sh.mu.Unlock()
	if _, ok := sh.m[1]; !ok {
		t.Error("the locked entry was evicted")
	}
	if _, ok := sh.m[2]; ok {
		t.Error("the unlocked entry was kept")
	}
}

func TestShieldConcurrent(t *testing.T) {
	st := newMemStore()
	s := newShield(t, lockoutCfg(3, 4), st, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				u := fmt.Sprintf("u%d", i%7)
				at := time.Duration(i) * time.Second
				addr := netip.AddrFrom4([4]byte{10, 0, 0, byte(g)})
				if ok, _ := s.Allow(b(u), b("d"), addr, b("pw"), t0.Add(at)); ok {
					status := 401
					if i%5 == 0 {
						status = 200
					}
					s.Record(b(u), b("d"), addr, b(fmt.Sprint("pw", i)), RouteEAS, status, t0.Add(at))
				}
				if i%50 == 0 {
					if err := s.Flush(); err != nil {
						t.Error(err)
					}
					_ = s.Stats()
				}
			}
		}()
	}
	wg.Wait()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
}

// memStore is a policy.Store in memory, with an optional failure.
type memStore struct {
	mu      sync.Mutex
	b       map[string]map[string][]byte
	failErr error
}

func newMemStore() *memStore { return &memStore{b: map[string]map[string][]byte{}} }

func (m *memStore) Update(bucket string, puts map[string][]byte, deletes []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failErr != nil {
		return m.failErr
	}
	bk := m.b[bucket]
	if bk == nil {
		bk = map[string][]byte{}
		m.b[bucket] = bk
	}
	for k, v := range puts {
		bk[k] = append([]byte(nil), v...)
	}
	for _, k := range deletes {
		delete(bk, k)
	}
	return nil
}

func (m *memStore) ForEach(bucket string, fn func(key, value []byte) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range m.b[bucket] {
		if err := fn([]byte(k), v); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) Get(bucket, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.b[bucket][key]
	return v, ok, nil
}

func (m *memStore) Close() error { return nil }

var _ policy.Store = (*memStore)(nil)

// TestShieldRestart: counters, locks and spray blocks survive a restart
// through a real bbolt file; digests (keyed per process) do not.
func TestShieldRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := store.Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: t0.Add(5 * time.Second)}
	s := newShield(t, lockoutCfg(3, 2), st, c)
	fail(s, "jdoe", "dev1", addrA, "a", 0)
	fail(s, "jdoe", "dev1", addrA, "b", time.Second)
	fail(s, "jdoe", "dev1", addrA, "c", 2*time.Second) // locked until +30m2s
	fail(s, "alice", "dev9", addrB, "x", 3*time.Second)
	fail(s, "bob", "dev9", addrB, "x", 4*time.Second) // addrB blocked until +30m4s
	fail(s, "carol", "dev7", netip.Addr{}, "y", 4*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}

	// "restart": a new process opens the same file
	st2, err := store.Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	s2 := newShield(t, lockoutCfg(3, 2), st2, c)
	if err := s2.Load(); err != nil {
		t.Fatal(err)
	}
	checkAllow(t, s2, []allowCase{
		{user: "jdoe", device: "dev1", addr: addrA, pw: "right", at: 10 * time.Second, reason: ReasonLockout},
		{user: "zed", device: "dev1", addr: addrB, pw: "right", at: 10 * time.Second, reason: ReasonSprayBlock},
		// carol's one failure is still counted: two more lock her
		{user: "carol", device: "dev7", pw: "y", at: 10 * time.Second, ok: true}, // digest not persisted
	})
	fail(s2, "carol", "dev7", netip.Addr{}, "z1", 11*time.Second)
	fail(s2, "carol", "dev7", netip.Addr{}, "z2", 12*time.Second)
	checkAllow(t, s2, []allowCase{{user: "carol", device: "dev7", pw: "new", at: 13 * time.Second, reason: ReasonLockout}})

	// A success resets and the reset is persisted too.
	c.set(t0.Add(20 * time.Minute))
	s2.Record(b("jdoe"), b("dev1"), addrA, b("right"), RouteEAS, 200, t0.Add(20*time.Minute))
	if err := s2.Flush(); err != nil {
		t.Fatal(err)
	}
	s3 := newShield(t, lockoutCfg(3, 2), st2, c)
	if err := s3.Load(); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := st2.ForEach(BucketLockout, func(k, v []byte) error {
		n++
		if strings.Contains(string(k), "jdoe") {
			t.Errorf("reset record %q still stored: %s", k, v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("nothing stored for carol")
	}
	// After everything expired, Flush removes the records.
	c.set(t0.Add(3 * time.Hour))
	if err := s3.Flush(); err != nil {
		t.Fatal(err)
	}
	s4 := newShield(t, lockoutCfg(3, 2), st2, c)
	if err := s4.Load(); err != nil {
		t.Fatal(err)
	}
	if err := s4.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = st2.ForEach(BucketLockout, func(k, v []byte) error {
		t.Errorf("expired record %q still stored", k)
		return nil
	})
}

// TestShieldNoSecretsStored: neither the password nor an unkeyed hash of
// it reaches the store.
func TestShieldNoSecretsStored(t *testing.T) {
	st := newMemStore()
	s := newShield(t, lockoutCfg(2, 2), st, nil)
	const pw = "Corr3ct-Horse-Battery"
	plain := sha256.Sum256([]byte(pw))
	fail(s, "jdoe", "dev1", addrA, pw, 0)
	fail(s, "mary", "dev2", addrA, pw, time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	_ = st.ForEach(BucketLockout, func(k, v []byte) error {
		all.Write(k)
		all.Write(v)
		return nil
	})
	for _, bad := range []string{pw, hex.EncodeToString(plain[:]), string(plain[:])} {
		if strings.Contains(all.String(), bad) {
			t.Errorf("store holds a secret form %q", bad)
		}
	}
	if !strings.Contains(all.String(), `"kind":"user_device"`) {
		t.Errorf("store lacks the counters: %s", all.String())
	}
}

func TestShieldFlushErrorRetries(t *testing.T) {
	st := newMemStore()
	s := newShield(t, lockoutCfg(3, 0), st, nil)
	fail(s, "jdoe", "dev1", netip.Addr{}, "a", 0)
	st.failErr = errors.New("disk full")
	if err := s.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Flush error = %v", err)
	}
	st.failErr = nil
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Get(BucketLockout, "ud\x00jdoe\x00dev1"); !ok {
		t.Error("the record was lost after a failed Flush")
	}
}

func TestShieldLoadBadRecords(t *testing.T) {
	st := newMemStore()
	until := t0.Add(time.Hour).Format(time.RFC3339Nano)
	_ = st.Update(BucketLockout, map[string][]byte{
		"ud\x00jdoe\x00dev1": []byte(`{"kind":"user_device","user":"jdoe","device":"dev1","until":"` + until + `"}`),
		"ad\x00203.0.113.7":  []byte(`{"kind":"addr","addr":"203.0.113.7","until":"` + until + `"}`),
		"bad1":               []byte(`{not json`),
		"bad2":               []byte(`{"kind":"martian"}`),
		"bad3":               []byte(`{"kind":"addr","addr":"nowhere"}`),
		"bad4":               []byte(`{"kind":"user_device"}`),
	}, nil)
	s := newShield(t, lockoutCfg(3, 2), st, nil)
	err := s.Load()
	if err == nil {
		t.Fatal("Load reported no bad record")
	}
	for _, k := range []string{"bad1", "bad2", "bad3", "bad4"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("Load error does not name %s: %v", k, err)
		}
	}
	checkAllow(t, s, []allowCase{
		{user: "jdoe", device: "dev1", pw: "x", at: time.Minute, reason: ReasonLockout},
		{user: "x", device: "y", addr: addrA, pw: "x", at: time.Minute, reason: ReasonSprayBlock},
	})
}

func TestShieldRecordDigest(t *testing.T) {
	s := newShield(t, lockoutCfg(3, 0), nil, nil)
	d := s.Digest(b(`CORP\jdoe`), b("old"))
	if d.IsZero() || d != s.Digest(b("JDOE@corp.example.com"), b("old")) {
		t.Fatal("digest is not per user part")
	}
	if d == s.Digest(b("mary"), b("old")) || d == s.Digest(b("jdoe"), b("new")) {
		t.Fatal("digest collides across users or passwords")
	}
	if !s.Digest(b("jdoe"), nil).IsZero() || !s.Digest(b(`CORP\`), b("x")).IsZero() {
		t.Fatal("digest of nothing is not zero")
	}
	s.RecordDigest(b("jdoe"), b("dev1"), addrA, d, RouteEAS, 401, t0)
	s.RecordDigest(b("jdoe"), b("dev1"), addrA, Digest{}, RouteEAS, 401, t0) // no password: not counted
	s.RecordDigest(b("jdoe"), b("dev1"), addrA, d, RouteEAS, 401, t0)
	checkAllow(t, s, []allowCase{
		{user: "jdoe", device: "dev1", addr: addrA, pw: "old", at: time.Second, reason: ReasonStalePassword},
		{user: "jdoe", device: "dev1", addr: addrA, pw: "new", at: time.Second, ok: true},
	})
	// a different key per Shield: digests do not carry over
	s2 := newShield(t, lockoutCfg(2, 0), nil, nil)
	if s2.Digest(b("jdoe"), b("old")) == d {
		t.Error("two shields share a digest key")
	}
}
