package auth

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/policy/store"
	"github.com/easgate/easgate/proxy/config"
)

// userCfg is lockoutCfg with the per-user cap on.
func userCfg(failures, userFailures int) config.Lockout {
	c := lockoutCfg(failures, 0)
	c.UserFailures = userFailures
	return c
}

// TestShieldUserCapAcrossDevicesAndAddresses reproduces the finding: a
// guesser rotating DeviceIds and client addresses, with an Autodiscover
// request answered 404 every fifth try, gets exactly user_failures
// guesses to the CAS, then the user is refused everywhere for the backoff.
func TestShieldUserCapAcrossDevicesAndAddresses(t *testing.T) {
	s := newShield(t, userCfg(5, 10), nil, nil)
	reached := 0
	for i := range 80 {
		at := time.Duration(i) * time.Second
		dev := fmt.Sprintf("rot%d", i)
		addr := netip.AddrFrom4([4]byte{10, 7, byte(i / 250), byte(i%250 + 1)})
		if i%5 == 4 {
			if ok, _ := s.Allow(b("jdoe"), nil, addr, b("guess"), t0.Add(at)); ok {
				s.Record(b("jdoe"), nil, addr, b("guess"), RouteAutodiscover, 404, t0.Add(at))
			}
			continue
		}
		if ok, _ := s.Allow(b("jdoe"), b(dev), addr, b(fmt.Sprint("guess", i)), t0.Add(at)); ok {
			reached++
			s.Record(b("jdoe"), b(dev), addr, b(fmt.Sprint("guess", i)), RouteEAS, 401, t0.Add(at))
		}
	}
	if reached != 10 {
		t.Fatalf("%d guesses reached the CAS, want user_failures = 10", reached)
	}
	lockedAt := 11 * time.Second // the tenth EAS guess was try 11
	checkAllow(t, s, []allowCase{
		{user: `CORP\JDoe`, device: "brand-new", addr: addrB, pw: "right", at: 2 * time.Minute, reason: ReasonUserLockout},
		{user: "jdoe", device: "", addr: netip.Addr{}, at: 2 * time.Minute, reason: ReasonUserLockout}, // no password either
		{user: "alice", device: "brand-new", addr: addrB, pw: "pw", at: 2 * time.Minute, ok: true},
		{user: "jdoe", device: "brand-new", addr: addrB, pw: "right", at: lockedAt + 30*time.Minute - time.Nanosecond, reason: ReasonUserLockout},
		{user: "jdoe", device: "brand-new", addr: addrB, pw: "right", at: lockedAt + 30*time.Minute, ok: true},
	})
	if st := s.Stats(); st.LockedUsers != 1 || st.LockedUserDevices != 0 || st.LockedUserAddrs != 0 {
		t.Errorf("Stats = %+v, want one locked user and no locked pair", st)
	}
}

// TestShieldUserCapNotResetBySuccess: the user's own phone syncing does not
// refill a guesser's budget; only time does.
func TestShieldUserCapNotResetBySuccess(t *testing.T) {
	s := newShield(t, userCfg(5, 4), nil, nil)
	for i := range 3 {
		fail(s, "jdoe", fmt.Sprint("rot", i), addrA, fmt.Sprint("g", i), time.Duration(i)*time.Second)
		s.Record(b("jdoe"), b("phone"), addrB, b("right"), RouteEAS, 200, t0.Add(time.Duration(i)*time.Second+time.Millisecond))
	}
	fail(s, "jdoe", "rot9", addrA, "g9", 5*time.Second)
	checkAllow(t, s, []allowCase{{user: "jdoe", device: "rot10", addr: addrA, pw: "g10", at: 6 * time.Second, reason: ReasonUserLockout}})

	// Failures older than the window are forgotten.
	s2 := newShield(t, userCfg(5, 3), nil, nil)
	fail(s2, "jdoe", "d1", addrA, "a", 0)
	fail(s2, "jdoe", "d2", addrA, "b", time.Minute)
	fail(s2, "jdoe", "d3", addrA, "c", 16*time.Minute)
	checkAllow(t, s2, []allowCase{{user: "jdoe", device: "d4", addr: addrA, pw: "d", at: 17 * time.Minute, ok: true}})
}

