package policy

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/easgate/easgate/eas"
)

// The device inventory: one DeviceRecord per user and device, kept in the
// in-memory table (Devices) and written behind to the state store by Flush.
// The request path updates a record with Touch and Observe under the
// record's shard lock, and only when something changed (the first request
// of a device, a new command, address, client or decision); nothing on the
// request path waits for the store. Readers (the admin API, `easgate
// devices`) copy records out under the same locks.

// Access states of a device, as the inventory and the admin API name them.
const (
	DeviceAllowed     = "allowed"
	DeviceBlocked     = "blocked"
	DeviceQuarantined = "quarantined"
	DeviceDiscovery   = "discovery" // quarantined while its DeviceInformation is awaited
)

// maxUserAgents bounds a record's User-Agent history.
const maxUserAgents = 8

// Inventory is the part of a DeviceRecord the gateway fills in from each
// request and decision. Every field is snake_case in JSON, as in the
// access log.
type Inventory struct {
	// UserAgents is the User-Agent history, oldest first, at most 8
	// entries. The current User-Agent's Last is the record's LastSeen.
	UserAgents []UserAgentSeen `json:"user_agents,omitempty"`
	// Client is the identified client family's slug ("ios-mail"); OS and
	// OSVersion the identified platform; ClientBuild the OS build when the
	// User-Agent names one.
	Client      string `json:"client,omitempty"`
	OS          string `json:"os,omitempty"`
	OSVersion   string `json:"os_version,omitempty"`
	ClientBuild string `json:"client_build,omitempty"`
	// ProtocolVersion is the last MS-ASProtocolVersion used.
	ProtocolVersion string `json:"protocol_version,omitempty"`
	// LastCommand, LastAddress and Node: the last request's command, the
	// address it came from and the gateway node that served it.
	LastCommand string     `json:"last_command,omitempty"`
	LastAddress netip.Addr `json:"last_address,omitzero"`
	Node        string     `json:"node,omitempty"`
	// State is the access state the gateway applies (DeviceAllowed, ...);
	// PolicyAction what the policy said (differs in report mode); Reasons
	// and Rule why.
	State        string   `json:"state,omitempty"`
	PolicyAction string   `json:"policy_action,omitempty"`
	Enforced     bool     `json:"enforced,omitempty"`
	Reasons      []string `json:"reasons,omitempty"`
	Rule         string   `json:"rule,omitempty"`
	// DecidedAt is when State last changed.
	DecidedAt time.Time `json:"decided_at,omitzero"`
	// The compliance verdict used by the last decision, if any.
	VerdictState   string    `json:"verdict_state,omitempty"`
	VerdictSource  string    `json:"verdict_source,omitempty"`
	VerdictFetched time.Time `json:"verdict_fetched,omitzero"`
	// QuarantinedAt is when the device entered quarantine (or discovery);
	// zero when it is not quarantined.
	QuarantinedAt time.Time `json:"quarantined_at,omitzero"`
}

// UserAgentSeen is one entry of a device's User-Agent history.
type UserAgentSeen struct {
	UserAgent string    `json:"user_agent"`
	First     time.Time `json:"first"`
	Last      time.Time `json:"last,omitzero"` // zero for the current one
}

// noteUserAgent starts a history entry when the record's User-Agent is
// not the newest one. The slice is replaced, never changed in place:
// copies of the record share it.
func (r *DeviceRecord) noteUserAgent(now time.Time) {
	if r.UserAgent == "" {
		return
	}
	h := r.UserAgents
	if n := len(h); n > 0 && h[n-1].UserAgent == r.UserAgent {
		return
	}
	if len(h) >= maxUserAgents {
		h = h[len(h)-maxUserAgents+1:]
	}
	out := make([]UserAgentSeen, len(h), len(h)+1)
	copy(out, h)
	if n := len(out); n > 0 {
		out[n-1].Last = now
	}
	r.UserAgents = append(out, UserAgentSeen{UserAgent: r.UserAgent, First: now})
}

