package policy

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// BucketCompliance holds compliance tables one node pulled or read for all
// (the Graph table under sources.GraphShareKey, the compliance file's
// under sources.FileShareKey).
const BucketCompliance = "compliance"

// SharedStore is a Store that several easgate nodes share
// (policy/store/postgres). Besides the Store methods it feeds every node
// the changes the others make, so that each node's in-memory tables
// (devices, overrides, quarantine records, lockout counters, verdicts)
// follow the shared truth, and it grants leases for the jobs one node does
// at a time. Update must not wait on the database: it queues.
type SharedStore interface {
	Store
	// Subscribe calls fn, from the feed goroutine and in change order, for
	// each change another node makes to bucket (value nil: deleted).
	Subscribe(bucket string, fn func(key string, value []byte))
	// Start runs the writer and the change feed; subscribe first.
	Start()
	// Health reports the database's state for metrics and /readyz.
	Health() SharedHealth
	// TryLease takes or renews the lease name for ttl and reports whether
	// this node holds it.
	TryLease(ctx context.Context, name string, ttl time.Duration) (bool, error)
	// ReleaseLease gives a held lease up.
	ReleaseLease(ctx context.Context, name string) error
}

// SharedHealth is the state of a SharedStore.
type SharedHealth struct {
	Up        bool   // the last database operation succeeded
	Pending   int    // records queued for writing
	Written   uint64 // records this node wrote
	Applied   uint64 // records of other nodes applied here
	Version   int64  // the last change version applied
	LastError string // why the database is down ("" while up)
}

// ApplyRemote applies another node's change to a device record (value nil:
// the device was forgotten) without writing it back. A record this node
// saw more recently keeps its own copy: the next Flush sends it.
func (d *Devices) ApplyRemote(key string, value []byte) {
	user, device, ok := strings.Cut(key, "\x00")
	if !ok {
		return
	}
	k := d.key([]byte(user), []byte(device))
	sh := d.shard(k)
	if value == nil {
		sh.lock()
		if r, ok := sh.m[k]; ok && recordIs(r, []byte(user), []byte(device)) {
			delete(sh.m, k)
		}
		sh.mu.Unlock()
		return
	}
	var rec DeviceRecord
	if json.Unmarshal(value, &rec) != nil || rec.DeviceID == "" {
		return
	}
	sh.lock()
	if r, ok := sh.m[k]; ok && recordIs(r, []byte(rec.User), []byte(rec.DeviceID)) {
		if r.LastSeen.After(rec.LastSeen) {
			sh.mu.Unlock()
			return
		}
		if r.FirstSeen.Before(rec.FirstSeen) && !r.FirstSeen.IsZero() {
			rec.FirstSeen = r.FirstSeen
		}
	}
	sh.m[k] = &rec
	sh.mu.Unlock()
}

// ApplyRemote applies another node's change to an override (value nil:
// removed) without writing it back, and returns the device it concerns so
// that the caller can wake the device's held requests.
func (t *Overrides) ApplyRemote(key string, value []byte) (user, device string, ok bool) {
	if value == nil {
		t.mu.Lock()
		e, had := t.m[key]
		delete(t.m, key)
		t.n.Store(int64(len(t.m)))
		t.mu.Unlock()
		if !had {
			u, d, _ := strings.Cut(key, "\x00")
			return u, d, true
		}
		return e.o.User, e.o.DeviceID, true
	}
	var o Override
	if json.Unmarshal(value, &o) != nil {
		return "", "", false
	}
	a, valid := ParseAction(o.Action)
	if !valid || o.User == "" || o.DeviceID == "" {
		return "", "", false
	}
	t.mu.Lock()
	t.m[o.Key()] = overrideEntry{action: a, o: &o}
	t.n.Store(int64(len(t.m)))
	t.mu.Unlock()
	return o.User, o.DeviceID, true
}

// SetNode makes the trail's store keys unique to this node: with several
// nodes appending to one shared trail, two entries with the same sequence
// number must not overwrite each other. Keys stay in sequence order.
func (a *Audit) SetNode(node string) {
	a.mu.Lock()
	a.node = node
	a.mu.Unlock()
}

// ApplyRemote notes an entry another node appended, so that this node's
// next entry numbers after it.
func (a *Audit) ApplyRemote(key string, value []byte) {
	if n, ok := auditSeq(key); ok {
		a.mu.Lock()
		a.seq = max(a.seq, n)
		a.mu.Unlock()
	}
}

// auditSeq reads the sequence number at the start of an audit key.
func auditSeq(key string) (uint64, bool) {
	end := 0
	for end < len(key) && key[end] >= '0' && key[end] <= '9' {
		end++
	}
	n, err := strconv.ParseUint(key[:end], 10, 64)
	return n, err == nil
}
