package proxy

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// metrics are the Prometheus series of one Server. Each Server has its own
// registry, so several servers (tests) never collide.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec   // command, decision, status
	duration  *prometheus.HistogramVec // command: whole request, long polls excluded
	upstream  *prometheus.HistogramVec // command: time to the CAS's response header
	held      prometheus.Gauge
	heldLimit prometheus.Gauge     // limits.max_held_long_polls (health.go)
	panicMode prometheus.Gauge     // 1 while every CAS is marked down (health.go)
	healthy   *prometheus.GaugeVec // upstream
	reloads   *prometheus.CounterVec
	rejected  *prometheus.CounterVec // reason
	handler   fasthttp.RequestHandler
	statusStr [600]string

	// The compliance reload guard (access.GuardMetrics).
	complianceHeld  *prometheus.GaugeVec   // source
	complianceHolds *prometheus.CounterVec // source, reason

	// Series already looked up, by label values: Prometheus hashes and
	// validates the label values on every WithLabelValues, which cost more
	// than the rest of the per-request accounting.
	requestsBy labelCache[[3]string, prometheus.Counter]
	durationBy labelCache[string, prometheus.Observer]
	upstreamBy labelCache[string, prometheus.Observer]

	// Slow clients (slowclient.go): connections closed by a listen
	// timeout, by phase (indexed by phase; none is unused), refused at
	// accept, and holding an unauthenticated slot.
	clientTimeouts [len(phaseNames)]prometheus.Counter
	refusedPerAddr prometheus.Counter
	unauthConns    prometheus.Gauge
}

// labelCache maps label values to their series. Reads take no lock (the
// map is replaced, never changed, when a new combination appears); the
// label values come from small fixed sets, so it stays small.
type labelCache[K comparable, M any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[K]M]
}

func (c *labelCache[K, M]) get(k K, lookup func(K) M) M {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	next := make(map[K]M)
	if old != nil {
		maps.Copy(next, *old)
	}
	v := lookup(k)
	next[k] = v
	c.m.Store(&next)
	return v
}

// request counts one answered request.
func (m *metrics) request(cmd, decision string, status int) {
	m.requestsBy.get([3]string{cmd, decision, m.status(status)}, func(k [3]string) prometheus.Counter {
		return m.requests.WithLabelValues(k[0], k[1], k[2])
	}).Inc()
}

// requestDuration records the duration of a request that was not held.
func (m *metrics) requestDuration(cmd string, seconds float64) {
	m.durationBy.get(cmd, func(k string) prometheus.Observer { return m.duration.WithLabelValues(k) }).Observe(seconds)
}

// upstreamDuration records the time the CAS took to answer.
func (m *metrics) upstreamDuration(cmd string, seconds float64) {
	m.upstreamBy.get(cmd, func(k string) prometheus.Observer { return m.upstream.WithLabelValues(k) }).Observe(seconds)
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.registerSlowClients() // slowclient.go
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "easgate_requests_total",
		Help: "Requests answered, by EAS command, policy decision and HTTP status.",
	}, []string{"command", "decision", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "easgate_request_duration_seconds",
		Help:    "Time from request to the end of the response, for requests that are not long polls.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
	}, []string{"command"})
	m.upstream = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "easgate_upstream_duration_seconds",
		Help:    "Time the CAS took to send its response header (long polls included).",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600},
	}, []string{"command"})
	m.held = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "easgate_held_long_polls",
		Help: "Ping and Sync requests currently held open at a CAS.",
	})
	m.heldLimit = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "easgate_held_long_polls_limit",
		Help: "limits.max_held_long_polls: held requests beyond it are answered 503 (0: no limit).",
	})
	m.panicMode = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "easgate_upstream_panic_mode",
		Help: "1 while every CAS is marked down and requests go to all of them anyway (panic mode).",
	})
	m.healthy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "easgate_upstream_healthy",
		Help: "1 when the CAS is in rotation, 0 when it is not.",
	}, []string{"upstream"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "easgate_config_reloads_total",
		Help: "Configuration reloads, by result (ok, error).",
	}, []string{"result"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "easgate_rejected_requests_total",
		Help: "Requests refused before reaching a CAS, by reason.",
	}, []string{"reason"})
	m.complianceHeld = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "easgate_compliance_reload_held_back",
		Help: "1 while the compliance source holds a reload back (the last good table stays in force), by source type.",
	}, []string{"source"})
	m.complianceHolds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "easgate_compliance_reloads_held_back_total",
		Help: "Compliance reloads held back, by source type and reason (empty, unparsable, drop).",
	}, []string{"source", "reason"})
	m.reg.MustRegister(m.requests, m.duration, m.upstream, m.held, m.heldLimit, m.panicMode, m.healthy, m.reloads, m.rejected,
		m.complianceHeld, m.complianceHolds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	for i := range m.statusStr {
		m.statusStr[i] = strconv.Itoa(i)
	}
	return m
}

// HeldBack implements access.GuardMetrics.
func (m *metrics) HeldBack(source, reason string) {
	m.complianceHeld.WithLabelValues(source).Set(1)
	m.complianceHolds.WithLabelValues(source, reason).Inc()
}

// HoldEnded implements access.GuardMetrics.
func (m *metrics) HoldEnded(source string) { m.complianceHeld.WithLabelValues(source).Set(0) }

func (m *metrics) status(code int) string {
	if code >= 0 && code < len(m.statusStr) {
		return m.statusStr[code]
	}
	return "other"
}
