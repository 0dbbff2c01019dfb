package sources

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easgate/easgate/policy"
)

// fakeShare is the shared state database as a file source sees it: a lease
// the test hands out, and the tables the source published.
type fakeShare struct {
	lease     atomic.Bool
	released  atomic.Int32
	imported  atomic.Int32
	mu        sync.Mutex
	published [][]byte
}

func (s *fakeShare) config() FileShare {
	return FileShare{
		Lease:   func(context.Context) bool { return s.lease.Load() },
		Release: func() { s.released.Add(1) },
		Publish: func(b []byte) {
			s.mu.Lock()
			s.published = append(s.published, b)
			s.mu.Unlock()
		},
		OnImport: func() { s.imported.Add(1) },
	}
}

func (s *fakeShare) tables() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.published...)
}

func lookup(t *testing.T, src policy.Source, user, dev string) policy.State {
	t.Helper()
	v, err := src.Lookup(context.Background(), policy.Query{User: user, DeviceID: dev})
	if err != nil {
		t.Fatal(err)
	}
	return v.State
}

func writeCSV(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A table the leading node read and exported answers the same lookups on a
// node that imports it, in place of that node's own file; the import is
// reported once, shows in the status file, and an older table (or the same
// one again) does not replace it.
func TestFileExportImport(t *testing.T) {
	leader, err := NewFile("testdata/compliance.csv")
	if leader == nil {
		t.Fatal(err)
	}
	data, err := leader.Export()
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	own := filepath.Join(dir, "own.csv")
	writeCSV(t, own, "alice@corp.example.com,ApplDMPL69PZF18P,noncompliant\nzed@corp.example.com,ZED1,compliant\n")
	acc, st := GuardPaths("file", own, "", "")
	follower, err := NewFileGuarded(own, Guard{AcceptPath: acc, StatusPath: st})
	if err != nil {
		t.Fatal(err)
	}
	sh := &fakeShare{}
	follower.Share(sh.config())
	if err := follower.Import(data); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct{ user, dev string }{
		{"alice@corp.example.com", "ApplDMPL69PZF18P"},
		{`CORP\alice`, "appldmpl69pzf18p"},
		{"bob@corp.example.com", "SEC17CD1A3E9E3F2"},
		{"carol@corp.example.com", "androidc195792594"}, // grace until 2030
		{"dave@corp.example.com", "BF36923991ADFBA9"},   // expired row: unknown on both
		{"zed@corp.example.com", "ZED1"},                // only in the follower's own file
	} {
		if got, want := lookup(t, follower, q.user, q.dev), lookup(t, leader, q.user, q.dev); got != want {
			t.Errorf("%s/%s: follower %v, leader %v", q.user, q.dev, got, want)
		}
	}
	if follower.Len() != leader.Len() {
		t.Errorf("follower has %d entries, leader %d", follower.Len(), leader.Len())
	}
	if n := sh.imported.Load(); n != 1 {
		t.Fatalf("OnImport called %d times, want 1", n)
	}
	status, err := ReadStatus(st)
	if err != nil {
		t.Fatal(err)
	}
	if status.Shared == nil || status.Shared.Role != RoleFollower || status.Shared.Published.IsZero() || status.Entries != leader.Len() {
		t.Fatalf("follower status %+v (shared %+v)", status, status.Shared)
	}
	leader.mu.Lock()
	wantSum := leader.sum
	leader.mu.Unlock()
	if sum, _ := InspectFile("testdata/compliance.csv"); status.SHA256 != sum.SHA256 || wantSum == [32]byte{} {
		t.Errorf("status names sha256 %s, the leader's file is %s", status.SHA256, sum.SHA256)
	}

	// The same table again, and an older one, change nothing.
	if err := follower.Import(data); err != nil {
		t.Fatal(err)
	}
	if err := follower.Import([]byte(`{"at":"2000-01-01T00:00:00Z","rows":[{"u":"alice@corp.example.com","d":"ApplDMPL69PZF18P","s":"noncompliant"}]}`)); err != nil {
		t.Fatal(err)
	}
	if got := lookup(t, follower, "alice@corp.example.com", "ApplDMPL69PZF18P"); got != policy.StateCompliant {
		t.Fatalf("an older table replaced the newer one: alice is %v", got)
	}
	if n := sh.imported.Load(); n != 1 {
		t.Fatalf("OnImport called %d times after ignored tables, want 1", n)
	}
	if err := follower.Import([]byte(`{"rows":[]}`)); err == nil {
		t.Fatal("a table without a time was accepted")
	}
	if err := follower.Import([]byte(`not json`)); err == nil {
		t.Fatal("garbage was accepted")
	}
}

// The node that holds the lease reads its file, publishes each table it
// applies, and its guard still holds a large drop back (nothing published
// then) until the content is accepted. A node without the lease does not
// read its file at all; one that takes the lease over reads it at once
// and publishes it even though it has not changed, weighed by the guard
// against the table it had imported. While it leads, a late table of the
// previous leader is ignored; Close gives the lease up.
func TestFileSharedLeaseAndGuard(t *testing.T) {
	f, path, ev := newGuardedFile(t, 0.5) // ten compliant devices
	sh := &fakeShare{}
	sh.lease.Store(true)
	f.Share(sh.config())

	if changed, err := f.check(); !changed || err != nil {
		t.Fatalf("first check as leader: changed %v, %v", changed, err)
	}
	if n := len(sh.tables()); n != 1 {
		t.Fatalf("%d tables published on taking the lease, want 1", n)
	}
	if changed, _ := f.check(); changed || len(sh.tables()) != 1 {
		t.Fatal("an unchanged file was published again")
	}

	// 60% fewer entries: held back at the leader, nothing published.
	copyFile(t, "testdata/guard/four.csv", path)
	_, err := f.check()
	var held *HeldBack
	if !errors.As(err, &held) || held.Reason != HoldDrop {
		t.Fatalf("a 60%% drop at the leader: %v", err)
	}
	if len(sh.tables()) != 1 || f.Len() != 10 {
		t.Fatalf("a held-back reload was published (%d tables) or applied (%d entries)", len(sh.tables()), f.Len())
	}
	// Accepted with the marker command's file: applied and published.
	sum, _ := InspectFile(path)
	acc, st := GuardPaths("file", path, "", "")
	if err := WriteAccept(acc, sum.SHA256); err != nil {
		t.Fatal(err)
	}
	if changed, err := f.check(); !changed || err != nil || f.Len() != 4 || len(sh.tables()) != 2 {
		t.Fatalf("accepted content: changed %v, %v, %d entries, %d tables", changed, err, f.Len(), len(sh.tables()))
	}
	if got := ev.all(); len(got) == 0 || got[len(got)-1].EndedBy != EndedByAcceptFile {
		t.Fatalf("guard events %+v", got)
	}
	if s, err := ReadStatus(st); err != nil || s.Shared == nil || s.Shared.Role != RoleLeader || s.Entries != 4 {
		t.Fatalf("leader status %+v, %v", s, err)
	}

	// Lease lost: the file is no longer read.
	sh.lease.Store(false)
	copyFile(t, "testdata/guard/full.csv", path)
	if changed, err := f.check(); changed || err != nil || f.Len() != 4 {
		t.Fatalf("a follower read its file: changed %v, %v, %d entries", changed, err, f.Len())
	}
	if s, _ := ReadStatus(st); s == nil || s.Shared == nil || s.Shared.Role != RoleFollower {
		t.Fatalf("status after losing the lease: %+v", s)
	}
	// Another node publishes two entries (it read its own file).
	other := filepath.Join(t.TempDir(), "other.csv")
	copyFile(t, "testdata/guard/truncated.csv", other)
	o, _ := NewFileGuarded(other, Guard{MaxDrop: 1})
	o.mu.Lock()
	o.sharedAt = time.Now().Add(time.Second) // a later table than fourTable
	o.mu.Unlock()
	twoTable, err := o.Export()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Import(twoTable); err != nil || f.Len() != 2 {
		t.Fatalf("import: %v, %d entries", err, f.Len())
	}

	// Lease taken back: the own file (ten entries, unchanged on disk
	// since the check above) is read at once and published.
	sh.lease.Store(true)
	if changed, err := f.check(); !changed || err != nil || f.Len() != 10 || len(sh.tables()) != 3 {
		t.Fatalf("takeover: changed %v, %v, %d entries, %d tables", changed, err, f.Len(), len(sh.tables()))
	}
	if !sameStates(verdicts(t, f), []policy.State{0: policy.StateCompliant, 1: policy.StateCompliant, 2: policy.StateCompliant, 3: policy.StateCompliant,
		4: policy.StateCompliant, 5: policy.StateCompliant, 6: policy.StateCompliant, 7: policy.StateCompliant, 8: policy.StateCompliant, 9: policy.StateCompliant}) {
		t.Fatalf("verdicts after takeover %v", verdicts(t, f))
	}
	// A late table of the previous leader does not replace the file's.
	o.mu.Lock()
	o.sharedAt = time.Now().Add(time.Hour)
	o.mu.Unlock()
	late, _ := o.Export()
	if err := f.Import(late); err != nil || f.Len() != 10 {
		t.Fatalf("a late table replaced the leader's own: %v, %d entries", err, f.Len())
	}
	// Each published table is newer than the one before, and the one
	// after the takeover newer than the table imported from a node whose
	// clock ran ahead.
	var last time.Time
	for i, b := range append(sh.tables()[:2], twoTable, sh.tables()[2]) {
		var tab sharedFileTable
		if err := json.Unmarshal(b, &tab); err != nil {
			t.Fatal(err)
		}
		if !tab.At.After(last) {
			t.Fatalf("table %d published at %v, not after %v", i, tab.At, last)
		}
		last = tab.At
	}
	if err := f.Close(); err != nil || sh.released.Load() != 1 {
		t.Fatalf("close: %v, released %d times", err, sh.released.Load())
	}
}

// A drop a follower's guard would hold back does not apply to the table
// the leader published: the leader's guard already weighed it. A hold on
// the follower's own file, left from when it led, ends when the table
// arrives.
func TestFileImportEndsOwnHold(t *testing.T) {
	f, path, ev := newGuardedFile(t, 0.5)
	copyFile(t, "testdata/guard/four.csv", path)
	if _, err := f.Reload(); err == nil {
		t.Fatal("a 60% drop was not held back")
	}
	sh := &fakeShare{}
	f.Share(sh.config())
	other := filepath.Join(t.TempDir(), "other.csv")
	copyFile(t, "testdata/guard/truncated.csv", other)
	o, _ := NewFileGuarded(other, Guard{MaxDrop: 1})
	table, _ := o.Export()
	if err := f.Import(table); err != nil || f.Len() != 2 {
		t.Fatalf("import: %v, %d entries", err, f.Len())
	}
	if f.HeldBack() != nil {
		t.Fatal("the own file's hold outlived the import")
	}
	if got := ev.all(); got[len(got)-1].EndedBy != EndedByShared {
		t.Fatalf("guard events %+v", got)
	}
}

// FuzzFileImport: a table from the shared store never panics the source,
// and what it installs exports again. Seeded from a real export.
func FuzzFileImport(f *testing.F) {
	src, err := NewFile("testdata/compliance.csv")
	if src == nil {
		f.Fatal(err)
	}
	real, err := src.Export()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real)
	f.Add([]byte(`{"at":"2026-11-27T09:00:00Z","sha256":"zz","rows":[{"u":"","d":"x","s":"compliant"},{"u":"a","d":"b","s":"bogus","e":"2020-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"at":"2026-11-27T09:00:00Z","rows":null}`))
	f.Add([]byte(`null`))
	dir := f.TempDir()
	path := filepath.Join(dir, "c.csv")
	if err := os.WriteFile(path, []byte("alice@corp.example.com,ApplAAA,compliant\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := NewFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Import(data); err != nil {
			return
		}
		out, err := g.Export()
		if err != nil {
			t.Fatalf("an imported table does not export: %v", err)
		}
		h, _ := NewFile(path)
		if err := h.Import(out); err != nil || h.Len() != g.Len() {
			t.Fatalf("re-import of an export: %v, %d entries, want %d", err, h.Len(), g.Len())
		}
		_, _ = g.Lookup(context.Background(), policy.Query{User: "alice@corp.example.com", DeviceID: "ApplAAA"})
	})
}

