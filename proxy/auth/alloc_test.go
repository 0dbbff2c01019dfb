//go:build !race

package auth

import (
	"net/netip"
	"testing"
	"time"
)

// The race detector makes sync.Pool drop items at random, so allocation
// counts are only meaningful without it.

func TestShieldAllowAllocs(t *testing.T) {
	s := newShield(t, lockoutCfg(5, 10), nil, nil)
	user, dev, pw := []byte(`CORP\jdoe`), []byte("ApplDMPL69PZF18P"), []byte("s3cret")
	now := t0.Add(time.Minute)
	check := func(name string) {
		t.Helper()
		n := testing.AllocsPerRun(500, func() {
			if ok, _ := s.Allow(user, dev, addrA, pw, now); !ok {
				panic("refused")
			}
			s.Record(user, dev, addrA, pw, RouteEAS, 200, now)
		})
		if n != 0 {
			t.Errorf("%s: Allow+Record(success) allocate %v times, want 0", name, n)
		}
	}
	check("empty shield")
	for i := range 100 {
		fail(s, "other"+string(rune('a'+i%26)), "dev", netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}), "pw", 0)
	}
	check("other users on record")
	// jdoe has a failed password on record (from another address, so the
	// success Record below does not reset anything): Allow digests pw.
	fail(s, "jdoe", "otherdev", addrB, "old", 0)
	fail(s, "jdoe", "otherdev", addrB, "old", 0)
	check("user with a stale digest")
}

func TestBinderAllocs(t *testing.T) {
	devs := newDevs()
	bd, err := NewBinder("enforce", devs)
	if err != nil {
		t.Fatal(err)
	}
	user, dev := []byte("jdoe"), []byte("dev1")
	fp := "aa11"
	bd.Check(user, dev, fp, t0)
	n := testing.AllocsPerRun(500, func() {
		if !bd.Check(user, dev, fp, t0).OK {
			panic("refused")
		}
	})
	if n != 0 {
		t.Errorf("Binder.Check on a bound device allocates %v times, want 0", n)
	}
}
