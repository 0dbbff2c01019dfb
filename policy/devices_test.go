package policy

import (
	"bytes"
	"context"
	"hash/maphash"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy/store"
)

func TestDevicesPersistAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := store.Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDevices(st)
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	rec := d.Touch([]byte(`CORP\Alice`), []byte("ApplDMPL69PZF18P"), []byte("iPad"), []byte("iOS/17.5.1 (21F90) dataaccessd/1.0"), now)
	if !rec.FirstSeen.Equal(now) || rec.DeviceType != "iPad" {
		t.Fatalf("first touch %+v", rec)
	}
	d.Update([]byte(`corp\alice`), []byte("ApplDMPL69PZF18P"), now, func(r *DeviceRecord) {
		r.Info = eas.DeviceInfo{Model: "iPad3C6", OS: "iOS 17.5.1 21F90"}
		r.HeartbeatInterval = 900
	})
	later := now.Add(time.Hour)
	rec = d.Touch([]byte(`CORP\Alice`), []byte("ApplDMPL69PZF18P"), []byte("iPad"), []byte("iOS/17.5.1 (21F90) dataaccessd/1.0"), later)
	if !rec.FirstSeen.Equal(now) || !rec.LastSeen.Equal(later) || rec.Info.Model != "iPad3C6" {
		t.Fatalf("second touch %+v", rec)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}

	// What `easgate explain` reads, from another handle on the same file.
	ro, err := store.Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := LoadDevice(ro, `CORP\alice`, "ApplDMPL69PZF18P")
	if err != nil || !ok || got.Info.OS != "iOS 17.5.1 21F90" || got.HeartbeatInterval != 900 {
		t.Fatalf("LoadDevice: %+v %v %v", got, ok, err)
	}

	// A restart: a new table loads everything back.
	d2 := NewDevices(st)
	if err := d2.Load(); err != nil {
		t.Fatal(err)
	}
	got, ok = d2.Get([]byte(`corp\ALICE`), []byte("ApplDMPL69PZF18P"))
	if !ok || !got.FirstSeen.Equal(now) || got.Info.Model != "iPad3C6" {
		t.Fatalf("after restart: %+v %v", got, ok)
	}
	if got, ok := d2.Get([]byte(`corp\alice`), []byte("appldmpl69pzf18p")); !ok || got.DeviceID != "ApplDMPL69PZF18P" {
		t.Fatalf("device ids compare case-insensitively (a phone that changes the case of its id is the same device): %+v %v", got, ok)
	}
}

func TestDevicesTouchKnownDeviceDoesNotAllocate(t *testing.T) {
	d := NewDevices(nil)
	user, dev, typ, ua := []byte("bob@corp.example.com"), []byte("SEC17CD1A3E9E3F2"), []byte("SAMSUNGSMN900V"), []byte("SAMSUNG-SM-N900V/101.403")
	now := time.Now()
	d.Touch(user, dev, typ, ua, now)
	allocs := testing.AllocsPerRun(100, func() {
		if r := d.Touch(user, dev, typ, ua, now); r.DeviceID == "" {
			t.Fatal("no record")
		}
	})
	if allocs != 0 {
		t.Fatalf("Touch of a known device allocates %.1f times", allocs)
	}
}

