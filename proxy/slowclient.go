package proxy

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/easgate/easgate/proxy/config"
	"github.com/easgate/easgate/proxy/upstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Slow clients (README "Slow clients").
//
// Every connection accepted by Serve is a phoneConn, and the phoneConn sets
// its own read deadline before each read of the network, from the phase the
// connection is in:
//
//   - header: accept (TLS handshake included), or the first byte of a
//     keep-alive connection's next request, plus listen.timeouts.header;
//   - body: the header is complete. A read may wait listen.timeouts.body for
//     data (nginx's client_body_timeout), and the body may take at most
//     timeouts.body + received/body_min_rate in all (Apache mod_reqtimeout's
//     MinRate): a live upload of any size passes, a body that trickles in
//     below the rate is cut about timeouts.body after it started;
//   - idle: keep-alive, waiting for the next request, listen.timeouts.idle.
//
// fasthttp's own ReadTimeout and IdleTimeout are off. It tells the
// connection that a header is complete through the only call it makes on
// the connection at that moment: headerReceived returns headerDoneMark as
// the request's ReadTimeout, and fasthttp calls SetReadDeadline(now +
// headerDoneMark), which phoneConn recognises (no deadline that far away is
// set for any other reason). Any other SetReadDeadline, such as the hijack's
// (held.TakeBuffered), hands the deadline to its caller until the connection
// waits for its next request again (connState, resume).
//
// A held long poll is never cut by these timeouts: its request has been read
// before it is held, and nothing reads the phone's connection while the CAS
// holds it.
//
// Connections that have not yet delivered a complete request header (which
// includes the TLS handshake) are counted per client address (IPv6: per
// /64, which one subscriber usually has whole); beyond
// listen.max_unauthenticated_per_address a new one is closed at accept. A
// phone's connection spends well under a second in that state, so the
// limit only bites a flood of connections that never finish a header. It is
// not applied with listen.plain_http, where every connection comes from
// the load balancer.

// Connection phases (phoneConn.phase).
const (
	phaseNone   uint8 = iota // deadlines belong to whoever set one (hijacked connection)
	phaseHeader              // waiting for a complete request header
	phaseBody                // header complete; the body, if any, is read
	phaseIdle                // keep-alive: waiting for the next request
)

// phaseNames label easgate_client_timeouts_total and the log lines.
var phaseNames = [...]string{phaseNone: "none", phaseHeader: "header", phaseBody: "body", phaseIdle: "idle"}

// headerDoneMark is the ReadTimeout headerReceived hands fasthttp to tell
// the phone's connection that a request header is complete; it is never
// used as a deadline. headerDoneFloor lies between every real deadline and
// every marked one (now + headerDoneMark, about 146 years on).
const headerDoneMark = time.Duration(1 << 62)

var headerDoneFloor = time.Now().Add(headerDoneMark / 2)

// clientLimits are the slow-client settings of one configuration.
type clientLimits struct {
	header, body, idle time.Duration
	minRate            int64 // bytes per second a body must average; 0: no rate rule
	perAddr            int   // unauthenticated connections per address; 0: no limit
}

// maxRateCredit bounds the time a body's received bytes earn (overflow
// guard; a body is bounded by limits.max_request_body long before).
const maxRateCredit = 1_000_000 // seconds

func newClientLimits(cfg *config.Config) clientLimits {
	l := cfg.Listen
	c := clientLimits{
		header:  l.Timeouts.Header.D(),
		body:    l.Timeouts.Body.D(),
		idle:    l.Timeouts.Idle.D(),
		minRate: min(int64(l.Timeouts.BodyMinRate), 1<<30),
		perAddr: l.MaxUnauthenticatedPerAddress,
	}
	// Parse validated the values; Default-built configs in code may not be.
	def := config.Default().Listen.Timeouts
	if c.header <= 0 {
		c.header = def.Header.D()
	}
	if c.body <= 0 {
		c.body = def.Body.D()
	}
	if c.idle <= 0 {
		c.idle = def.Idle.D()
	}
	if c.minRate < 0 {
		c.minRate = 0
	}
	if l.PlainHTTP || c.perAddr < 0 {
		c.perAddr = 0
	}
	return c
}

