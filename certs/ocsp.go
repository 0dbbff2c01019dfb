package certs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

type ocspStatus uint8

const (
	ocspStatusUnavailable ocspStatus = iota // no usable answer (network, HTTP, parse, signature, stale)
	ocspStatusGood
	ocspStatusRevoked
	ocspStatusUnknown // the responder does not know the certificate
)

type ocspResult struct {
	status    ocspStatus
	revokedAt time.Time
	until     time.Time // cache expiry
	msg       string    // why, when not good/revoked
}

// ocspChecker asks OCSP responders and caches their answers per leaf until
// NextUpdate (bounded by maxOCSPTTL); failures are cached for ocspFailTTL so
// a dead responder is not hammered. One request per leaf is in flight.
type ocspChecker struct {
	client  *http.Client
	timeout time.Duration

	mu       sync.Mutex
	cache    map[[32]byte]ocspResult
	inflight map[[32]byte]*ocspCall
}

type ocspCall struct {
	done chan struct{}
	res  ocspResult
}

func newOCSPChecker(c *http.Client, timeout time.Duration) *ocspChecker {
	return &ocspChecker{client: c, timeout: timeout, cache: map[[32]byte]ocspResult{}, inflight: map[[32]byte]*ocspCall{}}
}

func (o *ocspChecker) check(leaf, issuer *x509.Certificate, url string, now time.Time) ocspResult {
	key := sha256.Sum256(leaf.Raw)
	o.mu.Lock()
	if r, ok := o.cache[key]; ok && now.Before(r.until) {
		o.mu.Unlock()
		return r
	}
	if call, ok := o.inflight[key]; ok {
		o.mu.Unlock()
		<-call.done
		return call.res
	}
	call := &ocspCall{done: make(chan struct{})}
	o.inflight[key] = call
	o.mu.Unlock()

	call.res = o.fetch(leaf, issuer, url, now)

	o.mu.Lock()
	delete(o.inflight, key)
	if len(o.cache) >= ocspCacheMax {
		evict(o.cache, func(r ocspResult) time.Time { return r.until }, now)
	}
	o.cache[key] = call.res
	o.mu.Unlock()
	close(call.done)
	return call.res
}

func (o *ocspChecker) fetch(leaf, issuer *x509.Certificate, url string, now time.Time) ocspResult {
	fail := func(format string, a ...any) ocspResult {
		return ocspResult{status: ocspStatusUnavailable, until: now.Add(ocspFailTTL), msg: fmt.Sprintf(format, a...)}
	}
	reqDER, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return fail("building request: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(reqDER))
	if err != nil {
		return fail("bad responder URL: %v", err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	resp, err := o.client.Do(req)
	if err != nil {
		return fail("%v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail("HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOCSPBody+1))
	if err != nil {
		return fail("reading response: %v", err)
	}
	if len(body) > maxOCSPBody {
		return fail("response larger than %d bytes", maxOCSPBody)
	}
	r, err := ocsp.ParseResponseForCert(body, leaf, issuer)
	if err != nil {
		return fail("invalid response: %v", err)
	}
	if r.SerialNumber == nil || r.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		return fail("response is for another certificate")
	}
	if r.ThisUpdate.After(now.Add(clockSkew)) {
		return fail("response ThisUpdate %s is in the future", r.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if !r.NextUpdate.IsZero() && r.NextUpdate.Before(now) {
		return fail("response is stale (NextUpdate %s)", r.NextUpdate.UTC().Format(time.RFC3339))
	}
	until := now.Add(defaultOCSPTTL)
	if !r.NextUpdate.IsZero() {
		until = r.NextUpdate
	}
	if until.After(now.Add(maxOCSPTTL)) {
		until = now.Add(maxOCSPTTL)
	}
	switch r.Status {
	case ocsp.Good:
		return ocspResult{status: ocspStatusGood, until: until}
	case ocsp.Revoked:
		return ocspResult{status: ocspStatusRevoked, revokedAt: r.RevokedAt, until: now.Add(maxOCSPTTL)}
	default:
		return ocspResult{status: ocspStatusUnknown, until: now.Add(ocspFailTTL), msg: "responder answered \"unknown\""}
	}
}