func TestVerdictSnapshotStartsWarm(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{states: map[string]State{"D1": StateCompliant, "D2": StateNoncompliant}}
	c, _ := NewCache(src, CacheConfig{LookupTimeout: time.Second})
	for _, dev := range []string{"D1", "D2"} {
		if _, err := c.Get(context.Background(), cacheSubject(dev), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SaveSnapshot(st); err != nil {
		t.Fatal(err)
	}
	// After a restart the source is down, but the snapshot answers.
	down := &fakeSource{}
	down.fail.Store(true)
	c2, _ := NewCache(down, CacheConfig{LookupTimeout: time.Second})
	n, err := c2.LoadSnapshot(st)
	if err != nil || n != 2 {
		t.Fatalf("loaded %d, %v", n, err)
	}
	v, err := c2.Get(context.Background(), cacheSubject("D2"), time.Now())
	if err != nil || v.State != StateNoncompliant || down.calls.Load() != 0 {
		t.Fatalf("warm start: %+v %v (source calls %d)", v, err, down.calls.Load())
	}
	// Saving again replaces the snapshot rather than growing it.
	c2.Invalidate("bob@corp.example.com", "D1")
	if err := c2.SaveSnapshot(st); err != nil {
		t.Fatal(err)
	}
	c3, _ := NewCache(down, CacheConfig{})
	if n, _ := c3.LoadSnapshot(st); n != 1 {
		t.Fatalf("snapshot has %d verdicts, want 1", n)
	}
}

// TestAppendDeviceKey: the appended key is DeviceRecord.Key's, and costs no
// allocation when dst has room.
func TestAppendDeviceKey(t *testing.T) {
	for _, tc := range []struct{ user, device string }{
		{"jdoe@corp.example.com", "ApplDMPL69PZF18P"},
		{"CORP\\JDoe", "androidc1957925941"},
		{"", "x"},
		{"ÄÖÜ@Example.COM", ""}, // only ASCII is lower-cased, like lowerString
	} {
		rec := DeviceRecord{User: tc.user, DeviceID: tc.device}
		if got := string(AppendDeviceKey(nil, []byte(tc.user), []byte(tc.device))); got != rec.Key() {
			t.Errorf("AppendDeviceKey(%q, %q) = %q, want Key() %q", tc.user, tc.device, got, rec.Key())
		}
	}
	var buf [256]byte
	user, device := []byte("JDoe@Corp.Example.COM"), []byte("ApplDMPL69PZF18P")
	if n := testing.AllocsPerRun(100, func() { _ = AppendDeviceKey(buf[:0], user, device) }); n != 0 {
		t.Errorf("AppendDeviceKey allocates %v times", n)
	}
}

// TestFoldKeyHash: the table's hash of a device key is that of its folded
// bytes, for short keys (one stack buffer) and long ones (chunks) alike,
// so that every spelling of one device lands on one record.
func TestFoldKeyHash(t *testing.T) {
	seed := maphash.MakeSeed()
	for _, n := range []int{0, 1, 20, 126, 127, 128, 129, 300, 700} {
		user := []byte(strings.Repeat("AbC", n)[:n])
		for _, dev := range [][]byte{nil, []byte("ApplDMPL69PZF18P"), []byte(strings.Repeat("Xy", 32))} {
			want := maphash.Bytes(seed, AppendDeviceKey(nil, user, dev))
			if got := foldKeyHash(seed, user, dev); got != want {
				t.Fatalf("user %d bytes, device %q: %x, want %x", n, dev, got, want)
			}
			if got := foldKeyHash(seed, bytes.ToLower(user), bytes.ToUpper(dev)); got != want {
				t.Fatalf("user %d bytes, device %q in other cases: %x, want %x", n, dev, got, want)
			}
		}
	}
}

// TestFoldInto: the eight-bytes-at-a-time fold is lowerASCII on every
// byte value at every position.
func TestFoldInto(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 11; pos++ {
			b := []byte("@Z[`az{\x7f\xc1\xdaA")
			b[pos] = byte(c)
			want := make([]byte, len(b))
			for i := range b {
				want[i] = lowerASCII(b[i])
			}
			got := make([]byte, len(b))
			foldInto(got, b)
			if !bytes.Equal(got, want) {
				t.Fatalf("byte %#x at %d: %q, want %q", c, pos, got, want)
			}
		}
	}
}

// TestFoldEqual: the eight-bytes-at-a-time comparison agrees with
// comparing lowerASCII byte by byte.
func TestFoldEqual(t *testing.T) {
	base := "jdoe@Corp.Example.com\x00ApplDMPL69PZF18P\xc3\xa9"
	for n := 0; n <= len(base); n++ {
		s := base[:n]
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(s)
				b[pos] = byte(c)
				want := lowerASCII(s[pos]) == lowerASCII(byte(c))
				if got := foldEqual(s, b); got != want {
					t.Fatalf("%q vs %q: %v, want %v", s, b, got, want)
				}
			}
		}
	}
	if foldEqual("abc", []byte("ab")) {
		t.Fatal("lengths differ")
	}
}

// TestAppendDeviceKeyFold: AppendDeviceKey appends to dst exactly the
// byte-by-byte fold of user, NUL and the device id's eas fold.
func TestAppendDeviceKeyFold(t *testing.T) {
	for _, tc := range [][2]string{{"", ""}, {"CORP\\Alice", "ApplDMPL69PZF18P"}, {"jdoe@Corp.Example.COM", "x"},
		{"\xc3\x84lice@corp.example.com", "ANDROIDC12345678901234567890"}} {
		want := []byte("pre")
		for _, b := range []byte(tc[0]) {
			want = append(want, lowerASCII(b))
		}
		want = append(want, 0)
		want = eas.AppendDeviceIDFold(want, []byte(tc[1]))
		if got := AppendDeviceKey([]byte("pre"), []byte(tc[0]), []byte(tc[1])); !bytes.Equal(got, want) {
			t.Errorf("%q %q: %q, want %q", tc[0], tc[1], got, want)
		}
	}
}
