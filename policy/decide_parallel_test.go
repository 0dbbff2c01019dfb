package policy

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkDecideCacheHitParallel is BenchmarkDecideCacheHit from every
// core at once, over 50 devices (the 50-phone load).
func BenchmarkDecideCacheHitParallel(b *testing.B) {
	states := map[string]State{}
	for i := range 50 {
		states["COMPLIANT"+strconv.Itoa(i)] = StateCompliant
	}
	e := cacheHitEngine(b, states)
	subjects := make([]*Subject, 50)
	ctx := context.Background()
	for i := range subjects {
		s := subject("bob@corp.example.com", "COMPLIANT"+strconv.Itoa(i), "Android", uaGmail, "SM-M215F", "Android 10")
		s.Now = time.Time{}
		e.Decide(ctx, s)
		subjects[i] = s
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			s := *subjects[i%len(subjects)]
			s.Now = time.Now()
			if d := e.Decide(ctx, &s); d.Action != Allow {
				b.Fatal("not allowed")
			}
		}
	})
}
