package sources

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/easgate/easgate/policy"
)

// HTTPConfig configures the webhook source.
type HTTPConfig struct {
	// URL receives one POST per device lookup.
	URL string
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// TLS is used for https URLs (custom CAs, a client certificate for mTLS).
	TLS *tls.Config
	// Timeout bounds one attempt (default 5s).
	Timeout time.Duration
	// Retries is how many times a failed attempt (network error, 5xx, 429)
	// is repeated, with exponential backoff starting at Backoff (default
	// 100ms). The cache's fetch deadline still bounds the whole lookup.
	Retries int
	Backoff time.Duration
	// Client overrides the HTTP client (tests).
	Client *http.Client
}

// HTTP asks a JSON webhook for each device's compliance. The request body is
//
//	{"user":"...","device_id":"...","device_type":"...","model":"...","os":"...","user_agent":"..."}
//
// and the answer is {"state":"compliant|noncompliant|unknown|grace","ttl":600}
// where ttl (seconds, optional) caps how long easgate may cache the answer.
// 404 means the device is unknown (a valid answer); 429 and 5xx are retried,
// honouring Retry-After when it is shorter than the remaining deadline.
type HTTP struct {
	cfg    HTTPConfig
	client *http.Client
}

// NewHTTP validates cfg and returns the source.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return nil, fmt.Errorf("http compliance source: url %q must start with http:// or https://", cfg.URL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 100 * time.Millisecond
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	c := cfg.Client
	if c == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = cfg.TLS
		tr.Proxy = nil
		c = &http.Client{Transport: tr}
	}
	return &HTTP{cfg: cfg, client: c}, nil
}

// Name implements policy.Source.
func (h *HTTP) Name() string { return "http" }

type httpQuery struct {
	User       string `json:"user"`
	DeviceID   string `json:"device_id"`
	DeviceType string `json:"device_type,omitempty"`
	Model      string `json:"model,omitempty"`
	OS         string `json:"os,omitempty"`
	UserAgent  string `json:"user_agent,omitempty"`
}

type httpAnswer struct {
	State string `json:"state"`
	TTL   *int   `json:"ttl"`
}

// retryable marks errors worth another attempt.
type retryable struct {
	err   error
	after time.Duration
}

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

// Lookup implements policy.Source.
func (h *HTTP) Lookup(ctx context.Context, q policy.Query) (policy.Verdict, error) {
	body, _ := json.Marshal(httpQuery{User: q.User, DeviceID: q.DeviceID, DeviceType: q.DeviceType, Model: q.Model, OS: q.OS, UserAgent: q.UserAgent})
	backoff := h.cfg.Backoff
	var lastErr error
	for attempt := 0; attempt <= h.cfg.Retries; attempt++ {
		if attempt > 0 {
			wait := backoff
			var r *retryable
			if errors.As(lastErr, &r) && r.after > 0 {
				wait = r.after
			}
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
				break
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return policy.Verdict{}, fmt.Errorf("%w: %v (last error: %v)", policy.ErrUnavailable, ctx.Err(), lastErr)
			case <-t.C:
			}
			backoff *= 2
		}
		v, err := h.once(ctx, body)
		if err == nil {
			return v, nil
		}
		lastErr = err
		var r *retryable
		if !errors.As(err, &r) {
			break
		}
	}
	return policy.Verdict{}, fmt.Errorf("%w: %v", policy.ErrUnavailable, lastErr)
}

func (h *HTTP) once(ctx context.Context, body []byte) (policy.Verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return policy.Verdict{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if h.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.cfg.Token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		// The URL is ours; the error text from net/http never contains the token.
		return policy.Verdict{}, &retryable{err: fmt.Errorf("webhook: %v", err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return policy.Verdict{}, &retryable{err: fmt.Errorf("webhook: reading answer: %v", err)}
	}
	now := time.Now()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return policy.Verdict{State: policy.StateUnknown, Source: "http", Fetched: now}, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return policy.Verdict{}, &retryable{err: fmt.Errorf("webhook answered %s", resp.Status), after: retryAfter(resp.Header.Get("Retry-After"))}
	case resp.StatusCode != http.StatusOK:
		return policy.Verdict{}, fmt.Errorf("webhook answered %s", resp.Status)
	}
	var a httpAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		return policy.Verdict{}, fmt.Errorf("webhook answer is not the expected JSON: %v", err)
	}
	st, ok := policy.ParseState(strings.ToLower(a.State))
	if !ok {
		return policy.Verdict{}, fmt.Errorf("webhook answered unknown state %q", a.State)
	}
	v := policy.Verdict{State: st, Source: "http", Fetched: now}
	if a.TTL != nil {
		if *a.TTL < 0 {
			return policy.Verdict{}, fmt.Errorf("webhook answered a negative ttl %d", *a.TTL)
		}
		v.Expires = now.Add(time.Duration(*a.TTL) * time.Second)
	}
	return v, nil
}

// retryAfter reads a Retry-After header in seconds (the HTTP-date form is
// treated as absent).
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

var _ policy.Source = (*HTTP)(nil)
