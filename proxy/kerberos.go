package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/auth/kerberos"
	"github.com/easgate/easgate/proxy/config"
	"github.com/easgate/easgate/proxy/upstream"
)

// Kerberos constrained delegation in the pipeline (issue 17).
//
// With upstreams.kerberos set, a request authenticated by its client
// certificate alone (or, with use: certificate, also one that sent Basic
// credentials) reaches the CAS with "Authorization: Negotiate" in its
// user's name, from a ticket package kerberos gets by S4U2Self and
// S4U2Proxy:
//
//   - admit (authn.go) calls kerberosAdmit: the canonical identity is
//     mapped to a principal (the user part with the realm). A name that
//     cannot be one is refused with 403 before any KDC is asked.
//   - forward (pipeline.go) calls kerberosPrepare first: the ticket to the
//     primary SPN is fetched (or found in the cache) before anything is
//     sent or a long poll is held. A KDC that cannot be reached gives 503
//     with Retry-After; a refusal (delegation, unknown user, clock skew)
//     gives 401, as Exchange answers an authentication failure, and one
//     log line names the cause and the principal.
//   - nextAttempt (pipeline.go) calls kerberosHeader for the CAS it picked:
//     a fresh SPNEGO token for that CAS's SPN.
//   - doUpstream (enforce.go) calls kerberosRetry on a 401 with a
//     Negotiate challenge: the cached ticket is dropped, a new one fetched
//     and the request sent once more, only when its body can be replayed
//     (read whole, and not SendMail, SmartReply or SmartForward). A held
//     long poll's copy is released once written, so it is never retried.
//
// Requests without Kerberos test one bool on this path. Nothing here logs
// a ticket, a key or a token: errors carry causes and principal names.

// krbAuth is the Kerberos part of one state's authn. Successive states
// share the Delegator (its ticket cache) while upstreams.kerberos and the
// keytab file do not change.
type krbAuth struct {
	d       *kerberos.Delegator
	cfg     config.Kerberos
	stamp   string // keytab size and modification time
	both    bool   // use: certificate (also certificate+Basic phones)
	primary string // the SPN fetched before forwarding
	timeout time.Duration
}

// attachKerberos builds a's Kerberos part from cfg, reusing prev's
// Delegator when nothing it depends on changed.
func (a *authn) attachKerberos(cfg *config.Config, prev *authn) error {
	k := cfg.Upstreams.Kerberos
	if !k.Enabled() {
		return nil
	}
	stamp, err := keytabStamp(k.Keytab)
	if err != nil {
		return err
	}
	ka := &krbAuth{cfg: k, stamp: stamp, both: k.Use == config.KerberosCertificate, timeout: k.Timeout.D()}
	if ka.timeout <= 0 {
		ka.timeout = 5 * time.Second
	}
	ka.primary = k.SPN
	if ka.primary == "" && len(cfg.Upstreams.Servers) > 0 {
		ka.primary = k.SPNOf(cfg.Upstreams.Servers[0])
	}
	if prev != nil && prev.krb != nil && prev.krb.stamp == stamp && reflect.DeepEqual(prev.krb.cfg, k) {
		ka.d = prev.krb.d
		a.krb = ka
		return nil
	}
	kt, err := kerberos.LoadKeytab(k.Keytab)
	if err != nil {
		return err
	}
	d, err := kerberos.New(kerberos.Options{
		Realm:            k.Realm,
		KDCs:             k.KDCAddrs(),
		ServicePrincipal: k.ServicePrincipal,
		Keytab:           kt,
		Lifetime:         k.TicketLifetime.D(),
		RenewBefore:      k.RenewBefore.D(),
		Timeout:          ka.timeout,
	})
	if err != nil {
		return err
	}
	ka.d = d
	a.krb = ka
	return nil
}

func keytabStamp(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("upstreams.kerberos.keytab: %w", err)
	}
	return fmt.Sprintf("%d/%d", st.Size(), st.ModTime().UnixNano()), nil
}

// CheckKerberosKeytab is check-config's look into upstreams.kerberos.keytab:
// it can be read, it is a keytab, and it holds an AES or RC4 key of the
// service principal. No secret reaches the messages.
func CheckKerberosKeytab(cfg *config.Config) config.Errors {
	k := cfg.Upstreams.Kerberos
	if !k.Enabled() || k.Keytab == "" {
		return nil
	}
	const path = "upstreams.kerberos.keytab"
	if _, err := os.Stat(k.Keytab); err != nil {
		return nil // CheckFiles reports a missing or unreadable file
	}
	kt, err := kerberos.LoadKeytab(k.Keytab)
	if err != nil {
		return config.Errors{cfg.ErrorAt(path, err.Error(), "export it with samba-tool domain exportkeytab or ktpass")}
	}
	if err := kerberos.CheckKeytab(kt, k.ServicePrincipal, k.Realm); err != nil {
		return config.Errors{cfg.ErrorAt(path, err.Error(), "export the keys of upstreams.kerberos.service_principal with AES enctypes")}
	}
	return nil
}

