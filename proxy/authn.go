package proxy

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/certs"
	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/auth"
	"github.com/easgate/easgate/proxy/config"
)

// Authentication: package auth in the request pipeline (issue 5 items 3-7).
//
// Per configuration (state) there is an authn: the auth.mode decision
// (auth.Authenticator), device binding (auth.Binder on the device table),
// the upstream identity rule and the lockout shield, which successive states
// share while auth.lockout stays the same (its counters outlive reloads and,
// through the state store, restarts). For the whole process there is one
// authRuntime: the shield's flush loop and the auth metrics.
//
// The pipeline calls (*Server).authenticate right after parsing, before the
// policy decision, so an unauthenticated request never touches the device
// table. It refuses with 401 (and a Basic challenge where Basic can help)
// or 403; the refusal's auth.Reason becomes the exchange's reason, so it is
// in the access log ("why") and in easgate_rejected_requests_total. When
// the CAS answers, forward calls (*Server).authnRecord so the shield counts
// 401s. Just before forwarding, applyUpstreamIdentity sets the identity
// headers (auth.UpstreamIdentity.Plan); it runs for every forwarded request
// so a phone's copy of the identity header never reaches a CAS.
//
// Kerberos constrained delegation (upstreams.kerberos) is in kerberos.go;
// admit hands certificate requests to it.

// authn is the authentication part of one state.
type authn struct {
	auth     *auth.Authenticator
	binder   *auth.Binder
	up       auth.UpstreamIdentity
	verifier *certs.Verifier // nil: no client certificates on this listener
	// shield is shared by successive states while auth.lockout does not
	// change; a changed auth.lockout gets a new shield that reloads the
	// persisted counters (the old one is flushed first).
	shield  *auth.Shield
	lockCfg config.Lockout
	// byAddr: count lockouts and sprays per client address. Off behind a
	// TLS-terminating load balancer (listen.plain_http), where every
	// request comes from the balancer's address.
	byAddr bool
	krb    *krbAuth // upstreams.kerberos (kerberos.go); nil when off
}

// authRuntime is the process-wide part.
type authRuntime struct {
	store    policy.Store
	accepted *prometheus.CounterVec // method
	byMethod [4]prometheus.Counter  // accepted, resolved per policy.AuthMethod (no allocation per request)
	tlsFails *prometheus.CounterVec // reason
	bindings *prometheus.CounterVec // mode
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	krb      *krbMetrics // kerberos.go
}

// exAuth is the authentication part of an exchange (pooled with it, and
// zeroed with it when the exchange finishes, password copy included).
type exAuth struct {
	decided   bool
	method    policy.AuthMethod
	keepAuthz bool   // forward the phone's Authorization header
	identity  string // value for the identity header ("" none)
	certName  string // the verified certificate's identity, for the access log
	bindNote  bool   // device binding reported a different certificate
	addr      netip.Addr
	// What Shield.Record needs after the CAS answered: the password is
	// copied when short (nearly always), else digested at once.
	record bool
	pwLen  uint8
	pw     [64]byte
	digest auth.Digest
	// Kerberos constrained delegation (kerberos.go): the request goes to
	// the CAS with a ticket in krbUser's name; krbRetried after a 401.
	krb        bool
	krbRetried bool
	krbUser    string
}

func newAuthn(cfg *config.Config, verifier *certs.Verifier, devices auth.DeviceTable) (*authn, error) {
	if verifier != nil && verifier.Mode() == config.ClientCertOff {
		verifier = nil
	}
	a, err := auth.New(cfg.Auth, auth.Options{})
	if err != nil {
		return nil, err
	}
	b, err := auth.NewBinder(cfg.Auth.DeviceBinding, devices)
	if err != nil {
		return nil, err
	}
	up, err := auth.NewUpstreamIdentity(cfg.Upstreams.IdentityHeader)
	if err != nil {
		return nil, err
	}
	return &authn{auth: a, binder: b, up: up, verifier: verifier, byAddr: !cfg.Listen.PlainHTTP, lockCfg: cfg.Auth.Lockout}, nil
}

// stateDevices is the state's device table (enforce.go), looked up when
// used: the authn is built before the state's enforcement on reload.
type stateDevices struct{ st *state }

