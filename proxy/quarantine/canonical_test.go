package quarantine

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
)

// TestLoadCanonicalMovesRecords: quarantine records stored before
// auth.domains (user as the phone wrote it, device id in its case) are
// found under the canonical key after an upgrade, so the device continues
// its episode (same sync keys, notice already delivered) instead of
// starting a new one; where two met, the episode entered last is kept, and
// the next Flush leaves one record under the canonical key.
func TestLoadCanonicalMovesRecords(t *testing.T) {
	doms, err := eas.NewDomains([]string{"corp.example.com"}, map[string]string{"CORP": "corp.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	st := newMemStore()
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	put := func(user, device, prefix string, entered time.Time, delivered bool) string {
		r := Record{User: user, DeviceID: device, EnteredAt: entered, KeyPrefix: prefix, InboxID: "1", NoticeDelivered: delivered}
		b, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		k := user + "\x00" + device // a key as an older version wrote it
		if err := st.Update(Bucket, map[string][]byte{k: b}, nil); err != nil {
			t.Fatal(err)
		}
		return k
	}
	oldA := put(`CORP\jdoe`, "ApplF17XK2Q8N0PA", "qA", t0.Add(time.Hour), true) // the current episode
	oldB := put("jdoe", "applf17xk2q8n0pa", "qB", t0, false)                    // an earlier one, same device
	oldC := put("Alice@Corp.Example.com", "SEC1234", "qC", t0, false)

	e, err := New(Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.LoadCanonical(doms.Canonical); err != nil {
		t.Fatal(err)
	}
	r, ok := e.Get([]byte("jdoe@corp.example.com"), []byte("APPLF17XK2Q8N0PA"))
	if !ok || r.KeyPrefix != "qA" || !r.NoticeDelivered {
		t.Fatalf("jdoe's phone after the upgrade: found %v, episode %q, delivered %v; want the later episode qA, delivered", ok, r.KeyPrefix, r.NoticeDelivered)
	}
	if !e.Active([]byte("alice@corp.example.com"), []byte("sec1234")) {
		t.Fatal("alice's record not found under her canonical name")
	}
	if e.Active([]byte(`CORP\jdoe`), []byte("ApplF17XK2Q8N0PA")) {
		t.Fatal("the record is still found under the old spelling")
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	_ = st.ForEach(Bucket, func(k, _ []byte) error { keys[string(k)] = true; return nil })
	for _, old := range []string{oldA, oldB, oldC} {
		if keys[old] {
			t.Errorf("old key %q still stored after Flush", old)
		}
	}
	for _, want := range []string{
		string(keyBuf(nil, []byte("jdoe@corp.example.com"), []byte("ApplF17XK2Q8N0PA"))),
		string(keyBuf(nil, []byte("alice@corp.example.com"), []byte("SEC1234"))),
	} {
		if !keys[want] {
			t.Errorf("canonical key %q not stored after Flush (have %v)", want, keys)
		}
	}
	if len(keys) != 2 {
		t.Errorf("%d records stored, want 2: %v", len(keys), keys)
	}

	// A second start finds everything in place and moves nothing.
	e2, _ := New(Options{Store: st})
	if err := e2.LoadCanonical(doms.Canonical); err != nil {
		t.Fatal(err)
	}
	e2.dirtyMu.Lock()
	n := len(e2.dirty)
	e2.dirtyMu.Unlock()
	if n != 0 {
		t.Errorf("a start after the move marked %d records to write again", n)
	}
}