// Observation is what the gateway learned from one request, besides its
// client and decision.
type Observation struct {
	Command eas.Command
	Version eas.Version
	Addr    netip.Addr
	Now     time.Time
}

// AccessState names what the gateway does for decision d: allowed,
// blocked, quarantined or discovery (report mode: allowed).
func AccessState(d *Decision) string {
	if !d.Enforced {
		return DeviceAllowed
	}
	switch d.Action {
	case Block:
		return DeviceBlocked
	case Quarantine:
		if d.HasReason(ReasonDiscovery) {
			return DeviceDiscovery
		}
		return DeviceQuarantined
	}
	return DeviceAllowed
}

// SetNode names this gateway in the records it writes (the node that
// served a device). Call it before the table is used.
func (d *Devices) SetNode(name string) { d.node = name }

// Observe records a decided request in the device's inventory. It
// allocates nothing and takes no write lock when nothing changed, which is
// the case for every request of a device but the first ones after a
// change.
//
// dec and c are separate arguments (not fields of o) so that escape
// analysis sees that neither is retained: the caller's Decision stays on
// its stack.
func (d *Devices) Observe(user, device []byte, dec *Decision, c *eas.Client, o Observation) {
	d.ObserveVisit(nil, user, device, dec, c, o)
}

// ObserveVisit is Observe for the request v was filled for (TouchVisit,
// UpdateVisit; nil or the zero Visit: Observe). When v's copy already holds
// everything the request says and no record of its shard has changed
// since the copy was taken, the table is not even read-locked: the record
// is the copy, so Observe would find nothing to write. Otherwise it does
// what Observe does, without hashing the key again.
func (d *Devices) ObserveVisit(v *Visit, user, device []byte, dec *Decision, c *eas.Client, o Observation) {
	var vbuf [24]byte
	osv := c.OSVersion.AppendTo(vbuf[:0])
	var k uint64
	if v != nil && v.ok {
		k = v.k
		if v.Record.observed(dec, c, &o, osv, d.node) && d.shard(k).gen.Load() == v.gen {
			return
		}
	} else {
		k = d.key(user, device)
	}
	sh := d.shard(k)
	sh.mu.RLock()
	r, ok := sh.m[k]
	same := ok && recordIs(r, user, device) && r.observed(dec, c, &o, osv, d.node)
	sh.mu.RUnlock()
	if same || !ok {
		return // unknown: Touch creates records, Observe only completes them
	}
	sh.lock()
	r, ok = sh.m[k]
	if ok && recordIs(r, user, device) {
		r.observe(dec, c, &o, osv, d.node)
	}
	sh.mu.Unlock()
	d.markDirty(k)
}

// observed reports whether r already holds everything o says.
func (r *DeviceRecord) observed(dec *Decision, c *eas.Client, o *Observation, osv []byte, node string) bool {
	v := &dec.Verdict
	return r.LastCommand == o.Command.String() && r.ProtocolVersion == o.Version.String() &&
		r.LastAddress == o.Addr && r.Node == node &&
		r.Client == c.Family.Slug() && r.OS == c.OS.String() && r.OSVersion == string(osv) &&
		r.ClientBuild == string(c.Build[:c.BuildLen]) &&
		r.State == AccessState(dec) && r.PolicyAction == dec.Action.String() && r.Enforced == dec.Enforced &&
		r.Rule == dec.Rule && sameReasons(r.Reasons, dec.Reasons()) &&
		(!v.Valid || r.VerdictState == v.State.String() && r.VerdictSource == v.Source && r.VerdictFetched.Equal(v.Fetched))
}

func sameReasons(have []string, want []Reason) bool {
	if len(have) != len(want) {
		return false
	}
	for i, r := range want {
		if have[i] != r.String() {
			return false
		}
	}
	return true
}