func (d stateDevices) table() *policy.Devices {
	if e := d.st.enf; e != nil && e.acc != nil {
		return e.acc.Devices
	}
	return nil
}

func (d stateDevices) Get(user, device []byte) (policy.DeviceRecord, bool) {
	if t := d.table(); t != nil {
		return t.Get(user, device)
	}
	return policy.DeviceRecord{}, false
}

func (d stateDevices) Update(user, device []byte, now time.Time, fn func(*policy.DeviceRecord)) policy.DeviceRecord {
	if t := d.table(); t != nil {
		return t.Update(user, device, now, fn)
	}
	// No device table (enforce.go always builds one): nothing can be bound,
	// so the Binder reports a mismatch rather than trusting any certificate.
	return policy.DeviceRecord{}
}

func stateStore(st *state) policy.Store {
	if st.enf == nil || st.enf.acc == nil {
		return nil
	}
	return st.enf.acc.Store
}

// authnPart is authentication as a per-configuration part (parts.go).
type authnPart struct{}

// build makes st's authn: the authenticator, device binding, the upstream
// identity rule and the Kerberos delegator (prev's when its settings and
// keytab did not change). A changed auth.lockout is checked here; its new
// shield is made in attach.
func (authnPart) build(s *Server, st, prev *state) error {
	a, err := newAuthn(st.cfg, st.verifier, stateDevices{st})
	if err != nil {
		return err
	}
	var pa *authn
	if prev != nil {
		pa = prev.authn
	}
	if pa == nil || pa.shield == nil || pa.lockCfg != a.lockCfg {
		if _, err := auth.NewShield(a.lockCfg, auth.ShieldOptions{}); err != nil {
			return err
		}
	}
	if err := a.attachKerberos(st.cfg, pa); err != nil { // kerberos.go
		return err
	}
	st.authn = a
	return nil
}

// attach gives st's authn its shield: prev's while auth.lockout stays the
// same, else a new one that loads the persisted counters (prev's is
// flushed first; failures the old state records while it drains are not
// carried over). At start it creates the process-wide runtime: the auth
// metrics and the shield's flush loop.
func (authnPart) attach(s *Server, st, prev *state) error {
	a := st.authn
	if s.authrt == nil {
		rt := &authRuntime{store: stateStore(st), stop: make(chan struct{}), done: make(chan struct{})}
		s.registerAuthMetrics(rt)
		s.authrt = rt
		defer func() { go rt.flushLoop(s) }()
	}
	var pa *authn
	if prev != nil {
		pa = prev.authn
	}
	if err := s.authrt.attachShield(a, pa, s); err != nil {
		return err
	}
	s.observeHandshakes(st)
	return nil
}

func (authnPart) swapped(*Server, *state) {}
func (authnPart) retire(*state)           {}

// close stops the flush loop after a last flush (at shutdown).
func (authnPart) close(s *Server, _ *state) {
	if rt := s.authrt; rt != nil {
		rt.once.Do(func() { close(rt.stop) })
		<-rt.done
	}
}

// registerAuthMetrics creates and registers the process-wide auth metrics.
func (s *Server) registerAuthMetrics(rt *authRuntime) {
	s.initKerberosMetrics(rt)
	rt.accepted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "easgate_auth_accepted_total",
		Help: "EAS requests authenticated at the gateway, by method (basic, certificate, certificate+basic).",
	}, []string{"method"})
	rt.tlsFails = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "easgate_tls_client_certificate_refusals_total",
		Help: "TLS handshakes refused because of the client certificate, by reason.",
	}, []string{"reason"})
	rt.bindings = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "easgate_device_binding_mismatches_total",
		Help: "Requests whose device first used a different client certificate, by auth.device_binding mode.",
	}, []string{"mode"})
	stat := func(name, help string, f func(auth.ShieldStats) int) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			if sh := s.curShield(); sh != nil {
				return float64(f(sh.Stats()))
			}
			return 0
		})
	}
	for m := range rt.byMethod {
		rt.byMethod[m] = rt.accepted.WithLabelValues(policy.AuthMethod(m).String())
	}
	s.metrics.reg.MustRegister(rt.accepted, rt.tlsFails, rt.bindings,
		stat("easgate_lockout_locked_user_devices", "User+device pairs the lockout shield refuses now.",
			func(x auth.ShieldStats) int { return x.LockedUserDevices }),
		stat("easgate_lockout_locked_user_addresses", "User+client-address pairs the lockout shield refuses now.",
			func(x auth.ShieldStats) int { return x.LockedUserAddrs }),
		stat("easgate_lockout_blocked_addresses", "Client addresses blocked for password spraying now.",
			func(x auth.ShieldStats) int { return x.BlockedAddrs }),
		stat("easgate_lockout_locked_users", "Users the lockout shield refuses now on every device and address (auth.lockout.user_failures).",
			func(x auth.ShieldStats) int { return x.LockedUsers }))
}

