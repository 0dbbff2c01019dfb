package multinode

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easgate/easgate/bench"
)

const tenant = "00000000-0000-0000-0000-00000000aaaa"

// fakeGraph is Microsoft Graph's token and managedDevices endpoints over
// TLS, counting the pulls it serves.
type fakeGraph struct {
	srv   *httptest.Server
	pulls atomic.Int64
	mu    sync.Mutex
	state map[string]string // easDeviceId -> complianceState
}

func newFakeGraph(t *testing.T, state map[string]string) *fakeGraph {
	g := &fakeGraph{state: state}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /"+tenant+"/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"access_token": "tok", "expires_in": 3600, "token_type": "Bearer"})
	})
	mux.HandleFunc("GET /v1.0/deviceManagement/managedDevices", func(w http.ResponseWriter, r *http.Request) {
		g.pulls.Add(1)
		g.mu.Lock()
		var devs []map[string]any
		for id, st := range g.state {
			devs = append(devs, map[string]any{"id": id, "userPrincipalName": "dave@corp.example.com", "easDeviceId": id,
				"easActivated": true, "complianceState": st, "operatingSystem": "iOS", "osVersion": "17.5",
				"lastSyncDateTime": time.Now().UTC().Format(time.RFC3339)})
		}
		g.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"value": devs})
	})
	g.srv = httptest.NewTLSServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func (g *fakeGraph) set(id, state string) {
	g.mu.Lock()
	g.state[id] = state
	g.mu.Unlock()
}

// Only one node pulls Microsoft Graph (under the lease); the other uses
// the verdicts it publishes, and a verdict that changes in Graph releases a
// phone held in quarantine on the other node.
func TestGraphPulledByOneNode(t *testing.T) {
	e := newEnv(t, bench.FakeCASConfig{})
	// Each node has its own fake Graph with the same devices, so that the
	// pulls of each node can be counted.
	devs := func() map[string]string {
		return map[string]string{"ApplCOMPLIANT01": "compliant", "ApplNONCOMPL001": "noncompliant"}
	}
	ga, gb := newFakeGraph(t, devs()), newFakeGraph(t, devs())
	dir := t.TempDir()
	ca := filepath.Join(dir, "graph-ca.pem")
	var pems []byte
	for _, g := range []*fakeGraph{ga, gb} {
		pems = append(pems, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: g.srv.Certificate().Raw})...)
	}
	secret := filepath.Join(dir, "graph.secret")
	if err := os.WriteFile(ca, pems, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte("shh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := func(g *fakeGraph) string {
		return fmt.Sprintf(`  compliance:
    require_for: [all]
    source:
      type: graph
      tenant_id: %s
      client_id: 00000000-0000-0000-0000-00000000bbbb
      client_secret_file: %s
      authority_url: %s
      graph_url: %s
      full_sync: 1h
      quick_sync: 1s
    cache:
      ttl: 1h
`, tenant, secret, g.srv.URL, g.srv.URL)
	}
	a := e.startNode("A", policy(ga), "SSL_CERT_FILE="+ca)
	waitLog(t, a, "graph: this node holds the pull lease")
	b := e.startNode("B", policy(gb), "SSL_CERT_FILE="+ca)
	waitLog(t, b, "graph: another node holds the pull lease")
	waitLog(t, b, "graph: synced") // the table A published, imported

	ok := newPhone("dave@corp.example.com", "ApplCOMPLIANT01", "", b)
	if err := ok.Setup(); err != nil {
		t.Fatalf("the compliant phone on B: %v", err)
	}
	if ok.Decision() != bench.DecisionAllowed {
		t.Fatalf("the compliant phone on B: %s, want allowed", ok.Decision())
	}
	bad := newPhone("dave@corp.example.com", "ApplNONCOMPL001", "", b)
	if err := bad.Setup(); err != nil && !bench.IsPolicyAnswer(bench.ErrorKind(err)) {
		t.Fatalf("the noncompliant phone on B: %v", err)
	}
	if bad.Decision() != bench.DecisionQuarantined {
		t.Fatalf("the noncompliant phone on B: %q, want quarantined", bad.Decision())
	}
	if n := gb.pulls.Load(); n != 0 {
		t.Fatalf("node B pulled Graph %d times, want 0", n)
	}
	if ga.pulls.Load() == 0 {
		t.Fatal("node A never pulled Graph")
	}

	// The device becomes compliant in Intune: A's next quick pull
	// publishes it, and the Ping the phone holds in quarantine on B is
	// answered so that the phone syncs again.
	type result struct {
		status int
		err    error
		at     time.Time
	}
	// The phone takes the notice first; then its Ping is held.
	for range 2 {
		if _, err := bad.SyncAll(bad.InboxID); err != nil && !bench.IsPolicyAnswer(bench.ErrorKind(err)) {
			t.Fatalf("the quarantined phone's Sync: %v", err)
		}
	}
	if bad.Items != 1 {
		t.Fatalf("the quarantined phone received %d items, want the notice", bad.Items)
	}
	res := make(chan result, 1)
	go func() {
		st, _, err := bad.Ping(3540)
		res <- result{st, err, time.Now()}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for b.metric(t, "easgate_held_long_polls") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the quarantined phone's Ping is not held on B")
		}
		time.Sleep(50 * time.Millisecond)
	}
	changed := time.Now()
	ga.set("ApplNONCOMPL001", "compliant")
	gb.set("ApplNONCOMPL001", "compliant")
	select {
	case r := <-res:
		took := r.at.Sub(changed)
		if r.err != nil {
			t.Fatalf("the released Ping: %v", r.err)
		}
		t.Logf("the quarantined phone's Ping on B answered %v after the verdict changed in Graph (A pulls every 1 s): status %d, %v", took.Round(time.Millisecond), r.status, r.err)
		if took > 3*time.Second {
			t.Fatalf("released after %v: want within the pull interval (1 s) plus 2 s", took)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the quarantined phone's Ping on B was not answered after the new verdict")
	}
	if _, err := bad.SyncAll(bad.InboxID); err != nil {
		t.Logf("first Sync after the release: %v", err)
	}
	if n := gb.pulls.Load(); n != 0 {
		t.Fatalf("node B pulled Graph %d times, want 0", n)
	}
	t.Logf("node A pulled Graph %d times, node B %d", ga.pulls.Load(), gb.pulls.Load())

	// Node A stops and gives the lease up: B takes it and pulls.
	a.stop()
	waitLog(t, b, "graph: this node holds the pull lease")
	deadline = time.Now().Add(10 * time.Second)
	for gb.pulls.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("node B holds the lease but does not pull")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitLog(t *testing.T, n *node, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(n.log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("node %s never logged %q", n.name, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
