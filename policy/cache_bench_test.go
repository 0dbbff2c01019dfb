package policy

import (
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkCacheMemory1M fills the verdict cache with 1,000,000 verdicts and
// reports the heap it holds per entry (bytes/verdict).
func BenchmarkCacheMemory1M(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c, err := NewCache(&fakeSource{}, CacheConfig{MaxEntries: n, TTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		for i := 0; i < n; i++ {
			id := strconv.Itoa(i)
			c.Put("user"+id+"@corp.example.com", "ApplDMPL69PZ"+id, Verdict{State: StateCompliant, Source: "graph", Fetched: now})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if c.Stats().Entries != n {
			b.Fatalf("entries %d", c.Stats().Entries)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/verdict")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB/1M")
		runtime.KeepAlive(c)
	}
}