// attachShield gives a the previous state's shield when auth.lockout did
// not change, else a new one with the persisted counters loaded.
func (rt *authRuntime) attachShield(a, prev *authn, s *Server) error {
	cfg := a.lockCfg
	if prev != nil && prev.shield != nil && prev.lockCfg == cfg {
		a.shield, a.lockCfg = prev.shield, cfg
		return nil
	}
	if prev != nil && prev.shield != nil {
		if err := prev.shield.Flush(); err != nil {
			s.log.Warn().Err(err).Msg("state store: lockout flush failed before applying the new auth.lockout")
		}
	}
	// With auth.domains the shield gets canonical user@domain names and
	// keeps one budget per account (auth.domains cannot change on reload).
	sh, err := auth.NewShield(cfg, auth.ShieldOptions{Store: rt.store, FullNames: a.auth.Domains().Enabled()})
	if err != nil {
		return err
	}
	if err := sh.Load(); err != nil {
		s.log.Warn().Err(err).Msg("state store: some lockout records were skipped")
	}
	a.shield, a.lockCfg = sh, cfg
	return nil
}

// flushLoop persists the shield's counters about once a second.
func (rt *authRuntime) flushLoop(s *Server) {
	defer close(rt.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-rt.stop:
			if err := s.curShield().Flush(); err != nil {
				s.log.Warn().Err(err).Msg("state store: lockout flush failed")
			}
			return
		case <-t.C:
			if err := s.curShield().Flush(); err != nil {
				s.log.Warn().Err(err).Msg("state store: lockout flush failed; will retry")
			}
		}
	}
}

// curShield is the running state's shield (nil before the first state).
func (s *Server) curShield() *auth.Shield {
	if st := s.cur.Load(); st != nil && st.authn != nil {
		return st.authn.shield
	}
	return nil
}

// peerCertificates returns the client's certificate chain on a TLS
// connection (nil on plain HTTP or without one). It reads the connection
// state without fasthttp's TLSConnectionState, which allocates a copy.
func peerCertificates(ctx *fasthttp.RequestCtx) []*x509.Certificate {
	tc, ok := ctx.Conn().(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return nil
	}
	return tc.ConnectionState().PeerCertificates
}

// authenticate applies auth.mode, the lockout shield and device binding to
// a parsed EAS request. It reports done=true when easgate refused the
// request itself. For an accepted request it fills x.auth and sets x.user
// to the canonical authenticated identity, the one name every later step
// (the decision, the device table, the quarantine, the shield) uses. It
// allocates nothing for a request without a lockout record.
func (s *Server) authenticate(ctx *fasthttp.RequestCtx, x *exchange, r *eas.Request) (done, complete bool) {
	a := x.st.authn
	if a == nil {
		return false, false
	}
	in := auth.Input{AuthScheme: r.AuthScheme, AuthLogin: r.AuthLogin, User: r.User}
	in.Cert, in.CertErr = s.clientCert(ctx, x, a)
	if s.admit(ctx, x, a, in, r.DeviceID, r.Password()) {
		return true, true
	}
	return false, false
}

