package proxy

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

// backend is one CAS: a fasthttp.HostClient sized for held long polls, its
// health, and the connections it has open.
type backend struct {
	name       string // label for logs and metrics
	addr       string // host:port dialled
	https      bool
	uriPrefix  []byte // "https://mail.corp.example.com": scheme + the Host the CAS expects
	hostHeader []byte // the Host header sent to the CAS
	spn        string // its Kerberos SPN (upstreams.kerberos); "" when off
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

// backendOptions are the pool-wide settings a backend is built with.
type backendOptions struct {
	tls        *tls.Config // for https servers; ServerName already set
	serverName string      // upstreams.tls.server_name: the Host header too
	connect    time.Duration
}

// maxUpstreamConns bounds the connections to one CAS. It is far above the
// number of requests easgate holds at once, because every held Ping owns
// one upstream connection for its whole life (a cap of 512 once turned 600
// held Pings into 88 answers of 502).
const maxUpstreamConns = 1 << 20

func newBackend(rawURL, name string, o backendOptions) (*backend, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", rawURL, err)
	}
	b := &backend{name: name}
	switch u.Scheme {
	case "https":
		b.https = true
	case "http":
	default:
		return nil, fmt.Errorf("upstream %q: scheme must be http or https", rawURL)
	}
	host := u.Host
	if host == "" {
		return nil, fmt.Errorf("upstream %q: no host", rawURL)
	}
	b.addr = host
	if u.Port() == "" {
		if b.https {
			b.addr = net.JoinHostPort(u.Hostname(), "443")
		} else {
			b.addr = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	if b.name == "" {
		b.name = host
	}
	hostHeader := host
	if o.serverName != "" {
		hostHeader = o.serverName
	}
	b.hostHeader = []byte(hostHeader)
	b.uriPrefix = []byte(u.Scheme + "://" + hostHeader)

	d := &dialer{timeout: o.connect, set: &b.conns}
	if b.https {
		cfg := o.tls.Clone()
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

// available reports whether the backend may take new requests.
func (b *backend) available(now int64) bool {
	return b.healthy.Load() && b.ejectedUntil.Load() <= now
}

// recordProbe applies one active health-check result and reports whether the
// health changed.
func (b *backend) recordProbe(ok bool, healthyAfter, unhealthyAfter int) (changed bool) {
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

// eject takes the backend out of rotation after a connect failure (passive
// health): with active checks it stays out until they see it healthy again;
// without, for the given cool-down.
func (b *backend) eject(activeChecks bool, coolDown time.Duration) (changed bool) {
	if activeChecks {
		b.mu.Lock()
		b.okRun = 0
		b.mu.Unlock()
		return b.healthy.Swap(false)
	}
	b.ejectedUntil.Store(time.Now().Add(coolDown).UnixNano())
	return true
}

// balance names the selection policy.
type balance uint8

const (
	balanceLeastInflight balance = iota // fewest requests in flight; ties rotate
	balanceRoundRobin
)

// pool is the set of CAS servers of one running state.
type pool struct {
	backends []*backend
	mode     balance
	rr       atomic.Uint64
	// panicking is set while every CAS is marked down (pick ignores
	// health then); notePanic keeps it.
	panicking atomic.Bool
}

// pick chooses an available backend not in tried (a bitmask over indexes).
// It returns -1 when none is left. It does not allocate.
func (p *pool) pick(tried uint64) int {
	n := len(p.backends)
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
func (p *pool) scan(tried uint64, start int, now int64, healthOnly bool) (best int, anyUp bool) {
	n := len(p.backends)
	best = -1
	var bestLoad int64
	for k := 0; k < n; k++ {
		i := (start + k) % n
		b := p.backends[i]
		if healthOnly && !b.available(now) {
			continue
		}
		anyUp = true
		if i < 64 && tried&(1<<uint(i)) != 0 {
			continue
		}
		if p.mode == balanceRoundRobin {
			return i, true
		}
		if load := b.inflight.Load(); best < 0 || load < bestLoad {
			best, bestLoad = i, load
		}
	}
	return best, anyUp
}

// notePanic reports whether the pool just entered (1) or left (-1) panic
// mode, every CAS marked down; 0 when nothing changed.
func (p *pool) notePanic() int {
	down := len(p.backends) > 0 && p.healthyCount() == 0
	if p.panicking.Swap(down) == down {
		return 0
	}
	if down {
		return 1
	}
	return -1
}

// healthyCount is the number of backends currently in rotation.
func (p *pool) healthyCount() int {
	now := time.Now().UnixNano()
	c := 0
	for _, b := range p.backends {
		if b.available(now) {
			c++
		}
	}
	return c
}

// closeIdle closes pooled idle connections (after a state was drained).
func (p *pool) closeIdle() {
	for _, b := range p.backends {
		b.hc.CloseIdleConnections()
		b.hcHold.CloseIdleConnections()
	}
}

// cut closes the connections whose request is still waiting for its answer
// (held long polls), failing those requests; streaming answers go on.
func (p *pool) cut() {
	for _, b := range p.backends {
		b.conns.closeWaiting()
	}
}

// newHostClient is the fasthttp client of one CAS, dialling with d.
func newHostClient(b *backend, d *dialer) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:  b.addr,
		Name:  "easgate",
		Dial:  d.dial,
		IsTLS: b.https,
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
