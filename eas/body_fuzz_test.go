package eas

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// bodySeeds adds every testdata body, and a few hand-made edge cases, to a
// fuzz corpus.
func bodySeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(bodyDir, "*.wbxml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed bodies in %s: %v", bodyDir, err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x03, 0x01, 0x6A, 0x00})
	f.Add([]byte{0x03, 0x01, 0x6A, 0x00, 0x00, 0x0D, 0x45, 0x48, 0x03, '4', '8', '0', 0x00, 0x48, 0x03, '9', 0x00, 0x01, 0x01})
	f.Add([]byte{0x03, 0x01, 0x6A, 0x00, 0x45, 0x64, 0xC3, 0x02, '1', '0', 0x01, 0x01})
	// Sync > Collections > Collection > Commands > {Add > ClientId "c",
	// Fetch > ServerId "1"}, GetChanges "0", and a Wait.
	f.Add([]byte{0x03, 0x01, 0x6A, 0x00, 0x45, 0x5C, 0x4F, 0x4B, 0x03, '1', 0x00, 0x01, 0x53, 0x03, '0', 0x00, 0x01,
		0x56, 0x47, 0x4C, 0x03, 'c', 0x00, 0x01, 0x01, 0x4A, 0x4D, 0x03, '1', 0x00, 0x01, 0x01, 0x01, 0x01, 0x01,
		0x64, 0x03, '5', 0x00, 0x01, 0x01})
}

func FuzzReadDeviceInfo(f *testing.F) {
	bodySeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) { bodyCheckAll(t, body) })
}

func FuzzReadProvision(f *testing.F) {
	bodySeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var p ProvisionInfo
		var di DeviceInfo
		err := ReadProvision(body, &p, &di)
		if err == nil && !p.HasDeviceInfo && !di.IsZero() {
			t.Fatalf("DeviceInfo filled without HasDeviceInfo: %+v", di)
		}
		if err == nil && !p.HasPolicyKey && p.PolicyKey != 0 {
			t.Fatal("PolicyKey set without HasPolicyKey")
		}
		bodyCheckAll(t, body)
	})
}

func FuzzReadPing(f *testing.F) {
	bodySeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var p PingInfo
		if err := ReadPing(body, &p); err == nil {
			if p.Empty != (len(body) == 0) || p.HeartbeatInterval < 0 || p.Status < 0 {
				t.Fatalf("inconsistent %+v", p)
			}
			secs, ok, err := ReadPingInterval(body)
			if err != nil || (ok && secs < 0) || (!ok && secs != 0) {
				t.Fatalf("ReadPingInterval: %d %v %v", secs, ok, err)
			}
		}
		bodyCheckAll(t, body)
	})
}

func FuzzReadSync(f *testing.F) {
	bodySeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var s SyncInfo
		if err := ReadSync(body, &s); err == nil {
			if s.Empty != (len(body) == 0) {
				t.Fatalf("Empty=%v for %d bytes", s.Empty, len(body))
			}
			// A second read into the same (reused) SyncInfo agrees.
			again := SyncInfo{Collections: s.Collections}
			snapshot := fmt.Sprint(s)
			if err := ReadSync(body, &again); err != nil || fmt.Sprint(again) != snapshot {
				t.Fatalf("re-read differs: %v\n%s\n%v", err, snapshot, again)
			}
		}
		bodyCheckAll(t, body)
	})
}

func FuzzReadFolderSync(f *testing.F) {
	bodySeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var fs FolderSyncInfo
		if err := ReadFolderSync(body, &fs); err == nil {
			if in, ok := fs.Inbox(); ok && in.Type != FolderTypeInbox {
				t.Fatalf("Inbox() returned type %d", in.Type)
			}
		}
		bodyCheckAll(t, body)
	})
}