// clientCert verifies the connection's client certificate (through the
// verifier's cache: no allocation for a certificate seen recently). It
// returns nil, nil without client certificates on this listener.
func (s *Server) clientCert(ctx *fasthttp.RequestCtx, x *exchange, a *authn) (*certs.Identity, error) {
	if a.verifier == nil {
		return nil, nil
	}
	peers := peerCertificates(ctx)
	if len(peers) == 0 {
		return nil, certs.ErrNoCertificate
	}
	id := &x.scratch().cert // not a local: it would escape through auth.Input
	var err error
	if *id, err = a.verifier.VerifyChain(peers); err != nil {
		return nil, err
	}
	return id, nil
}

// identify puts the identity Check accepted into canonical form
// (auth.domains) and records it as x.user. The identity is the
// certificate's when one was verified, else the Basic user; a pass-through
// scheme (Bearer, Negotiate) carries none easgate can read, so the EAS User
// it claims is used, and without one the request is refused: there would
// be nobody to decide for. It reports whether it refused the request.
func (s *Server) identify(ctx *fasthttp.RequestCtx, x *exchange, a *authn, in auth.Input, res auth.Result) bool {
	id := res.Identity
	if res.Method == policy.AuthPassthrough {
		id = in.User
		if len(id) == 0 {
			if x.route == routeAutodiscover {
				x.setUser(nil) // nothing is decided for an Autodiscover request
				return false
			}
			return s.refuse(ctx, x, a, fasthttp.StatusForbidden, auth.ReasonNoIdentity, false)
		}
	}
	var buf [eas.MaxUserLen]byte
	user, err := a.auth.Domains().AppendCanonical(buf[:0], id)
	if err != nil {
		why, status := auth.ReasonBadCredentials, fasthttp.StatusUnauthorized
		if err == eas.ErrUserDomain {
			why = auth.ReasonUnknownDomain
		}
		if res.Method == policy.AuthCertificate || res.Method == policy.AuthBoth {
			why, status = auth.ReasonCertBadIdentity, fasthttp.StatusForbidden
			if err == eas.ErrUserDomain {
				why = auth.ReasonCertUnknownDomain
			}
		}
		x.errText = err.Error()
		return s.refuse(ctx, x, a, status, why, status == fasthttp.StatusUnauthorized)
	}
	x.setUser(user)
	return false
}

// admit runs Check, puts the identity in canonical form, then the lockout
// shield and device binding, and records in x.auth what forwarding and
// Record need. device is the DeviceId ("" for Autodiscover). It reports
// whether it refused the request (answered).
func (s *Server) admit(ctx *fasthttp.RequestCtx, x *exchange, a *authn, in auth.Input, device, password []byte) bool {
	res := a.auth.Check(in)
	if !res.OK {
		return s.refuse(ctx, x, a, res.Status, res.Reason, res.WWWAuthenticate)
	}
	if s.identify(ctx, x, a, in, res) {
		return true
	}
	user := x.field(x.user)
	now := time.Now()
	if a.byAddr {
		x.auth.addr, _ = netip.AddrFromSlice(ctx.RemoteIP())
	}
	shield := a.shield
	if ok, why := shield.Allow(user, device, x.auth.addr, password, now); !ok {
		return s.refuse(ctx, x, a, fasthttp.StatusUnauthorized, why, true)
	}
	fingerprint := ""
	if in.Cert != nil {
		fingerprint = in.Cert.Fingerprint
	}
	if a.binder.Mode() != auth.BindingOff {
		br := a.binder.Check(user, device, fingerprint, now)
		if br.Mismatch {
			s.authrt.bindings.WithLabelValues(a.binder.Mode().String()).Inc()
			x.auth.bindNote = true
		}
		if !br.OK {
			return s.refuse(ctx, x, a, fasthttp.StatusForbidden, br.Reason, false)
		}
	}

	plan := a.up.Plan(in, res)
	x.auth.decided = true
	x.auth.method = res.Method
	x.auth.keepAuthz = plan.KeepAuthorization
	if c := in.Cert; c != nil {
		sc := x.scratch()
		if len(c.Name) <= len(sc.certBuf) {
			sc.certBytes = sc.certBuf[:copy(sc.certBuf[:], c.Name)]
		} else {
			sc.certBytes = []byte(c.Name)
		}
		x.auth.certName = c.Name
		if plan.IdentityValue != nil {
			x.auth.identity = c.Name
		}
	}
	if len(password) > 0 && shield.Enabled() {
		x.auth.record = true
		if len(password) <= len(x.auth.pw) {
			x.auth.pwLen = uint8(copy(x.auth.pw[:], password))
		} else {
			x.auth.digest = shield.Digest(user, password)
		}
	}
	if a.krb != nil && a.krb.applies(res.Method) && s.kerberosAdmit(ctx, x, a) { // kerberos.go
		return true
	}
	if int(res.Method) < len(s.authrt.byMethod) {
		s.authrt.byMethod[res.Method].Inc()
	}
	return false
}