// observe copies o into r, assigning only fields that changed.
func (r *DeviceRecord) observe(dec *Decision, c *eas.Client, o *Observation, osv []byte, node string) {
	setString(&r.LastCommand, o.Command.String())
	setString(&r.ProtocolVersion, o.Version.String())
	r.LastAddress = o.Addr
	setString(&r.Node, node)
	setString(&r.Client, c.Family.Slug())
	setString(&r.OS, c.OS.String())
	if r.OSVersion != string(osv) {
		r.OSVersion = string(osv)
	}
	if r.ClientBuild != string(c.Build[:c.BuildLen]) {
		r.ClientBuild = string(c.Build[:c.BuildLen])
	}
	r.applyDecision(dec, o.Now)
}

// applyDecision records dec as the device's access state.
func (r *DeviceRecord) applyDecision(dec *Decision, now time.Time) {
	state := AccessState(dec)
	if r.State != state {
		if state == DeviceQuarantined || state == DeviceDiscovery {
			if r.QuarantinedAt.IsZero() {
				r.QuarantinedAt = now
			}
		} else {
			r.QuarantinedAt = time.Time{}
		}
		r.State, r.DecidedAt = state, now
	}
	setString(&r.PolicyAction, dec.Action.String())
	r.Enforced = dec.Enforced
	setString(&r.Rule, dec.Rule)
	if !sameReasons(r.Reasons, dec.Reasons()) {
		rs := make([]string, 0, len(dec.Reasons()))
		for _, x := range dec.Reasons() {
			rs = append(rs, x.String())
		}
		r.Reasons = rs
	}
	if v := &dec.Verdict; v.Valid {
		setString(&r.VerdictState, v.State.String())
		setString(&r.VerdictSource, v.Source)
		r.VerdictFetched = v.Fetched
	}
}

func setString(dst *string, v string) {
	if *dst != v {
		*dst = v
	}
}

// SetDecision records dec as the device's access state now: an admin
// action's effect shows in the inventory at once, before the device's
// next request.
func (d *Devices) SetDecision(user, device string, dec *Decision, now time.Time) {
	d.Update([]byte(user), []byte(device), now, func(r *DeviceRecord) { r.applyDecision(dec, now) })
}

// Put stores a copy of r in the table (tools that build a table from
// records read elsewhere, such as the impact report over the admin API).
func (d *Devices) Put(r DeviceRecord) {
	k := d.key([]byte(r.User), []byte(r.DeviceID))
	sh := d.shard(k)
	sh.lock()
	sh.m[k] = &r
	sh.mu.Unlock()
	d.markDirty(k)
}

// Forget removes a device's record from the table and the store.
func (d *Devices) Forget(user, device string) error {
	k := d.key([]byte(user), []byte(device))
	sh := d.shard(k)
	sh.lock()
	var key string
	if r, ok := sh.m[k]; ok && recordIs(r, []byte(user), []byte(device)) {
		key = r.Key()
		delete(sh.m, k)
	}
	sh.mu.Unlock()
	if key == "" {
		key = (&DeviceRecord{User: user, DeviceID: device}).Key()
	}
	if d.store == nil {
		return nil
	}
	return d.store.Update(BucketDevices, nil, []string{key})
}

// DeviceFilter selects devices. Empty fields match everything; strings
// compare ignoring case.
type DeviceFilter struct {
	User      string    `json:"user,omitempty"`   // canonical user name
	State     string    `json:"state,omitempty"`  // allowed, blocked, quarantined, discovery
	Reason    string    `json:"reason,omitempty"` // a reason of the last decision ("device-rule")
	Client    string    `json:"client,omitempty"` // client family slug
	OS        string    `json:"os,omitempty"`     // OS family ("iOS"), or a prefix of "OS version" ("iOS 17")
	SeenSince time.Time `json:"seen_since,omitzero"`
	// Q matches when any of user, device id, device type, model, friendly
	// name, OS, IMEI, phone number or User-Agent contains it.
	Q string `json:"q,omitempty"`

	lowerQ string // Q lower-cased once, by Match
}

// States lists the access states a filter may name.
var States = []string{DeviceAllowed, DeviceBlocked, DeviceQuarantined, DeviceDiscovery}

