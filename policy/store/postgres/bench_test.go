package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/policy/store/postgres/pgtest"
)

// BenchmarkDirectPush50k: 50,000 devices in Direct Push write their
// last-seen times through the device table's once-a-second batched Flush
// into PostgreSQL. Each device sends a Ping every 8 minutes and a Sync
// after each (a busy fleet: ~208 requests/s); the run replays that rate in
// real time for a few seconds and reports the records written per second,
// the write batches per second and the CPU PostgreSQL used (a share of one
// core). It then measures the ceiling: all 50,000 records dirty in one
// flush.
func BenchmarkDirectPush50k(b *testing.B) {
	const devices = 50_000
	const heartbeat = 480 * time.Second
	d := newDBB(b)
	s, err := Open(context.Background(), Config{URL: d.URL(true), Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.Start()
	tab := policy.NewDevices(s)
	users := make([][]byte, devices)
	ids := make([][]byte, devices)
	now := time.Now()
	for i := range devices {
		users[i] = fmt.Appendf(nil, "u%05d@corp.example.com", i)
		ids[i] = fmt.Appendf(nil, "ApplDEV%08d", i)
		tab.Touch(users[i], ids[i], []byte("iPhone"), []byte("iOS/17.5 (21F90) dataaccessd/1.0"), now.Add(-time.Hour))
	}
	if err := tab.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := s.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	rate := float64(2*devices) / heartbeat.Seconds() // requests per second
	const seconds = 5
	b.ResetTimer()
	for range b.N {
		w0, cpu0 := s.Health().Written, clusterCPU(b)
		start := time.Now()
		rng := rand.New(rand.NewPCG(1, 2))
		for sec := range seconds {
			tick := start.Add(time.Duration(sec+1) * time.Second)
			n := int(rate)
			for range n {
				i := rng.IntN(devices)
				tab.Touch(users[i], ids[i], []byte("iPhone"), []byte("iOS/17.5 (21F90) dataaccessd/1.0"), time.Now())
			}
			time.Sleep(time.Until(tick))
			if err := tab.Flush(); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
		wall := time.Since(start)
		written := float64(s.Health().Written - w0)
		cpu := clusterCPU(b) - cpu0
		b.ReportMetric(written/wall.Seconds(), "records/s")
		b.ReportMetric(float64(seconds)/wall.Seconds(), "batches/s")
		b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "pg-cpu-%")

		// The ceiling: every device dirty, one flush.
		for i := range devices {
			tab.Touch(users[i], ids[i], []byte("iPhone"), []byte("iOS/17.5 (21F90) dataaccessd/1.0"), time.Now().Add(time.Duration(i)*time.Millisecond+2*time.Second))
		}
		t0, c0 := time.Now(), clusterCPU(b)
		if err := tab.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := s.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
		took := time.Since(t0)
		b.ReportMetric(devices/took.Seconds(), "max-records/s")
		b.ReportMetric((clusterCPU(b)-c0).Seconds()*1e6/devices, "pg-cpu-µs/record")
	}
}

func newDBB(b *testing.B) *pgtest.Database {
	b.Helper()
	pgtest.Need(b)
	clusterOnce.Do(func() { cluster, clusterErr = pgtest.Start() })
	if clusterErr != nil {
		b.Fatal(clusterErr)
	}
	d, err := cluster.NewDatabase()
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func clusterCPU(b *testing.B) time.Duration {
	c, err := cluster.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	return c
}
