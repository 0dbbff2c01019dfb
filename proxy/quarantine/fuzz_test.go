package quarantine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/easgate/easgate/eas"
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

func FuzzParseSync(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseSync(body)
		if err == nil && r == nil {
			t.Fatal("nil request without error")
		}
		if err == nil && len(r.Cols) > maxCollections {
			t.Fatalf("%d collections", len(r.Cols))
		}
		parseEstimate(body)
		folderSyncKey(body)
		settings(body)
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
