package sources

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/easgate/easgate/policy"
)

// FileShareKey is the record of policy.BucketCompliance that holds the
// table the node leading the file source read from its compliance file.
const FileShareKey = "file"

// FileShare makes the file source one of several nodes sharing a state
// database (state.url). Only the node that holds the lease reads its file:
// after each reload that changes the table and passes the guard it
// publishes the table, and the other nodes install it (Import) instead of
// their own file's. A node that takes the lease over reads its own file at
// once and publishes that.
type FileShare struct {
	// Lease is asked before every check of the file: true while this node
	// holds (or has just taken) the lease.
	Lease func(context.Context) bool
	// Release gives the lease up (Close, on the leader).
	Release func()
	// Publish receives the table (Export) after each reload the leader
	// applied, and when it takes the lease.
	Publish func(table []byte)
	// OnImport is called after Import installed a table, outside the
	// source's lock (the caller purges the verdicts cached from the old
	// table).
	OnImport func()
}

// Share makes the source shared; call it before Watch.
func (f *File) Share(s FileShare) {
	f.mu.Lock()
	f.share = &s
	f.mu.Unlock()
}

// Leading reports whether this node reads its file now: always without
// Share, and with Share while it holds the lease.
func (f *File) Leading() bool {
	f.mu.Lock()
	shared := f.share != nil
	f.mu.Unlock()
	return !shared || f.leading.Load()
}

// check is one tick of Watch.
func (f *File) check() (bool, error) {
	f.mu.Lock()
	sh := f.share
	f.mu.Unlock()
	if sh == nil || sh.Lease == nil {
		return f.Reload()
	}
	if !sh.Lease(context.Background()) {
		f.leading.Store(false)
		f.mu.Lock()
		if f.guard.shared == nil || f.guard.shared.Role != RoleFollower {
			// Not leading (any more): the table in force is the last one
			// this node published or read at start, until another arrives.
			f.guard.shared = &SharedStatus{Role: RoleFollower, Published: f.sharedAt}
			if t := f.table.Load(); t != nil {
				f.guard.status(t.entries, f.sum)
			}
		}
		f.mu.Unlock()
		return false, nil
	}
	if !f.leading.Swap(true) {
		// Taken over (or started as the leader): the table in force may
		// be another node's, so read this node's file as new content (the
		// guard weighs it against the table in force) and publish it even
		// if it is the same.
		// The status says leader from now on, so that a reload the guard
		// holds back here can be accepted here.
		f.mu.Lock()
		f.sum = [32]byte{}
		f.guard.shared = &SharedStatus{Role: RoleLeader, Published: f.sharedAt, Path: f.path}
		f.mu.Unlock()
	}
	changed, err := f.Reload()
	if changed && sh.Publish != nil {
		if data, xerr := f.Export(); xerr == nil {
			sh.Publish(data)
		}
	}
	return changed, err
}

type sharedFileTable struct {
	At     time.Time       `json:"at"`
	SHA256 string          `json:"sha256"` // of the leader's file
	Path   string          `json:"path,omitempty"`
	Rows   []sharedFileRow `json:"rows"`
}

type sharedFileRow struct {
	User    string    `json:"u"`
	Device  string    `json:"d"`
	State   string    `json:"s"`
	Expires time.Time `json:"e,omitzero"`
}

// Export returns the table in force as JSON, for the shared state store.
// Its time is after that of any table this node published or imported
// before, whatever the clocks of the nodes say, so that the other nodes
// never take it for an older one.
func (f *File) Export() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.table.Load()
	if t == nil {
		return nil, errors.New("compliance file: no table yet")
	}
	at := time.Now().UTC()
	if !at.After(f.sharedAt) {
		at = f.sharedAt.Add(time.Microsecond)
	}
	out := sharedFileTable{At: at, SHA256: hex.EncodeToString(f.sum[:]), Path: f.path, Rows: make([]sharedFileRow, 0, t.entries)}
	for dev, rows := range t.rows {
		for _, r := range rows {
			out.Rows = append(out.Rows, sharedFileRow{User: r.user, Device: dev, State: r.state.String(), Expires: r.expires})
		}
	}
	data, err := json.Marshal(&out)
	if err != nil {
		return nil, err
	}
	f.sharedAt = at
	if f.share != nil {
		f.guard.shared = &SharedStatus{Role: RoleLeader, Published: at, Path: f.path}
		f.guard.status(t.entries, f.sum)
	}
	return data, nil
}

// Import installs a table another node published (Export's output) in
// place of this node's own file, and reports the change through
// FileShare.OnImport. A table no newer than the last one published or
// imported here is ignored, and so is any table while this node leads
// (a late write of the previous leader). Rows that are not valid are skipped, as a malformed line of
// the file would be.
func (f *File) Import(data []byte) error {
	var in sharedFileTable
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	if in.At.IsZero() {
		return errors.New("compliance file: the shared table has no time")
	}
	var sum [32]byte
	if b, err := hex.DecodeString(in.SHA256); err == nil && len(b) == len(sum) {
		copy(sum[:], b)
	}
	t := &fileTable{rows: map[string][]fileRow{}, loaded: time.Now()}
	for _, r := range in.Rows {
		st, ok := policy.ParseState(r.State)
		if !ok || strings.TrimSpace(r.User) == "" || strings.TrimSpace(r.Device) == "" {
			continue
		}
		k := strings.ToLower(r.Device)
		t.rows[k] = append(t.rows[k], fileRow{user: r.User, state: st, expires: r.Expires})
		t.entries++
	}
	f.mu.Lock()
	if f.leading.Load() || !in.At.After(f.sharedAt) {
		f.mu.Unlock()
		return nil
	}
	f.sharedAt = in.At
	f.table.Store(t)
	f.sum = sum
	f.guard.shared = &SharedStatus{Role: RoleFollower, Published: in.At, Path: in.Path}
	if f.guard.held != nil {
		f.guard.end(EndedByShared, t.entries, sum) // this node no longer reads its file
	} else {
		f.guard.status(t.entries, sum)
	}
	onImport := func() {}
	if f.share != nil && f.share.OnImport != nil {
		onImport = f.share.OnImport
	}
	f.mu.Unlock()
	onImport()
	return nil
}
