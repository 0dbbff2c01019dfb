package policy

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDevicesApplyRemote(t *testing.T) {
	d := NewDevices(nil)
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	d.Touch([]byte("alice@corp.example.com"), []byte("DEV1"), []byte("iPhone"), nil, now)
	remote := DeviceRecord{User: "alice@corp.example.com", DeviceID: "DEV1", DeviceType: "iPhone",
		FirstSeen: now.Add(time.Hour), LastSeen: now.Add(time.Minute), LastAction: "block"}
	data, _ := json.Marshal(&remote)
	d.ApplyRemote(remote.Key(), data)
	got, ok := d.Get([]byte("ALICE@corp.example.com"), []byte("dev1"))
	if !ok || got.LastAction != "block" || !got.LastSeen.Equal(now.Add(time.Minute)) || !got.FirstSeen.Equal(now) {
		t.Fatalf("after a newer remote record: %+v", got)
	}
	// An older remote record does not undo this node's newer sighting.
	d.Touch([]byte("alice@corp.example.com"), []byte("DEV1"), []byte("iPhone"), nil, now.Add(2*time.Minute))
	d.ApplyRemote(remote.Key(), data)
	if got, _ := d.Get([]byte("alice@corp.example.com"), []byte("DEV1")); !got.LastSeen.Equal(now.Add(2 * time.Minute)) {
		t.Fatalf("an older remote record replaced a newer one: %v", got.LastSeen)
	}
	d.ApplyRemote(remote.Key(), nil)
	if _, ok := d.Get([]byte("alice@corp.example.com"), []byte("DEV1")); ok {
		t.Fatal("a device forgotten on another node is still here")
	}
	d.ApplyRemote("no-nul", data)
	d.ApplyRemote(remote.Key(), []byte("{"))
	if d.Len() != 0 {
		t.Fatal("bad records were applied")
	}
}

func TestOverridesApplyRemote(t *testing.T) {
	o := NewOverrides(nil)
	ov := Override{User: "alice@corp.example.com", DeviceID: "DEV1", Action: "block", By: "admin"}
	data, _ := json.Marshal(&ov)
	u, dev, ok := o.ApplyRemote(ov.Key(), data)
	if !ok || u != ov.User || dev != ov.DeviceID {
		t.Fatalf("ApplyRemote = %q %q %v", u, dev, ok)
	}
	if a, ok := o.Lookup([]byte("alice@corp.example.com"), []byte("dev1")); !ok || a != Block {
		t.Fatalf("Lookup after a remote block: %v %v", a, ok)
	}
	if _, _, ok := o.ApplyRemote(ov.Key(), nil); !ok || o.Len() != 0 {
		t.Fatal("a remote removal was not applied")
	}
	bad, _ := json.Marshal(&Override{User: "u", DeviceID: "d", Action: "explode"})
	if _, _, ok := o.ApplyRemote("u\x00d", bad); ok || o.Len() != 0 {
		t.Fatal("an override with a bad action was applied")
	}
}

type recStore struct{ b map[string]map[string][]byte }

func (s *recStore) Update(bucket string, puts map[string][]byte, deletes []string) error {
	if s.b[bucket] == nil {
		s.b[bucket] = map[string][]byte{}
	}
	for k, v := range puts {
		s.b[bucket][k] = v
	}
	for _, k := range deletes {
		delete(s.b[bucket], k)
	}
	return nil
}
func (s *recStore) ForEach(bucket string, fn func(k, v []byte) error) error {
	for k, v := range s.b[bucket] {
		if err := fn([]byte(k), v); err != nil {
			return err
		}
	}
	return nil
}
func (s *recStore) Get(bucket, key string) ([]byte, bool, error) {
	v, ok := s.b[bucket][key]
	return v, ok, nil
}
func (s *recStore) Close() error { return nil }

// Two nodes appending to one trail never overwrite each other's entries,
// and a node numbers after the entries the other appended.
func TestAuditTwoNodes(t *testing.T) {
	st := &recStore{b: map[string]map[string][]byte{}}
	a, _ := NewAudit(st)
	b, _ := NewAudit(st)
	a.SetNode("nodeA")
	b.SetNode("nodeB")
	ea, _ := a.Append(AuditEntry{Actor: "x", Action: "block", User: "u", DeviceID: "d1"})
	eb, _ := b.Append(AuditEntry{Actor: "y", Action: "allow", User: "u", DeviceID: "d2"})
	if ea.Seq != 1 || eb.Seq != 1 || len(st.b[BucketAudit]) != 2 {
		t.Fatalf("seqs %d %d, %d entries stored; want two entries", ea.Seq, eb.Seq, len(st.b[BucketAudit]))
	}
	for k := range st.b[BucketAudit] {
		b.ApplyRemote(k, nil)
	}
	if e, _ := b.Append(AuditEntry{Actor: "y", Action: "allow", User: "u", DeviceID: "d3"}); e.Seq != 2 {
		t.Fatalf("next seq on B = %d, want 2", e.Seq)
	}
	c, _ := NewAudit(st)
	if e, _ := c.Append(AuditEntry{Actor: "z", Action: "allow", User: "u", DeviceID: "d4"}); e.Seq != 3 {
		t.Fatalf("a restarted node numbers from %d, want 3 (keys with node suffixes are read)", e.Seq)
	}
}
