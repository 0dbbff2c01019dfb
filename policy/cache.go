package policy

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// CacheConfig tunes the verdict cache.
type CacheConfig struct {
	// TTL is how long a compliant/non-compliant verdict is used without
	// asking the source again.
	TTL time.Duration
	// NegativeTTL is the TTL of "unknown" (not enrolled) verdicts: short, so
	// that a phone that has just enrolled gets mail soon.
	NegativeTTL time.Duration
	// StaleIfError is how long past its TTL a verdict may still be used
	// while the source fails.
	StaleIfError time.Duration
	// LookupTimeout is the most a request waits for the source. The lookup
	// itself goes on in the background (bounded by FetchTimeout) and fills
	// the cache for the phone's next request.
	LookupTimeout time.Duration
	// RefreshBefore starts a background refresh this long before a hit
	// expires, so busy devices never see a miss.
	RefreshBefore time.Duration
	// FetchTimeout bounds one background lookup.
	FetchTimeout time.Duration
	// MaxEntries bounds the cache (least recently used entries go first).
	MaxEntries int
}

// Defaults for zero fields of CacheConfig.
const (
	DefaultTTL           = 15 * time.Minute
	DefaultNegativeTTL   = 2 * time.Minute
	DefaultStaleIfError  = 24 * time.Hour
	DefaultLookupTimeout = 200 * time.Millisecond
	DefaultFetchTimeout  = 30 * time.Second
	DefaultMaxEntries    = 1 << 20
)

func (c *CacheConfig) defaults() {
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.NegativeTTL <= 0 {
		c.NegativeTTL = DefaultNegativeTTL
	}
	if c.StaleIfError < 0 {
		c.StaleIfError = 0
	}
	if c.LookupTimeout <= 0 {
		c.LookupTimeout = DefaultLookupTimeout
	}
	if c.RefreshBefore <= 0 || c.RefreshBefore >= c.TTL {
		c.RefreshBefore = c.TTL / 10
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = DefaultMaxEntries
	}
}

// Cache is the verdict cache in front of a Source: an LRU with TTLs, one
// lookup in flight per device, refresh before expiry, negative caching and
// stale-if-error. It is safe for concurrent use. A hit does no I/O and
// allocates nothing.
type Cache struct {
	src  Source
	cfg  CacheConfig
	seed maphash.Seed
	lru  *lru.Cache[uint64, *cacheEntry]

	mu       sync.Mutex
	inflight map[uint64]*fetch

	hits, misses, stale, errs atomic.Uint64
}

type cacheEntry struct {
	user, device string // lower-cased user and device id
	v            Verdict
	freshUntil   time.Time // fetched + TTL (or NegativeTTL), capped by the source's Expires
	refreshing   atomic.Bool
	// promoted is when (unix ns) the entry last went to the front of the
	// LRU: on Add, then at most once a promoteEvery when it is used.
	promoted atomic.Int64
}

// promoteEvery is how often a used entry is moved to the front of the
// LRU. Moving it takes the LRU's exclusive lock; doing so on every hit
// serialised every request of the gateway on that lock for an order that
// only matters when the cache is full. Between promotions a hit reads
// under the shared lock (Peek). The eviction order is the same as before
// at a one-second grain.
const promoteEvery = time.Second

func newCacheEntry(user, device string, v Verdict, until, now time.Time) *cacheEntry {
	e := &cacheEntry{user: user, device: device, v: v, freshUntil: until}
	e.promoted.Store(now.UnixNano())
	return e
}

// promote moves e (the entry of k) to the front of the LRU unless that
// was done within promoteEvery before now (or now is earlier than the
// last promotion: callers' clocks need not agree).
func (c *Cache) promote(k uint64, e *cacheEntry, now time.Time) {
	t := now.UnixNano()
	if p := e.promoted.Load(); t >= p && t-p < int64(promoteEvery) {
		return
	}
	e.promoted.Store(t)
	c.lru.Get(k)
}

type fetch struct {
	done chan struct{}
	v    Verdict
	err  error
}

// NewCache builds a cache in front of src.
func NewCache(src Source, cfg CacheConfig) (*Cache, error) {
	if src == nil {
		return nil, errors.New("policy: NewCache needs a source")
	}
	cfg.defaults()
	l, err := lru.New[uint64, *cacheEntry](cfg.MaxEntries)
	if err != nil {
		return nil, err
	}
	return &Cache{src: src, cfg: cfg, seed: maphash.MakeSeed(), lru: l, inflight: map[uint64]*fetch{}}, nil
}

// Config returns the effective configuration (defaults filled in).
func (c *Cache) Config() CacheConfig { return c.cfg }

// Source returns the source behind the cache.
func (c *Cache) Source() Source { return c.src }

// CacheStats are counters for metrics.
type CacheStats struct {
	Hits, Misses, Stale, Errors uint64
	Entries                     int
}

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Stale: c.stale.Load(), Errors: c.errs.Load(), Entries: c.lru.Len()}
}

