package proxy

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
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
	statusStr [statusLabels]string

	// The compliance reload guard (access.GuardMetrics).
	complianceHeld  *prometheus.GaugeVec   // source
	complianceHolds *prometheus.CounterVec // source, reason

	// Series resolved once, by label index (see series): Prometheus
	// hashes and validates the label values on every WithLabelValues,
	// which cost more than the rest of the per-request accounting.
	requestsBy [cmdLabels * len(decisionLabels)]atomic.Pointer[statusSeries]
	durationBy [cmdLabels]series[prometheus.Observer]
	upstreamBy [256]series[prometheus.Observer] // by eas.Command
	// Label values outside the indexes (a decision label not in
	// decisionLabels, a refusal reason), by value.
	requestsByLabel labelCache[[3]string, prometheus.Counter]
	rejectedBy      labelCache[string, prometheus.Counter]

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

// series is one series of a metric vector, looked up on first use and
// kept: requests find their series by small label indexes (command,
// decision, status) instead of hashing label strings. Two requests filling
// a slot at once get the same series from Prometheus; a series is only
// created (and exported) when it is first used, as with WithLabelValues.
type series[M any] struct{ p atomic.Pointer[M] }

func (s *series[M]) get(lookup func() M) M {
	if p := s.p.Load(); p != nil {
		return *p
	}
	return s.fill(lookup)
}

func (s *series[M]) fill(lookup func() M) M {
	m := lookup()
	s.p.Store(&m)
	return m
}

// The command label of a request (commandLabel, exchange.go): an
// eas.Command's name (0-255) or one of the three labels of requests
// without one.
const (
	cmdLabelAutodiscover = 256 + iota
	cmdLabelNone
	cmdLabelInvalid
	cmdLabels
)

// cmdLabelNames are the command labels by index.
var cmdLabelNames = func() (t [cmdLabels]string) {
	for c := range 256 {
		t[c] = eas.Command(c).String()
	}
	t[cmdLabelAutodiscover], t[cmdLabelNone], t[cmdLabelInvalid] = "Autodiscover", "none", "invalid"
	return t
}()

// decisionLabels are the values of decisionLabel (enforce.go).
var decisionLabels = [...]string{"allow", "block", "quarantine", "none"}

func decisionIndex(decision string) int {
	switch decision {
	case "allow":
		return 0
	case "block":
		return 1
	case "quarantine":
		return 2
	case "none":
		return 3
	}
	return -1
}

// statusSeries are the request counts of one command and decision, by
// status code; the last one is "other".
type statusSeries [statusLabels + 1]series[prometheus.Counter]

// statusLabels are the status codes with their own label (statusStr).
const statusLabels = 600

// request counts one answered request; cmd is a command label index.
func (m *metrics) request(cmd int, decision string, status int) {
	d := decisionIndex(decision)
	if d < 0 {
		k := [3]string{cmdLabelNames[cmd], decision, m.status(status)}
		m.requestsByLabel.get(k, func(k [3]string) prometheus.Counter {
			return m.requests.WithLabelValues(k[0], k[1], k[2])
		}).Inc()
		return
	}
	row := &m.requestsBy[cmd*len(decisionLabels)+d]
	ss := row.Load()
	if ss == nil {
		row.CompareAndSwap(nil, new(statusSeries))
		ss = row.Load()
	}
	i := status
	if i < 0 || i >= statusLabels {
		i = statusLabels
	}
	ss[i].get(func() prometheus.Counter {
		return m.requests.WithLabelValues(cmdLabelNames[cmd], decisionLabels[d], m.status(status))
	}).Inc()
}

// requestDuration records the duration of a request that was not held;
// cmd is a command label index.
func (m *metrics) requestDuration(cmd int, seconds float64) {
	m.durationBy[cmd].get(func() prometheus.Observer { return m.duration.WithLabelValues(cmdLabelNames[cmd]) }).Observe(seconds)
}

// upstreamDuration records the time the CAS took to answer.
func (m *metrics) upstreamDuration(cmd eas.Command, seconds float64) {
	m.upstreamBy[cmd].get(func() prometheus.Observer { return m.upstream.WithLabelValues(cmd.String()) }).Observe(seconds)
}

// reject counts a request easgate refused (easgate_rejected_requests_total).
func (m *metrics) reject(reason string) {
	m.rejectedBy.get(reason, func(k string) prometheus.Counter { return m.rejected.WithLabelValues(k) }).Inc()
}

// decisionSeries are easgate_policy_decisions_total's series by action,
// first reason and mode (enforce.go).
type decisionSeries [3 * 256 * 2]series[prometheus.Counter]

// count counts one decision.
func (ds *decisionSeries) count(vec *prometheus.CounterVec, d *policy.Decision) {
	reason := policy.ReasonNone
	if rs := d.Reasons(); len(rs) > 0 {
		reason = rs[0]
	}
	mode := 0
	if !d.Enforced {
		mode = 1
	}
	lookup := func() prometheus.Counter {
		return vec.WithLabelValues(d.Action.String(), reason.String(), [...]string{"enforce", "report"}[mode])
	}
	if int(d.Action) >= 3 {
		lookup().Inc()
		return
	}
	ds[(int(d.Action)*256+int(reason))*2+mode].get(lookup).Inc()
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
