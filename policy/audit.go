package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// AuditEntry is one administrator action, as the audit trail keeps it.
type AuditEntry struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"`          // token name or admin certificate subject
	Role     string    `json:"role,omitempty"` // the actor's role
	Action   string    `json:"action"`         // allow, block, quarantine, default, forget
	User     string    `json:"user"`
	DeviceID string    `json:"device_id"`
	// Before and After are the device's access state and override before
	// and after the action ("quarantined", "allowed (override allow)").
	Before string `json:"before"`
	After  string `json:"after"`
	Note   string `json:"note,omitempty"`
	Like   string `json:"like,omitempty"` // the device whose approval was carried over
	Bulk   bool   `json:"bulk,omitempty"` // part of a bulk action
}

// Audit is the append-only audit trail. With a store each entry is
// written under a zero-padded sequence number (so the store's key order is
// the order of actions) before Append returns; there is no way to change or
// delete an entry. Without a store the trail is kept in memory.
type Audit struct {
	store Store
	mu    sync.Mutex
	seq   uint64
	node  string       // appended to store keys when several nodes share the trail (SetNode)
	mem   []AuditEntry // memory only (no store)
}

// NewAudit opens the trail of st (nil: memory only) and finds its last
// sequence number.
func NewAudit(st Store) (*Audit, error) {
	a := &Audit{store: st}
	if st == nil {
		return a, nil
	}
	err := st.ForEach(BucketAudit, func(k, _ []byte) error {
		if n, ok := auditSeq(string(k)); ok && n > a.seq {
			a.seq = n
		}
		return nil
	})
	return a, err
}

func (a *Audit) key(seq uint64) string {
	if a.node != "" {
		return fmt.Sprintf("%020d-%s", seq, a.node)
	}
	return fmt.Sprintf("%020d", seq)
}

// Append records e (Seq and, when zero, Time are filled in) and returns it.
func (a *Audit) Append(e AuditEntry) (AuditEntry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e.Seq = a.seq + 1
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if a.store == nil {
		a.mem = append(a.mem, e)
		a.seq = e.Seq
		return e, nil
	}
	data, err := json.Marshal(&e)
	if err != nil {
		return e, err
	}
	if err := a.store.Update(BucketAudit, map[string][]byte{a.key(e.Seq): data}, nil); err != nil {
		return e, err
	}
	a.seq = e.Seq
	return e, nil
}

// AppendAll records entries in one store transaction (Seq and, when zero,
// Time filled in) and returns them: all are written or none.
func (a *Audit) AppendAll(entries []AuditEntry) ([]AuditEntry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]AuditEntry, len(entries))
	puts := make(map[string][]byte, len(entries))
	now := time.Now().UTC()
	for i, e := range entries {
		e.Seq = a.seq + uint64(i) + 1
		if e.Time.IsZero() {
			e.Time = now
		}
		out[i] = e
		if a.store != nil {
			data, err := json.Marshal(&e)
			if err != nil {
				return nil, err
			}
			puts[a.key(e.Seq)] = data
		}
	}
	if a.store != nil {
		if err := a.store.Update(BucketAudit, puts, nil); err != nil {
			return nil, err
		}
	} else {
		a.mem = append(a.mem, out...)
	}
	a.seq += uint64(len(out))
	return out, nil
}

// AuditFilter selects audit entries; zero fields match everything.
type AuditFilter struct {
	User     string
	DeviceID string
	Actor    string
	Since    time.Time
}

func (f *AuditFilter) match(e *AuditEntry) bool {
	return (f.User == "" || strings.EqualFold(f.User, e.User)) &&
		(f.DeviceID == "" || strings.EqualFold(f.DeviceID, e.DeviceID)) &&
		(f.Actor == "" || f.Actor == e.Actor) &&
		(f.Since.IsZero() || !e.Time.Before(f.Since))
}

// ReadAudit returns the entries of st (a store) or a (memory) that match
// f, oldest first, the newest limit of them (0: all).
func ReadAudit(st Store, a *Audit, f AuditFilter, limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	keep := func(e AuditEntry) {
		if !f.match(&e) {
			return
		}
		out = append(out, e)
		if limit > 0 && len(out) > 2*limit {
			out = append(out[:0], out[len(out)-limit:]...)
		}
	}
	if st == nil {
		if a == nil {
			return nil, nil
		}
		a.mu.Lock()
		for _, e := range a.mem {
			keep(e)
		}
		a.mu.Unlock()
	} else {
		var bad []error
		err := st.ForEach(BucketAudit, func(k, v []byte) error {
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				bad = append(bad, fmt.Errorf("audit entry %s does not decode: %w", k, err))
				return nil
			}
			keep(e)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(bad) > 0 {
			return nil, errors.Join(bad...)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

// Store returns the trail's store (nil when it is kept in memory).
func (a *Audit) Store() Store { return a.store }