// bodyDeadline is the read deadline, at now, of a body that started at
// start and of which got bytes have arrived: the earlier of now + body (the
// per-read rule) and start + body + got/minRate (the rate rule).
func (lim *clientLimits) bodyDeadline(now, start time.Time, got int64) time.Time {
	d := now.Add(lim.body)
	if lim.minRate > 0 {
		secs := min(got/lim.minRate, maxRateCredit)
		credit := time.Duration(secs)*time.Second + time.Duration(got%lim.minRate)*time.Second/time.Duration(lim.minRate)
		if budget := start.Add(lim.body + credit); budget.Before(d) {
			d = budget
		}
	}
	return d
}

// admitConn prepares a newly accepted connection: it takes one of its
// address's unauthenticated slots, or refuses (closes) it when they are all
// taken, and arms the header deadline, which also covers the TLS handshake.
func (s *Server) admitConn(pc *phoneConn) bool {
	lim := &s.cur.Load().client
	now := time.Now()
	pc.s = s
	if lim.perAddr > 0 {
		if key, ok := addrKey(pc.Conn.RemoteAddr()); ok {
			if !s.unauth.acquire(key, lim.perAddr) {
				s.metrics.refusedPerAddr.Inc()
				_ = pc.Conn.Close()
				if skipped, ok := s.slowLog.refused.allow(now); ok {
					s.log.Warn().Stringer("client", key).Int("limit", lim.perAddr).Int64("similar_not_logged", skipped).
						Msg("connection refused: too many connections from this address without a complete request (listen.max_unauthenticated_per_address)")
				}
				return false
			}
			s.metrics.unauthConns.Inc()
			pc.key = key
			pc.counted.Store(true)
		}
	}
	pc.phase, pc.start = phaseHeader, now
	pc.deadline = now.Add(lim.header)
	if err := pc.Conn.SetReadDeadline(pc.deadline); err != nil {
		_ = pc.Close()
		return false
	}
	return true
}

// addrKey is the per-address counting key of a client: its IPv4 address,
// or the /64 of its IPv6 address.
func addrKey(a net.Addr) (netip.Addr, bool) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}, false
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, err := ip.Prefix(64)
		if err != nil {
			return netip.Addr{}, false
		}
		ip = p.Addr()
	}
	return ip, true
}

// release gives back the connection's unauthenticated slot, once.
func (p *phoneConn) release() {
	if p.counted.Swap(false) {
		p.s.unauth.release(p.key)
		p.s.metrics.unauthConns.Dec()
	}
}

// headerDone starts the body phase of a request whose header fasthttp
// completed at at.
func (p *phoneConn) headerDone(at time.Time) {
	p.release()
	p.phase, p.start, p.got = phaseBody, at, 0
}

// arm sets the read deadline the connection's phase calls for, before a
// read of the network.
func (p *phoneConn) arm() error {
	lim := &p.s.cur.Load().client
	var d time.Time
	switch p.phase {
	case phaseHeader:
		d = p.start.Add(lim.header)
	case phaseIdle:
		if p.start.IsZero() {
			p.start = time.Now()
		}
		d = p.start.Add(lim.idle)
	case phaseBody:
		d = lim.bodyDeadline(time.Now(), p.start, p.got)
	default:
		return nil
	}
	if d.Equal(p.deadline) || (p.phase == phaseIdle && upstream.KeepDeadline(p.deadline, d, p.start)) {
		// (an idle wait may end a 64th of listen.timeouts.idle early: the
		// deadline is not re-armed on every request of a busy connection)
		return nil
	}
	p.deadline = d
	return p.Conn.SetReadDeadline(d)
}

// received accounts for n bytes read: body bytes earn time under the rate
// rule, and the first byte after an idle wait starts a request header.
func (p *phoneConn) received(n int) {
	switch p.phase {
	case phaseBody:
		p.got += int64(n)
	case phaseIdle:
		p.phase, p.start = phaseHeader, time.Now()
	}
}

