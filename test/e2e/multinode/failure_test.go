package multinode

import (
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/bench"
)

// PostgreSQL stops for 20 s in the middle of the load: the phones see no
// error (nodes serve from memory), both nodes say so (metric, /readyz,
// log line), and the writes queued meanwhile arrive once it is back.
func TestDatabaseOutageMidLoad(t *testing.T) {
	e := newEnv(t, bench.FakeCASConfig{PingChangeEvery: 120 * time.Second})
	a, b := e.startNode("A", ""), e.startNode("B", "")
	lb := newBalancer(t, a, b)
	const devices = 100
	type result struct {
		rep *bench.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The ramp spans the outage: phones first seen while the database
		// is down must reach it afterwards.
		rep, err := bench.Run(bench.RunConfig{Target: lb.url(), Devices: devices, Duration: 40 * time.Second, Ramp: 30 * time.Second,
			Heartbeat: 480 * time.Second, TimeScale: timeScale, Password: "pw"})
		done <- result{rep, err}
	}()
	time.Sleep(8 * time.Second)
	if err := cluster.StopServer(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	restarted := false
	defer func() {
		if !restarted {
			_ = cluster.StartServer()
		}
	}()
	// Both nodes notice and say so.
	for _, n := range []*node{a, b} {
		for {
			if n.metric(t, "easgate_state_database_up") == 0 {
				break
			}
			if time.Since(stopped) > 15*time.Second {
				t.Fatalf("node %s still reports the database up", n.name)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if r := n.readyz(t); !strings.HasPrefix(r, "ready\n") || !strings.Contains(r, "state database: unreachable, serving from memory") {
			t.Fatalf("node %s /readyz during the outage: %q", n.name, r)
		}
		if !strings.Contains(n.log.String(), "state database unreachable: serving from memory") {
			t.Fatalf("node %s logged no line about the outage", n.name)
		}
		if strings.Contains(n.log.String(), e.db.Password) {
			t.Fatalf("node %s logged the database password", n.name)
		}
	}
	time.Sleep(20*time.Second - time.Since(stopped))
	queued := a.metric(t, "easgate_state_write_queue_records") + b.metric(t, "easgate_state_write_queue_records")
	if err := cluster.StartServer(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	t.Logf("database down for %v; %v records queued on the two nodes", time.Since(stopped).Round(time.Second), queued)
	if queued == 0 {
		t.Fatal("nothing was queued while the database was down: the test proves nothing")
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Logf("fleet: %d requests, %d errors; node A served %d, node B %d", r.rep.Requests, r.rep.Errors, a.requests(), b.requests())
	if r.rep.Errors != 0 {
		t.Fatalf("phones saw %d errors (%v) during the database outage, want 0", r.rep.Errors, r.rep.ErrorKinds)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := e.sql(`SELECT count(*) FROM easgate_records WHERE bucket = 'devices' AND value IS NOT NULL`)
		q := a.metric(t, "easgate_state_write_queue_records") + b.metric(t, "easgate_state_write_queue_records")
		if n == devices && q == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the outage: %d of %d device records in the database, %v records still queued", n, devices, q)
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, n := range []*node{a, b} {
		if n.metric(t, "easgate_state_database_up") != 1 || !strings.Contains(n.log.String(), "state database reachable again") {
			t.Fatalf("node %s does not report the database back", n.name)
		}
	}
}

// Node A is killed (SIGKILL) in the middle of the load: node B carries its
// phones. Only requests in flight on A at that instant fail.
func TestNodeKilledMidLoad(t *testing.T) {
	e := newEnv(t, bench.FakeCASConfig{PingChangeEvery: 120 * time.Second})
	a, b := e.startNode("A", ""), e.startNode("B", "")
	lb := newBalancer(t, a, b)
	const devices = 100
	const killAt = 10.0
	type result struct {
		rep *bench.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := bench.Run(bench.RunConfig{Target: lb.url(), Devices: devices, Duration: 30 * time.Second, Ramp: 4 * time.Second,
			Heartbeat: 480 * time.Second, TimeScale: timeScale, Password: "pw"})
		done <- result{rep, err}
	}()
	time.Sleep(killAt * time.Second)
	beforeB := b.requests()
	a.kill()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	afterB := b.requests() - beforeB
	var lateErrors, lateRequests int64
	for _, p := range r.rep.Timeline {
		if p.T > killAt+3 {
			lateErrors += p.Errors
			lateRequests += p.Requests
		}
	}
	t.Logf("fleet: %d requests, %d errors (%v); node B served %d requests after A was killed; %d requests and %d errors from 3 s after the kill",
		r.rep.Requests, r.rep.Errors, r.rep.ErrorKinds, afterB, lateRequests, lateErrors)
	if r.rep.Errors > devices {
		t.Fatalf("%d errors: more than one per phone", r.rep.Errors)
	}
	if lateErrors != 0 {
		t.Fatalf("%d errors from 3 s after the kill: B does not carry A's phones", lateErrors)
	}
	if afterB < 200 || lateRequests < 200 {
		t.Fatalf("after the kill B served %d requests (%d in the timeline): the phones stopped", afterB, lateRequests)
	}
}

// A node that starts while the database is down, with offline_start:
// snapshot, serves from its local snapshot: the override it learned before
// still blocks the phone. When the database is back it catches up on what
// the other node wrote meanwhile.
func TestNodeStartsFromSnapshotWhileDatabaseDown(t *testing.T) {
	e := newEnv(t, bench.FakeCASConfig{})
	a, b := e.startNode("A", ""), e.startNode("B", "")
	p := newPhone("frank@corp.example.com", "ApplFRANK000001", "", a)
	if err := p.Setup(); err != nil {
		t.Fatal(err)
	}
	waitDevice(t, b, "frank@corp.example.com", "ApplFRANK000001")
	easgate(t, "devices", "block", "--admin", "http://"+b.admin, "--user", "frank@corp.example.com", "--device-id", "ApplFRANK000001")
	deadline := time.Now().Add(10 * time.Second)
	for e.sql(`SELECT count(*) FROM easgate_records WHERE bucket = 'overrides' AND value IS NOT NULL`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the override did not reach the database")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // A's feed mirrors it into A's snapshot
	a.stop()
	if err := cluster.StopServer(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = cluster.StartServer()
		}
	}()
	a.run(t) // the database is down
	if !strings.Contains(a.log.String(), "serving from the local snapshot") {
		t.Fatalf("node A's log does not say it serves from its snapshot")
	}
	if _, _, err := newPhone("frank@corp.example.com", "ApplFRANK000001", "", a).Sync("1"); bench.ErrorKind(err) != bench.KindBlocked {
		t.Fatalf("the phone on A started from its snapshot: %v, want blocked", err)
	}
	if r := a.readyz(t); !strings.Contains(r, "state database: unreachable") {
		t.Fatalf("/readyz: %q", r)
	}
	if err := cluster.StartServer(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	// B (running throughout) allows the device again; A catches up.
	waitLog(t, b, "state database reachable again")
	easgate(t, "devices", "allow", "--admin", "http://"+b.admin, "--user", "frank@corp.example.com", "--device-id", "ApplFRANK000001")
	deadline = time.Now().Add(15 * time.Second)
	for {
		_, _, err := newPhone("frank@corp.example.com", "ApplFRANK000001", "", a).Sync("1")
		if bench.ErrorKind(err) != bench.KindBlocked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node A did not catch up with the approval made on B: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if a.metric(t, "easgate_state_database_up") != 1 {
		t.Fatal("node A does not report the database back")
	}
}

// waitDevice waits until node n lists the device (its device table flushes
// every second; the other nodes then learn it from the feed).
func waitDevice(t *testing.T, n *node, user, device string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := easgateMay("devices", "show", "--admin", "http://"+n.admin, "--user", user, "--device-id", device); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s does not list %s of %s", n.name, device, user)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