// Validate reports a filter that can never be right (an unknown state,
// reason or client family).
func (f *DeviceFilter) Validate() error {
	var errs []error
	if f.State != "" && !slices.Contains(States, strings.ToLower(f.State)) {
		errs = append(errs, fmt.Errorf("state %q: want one of %s", f.State, strings.Join(States, ", ")))
	}
	if f.Reason != "" {
		if _, ok := ParseReason(f.Reason); !ok {
			errs = append(errs, fmt.Errorf("reason %q is not a decision reason (e.g. device-rule, individual-block, admin-block, device-not-enrolled)", f.Reason))
		}
	}
	if f.Client != "" {
		if _, ok := eas.ParseFamily(f.Client); !ok {
			errs = append(errs, fmt.Errorf("client %q is not a client family slug (e.g. ios-mail, outlook-mobile, gmail)", f.Client))
		}
	}
	return errors.Join(errs...)
}

// Match reports whether r passes the filter.
func (f *DeviceFilter) Match(r *DeviceRecord) bool {
	if f.User != "" && !strings.EqualFold(r.User, f.User) {
		return false
	}
	if f.State != "" && !strings.EqualFold(r.State, f.State) {
		return false
	}
	if f.Reason != "" && !slices.ContainsFunc(r.Reasons, func(s string) bool { return strings.EqualFold(s, f.Reason) }) {
		return false
	}
	if f.Client != "" && !strings.EqualFold(r.Client, f.Client) {
		return false
	}
	if f.OS != "" {
		full := r.OS
		if r.OSVersion != "" {
			full += " " + r.OSVersion
		}
		if !strings.EqualFold(r.OS, f.OS) && !hasPrefixFold(full, f.OS) {
			return false
		}
	}
	if !f.SeenSince.IsZero() && r.LastSeen.Before(f.SeenSince) {
		return false
	}
	if f.Q != "" {
		if f.lowerQ == "" {
			f.lowerQ = strings.ToLower(f.Q)
		}
		for _, s := range [...]string{r.User, r.DeviceID, r.DeviceType, r.Info.Model, r.Info.FriendlyName, r.Info.OS,
			r.Info.IMEI, r.Info.PhoneNumber, r.UserAgent} {
			if containsFold(s, f.lowerQ) {
				return true
			}
		}
		return false
	}
	return true
}

func hasPrefixFold(s, p string) bool {
	return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p)
}

// Sort orders of a device list.
var SortKeys = []string{"last_seen", "first_seen", "user", "device_id", "state"}

// DevicePage is one page of a device list.
type DevicePage struct {
	Devices []DeviceRecord
	Total   int // devices that match the filter
	Next    int // offset of the next page; 0 when this is the last
}

// listEntry is a matching device while a list is sorted: small, so that
// sorting 100,000 devices moves little memory.
type listEntry struct {
	k uint64 // the table key; also the tie-break, so the order is total
	t int64
	s string // the sort key when it is a string (shared with the record)
}

