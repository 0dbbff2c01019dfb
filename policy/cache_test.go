package policy

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func cacheSubject(dev string) *Subject {
	return &Subject{User: []byte("bob@corp.example.com"), DeviceID: []byte(dev), DeviceType: []byte("iPhone")}
}

func TestCacheHitMissAndSingleFlight(t *testing.T) {
	src := &fakeSource{states: map[string]State{"D1": StateCompliant}, stall: make(chan struct{})}
	c, err := NewCache(src, CacheConfig{LookupTimeout: 2 * time.Second, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]Verdict, 20)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			v, err := c.Get(context.Background(), cacheSubject("D1"), time.Now())
			if err != nil {
				t.Error(err)
			}
			results[i] = v
		}(i)
	}
	time.Sleep(50 * time.Millisecond) // let all 20 join the one lookup
	close(src.stall)
	wg.Wait()
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("source called %d times for 20 concurrent misses, want 1", n)
	}
	for _, v := range results {
		if v.State != StateCompliant || !v.Valid || v.Source != "fake" {
			t.Fatalf("verdict %+v", v)
		}
	}
	if _, err := c.Get(context.Background(), cacheSubject("D1"), time.Now()); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Hits != 1 || src.calls.Load() != 1 {
		t.Fatalf("stats %+v calls %d: want one hit and no new lookup", st, src.calls.Load())
	}
}

func TestCacheUserSpellingsShareNothingButCase(t *testing.T) {
	src := &fakeSource{states: map[string]State{"D1": StateCompliant}}
	c, _ := NewCache(src, CacheConfig{LookupTimeout: 2 * time.Second})
	s := cacheSubject("D1")
	if _, err := c.Get(context.Background(), s, time.Now()); err != nil {
		t.Fatal(err)
	}
	s.User = []byte("BOB@Corp.Example.com")
	if _, err := c.Get(context.Background(), s, time.Now()); err != nil {
		t.Fatal(err)
	}
	if src.calls.Load() != 1 {
		t.Fatalf("case difference caused a second lookup")
	}
}

func TestCacheTimeoutThenBackgroundFill(t *testing.T) {
	src := &fakeSource{states: map[string]State{"D1": StateCompliant}, stall: make(chan struct{})}
	c, _ := NewCache(src, CacheConfig{LookupTimeout: 20 * time.Millisecond})
	_, err := c.Get(context.Background(), cacheSubject("D1"), time.Now())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("want ErrUnavailable on a slow source, got %v", err)
	}
	close(src.stall)
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Entries == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	v, err := c.Get(context.Background(), cacheSubject("D1"), time.Now())
	if err != nil || v.State != StateCompliant {
		t.Fatalf("after background fill: %+v %v", v, err)
	}
}

func TestCacheStaleIfErrorAndNegativeTTL(t *testing.T) {
	src := &fakeSource{states: map[string]State{"D1": StateCompliant}}
	c, _ := NewCache(src, CacheConfig{LookupTimeout: time.Second, TTL: time.Minute, NegativeTTL: 10 * time.Second, StaleIfError: time.Hour})
	now := time.Now()
	if _, err := c.Get(context.Background(), cacheSubject("D1"), now); err != nil {
		t.Fatal(err)
	}
	src.fail.Store(true)
	// Past the TTL but within stale-if-error: the old verdict, marked stale.
	v, err := c.Get(context.Background(), cacheSubject("D1"), now.Add(30*time.Minute))
	if err != nil || !v.Stale || v.State != StateCompliant {
		t.Fatalf("within stale bound: %+v %v", v, err)
	}
	// Past the stale bound: no verdict.
	if _, err := c.Get(context.Background(), cacheSubject("D1"), now.Add(2*time.Hour)); err == nil {
		t.Fatal("past the stale bound a verdict was still served")
	}
	// Negative caching: an unknown device is cached for NegativeTTL only.
	src.fail.Store(false)
	calls := src.calls.Load()
	if v, err := c.Get(context.Background(), cacheSubject("NEW"), now); err != nil || v.State != StateUnknown {
		t.Fatalf("unknown: %+v %v", v, err)
	}
	if _, err := c.Get(context.Background(), cacheSubject("NEW"), now.Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if src.calls.Load() != calls+1 {
		t.Fatal("negative verdict not cached within NegativeTTL")
	}
	if _, err := c.Get(context.Background(), cacheSubject("NEW"), now.Add(20*time.Second)); err != nil {
		t.Fatal(err)
	}
	if src.calls.Load() != calls+2 {
		t.Fatal("negative verdict served past NegativeTTL")
	}
}

func TestCacheRefreshBeforeExpiry(t *testing.T) {
	src := &fakeSource{states: map[string]State{"D1": StateCompliant}}
	c, _ := NewCache(src, CacheConfig{LookupTimeout: time.Second, TTL: time.Minute, RefreshBefore: 10 * time.Second})
	now := time.Now()
	if _, err := c.Get(context.Background(), cacheSubject("D1"), now); err != nil {
		t.Fatal(err)
	}
	// Inside the refresh window: served from cache, and one refresh starts.
	for i := 0; i < 5; i++ {
		if _, err := c.Get(context.Background(), cacheSubject("D1"), now.Add(55*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for src.calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if n := src.calls.Load(); n != 2 {
		t.Fatalf("source called %d times, want 2 (one refresh)", n)
	}
}

func TestOnUnavailable(t *testing.T) {
	src := &fakeSource{}
	src.fail.Store(true)
	c, _ := NewCache(src, CacheConfig{LookupTimeout: time.Second})
	for _, act := range []Action{Allow, Block, Quarantine} {
		cfg := Config{DefaultAccess: Allow, Compliance: ComplianceConfig{RequireFor: []string{"all"}, OnUnavailable: act}}
		e, err := NewEngine(cfg, c)
		if err != nil {
			t.Fatal(err)
		}
		d := e.Decide(context.Background(), cacheSubject("D9"))
		if d.Action != act || !d.HasReason(ReasonComplianceUnavailable) {
			t.Fatalf("on_unavailable %s: got %s %v", act, d.Action, d.Reasons())
		}
	}
}

// TestCacheHitPromotes: a used verdict goes to the front of the LRU (at
// most once a second), so a full cache evicts the one not used.
func TestCacheHitPromotes(t *testing.T) {
	c, err := NewCache(&fakeSource{}, CacheConfig{MaxEntries: 2, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c.Put("bob@corp.example.com", "D1", Verdict{State: StateCompliant, Fetched: now})
	c.Put("bob@corp.example.com", "D2", Verdict{State: StateCompliant, Fetched: now})
	// D1 is the oldest; a hit two seconds on moves it to the front.
	for range 3 {
		if v, err := c.Get(context.Background(), cacheSubject("D1"), now.Add(2*time.Second)); err != nil || v.State != StateCompliant {
			t.Fatalf("hit: %+v %v", v, err)
		}
	}
	c.Put("bob@corp.example.com", "D3", Verdict{State: StateCompliant, Fetched: now})
	if _, ok := c.lru.Peek(c.key([]byte("bob@corp.example.com"), []byte("D1"))); !ok {
		t.Fatal("the verdict just used was evicted")
	}
	if _, ok := c.lru.Peek(c.key([]byte("bob@corp.example.com"), []byte("D2"))); ok {
		t.Fatal("the verdict not used survived")
	}
	if st := c.Stats(); st.Hits != 3 || st.Entries != 2 {
		t.Fatalf("stats %+v", st)
	}
}