// A node that takes the lease over with a copy of the file that lost more
// than max_drop of the table in force (the previous leader's) holds it
// back: nothing is published, the previous table stays, and the status
// file says this node leads, so that the hold is accepted here.
func TestFileTakeoverHeldBack(t *testing.T) {
	f, path, _ := newGuardedFile(t, 0.5)
	sh := &fakeShare{}
	f.Share(sh.config())
	if changed, err := f.check(); changed || err != nil {
		t.Fatalf("check without the lease: changed %v, %v", changed, err)
	}
	other := filepath.Join(t.TempDir(), "other.csv")
	copyFile(t, "testdata/guard/full.csv", other)
	o, _ := NewFileGuarded(other, Guard{})
	table, _ := o.Export()
	if err := f.Import(table); err != nil || f.Len() != 10 {
		t.Fatalf("import: %v, %d entries", err, f.Len())
	}
	copyFile(t, "testdata/guard/four.csv", path)
	sh.lease.Store(true)
	_, err := f.check()
	var held *HeldBack
	if !errors.As(err, &held) || held.Reason != HoldDrop || held.Old != 10 || held.New != 4 {
		t.Fatalf("takeover with a 60%% drop: %v", err)
	}
	if f.Len() != 10 || len(sh.tables()) != 0 {
		t.Fatalf("the held-back file was applied (%d entries) or published (%d tables)", f.Len(), len(sh.tables()))
	}
	_, st := GuardPaths("file", path, "", "")
	s, err := ReadStatus(st)
	if err != nil || s.Shared == nil || s.Shared.Role != RoleLeader || s.HeldBack == nil {
		t.Fatalf("status after a held-back takeover: %+v, %v", s, err)
	}
	copyFile(t, "testdata/guard/full.csv", path)
	if changed, err := f.check(); !changed || err != nil || len(sh.tables()) != 1 {
		t.Fatalf("the full file again: changed %v, %v, %d tables", changed, err, len(sh.tables()))
	}
}
