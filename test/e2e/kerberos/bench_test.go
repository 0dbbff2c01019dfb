package kerberos_test

import (
	"context"
	"sync"
	"testing"
	"time"
)

var (
	basicOnce sync.Once
	basicGW   *gateway
	basicErr  error
)

// BenchmarkKCD: FolderSync requests per second of certificate phones
// through easgate with Kerberos constrained delegation (a fresh SPNEGO
// token per request from the cached ticket) to the Negotiate-protected
// stand-in, which checks every token. Compare BenchmarkBasicPassthrough.
func BenchmarkKCD(b *testing.B) {
	need(b)
	c := phone(cert(b, "alice@corp.test"))
	if a, err := folderSync(context.Background(), c, gw.url, "alice", "KRBBENCH", false); err != nil || a.status != 200 {
		b.Fatalf("warm-up: %v %d", err, a.status)
	}
	run(b, func() (int, string, error) {
		a, err := folderSync(context.Background(), c, gw.url, "alice", "KRBBENCH", false)
		return a.status, a.user, err
	}, "alice@CORP.TEST")
}

// BenchmarkBasicPassthrough: the same requests with Basic credentials that
// easgate forwards unread (auth.mode credentials) to the stand-in's port
// without authentication.
func BenchmarkBasicPassthrough(b *testing.B) {
	need(b)
	basicOnce.Do(func() { basicGW, basicErr = startGateway("basic", basicConfig) })
	if basicErr != nil {
		b.Fatal(basicErr)
	}
	c := phone(nil)
	run(b, func() (int, string, error) {
		a, err := folderSync(context.Background(), c, basicGW.url, "alice", "KRBBENCHB", true)
		return a.status, a.user, err
	}, "")
}

func run(b *testing.B, do func() (int, string, error), wantUser string) {
	b.SetParallelism(4)
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			status, user, err := do()
			if err != nil || status != 200 || user != wantUser {
				b.Errorf("got %d %q %v", status, user, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
