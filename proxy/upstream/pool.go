package upstream

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Backend is one CAS: a fasthttp.HostClient sized for held long polls, its
// health, and the connections it has open. Its exported fields are set by
// NewBackend (SPN by the caller, before the backend is used) and read-only
// afterwards; everything else is safe for concurrent use.
type Backend struct {
	Name  string // label for logs and metrics
	Addr  string // host:port dialled
	HTTPS bool
	SPN   string // its Kerberos SPN (upstreams.kerberos); "" when off

	uriPrefix  []byte // "https://mail.corp.example.com": scheme + the Host the CAS expects
	hostHeader []byte // the Host header sent to the CAS
	hc         *fasthttp.HostClient
	// hcHold carries the held long polls: its connections wait for the
	// answer without a read buffer (liveConn.SetReadDeadline), and its pool
	// keeps them apart from the ordinary requests'.
	hcHold *fasthttp.HostClient
	conns  connSet

	inflight atomic.Int64
	healthy  atomic.Bool
	// ejectedUntil (unix nanoseconds) keeps a server out of rotation after a
	// connect failure when active health checks are off.
	ejectedUntil atomic.Int64

	// okRun and failRun count consecutive probe results (health goroutine
	// and passive ejection; guarded by mu).
	mu      sync.Mutex
	okRun   int
	failRun int
}

// Options are the pool-wide settings a backend is built with.
type Options struct {
	TLS        *tls.Config // for https servers; ServerName already set
	ServerName string      // upstreams.tls.server_name: the Host header too
	Connect    time.Duration
}

// maxUpstreamConns bounds the connections to one CAS. It is far above the
// number of requests easgate holds at once, because every held Ping owns
// one upstream connection for its whole life (a cap of 512 once turned 600
// held Pings into 88 answers of 502).
const maxUpstreamConns = 1 << 20

// NewBackend is the CAS at rawURL (http or https, host and optional port),
// named name in logs and metrics (its host when empty). It opens nothing:
// connections are dialled on first use. A new backend is healthy.
func NewBackend(rawURL, name string, o Options) (*Backend, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", rawURL, err)
	}
	b := &Backend{Name: name}
	switch u.Scheme {
	case "https":
		b.HTTPS = true
	case "http":
	default:
		return nil, fmt.Errorf("upstream %q: scheme must be http or https", rawURL)
	}
	host := u.Host
	if host == "" {
		return nil, fmt.Errorf("upstream %q: no host", rawURL)
	}
	b.Addr = host
	if u.Port() == "" {
		if b.HTTPS {
			b.Addr = net.JoinHostPort(u.Hostname(), "443")
		} else {
			b.Addr = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	if b.Name == "" {
		b.Name = host
	}
	hostHeader := host
	if o.ServerName != "" {
		hostHeader = o.ServerName
	}
	b.hostHeader = []byte(hostHeader)
	b.uriPrefix = []byte(u.Scheme + "://" + hostHeader)

	d := &dialer{timeout: o.Connect, set: &b.conns}
	if b.HTTPS {
		cfg := o.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		d.tls = cfg
	}
	b.hc = newHostClient(b, d)
	dh := *d
	dh.waitFirst = true
	b.hcHold = newHostClient(b, &dh)
	b.healthy.Store(true)
	return b, nil
}

// HostHeader is the Host header (and URI host) a request to this CAS
// carries. The caller must not change it.
func (b *Backend) HostHeader() []byte { return b.hostHeader }

// Healthy reports whether the health checks (or passive ejection) keep the
// backend in rotation; SetHealthy overrides it (a reload carries health
// over to the new pool).
func (b *Backend) Healthy() bool     { return b.healthy.Load() }
func (b *Backend) SetHealthy(v bool) { b.healthy.Store(v) }

// Begin counts a request sent to the backend (Pick prefers the least
// loaded); End ends it, once its answer has been read or has failed.
func (b *Backend) Begin() { b.inflight.Add(1) }
func (b *Backend) End()   { b.inflight.Add(-1) }

// OpenConns is the number of connections open to the CAS, and Waiting the
// number of those on which a request waits for the first byte of its
// answer (a held long poll, mostly).
func (b *Backend) OpenConns() int64 { return b.conns.n.Load() }
func (b *Backend) Waiting() int     { return b.conns.waiting() }

// Available reports whether the backend takes new requests now (healthy,
// and not ejected after a connect failure); InFlight is the number of
// requests it has now.
func (b *Backend) Available() bool { return b.available(time.Now().UnixNano()) }
func (b *Backend) InFlight() int64 { return b.inflight.Load() }

// available reports whether the backend may take new requests.
func (b *Backend) available(now int64) bool {
	return b.healthy.Load() && b.ejectedUntil.Load() <= now
}

// RecordProbe applies one active health-check result and reports whether the
// health changed: healthyAfter successes in a row bring a backend back,
// unhealthyAfter failures take it out.
func (b *Backend) RecordProbe(ok bool, healthyAfter, unhealthyAfter int) (changed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.failRun = 0
		b.okRun++
		if !b.healthy.Load() && b.okRun >= healthyAfter {
			b.healthy.Store(true)
			b.ejectedUntil.Store(0)
			return true
		}
		return false
	}
	b.okRun = 0
	b.failRun++
	if b.healthy.Load() && b.failRun >= unhealthyAfter {
		b.healthy.Store(false)
		return true
	}
	return false
}

