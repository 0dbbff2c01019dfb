package policy

import (
	"encoding/json"
	"hash/maphash"
	"sync"
	"time"

	"github.com/easgate/easgate/eas"
)

// Store persists what the gateway learns. It is a plain bucketed key/value
// store so that the embedded bbolt file (policy/store) and, later, a shared
// database can both implement it. Implementations must be safe for
// concurrent use; they are only called off the request path.
type Store interface {
	Update(bucket string, puts map[string][]byte, deletes []string) error
	ForEach(bucket string, fn func(key, value []byte) error) error
	Get(bucket, key string) ([]byte, bool, error)
	Close() error
}

// Buckets used in the Store.
const (
	BucketDevices  = "devices"
	BucketVerdicts = "verdicts"
)

// DeviceRecord is what easgate remembers about one user's device.
type DeviceRecord struct {
	User       string         `json:"user"`
	DeviceID   string         `json:"device_id"`
	DeviceType string         `json:"device_type,omitempty"`
	UserAgent  string         `json:"user_agent,omitempty"`
	Info       eas.DeviceInfo `json:"info"`
	FirstSeen  time.Time      `json:"first_seen"`
	LastSeen   time.Time      `json:"last_seen"`
	// HeartbeatInterval is the last Ping interval the device asked for, for
	// Pings with an empty body.
	HeartbeatInterval int `json:"heartbeat_interval,omitempty"`
	// LastAction is the last decision taken for the device.
	LastAction string `json:"last_action,omitempty"`
	// CertFingerprint is the client certificate first used by the device
	// (device binding).
	CertFingerprint string `json:"cert_fingerprint,omitempty"`

	// The inventory (inventory.go): what the device last did and what
	// the gateway last decided for it.
	Inventory
}

// Key is the record's store key: lower-cased user, NUL, lower-cased device id.
func (r *DeviceRecord) Key() string { return lowerString(r.User) + "\x00" + lowerString(r.DeviceID) }

// AppendDeviceKey appends the key DeviceRecord.Key gives a device of user
// (ASCII-lower-cased user, NUL, ASCII-lower-cased device id) to dst,
// without allocating when dst has room: the key the gateway's per-device
// tables share. Device ids compare case-insensitively for every policy
// purpose, so "AliceBlocked1" and "ALICEBLOCKED1" are one device.
func AppendDeviceKey(dst, user, device []byte) []byte {
	for _, b := range user {
		dst = append(dst, lowerASCII(b))
	}
	dst = append(dst, 0)
	return eas.AppendDeviceIDFold(dst, device)
}

// Devices is the in-memory table of devices seen, persisted to a Store in
// batches by Flush (the gateway calls it about once a second). Lookups on
// the request path take a read lock and copy the record: no allocation for
// a device already seen.
type Devices struct {
	seed   maphash.Seed
	shards [64]deviceShard
	store  Store
	node   string // this gateway's name, recorded as the node that served a device

	dirtyMu sync.Mutex
	dirty   map[uint64]struct{}
}

type deviceShard struct {
	mu sync.RWMutex
	m  map[uint64]*DeviceRecord
}

// NewDevices returns an empty table backed by st (nil: memory only).
func NewDevices(st Store) *Devices {
	d := &Devices{seed: maphash.MakeSeed(), store: st, dirty: map[uint64]struct{}{}}
	for i := range d.shards {
		d.shards[i].m = map[uint64]*DeviceRecord{}
	}
	return d
}

func (d *Devices) key(user, device []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(d.seed)
	for _, b := range user {
		h.WriteByte(lowerASCII(b))
	}
	h.WriteByte(0)
	for _, b := range device {
		h.WriteByte(lowerASCII(b))
	}
	return h.Sum64()
}

func (d *Devices) shard(k uint64) *deviceShard { return &d.shards[k%uint64(len(d.shards))] }

func recordIs(r *DeviceRecord, user, device []byte) bool {
	return foldEqual(r.User, user) && foldEqual(r.DeviceID, device)
}

