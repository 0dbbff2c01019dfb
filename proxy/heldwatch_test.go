package proxy

import (
	"bytes"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/bench"
	"github.com/easgate/easgate/eas"
)

// gatewayGoroutines counts the goroutines running the gateway's code: not
// the test's own (its phones run bench code, its CAS is countingCAS).
func gatewayGoroutines() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("github.com/easgate/easgate/proxy.")) &&
			!bytes.Contains(g, []byte("github.com/easgate/easgate/proxy.Test")) && !bytes.Contains(g, []byte("countingCAS")) {
			n++
		}
	}
	return n
}

// TestWatchedLongPolls: under an enforcing policy, Pings held at the CAS
// are watched without a goroutine of their own: each costs the gateway one
// goroutine, its hijacked connection's, as without a policy. When one
// device turns non-compliant, the sweep cuts its Ping at once (Status 7:
// re-sync, so that its next request meets the quarantine) and the others
// stay held.
func TestWatchedLongPolls(t *testing.T) {
	cas := startCountingCAS(t, bench.FakeCASConfig{Messages: 2, MessageSize: 256, AttachmentSize: -1})
	dir := t.TempDir()
	csv := filepath.Join(dir, "compliance.csv")
	const n = 12
	ids := make([]string, n)
	rows := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("androidc%010d", i)
		rows[i] = user + "," + ids[i] + ",compliant"
	}
	writeCSV(t, csv, rows...)
	p := startProxy(t, mustParse(t, enforceYAML(cas.url, dir, fmt.Sprintf(`  mode: enforce
  default_access: allow
  discovery_period: 0s
  compliance:
    require_for: [all]
    source:
      type: file
      path: %s
    cache:
      ttl: 1h
      negative_ttl: 1h
      stale_if_error: 1h
      lookup_timeout: 1s
      on_unavailable: quarantine
`, csv))))
	if !p.s.cur.Load().enf.watchHeld {
		t.Fatal("an enforcing compliance requirement must watch held requests")
	}

	phones := make([]*bench.Device, n)
	for i, id := range ids {
		phones[i] = newPhone(p, user, id, profile("gmail", eas.V141))
		if err := phones[i].Setup(); err != nil {
			t.Fatalf("phone %d: %v", i, err)
		}
	}
	time.Sleep(200 * time.Millisecond) // the set-up's connections settle
	base := gatewayGoroutines()

	type result struct {
		i, status int
		err       error
	}
	done := make(chan result, n)
	for i, ph := range phones {
		go func() {
			st, _, err := ph.Ping(600)
			done <- result{i, st, err}
		}()
	}
	waitFor(t, "the Pings to be held at the CAS", func() bool { return cas.f.Stats().HeldPings == n })
	if w := p.s.registry.Watched(); w != n {
		t.Fatalf("%d watched requests, want %d", w, n)
	}
	// One goroutine per held Ping (the hijacked connection's); the old
	// watch added a second one, a ticker and a copy of the request.
	if got := gatewayGoroutines() - base; got > n+2 {
		t.Errorf("%d held Pings run %d more gateway goroutines, want at most %d", n, got, n+2)
	}

	// Device 0 turns non-compliant; the sweep (every 50 ms now) re-decides.
	rows[0] = user + "," + ids[0] + ",noncompliant"
	writeCSV(t, csv, rows...)
	p.s.registry.SetRecheck(50 * time.Millisecond)
	select {
	case r := <-done:
		if r.i != 0 || r.err != nil || r.status != int(eas.PingStatusHierarchyChange) {
			t.Fatalf("phone %d answered %d, %v; want phone 0 answered Status 7", r.i, r.status, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the non-compliant device's held Ping was not answered")
	}
	time.Sleep(300 * time.Millisecond) // several sweeps
	select {
	case r := <-done:
		t.Fatalf("phone %d answered %d, %v while still compliant", r.i, r.status, r.err)
	default:
	}
	if h := p.s.held.Load(); h != n-1 {
		t.Errorf("%d long polls held by the gateway, want %d", h, n-1)
	}
	if w := p.s.registry.Watched(); w != n-1 {
		t.Errorf("%d watched requests, want %d", w, n-1)
	}
	// Its next Sync meets the quarantine: the CAS does not see it.
	before := cas.count(ids[0], "Sync")
	if _, _, err := phones[0].Sync(phones[0].InboxID); err != nil && !strings.Contains(err.Error(), "Status") {
		t.Fatalf("Sync after the cut: %v", err)
	}
	if got := cas.count(ids[0], "Sync"); got != before {
		t.Errorf("the quarantined device's Sync reached the CAS")
	}
	var sawCut bool
	for _, l := range accessLines(t, dir) {
		if l["device_id"] == ids[0] && l["command"] == "Ping" && l["decision"] == "quarantine" {
			sawCut = true
		}
	}
	if !sawCut {
		t.Errorf("no access-log line for the cut Ping with decision quarantine")
	}
}
