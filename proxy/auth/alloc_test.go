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

// TestShieldUserCapAllocs: with the per-user cap on, a success remembers the
// device's password digest, and Allow for a locked user compares it; neither
// allocates once the device is known.
func TestShieldUserCapAllocs(t *testing.T) {
	s := newShield(t, userCfg(5, 3), nil, nil)
	user, dev, pw := []byte(`CORP\jdoe`), []byte("ApplDMPL69PZF18P"), []byte("s3cret")
	now := t0.Add(time.Minute)
	s.Record(user, dev, addrA, pw, RouteEAS, 200, t0)
	for i := range 3 {
		fail(s, "jdoe", "rot"+string(rune('a'+i)), addrB, "guess"+string(rune('a'+i)), time.Second)
	}
	if ok, why := s.Allow(user, []byte("unknown"), addrA, pw, now); ok || why != ReasonUserLockout {
		t.Fatalf("the user is not locked: %v %q", ok, why)
	}
	n := testing.AllocsPerRun(500, func() {
		if ok, _ := s.Allow(user, dev, addrA, pw, now); !ok {
			panic("known device refused")
		}
		s.Record(user, dev, addrA, pw, RouteEAS, 200, now)
	})
	if n != 0 {
		t.Errorf("known device of a locked user: Allow+Record(success) allocate %v times, want 0", n)
	}
	other := []byte("unknown")
	n = testing.AllocsPerRun(500, func() {
		if ok, _ := s.Allow(user, other, addrA, pw, now); ok {
			panic("unknown device let through")
		}
	})
	if n != 0 {
		t.Errorf("unknown device of a locked user: Allow allocates %v times, want 0", n)
	}
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
