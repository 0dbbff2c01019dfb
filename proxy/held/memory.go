package held

import (
	"sync"
	"time"

	"github.com/easgate/easgate/eas"
)

// Memory remembers the last long-poll interval each user+device asked
// for, per command. A Ping with an empty body (or a Sync with an empty body)
// tells the CAS to reuse the previous request, so easgate must reuse the
// previous interval to know how long the CAS will hold it (MS-ASCMD
// §2.2.1.13). It is bounded: a fixed ring of keys evicts the oldest entry
// when full. Keys are 64-bit FNV-1a hashes of command, user and device id, so
// neither a lookup nor an update allocates once the map has grown.
type Memory struct {
	mu   sync.Mutex
	m    map[uint64]uint32 // key -> seconds
	ring []uint64          // insertion order, for eviction
	next int
}

// NewMemory returns a Memory of at most capacity devices and commands.
func NewMemory(capacity int) *Memory {
	if capacity < 1 {
		capacity = 1
	}
	return &Memory{m: make(map[uint64]uint32, capacity), ring: make([]uint64, 0, capacity)}
}

func holdKey(cmd eas.Command, user, device []byte) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	h ^= uint64(cmd)
	h *= prime
	for _, c := range user {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h ^= uint64(c)
		h *= prime
	}
	h ^= 0xff
	h *= prime
	for _, c := range device { // device ids compare case-insensitively
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h ^= uint64(c)
		h *= prime
	}
	return h
}

func (hm *Memory) get(key uint64) (int, bool) {
	hm.mu.Lock()
	v, ok := hm.m[key]
	hm.mu.Unlock()
	return int(v), ok
}

func (hm *Memory) put(key uint64, seconds int) {
	hm.mu.Lock()
	defer hm.mu.Unlock()
	if _, ok := hm.m[key]; ok {
		hm.m[key] = uint32(seconds)
		return
	}
	if len(hm.ring) < cap(hm.ring) {
		hm.ring = append(hm.ring, key)
	} else {
		delete(hm.m, hm.ring[hm.next])
		hm.ring[hm.next] = key
		hm.next = (hm.next + 1) % len(hm.ring)
	}
	hm.m[key] = uint32(seconds)
}

func (hm *Memory) len() int {
	hm.mu.Lock()
	defer hm.mu.Unlock()
	return len(hm.m)
}

// HoldFor returns how long the CAS may legitimately hold the request, in
// seconds, from its body (Ping HeartbeatInterval; Sync Wait×60 or
// HeartbeatInterval), or from the last value this user+device sent when the
// body is empty. 0 means "not a long poll". A body the reader cannot parse is
// not refused here: the CAS answers it with its own status. It is safe for
// concurrent use and allocates nothing once the memory has grown.
func (hm *Memory) HoldFor(cmd eas.Command, body, user, device []byte) int {
	var (
		secs int
		ok   bool
	)
	switch cmd {
	case eas.CmdPing:
		secs, ok, _ = eas.ReadPingInterval(body)
	case eas.CmdSync:
		secs, ok, _ = eas.ReadSyncHold(body)
	default:
		return 0
	}
	key := holdKey(cmd, user, device)
	if ok && secs > 0 {
		hm.put(key, secs)
		return secs
	}
	if len(body) == 0 {
		if v, found := hm.get(key); found {
			return v
		}
		if cmd == eas.CmdPing {
			// An empty Ping with nothing remembered (easgate restarted):
			// the CAS uses its cached interval, which can be the maximum.
			return -1
		}
	}
	return 0
}

// Timeout turns a hold (HoldFor) into the upstream timeout: the hold plus
// the margin, capped at the long-poll maximum and never below the ordinary
// request timeout; hold -1 means "unknown, may be the maximum"; 0 means an
// ordinary request.
func Timeout(hold int, request, margin, max time.Duration) time.Duration {
	switch {
	case hold == 0:
		return request
	case hold < 0:
		return max
	}
	d := time.Duration(hold)*time.Second + margin
	if d > max {
		d = max
	}
	if d < request {
		d = request
	}
	return d
}
