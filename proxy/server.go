package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/easgate/easgate/proxy/config"
	"github.com/easgate/easgate/proxy/held"
	"github.com/easgate/easgate/proxy/upstream"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// Server is the gateway. Create it with New, run it with Serve or
// ListenAndServe, change its configuration with Reload and stop it with
// Shutdown. All methods are safe for concurrent use.
type Server struct {
	log     zerolog.Logger
	stdout  io.Writer
	cur     atomic.Pointer[state]
	srv     *fasthttp.Server
	admin   *fasthttp.Server
	metrics *metrics
	holds   *held.Memory // the intervals of the last long polls (empty Pings reuse them)
	held    atomic.Int64
	enf     *enforcer    // access policy, quarantine emulation, held registry (enforce.go)
	authrt  *authRuntime // lockout shield flushing and auth metrics (authn.go)

	reloadMu sync.Mutex
	plain    bool   // listen.plain_http at start (fixed for the process)
	address  string // listen.address at start

	closing  atomic.Bool
	retiring sync.WaitGroup // old states still draining

	// conns counts the long polls held on hijacked connections (fasthttp
	// no longer counts those connections) and tracks the hijacked
	// connections handed back to fasthttp (hijack.go).
	conns held.Conns

	// registry lists the held requests: it re-decides the watched ones,
	// frees those whose phone left and answers them all at shutdown
	// (proxy/held; heldwatch.go, quarhold.go, vanish.go).
	registry *held.Registry

	// Slow clients (slowclient.go): unauthenticated connections per
	// address, and the log lines of timeouts and refusals.
	unauth  *addrCounter
	slowLog *slowLogs

	// shared feeds a shared state database's changes in (shared.go).
	shared *sharedRuntime
}

// Process-wide sizing that does not come from the config file.
const (
	// heldAnswerWriteTimeout bounds the time a phone may take to take the
	// answer to a long poll held on a hijacked connection.
	heldAnswerWriteTimeout = 5 * time.Minute
	// holdMemorySize bounds the remembered Ping/Sync intervals.
	holdMemorySize = 200_000
)

// New builds a Server from a validated configuration. log receives
// operational messages (errors, reloads, health changes); the access log
// goes where cfg.Log.AccessLog says. It loads certificates and opens the
// access log, so it fails on unreadable files; it starts the upstream health
// checks but does not listen.
func New(cfg *config.Config, log zerolog.Logger) (*Server, error) {
	return newServer(cfg, log, os.Stdout)
}

func newServer(cfg *config.Config, log zerolog.Logger, stdout io.Writer) (*Server, error) {
	if cfg == nil {
		return nil, errors.New("proxy: nil config")
	}
	if lvl, err := zerolog.ParseLevel(strings.ToLower(cfg.Log.Level)); err == nil && cfg.Log.Level != "" {
		log = log.Level(lvl)
	}
	s := &Server{
		log:      log,
		stdout:   stdout,
		metrics:  newMetrics(),
		holds:    held.NewMemory(holdMemorySize),
		plain:    cfg.Listen.PlainHTTP,
		address:  cfg.Listen.Address,
		unauth:   &addrCounter{},
		registry: held.NewRegistry(),
		slowLog:  &slowLogs{},
	}
	if cfg.Listen.PlainHTTP && cfg.Listen.MaxUnauthenticatedPerAddress > 0 {
		log.Info().Msg("listen.max_unauthenticated_per_address is not applied with listen.plain_http: " +
			"every connection comes from the load balancer; limit connections per client address there")
	}
	st, err := buildState(cfg, stdout)
	if err != nil {
		return nil, err
	}
	if err := s.buildParts(st, nil); err != nil { // parts.go: authentication, enforcement
		s.closeParts(st)
		st.access.close()
		return nil, err
	}
	s.start(st)
	s.cur.Store(st)
	s.initShared(st) // shared.go: state.url
	s.registry.Start()

	maxHeader := int(cfg.Limits.MaxHeaderBytes)
	if maxHeader < 4096 {
		maxHeader = 4096
	}
	s.srv = &fasthttp.Server{
		ConnState:      connState, // hijack.go: idle resumed connections for Shutdown
		Handler:        s.handle,
		HeaderReceived: s.headerReceived,
		ExpectHandler:  s.expectHandler,
		ErrorHandler:   s.errorHandler,
		Logger:         fasthttpLogger{s},
		// A held long poll that cannot be hijacked (HTTP/1.0, streamed
		// body) is a running handler, and every connection served on after
		// a hijacked one counts again: the concurrency limit must sit far
		// above limits.max_held_long_polls.
		Concurrency: max(256*1024, 2*cfg.Limits.MaxHeldLongPolls+65536),
		// The read buffer is also fasthttp's header limit: a 3.9 KB Negotiate
		// or Bearer header must fit (limits.max_header_bytes).
		ReadBufferSize:    maxHeader,
		WriteBufferSize:   4096,
		ReduceMemoryUsage: true,
		// No ReadTimeout nor IdleTimeout: every phone's connection sets its
		// own read deadlines from listen.timeouts (slowclient.go).
		MaxRequestBodySize:           int(st.streamThreshold),
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		// Held long polls hijack their connection (hijack.go) and serve it
		// on with ServeConn: fasthttp must not close it or reuse its reader.
		KeepHijackedConns:                  true,
		SecureErrorLogMessage:              true,
		TCPKeepalive:                       true,
		SleepWhenConcurrencyLimitsExceeded: 100 * time.Millisecond,
	}
	s.admin = &fasthttp.Server{
		Handler:               s.AdminHandler(),
		NoDefaultServerHeader: true,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           time.Minute,
	}
	return s, nil
}