// timedOut records that the connection's deadline ended a read in the
// phase it was in; fasthttp then closes the connection. The deadline stays
// (a later read fails the same way) and is not counted again.
func (p *phoneConn) timedOut() {
	phase := p.phase
	if phase == phaseNone {
		return
	}
	p.phase = phaseNone
	s := p.s
	s.metrics.clientTimeouts[phase].Inc()
	lim := &s.cur.Load().client
	var (
		sl      *sparseLog
		level   = zerolog.InfoLevel
		timeout time.Duration
	)
	switch phase {
	case phaseHeader:
		sl, timeout = &s.slowLog.header, lim.header
	case phaseBody:
		sl, timeout = &s.slowLog.body, lim.body
	default:
		// An idle keep-alive connection closing is routine.
		sl, level, timeout = &s.slowLog.idle, zerolog.DebugLevel, lim.idle
	}
	skipped, ok := sl.allow(time.Now())
	if !ok {
		return
	}
	ev := s.log.WithLevel(level) // nil, and a no-op, when the level is off
	if phase == phaseBody {
		ev = ev.Int64("received", p.got)
	}
	ev.Stringer("client", p.Conn.RemoteAddr()).Str("phase", phaseNames[phase]).Dur("timeout", timeout).
		Int64("similar_not_logged", skipped).Msg("phone connection closed: read timed out (listen.timeouts)")
}

// clientTimeoutError is the error of a read of a phone's request body cut
// by listen.timeouts. A streamed body that stalls fails the upstream round
// trip with it, and statusFor answers 408 instead of the 504 of a CAS that
// timed out. It has no Timeout method on purpose: fasthttp's client turns
// any error with one into its own ErrTimeout, which would hide whose
// timeout it was (errors.Is(err, os.ErrDeadlineExceeded) still holds).
type clientTimeoutError struct{ err error }

func (e *clientTimeoutError) Error() string {
	return "phone read timed out (listen.timeouts.body): " + e.err.Error()
}
func (e *clientTimeoutError) Unwrap() error { return e.err }

// isClientTimeout reports whether err comes from a phone's read cut by
// listen.timeouts.
func isClientTimeout(err error) bool {
	var ct *clientTimeoutError
	return errors.As(err, &ct)
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// addrCounter counts the unauthenticated connections of each address.
type addrCounter struct {
	mu sync.Mutex
	n  map[netip.Addr]int32
}

// acquire takes one slot of key unless limit are taken.
func (c *addrCounter) acquire(key netip.Addr, limit int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = make(map[netip.Addr]int32)
	}
	v := c.n[key]
	if int(v) >= limit {
		return false
	}
	c.n[key] = v + 1
	return true
}

func (c *addrCounter) release(key netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.n[key]; v > 1 {
		c.n[key] = v - 1
	} else {
		delete(c.n, key)
	}
}

// count is the number of slots key holds.
func (c *addrCounter) count(key netip.Addr) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.n[key])
}

// slowLogs keep a flood of slow clients from flooding the log: each kind
// logs at most one line per slowLogInterval, which says how many it
// stands for; the metrics count every one.
type slowLogs struct {
	header, body, idle, refused sparseLog
}

const slowLogInterval = 10 * time.Second

// sparseLog lets one line through per slowLogInterval.
type sparseLog struct {
	next    atomic.Int64 // UnixNano before which lines are skipped
	skipped atomic.Int64
}

// allow reports whether a line may be logged now, and how many were
// skipped since the last one.
func (l *sparseLog) allow(now time.Time) (skipped int64, ok bool) {
	n := l.next.Load()
	if now.UnixNano() < n || !l.next.CompareAndSwap(n, now.Add(slowLogInterval).UnixNano()) {
		l.skipped.Add(1)
		return 0, false
	}
	return l.skipped.Swap(0), true
}

// registerSlowClients creates and registers the slow-client series.
func (m *metrics) registerSlowClients() {
	timeouts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "easgate_client_timeouts_total",
		Help: "Phone connections closed because a read waited past listen.timeouts, by phase (header, body, idle).",
	}, []string{"phase"})
	for _, ph := range [...]uint8{phaseHeader, phaseBody, phaseIdle} {
		m.clientTimeouts[ph] = timeouts.WithLabelValues(phaseNames[ph])
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "easgate_connections_refused_total",
		Help: "Phone connections closed at accept, by reason (unauthenticated_per_address: listen.max_unauthenticated_per_address).",
	}, []string{"reason"})
	m.refusedPerAddr = refused.WithLabelValues("unauthenticated_per_address")
	m.unauthConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "easgate_unauthenticated_connections",
		Help: "Phone connections counted against listen.max_unauthenticated_per_address: accepted, no complete request header yet.",
	})
	m.reg.MustRegister(timeouts, refused, m.unauthConns)
}
