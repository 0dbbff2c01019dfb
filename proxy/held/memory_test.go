package held

import (
	"strconv"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// TestHoldFor: the interval a Ping or Sync asks for, remembered for the
// empty ones that reuse it, in a bounded memory; and the upstream timeout
// it gives.
func TestHoldFor(t *testing.T) {
	hm := NewMemory(2)
	ping := pingBody(t, 480)
	if got := hm.HoldFor(eas.CmdPing, ping, []byte("jdoe"), []byte("d1")); got != 480 {
		t.Fatalf("ping 480: %d", got)
	}
	if got := hm.HoldFor(eas.CmdPing, nil, []byte("JDOE"), []byte("d1")); got != 480 {
		t.Fatalf("empty ping after 480: %d", got)
	}
	if got := hm.HoldFor(eas.CmdPing, nil, []byte("jdoe"), []byte("other")); got != -1 {
		t.Fatalf("empty ping, nothing remembered: %d", got)
	}
	if got := hm.HoldFor(eas.CmdSync, syncWaitBody(t, 10), []byte("jdoe"), []byte("d1")); got != 600 {
		t.Fatalf("sync wait 10: %d", got)
	}
	if got := hm.HoldFor(eas.CmdSync, syncWaitBody(t, 0), []byte("jdoe"), []byte("d1")); got != 0 {
		t.Fatalf("sync without wait: %d", got)
	}
	hm.HoldFor(eas.CmdPing, pingBody(t, 900), []byte("u2"), []byte("d2"))
	hm.HoldFor(eas.CmdPing, pingBody(t, 900), []byte("u3"), []byte("d3"))
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

// pingBody builds a Ping request with the given HeartbeatInterval.
func pingBody(t testing.TB, seconds int) []byte {
	e := wbxml.NewEncoder(nil)
	e.Header()
	e.Start(wbxml.PingPing)
	e.Element(wbxml.PingHeartbeatInterval, strconv.Itoa(seconds))
	e.Start(wbxml.PingFolders)
	e.Start(wbxml.PingFolder)
	e.Element(wbxml.PingId, "5")
	e.Element(wbxml.PingClass, "Email")
	e.End()
	e.End()
	e.End()
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), e.Bytes()...)
}

// syncWaitBody builds a Sync request with the given Wait (none for 0).
func syncWaitBody(t testing.TB, wait int) []byte {
	e := wbxml.NewEncoder(nil)
	e.Header()
	e.Start(wbxml.AirSyncSync)
	e.Start(wbxml.AirSyncCollections)
	e.Start(wbxml.AirSyncCollection)
	e.Element(wbxml.AirSyncSyncKey, "1")
	e.Element(wbxml.AirSyncCollectionId, "5")
	e.End()
	e.End()
	if wait > 0 {
		e.Element(wbxml.AirSyncWait, strconv.Itoa(wait))
	}
	e.End()
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), e.Bytes()...)
}
