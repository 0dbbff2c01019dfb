package held

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easgate/easgate/policy"
)

// These tests drive the package as proxy does, without a Server: a Decider
// and an Ender of their own, real sockets for the phones and the CAS.

// decider answers Redecide with the action it is set to, and counts calls.
type decider struct {
	mu       sync.Mutex
	action   policy.Action
	enforced bool
	replaced bool
	calls    atomic.Int64
	block    chan struct{} // when set, Redecide waits for it
}

func newDecider(a policy.Action) *decider { return &decider{action: a, enforced: true} }

func (d *decider) set(a policy.Action, replaced bool) {
	d.mu.Lock()
	d.action, d.replaced = a, replaced
	d.mu.Unlock()
}

func (d *decider) Redecide() (policy.Decision, bool) {
	d.calls.Add(1)
	if d.block != nil {
		<-d.block
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return policy.Decision{Action: d.action, Enforced: d.enforced}, d.replaced
}

// ender records that its hold ended.
type ender struct{ ch chan struct{} }

func newEnder() *ender      { return &ender{ch: make(chan struct{}, 2)} }
func (e *ender) HoldEnded() { e.ch <- struct{}{} }
func (e *ender) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-e.ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the hold did not end", what)
	}
	select {
	case <-e.ch:
		t.Fatalf("%s: HoldEnded called twice", what)
	case <-time.After(20 * time.Millisecond):
	}
}

