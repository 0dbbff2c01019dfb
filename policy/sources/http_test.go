package sources

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easgate/easgate/policy"
)

func TestHTTPSource(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		var q httpQuery
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		switch q.DeviceID {
		case "FLAKY":
			if n%2 == 1 {
				w.Header().Set("Retry-After", "0")
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte(`{"state":"compliant","ttl":60}`))
		case "DOWN":
			http.Error(w, "down", http.StatusBadGateway)
		case "MISSING":
			http.NotFound(w, r)
		case "GARBAGE":
			w.Write([]byte(`{"state":`))
		default:
			if q.User != "bob@corp.example.com" || q.Model != "iPhone16C1" {
				http.Error(w, "bad query", 400)
				return
			}
			w.Write([]byte(`{"state":"noncompliant"}`))
		}
	}))
	defer srv.Close()
	h, err := NewHTTP(HTTPConfig{URL: srv.URL, Token: "s3cret", Retries: 2, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	q := policy.Query{User: "bob@corp.example.com", DeviceID: "D1", Model: "iPhone16C1"}
	v, err := h.Lookup(ctx, q)
	if err != nil || v.State != policy.StateNoncompliant || !v.Expires.IsZero() {
		t.Fatalf("D1: %+v %v", v, err)
	}
	q.DeviceID = "FLAKY"
	v, err = h.Lookup(ctx, q)
	if err != nil || v.State != policy.StateCompliant || v.Expires.IsZero() {
		t.Fatalf("FLAKY (retried): %+v %v", v, err)
	}
	q.DeviceID = "MISSING"
	if v, err = h.Lookup(ctx, q); err != nil || v.State != policy.StateUnknown {
		t.Fatalf("MISSING: %+v %v", v, err)
	}
	q.DeviceID = "DOWN"
	before := calls.Load()
	if _, err = h.Lookup(ctx, q); !errors.Is(err, policy.ErrUnavailable) {
		t.Fatalf("DOWN: %v", err)
	}
	if got := calls.Load() - before; got != 3 {
		t.Fatalf("DOWN: %d attempts, want 3 (1 + 2 retries)", got)
	}
	q.DeviceID = "GARBAGE"
	if _, err = h.Lookup(ctx, q); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("GARBAGE: %v", err)
	}
	bad, _ := NewHTTP(HTTPConfig{URL: srv.URL, Token: "wrong"})
	if _, err := bad.Lookup(ctx, q); err == nil || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestHTTPSourceTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	h, _ := NewHTTP(HTTPConfig{URL: srv.URL, Timeout: 50 * time.Millisecond})
	if _, err := h.Lookup(context.Background(), policy.Query{User: "u", DeviceID: "d"}); !errors.Is(err, policy.ErrUnavailable) {
		t.Fatalf("want unavailable on timeout, got %v", err)
	}
}

func TestNewHTTPRejectsBadURL(t *testing.T) {
	if _, err := NewHTTP(HTTPConfig{URL: "ftp://x"}); err == nil {
		t.Fatal("ftp URL accepted")
	}
}
