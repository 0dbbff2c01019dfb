package multinode

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/bench"
)

// writeCSVAtomic replaces a compliance file the way a careful export does
// (a temporary file renamed over it), so a node never reads half of it.
func writeCSVAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// Only the node holding the compliance file lease reads its CSV; the other
// uses the table it publishes and ignores its own file, a change of the
// leader's file releases a phone held in quarantine on the other node, and
// the follower keeps the published table in its local snapshot for a
// restart while the database is down, and when the leader stops the other
// node takes the lease and its own file is then in force.
func TestFileVerdictsSharedAcrossNodes(t *testing.T) {
	e := newEnv(t, bench.FakeCASConfig{})
	const (
		user = "dave@corp.example.com"
		held = "ApplFILEDEV0001" // A: noncompliant, then compliant; B: compliant
		flip = "ApplFILEDEV0002" // A: compliant; B: noncompliant
	)
	csvA := filepath.Join(t.TempDir(), "a.csv")
	csvB := filepath.Join(t.TempDir(), "b.csv")
	row := func(dev, state string) string { return fmt.Sprintf("%s,%s,%s\n", user, dev, state) }
	writeCSVAtomic(t, csvA, "user,device_id,state\n"+row(held, "noncompliant")+row(flip, "compliant"))
	writeCSVAtomic(t, csvB, "user,device_id,state\n"+row(held, "compliant")+row(flip, "noncompliant"))
	policy := func(path string) string {
		return fmt.Sprintf(`  compliance:
    require_for: [all]
    source:
      type: file
      path: %s
    cache:
      ttl: 1h
`, path)
	}
	a := e.startNode("A", policy(csvA))
	waitLog(t, a, "compliance file: this node holds the lease")
	b := e.startNode("B", policy(csvB))
	waitLog(t, b, "compliance file: another node holds the lease")
	waitLog(t, b, "compliance file: installed the table the leading node published")
	cfgB := filepath.Join(b.dir, "easgate.yaml")

	// B decides with A's verdicts, not its own file's.
	ok := newPhone(user, flip, "", b)
	if err := ok.Setup(); err != nil {
		t.Fatalf("the phone A's file marks compliant, on B: %v", err)
	}
	if ok.Decision() != bench.DecisionAllowed {
		t.Fatalf("the phone A's file marks compliant, on B: %s, want allowed (B's own file must be ignored)", ok.Decision())
	}
	bad := newPhone(user, held, "", b)
	if err := bad.Setup(); err != nil && !bench.IsPolicyAnswer(bench.ErrorKind(err)) {
		t.Fatalf("the phone A's file marks noncompliant, on B: %v", err)
	}
	if bad.Decision() != bench.DecisionQuarantined {
		t.Fatalf("the phone A's file marks noncompliant, on B: %q, want quarantined (B's own file must be ignored)", bad.Decision())
	}

	// What the tools say on the follower.
	out, err := easgateMay("compliance", "status", "--config", cfgB)
	if err != nil || !strings.Contains(out, "another node holds the compliance file lease") || !strings.Contains(out, "not read by this node") {
		t.Fatalf("compliance status on B: %v\n%s", err, out)
	}
	out, err = easgateMay("compliance", "accept", "--config", cfgB)
	if err == nil || !strings.Contains(out, "nothing to accept on this node") {
		t.Fatalf("compliance accept on B must refuse: %v\n%s", err, out)
	}
	if _, err := os.Stat(csvB + ".accept"); !os.IsNotExist(err) {
		t.Fatalf("compliance accept on B wrote a marker: %v", err)
	}
	if out := easgate(t, "compliance", "status", "--config", filepath.Join(a.dir, "easgate.yaml")); !strings.Contains(out, "this node holds the compliance file lease") {
		t.Fatalf("compliance status on A:\n%s", out)
	}

	// The quarantined phone takes its notice; then its Ping is held on B.
	for range 2 {
		if _, err := bad.SyncAll(bad.InboxID); err != nil && !bench.IsPolicyAnswer(bench.ErrorKind(err)) {
			t.Fatalf("the quarantined phone's Sync: %v", err)
		}
	}
	if bad.Items != 1 {
		t.Fatalf("the quarantined phone received %d items, want the notice", bad.Items)
	}
	type result struct {
		status int
		err    error
		at     time.Time
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

	// A's file now marks the device compliant. A reads it within its 2 s
	// check; B must release the Ping within 2 s of that.
	reloads := strings.Count(a.log.String(), "compliance file reloaded")
	written := time.Now()
	writeCSVAtomic(t, csvA, "user,device_id,state\n"+row(held, "compliant")+row(flip, "compliant"))
	var applied time.Time
	var r result
	timeout := time.After(15 * time.Second)
wait:
	for {
		select {
		case r = <-res:
			break wait
		case <-timeout:
			t.Fatal("the quarantined phone's Ping on B was not answered after A's file marked it compliant")
		case <-time.After(20 * time.Millisecond):
			if applied.IsZero() && strings.Count(a.log.String(), "compliance file reloaded") > reloads {
				applied = time.Now()
			}
		}
	}
	if applied.IsZero() && strings.Count(a.log.String(), "compliance file reloaded") > reloads {
		applied = r.at // A logged it in the same 20 ms
	}
	if r.err != nil {
		t.Fatalf("the released Ping: %v", r.err)
	}
	if applied.IsZero() {
		t.Fatal("B released the Ping before A applied its new file")
	}
	t.Logf("the quarantined phone's Ping on B answered %v after A applied its file (%v after the write; A checks every 2 s): status %d",
		r.at.Sub(applied).Round(time.Millisecond), r.at.Sub(written).Round(time.Millisecond), r.status)
	if took := r.at.Sub(applied); took > 2*time.Second {
		t.Fatalf("released %v after A applied the new verdict, want within 2 s", took)
	}
	if strings.Contains(b.log.String(), "compliance file reloaded") {
		t.Fatal("B read its own file while A held the lease")
	}

	// B restarts while the database is down (offline_start: snapshot): the
	// table A published comes from B's local snapshot, not B's own file.
	b.stop()
	installed := strings.Count(b.log.String(), "compliance file: installed the table the leading node published")
	if err := cluster.StopServer(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = cluster.StartServer()
		}
	}()
	b.run(t)
	if got := strings.Count(b.log.String(), "compliance file: installed the table the leading node published"); got != installed+1 {
		t.Fatalf("B restarted without the database did not install the published table from its snapshot (%d times before, %d now)", installed, got)
	}
	offline := newPhone(user, flip, "", b)
	if err := offline.Setup(); err != nil {
		t.Fatalf("the phone A's file marks compliant, on B restarted without the database: %v", err)
	}
	if offline.Decision() != bench.DecisionAllowed {
		t.Fatalf("the phone A's file marks compliant, on B restarted without the database: %s, want allowed", offline.Decision())
	}
	if err := cluster.StartServer(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	deadline = time.Now().Add(20 * time.Second)
	for _, n := range []*node{a, b} {
		for n.metric(t, "easgate_state_database_up") != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("node %s does not see the database again", n.name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// A stops and gives the lease up: B takes it over and its own file is
	// in force (flip is noncompliant there).
	a.stop()
	waitLog(t, b, "compliance file: this node holds the lease")
	waitLog(t, b, "compliance file reloaded")
	if strings.Contains(b.log.String(), "compliance reload held back") {
		t.Fatal("B's file, as large as A's table, was held back at the takeover")
	}
	later := newPhone(user, flip, "", b)
	if err := later.Setup(); err != nil && !bench.IsPolicyAnswer(bench.ErrorKind(err)) {
		t.Fatalf("the phone B's file marks noncompliant, on B after the takeover: %v", err)
	}
	if later.Decision() != bench.DecisionQuarantined {
		t.Fatalf("the phone B's file marks noncompliant, on B after the takeover: %q, want quarantined", later.Decision())
	}
	if out := easgate(t, "compliance", "status", "--config", cfgB); !strings.Contains(out, "this node holds the compliance file lease") || !strings.Contains(out, "(in force)") {
		t.Fatalf("compliance status on B after the takeover:\n%s", out)
	}
}