// foldEqual compares s and b ignoring ASCII case, without allocating.
func foldEqual(s string, b []byte) bool {
	if len(s) != len(b) {
		return false
	}
	for i := range b {
		if lowerASCII(s[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

// Get returns a copy of the device's record.
func (d *Devices) Get(user, device []byte) (DeviceRecord, bool) {
	k := d.key(user, device)
	sh := d.shard(k)
	sh.mu.RLock()
	r, ok := sh.m[k]
	var out DeviceRecord
	if ok && recordIs(r, user, device) {
		out = *r
	} else {
		ok = false
	}
	sh.mu.RUnlock()
	return out, ok
}

// Touch records a request from the device at now and returns a copy of its
// record. The first request creates the record (FirstSeen = now); later ones
// update LastSeen (at most once a second, to keep the store writes batched)
// and the DeviceType and User-Agent when they change.
func (d *Devices) Touch(user, device, deviceType, userAgent []byte, now time.Time) DeviceRecord {
	// The copy shares UserAgents with the table's record: callers read it
	// only (the table replaces the slice, never changes it in place).
	k := d.key(user, device)
	sh := d.shard(k)
	sh.mu.RLock()
	r, ok := sh.m[k]
	if ok && recordIs(r, user, device) && now.Sub(r.LastSeen) < time.Second &&
		r.DeviceType == string(deviceType) && r.UserAgent == string(userAgent) {
		out := *r
		sh.mu.RUnlock()
		return out
	}
	sh.mu.RUnlock()

	sh.mu.Lock()
	r, ok = sh.m[k]
	if !ok || !recordIs(r, user, device) {
		r = &DeviceRecord{User: string(user), DeviceID: string(device), FirstSeen: now}
		sh.m[k] = r
	}
	r.LastSeen = now
	if r.DeviceType != string(deviceType) && len(deviceType) > 0 {
		r.DeviceType = string(deviceType)
	}
	if r.UserAgent != string(userAgent) && len(userAgent) > 0 {
		r.UserAgent = string(userAgent)
	}
	r.noteUserAgent(now)
	out := *r
	sh.mu.Unlock()
	d.markDirty(k)
	return out
}

// Update applies fn to the device's record (creating it if needed) and
// marks it for the next Flush. Used when device information arrives, when
// the heartbeat interval changes, and for device binding.
func (d *Devices) Update(user, device []byte, now time.Time, fn func(*DeviceRecord)) DeviceRecord {
	k := d.key(user, device)
	sh := d.shard(k)
	sh.mu.Lock()
	r, ok := sh.m[k]
	if !ok || !recordIs(r, user, device) {
		r = &DeviceRecord{User: string(user), DeviceID: string(device), FirstSeen: now, LastSeen: now}
		sh.m[k] = r
	}
	fn(r)
	out := *r
	sh.mu.Unlock()
	d.markDirty(k)
	return out
}

func (d *Devices) markDirty(k uint64) {
	d.dirtyMu.Lock()
	d.dirty[k] = struct{}{}
	d.dirtyMu.Unlock()
}

// Len returns the number of devices known.
func (d *Devices) Len() int {
	n := 0
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// Flush writes the records changed since the last Flush to the store. On
// error they stay dirty for the next attempt.
func (d *Devices) Flush() error {
	if d.store == nil {
		return nil
	}
	d.dirtyMu.Lock()
	keys := d.dirty
	d.dirty = map[uint64]struct{}{}
	d.dirtyMu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	puts := make(map[string][]byte, len(keys))
	for k := range keys {
		sh := d.shard(k)
		sh.mu.RLock()
		r, ok := sh.m[k]
		var rec DeviceRecord
		if ok {
			rec = *r
		}
		sh.mu.RUnlock()
		if !ok {
			continue
		}
		data, err := json.Marshal(&rec)
		if err != nil {
			return err
		}
		puts[rec.Key()] = data
	}
	if err := d.store.Update(BucketDevices, puts, nil); err != nil {
		d.dirtyMu.Lock()
		for k := range keys {
			d.dirty[k] = struct{}{}
		}
		d.dirtyMu.Unlock()
		return err
	}
	return nil
}

// Load reads every device record from the store (at start-up). Records that
// do not decode are skipped and reported together. It is LoadCanonical
// without a user-name rule.
func (d *Devices) Load() error { return d.LoadCanonical(nil) }

// LoadDevice reads one record straight from a store, without a table: what
// `easgate explain` does against a running gateway's state file.
func LoadDevice(st Store, user, device string) (DeviceRecord, bool, error) {
	r := DeviceRecord{User: user, DeviceID: device}
	data, ok, err := st.Get(BucketDevices, r.Key())
	if err != nil || !ok {
		return DeviceRecord{}, false, err
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return DeviceRecord{}, false, err
	}
	return r, true, nil
}

type verdictRecord struct {
	User    string    `json:"user"`
	Device  string    `json:"device"`
	State   string    `json:"state"`
	Source  string    `json:"source"`
	Fetched time.Time `json:"fetched"`
	Expires time.Time `json:"expires,omitzero"`
}

// SaveSnapshot writes every cached verdict to the store, replacing the
// previous snapshot, so that a restart starts warm.
func (c *Cache) SaveSnapshot(st Store) error {
	puts := map[string][]byte{}
	var deletes []string
	if err := st.ForEach(BucketVerdicts, func(k, _ []byte) error { deletes = append(deletes, string(k)); return nil }); err != nil {
		return err
	}
	for _, k := range c.lru.Keys() {
		e, ok := c.lru.Peek(k)
		if !ok {
			continue
		}
		data, _ := json.Marshal(verdictRecord{User: e.user, Device: e.device, State: e.v.State.String(), Source: e.v.Source, Fetched: e.v.Fetched, Expires: e.v.Expires})
		key := e.user + "\x00" + e.device
		puts[key] = data
	}
	kept := deletes[:0]
	for _, k := range deletes {
		if _, ok := puts[k]; !ok {
			kept = append(kept, k)
		}
	}
	return st.Update(BucketVerdicts, puts, kept)
}

// LoadSnapshot fills the cache from the store. Verdicts keep their original
// fetch time, so expired ones are only used within stale-if-error.
func (c *Cache) LoadSnapshot(st Store) (int, error) {
	n := 0
	err := st.ForEach(BucketVerdicts, func(_, value []byte) error {
		var r verdictRecord
		if json.Unmarshal(value, &r) != nil {
			return nil
		}
		s, ok := ParseState(r.State)
		if !ok {
			return nil
		}
		c.Put(r.User, r.Device, Verdict{State: s, Source: r.Source, Fetched: r.Fetched, Expires: r.Expires})
		n++
		return nil
	})
	return n, err
}
