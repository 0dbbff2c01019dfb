package proxy

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/auth"
	"github.com/easgate/easgate/proxy/quarantine"
)

// sharedFlush is how often, with a shared state database, the lockout
// counters and quarantine records are queued for it: a phone that
// alternates between nodes must find the other node's counters and
// notice state there (the feed then takes a few milliseconds).
const sharedFlush = 150 * time.Millisecond

// sharedRuntime feeds the changes other nodes make into this node's
// tables (state.url): overrides, quarantine records, lockout counters,
// devices and the audit sequence. A changed override or quarantine record
// wakes the device's held requests, which re-decide exactly as they do
// after an admin action on this node (proxy/held).
type sharedRuntime struct {
	store policy.SharedStore
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// initShared subscribes this node's tables to the change feed, registers
// the state database metrics and starts the feed. Without a shared store
// it does nothing.
func (s *Server) initShared(st *state) {
	if st.enf == nil || st.enf.acc == nil {
		return
	}
	ss := st.enf.acc.Shared()
	if ss == nil {
		return
	}
	acc := st.enf.acc // devices, overrides and audit outlive reloads
	rt := &sharedRuntime{store: ss, stop: make(chan struct{})}
	ss.Subscribe(policy.BucketDevices, acc.Devices.ApplyRemote)
	ss.Subscribe(policy.BucketAudit, acc.Audit.ApplyRemote)
	ss.Subscribe(policy.BucketOverrides, func(k string, v []byte) {
		if u, d, ok := acc.Overrides.ApplyRemote(k, v); ok {
			s.registry.Wake([]byte(u), []byte(d))
		}
	})
	ss.Subscribe(quarantine.Bucket, func(k string, v []byte) {
		if u, d, ok := s.enf.quar.ApplyRemote(k, v); ok {
			s.registry.Wake([]byte(u), []byte(d))
		}
	})
	ss.Subscribe(auth.BucketLockout, func(k string, v []byte) { s.curShield().ApplyRemote(k, v) })
	s.sharedRegisterComplianceFeed(st, ss) // sharedgraph.go

	gauge := func(name, help string, f func(policy.SharedHealth) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(ss.Health()) })
	}
	counter := func(name, help string, f func(policy.SharedHealth) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(ss.Health()) })
	}
	s.metrics.reg.MustRegister(
		gauge("easgate_state_database_up", "1 while the shared state database (state.url) answers; 0 while this node serves from memory.",
			func(h policy.SharedHealth) float64 { return b2f(h.Up) }),
		gauge("easgate_state_write_queue_records", "Records queued for the shared state database (bounded by state.queue_limit).",
			func(h policy.SharedHealth) float64 { return float64(h.Pending) }),
		counter("easgate_state_records_written_total", "Records this node wrote to the shared state database.",
			func(h policy.SharedHealth) float64 { return float64(h.Written) }),
		counter("easgate_state_records_applied_total", "Records of other nodes applied to this node's tables.",
			func(h policy.SharedHealth) float64 { return float64(h.Applied) }))

	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		t := time.NewTicker(sharedFlush)
		defer t.Stop()
		for {
			select {
			case <-rt.stop:
				return
			case <-t.C:
				_ = s.curShield().Flush() // the 1 s loops log failures
				_ = s.enf.quar.Flush()
			}
		}
	}()
	s.shared = rt
	ss.Start()
}

// closeShared stops the fast flushes (at shutdown, before the last ones).
func (s *Server) closeShared() {
	if rt := s.shared; rt != nil {
		rt.once.Do(func() { close(rt.stop) })
		rt.wg.Wait()
	}
}

// sharedDetail is the /readyz line about the shared state database ("" without one).
func (s *Server) sharedDetail() string {
	if s.shared == nil {
		return ""
	}
	h := s.shared.store.Health()
	if h.Up {
		return "state database: up, " + strconv.Itoa(h.Pending) + " writes queued\n"
	}
	return "state database: unreachable, serving from memory, " + strconv.Itoa(h.Pending) + " writes queued: " + h.LastError + "\n"
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
