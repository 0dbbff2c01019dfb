package proxy

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easgate/easgate/bench"
	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
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
	if w := p.s.enf.held.len(); w != n {
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
	p.s.enf.setRecheck(50 * time.Millisecond)
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
	if w := p.s.enf.held.len(); w != n-1 {
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

// TestWatchCutRaces cuts watches at every stage of a round trip: before
// the request has a connection (nothing is sent), while it waits (the
// connection is closed), and after the answer arrived (too late: the answer
// stands).
func TestWatchCutRaces(t *testing.T) {
	w := &heldWatch{}
	w.cut = true
	if w.attach(nil) {
		t.Error("a watch cut before the round trip attached a connection")
	}

	a, b := net.Pipe()
	w = &heldWatch{}
	if !w.attach(a) {
		t.Fatal("attach refused")
	}
	w.mu.Lock()
	w.cut = true
	_ = w.conn.Close()
	w.mu.Unlock()
	if _, err := a.Read(make([]byte, 1)); err == nil {
		t.Error("the cut connection still reads")
	}
	if !w.detach() {
		t.Error("detach after a cut reports no cut")
	}
	_ = b.Close()

	w = &heldWatch{}
	c, d := net.Pipe()
	defer c.Close()
	defer d.Close()
	w.attach(c)
	if w.detach() {
		t.Error("detach without a cut reports one")
	}
	w.check() // detached: too late, and x is never read
	if w.cut {
		t.Error("a detached watch was cut")
	}

	var nilWatch *heldWatch
	if !nilWatch.attach(c) || nilWatch.detach() {
		t.Error("a nil watch must attach everything and never be cut")
	}
}

// TestHeldRegistryConcurrent inserts and removes waiters of a few devices
// from many goroutines while wakes, wakeAll and checkers() run (under
// -race): every list stays consistent and the registry ends empty.
func TestHeldRegistryConcurrent(t *testing.T) {
	var h heldRegistry
	var wg sync.WaitGroup
	devices := []string{"a", "b", "c"}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				w := &waiter{key: string(policy.AppendDeviceKey(nil, []byte("User"), []byte(devices[(g+i)%len(devices)])))}
				w.c = &heldWatch{done: true} // check() returns at once
				h.insert(w)
				if i%3 == 0 {
					h.wake([]byte("user"), []byte(devices[i%len(devices)]))
				}
				if i%50 == 0 {
					h.wakeAll()
					_ = h.checkers(-1)
					_ = h.checkers(i % sweepSlices)
				}
				h.remove(w)
				h.remove(w) // twice: no effect
			}
		}()
	}
	wg.Wait()
	if n := h.len(); n != 0 || len(h.m) != 0 {
		t.Fatalf("registry not empty: len %d, %d keys", n, len(h.m))
	}

	// Removal from the middle, the head and the tail of a device's list
	// keeps the rest.
	ws := make([]*waiter, 5)
	for i := range ws {
		dev := "x"
		if i == 4 {
			dev = "y"
		}
		ws[i] = &waiter{key: string(policy.AppendDeviceKey(nil, []byte("u"), []byte(dev)))}
		h.insert(ws[i])
	}
	listed := func() int {
		h.mu.Lock()
		defer h.mu.Unlock()
		n := 0
		var prev *waiter
		for w := h.m[ws[0].key]; w != nil; w = w.next {
			if w.prev != prev {
				t.Fatalf("broken back link")
			}
			prev = w
			n++
		}
		return n
	}
	for _, tc := range []struct {
		remove     *waiter
		wantListed int
	}{{ws[2], 3}, {ws[3], 2}, {ws[0], 1}, {ws[1], 0}} {
		h.remove(tc.remove)
		if n := listed(); n != tc.wantListed {
			t.Fatalf("device x lists %d waiters, want %d", n, tc.wantListed)
		}
	}
	if h.len() != 1 || len(h.m) != 1 {
		t.Fatalf("len %d, %d keys; want device y's one waiter", h.len(), len(h.m))
	}

	// The sweep slices hold every waiter exactly once, in parts of nearly
	// equal size.
	for i := range 40 {
		w := &waiter{key: fmt.Sprint("k", i%7)}
		w.c = &heldWatch{}
		h.insert(w)
	}
	seen := map[checker]int{}
	for slot := range sweepSlices {
		part := h.checkers(slot)
		if len(part) < 41/sweepSlices || len(part) > 41/sweepSlices+1 {
			t.Errorf("slice %d holds %d of 41", slot, len(part))
		}
		for _, c := range part {
			seen[c]++
		}
	}
	all := h.checkers(-1)
	if len(all) != 41 || len(seen) != 41 {
		t.Fatalf("%d checkers, %d seen in the slices; want 41", len(all), len(seen))
	}
	for c, n := range seen {
		if n != 1 {
			t.Errorf("checker %p in %d slices", c, n)
		}
	}
}