// tcpPair is a connected pair of TCP sockets: phone is the client's end,
// server the end a gateway holds.
func tcpPair(t *testing.T) (phone, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// casWait is a CAS connection a poll waits on: reading from it fails once
// it is closed.
func casWait(t *testing.T) (wait func() error, conn net.Conn) {
	a, b := net.Pipe()
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return func() error { _, err := a.Read(make([]byte, 1)); return err }, a
}

// TestPollCuts: each cut of a poll waiting at its CAS closes the CAS
// connection and fails the round trip with its error; the phone's leaving
// and shutdown explain a failure before a refusal, and nothing is cut once
// the answer is being read.
func TestPollCuts(t *testing.T) {
	r := NewRegistry()
	r.SetRecheck(150 * time.Millisecond)
	r.Start()
	defer r.Close()

	t.Run("refused by a re-decision", func(t *testing.T) {
		var p Poll
		r.AddPoll(&p, nil)
		d := newDecider(policy.Allow)
		r.Watch(&p, []byte("User"), []byte("dev1"), d)
		wait, conn := casWait(t)
		if !p.Attach(conn) {
			t.Fatal("attach refused")
		}
		r.Wake([]byte("user"), []byte("dev1")) // allowed: nothing happens
		time.Sleep(50 * time.Millisecond)
		if p.Cut() != NotCut {
			t.Fatal("an allowed device's poll was cut")
		}
		d.set(policy.Block, false)
		r.Wake([]byte("USER"), []byte("dev1")) // keys fold the user's case
		if err := wait(); err == nil {
			t.Fatal("the CAS connection was not closed")
		}
		if err := p.Detach(); !errors.Is(err, ErrRefused) {
			t.Fatalf("Detach: %v, want ErrRefused", err)
		}
		dec := r.Unwatch(&p)
		if dec == nil || dec.Action != policy.Block {
			t.Fatalf("Unwatch handed back %+v, want the blocking decision", dec)
		}
		r.RemovePoll(&p)
		calls := d.calls.Load()
		r.Wake([]byte("user"), []byte("dev1"))
		time.Sleep(400 * time.Millisecond) // a wake and two sweeps
		if d.calls.Load() != calls {
			t.Fatal("the Decider was called after Unwatch")
		}
		if r.Len() != 0 || r.Watched() != 0 {
			t.Fatalf("registry holds %d (%d watched) after the poll left", r.Len(), r.Watched())
		}
	})

	t.Run("the sweep re-decides without a wake", func(t *testing.T) {
		var p Poll
		r.AddPoll(&p, nil)
		r.Watch(&p, []byte("user"), []byte("dev2"), newDecider(policy.Quarantine))
		wait, conn := casWait(t)
		p.Attach(conn)
		if err := wait(); err == nil {
			t.Fatal("the CAS connection was not closed")
		}
		if err := p.Detach(); !errors.Is(err, ErrRefused) {
			t.Fatalf("Detach: %v", err)
		}
		if dec := r.Unwatch(&p); dec == nil || dec.Action != policy.Quarantine {
			t.Fatalf("Unwatch: %+v", dec)
		}
		r.RemovePoll(&p)
	})

	t.Run("report mode never cuts", func(t *testing.T) {
		var p Poll
		r.AddPoll(&p, nil)
		d := newDecider(policy.Block)
		d.enforced = false
		r.Watch(&p, []byte("user"), []byte("dev3"), d)
		_, conn := casWait(t)
		p.Attach(conn)
		waitUntil(t, "two re-decisions", func() bool { return d.calls.Load() >= 2 })
		if err := p.Detach(); err != nil {
			t.Fatalf("Detach: %v", err)
		}
		if dec := r.Unwatch(&p); dec != nil {
			t.Fatalf("Unwatch: %+v", dec)
		}
		r.RemovePoll(&p)
	})

	t.Run("refused before it was sent", func(t *testing.T) {
		var p Poll
		r.AddPoll(&p, nil)
		r.Watch(&p, []byte("user"), []byte("dev4"), newDecider(policy.Block))
		r.Wake([]byte("user"), []byte("dev4"))
		waitUntil(t, "the cut", func() bool { return p.Cut() == Refused })
		_, conn := casWait(t)
		if p.Attach(conn) {
			t.Fatal("a cut poll attached a connection: it would be sent")
		}
		if err := p.Detach(); !errors.Is(err, ErrRefused) {
			t.Fatalf("Detach: %v", err)
		}
		r.Unwatch(&p)
		r.RemovePoll(&p)
	})

	t.Run("the phone leaves after a refusal", func(t *testing.T) {
		var p Poll
		phone, server := tcpPair(t)
		r.AddPoll(&p, server)
		r.Watch(&p, []byte("user"), []byte("dev5"), newDecider(policy.Allow))
		_, conn := casWait(t)
		p.Attach(conn)
		if !p.cutWith(Refused, &policy.Decision{Action: policy.Block}) {
			t.Fatal("refusal not taken")
		}
		_ = phone.Close()
		waitUntil(t, "the vanish sweep", func() bool { return p.Cut() == Gone })
		if err := p.Detach(); !errors.Is(err, ErrGone) {
			t.Fatalf("Detach: %v, want ErrGone", err)
		}
		if dec := r.Unwatch(&p); dec != nil {
			t.Fatalf("a poll whose phone left handed back a refusal: %+v", dec)
		}
		r.RemovePoll(&p)
	})

	t.Run("too late once the answer is read", func(t *testing.T) {
		var p Poll
		r.AddPoll(&p, nil)
		_, conn := casWait(t)
		p.Attach(conn)
		if err := p.Detach(); err != nil {
			t.Fatal(err)
		}
		p.stop()
		if p.Cut() != NotCut {
			t.Fatal("a poll whose answer was being read was cut")
		}
		// A retry on another CAS (nothing was sent) may be cut again.
		wait, conn2 := casWait(t)
		if !p.Attach(conn2) {
			t.Fatal("attach refused")
		}
		p.stop()
		if err := wait(); err == nil {
			t.Fatal("the retry's connection was not closed")
		}
		if err := p.Detach(); !errors.Is(err, ErrStopping) {
			t.Fatalf("Detach: %v", err)
		}
		r.RemovePoll(&p)
	})
}

// TestStop: Stop cuts every poll and ends every hold at once; a poll or
// hold that registers afterwards is stopped as it registers.
func TestStop(t *testing.T) {
	r := NewRegistry()
	r.Start()
	defer r.Close()
	polls := make([]Poll, 5)
	waits := make([]func() error, len(polls))
	for i := range polls {
		var conn net.Conn
		waits[i], conn = casWait(t)
		r.AddPoll(&polls[i], nil)
		polls[i].Attach(conn)
	}
	var h Hold
	e := newEnder()
	r.StartHold(&h, nil, []byte("u"), []byte("d"), newDecider(policy.Quarantine), time.Hour, e)
	if n := r.Stop(); n != len(polls)+1 {
		t.Fatalf("Stop answered %d, want %d", n, len(polls)+1)
	}
	for i := range polls {
		if err := waits[i](); err == nil {
			t.Fatalf("poll %d: CAS connection still open", i)
		}
		if err := polls[i].Detach(); !errors.Is(err, ErrStopping) {
			t.Fatalf("poll %d: %v", i, err)
		}
		r.RemovePoll(&polls[i])
	}
	e.wait(t, "stop")
	if o := h.Outcome(); o.Result != Stopped {
		t.Fatalf("hold outcome %v, want stopped", o.Result)
	}
	var late Poll
	if r.AddPoll(&late, nil) {
		t.Fatal("a poll registered after Stop was accepted")
	}
	_, conn := casWait(t)
	if late.Attach(conn) {
		t.Fatal("a poll registered after Stop may send its request")
	}
	r.RemovePoll(&late)
	var lateHold Hold
	e2 := newEnder()
	r.StartHold(&lateHold, nil, []byte("u"), []byte("d"), newDecider(policy.Quarantine), time.Hour, e2)
	e2.wait(t, "late hold")
	if lateHold.Outcome().Result != Stopped || r.Len() != 0 || r.Watched() != 0 {
		t.Fatalf("late hold %v; registry %d/%d", lateHold.Outcome().Result, r.Len(), r.Watched())
	}
}

// TestHoldOutcomes: a hold ends once, by whichever comes first, and says
// how: its interval, a release or block, a new configuration, its phone's
// leaving.
func TestHoldOutcomes(t *testing.T) {
	r := NewRegistry()
	r.SetRecheck(150 * time.Millisecond)
	r.Start()
	defer r.Close()
	start := func(d *decider, dur time.Duration, phone *net.TCPConn) (*Hold, *ender) {
		h, e := new(Hold), newEnder()
		r.StartHold(h, phone, []byte("user"), []byte("dev"), d, dur, e)
		return h, e
	}

	h, e := start(newDecider(policy.Quarantine), 100*time.Millisecond, nil)
	e.wait(t, "interval")
	if o := h.Outcome(); o.Result != Expired || o.Held < 100*time.Millisecond {
		t.Fatalf("outcome %+v, want expired after 100 ms", o)
	}

	d := newDecider(policy.Quarantine)
	h, e = start(d, time.Hour, nil)
	d.set(policy.Allow, false)
	r.Wake([]byte("user"), []byte("dev"))
	e.wait(t, "release")
	if o := h.Outcome(); o.Result != Released || o.Decision.Action != policy.Allow {
		t.Fatalf("outcome %+v, want released", o)
	}

	d = newDecider(policy.Quarantine)
	h, e = start(d, time.Hour, nil)
	d.set(policy.Block, false) // the sweep finds it without a wake
	e.wait(t, "block")
	if o := h.Outcome(); o.Result != Blocked || o.Decision.Action != policy.Block {
		t.Fatalf("outcome %+v, want blocked", o)
	}

	d = newDecider(policy.Quarantine)
	h, e = start(d, time.Hour, nil)
	d.set(policy.Quarantine, true)
	r.WakeAll()
	e.wait(t, "reload")
	if o := h.Outcome(); o.Result != Renewed {
		t.Fatalf("outcome %+v, want renewed", o)
	}

	phone, server := tcpPair(t)
	h, e = start(newDecider(policy.Quarantine), time.Hour, server)
	_ = phone.Close()
	e.wait(t, "phone left")
	if !h.Left() || h.Outcome().Result != Left {
		t.Fatalf("outcome %+v, want left", h.Outcome())
	}

	h, e = start(newDecider(policy.Quarantine), time.Hour, nil)
	if n := r.ExpireHolds([]byte("USER"), []byte("dev")); n != 1 {
		t.Fatalf("ExpireHolds found %d holds", n)
	}
	e.wait(t, "expired early")
	if h.Outcome().Result != Expired {
		t.Fatalf("outcome %+v, want expired", h.Outcome())
	}
	if r.Len() != 0 || r.Watched() != 0 {
		t.Fatalf("registry holds %d (%d watched) after every hold ended", r.Len(), r.Watched())
	}
}

// TestHoldEndsAfterRedecision: a hold that ends (its interval) while a
// re-decision is under way tells its Ender only once the Decider has
// returned, and the late decision does not end it a second time.
func TestHoldEndsAfterRedecision(t *testing.T) {
	r := NewRegistry()
	d := newDecider(policy.Block)
	d.block = make(chan struct{})
	var h Hold
	e := newEnder()
	r.StartHold(&h, nil, []byte("u"), []byte("d"), d, time.Hour, e)
	go r.Wake([]byte("u"), []byte("d"))
	waitUntil(t, "the re-decision to start", func() bool { return d.calls.Load() == 1 })
	go h.expire()
	select {
	case <-e.ch:
		t.Fatal("the Ender was told while the Decider ran")
	case <-time.After(100 * time.Millisecond):
	}
	close(d.block)
	e.wait(t, "interval")
	if o := h.Outcome(); o.Result != Expired {
		t.Fatalf("outcome %v, want expired (first to end)", o.Result)
	}
}

// TestRegistryConcurrent registers and removes polls of a few devices from
// many goroutines while wakes, WakeAll and the sweeps run (under -race):
// every list stays consistent and the registry ends empty.
func TestRegistryConcurrent(t *testing.T) {
	r := NewRegistry()
	r.SetRecheck(15 * time.Millisecond)
	r.Start()
	defer r.Close()
	var wg sync.WaitGroup
	devices := []string{"a", "b", "c"}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := newDecider(policy.Allow)
			for i := range 300 {
				p := new(Poll)
				r.AddPoll(p, nil)
				r.Watch(p, []byte("User"), []byte(devices[(g+i)%len(devices)]), d)
				if i%3 == 0 {
					r.Wake([]byte("user"), []byte(devices[i%len(devices)]))
				}
				if i%50 == 0 {
					r.WakeAll()
					_ = r.watched(i % sweepSlices)
				}
				r.Unwatch(p)
				r.RemovePoll(p)
				r.RemovePoll(p) // twice: no effect
			}
		}()
	}
	wg.Wait()
	if r.Len() != 0 || r.Watched() != 0 || len(r.index) != 0 || r.head != nil {
		t.Fatalf("registry not empty: %d listed, %d watched, %d keys", r.Len(), r.Watched(), len(r.index))
	}

	// Removal from the middle, the head and the tail of a device's list
	// keeps the rest.
	ps := make([]Poll, 5)
	for i := range ps {
		dev := "x"
		if i == 4 {
			dev = "y"
		}
		r.AddPoll(&ps[i], nil)
		r.Watch(&ps[i], []byte("u"), []byte(dev), newDecider(policy.Allow))
	}
	listed := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		n := 0
		var prev *entry
		for e := r.index[ps[0].e.key]; e != nil; e = e.dnext {
			if e.dprev != prev {
				t.Fatalf("broken back link")
			}
			prev = e
			n++
		}
		return n
	}
	for _, tc := range []struct {
		remove     int
		wantListed int
	}{{2, 3}, {3, 2}, {0, 1}, {1, 0}} {
		r.Unwatch(&ps[tc.remove])
		r.RemovePoll(&ps[tc.remove])
		if n := listed(); n != tc.wantListed {
			t.Fatalf("device x lists %d polls, want %d", n, tc.wantListed)
		}
	}
	if r.Watched() != 1 || len(r.index) != 1 || r.Len() != 1 {
		t.Fatalf("%d watched, %d keys, %d listed; want device y's one poll", r.Watched(), len(r.index), r.Len())
	}
	r.Unwatch(&ps[4])
	r.RemovePoll(&ps[4])

	// The sweep slices hold every watched request exactly once, in parts of
	// nearly equal size.
	for i := range 41 {
		p := new(Poll)
		r.AddPoll(p, nil)
		r.Watch(p, []byte("k"), []byte(fmt.Sprint(i%7)), newDecider(policy.Allow))
	}
	seen := map[member]int{}
	for slot := range sweepSlices {
		part := r.watched(slot)
		if len(part) < 41/sweepSlices || len(part) > 41/sweepSlices+1 {
			t.Errorf("slice %d holds %d of 41", slot, len(part))
		}
		for _, m := range part {
			seen[m]++
		}
	}
	if all := r.watched(-1); len(all) != 41 || len(seen) != 41 {
		t.Fatalf("%d watched, %d seen in the slices; want 41", len(all), len(seen))
	}
	for m, n := range seen {
		if n != 1 {
			t.Errorf("poll %p in %d slices", m, n)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
