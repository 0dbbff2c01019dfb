package policy

import (
	"encoding/binary"
	"encoding/json"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
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
	n := len(dst)
	dst = slices.Grow(dst, len(user)+1+len(device))[:n+len(user)+1+len(device)]
	foldInto(dst[n:], user)
	dst[n+len(user)] = 0
	foldInto(dst[n+len(user)+1:], device) // eas.AppendDeviceIDFold's fold: ASCII lower case
	return dst
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
	// gen counts the shard's write locks: lock bumps it before any record
	// of the shard changes, is added or is removed, so a copy taken with
	// gen g is still the record while gen reads g (Visit).
	gen atomic.Uint64
	m   map[uint64]*DeviceRecord
}

// lock takes the shard's write lock and bumps its generation. Every
// change to the shard's records is made under it.
func (sh *deviceShard) lock() {
	sh.mu.Lock()
	sh.gen.Add(1)
}

// NewDevices returns an empty table backed by st (nil: memory only).
func NewDevices(st Store) *Devices {
	d := &Devices{seed: maphash.MakeSeed(), store: st, dirty: map[uint64]struct{}{}}
	for i := range d.shards {
		d.shards[i].m = map[uint64]*DeviceRecord{}
	}
	return d
}

func (d *Devices) key(user, device []byte) uint64 { return foldKeyHash(d.seed, user, device) }

// foldKeyHash hashes the device key of user and device (AppendDeviceKey:
// ASCII-lower-cased user, NUL, ASCII-lower-cased device id) with seed. The
// key is folded into a stack buffer and hashed in one maphash.Bytes call,
// which costs a fraction of feeding a maphash.Hash byte by byte; longer
// keys are folded and written in chunks. maphash gives one value for the
// same bytes however they are split, and the path taken depends only on
// the lengths, so inputs that fold equal hash equal.
func foldKeyHash(seed maphash.Seed, user, device []byte) uint64 {
	var buf [128]byte
	if n := len(user) + 1 + len(device); n <= len(buf) {
		foldInto(buf[:len(user)], user)
		buf[len(user)] = 0
		foldInto(buf[len(user)+1:n], device)
		return maphash.Bytes(seed, buf[:n])
	}
	var h maphash.Hash
	h.SetSeed(seed)
	for len(user) > 0 {
		n := min(len(user), len(buf))
		_, _ = h.Write(appendLower(buf[:0], user[:n]))
		user = user[n:]
	}
	_ = h.WriteByte(0)
	for len(device) > 0 {
		n := min(len(device), len(buf))
		_, _ = h.Write(appendLower(buf[:0], device[:n]))
		device = device[n:]
	}
	return h.Sum64()
}

// foldInto writes src ASCII-lower-cased to dst (as long as src), eight
// bytes at a time. It reads src, not dst, so that no load waits on the
// stores just made.
func foldInto(dst, src []byte) {
	dst = dst[:len(src)]
	for len(src) >= 8 {
		binary.LittleEndian.PutUint64(dst, fold8(binary.LittleEndian.Uint64(src)))
		src, dst = src[8:], dst[8:]
	}
	for i, c := range src {
		dst[i] = lowerASCII(c)
	}
}

// fold8 is lowerASCII on each of the eight bytes of x: for each byte
// whose low seven bits are 'A'..'Z' and whose high bit is clear, bit 5 is
// set. Bytes ≥ 0x80 are left alone, as lowerASCII leaves them.
func fold8(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	low7 := x &^ highs
	ge := low7 + (0x80-'A')*ones   // high bit set where low7 >= 'A'
	gt := low7 + (0x80-'Z'-1)*ones // high bit set where low7 > 'Z'
	return x | ((ge&^gt)&^x&highs)>>2
}

// load8 reads the first eight bytes of s, little-endian.
func load8(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func appendLower(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, lowerASCII(c))
	}
	return dst
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
	for len(b) >= 8 {
		if fold8(load8(s)) != fold8(binary.LittleEndian.Uint64(b)) {
			return false
		}
		s, b = s[8:], b[8:]
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
	var v Visit
	d.TouchVisit(&v, user, device, deviceType, userAgent, now)
	return v.Record
}

// Visit is one request's view of its device's record: the copy Touch
// takes, and what lets ObserveVisit find the record again without a second
// lookup, or skip it altogether when the copy shows that the inventory is
// already up to date and the record has not changed since. The gateway
// keeps one per request (TouchVisit, UpdateVisit, ObserveVisit): one
// lookup under a read lock per request instead of two. The zero Visit
// makes ObserveVisit look the record up, as Observe does.
type Visit struct {
	// Record is the copy of the device's record; it shares its
	// UserAgents and Reasons with the table's record, which replaces
	// those slices but never changes them in place.
	Record DeviceRecord
	k      uint64 // the table key (Devices.key)
	gen    uint64 // the shard's generation Record was copied at
	ok     bool   // k and gen are set
}

// TouchVisit is Touch, filling v (Visit.Record is what Touch returns).
func (d *Devices) TouchVisit(v *Visit, user, device, deviceType, userAgent []byte, now time.Time) {
	k := d.key(user, device)
	sh := d.shard(k)
	v.k, v.ok = k, true
	sh.mu.RLock()
	r, ok := sh.m[k]
	if ok && recordIs(r, user, device) && now.Sub(r.LastSeen) < time.Second &&
		r.DeviceType == string(deviceType) && r.UserAgent == string(userAgent) {
		v.Record, v.gen = *r, sh.gen.Load()
		sh.mu.RUnlock()
		return
	}
	sh.mu.RUnlock()

	sh.lock()
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
	v.Record, v.gen = *r, sh.gen.Load()
	sh.mu.Unlock()
	d.markDirty(k)
}

// Update applies fn to the device's record (creating it if needed) and
// marks it for the next Flush. Used when device information arrives, when
// the heartbeat interval changes, and for device binding.
func (d *Devices) Update(user, device []byte, now time.Time, fn func(*DeviceRecord)) DeviceRecord {
	var v Visit
	d.UpdateVisit(&v, user, device, now, fn)
	return v.Record
}

// UpdateVisit is Update, filling v with the updated record as TouchVisit
// does.
func (d *Devices) UpdateVisit(v *Visit, user, device []byte, now time.Time, fn func(*DeviceRecord)) {
	k := d.key(user, device)
	sh := d.shard(k)
	sh.lock()
	r, ok := sh.m[k]
	if !ok || !recordIs(r, user, device) {
		r = &DeviceRecord{User: string(user), DeviceID: string(device), FirstSeen: now, LastSeen: now}
		sh.m[k] = r
	}
	fn(r)
	v.Record, v.k, v.gen, v.ok = *r, k, sh.gen.Load(), true
	sh.mu.Unlock()
	d.markDirty(k)
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
