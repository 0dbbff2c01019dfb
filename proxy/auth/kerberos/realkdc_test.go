package kerberos

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// realEnv reads the facts test/e2e/kerberos/setup.sh wrote. The tests
// against the real KDC run when EASGATE_E2E_KERBEROS=1 (CI sets it after
// setup.sh start); they fail then when the set-up is missing.
func realEnv(t testing.TB) map[string]string {
	t.Helper()
	if os.Getenv("EASGATE_E2E_KERBEROS") != "1" {
		t.Skip("EASGATE_E2E_KERBEROS=1 not set: no real KDC (test/e2e/kerberos/setup.sh start provides one)")
	}
	dir := os.Getenv("EASGATE_KRB_DIR")
	if dir == "" {
		dir = "/tmp/easgate-krb"
	}
	f, err := os.Open(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatalf("EASGATE_E2E_KERBEROS=1 but no set-up: %v (run test/e2e/kerberos/setup.sh start)", err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env
}

func realDelegator(t testing.TB, env map[string]string) *Delegator {
	t.Helper()
	kt, err := LoadKeytab(env["KEYTAB"])
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Realm: env["REALM"], KDCs: []string{env["KDC"]}, ServicePrincipal: env["SERVICE_PRINCIPAL"], Keytab: kt})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRealKDCS4U: the S4U2Self and S4U2Proxy messages of sfu.go are
// accepted by a real Active Directory KDC (Samba), and the ticket opens
// the Negotiate-protected CAS stand-in as alice@CORP.TEST.
func TestRealKDCS4U(t *testing.T) {
	env := realEnv(t)
	d := realDelegator(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := d.Authorization(ctx, "alice", env["SPN"])
	if err != nil {
		t.Fatalf("Authorization: %v", err)
	}
	if !strings.HasPrefix(h, "Negotiate ") {
		t.Fatalf("header %.20q... does not start with Negotiate", h)
	}
	req, _ := http.NewRequest("GET", env["CAS_URL"]+"/Microsoft-Server-ActiveSync", nil)
	req.Header.Set("Authorization", h)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Remote-User") != "alice@CORP.TEST" {
		t.Fatalf("CAS stand-in: %d, user %q; want 200 alice@CORP.TEST", resp.StatusCode, resp.Header.Get("X-Remote-User"))
	}
	// A second header comes from the cache, with a fresh authenticator.
	h2, err := d.Authorization(ctx, "alice", env["SPN"])
	if err != nil {
		t.Fatal(err)
	}
	if h2 == h {
		t.Error("the second token equals the first: the authenticator must be fresh")
	}
	if s := d.Stats(); s.S4UExchanges != 1 || s.ASExchanges != 1 || s.CacheHits < 1 {
		t.Errorf("stats %+v: want 1 AS, 1 S4U, a cache hit", s)
	}
}

// TestRealKDCRefusals: each refusal of the real KDC gets its cause and the
// principal concerned.
func TestRealKDCRefusals(t *testing.T) {
	env := realEnv(t)
	d := realDelegator(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []struct {
		user, spn string
		cause     Cause
		principal string
	}{
		{"alice", env["FORBIDDEN_SPN"], CauseDelegationRefused, "alice@CORP.TEST to " + env["FORBIDDEN_SPN"]},
		{"nobody-here", env["SPN"], CauseUnknownUser, "nobody-here@CORP.TEST"},
		{"alice", "HTTP/nowhere.corp.test", CauseUnknownService, "alice@CORP.TEST to HTTP/nowhere.corp.test"},
	} {
		_, err := d.Authorization(ctx, c.user, c.spn)
		var e *Error
		if !errors.As(err, &e) || e.Cause != c.cause || e.Principal != c.principal {
			t.Errorf("%s to %s: %v; want cause %s for %s", c.user, c.spn, err, c.cause, c.principal)
		}
	}
}

// BenchmarkRealKDCColdS4U: one cold S4U round trip (S4U2Self and
// S4U2Proxy, the service TGT already held) against the real KDC.
func BenchmarkRealKDCColdS4U(b *testing.B) {
	env := realEnv(b)
	d := realDelegator(b, env)
	ctx := context.Background()
	if _, err := d.Authorization(ctx, "alice", env["SPN"]); err != nil { // the service TGT
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.Invalidate("alice", env["SPN"])
		if _, err := d.Authorization(ctx, "alice", env["SPN"]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if s := d.Stats(); s.S4UExchanges != uint64(b.N)+1 {
		b.Fatalf("%d S4U exchanges for %d cold requests", s.S4UExchanges, b.N+1)
	}
}

// BenchmarkRealKDCCachedToken: a request's Negotiate header from the
// cached ticket (a new authenticator, AP-REQ and SPNEGO wrapping).
func BenchmarkRealKDCCachedToken(b *testing.B) {
	env := realEnv(b)
	d := realDelegator(b, env)
	ctx := context.Background()
	if _, err := d.Authorization(ctx, "alice", env["SPN"]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := d.Authorization(ctx, "alice", env["SPN"]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRealKDCOneExchangePerUser: many requests of one user at once cause
// one S4U exchange; the others wait for it.
func TestRealKDCOneExchangePerUser(t *testing.T) {
	env := realEnv(t)
	d := realDelegator(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		go func() {
			_, err := d.Authorization(ctx, "bob", env["SPN"])
			errs <- err
		}()
	}
	for i := 0; i < 16; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if s := d.Stats(); s.S4UExchanges != 1 || s.ASExchanges != 1 {
		t.Errorf("16 concurrent requests: %d S4U and %d AS exchanges; want 1 and 1", s.S4UExchanges, s.ASExchanges)
	}
}

// TestRealKDCRenewal: a ticket inside its renewal margin is still used
// while a new one is fetched in the background; an expired one is
// replaced before use; the service TGT is renewed from the keytab.
func TestRealKDCRenewal(t *testing.T) {
	env := realEnv(t)
	kt, err := LoadKeytab(env["KEYTAB"])
	if err != nil {
		t.Fatal(err)
	}
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	d, err := New(Options{Realm: env["REALM"], KDCs: []string{env["KDC"]}, ServicePrincipal: env["SERVICE_PRINCIPAL"], Keytab: kt,
		RenewBefore: 5 * time.Minute, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := d.Authorization(ctx, "carol", env["SPN"]); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	first := d.entries[key{"carol", env["SPN"]}].t
	end := first.end
	d.mu.Unlock()
	// Two minutes before the end: served from the cache, renewal in the background.
	offset.Store(int64(time.Until(end) - 2*time.Minute))
	if _, err := d.Authorization(ctx, "carol", env["SPN"]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		d.mu.Lock()
		e := d.entries[key{"carol", env["SPN"]}]
		done := e.flight == nil && e.t != first
		d.mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("after the renewal: %+v", d.Stats())
	if s := d.Stats(); s.S4UExchanges != 2 {
		t.Fatalf("inside the renewal margin: %d S4U exchanges; want a background renewal (2)", s.S4UExchanges)
	}
	// An hour past that end by this clock (a clock far ahead of the KDC's):
	// the service TGT is fetched again from the keytab, and what the KDC
	// issues, already ended by this clock, is refused as clock skew rather
	// than fetched again and again.
	offset.Store(int64(time.Until(end) + time.Hour))
	_, err = d.Authorization(ctx, "carol", env["SPN"])
	var e *Error
	if !errors.As(err, &e) || e.Cause != CauseClockSkew {
		t.Fatalf("an hour past the end: %v; want clock_skew", err)
	}
	t.Logf("clock ahead of the KDC: %v (stats %+v)", err, d.Stats())
	if s := d.Stats(); s.S4UExchanges != 3 || s.ASExchanges != 3 {
		t.Errorf("past the end: %d S4U and %d AS exchanges; want 3 and 3 (a new TGT from the keytab, refused as skewed)", s.S4UExchanges, s.ASExchanges)
	}
}
