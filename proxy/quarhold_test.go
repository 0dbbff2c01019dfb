package proxy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/easgate/easgate/bench"
	"github.com/easgate/easgate/eas"
)

// TestQuarantineHolds: quarantined devices' Pings, which easgate holds
// itself, cost the gateway no goroutine while held; each is answered "no
// changes" (Ping Status 1) when its interval ends, when the configuration
// is replaced (the phone asks again and is held under the new one), and at
// shutdown.
func TestQuarantineHolds(t *testing.T) {
	cas := startCountingCAS(t, bench.FakeCASConfig{Messages: 3, MessageSize: 256, AttachmentSize: -1})
	dir := t.TempDir()
	cfg := enforceYAML(cas.url, dir, "  default_access: quarantine\n")
	p := startProxy(t, mustParse(t, cfg))
	const n = 6
	phones := make([]*bench.Device, n)
	ids := make([]string, n)
	for i := range phones {
		ids[i] = fmt.Sprintf("androidq%010d", i)
		ph := newPhone(p, user, ids[i], profile("samsung", eas.V141))
		for _, step := range []func() error{ph.Options, ph.Provision, ph.FolderSync} {
			if err := step(); err != nil {
				t.Fatalf("phone %d: %v", i, err)
			}
		}
		if got, err := ph.SyncAll(ph.InboxID); err != nil || got != 1 {
			t.Fatalf("phone %d notice: %d %v", i, got, err)
		}
		if got, _, err := ph.Sync(ph.InboxID); err != nil || got != 0 {
			t.Fatalf("phone %d ack: %d %v", i, got, err)
		}
		phones[i] = ph
	}
	time.Sleep(200 * time.Millisecond)
	base := gatewayGoroutines()

	type result struct {
		i, status int
		err       error
	}
	done := make(chan result, 2*n)
	ping := func(i int) {
		st, _, err := phones[i].Ping(300)
		done <- result{i, st, err}
	}
	for i := range phones {
		go ping(i)
	}
	waitFor(t, "the Pings to be held by easgate", func() bool { return p.s.registry.Watched() == n })
	if got := gatewayGoroutines() - base; got > 2 {
		t.Errorf("%d quarantine holds run %d more gateway goroutines, want none", n, got)
	}
	if c := cas.count(ids[0], "Ping"); c != 0 {
		t.Fatalf("a quarantined device's Ping reached the CAS")
	}
	wantNoChanges := func(what string, r result) {
		t.Helper()
		if r.err != nil || r.status != int(eas.PingStatusExpired) {
			t.Fatalf("%s: phone %d answered %d, %v; want Status 1 (no changes)", what, r.i, r.status, r.err)
		}
	}
	next := func(what string) result {
		t.Helper()
		select {
		case r := <-done:
			return r
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no answer", what)
		}
		return result{}
	}

	// The interval of phone 0 ends (brought forward).
	if got := p.s.registry.ExpireHolds([]byte(user), []byte(ids[0])); got != 1 {
		t.Fatalf("phone 0 has %d holds, want 1", got)
	}
	r := next("interval end")
	if r.i != 0 {
		t.Fatalf("phone %d answered, want phone 0 whose interval ended", r.i)
	}
	wantNoChanges("interval end", r)
	waitFor(t, "the hold to leave the registry", func() bool { return p.s.registry.Watched() == n-1 })

	// A new configuration answers the others at once; asked again, they are
	// held under it.
	if err := p.s.Reload(mustParse(t, cfg)); err != nil {
		t.Fatal(err)
	}
	for range n - 1 {
		r := next("reload")
		wantNoChanges("reload", r)
		go ping(r.i)
	}
	waitFor(t, "the Pings held again", func() bool { return p.s.registry.Watched() == n-1 })
	if h := p.s.held.Load(); h != n-1 {
		t.Errorf("held count %d, want %d", h, n-1)
	}

	// Shutdown answers them too, at once.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- p.s.Shutdown(ctx) }()
	for range n - 1 {
		wantNoChanges("shutdown", next("shutdown"))
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if h := p.s.held.Load(); h != 0 {
		t.Errorf("held count %d after shutdown", h)
	}
}