// List returns the devices that match f, sorted by sortKey ("last_seen",
// the default, newest first; a leading '-' reverses any key), from offset
// on, at most limit of them. Records are copied out one shard lock at a
// time; the request path is never held up by more than one record's copy.
func (d *Devices) List(f *DeviceFilter, sortKey string, offset, limit int) (DevicePage, error) {
	desc := false
	key := sortKey
	if strings.HasPrefix(key, "-") {
		key, desc = key[1:], true
	}
	switch key {
	case "", "last_seen":
		key, desc = "last_seen", !desc // newest first by default
	case "first_seen", "user", "device_id", "state":
	default:
		return DevicePage{}, fmt.Errorf("sort %q: want one of %s (prefix - to reverse)", sortKey, strings.Join(SortKeys, ", "))
	}
	if offset < 0 || limit <= 0 {
		return DevicePage{}, errors.New("offset must be ≥ 0 and limit > 0")
	}
	entries := make([]listEntry, 0, d.Len())
	total := 0
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.RLock()
		for k, r := range sh.m {
			if !f.Match(r) {
				continue
			}
			e := listEntry{k: k}
			switch key {
			case "last_seen":
				e.t = r.LastSeen.UnixNano()
			case "first_seen":
				e.t = r.FirstSeen.UnixNano()
			case "user":
				e.s = r.User
			case "device_id":
				e.s = r.DeviceID
			case "state":
				e.s = r.State
			}
			entries = append(entries, e)
		}
		sh.mu.RUnlock()
	}
	total = len(entries)
	byString := key == "user" || key == "device_id" || key == "state"
	order := func(a, b listEntry) int {
		c := 0
		if byString {
			c = strings.Compare(a.s, b.s)
		} else {
			c = cmp.Compare(a.t, b.t)
		}
		if c == 0 {
			c = cmp.Compare(a.k, b.k)
		}
		if desc {
			c = -c
		}
		return c
	}
	if want := offset + limit; want < len(entries)/4 {
		// The first pages (the usual request) need only the first
		// offset+limit entries in order: select them, then sort those.
		entries = selectFirst(entries, want, order)
	} else {
		slices.SortFunc(entries, order)
	}
	page := DevicePage{Total: total}
	if offset >= len(entries) {
		return page, nil
	}
	end := min(offset+limit, len(entries))
	last := end == total
	page.Devices = make([]DeviceRecord, 0, end-offset)
	for _, e := range entries[offset:end] {
		sh := d.shard(e.k)
		sh.mu.RLock()
		if r, ok := sh.m[e.k]; ok {
			page.Devices = append(page.Devices, *r)
		}
		sh.mu.RUnlock()
	}
	if !last {
		page.Next = end
	}
	return page, nil
}

// Each calls fn with a copy of every record (in no order).
func (d *Devices) Each(fn func(r *DeviceRecord)) {
	var batch []DeviceRecord
	for i := range d.shards {
		sh := &d.shards[i]
		batch = batch[:0]
		sh.mu.RLock()
		for _, r := range sh.m {
			batch = append(batch, *r)
		}
		sh.mu.RUnlock()
		for j := range batch {
			fn(&batch[j])
		}
	}
}

// OpenDevices reads every device record of a store into a table that is
// never written back: what `easgate devices list` does when no gateway
// runs. canon puts users in canonical form (LoadCanonical), in memory only.
func OpenDevices(st Store, canon func(string) (string, error)) (*Devices, error) {
	d := NewDevices(st)
	err := d.loadCanonical(canon, false)
	d.store = nil
	return d, err
}

// MarshalRecord encodes a record as the store keeps it.
func MarshalRecord(r *DeviceRecord) ([]byte, error) { return json.Marshal(r) }

// selectFirst returns the n first entries of es under order, sorted: a
// bounded max-heap over one pass, O(len(es) log n).
func selectFirst(es []listEntry, n int, order func(a, b listEntry) int) []listEntry {
	if n <= 0 {
		return es[:0]
	}
	h := make([]listEntry, 0, n)
	down := func(i int) {
		for {
			l, big := 2*i+1, i
			if l < len(h) && order(h[l], h[big]) > 0 {
				big = l
			}
			if r := l + 1; r < len(h) && order(h[r], h[big]) > 0 {
				big = r
			}
			if big == i {
				return
			}
			h[i], h[big] = h[big], h[i]
			i = big
		}
	}
	for _, e := range es {
		if len(h) < n {
			h = append(h, e)
			for i := len(h) - 1; i > 0; {
				p := (i - 1) / 2
				if order(h[i], h[p]) <= 0 {
					break
				}
				h[i], h[p] = h[p], h[i]
				i = p
			}
			continue
		}
		if order(e, h[0]) < 0 {
			h[0] = e
			down(0)
		}
	}
	slices.SortFunc(h, order)
	return h
}

// containsFold reports whether s contains lowerQ (already lower-cased),
// ignoring ASCII case, without allocating.
func containsFold(s, lowerQ string) bool {
	n := len(lowerQ)
	if n == 0 {
		return true
	}
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for j < n && lowerASCII(s[i+j]) == lowerQ[j] {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}
