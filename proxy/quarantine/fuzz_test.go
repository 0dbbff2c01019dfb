package quarantine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// seeds returns the request bodies in testdata/requests plus generated ones.
func seeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "requests", "*.wbxml"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(syncBody([]col{{key: "Qtest-1", id: "5", bodyTypes: []int{2, 4}, getChanges: "1"}}, 5, 0))
	f.Add(pingBody(480, "5", "8"))
	f.Add(estimateBody(true, [2]string{"Qtest-1", "5"}))
	f.Add(folderSyncRequest("0"))
	f.Add([]byte{})
}

// FuzzSettings feeds any body to settings (its reader, eas.ReadSettings,
// has its own fuzz target in eas, as the other request readers do; the
// emulator's use of them is FuzzAnswer's). It never panics, and an answer
// it gives is a Settings response with Status 1 and a Status in every
// entry.
func FuzzSettings(f *testing.F) {
	seeds(f)
	f.Add(settingsBody(wbxml.SettingsDeviceInformation, wbxml.SettingsOof, wbxml.SettingsUserInformation))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, ok := settings(body)
		if !ok {
			if a.HTTPStatus != 0 || a.Body != nil {
				t.Fatalf("no answer, yet %+v", a)
			}
			return
		}
		n, err := decodeTree(a.Body)
		if err != nil || n.Tag != wbxml.SettingsSettings || n.text(wbxml.SettingsStatus) != "1" {
			t.Fatalf("answer %v: % X", err, a.Body)
		}
		for _, c := range n.Children[1:] {
			if s := c.text(wbxml.SettingsStatus); s != "1" && s != "7" {
				t.Fatalf("%v Status %q", c.Tag, s)
			}
		}
	})
}

// FuzzAnswer feeds any body to every emulated command: the answer must be
// well-formed WBXML (or none), never a panic.
func FuzzAnswer(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		e := newTestEmulator(t, nil)
		p := newPhone(&testing.T{}, e, eas.V141)
		p.hierarchy()
		for _, cmd := range []eas.Command{eas.CmdSync, eas.CmdPing, eas.CmdGetItemEstimate, eas.CmdFolderSync, eas.CmdSettings} {
			for _, v := range []eas.Version{eas.V121, eas.V141} {
				a := e.Answer(android, Request{Command: cmd, Version: v, Body: body})
				if len(a.Body) > 0 {
					if _, err := decodeTree(a.Body); err != nil {
						t.Fatalf("%s %s: answer does not decode: %v", v, cmd, err)
					}
				}
				if a.HTTPStatus == 0 && !a.Forward {
					t.Fatalf("%s %s: no status", v, cmd)
				}
			}
		}
		e.LearnFolderSync([]byte(android.User), []byte(android.DeviceID), body)
	})
}
