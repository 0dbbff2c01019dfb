package auth

import (
	"net/netip"
	"testing"
	"time"
)

func BenchmarkShieldAllowClean(b *testing.B) {
	s := newShield(b, lockoutCfg(5, 10), nil, nil)
	for i := range 1000 {
		fail(s, "other"+string(rune('a'+i%26)), "dev", netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), "pw", 0)
	}
	user, dev, pw := []byte(`CORP\jdoe`), []byte("ApplDMPL69PZF18P"), []byte("s3cret")
	now := t0.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := s.Allow(user, dev, addrA, pw, now); !ok {
			b.Fatal("refused")
		}
	}
}

func BenchmarkShieldAllowStaleCheck(b *testing.B) {
	s := newShield(b, lockoutCfg(5, 10), nil, nil)
	fail(s, "jdoe", "otherdev", addrB, "old", 0)
	fail(s, "jdoe", "otherdev", addrB, "old", 0) // stale: Allow digests every password of jdoe
	user, dev, pw := []byte(`CORP\jdoe`), []byte("ApplDMPL69PZF18P"), []byte("s3cret")
	now := t0.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := s.Allow(user, dev, addrA, pw, now); !ok {
			b.Fatal("refused")
		}
	}
}

func BenchmarkShieldRecordFailure(b *testing.B) {
	s := newShield(b, lockoutCfg(1000, 1000), nil, nil)
	user, dev, pw := []byte(`CORP\jdoe`), []byte("ApplDMPL69PZF18P"), []byte("s3cret")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		s.Record(user, dev, addrA, pw, RouteEAS, 401, t0.Add(time.Duration(i)*time.Millisecond))
	}
}

// BenchmarkShieldRecordSuccess is the cost a real success adds with
// auth.lockout.user_failures on: one HMAC to remember the device's
// password.
func BenchmarkShieldRecordSuccess(b *testing.B) {
	s := newShield(b, userCfg(5, 20), nil, nil)
	user, dev, pw := []byte(`CORP\jdoe`), []byte("ApplDMPL69PZF18P"), []byte("s3cret")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		s.Record(user, dev, addrA, pw, RouteEAS, 200, t0.Add(time.Duration(i)*time.Millisecond))
	}
}