// headerReceived runs after each request header: bodies above
// limits.stream_threshold are streamed, and the phone's connection learns
// that the header is complete (the ReadTimeout is headerDoneMark, see
// slowclient.go): the header timeout ends and the body timeout starts.
//
// A body over limits.max_request_body is refused before it is read: fasthttp
// then reads at most one byte of it before the handler answers 413 and
// closes the connection.
func (s *Server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	st := s.cur.Load()
	limit := int(st.streamThreshold)
	if cl := h.ContentLength(); cl > 0 && int64(cl) > st.maxRequestBody {
		limit = 1
	}
	return fasthttp.RequestConfig{MaxRequestBodySize: limit, ReadTimeout: headerDoneMark}
}

// expectHandler answers "Expect: 100-continue": 413 at once for a body over
// limits.max_request_body, else 100 Continue.
func (s *Server) expectHandler(ctx *fasthttp.RequestCtx) int {
	if cl := ctx.Request.Header.ContentLength(); cl > 0 && int64(cl) > s.cur.Load().maxRequestBody {
		return fasthttp.StatusRequestEntityTooLarge
	}
	return fasthttp.StatusContinue
}

// errorHandler answers requests fasthttp could not read (bad chunking, a
// header over the buffer, a malformed request line).
func (s *Server) errorHandler(ctx *fasthttp.RequestCtx, err error) {
	code := fasthttp.StatusBadRequest
	var small *fasthttp.ErrSmallBuffer
	switch {
	case isTimeout(err):
		// listen.timeouts: logged by the connection (slowclient.go),
		// answered as nginx does.
		ctx.SetStatusCode(fasthttp.StatusRequestTimeout)
		ctx.SetConnectionClose()
		s.metrics.rejected.WithLabelValues("client_timeout").Inc()
		return
	case errors.As(err, &small):
		code = fasthttp.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		code = fasthttp.StatusRequestEntityTooLarge
	}
	ctx.SetStatusCode(code)
	ctx.SetConnectionClose()
	s.metrics.rejected.WithLabelValues("unreadable").Inc()
	s.log.Debug().Err(err).Stringer("client", ctx.RemoteAddr()).Int("status", code).Msg("unreadable request")
}

// fasthttpLogger sends fasthttp's own messages to the operational log.
type fasthttpLogger struct{ s *Server }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.s.log.Debug().Msgf(format, args...)
}

// enter returns the current state with a reference held for the request.
func (s *Server) enter() *state {
	for {
		st := s.cur.Load()
		st.refs.Add(1)
		if s.cur.Load() == st {
			return st
		}
		st.refs.Add(-1) // swapped meanwhile: use the new one
	}
}

func (s *Server) leave(st *state) { st.refs.Add(-1) }

// start launches a state's background work: health checks and certificate
// reloads.
func (s *Server) start(st *state) {
	s.noteState(st) // health.go: limit and panic-mode gauges
	for _, b := range st.pool.Backends {
		s.metrics.healthy.WithLabelValues(b.Name).Set(1)
	}
	if st.activeChecks {
		st.pool.CheckHealth(st.hc, st.stop, func(b *upstream.Backend, healthy bool, why string) {
			s.healthChanged(st, b, healthy, why) // health.go
		})
	}
	if st.store != nil {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-st.stop; cancel() }()
		go st.store.Watch(ctx, 30*time.Second, func(err error) {
			s.log.Error().Err(err).Msg("server certificate reload failed; keeping the old one")
		})
		if st.verifier != nil {
			go st.verifier.Watch(ctx, 30*time.Second, func(err error) {
				s.log.Error().Err(err).Msg("client CA/CRL reload failed; keeping the old ones")
			})
		}
	}
}

