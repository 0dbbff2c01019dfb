package testkit

import (
	"testing"

	"github.com/easgate/easgate/eas"
)

// TestNotShipped: no package that goes into the easgate or easbench binary
// depends on testkit (it is for tests only; see the package comment).
func TestNotShipped(t *testing.T) {
	for _, p := range Deps(t, "github.com/easgate/easgate/cmd/easgate", "github.com/easgate/easgate/cmd/easbench") {
		if p == "github.com/easgate/easgate/internal/testkit" {
			t.Fatal("a shipped binary depends on internal/testkit")
		}
	}
}

// TestBodiesParse: the bodies are what a phone sends, as easgate's own
// request reader sees them.
func TestBodiesParse(t *testing.T) {
	if hb, ok, err := eas.ReadPingInterval(PingBody(t, 480)); err != nil || !ok || hb != 480 {
		t.Fatalf("Ping heartbeat: %d %v %v; want 480", hb, ok, err)
	}
	if s, ok, err := eas.ReadSyncHold(SyncWaitBody(t, 5)); err != nil || !ok || s != 300 {
		t.Fatalf("Sync Wait 5: %d s %v %v; want 300 s", s, ok, err)
	}
	if _, ok, err := eas.ReadSyncHold(SyncWaitBody(t, 0)); err != nil || ok {
		t.Fatalf("Sync without Wait: held %v, %v; want not held", ok, err)
	}
}
