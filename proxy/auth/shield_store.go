package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// shieldRecord is the JSON form of one entry in the "lockout" bucket.
// Digests (failed and known-good passwords) are never written.
type shieldRecord struct {
	Kind     string       `json:"kind"` // user_device | user_addr | user | addr
	User     string       `json:"user,omitempty"`
	Device   string       `json:"device,omitempty"`
	Addr     string       `json:"addr,omitempty"`
	Failures []time.Time  `json:"failures,omitempty"`
	Until    time.Time    `json:"until,omitzero"`
	Users    []sprayEntry `json:"spray_users,omitempty"`
}

type sprayEntry struct {
	User string    `json:"user"`
	At   time.Time `json:"at"`
}

func toRecord(e *entry) shieldRecord {
	r := shieldRecord{Kind: kindNames[e.kind], User: e.user, Device: e.device}
	if e.addr.IsValid() {
		r.Addr = e.addr.String()
	}
	for _, f := range e.fails {
		r.Failures = append(r.Failures, time.Unix(0, f).UTC())
	}
	if e.until != 0 {
		r.Until = time.Unix(0, e.until).UTC()
	}
	for _, m := range e.users {
		r.Users = append(r.Users, sprayEntry{User: m.user, At: time.Unix(0, m.at).UTC()})
	}
	return r
}

// Flush drops expired entries and writes the entries changed since the last
// Flush to the store (deleting the dropped ones); without a store it only
// drops expired entries. A nil Shield does nothing. Call it about once a
// second off the request path. On error the changes stay pending for the
// next Flush.
func (s *Shield) Flush() error {
	if s == nil {
		return nil
	}
	s.Sweep(s.now())
	if s.store == nil {
		return nil
	}
	s.dirtyMu.Lock()
	dirty := s.dirty
	s.dirty = map[uint64]string{}
	s.dirtyMu.Unlock()
	if len(dirty) == 0 {
		return nil
	}
	puts := make(map[string][]byte, len(dirty))
	var deletes []string
	for h, key := range dirty {
		sh := s.shardOf(h)
		sh.mu.RLock()
		e, ok := sh.m[h]
		var rec shieldRecord
		if ok && e.key == key {
			rec = toRecord(e)
		}
		sh.mu.RUnlock()
		if !ok || e.key != key {
			deletes = append(deletes, key)
			continue
		}
		data, err := json.Marshal(&rec)
		if err != nil {
			s.requeue(dirty)
			return fmt.Errorf("auth: lockout record: %w", err)
		}
		puts[key] = data
	}
	if err := s.store.Update(BucketLockout, puts, deletes); err != nil {
		s.requeue(dirty)
		return fmt.Errorf("auth: lockout flush: %w", err)
	}
	return nil
}

func (s *Shield) requeue(dirty map[uint64]string) {
	s.dirtyMu.Lock()
	for h, k := range dirty {
		if _, newer := s.dirty[h]; !newer {
			s.dirty[h] = k
		}
	}
	s.dirtyMu.Unlock()
}

// Load reads the persisted counters (at start-up, before serving). Expired
// records are skipped; records that do not decode are skipped and reported
// together in the error, which does not stop the others from loading.
func (s *Shield) Load() error {
	if s.store == nil {
		return nil
	}
	t := s.now().UnixNano()
	var bad []error
	err := s.store.ForEach(BucketLockout, func(key, value []byte) error {
		e, err := fromRecord(value)
		if err != nil {
			bad = append(bad, fmt.Errorf("lockout record %q: %w", key, err))
			return nil
		}
		e.fails = prune(e.fails, t-s.window)
		if limit := s.limit(e.kind); len(e.fails) > limit {
			e.fails = e.fails[len(e.fails)-limit:]
		}
		kept := e.users[:0]
		for _, m := range e.users {
			if m.at > t-s.sprayWindow {
				kept = append(kept, m)
			}
		}
		e.users = kept
		if s.expiry(e) <= t || (e.kind == kindAddr && s.sprayUsers == 0) || (e.kind != kindAddr && s.limit(e.kind) == 0) {
			s.markDirty(s.entryHash(e), string(key))
			return nil
		}
		e.key = storeKey(e)
		e.seen = t
		h := s.entryHash(e)
		sh := s.shardOf(h)
		sh.mu.Lock()
		if _, ok := sh.m[h]; !ok {
			if len(sh.m) >= s.perShard {
				s.evictLocked(sh, t)
			}
			s.n.Add(1)
		}
		sh.m[h] = e
		sh.mu.Unlock()
		if e.key != string(key) {
			s.markDirty(h, e.key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("auth: lockout load: %w", err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("auth: lockout load: %w", errors.Join(bad...))
	}
	return nil
}

func (s *Shield) entryHash(e *entry) uint64 {
	return s.hash(e.kind, []byte(e.user), []byte(e.device), e.addr)
}

// fromRecord decodes and checks one stored record.
func fromRecord(data []byte) (*entry, error) {
	var r shieldRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	e := &entry{user: lowerString([]byte(r.User)), device: r.Device}
	switch r.Kind {
	case kindNames[kindUserDevice]:
		e.kind = kindUserDevice
		if e.user == "" {
			return nil, errors.New("user_device record without user")
		}
	case kindNames[kindUserAddr]:
		e.kind = kindUserAddr
		if e.user == "" {
			return nil, errors.New("user_addr record without user")
		}
	case kindNames[kindUserAll]:
		e.kind = kindUserAll
		if e.user == "" {
			return nil, errors.New("user record without user")
		}
	case kindNames[kindAddr]:
		e.kind = kindAddr
	default:
		return nil, fmt.Errorf("unknown kind %q", r.Kind)
	}
	switch e.kind {
	case kindUserDevice:
	case kindUserAll:
		e.device = ""
	default:
		a, err := netip.ParseAddr(r.Addr)
		if err != nil {
			return nil, fmt.Errorf("addr: %w", err)
		}
		e.addr = normAddr(a)
		e.device = ""
	}
	if e.kind == kindAddr {
		e.user = ""
	}
	for _, f := range r.Failures {
		e.fails = append(e.fails, f.UnixNano())
	}
	for i := 1; i < len(e.fails); i++ {
		if e.fails[i] < e.fails[i-1] {
			return nil, errors.New("failures are not in time order")
		}
	}
	if len(e.fails) > maxFailuresTracked {
		e.fails = e.fails[len(e.fails)-maxFailuresTracked:]
	}
	if !r.Until.IsZero() {
		e.until = r.Until.UnixNano()
	}
	for _, m := range r.Users {
		if len(e.users) > 0 && m.At.UnixNano() < e.users[len(e.users)-1].at {
			return nil, errors.New("spray users are not in time order")
		}
		e.users = append(e.users, userMark{user: lowerString([]byte(m.User)), at: m.At.UnixNano()})
	}
	if len(e.users) > maxSprayUsersTracked {
		e.users = e.users[len(e.users)-maxSprayUsersTracked:]
	}
	return e, nil
}