// tlsConfig returns the listener's TLS configuration: it consults the
// current state on every handshake, so a reload changes certificates and
// client-certificate settings for new connections.
func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c := s.cur.Load().tls
			if c == nil {
				return nil, errors.New("proxy: TLS is not configured")
			}
			if c.GetConfigForClient != nil {
				return c.GetConfigForClient(hello)
			}
			return c, nil
		},
	}
}

// Serve accepts phones on ln until Shutdown. Connections are TLS (certs.Store)
// unless listen.plain_http is set.
func (s *Server) Serve(ln net.Listener) error {
	if !s.plain {
		ln = tls.NewListener(ln, s.tlsConfig())
	}
	return s.srv.Serve(phoneListener{Listener: ln, s: s})
}

// ListenAndServe listens on listen.address, and on admin.address for the
// admin handler when one is configured, and serves until Shutdown.
func (s *Server) ListenAndServe() error {
	cfg := s.cur.Load().cfg
	ln, err := net.Listen("tcp", cfg.Listen.Address)
	if err != nil {
		return fmt.Errorf("proxy: listen: %w", err)
	}
	errc := make(chan error, 2)
	if cfg.Admin.Address != "" {
		aln, err := net.Listen("tcp", cfg.Admin.Address)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("proxy: admin listen: %w", err)
		}
		go func() { errc <- s.ServeAdmin(aln) }() // console.go: with admin.tls
	}
	go func() { errc <- s.Serve(ln) }()
	return <-errc
}

// Reload swaps in a new configuration. The new state is built completely
// first; when that fails the running configuration stays and the error is
// returned. Requests already running finish on the old state, which is
// drained for at most upstreams.timeouts.drain; long polls still held then
// are answered as if their interval had ended. listen.address and
// listen.plain_http need a restart and are refused here.
func (s *Server) Reload(cfg *config.Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.closing.Load() {
		return errors.New("proxy: server is shutting down")
	}
	if err := s.reload(cfg); err != nil {
		s.metrics.reloads.WithLabelValues("error").Inc()
		return err
	}
	s.metrics.reloads.WithLabelValues("ok").Inc()
	return nil
}

// sameDomains reports whether two auth sections spell users the same way.
func sameDomains(a, b config.Auth) bool {
	return slices.Equal(a.Domains, b.Domains) && maps.Equal(a.NetBIOSDomains, b.NetBIOSDomains)
}

func (s *Server) reload(cfg *config.Config) error {
	if cfg == nil {
		return errors.New("proxy: nil config")
	}
	if cfg.Listen.PlainHTTP != s.plain || cfg.Listen.Address != s.address {
		return errors.New("proxy: listen.address and listen.plain_http cannot change without a restart")
	}
	if old := s.cur.Load(); old != nil && !sameDomains(old.cfg.Auth, cfg.Auth) {
		// Every stored name (device records, overrides, quarantine and
		// lockout state) is keyed by the canonical user; a restart moves
		// the device records to the new names (policy.LoadCanonical), a
		// reload would silently start every phone over.
		return errors.New("proxy: auth.domains and auth.netbios_domains cannot change without a restart")
	}
	st, err := buildState(cfg, s.stdout)
	if err != nil {
		return err
	}
	old := s.cur.Load()
	// Keep upstream health across a reload for servers that stay.
	for _, nb := range st.pool.Backends {
		for _, ob := range old.pool.Backends {
			if ob.Addr == nb.Addr && ob.HTTPS == nb.HTTPS {
				nb.SetHealthy(ob.Healthy())
			}
		}
	}
	if err := s.buildParts(st, old); err != nil { // parts.go: authentication, enforcement
		st.access.close()
		return err
	}
	s.start(st)
	for _, b := range old.pool.Backends {
		s.metrics.healthy.DeleteLabelValues(b.Name)
	}
	for _, b := range st.pool.Backends {
		v := 0.0
		if b.Healthy() {
			v = 1
		}
		s.metrics.healthy.WithLabelValues(b.Name).Set(v)
	}
	s.cur.Store(st)
	s.partsSwapped(st) // held requests re-decide under the new config
	s.retiring.Add(1)
	go func() {
		defer s.retiring.Done()
		s.retire(old, old.drain)
	}()
	s.log.Info().Str("source", cfg.Source).Msg("configuration reloaded")
	return nil
}