// authenticateAutodiscover applies the same checks to an Autodiscover
// request (a favourite target of password spraying): auth.mode on its Basic
// credentials or certificate, and the lockout shield keyed by the
// canonical identity. There is no EAS User or DeviceId to bind. It reports
// whether easgate answered the request itself.
func (s *Server) authenticateAutodiscover(ctx *fasthttp.RequestCtx, x *exchange) bool {
	refused := s.authAutodiscover(ctx, x)
	x.dropScratch()
	return refused
}

func (s *Server) authAutodiscover(ctx *fasthttp.RequestCtx, x *exchange) bool {
	a := x.st.authn
	if a == nil {
		return false
	}
	var buf [eas.MaxAuthorizationLen]byte
	scheme, login, password, ok := parseBasic(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization), buf[:])
	if !ok {
		return s.refuse(ctx, x, a, fasthttp.StatusUnauthorized, auth.ReasonBadCredentials, true)
	}
	in := auth.Input{AuthScheme: scheme, AuthLogin: login}
	in.Cert, in.CertErr = s.clientCert(ctx, x, a)
	x.setUser(login) // for the access log until identify sets the canonical identity
	return s.admit(ctx, x, a, in, nil, password)
}

// basicEncoding decodes Basic credentials (padding trimmed first). Strict:
// only the canonical encoding is accepted, so one credential has one form.
var basicEncoding = base64.RawStdEncoding.Strict()

// parseBasic splits an Authorization value. For Basic it decodes the
// credentials into buf (RFC 7617; padding optional) and returns the user
// name and password; ok is false for malformed Basic credentials (no
// colon, empty or control-character user name, bad base64). Other schemes
// return only the scheme.
func parseBasic(v, buf []byte) (scheme, login, password []byte, ok bool) {
	sp := 0
	for sp < len(v) && v[sp] != ' ' && v[sp] != '\t' {
		sp++
	}
	scheme = v[:sp]
	if len(scheme) != len("Basic") || !asciiEqualFold(scheme, "Basic") {
		return scheme, nil, nil, true
	}
	cred := trimSpace(v[sp:])
	for len(cred) > 0 && cred[len(cred)-1] == '=' {
		cred = cred[:len(cred)-1]
	}
	if len(cred) == 0 || basicEncoding.DecodedLen(len(cred)) > len(buf) {
		return scheme, nil, nil, false
	}
	for _, c := range cred { // the decoder would skip CR and LF
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return scheme, nil, nil, false
		}
	}
	n, err := basicEncoding.Decode(buf, cred)
	if err != nil {
		return scheme, nil, nil, false
	}
	dec := buf[:n]
	colon := bytes.IndexByte(dec, ':')
	if colon <= 0 {
		return scheme, nil, nil, false
	}
	for _, c := range dec[:colon] {
		if c < 0x20 || c == 0x7f {
			return scheme, nil, nil, false
		}
	}
	return scheme, dec[:colon], dec[colon+1:], true
}

// refuse answers a request easgate will not forward: 401 (with the Basic
// challenge when asked) or 403, reason in the log and the metrics.
func (s *Server) refuse(ctx *fasthttp.RequestCtx, x *exchange, a *authn, status int, why auth.Reason, challenge bool) bool {
	if challenge {
		var buf [128]byte
		ctx.Response.Header.SetBytesV("WWW-Authenticate", a.auth.AppendChallenge(buf[:0], ctx.Host()))
	}
	return x.answer(ctx, status, string(why))
}

