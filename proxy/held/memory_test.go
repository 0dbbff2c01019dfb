package held

import (
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/internal/testkit"
)

// TestHoldFor: the interval a Ping or Sync asks for, remembered for the
// empty ones that reuse it, in a bounded memory; and the upstream timeout
// it gives.
func TestHoldFor(t *testing.T) {
	hm := NewMemory(2)
	ping := testkit.PingBody(t, 480)
	if got := hm.HoldFor(eas.CmdPing, ping, []byte("jdoe"), []byte("d1")); got != 480 {
		t.Fatalf("ping 480: %d", got)
	}
	if got := hm.HoldFor(eas.CmdPing, nil, []byte("JDOE"), []byte("d1")); got != 480 {
		t.Fatalf("empty ping after 480: %d", got)
	}
	if got := hm.HoldFor(eas.CmdPing, nil, []byte("jdoe"), []byte("other")); got != -1 {
		t.Fatalf("empty ping, nothing remembered: %d", got)
	}
	if got := hm.HoldFor(eas.CmdSync, testkit.SyncWaitBody(t, 10), []byte("jdoe"), []byte("d1")); got != 600 {
		t.Fatalf("sync wait 10: %d", got)
	}
	if got := hm.HoldFor(eas.CmdSync, testkit.SyncWaitBody(t, 0), []byte("jdoe"), []byte("d1")); got != 0 {
		t.Fatalf("sync without wait: %d", got)
	}
	hm.HoldFor(eas.CmdPing, testkit.PingBody(t, 900), []byte("u2"), []byte("d2"))
	hm.HoldFor(eas.CmdPing, testkit.PingBody(t, 900), []byte("u3"), []byte("d3"))
	if hm.len() != 2 {
		t.Fatalf("memory not bounded: %d entries", hm.len())
	}
	const req, margin, lpmax = 120 * time.Second, 60 * time.Second, 3660 * time.Second
	for _, tt := range []struct {
		hold int
		want time.Duration
	}{{0, req}, {-1, lpmax}, {480, 540 * time.Second}, {3540, 3600 * time.Second}, {3600, lpmax}, {10, req}} {
		if got := Timeout(tt.hold, req, margin, lpmax); got != tt.want {
			t.Errorf("hold %d: %v, want %v", tt.hold, got, tt.want)
		}
	}
}