func (c *Cache) key(user, device []byte) uint64 { return foldKeyHash(c.seed, user, device) }

func sameKey(e *cacheEntry, user, device []byte) bool {
	return foldEqual(e.user, user) && foldEqual(e.device, device)
}

// Get returns the verdict for the subject's user and device. It waits for
// the source at most LookupTimeout (or ctx's deadline, whichever is first).
// Errors mean no verdict could be had at all; a stale verdict is returned
// with Stale set instead of an error while within StaleIfError.
func (c *Cache) Get(ctx context.Context, s *Subject, now time.Time) (Verdict, error) {
	k := c.key(s.User, s.DeviceID)
	e, ok := c.lru.Peek(k)
	if ok && !sameKey(e, s.User, s.DeviceID) {
		e, ok = nil, false // hash collision: treat as a miss
	}
	if ok {
		c.promote(k, e, now)
	}
	if ok && now.Before(e.freshUntil) {
		c.hits.Add(1)
		if now.After(e.freshUntil.Add(-c.cfg.RefreshBefore)) && e.refreshing.CompareAndSwap(false, true) {
			c.start(k, s)
		}
		return e.v, nil
	}
	c.misses.Add(1)
	f := c.start(k, s)
	wait := c.cfg.LookupTimeout
	if dl, has := ctx.Deadline(); has && time.Until(dl) < wait {
		wait = time.Until(dl)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var err error
	select {
	case <-f.done:
		if f.err == nil {
			return f.v, nil
		}
		err = f.err
	case <-timer.C:
		err = fmt.Errorf("%w: no answer within %s", ErrUnavailable, wait)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if ok && now.Before(e.freshUntil.Add(c.cfg.StaleIfError)) {
		c.stale.Add(1)
		v := e.v
		v.Stale = true
		return v, nil
	}
	return Verdict{}, err
}

// start begins a background lookup for k unless one is in flight, and
// returns it. The lookup fills the cache when it succeeds.
func (c *Cache) start(k uint64, s *Subject) *fetch {
	c.mu.Lock()
	if f, ok := c.inflight[k]; ok {
		c.mu.Unlock()
		return f
	}
	f := &fetch{done: make(chan struct{})}
	c.inflight[k] = f
	c.mu.Unlock()

	q := Query{User: string(s.User), DeviceID: string(s.DeviceID), DeviceType: string(s.DeviceType), UserAgent: string(s.UserAgent)}
	if s.Info != nil {
		q.Model, q.OS = s.Info.Model, s.Info.OS
	}
	lowUser := lowerString(q.User)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.FetchTimeout)
		v, err := c.src.Lookup(ctx, q)
		cancel()
		if err == nil {
			now := time.Now()
			if v.Fetched.IsZero() {
				v.Fetched = now
			}
			if v.Source == "" {
				v.Source = c.src.Name()
			}
			v.Valid = true
			ttl := c.cfg.TTL
			if v.State == StateUnknown {
				ttl = c.cfg.NegativeTTL
			}
			until := v.Fetched.Add(ttl)
			if !v.Expires.IsZero() && v.Expires.Before(until) {
				until = v.Expires
			}
			c.lru.Add(k, newCacheEntry(lowUser, lowerString(q.DeviceID), v, until, now))
		} else {
			c.errs.Add(1)
			if old, ok := c.lru.Peek(k); ok {
				old.refreshing.Store(false) // let a later hit try again
			}
		}
		f.v, f.err = v, err
		c.mu.Lock()
		delete(c.inflight, k)
		c.mu.Unlock()
		close(f.done)
	}()
	return f
}

// Put stores a verdict directly (used by sources that pull in bulk, such as
// Microsoft Graph, and by the persisted snapshot at start-up).
func (c *Cache) Put(user, device string, v Verdict) {
	if v.Fetched.IsZero() {
		v.Fetched = time.Now()
	}
	v.Valid = true
	ttl := c.cfg.TTL
	if v.State == StateUnknown {
		ttl = c.cfg.NegativeTTL
	}
	until := v.Fetched.Add(ttl)
	if !v.Expires.IsZero() && v.Expires.Before(until) {
		until = v.Expires
	}
	c.lru.Add(c.key([]byte(user), []byte(device)), newCacheEntry(lowerString(user), lowerString(device), v, until, time.Now()))
}

// Purge forgets every cached verdict. Sources that hold their whole table
// locally (a compliance file, the Graph pull) call it when their table
// changes, so the next request of every device sees the change at once
// instead of after its TTL.
func (c *Cache) Purge() { c.lru.Purge() }

// Invalidate forgets the verdict for one device (an admin change).
func (c *Cache) Invalidate(user, device string) {
	c.lru.Remove(c.key([]byte(user), []byte(device)))
}

func lowerString(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] = lowerASCII(b[i])
	}
	return string(b)
}
