package quarantine

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/easgate/easgate/policy"
)

// Bucket is the policy.Store bucket holding quarantine records.
const Bucket = "quarantine"

// Options configures an Emulator.
type Options struct {
	// Store persists records (nil: memory only).
	Store policy.Store
	// Notice renders the Inbox notice (nil: the built-in default).
	Notice *Notice
	// MinHeartbeat and MaxHeartbeat bound Ping HeartbeatInterval and Sync
	// Wait/HeartbeatInterval (defaults 60 s and 3540 s, Exchange's).
	MinHeartbeat, MaxHeartbeat time.Duration
	// MaxPingFolders bounds the folders of one Ping (default 300).
	MaxPingFolders int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Device describes the device entering quarantine, for the notice.
type Device struct {
	User, DeviceID, DeviceType string
	Model, Client, OS          string
	// Email is the notice's recipient; "" uses User.
	Email string
}

// CollectionState is what easgate issued for one collection of a
// quarantined device.
type CollectionState struct {
	// Key is the latest sync key issued; Prev the one before it (a client
	// that did not get the answer for Key sends Prev again).
	Key  string `json:"key"`
	Prev string `json:"prev,omitempty"`
	// NoticeInKey is set when the answer that issued Key carried the
	// notice: the phone acknowledges it by sending Key.
	NoticeInKey bool `json:"notice_in_key,omitempty"`
	// BodyType is the body type last asked for (airsyncbase:Type).
	BodyType int `json:"body_type,omitempty"`
}

// cachedCol is a collection of the last full Sync request, reused by empty
// and partial Sync requests (MS-ASCMD §2.2.1.21.1).
type cachedCol struct {
	ID         string `json:"id"`
	Class      string `json:"class,omitempty"`
	BodyTypes  []int  `json:"body_types,omitempty"`
	GetChanges int8   `json:"get_changes"`
}

// Record is the persisted quarantine state of one device.
type Record struct {
	User       string    `json:"user"`
	DeviceID   string    `json:"device_id"`
	DeviceType string    `json:"device_type,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	EnteredAt  time.Time `json:"entered_at"`
	// KeyPrefix makes easgate's sync keys unique to this quarantine
	// episode (and unlike any key Exchange issues); KeySeq numbers them.
	KeyPrefix string `json:"key_prefix"`
	KeySeq    uint64 `json:"key_seq"`
	// InboxID is the Inbox's ServerId learned from a FolderSync answer.
	InboxID string `json:"inbox_id,omitempty"`
	// HierarchyRead is set once a full (SyncKey 0) FolderSync answer, or
	// one naming the Inbox, has been read.
	HierarchyRead bool                        `json:"hierarchy_read,omitempty"`
	Collections   map[string]*CollectionState `json:"collections,omitempty"`
	Notice        Mail                        `json:"notice"`
	// NoticeID is the notice's ServerId in the Inbox; NoticeDelivered is
	// set when the phone acknowledged the Sync answer that carried it.
	NoticeID        string      `json:"notice_id,omitempty"`
	NoticeDelivered bool        `json:"notice_delivered,omitempty"`
	PingInterval    int         `json:"ping_interval,omitempty"`
	PingFolders     []string    `json:"ping_folders,omitempty"`
	LastSync        []cachedCol `json:"last_sync,omitempty"`
	LastSyncHold    int         `json:"last_sync_hold,omitempty"`
}

// NoticePending reports whether the notice still waits for delivery.
func (r *Record) NoticePending() bool { return r.InboxID != "" && !r.NoticeDelivered }

func (r *Record) clone() Record {
	c := *r
	if r.Collections != nil {
		c.Collections = make(map[string]*CollectionState, len(r.Collections))
		for k, v := range r.Collections {
			x := *v
			c.Collections[k] = &x
		}
	}
	c.PingFolders = append([]string(nil), r.PingFolders...)
	c.LastSync = append([]cachedCol(nil), r.LastSync...)
	return c
}

func (r *Record) newKey() string {
	r.KeySeq++
	return r.KeyPrefix + "-" + strconv.FormatUint(r.KeySeq, 10)
}

type entry struct {
	mu  sync.Mutex
	rec Record
	// fsZero is set while a SyncKey-0 FolderSync of the device is on its
	// way to the CAS (not persisted).
	fsZero bool
}

// Emulator answers the EAS requests of quarantined devices and keeps their
// records. It is safe for concurrent use.
type Emulator struct {
	opts   Options
	notice *Notice
	def    *Notice

	mu sync.RWMutex
	m  map[string]*entry

	dirtyMu sync.Mutex
	dirty   map[string]struct{}

	// prefix makes a new episode's sync-key prefix (tests fix it).
	prefix func() string
}

func randomPrefix() string {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails on supported platforms
	return "Q" + hex.EncodeToString(rnd[:])
}

// New returns an Emulator. Call Load to restore persisted records.
func New(opts Options) (*Emulator, error) {
	if opts.MinHeartbeat <= 0 {
		opts.MinHeartbeat = 60 * time.Second
	}
	if opts.MaxHeartbeat <= 0 {
		opts.MaxHeartbeat = 3540 * time.Second
	}
	if opts.MaxHeartbeat < opts.MinHeartbeat {
		return nil, errors.New("quarantine: MaxHeartbeat is below MinHeartbeat")
	}
	if opts.MaxPingFolders <= 0 {
		opts.MaxPingFolders = 300
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	def, err := ParseNotice(NoticeConfig{}, "default", DefaultTemplate)
	if err != nil {
		return nil, err
	}
	e := &Emulator{opts: opts, notice: opts.Notice, def: def, m: map[string]*entry{}, dirty: map[string]struct{}{}, prefix: randomPrefix}
	if e.notice == nil {
		e.notice = def
	}
	return e, nil
}

// SetNotice replaces the notice used for devices entering quarantine from
// now on (config reload). nil restores the default.
func (e *Emulator) SetNotice(n *Notice) {
	e.mu.Lock()
	if n == nil {
		n = e.def
	}
	e.notice = n
	e.mu.Unlock()
}

// Store returns the store the Emulator persists to (nil: memory only).
func (e *Emulator) Store() policy.Store { return e.opts.Store }

// keyBuf builds the record key: the device table's (policy.AppendDeviceKey).
func keyBuf(dst, user, device []byte) []byte { return policy.AppendDeviceKey(dst, user, device) }

func (e *Emulator) lookup(user, device []byte) *entry {
	var buf [256]byte
	k := keyBuf(buf[:0], user, device)
	e.mu.RLock()
	en := e.m[string(k)]
	e.mu.RUnlock()
	return en
}

// Active reports whether the device has a quarantine record. It does not
// allocate for keys up to 255 bytes.
func (e *Emulator) Active(user, device []byte) bool { return e.lookup(user, device) != nil }

// Get returns a copy of the device's record.
func (e *Emulator) Get(user, device []byte) (Record, bool) {
	en := e.lookup(user, device)
	if en == nil {
		return Record{}, false
	}
	en.mu.Lock()
	defer en.mu.Unlock()
	return en.rec.clone(), true
}

// Len returns the number of quarantined devices.
func (e *Emulator) Len() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.m)
}

func (e *Emulator) markDirty(k string) {
	e.dirtyMu.Lock()
	e.dirty[k] = struct{}{}
	e.dirtyMu.Unlock()
}

// Enter puts the device into quarantine: it creates the record, renders the
// notice (falling back to the built-in notice if the administrator's
// template fails for this device) and returns a copy of the record. A
// device already quarantined keeps its record; entered is false then.
// renderErr reports a template failure (the record is still created).
func (e *Emulator) Enter(d Device, reason string) (rec Record, entered bool, renderErr error) {
	k := string(keyBuf(nil, []byte(d.User), []byte(d.DeviceID)))
	e.mu.Lock()
	if en, ok := e.m[k]; ok {
		e.mu.Unlock()
		en.mu.Lock()
		defer en.mu.Unlock()
		return en.rec.clone(), false, nil
	}
	notice := e.notice
	e.mu.Unlock()

	now := e.opts.Now()
	to := d.Email
	if to == "" {
		to = d.User
	}
	data := NoticeData{User: d.User, DeviceID: d.DeviceID, DeviceType: d.DeviceType, Model: d.Model,
		Client: d.Client, OS: d.OS, Reason: reason, Date: now}
	mail, err := notice.Render(data, to)
	if err != nil {
		renderErr = err
		data.From, data.EnrollURL = notice.cfg.From, notice.cfg.EnrollURL
		mail, _ = e.def.Render(data, to)
	}
	en := &entry{rec: Record{
		User: d.User, DeviceID: d.DeviceID, DeviceType: d.DeviceType, Reason: reason, EnteredAt: now,
		KeyPrefix: e.prefix(), Notice: mail, Collections: map[string]*CollectionState{},
	}}
	e.mu.Lock()
	if old, ok := e.m[k]; ok { // lost a race with another Enter
		e.mu.Unlock()
		old.mu.Lock()
		defer old.mu.Unlock()
		return old.rec.clone(), false, nil
	}
	e.m[k] = en
	e.mu.Unlock()
	e.markDirty(k)
	return en.rec.clone(), true, renderErr
}

// Release ends the device's quarantine: its record is deleted (from the
// store at the next Flush), so its next request reaches Exchange with
// sync keys Exchange never issued, and a later quarantine starts afresh.
// It reports whether there was a record.
func (e *Emulator) Release(user, device []byte) bool {
	k := string(keyBuf(nil, user, device))
	e.mu.Lock()
	_, ok := e.m[k]
	delete(e.m, k)
	e.mu.Unlock()
	if ok {
		e.markDirty(k)
	}
	return ok
}

// Flush writes changed records to the store and deletes released ones.
// On error the changes stay pending for the next Flush.
func (e *Emulator) Flush() error {
	st := e.opts.Store
	if st == nil {
		e.dirtyMu.Lock()
		clear(e.dirty)
		e.dirtyMu.Unlock()
		return nil
	}
	e.dirtyMu.Lock()
	keys := e.dirty
	e.dirty = map[string]struct{}{}
	e.dirtyMu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	puts := map[string][]byte{}
	var deletes []string
	for k := range keys {
		e.mu.RLock()
		en := e.m[k]
		e.mu.RUnlock()
		if en == nil {
			deletes = append(deletes, k)
			continue
		}
		en.mu.Lock()
		data, err := json.Marshal(&en.rec)
		en.mu.Unlock()
		if err != nil {
			return err
		}
		puts[k] = data
	}
	if err := st.Update(Bucket, puts, deletes); err != nil {
		e.dirtyMu.Lock()
		for k := range keys {
			e.dirty[k] = struct{}{}
		}
		e.dirtyMu.Unlock()
		return err
	}
	return nil
}

// Load reads every record from the store (at start-up). Records that do
// not decode are skipped and reported together. It is LoadCanonical
// without a user-name rule.
func (e *Emulator) Load() error { return e.LoadCanonical(nil) }

// LoadCanonical is Load that also moves records kept under an older
// spelling to their canonical key, as policy.Devices.LoadCanonical does for
// the device table: a user stored as the phone wrote it ("CORP\jdoe") that
// canon (eas.Domains.Canonical of auth.domains) now spells
// "jdoe@corp.example.com", or a device id stored in its phone's case.
// Without this an upgrade would look the device up under the new key, find
// no record, and start a new quarantine episode: new sync keys and a second
// notice. When two stored records meet at one key, the episode entered
// last is kept. Moved records are written under their new key, and their
// old keys deleted, at the next Flush.
func (e *Emulator) LoadCanonical(canon func(string) (string, error)) error {
	st := e.opts.Store
	if st == nil {
		return nil
	}
	var bad []error
	var moved []string
	err := st.ForEach(Bucket, func(key, value []byte) error {
		r, ok := decodeRecord(value)
		if !ok {
			bad = append(bad, errors.New("quarantine record "+strconv.Quote(string(key))+" does not decode"))
			return nil
		}
		if canon != nil {
			if u, err := canon(r.User); err == nil {
				r.User = u
			}
		}
		k := string(keyBuf(nil, []byte(r.User), []byte(r.DeviceID)))
		e.mu.Lock()
		if prev, ok := e.m[k]; !ok || r.EnteredAt.After(prev.rec.EnteredAt) {
			e.m[k] = &entry{rec: r}
		}
		e.mu.Unlock()
		if string(key) != k {
			moved = append(moved, string(key), k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(moved) > 0 {
		e.dirtyMu.Lock()
		for _, k := range moved {
			e.dirty[k] = struct{}{} // the old key has no entry: Flush deletes it
		}
		e.dirtyMu.Unlock()
	}
	return errors.Join(bad...)
}

// decodeRecord reads a stored quarantine record (this node's store or
// another node's change): it needs a device id and a key prefix, and its
// collection map is made whole.
func decodeRecord(value []byte) (Record, bool) {
	var r Record
	if err := json.Unmarshal(value, &r); err != nil || r.DeviceID == "" || r.KeyPrefix == "" {
		return Record{}, false
	}
	if r.Collections == nil {
		r.Collections = map[string]*CollectionState{}
	}
	for id, c := range r.Collections {
		if c == nil {
			delete(r.Collections, id)
		}
	}
	return r, true
}
