package proxy

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/easgate/easgate/bench"
	"github.com/easgate/easgate/eas"
)

// TestHeldBackReloadKeepsHeldPings: a compliance file emptied by a
// non-atomic write is held back, so the Pings held for compliant devices
// stay held through many re-decisions, and the metrics say so.
func TestHeldBackReloadKeepsHeldPings(t *testing.T) {
	cas := startCountingCAS(t, bench.FakeCASConfig{Messages: 2, MessageSize: 256, AttachmentSize: -1})
	dir := t.TempDir()
	csv := filepath.Join(dir, "compliance.csv")
	const n = 4
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
      lookup_timeout: 1s
      on_unavailable: quarantine
`, csv))))
	phones := make([]*bench.Device, n)
	for i, id := range ids {
		phones[i] = newPhone(p, user, id, profile("gmail", eas.V141))
		if err := phones[i].Setup(); err != nil {
			t.Fatalf("phone %d: %v", i, err)
		}
	}
	done := make(chan int, n)
	for i, ph := range phones {
		go func() {
			st, _, _ := ph.Ping(600)
			done <- i*1000 + st
		}()
	}
	waitFor(t, "the Pings to be held at the CAS", func() bool { return cas.f.Stats().HeldPings == n })

	// Another tool truncates the file in place.
	if err := os.WriteFile(csv, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p.s.registry.SetRecheck(50 * time.Millisecond)
	time.Sleep(3 * time.Second) // the file watch (every 2s) has run; sixty sweeps
	select {
	case r := <-done:
		t.Fatalf("phone %d's held Ping was answered (%d) after a held-back reload", r/1000, r%1000)
	default:
	}
	if h := p.s.held.Load(); h != n {
		t.Errorf("%d long polls held, want %d", h, n)
	}
	if c := metricValue(t, p.s, "easgate_compliance_reloads_held_back_total", map[string]string{"source": "file", "reason": "empty"}); c != 1 {
		t.Errorf("held-back reloads counted %v, want 1", c)
	}
	wantMetrics(t, p.s, `easgate_compliance_reload_held_back{source="file"} 1`)
}