// TestShieldUserCapKnownDevice: while the user is locked, a device that had
// a real success keeps working with that very password; other passwords
// from it are refused locally and three of them forget the device.
func TestShieldUserCapKnownDevice(t *testing.T) {
	lock := func(s *Shield, from time.Duration) {
		for i := range 3 {
			fail(s, "jdoe", fmt.Sprint("rot", i), addrA, fmt.Sprint("g", i), from+time.Duration(i)*time.Millisecond)
		}
	}
	s := newShield(t, userCfg(5, 3), nil, nil)
	s.Record(b(`CORP\jdoe`), b("phone"), addrB, b("right"), RouteEAS, 200, t0)
	// Autodiscover and OPTIONS successes do not make a device known.
	s.Record(b("jdoe"), b("tablet"), addrB, b("right"), RouteAutodiscover, 200, t0)
	s.Record(b("jdoe"), b("tablet"), addrB, b("right"), RouteOther, 200, t0)
	lock(s, time.Minute)
	checkAllow(t, s, []allowCase{
		{user: "JDOE@corp.example.com", device: "phone", addr: netip.MustParseAddr("192.0.2.44"), pw: "right", at: 2 * time.Minute, ok: true},
		{user: "jdoe", device: "tablet", addr: addrB, pw: "right", at: 2 * time.Minute, reason: ReasonUserLockout},
		{user: "jdoe", device: "new", addr: addrB, pw: "right", at: 2 * time.Minute, reason: ReasonUserLockout},
		{user: "jdoe", device: "phone", addr: addrB, at: 2 * time.Minute, reason: ReasonUserLockout}, // no password
	})
	if st := s.Stats(); st.LockedUsers != 1 || st.KnownDevices != 1 {
		t.Errorf("Stats = %+v", st)
	}

	// Guessing on the known DeviceId: refused locally, and the third miss
	// forgets the device even for the right password.
	checkAllow(t, s, []allowCase{
		{user: "jdoe", device: "phone", addr: addrA, pw: "guess1", at: 3 * time.Minute, reason: ReasonUserLockout},
		{user: "jdoe", device: "phone", addr: addrA, pw: "guess2", at: 3 * time.Minute, reason: ReasonUserLockout},
		{user: "jdoe", device: "phone", addr: addrB, pw: "right", at: 3 * time.Minute, ok: true},
	})
	// A success with the same password does not give the misses back.
	s.Record(b("jdoe"), b("phone"), addrB, b("right"), RouteEAS, 200, t0.Add(3*time.Minute))
	checkAllow(t, s, []allowCase{
		{user: "jdoe", device: "phone", addr: addrA, pw: "guess3", at: 4 * time.Minute, reason: ReasonUserLockout},
		{user: "jdoe", device: "phone", addr: addrB, pw: "right", at: 4 * time.Minute, reason: ReasonUserLockout},
	})

	// A CAS 401 to the remembered password (changed in the directory)
	// forgets it; a 401 to another password does not.
	s2 := newShield(t, userCfg(5, 3), nil, nil)
	s2.Record(b("jdoe"), b("phone"), addrB, b("right"), RouteEAS, 200, t0)
	fail(s2, "jdoe", "phone", addrB, "typo", time.Second)
	lock(s2, time.Minute)
	checkAllow(t, s2, []allowCase{{user: "jdoe", device: "phone", addr: addrB, pw: "right", at: 2 * time.Minute, ok: true}})
	fail(s2, "jdoe", "phone", addrB, "right", 2*time.Minute)
	checkAllow(t, s2, []allowCase{{user: "jdoe", device: "phone", addr: addrB, pw: "right", at: 3 * time.Minute, reason: ReasonUserLockout}})

	// Remembered for GoodFor from the last success (a backoff longer than
	// GoodFor shows it); successes through the exception keep it known.
	long := userCfg(5, 3)
	long.Backoff = config.Duration(4 * time.Hour)
	s4 := newShield(t, long, nil, nil)
	s4.Record(b("jdoe"), b("phone"), addrB, b("right"), RouteEAS, 200, t0)
	s4.Record(b("jdoe"), b("tablet"), addrB, b("other"), RouteEAS, 200, t0)
	lock(s4, time.Minute)
	s4.Record(b("jdoe"), b("phone"), addrB, b("right"), RouteEAS, 200, t0.Add(10*time.Minute))
	checkAllow(t, s4, []allowCase{
		{user: "jdoe", device: "tablet", addr: addrB, pw: "other", at: GoodFor - time.Nanosecond, ok: true},
		{user: "jdoe", device: "tablet", addr: addrB, pw: "other", at: GoodFor, reason: ReasonUserLockout},
		{user: "jdoe", device: "phone", addr: addrB, pw: "right", at: GoodFor + 10*time.Minute - time.Nanosecond, ok: true},
		{user: "jdoe", device: "phone", addr: addrB, pw: "right", at: GoodFor + 10*time.Minute, reason: ReasonUserLockout},
	})

	// Without the per-user cap nothing is remembered.
	s3 := newShield(t, userCfg(5, 0), nil, nil)
	s3.Record(b("jdoe"), b("phone"), addrB, b("right"), RouteEAS, 200, t0)
	if st := s3.Stats(); st.Entries != 0 {
		t.Errorf("user_failures 0 kept %+v", st)
	}
}

