package sources

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/easgate/easgate/policy"
)

// events records a source's guard events.
type events struct {
	mu  sync.Mutex
	evs []GuardEvent
}

func (e *events) add(ev GuardEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
}

func (e *events) all() []GuardEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]GuardEvent(nil), e.evs...)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// verdicts looks up the ten devices of testdata/guard/full.csv.
func verdicts(t *testing.T, src policy.Source) []policy.State {
	t.Helper()
	out := make([]policy.State, 10)
	for i := range out {
		v, err := src.Lookup(context.Background(), policy.Query{User: fmt.Sprintf("user%d@corp.example.com", i), DeviceID: fmt.Sprintf("ApplDEV00000%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = v.State
	}
	return out
}

func sameStates(a, b []policy.State) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// newGuardedFile starts a file source on a copy of testdata/guard/full.csv
// (ten compliant devices) with its status and accept files next to it.
func newGuardedFile(t *testing.T, maxDrop float64) (*File, string, *events) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.csv")
	copyFile(t, "testdata/guard/full.csv", path)
	ev := &events{}
	acc, st := GuardPaths("file", path, "", "")
	f, err := NewFileGuarded(path, Guard{MaxDrop: maxDrop, AcceptPath: acc, StatusPath: st, OnEvent: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() != 10 {
		t.Fatalf("full.csv: %d entries", f.Len())
	}
	return f, path, ev
}

// TestFileGuardReloads: what a reload of each kind of content does to a
// table of ten entries in force.
func TestFileGuardReloads(t *testing.T) {
	tests := []struct {
		file    string
		maxDrop float64
		reason  HoldReason // "" = applied
		entries int        // in force afterwards
		endedBy string     // event of an applied reload that the guard would have held
		detail  string     // in the HeldBack's Detail
		drop    float64
	}{
		{file: "half.csv", entries: 5},                              // exactly max_drop: applied
		{file: "bom.csv", entries: 10},                              // Excel's byte order mark
		{file: "four.csv", reason: HoldDrop, entries: 10, drop: 60}, // 60% > 50%
		{file: "truncated.csv", reason: HoldDrop, entries: 10, drop: 80, detail: "1 malformed line(s)"},
		{file: "empty.csv", reason: HoldEmpty, entries: 10, drop: 100}, // zero bytes
		{file: "comments-only.csv", reason: HoldEmpty, entries: 10, drop: 100},
		{file: "bad-header.csv", reason: HoldUnparsable, entries: 10, detail: "the header must read user,device_id,state[,expires]"},
		{file: "zeros.csv", reason: HoldUnparsable, entries: 10, drop: 100, detail: "none of its 2 data line(s) is a valid row"},
		{file: "marker-ok.csv", entries: 2, endedBy: EndedByMarkerLine},
		{file: "marker-cut.csv", reason: HoldDrop, entries: 10, drop: 80, detail: "names entries=6 but the file holds 2"},
		{file: "marker-bad.csv", reason: HoldDrop, entries: 10, drop: 80, detail: "must read"},
		{file: "truncated.csv", maxDrop: 1, entries: 2},                 // max_drop 100%: drops pass...
		{file: "empty.csv", maxDrop: 1, reason: HoldEmpty, entries: 10}, // ...empty content does not
		{file: "half.csv", maxDrop: 0.1, reason: HoldDrop, entries: 10, drop: 50},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/max_drop=%g", tc.file, tc.maxDrop), func(t *testing.T) {
			f, path, ev := newGuardedFile(t, tc.maxDrop)
			before := verdicts(t, f)
			copyFile(t, filepath.Join("testdata/guard", tc.file), path)
			changed, err := f.Reload()
			var h *HeldBack
			errors.As(err, &h)
			if f.Len() != tc.entries {
				t.Errorf("%d entries in force, want %d", f.Len(), tc.entries)
			}
			if tc.reason == "" {
				if h != nil || !changed || f.HeldBack() != nil {
					t.Fatalf("want the reload applied: changed %v, %v", changed, err)
				}
				evs := ev.all()
				if tc.endedBy == "" && len(evs) != 0 || tc.endedBy != "" && (len(evs) != 1 || evs[0].EndedBy != tc.endedBy) {
					t.Errorf("events %+v, want ended by %q", evs, tc.endedBy)
				}
				return
			}
			if h == nil || changed {
				t.Fatalf("want the reload held back (%s): changed %v, %v", tc.reason, changed, err)
			}
			if h.Reason != tc.reason || h.Old != 10 || h.Initial || !strings.Contains(h.Detail, tc.detail) ||
				(tc.drop != 0 && h.DropPercent != tc.drop) || len(h.SHA256) != 64 || h.Source != "file" || h.Path != path {
				t.Errorf("held back %+v, want reason %s, 10 old entries, drop %g%%, detail %q", h, tc.reason, tc.drop, tc.detail)
			}
			for _, w := range []string{"held back", "10 entries) stays in force", "easgate compliance accept"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if after := verdicts(t, f); !sameStates(before, after) {
				t.Errorf("verdicts changed under a held-back reload: %v -> %v", before, after)
			}
			evs := ev.all()
			if len(evs) != 1 || evs[0].Held == nil || evs[0].Held.Reason != tc.reason || evs[0].Entries != 10 {
				t.Fatalf("events %+v, want one held-back event", evs)
			}
			// The same content again is not reported again.
			if changed, err := f.Reload(); changed || err != nil || len(ev.all()) != 1 {
				t.Errorf("second look at held content: %v %v, %d events", changed, err, len(ev.all()))
			}
			st, err := ReadStatus(path + ".status")
			if err != nil || st.HeldBack == nil || st.HeldBack.Reason != tc.reason || st.Entries != 10 || st.HeldBack.SHA256 != h.SHA256 {
				t.Errorf("status file %+v %v", st, err)
			}
		})
	}
}

// TestFileGuardAcceptCommand: the accept marker applies exactly the
// content whose digest it names, once.
func TestFileGuardAcceptCommand(t *testing.T) {
	f, path, ev := newGuardedFile(t, 0)
	marker := path + ".accept"
	copyFile(t, "testdata/guard/four.csv", path)
	if _, err := f.Reload(); f.HeldBack() == nil {
		t.Fatalf("four.csv not held back: %v", err)
	}
	four, err := InspectFile(path)
	if err != nil || four.Entries != 4 || four.SHA256 != f.HeldBack().SHA256 {
		t.Fatalf("InspectFile %+v %v, held %+v", four, err, f.HeldBack())
	}

	// A marker naming other content does nothing (and says so).
	other, _ := InspectFile("testdata/guard/half.csv")
	if err := WriteAccept(marker, other.SHA256); err != nil {
		t.Fatal(err)
	}
	if changed, _ := f.Reload(); changed || f.Len() != 10 {
		t.Fatalf("a marker for other content applied the file: %d entries", f.Len())
	}
	// Race: the admin accepted four.csv, but the file changed again before
	// the source looked: the new content is held back on its own.
	if err := WriteAccept(marker, four.SHA256); err != nil {
		t.Fatal(err)
	}
	copyFile(t, "testdata/guard/truncated.csv", path)
	_, err = f.Reload()
	var h *HeldBack
	if !errors.As(err, &h) || h.New != 2 || !strings.Contains(h.Detail, "accept marker names other content") || f.Len() != 10 {
		t.Fatalf("content changed after accept: %v, %d entries", err, f.Len())
	}
	// Back to the accepted content: applied, and the marker is used up.
	copyFile(t, "testdata/guard/four.csv", path)
	if changed, err := f.Reload(); !changed || err != nil || f.Len() != 4 || f.HeldBack() != nil {
		t.Fatalf("accepted content: %v %v, %d entries", changed, err, f.Len())
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("accept marker not removed: %v", err)
	}
	evs := ev.all()
	if last := evs[len(evs)-1]; last.EndedBy != EndedByAcceptFile || last.Entries != 4 {
		t.Errorf("last event %+v, want ended by %s with 4 entries", last, EndedByAcceptFile)
	}
	if st, err := ReadStatus(path + ".status"); err != nil || st.HeldBack != nil || st.Entries != 4 || st.SHA256 != four.SHA256 {
		t.Errorf("status after accept: %+v %v", st, err)
	}
	// Once: the full file, then a drop to four rows again is held back.
	copyFile(t, "testdata/guard/full.csv", path)
	if changed, _ := f.Reload(); !changed || f.Len() != 10 {
		t.Fatalf("growth not applied: %d", f.Len())
	}
	if err := WriteAccept(marker, four.SHA256); err != nil { // a marker the gateway could not remove
		t.Fatal(err)
	}
	f.guard.consumed = [32]byte{}
	copyFile(t, "testdata/guard/four.csv", path)
	if changed, _ := f.Reload(); !changed {
		t.Fatal("a fresh marker for the content did not accept it")
	}
	copyFile(t, "testdata/guard/full.csv", path)
	f.Reload()
	if err := WriteAccept(marker, four.SHA256); err != nil {
		t.Fatal(err)
	}
	f.guard.consumed, _ = parseSum(four.SHA256) // as if the gateway could not remove it
	copyFile(t, "testdata/guard/four.csv", path)
	if changed, _ := f.Reload(); changed || f.Len() != 10 {
		t.Fatalf("a used marker accepted the content a second time: %d entries", f.Len())
	}
}

// TestFileGuardRestored: when the file is written back to the content in
// force, the hold ends without a table change (no purge, no re-decision).
func TestFileGuardRestored(t *testing.T) {
	f, path, ev := newGuardedFile(t, 0)
	copyFile(t, "testdata/guard/empty.csv", path)
	f.Reload()
	copyFile(t, "testdata/guard/full.csv", path)
	if changed, err := f.Reload(); changed || err != nil || f.HeldBack() != nil {
		t.Fatalf("restored: %v %v %+v", changed, err, f.HeldBack())
	}
	evs := ev.all()
	if len(evs) != 2 || evs[1].EndedBy != EndedByRestored || evs[1].Entries != 10 {
		t.Fatalf("events %+v", evs)
	}
}

// TestFileGuardAtStart: with no table to keep, empty or unparsable content
// is an error, unless a marker accepts it.
func TestFileGuardAtStart(t *testing.T) {
	emptyMarked := "# easgate: accept-drop entries=0\n"
	tests := []struct {
		name, content string
		accept        bool // write the accept marker for the content
		reason        HoldReason
	}{
		{name: "empty", content: "", reason: HoldEmpty},
		{name: "header only", content: "user,device_id,state\n", reason: HoldEmpty},
		{name: "bad header", content: "device_id,user,state\nD1,u@x.example,compliant\n", reason: HoldUnparsable},
		{name: "no valid row", content: "u@x.example,D1,sideways\n", reason: HoldUnparsable},
		{name: "marker line", content: emptyMarked},
		{name: "accept marker", content: "", accept: true},
		{name: "one row", content: "u@x.example,D1,compliant\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.csv")
			os.WriteFile(path, []byte(tc.content), 0o600)
			acc, st := GuardPaths("file", path, "", "")
			if tc.accept {
				s, _ := InspectFile(path)
				if err := WriteAccept(acc, s.SHA256); err != nil {
					t.Fatal(err)
				}
			}
			f, err := NewFileGuarded(path, Guard{AcceptPath: acc, StatusPath: st})
			var h *HeldBack
			if tc.reason == "" {
				if f == nil || err != nil {
					t.Fatalf("want a source, got %v", err)
				}
				return
			}
			if f != nil || !errors.As(err, &h) || h.Reason != tc.reason || !h.Initial ||
				!strings.Contains(err.Error(), "refusing to start") || !strings.Contains(err.Error(), path) {
				t.Fatalf("want a %s start error, got %v %v", tc.reason, f, err)
			}
		})
	}
}

func TestGuardPathsAndMarkers(t *testing.T) {
	tests := []struct {
		typ, csv, state, cfg string
		accept, status       string
	}{
		{"file", "/etc/easgate/c.csv", "/var/lib/easgate/state.db", "/etc/easgate/easgate.yaml", "/etc/easgate/c.csv.accept", "/etc/easgate/c.csv.status"},
		{"graph", "", "/var/lib/easgate/state.db", "/etc/easgate/easgate.yaml", "/var/lib/easgate/state.db.graph.accept", "/var/lib/easgate/state.db.graph.status"},
		{"graph", "", "", "/etc/easgate/easgate.yaml", "/etc/easgate/easgate.yaml.graph.accept", "/etc/easgate/easgate.yaml.graph.status"},
		{"graph", "", "", "", "", ""},
	}
	for _, tc := range tests {
		a, s := GuardPaths(tc.typ, tc.csv, tc.state, tc.cfg)
		if a != tc.accept || s != tc.status {
			t.Errorf("GuardPaths(%q, %q, %q, %q) = %q, %q", tc.typ, tc.csv, tc.state, tc.cfg, a, s)
		}
	}
	dir := t.TempDir()
	m := filepath.Join(dir, "x.accept")
	if err := WriteAccept(m, "not-a-digest"); err == nil {
		t.Error("WriteAccept took a bad digest")
	}
	os.WriteFile(m, []byte("garbage\n"), 0o600)
	if _, ok, err := readAccept(m); ok || err == nil || !strings.Contains(err.Error(), "not a SHA-256 digest") {
		t.Errorf("bad marker: %v %v", ok, err)
	}
	sum := strings.Repeat("ab", 32)
	if err := WriteAccept(m, strings.ToUpper(sum)); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := readAccept(m); !ok || err != nil || fmt.Sprintf("%x", got) != sum {
		t.Errorf("marker read back %x %v %v", got, ok, err)
	}
	if _, err := ReadStatus(m); err == nil {
		t.Error("ReadStatus took a marker file")
	}
}

// TestFileGuardBaseline: a new source that replaces one in force (a config
// reload) holds its first load to max_drop against the old table.
func TestFileGuardBaseline(t *testing.T) {
	tests := []struct {
		file    string
		ok      bool
		entries int
	}{
		{"half.csv", true, 5},
		{"four.csv", false, 0},
		{"marker-ok.csv", true, 2},
		{"empty.csv", false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			f, err := NewFileGuarded(filepath.Join("testdata/guard", tc.file), Guard{Baseline: 10})
			var h *HeldBack
			if tc.ok {
				if f == nil || err != nil || f.Len() != tc.entries {
					t.Fatalf("want %d entries, got %v %v", tc.entries, f, err)
				}
				return
			}
			if f != nil || !errors.As(err, &h) || !h.Initial || h.Old != 10 || !strings.Contains(err.Error(), "the compliance source in force (10 entries) stays") {
				t.Fatalf("want a held-back first load, got %v %v", f, err)
			}
		})
	}
}
