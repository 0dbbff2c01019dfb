package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/easgate/easgate/eas"
)

// BucketOverrides holds the administrators' per-device overrides;
// BucketAudit the audit trail of their actions.
const (
	BucketOverrides = "overrides"
	BucketAudit     = "audit"
)

// Override is an administrator's decision for one device: it ranks where
// Exchange ranks a user's allowed and blocked device ids (before discovery,
// device rules and compliance), and above the config file's per-user lists,
// since it is the newer word. It lives in the state store, not in the
// config file, so it survives restarts and reloads.
type Override struct {
	User     string    `json:"user"`
	DeviceID string    `json:"device_id"`
	Action   string    `json:"action"` // allow, block or quarantine
	By       string    `json:"by"`     // the token name or certificate subject that set it
	At       time.Time `json:"at"`
	Note     string    `json:"note,omitempty"`
	// Like is the device whose approval this one carried over (device-id
	// churn: `easgate devices allow --like OLD`).
	Like string `json:"like,omitempty"`
}

// Key is the override's store key: the key of the device's record.
func (o *Override) Key() string {
	return string(AppendDeviceKey(nil, []byte(o.User), []byte(o.DeviceID)))
}

// Overrides is the table of admin overrides. Lookup is for the request
// path: a read lock and one map lookup, no allocation. Set and Delete write
// the store first (synchronously: they run on the admin path), then the
// table. It is safe for concurrent use.
type Overrides struct {
	store Store
	n     atomic.Int64 // entries, so that an empty table costs one load
	mu    sync.RWMutex
	m     map[string]overrideEntry
}

type overrideEntry struct {
	action Action
	o      *Override
}

// NewOverrides returns an empty table backed by st (nil: memory only).
func NewOverrides(st Store) *Overrides {
	return &Overrides{store: st, m: map[string]overrideEntry{}}
}

// Load reads every override from the store. Records that do not decode are
// skipped and reported together.
func (t *Overrides) Load() error { return t.LoadCanonical(nil) }

// LoadCanonical is Load with the user-name rule of auth.domains (canon:
// eas.Domains.Canonical): an override stored under an older spelling of
// its user (before auth.domains was set or changed) still applies to the
// canonical name the request path decides on.
func (t *Overrides) LoadCanonical(canon func(string) (string, error)) error {
	if t.store == nil {
		return nil
	}
	var bad []error
	m := map[string]overrideEntry{}
	err := t.store.ForEach(BucketOverrides, func(k, v []byte) error {
		var o Override
		if err := json.Unmarshal(v, &o); err != nil {
			bad = append(bad, fmt.Errorf("override %q does not decode: %w", k, err))
			return nil
		}
		if canon != nil {
			if u, err := canon(o.User); err == nil {
				o.User = u
			}
		}
		a, ok := ParseAction(o.Action)
		if !ok || o.DeviceID == "" {
			bad = append(bad, fmt.Errorf("override %q: bad action %q or empty device", k, o.Action))
			return nil
		}
		m[o.Key()] = overrideEntry{action: a, o: &o}
		return nil
	})
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.m = m
	t.n.Store(int64(len(m)))
	t.mu.Unlock()
	return errors.Join(bad...)
}

// Lookup returns the override for the device of user (canonical form), if
// any. It allocates nothing.
func (t *Overrides) Lookup(user, device []byte) (Action, bool) {
	if t == nil || t.n.Load() == 0 {
		return Allow, false
	}
	var buf [eas.MaxUserLen + 1 + eas.MaxDeviceIDLen]byte
	k := AppendDeviceKey(buf[:0], user, device)
	t.mu.RLock()
	e, ok := t.m[string(k)]
	t.mu.RUnlock()
	return e.action, ok
}

// Get returns a copy of the device's override.
func (t *Overrides) Get(user, device string) (Override, bool) {
	if t == nil {
		return Override{}, false
	}
	k := AppendDeviceKey(nil, []byte(user), []byte(device))
	t.mu.RLock()
	e, ok := t.m[string(k)]
	t.mu.RUnlock()
	if !ok {
		return Override{}, false
	}
	return *e.o, true
}

// Set stores o (its Action must be allow, block or quarantine).
func (t *Overrides) Set(o Override) error {
	a, ok := ParseAction(o.Action)
	if !ok {
		return fmt.Errorf("override action %q: want allow, block or quarantine", o.Action)
	}
	if o.User == "" || o.DeviceID == "" {
		return errors.New("override: user and device id are required")
	}
	k := o.Key()
	if t.store != nil {
		data, err := json.Marshal(&o)
		if err != nil {
			return err
		}
		if err := t.store.Update(BucketOverrides, map[string][]byte{k: data}, nil); err != nil {
			return err
		}
	}
	t.mu.Lock()
	t.m[k] = overrideEntry{action: a, o: &o}
	t.n.Store(int64(len(t.m)))
	t.mu.Unlock()
	return nil
}

// Change writes many overrides and removals (each a user and device id)
// in one store transaction, then applies them to the table: what a bulk
// action does.
func (t *Overrides) Change(set []Override, remove []Override) error {
	puts := make(map[string][]byte, len(set))
	entries := make(map[string]overrideEntry, len(set))
	for i := range set {
		o := set[i]
		a, ok := ParseAction(o.Action)
		if !ok || o.User == "" || o.DeviceID == "" {
			return fmt.Errorf("override %q of %q: bad action %q or empty name", o.DeviceID, o.User, o.Action)
		}
		k := o.Key()
		data, err := json.Marshal(&o)
		if err != nil {
			return err
		}
		puts[k], entries[k] = data, overrideEntry{action: a, o: &o}
	}
	dels := make([]string, 0, len(remove))
	for i := range remove {
		dels = append(dels, remove[i].Key())
	}
	if t.store != nil {
		if err := t.store.Update(BucketOverrides, puts, dels); err != nil {
			return err
		}
	}
	t.mu.Lock()
	for k, e := range entries {
		t.m[k] = e
	}
	for _, k := range dels {
		delete(t.m, k)
	}
	t.n.Store(int64(len(t.m)))
	t.mu.Unlock()
	return nil
}

// Delete removes the device's override (no error when there is none).
func (t *Overrides) Delete(user, device string) error {
	k := string(AppendDeviceKey(nil, []byte(user), []byte(device)))
	if t.store != nil {
		if err := t.store.Update(BucketOverrides, nil, []string{k}); err != nil {
			return err
		}
	}
	t.mu.Lock()
	delete(t.m, k)
	t.n.Store(int64(len(t.m)))
	t.mu.Unlock()
	return nil
}

// All returns a copy of every override.
func (t *Overrides) All() []Override {
	if t == nil {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Override, 0, len(t.m))
	for _, e := range t.m {
		out = append(out, *e.o)
	}
	return out
}

// Len returns the number of overrides.
func (t *Overrides) Len() int {
	if t == nil {
		return 0
	}
	return int(t.n.Load())
}