// retire drains a swapped-out state: it waits for its requests for up to
// drain, then cuts the requests still waiting at a CAS (held long polls get
// the "interval ended" answer), lets answers that are streaming finish, and
// closes what is left.
func (s *Server) retire(st *state, drain time.Duration) {
	st.close()
	deadline := time.Now().Add(drain)
	for st.refs.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st.refs.Load() > 0 {
		st.draining.Store(true)
		st.pool.Cut()
		for st.refs.Load() > 0 {
			time.Sleep(20 * time.Millisecond)
			st.pool.Cut() // connections opened by late retries
		}
	}
	st.pool.CloseIdle()
	st.access.close()
	retireParts(st) // what the new state did not take over
}

// Shutdown stops accepting connections and answers every held long poll
// at once, as if its heartbeat had ended, whether a CAS holds it or easgate
// does (a quarantined device's): phones ask again, of another node behind
// the load balancer. Other requests in flight finish for up to
// upstreams.timeouts.drain (or until ctx ends); those still waiting for a
// CAS then are cut. It returns when every connection is closed or ctx is
// done. The log says how many requests were held and in flight, and when
// the drain ended.
func (s *Server) Shutdown(ctx context.Context) error {
	s.reloadMu.Lock()
	s.closing.Store(true)
	s.reloadMu.Unlock()
	s.conns.Closing() // hijacked connections are closed after their answer
	st := s.cur.Load()
	start := time.Now()
	inFlight := max(st.refs.Load()-s.held.Load(), 0)
	// Held requests: those registered from now on are stopped as they
	// register.
	held := s.registry.Stop()
	s.log.Info().Int("held", held).Int64("in_flight", inFlight).Stringer("drain", st.drain).
		Msg("shutting down: held long polls answered as if their heartbeat ended; requests in flight drain")
	done := make(chan error, 1)
	go func() {
		sweep := make(chan struct{})
		go func() {
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-sweep:
					return
				case <-t.C:
					s.conns.CloseIdle(idleResumed) // hijack.go
				}
			}
		}()
		err := s.srv.ShutdownWithContext(ctx)
		close(sweep)
		// Held long polls on hijacked connections are not fasthttp's any
		// more: wait for their answers as well.
		for s.conns.Hijacked() > 0 && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		s.conns.CloseAll()
		done <- err
	}()
	_ = s.admin.Shutdown()
	timer := time.NewTimer(st.drain)
	defer timer.Stop()
	var err error
	finished := false
	select {
	case err = <-done:
		finished = true
	case <-timer.C:
	case <-ctx.Done():
	}
	st.close()
	if !finished {
		left := st.refs.Load()
		st.draining.Store(true)
		st.pool.Cut()
		s.log.Warn().Int64("in_flight", left).Stringer("after", time.Since(start).Round(time.Millisecond)).
			Msg("drain time is up: requests still waiting for a CAS are cut")
		select {
		case err = <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	s.retiring.Wait()
	s.registry.Close()
	st.pool.CloseIdle()
	s.log.Info().Stringer("took", time.Since(start).Round(time.Millisecond)).Bool("drained", finished).Msg("drain ended")
	st.access.close()
	s.closeShared()  // shared.go
	s.closeParts(st) // flush the lockout counters, devices, verdicts and quarantine records
	return err
}

// Ready reports whether the gateway can serve: a configuration is loaded
// and at least one CAS is in rotation.
func (s *Server) Ready() bool {
	st := s.cur.Load()
	return st != nil && st.pool.HealthyCount() > 0 && !s.closing.Load()
}

// HeldLongPolls is the number of Ping/Sync requests currently held at a CAS.
func (s *Server) HeldLongPolls() int64 { return s.held.Load() }

// AdminHandler serves the admin listener: /metrics (Prometheus text format),
// /healthz (the process is alive), /readyz (a configuration is loaded and
// at least one CAS is healthy) and the admin API under /api/v1
// (adminapi.go). Every endpoint but /healthz and /readyz needs an admin
// token when any is configured, and a loopback client otherwise.
func (s *Server) AdminHandler() fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if s.serveConsole(ctx) { // console.go: the web console's pages (its own sign-in)
			return
		}
		if s.adminGate(ctx) { // adminapi.go: tokens for every endpoint but /healthz, /readyz; the /api/v1 API
			return
		}
		switch string(ctx.Path()) {
		case "/metrics":
			s.metrics.handler(ctx)
		case "/healthz":
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.SetBodyString("ok\n")
		case "/readyz":
			ctx.SetContentType("text/plain; charset=utf-8")
			if s.Ready() {
				ctx.SetBodyString("ready\n" + s.sharedDetail()) // shared.go
				return
			}
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString("not ready: no healthy upstream\n" + s.sharedDetail())
		default:
			ctx.SetStatusCode(fasthttp.StatusNotFound)
		}
	}
}
