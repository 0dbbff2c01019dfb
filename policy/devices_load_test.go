package policy

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy/store"
)

// TestLoadCanonicalMovesOldKeys: records written before device ids were
// folded and before auth.domains are found under the canonical key after an
// upgrade, keep their first-seen time and device information (so phones do
// not fall back into device discovery), and their old keys are gone.
func TestLoadCanonicalMovesOldKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := store.Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	first := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	old := func(user, dev string, seen time.Time, info eas.DeviceInfo) (string, []byte) {
		r := DeviceRecord{User: user, DeviceID: dev, FirstSeen: first, LastSeen: seen, Info: info}
		data, _ := json.Marshal(&r)
		return lowerString(user) + "\x00" + dev, data // the key the older version wrote
	}
	k1, v1 := old(`CORP\jdoe`, "ApplDMPL69PZF18P", first.Add(time.Hour), eas.DeviceInfo{Model: "iPad3C6"})
	k2, v2 := old("jdoe@corp.example.com", "APPLDMPL69PZF18P", first.Add(2*time.Hour), eas.DeviceInfo{})
	k3, v3 := old("bob@corp.example.com", "SEC17CD1A3E9E3F2", first, eas.DeviceInfo{Model: "SM-N900V"})
	if err := st.Update(BucketDevices, map[string][]byte{k1: v1, k2: v2, k3: v3}, nil); err != nil {
		t.Fatal(err)
	}
	doms, _ := eas.NewDomains([]string{"corp.example.com"}, nil)
	d := NewDevices(st)
	if err := d.LoadCanonical(doms.Canonical); err != nil {
		t.Fatal(err)
	}
	got, ok := d.Get([]byte("jdoe@corp.example.com"), []byte("appldmpl69pzf18p"))
	if !ok || !got.FirstSeen.Equal(first) || got.Info.Model != "iPad3C6" || !got.LastSeen.Equal(first.Add(2*time.Hour)) {
		t.Fatalf("merged record: %+v %v", got, ok)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	if err := st.ForEach(BucketDevices, func(k, _ []byte) error { keys[string(k)] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"jdoe@corp.example.com\x00appldmpl69pzf18p": true, "bob@corp.example.com\x00sec17cd1a3e9e3f2": true}
	if len(keys) != len(want) {
		t.Fatalf("store keys %v, want %v", keys, want)
	}
	for k := range want {
		if !keys[k] {
			t.Fatalf("store keys %v lack %q", keys, k)
		}
	}
	// What explain reads, from the canonical names.
	if r, ok, err := LoadDevice(st, "jdoe@corp.example.com", "ApplDMPL69PZF18P"); err != nil || !ok || r.Info.Model != "iPad3C6" {
		t.Fatalf("LoadDevice: %+v %v %v", r, ok, err)
	}
}
