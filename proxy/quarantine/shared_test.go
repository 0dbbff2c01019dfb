package quarantine

import (
	"testing"
)

// A record another node wrote continues the episode here: same key prefix,
// same notice state; a release there releases here. Applying a record
// twice (the feed may repeat) changes nothing.
func TestEmulatorApplyRemote(t *testing.T) {
	stA := newMemStore()
	a, err := New(Options{Store: stA})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec, entered, _ := a.Enter(Device{User: "bob@corp.example.com", DeviceID: "QUARPHONE1", DeviceType: "iPhone"}, "not enrolled")
	if !entered {
		t.Fatal("not entered")
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		for k, v := range stA.data[Bucket] {
			u, d, ok := b.ApplyRemote(k, v)
			if !ok || u != "bob@corp.example.com" || d != "QUARPHONE1" {
				t.Fatalf("ApplyRemote = %q %q %v", u, d, ok)
			}
		}
	}
	got, ok := b.Get([]byte("BOB@corp.example.com"), []byte("quarphone1"))
	if !ok || got.KeyPrefix != rec.KeyPrefix || got.NoticeDelivered != rec.NoticeDelivered || b.Len() != 1 {
		t.Fatalf("node B's record %+v (ok %v), want A's episode %q", got, ok, rec.KeyPrefix)
	}
	// B enters nothing new for the device: the episode is the same.
	again, entered, _ := b.Enter(Device{User: "bob@corp.example.com", DeviceID: "QUARPHONE1"}, "not enrolled")
	if entered || again.KeyPrefix != rec.KeyPrefix {
		t.Fatalf("B started a second episode: %+v", again)
	}
	a.Release([]byte("bob@corp.example.com"), []byte("QUARPHONE1"))
	if _, _, ok := b.ApplyRemote(string(keyBuf(nil, []byte("bob@corp.example.com"), []byte("QUARPHONE1"))), nil); !ok {
		t.Fatal("release not applied")
	}
	if b.Active([]byte("bob@corp.example.com"), []byte("QUARPHONE1")) {
		t.Fatal("released on A, still quarantined on B")
	}
	if _, _, ok := b.ApplyRemote("k", []byte("{not json")); ok {
		t.Fatal("a record that does not decode was applied")
	}
}

// FuzzEmulatorApplyRemote: records from another node never panic the
// emulator; a record it accepts is readable afterwards. Seeded from a real
// record.
func FuzzEmulatorApplyRemote(f *testing.F) {
	st := newMemStore()
	e, _ := New(Options{Store: st})
	e.Enter(Device{User: "bob@corp.example.com", DeviceID: "QUARPHONE1", DeviceType: "iPhone"}, "not enrolled")
	if err := e.Flush(); err != nil {
		f.Fatal(err)
	}
	for k, v := range st.data[Bucket] {
		f.Add(k, v)
		f.Add(k, []byte(nil))
	}
	f.Add("x", []byte(`{"user":"u","device_id":"d","key_prefix":"Q1","collections":{"1":null}}`))
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		e, _ := New(Options{})
		u, d, ok := e.ApplyRemote(key, value)
		if ok && value != nil {
			if _, found := e.Get([]byte(u), []byte(d)); !found {
				t.Fatalf("accepted record of %q/%q not found", u, d)
			}
		}
	})
}