// Eject takes the backend out of rotation after a connect failure (passive
// health): with active checks it stays out until they see it healthy again;
// without, for the given cool-down.
func (b *Backend) Eject(activeChecks bool, coolDown time.Duration) (changed bool) {
	if activeChecks {
		b.mu.Lock()
		b.okRun = 0
		b.mu.Unlock()
		return b.healthy.Swap(false)
	}
	b.ejectedUntil.Store(time.Now().Add(coolDown).UnixNano())
	return true
}

// Balance names the selection policy.
type Balance uint8

const (
	LeastInflight Balance = iota // fewest requests in flight; ties rotate
	RoundRobin
)

// Pool is the set of CAS servers of one running state. Backends is set
// when the pool is built and read-only afterwards; the methods are safe for
// concurrent use.
type Pool struct {
	Backends []*Backend
	Mode     Balance
	rr       atomic.Uint64
	// panicking is set while every CAS is marked down (pick ignores
	// health then); notePanic keeps it.
	panicking atomic.Bool
}

// Pick chooses an available backend not in tried (a bitmask over indexes
// into Backends). It returns -1 when none is left. It does not allocate.
// When every backend is marked down it picks among all of them (panic
// mode).
func (p *Pool) Pick(tried uint64) int {
	n := len(p.Backends)
	if n == 0 {
		return -1
	}
	now := time.Now().UnixNano()
	start := int(p.rr.Add(1) % uint64(n))
	if i, anyUp := p.scan(tried, start, now, true); i >= 0 || anyUp {
		return i
	}
	// Panic mode (Envoy's panic threshold): every CAS is marked down. A
	// wrong probe must not take mail down, so the request goes to the CAS
	// servers anyway, health ignored; the ones really down fail it as
	// before. The health loop logs when this starts and ends.
	i, _ := p.scan(tried, start, now, false)
	return i
}

// scan is one pass of pick from start: the first untried backend
// (round robin) or the least loaded one, among the available ones when
// healthOnly is set. anyUp reports whether any backend was available.
func (p *Pool) scan(tried uint64, start int, now int64, healthOnly bool) (best int, anyUp bool) {
	n := len(p.Backends)
	best = -1
	var bestLoad int64
	for k := 0; k < n; k++ {
		i := (start + k) % n
		b := p.Backends[i]
		if healthOnly && !b.available(now) {
			continue
		}
		anyUp = true
		if i < 64 && tried&(1<<uint(i)) != 0 {
			continue
		}
		if p.Mode == RoundRobin {
			return i, true
		}
		if load := b.inflight.Load(); best < 0 || load < bestLoad {
			best, bestLoad = i, load
		}
	}
	return best, anyUp
}

// NotePanic reports whether the pool just entered (1) or left (-1) panic
// mode, every CAS marked down; 0 when nothing changed.
func (p *Pool) NotePanic() int {
	down := len(p.Backends) > 0 && p.HealthyCount() == 0
	if p.panicking.Swap(down) == down {
		return 0
	}
	if down {
		return 1
	}
	return -1
}

// ResetPanic sets panic mode from the backends' health as it is now (a new
// pool starts in the mode its carried-over health says, so that the next
// change is reported once) and reports whether every CAS is marked down.
func (p *Pool) ResetPanic() bool {
	down := len(p.Backends) > 0 && p.HealthyCount() == 0
	p.panicking.Store(down)
	return down
}

// HealthyCount is the number of backends currently in rotation.
func (p *Pool) HealthyCount() int {
	now := time.Now().UnixNano()
	c := 0
	for _, b := range p.Backends {
		if b.available(now) {
			c++
		}
	}
	return c
}

// CloseIdle closes pooled idle connections (after a state was drained).
func (p *Pool) CloseIdle() {
	for _, b := range p.Backends {
		b.hc.CloseIdleConnections()
		b.hcHold.CloseIdleConnections()
	}
}

// Cut closes the connections whose request is still waiting for its answer
// (held long polls), failing those requests; streaming answers go on.
func (p *Pool) Cut() {
	for _, b := range p.Backends {
		b.conns.closeWaiting()
	}
}

// newHostClient is the fasthttp client of one CAS, dialling with d.
func newHostClient(b *Backend, d *dialer) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:  b.Addr,
		Name:  "easgate",
		Dial:  d.dial,
		IsTLS: b.HTTPS,
		// The TLS handshake is done by the dialer (so its failure counts as
		// a dial failure); this config is only consulted for SNI bookkeeping.
		TLSConfig:                 d.tls,
		MaxConns:                  maxUpstreamConns,
		MaxIdleConnDuration:       30 * time.Second, // below IIS's 120 s keep-alive
		MaxIdemponentCallAttempts: 1,                // retries are ours: only when nothing was sent
		ReadBufferSize:            4096,
		WriteBufferSize:           4096,
		StreamResponseBody:        true,
		DisablePathNormalizing:    true, // path and query reach the CAS byte for byte
		NoDefaultUserAgentHeader:  true,
		SecureErrorLogMessage:     true,
	}
}