// applies reports whether requests authenticated by method get a ticket.
func (k *krbAuth) applies(method policy.AuthMethod) bool {
	return method == policy.AuthCertificate || method == policy.AuthBoth && k.both
}

// kerberosAdmit maps the accepted identity to the user's principal and
// marks the request for Kerberos: the phone's Authorization header and the
// identity header are not forwarded, and the lockout shield does not count
// the answer against a password the CAS never saw. It reports whether it
// refused the request.
func (s *Server) kerberosAdmit(ctx *fasthttp.RequestCtx, x *exchange, a *authn) bool {
	user, err := kerberos.UserPrincipal(x.field(x.user))
	if err != nil {
		x.errText = err.Error()
		s.log.Warn().Str("cause", string(kerberos.CauseOf(err))).Bytes("user", x.field(x.user)).
			Msg("kerberos: the identity cannot be a Kerberos principal; refused before any KDC exchange")
		s.authrt.krbFailure(kerberos.CauseOf(err))
		return s.refuse(ctx, x, a, fasthttp.StatusForbidden, "kerberos_bad_user_name", false)
	}
	x.auth.krb, x.auth.krbUser = true, user
	x.auth.keepAuthz, x.auth.identity = false, ""
	clear(x.auth.pw[:])
	x.auth.pwLen, x.auth.record = 0, false
	return false
}

// kerberosPrepare gets the ticket to the primary SPN before the request is
// forwarded. It reports whether it answered the request itself.
func (s *Server) kerberosPrepare(ctx *fasthttp.RequestCtx, x *exchange) bool {
	k := x.st.authn.krb
	c, cancel := context.WithTimeout(context.Background(), k.timeout)
	defer cancel()
	if _, err := k.d.Authorization(c, x.auth.krbUser, k.primary); err != nil {
		return s.kerberosFailed(ctx, x, k.primary, err)
	}
	return false
}

// kerberosFailed logs why no ticket could be had and answers: 503 with
// Retry-After when no KDC answered, else 401.
func (s *Server) kerberosFailed(ctx *fasthttp.RequestCtx, x *exchange, spn string, err error) bool {
	var e *kerberos.Error
	if !errors.As(err, &e) {
		e = &kerberos.Error{Cause: kerberos.CauseKDCError, Err: err}
	}
	x.errText = e.Error()
	s.authrt.krbFailure(e.Cause)
	ev := s.log.Warn()
	if e.Cause == kerberos.CauseKDCUnreachable {
		ev = s.log.Error()
	}
	ev.Str("cause", string(e.Cause)).Str("principal", e.Principal).Str("spn", spn).Bytes("device", x.field(x.device)).
		Err(err).Msg("kerberos: no ticket for the CAS")
	reason := "kerberos_" + string(e.Cause)
	if e.Cause == kerberos.CauseKDCUnreachable {
		return x.answer(ctx, fasthttp.StatusServiceUnavailable, reason) // with Retry-After
	}
	return x.answer(ctx, fasthttp.StatusUnauthorized, reason)
}

// kerberosHeader sets the Negotiate header for the CAS b on req. The
// ticket is normally cached by kerberosPrepare; a server with its own SPN
// may need a KDC exchange here. Without a ticket the header is removed
// and the CAS answers the request as unauthenticated (401): nothing else
// can be sent in the user's name.
//
//go:noinline
func (s *Server) kerberosHeader(x *exchange, req *fasthttp.Request, b *upstream.Backend) {
	k := x.st.authn.krb
	c, cancel := context.WithTimeout(context.Background(), k.timeout)
	defer cancel()
	h, err := k.d.Authorization(c, x.auth.krbUser, b.SPN)
	if err != nil {
		var e *kerberos.Error
		cause := kerberos.CauseKDCError
		if errors.As(err, &e) {
			cause = e.Cause
		}
		s.authrt.krbFailure(cause)
		s.log.Warn().Str("cause", string(cause)).Str("spn", b.SPN).Str("upstream", b.Name).Err(err).
			Msg("kerberos: no ticket for this CAS; the request goes without credentials")
		req.Header.Del(fasthttp.HeaderAuthorization)
		return
	}
	req.Header.Set(fasthttp.HeaderAuthorization, h)
}

