package auth

import (
	"net/netip"
	"slices"
	"strings"
)

// ApplyRemote merges another node's change to a lockout record into this
// node's counters, without writing it back: the failures of both nodes
// count together (a phone that alternates between nodes is locked after
// auth.lockout.failures in total), and a lock set on one node holds on
// every node. value nil (the other node reset the counter after a real
// success, or dropped it as expired) drops the local entry.
func (s *Shield) ApplyRemote(key string, value []byte) {
	if s == nil {
		return
	}
	if value == nil {
		e, ok := parseStoreKey(key)
		if !ok {
			return
		}
		h := s.entryHash(e)
		sh := s.shardOf(h)
		sh.mu.Lock()
		if old, ok := sh.m[h]; ok && old.key == key {
			delete(sh.m, h)
			s.n.Add(-1)
		}
		sh.mu.Unlock()
		return
	}
	e, err := fromRecord(value)
	if err != nil {
		return
	}
	t := s.now().UnixNano()
	e.fails = prune(e.fails, t-s.window)
	e.key = storeKey(e)
	e.seen = t
	h := s.entryHash(e)
	sh := s.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old, ok := sh.m[h]
	if !ok || old.key != e.key {
		if !ok {
			if len(sh.m) >= s.perShard {
				s.evictLocked(sh, t)
			}
			s.n.Add(1)
		}
		sh.m[h] = e
		s.lockIfOver(e, t)
		return
	}
	old.fails = mergeTimes(old.fails, e.fails)
	if len(old.fails) > maxFailuresTracked {
		old.fails = old.fails[len(old.fails)-maxFailuresTracked:]
	}
	old.until = max(old.until, e.until)
	for _, m := range e.users {
		if !slices.ContainsFunc(old.users, func(x userMark) bool { return x.user == m.user }) {
			old.users = append(old.users, m)
		}
	}
	slices.SortFunc(old.users, func(a, b userMark) int { return int(a.at - b.at) })
	if len(old.users) > maxSprayUsersTracked {
		old.users = old.users[len(old.users)-maxSprayUsersTracked:]
	}
	old.seen = t
	s.lockIfOver(old, t)
}

// lockIfOver locks a user entry whose failures, counted on all nodes
// together, reached the limit (as countFailure does for local ones).
func (s *Shield) lockIfOver(e *entry, t int64) {
	if e.kind == kindAddr {
		return
	}
	if l := s.limit(e.kind); l > 0 && len(e.fails) >= l {
		e.until = max(e.until, t+s.backoff)
		e.fails = e.fails[:0]
	}
}

// mergeTimes returns the sorted union of two sorted lists.
func mergeTimes(a, b []int64) []int64 {
	out := make([]int64, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var v int64
		switch {
		case j >= len(b) || (i < len(a) && a[i] < b[j]):
			v, i = a[i], i+1
		case i >= len(a) || b[j] < a[i]:
			v, j = b[j], j+1
		default:
			v, i, j = a[i], i+1, j+1
		}
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}

// parseStoreKey reads the entry a store key names (storeKey's inverse).
func parseStoreKey(key string) (*entry, bool) {
	parts := strings.Split(key, "\x00")
	e := &entry{key: key}
	switch {
	case len(parts) == 3 && parts[0] == "ud":
		e.kind, e.user, e.device = kindUserDevice, parts[1], parts[2]
	case len(parts) == 3 && parts[0] == "ua":
		a, err := netip.ParseAddr(parts[2])
		if err != nil {
			return nil, false
		}
		e.kind, e.user, e.addr = kindUserAddr, parts[1], normAddr(a)
	case len(parts) == 2 && parts[0] == "ad":
		a, err := netip.ParseAddr(parts[1])
		if err != nil {
			return nil, false
		}
		e.kind, e.addr = kindAddr, normAddr(a)
	case len(parts) == 2 && parts[0] == "us":
		e.kind, e.user = kindUserAll, parts[1]
	default:
		return nil, false
	}
	return e, true
}
