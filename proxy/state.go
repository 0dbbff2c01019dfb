package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/easgate/easgate/certs"
	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/proxy/config"
	"github.com/easgate/easgate/proxy/upstream"
)

// state is everything a request needs from one configuration: limits,
// timeouts, the upstream pool and the TLS set-up. It never changes after it
// is built; Reload builds a new one and swaps the pointer. Requests keep the
// state they started with (refs) until they finish, so a reload never
// changes the rules under a running request.
type state struct {
	cfg  *config.Config
	pool *upstream.Pool

	requestTimeout  time.Duration
	longPollMax     time.Duration
	longPollMargin  time.Duration
	drain           time.Duration
	maxRequestBody  int64
	maxPolicyBody   int64
	streamThreshold int64
	maxHeld         int64
	client          clientLimits // listen.timeouts, listen.max_unauthenticated_per_address (slowclient.go)
	activeChecks    bool
	hc              upstream.HealthCheck // upstreams.health_check

	// trusted: listen.trusted_proxies, whose X-Forwarded-* and Forwarded
	// headers are kept.
	trusted []netip.Prefix

	access   *accessLog
	enf      *enforcement // the access policy of this config (enforce.go)
	authn    *authn       // authentication of this config (authn.go)
	tls      *tls.Config  // nil with listen.plain_http
	store    *certs.Store
	verifier *certs.Verifier
	ident    *eas.Rules // client identification: embedded rules + identify.rules_file

	refs     atomic.Int64  // requests running on this state
	draining atomic.Bool   // swapped out; held requests may be cut
	stop     chan struct{} // closes health checks and certificate watches
	stopOnce sync.Once
}

// buildState turns a validated config into a running state. Nothing is
// started: start launches the health checks.
func buildState(cfg *config.Config, stdout io.Writer) (*state, error) {
	st := &state{
		cfg:             cfg,
		requestTimeout:  cfg.Upstreams.Timeouts.Request.D(),
		longPollMax:     cfg.Upstreams.Timeouts.LongPollMax.D(),
		longPollMargin:  cfg.Upstreams.Timeouts.LongPollMargin.D(),
		drain:           cfg.Upstreams.Timeouts.Drain.D(),
		maxRequestBody:  int64(cfg.Limits.MaxRequestBody),
		maxPolicyBody:   int64(cfg.Limits.MaxPolicyBody),
		streamThreshold: int64(cfg.Limits.StreamThreshold),
		maxHeld:         int64(cfg.Limits.MaxHeldLongPolls),
		client:          newClientLimits(cfg),
		hc: upstream.HealthCheck{
			Path:           cfg.Upstreams.HealthCheck.Path,
			Interval:       cfg.Upstreams.HealthCheck.Interval.D(),
			Timeout:        cfg.Upstreams.HealthCheck.Timeout.D(),
			Expect:         cfg.Upstreams.HealthCheck.ExpectStatus,
			HealthyAfter:   max(cfg.Upstreams.HealthCheck.HealthyAfter, 1),
			UnhealthyAfter: max(cfg.Upstreams.HealthCheck.UnhealthyAfter, 1),
		},
		stop: make(chan struct{}),
	}
	for _, tp := range cfg.Listen.TrustedProxies {
		p, err := config.ParseTrustedProxy(tp)
		if err != nil {
			return nil, fmt.Errorf("listen.trusted_proxies: %q: %w", tp, err)
		}
		st.trusted = append(st.trusted, p)
	}
	ident, ierrs := cfg.IdentifyRules()
	if ierrs != nil {
		return nil, fmt.Errorf("proxy: %w", ierrs.Err())
	}
	st.ident = ident
	st.activeChecks = st.hc.Path != "" && st.hc.Interval > 0
	if st.hc.Timeout <= 0 {
		st.hc.Timeout = 5 * time.Second
	}
	if len(st.hc.Expect) == 0 {
		st.hc.Expect = []int{200}
	}
	if st.requestTimeout <= 0 {
		st.requestTimeout = 120 * time.Second
	}
	if st.longPollMax < st.requestTimeout {
		st.longPollMax = st.requestTimeout
	}
	if st.streamThreshold <= 0 {
		st.streamThreshold = 64 << 10
	}
	if st.maxPolicyBody <= 0 {
		st.maxPolicyBody = 1 << 20
	}
	if len(cfg.Upstreams.Servers) == 0 {
		return nil, fmt.Errorf("proxy: no upstream server configured")
	}
	if len(cfg.Upstreams.Servers) > 64 {
		return nil, fmt.Errorf("proxy: at most 64 upstream servers are supported, got %d", len(cfg.Upstreams.Servers))
	}

	ut := cfg.Upstreams.TLS
	opts := upstream.Options{
		ServerName: ut.ServerName,
		Connect:    cfg.Upstreams.Timeouts.Connect.D(),
	}
	if opts.Connect <= 0 {
		opts.Connect = 5 * time.Second
	}
	for _, s := range cfg.Upstreams.Servers {
		if len(s.URL) >= 8 && s.URL[:8] == "https://" && opts.TLS == nil {
			tc, err := certs.UpstreamTLS(ut.TrustedCAs, ut.ServerName, ut.ClientCertificate, ut.ClientKey, ut.InsecureSkipVerify)
			if err != nil {
				return nil, fmt.Errorf("proxy: upstream TLS: %w", err)
			}
			opts.TLS = tc
		}
	}
	st.pool = &upstream.Pool{Mode: upstream.LeastInflight}
	for _, s := range cfg.Upstreams.Servers {
		b, err := upstream.NewBackend(s.URL, s.Name, opts)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		b.SPN = cfg.Upstreams.Kerberos.SPNOf(s) // kerberos.go
		st.pool.Backends = append(st.pool.Backends, b)
	}

	if !cfg.Listen.PlainHTTP {
		lt := cfg.Listen.TLS
		sc := certs.ServerConfig{
			Certificate:     lt.Certificate,
			Key:             lt.Key,
			PFX:             lt.PFX,
			PFXPasswordFile: lt.PFXPasswordFile,
			MinVersion:      lt.MinVersion,
		}
		for _, e := range lt.ExtraCertificates {
			sc.Extra = append(sc.Extra, certs.CertFiles{Certificate: e.Certificate, Key: e.Key, PFX: e.PFX, PFXPasswordFile: e.PFXPasswordFile})
		}
		store, err := certs.NewStore(sc)
		if err != nil {
			return nil, fmt.Errorf("proxy: server certificate: %w", err)
		}
		st.store = store
		cc := lt.ClientCertificates
		if cc.Mode != "" && cc.Mode != config.ClientCertOff {
			v, err := certs.NewVerifier(certs.ClientConfig{
				Mode:         cc.Mode,
				TrustedCAs:   cc.TrustedCAs,
				CRLFiles:     cc.Revocation.CRLFiles,
				OCSP:         cc.Revocation.OCSP,
				OCSPTimeout:  cc.Revocation.OCSPTimeout.D(),
				IdentityFrom: cfg.Auth.CertificateIdentity,
			})
			if err != nil {
				return nil, fmt.Errorf("proxy: client certificates: %w", err)
			}
			st.verifier = v
		}
		st.tls = store.TLSConfig(st.verifier)
	}
	al, err := openAccessLog(cfg.Log, stdout)
	if err != nil {
		return nil, err
	}
	st.access = al
	return st, nil
}

// close stops the state's background work. It is safe to call twice.
func (st *state) close() {
	st.stopOnce.Do(func() { close(st.stop) })
}