// kerberosRetry handles a CAS's 401 to a Kerberos request, read into out
// (the phone's response; body, when not nil, is its body still to stream).
// When the CAS asks for Negotiate and the request can be replayed, the
// cached ticket is dropped, a new one fetched and the request sent once
// more to the same CAS; otherwise the 401 is returned as it is.
func (s *Server) kerberosRetry(x *exchange, b *upstream.Backend, req *fasthttp.Request, out *fasthttp.Response, body io.ReadCloser, deadline time.Time) (*fasthttp.Response, error) {
	if x.auth.krbRetried || !replayable(x, req) || !negotiateChallenge(out) {
		x.upBody = body
		return out, nil
	}
	x.auth.krbRetried = true
	k := x.st.authn.krb
	k.d.Invalidate(x.auth.krbUser, b.SPN)
	c, cancel := context.WithDeadline(context.Background(), upstream.Earlier(deadline, k.timeout))
	defer cancel()
	h, err := k.d.Authorization(c, x.auth.krbUser, b.SPN)
	if err != nil {
		s.log.Warn().Str("spn", b.SPN).Str("upstream", b.Name).Err(err).
			Msg("kerberos: the CAS refused the ticket and no new one could be had")
		x.upBody = body
		return out, nil
	}
	s.log.Info().Str("spn", b.SPN).Str("upstream", b.Name).Str("principal", x.auth.krbUser+"@"+k.cfg.Realm).
		Msg("kerberos: the CAS refused the ticket (401 Negotiate); retrying once with a new one")
	if body != nil {
		_ = body.Close()
	}
	out.Reset()
	req.Header.Set(fasthttp.HeaderAuthorization, h)
	if body, err = b.Do(req, out, deadline); err != nil {
		out.Reset()
		return nil, err
	}
	x.upBody = body
	return out, nil
}

// replayable: the body was read whole (not streamed) and the command does
// not send mail. A 401 means the CAS did not act on the request, but a
// message is never risked twice.
func replayable(x *exchange, req *fasthttp.Request) bool {
	if req.IsBodyStream() {
		return false
	}
	switch x.cmd {
	case eas.CmdSendMail, eas.CmdSmartReply, eas.CmdSmartForward:
		return false
	}
	return true
}

// negotiateChallenge reports whether the CAS's 401 offers Negotiate.
func negotiateChallenge(resp *fasthttp.Response) bool {
	for k, v := range resp.Header.All() {
		if asciiEqualFold(k, "WWW-Authenticate") && len(v) >= 9 && asciiEqualFold(v[:9], "Negotiate") {
			return true
		}
	}
	return false
}

// krbMetrics are the process-wide Kerberos counters.
type krbMetrics struct {
	failures *prometheus.CounterVec // cause
}

// initKerberosMetrics registers the Kerberos metrics: failures by cause,
// and the running Delegator's KDC exchanges and cache hits.
func (s *Server) initKerberosMetrics(rt *authRuntime) {
	rt.krb = &krbMetrics{failures: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "easgate_kerberos_failures_total",
		Help: "Kerberos tickets for the CAS that could not be had, by cause.",
	}, []string{"cause"})}
	stat := func(name, help string, f func(kerberos.Stats) float64) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			if st := s.cur.Load(); st != nil && st.authn != nil && st.authn.krb != nil {
				return f(st.authn.krb.d.Stats())
			}
			return 0
		})
	}
	s.metrics.reg.MustRegister(rt.krb.failures,
		stat("easgate_kerberos_s4u_exchanges", "S4U2Self+S4U2Proxy exchanges with the KDC since the Kerberos settings were loaded.",
			func(x kerberos.Stats) float64 { return float64(x.S4UExchanges) }),
		stat("easgate_kerberos_tgt_exchanges", "AS exchanges for the service account's TGT since the Kerberos settings were loaded.",
			func(x kerberos.Stats) float64 { return float64(x.ASExchanges) }),
		stat("easgate_kerberos_ticket_cache_hits", "Requests served from a cached service ticket since the Kerberos settings were loaded.",
			func(x kerberos.Stats) float64 { return float64(x.CacheHits) }),
		stat("easgate_kerberos_cached_tickets", "Service tickets cached now (users x SPNs).",
			func(x kerberos.Stats) float64 { return float64(x.CachedTickets) }))
}

func (rt *authRuntime) krbFailure(c kerberos.Cause) {
	if rt != nil && rt.krb != nil {
		rt.krb.failures.WithLabelValues(string(c)).Inc()
	}
}
