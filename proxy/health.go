package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// expectedStatus reports whether a probe's status is one of
// health_check.expect_status, and if not, why in words for the log.
func expectedStatus(code int, expect []int, path string) (bool, string) {
	if slices.Contains(expect, code) {
		return true, ""
	}
	why := fmt.Sprintf("status %d from %s, expected %v", code, path, expect)
	if code == fasthttp.StatusUnauthorized || code == fasthttp.StatusForbidden {
		why += " (the probe needs authentication: add it to upstreams.health_check.expect_status)"
	}
	return false, why
}

// probeFailure says in a few words why a probe got no answer: timeout,
// refused, TLS error, or the error itself.
func probeFailure(err error, timeout time.Duration) string {
	var (
		certErr  *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		invalid  x509.CertificateInvalidError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		netErr   net.Error
	)
	switch {
	case errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		(errors.As(err, &netErr) && netErr.Timeout()):
		return fmt.Sprintf("timeout: no answer within %s (upstreams.health_check.timeout)", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused: nothing listens on the CAS address"
	case errors.As(err, &certErr), errors.As(err, &unknown), errors.As(err, &hostErr), errors.As(err, &invalid),
		errors.As(err, &recErr), errors.As(err, &alertErr):
		return "TLS error: " + err.Error()
	}
	return "error: " + err.Error()
}

// notePanic logs when every CAS of st has just been marked down (panic
// mode: requests go to all of them anyway, see pool.pick) and when one is
// back. Called after any health change.
func (s *Server) notePanic(st *state) {
	switch st.pool.notePanic() {
	case 1:
		s.metrics.panicMode.Set(1)
		s.log.Error().Int("upstreams", len(st.pool.backends)).Bool("panic_mode", true).
			Msg("every CAS is marked down: panic mode, requests go to all of them anyway (a wrong health probe must not stop mail); check upstreams.health_check")
	case -1:
		s.metrics.panicMode.Set(0)
		s.log.Warn().Int("healthy", st.pool.healthyCount()).Bool("panic_mode", false).
			Msg("a CAS is healthy again: panic mode ended, only healthy CAS servers get requests")
	}
}

// noteState sets the gauges that follow the running configuration: the
// held-request limit (for alerts on held polls near it) and panic mode.
func (s *Server) noteState(st *state) {
	s.metrics.heldLimit.Set(float64(st.maxHeld))
	// A new state starts in the panic mode its health says (health is
	// carried over a reload), so the next change is logged once.
	down := len(st.pool.backends) > 0 && st.pool.healthyCount() == 0
	st.pool.panicking.Store(down)
	if down {
		s.metrics.panicMode.Set(1)
	} else {
		s.metrics.panicMode.Set(0)
	}
}
