package auth

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Two nodes' shields that exchange their records through ApplyRemote count
// failures together: two on node A and one on node B lock the device on
// both, and a reset on one node (a real success) clears it on the other.
func TestShieldApplyRemoteCountsAcrossNodes(t *testing.T) {
	stA, stB := newMemStore(), newMemStore()
	c := &clock{t: t0}
	a := newShield(t, lockoutCfg(3, 0), stA, c)
	bb := newShield(t, lockoutCfg(3, 0), stB, c)
	exchange := func(from *memStore, to *Shield) {
		from.mu.Lock()
		recs := map[string][]byte{}
		for k, v := range from.b[BucketLockout] {
			recs[k] = v
		}
		from.mu.Unlock()
		for k, v := range recs {
			to.ApplyRemote(k, v)
		}
	}
	fail := func(s *Shield, at time.Duration) {
		c.set(t0.Add(at))
		s.Record(b("jdoe"), b("ApplDEV1"), addrA, b("stale"), RouteEAS, 401, t0.Add(at))
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	fail(a, time.Second)
	fail(a, 2*time.Second)
	exchange(stA, bb)
	if ok, _ := bb.Allow(b("jdoe"), b("ApplDEV1"), addrA, b("other"), t0.Add(3*time.Second)); !ok {
		t.Fatal("two failures on A lock the device on B already")
	}
	fail(bb, 3*time.Second)
	if ok, r := bb.Allow(b("jdoe"), b("ApplDEV1"), addrA, b("other"), t0.Add(4*time.Second)); ok || r != ReasonLockout {
		t.Fatalf("the third failure (on B) does not lock: %v %q", ok, r)
	}
	exchange(stB, a)
	if ok, r := a.Allow(b("jdoe"), b("ApplDEV1"), addrA, b("other"), t0.Add(4*time.Second)); ok || r != ReasonLockout {
		t.Fatalf("the lock set on B does not hold on A: %v %q", ok, r)
	}
	// Applying the same record again changes nothing (the feed may repeat).
	exchange(stB, a)
	if st := a.Stats(); st.LockedUserDevices != 1 {
		t.Fatalf("stats after a repeated record: %+v", st)
	}
	// A delete from the other node drops the entry.
	for k := range stB.b[BucketLockout] {
		a.ApplyRemote(k, nil)
	}
	if ok, _ := a.Allow(b("jdoe"), b("ApplDEV1"), addrA, b("other"), t0.Add(5*time.Second)); !ok {
		t.Fatal("a reset on B does not reach A")
	}
}

func TestMergeTimes(t *testing.T) {
	got := mergeTimes([]int64{1, 3, 5, 7}, []int64{2, 3, 8})
	want := []int64{1, 2, 3, 5, 7, 8}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%v, want %v", got, want)
		}
	}
}

// FuzzShieldApplyRemote: records from another node are input like any
// other; none may panic the shield or leave it inconsistent. Seeded from
// the lockout records of testdata/lockout and their keys.
func FuzzShieldApplyRemote(f *testing.F) {
	files, _ := filepath.Glob("testdata/lockout/*.json")
	if len(files) == 0 {
		f.Fatal("no seeds in testdata/lockout")
	}
	keys := []string{"ud\x00jdoe\x00ApplDMPL69PZF18P", "ua\x00jdoe\x00203.0.113.7", "ad\x002001:db8::1", "us\x00jdoe", "xx", "ud\x00only"}
	for i, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(keys[i%len(keys)], data)
		f.Add(keys[i%len(keys)], []byte(nil))
	}
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		s := newShield(t, lockoutCfg(3, 5), nil, nil)
		s.ApplyRemote(key, value)
		s.ApplyRemote(key, value)
		if value == nil {
			s.ApplyRemote(key, nil)
		}
		s.Allow(b("jdoe"), b("ApplDMPL69PZF18P"), addrA, b("pw"), t0.Add(time.Second))
		s.Sweep(t0.Add(48 * time.Hour))
		if st := s.Stats(); st.LockedUserDevices < 0 || s.n.Load() < 0 {
			t.Fatalf("negative counts after ApplyRemote: %+v, n=%d", st, s.n.Load())
		}
	})
}
