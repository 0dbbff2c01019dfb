package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
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

// HealthCheck is how the active health checks probe a CAS
// (upstreams.health_check).
type HealthCheck struct {
	Path           string        // GET this path
	Interval       time.Duration // one probe per backend every Interval
	Timeout        time.Duration // a probe without an answer within Timeout failed
	Expect         []int         // statuses that count as healthy
	HealthyAfter   int           // successes in a row that bring a backend back
	UnhealthyAfter int           // failures in a row that take it out
}

// CheckHealth probes every backend of p each hc.Interval on a goroutine of
// its own, until stop is closed. changed is called (on that goroutine)
// whenever a backend's health changed, with why it failed when it went
// down.
func (p *Pool) CheckHealth(hc HealthCheck, stop <-chan struct{}, changed func(b *Backend, healthy bool, why string)) {
	for _, b := range p.Backends {
		go b.healthLoop(hc, stop, changed)
	}
}

// healthLoop probes one CAS every interval until stop is closed.
func (b *Backend) healthLoop(hc HealthCheck, stop <-chan struct{}, changed func(b *Backend, healthy bool, why string)) {
	t := time.NewTicker(hc.Interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ok, why := b.Probe(hc.Path, hc.Expect, hc.Timeout)
		if b.RecordProbe(ok, hc.HealthyAfter, hc.UnhealthyAfter) {
			changed(b, b.healthy.Load(), why)
		}
	}
}

// Probe sends one GET path; an answer whose status is in expect counts as
// healthy. When it does not, why says what went wrong (status, timeout,
// refused, TLS error).
func (b *Backend) Probe(path string, expect []int, timeout time.Duration) (ok bool, why string) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(string(b.uriPrefix) + path)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.Header.SetHostBytes(b.hostHeader)
	err := b.hc.DoTimeout(req, resp, timeout)
	if err != nil {
		return false, probeFailure(err, timeout)
	}
	if bs := resp.BodyStream(); bs != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(bs, 64<<10))
	}
	_ = resp.CloseBodyStream()
	return expectedStatus(resp.StatusCode(), expect, path)
}