// TestShieldUserCapOnly: the per-user cap works with the per-pair counters
// off (failures 0).
func TestShieldUserCapOnly(t *testing.T) {
	s := newShield(t, userCfg(0, 2), nil, nil)
	if !s.Enabled() {
		t.Fatal("not Enabled with user_failures set")
	}
	fail(s, "jdoe", "d1", addrA, "a", 0)
	fail(s, "jdoe", "d2", addrB, "b", time.Second)
	checkAllow(t, s, []allowCase{{user: "jdoe", device: "d3", addr: netip.MustParseAddr("192.0.2.1"), pw: "c", at: 2 * time.Second, reason: ReasonUserLockout}})
	if st := s.Stats(); st.LockedUserDevices != 0 || st.LockedUsers != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

// TestShieldUserCapPersisted: the per-user counter and lock survive a
// restart through a real bbolt file; the known-good digests do not.
func TestShieldUserCapPersisted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := store.Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: t0.Add(10 * time.Second)}
	s := newShield(t, userCfg(5, 4), st, c)
	s.Record(b("jdoe"), b("phone"), addrB, b("right"), RouteEAS, 200, t0)
	for i := range 4 {
		fail(s, "jdoe", fmt.Sprint("rot", i), netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), fmt.Sprint("g", i), time.Duration(i+1)*time.Second)
	}
	for i := range 3 { // mary: three of four, not locked yet
		fail(s, "mary", fmt.Sprint("rot", i), netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}), fmt.Sprint("g", i), time.Duration(i+1)*time.Second)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	raw, ok, err := st.Get(BucketLockout, "us\x00jdoe")
	if err != nil || !ok || !strings.Contains(string(raw), `"kind":"user"`) || !strings.Contains(string(raw), `"until"`) {
		t.Fatalf("per-user record: %s, %v, %v", raw, ok, err)
	}
	if err := st.ForEach(BucketLockout, func(k, v []byte) error {
		if strings.Contains(string(v), `"good"`) || strings.Contains(string(v), `"digests"`) {
			t.Errorf("a digest record was stored: %q %s", k, v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st2, err := store.Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	s2 := newShield(t, userCfg(5, 4), st2, c)
	if err := s2.Load(); err != nil {
		t.Fatal(err)
	}
	checkAllow(t, s2, []allowCase{
		{user: "jdoe", device: "fresh", addr: addrA, pw: "x", at: 20 * time.Second, reason: ReasonUserLockout},
		// the known-good digest died with the process
		{user: "jdoe", device: "phone", addr: addrB, pw: "right", at: 20 * time.Second, reason: ReasonUserLockout},
		{user: "mary", device: "fresh", addr: addrA, pw: "x", at: 20 * time.Second, ok: true},
	})
	fail(s2, "mary", "fresh", addrA, "x", 21*time.Second) // the fourth, counted with the three from before
	checkAllow(t, s2, []allowCase{{user: "mary", device: "other", addr: addrB, pw: "y", at: 22 * time.Second, reason: ReasonUserLockout}})

	// With the cap turned off, the records are dropped at load.
	s3 := newShield(t, userCfg(5, 0), st2, c)
	if err := s3.Load(); err != nil {
		t.Fatal(err)
	}
	if err := s3.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st2.Get(BucketLockout, "us\x00jdoe"); ok {
		t.Error("user_failures 0 kept the per-user record")
	}
}

func TestShieldUserRecordDecode(t *testing.T) {
	e, err := fromRecord([]byte(`{"kind":"user","user":"JDoe","device":"x","addr":"203.0.113.7","until":"2026-11-27T10:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	if e.kind != kindUserAll || e.user != "jdoe" || e.device != "" || e.addr.IsValid() {
		t.Errorf("decoded %+v", e)
	}
	if _, err := fromRecord([]byte(`{"kind":"user"}`)); err == nil {
		t.Error("a user record without user was accepted")
	}
	for _, k := range []string{"digests", "good"} {
		if _, err := fromRecord([]byte(`{"kind":"` + k + `","user":"jdoe"}`)); err == nil {
			t.Errorf("a %s record was accepted", k)
		}
	}
}

// TestShieldEvictionPrefersKnownDevices: a full shard drops a known-good
// digest before a guesser's running counter, even an older one.
func TestShieldEvictionPrefersKnownDevices(t *testing.T) {
	s, err := NewShield(userCfg(5, 10), ShieldOptions{MaxEntries: shardCount})
	if err != nil {
		t.Fatal(err)
	}
	sh := &s.shards[0]
	counter := &entry{kind: kindUserAll, user: "jdoe", fails: []int64{t0.UnixNano()}, seen: 1}
	good := &entry{kind: kindGood, user: "mary", device: "phone", good: digestAt{at: t0.UnixNano()}, seen: 2}
	sh.m[1], sh.m[2] = counter, good
	s.n.Store(2)
	sh.mu.Lock()
	s.evictLocked(sh, t0.UnixNano())
	sh.mu.Unlock()
	if _, ok := sh.m[1]; !ok {
		t.Error("the guesser's counter was evicted")
	}
	if _, ok := sh.m[2]; ok {
		t.Error("the known-good digest was kept")
	}
}

// TestShieldFullNames: with auth.domains the shield is handed canonical
// names, and alice@corp and alice@partner are two accounts with two
// budgets; without it, "CORP\alice" and "alice@corp.example.com" share one.
func TestShieldFullNames(t *testing.T) {
	cfg := config.Lockout{Failures: 2, UserFailures: 3, Window: config.Duration(time.Hour), Backoff: config.Duration(time.Hour)}
	now := time.Now()
	fail := func(s *Shield, user string, i int) {
		dev := []byte("DEV" + string(rune('A'+i)))
		s.Record([]byte(user), dev, netip.Addr{}, []byte("pw"+string(rune('a'+i))), RouteEAS, 401, now)
	}
	full, err := NewShield(cfg, ShieldOptions{FullNames: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		fail(full, "alice@partner.example.org", i)
	}
	if ok, why := full.Allow([]byte("alice@partner.example.org"), []byte("DEVZ"), netip.Addr{}, []byte("x"), now); ok {
		t.Fatal("alice@partner is not locked after 3 failures")
	} else if why != ReasonUserLockout {
		t.Fatalf("reason %s", why)
	}
	if ok, _ := full.Allow([]byte("alice@corp.example.com"), []byte("DEVZ"), netip.Addr{}, []byte("x"), now); !ok {
		t.Fatal("alice@corp is locked by alice@partner's failures")
	}
	part, err := NewShield(cfg, ShieldOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		fail(part, `CORP\alice`, i)
	}
	if ok, _ := part.Allow([]byte("alice@corp.example.com"), []byte("DEVZ"), netip.Addr{}, []byte("x"), now); ok {
		t.Fatal(`without auth.domains "CORP\alice" and "alice@corp.example.com" must share one budget`)
	}
}