// authnRecord tells the shield how the CAS answered an authenticated
// request (forward calls it with the CAS's status) and to what: only a 2xx
// to an ActiveSync command resets the counters (auth.Shield.Record).
func (s *Server) authnRecord(x *exchange, status int) {
	if !x.auth.record {
		return
	}
	shield := x.st.authn.shield
	user, device := x.field(x.user), x.field(x.device)
	route := auth.RouteOther
	switch {
	case x.route == routeAutodiscover:
		route = auth.RouteAutodiscover
	case x.route == routeEAS && x.parsed && x.cmd != eas.CmdOptions:
		route = auth.RouteEAS
	}
	now := time.Now()
	if x.auth.pwLen > 0 {
		shield.Record(user, device, x.auth.addr, x.auth.pw[:x.auth.pwLen], route, status, now)
	} else {
		shield.RecordDigest(user, device, x.auth.addr, x.auth.digest, route, status, now)
	}
	clear(x.auth.pw[:])
	x.auth.pwLen, x.auth.record = 0, false
}

// applyUpstreamIdentity sets the identity headers of a request about to be
// forwarded: the phone's copy of the identity header is always removed; an
// authenticated request keeps its Basic credentials or, certificate-only,
// loses its Authorization header and gets the identity header.
func (x *exchange) applyUpstreamIdentity(h *fasthttp.RequestHeader) {
	a := x.st.authn
	if a == nil {
		return
	}
	name := a.up.Header()
	if name != "" {
		h.Del(name)
	}
	if !x.auth.decided {
		return
	}
	if !x.auth.keepAuthz {
		h.Del(fasthttp.HeaderAuthorization)
	}
	if name != "" && x.auth.identity != "" {
		h.Set(name, x.auth.identity)
	}
}

// authMethodOf is the authentication method for the policy subject: what
// authenticate established, or (without an authn) what the request shows.
func (x *exchange) authMethodOf(r *eas.Request) policy.AuthMethod {
	if x.auth.decided {
		return x.auth.method
	}
	return authMethod(r)
}

// logAuth adds the authentication fields to an access-log line: the method
// ("basic", "certificate", "certificate+basic") and the certificate
// identity when one was verified, and device_binding "mismatch" when
// report mode let a different certificate through. Never a password or an
// Authorization value.
func (x *exchange) logAuth(b []byte) []byte {
	if !x.auth.decided {
		return b
	}
	b = appendStr(b, "auth", x.auth.method.String())
	if x.auth.certName != "" {
		b = appendStr(b, "cert_identity", x.auth.certName)
	}
	if x.auth.bindNote {
		b = appendStr(b, "device_binding", "mismatch")
	}
	return b
}

// certIdentity is the verified certificate identity for policy.Subject
// (nil without a certificate). Only during the inspection.
func (x *exchange) certIdentity() []byte {
	if x.sc == nil {
		return nil
	}
	return x.sc.certBytes
}

// observeHandshakes wraps the state's TLS configuration so that handshakes
// certs refuses because of the client certificate (expired, revoked,
// untrusted, ...) are logged with the client address and counted; they
// never reach the request pipeline.
func (s *Server) observeHandshakes(st *state) {
	if st.tls == nil || st.verifier == nil || st.tls.GetConfigForClient == nil {
		return
	}
	inner := st.tls.GetConfigForClient
	out := st.tls.Clone()
	out.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		c, err := inner(hello)
		if err != nil || c == nil || c.VerifyConnection == nil {
			return c, err
		}
		verify := c.VerifyConnection
		w := c.Clone()
		w.VerifyConnection = func(cs tls.ConnectionState) error {
			err := verify(cs)
			if err != nil {
				why, failed := auth.CertReason(err)
				if !failed {
					why = auth.ReasonCertRequired
				}
				s.authrt.tlsFails.WithLabelValues(string(why)).Inc()
				ev := s.log.Warn().Str("why", string(why)).Err(err)
				if hello.Conn != nil {
					ev = ev.Stringer("client", hello.Conn.RemoteAddr())
				}
				ev.Msg("TLS handshake refused: client certificate")
			}
			return err
		}
		return w, nil
	}
	st.tls = out
}
