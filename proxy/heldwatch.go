package proxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/quarantine"
)

// Watching long polls held at a CAS.
//
// Under a policy that can refuse a device, a Ping or Sync forwarded to a CAS
// may wait there for up to an hour while the device's decision changes: a
// compliance verdict turns, a rule is added, the device reports a banned
// model. Exchange would answer such a device at once, and so does easgate:
// the held request is cut and the phone gets the block answer, or "re-sync"
// (Ping Status 7, an empty Sync) so that its next request meets the
// quarantine.
//
// A watched long poll costs no goroutine, timer or request copy of its own,
// so that it is as cheap as an unwatched one (the held-Ping memory target
// holds under an enforcing policy too). It is a heldWatch in the enforcer's
// registry under its device key. It is re-decided
//
//   - when its device's decision may have changed (the registry is woken for
//     the device, or for everyone after a reload), in the background;
//   - once every recheck interval (15 s) by the enforcer's sweep, which
//     re-decides a fifteenth of the held requests every second on at most
//     16 goroutines (a cached decision costs about a microsecond).
//
// When the decision no longer allows the device, the watch closes the CAS
// connection the request waits on; the held poll's round trip fails at once,
// and doUpstream turns that into errAnsweredEarly with the answer to give.
// A CAS answer that has already arrived is delivered instead: the device's
// next request meets the new decision.

// errCut is the round-trip error of a held request whose watch refused it
// before or while it waited at the CAS; doUpstream replaces it.
var errCut = errors.New("proxy: long poll cut after a decision change")

// heldWatch is one watched long poll. Its fields are guarded by mu; x and
// ua are read by check while the held goroutine waits, and are not touched
// by anyone else until done.
type heldWatch struct {
	waiter
	s  *Server
	x  *exchange
	ua []byte // the request's User-Agent (the request itself is released once sent)

	mu       sync.Mutex
	conn     net.Conn // the CAS connection the request waits on, between attach and detach
	detached bool     // the CAS's answer is being read: too late to cut
	done     bool     // unwatched: x may be reused
	cut      bool     // x.dec holds the refusing decision
}

// watchHeld registers x's long poll for watching, or returns nil when no
// decision of its configuration can refuse the device.
//
//go:noinline
func (s *Server) watchHeld(x *exchange, req *fasthttp.Request) *heldWatch {
	if s.enf == nil || !x.en.decided || x.st.enf == nil || !x.st.enf.watchHeld {
		return nil
	}
	w := &heldWatch{s: s, x: x, ua: append([]byte(nil), req.Header.UserAgent()...)}
	w.key = string(policy.AppendDeviceKey(nil, x.field(x.user), x.field(x.device)))
	w.c = w
	s.enf.held.insert(&w.waiter)
	return w
}

// unwatch ends the watch after the round trip returned err. When the watch
// cut the request, x gets the refusing decision and the answer to give
// (x.en.early), and errAnsweredEarly is returned.
//
//go:noinline
func (s *Server) unwatch(x *exchange, w *heldWatch, err error) error {
	s.enf.held.remove(&w.waiter)
	w.mu.Lock()
	w.done, w.conn = true, nil
	cut := w.cut
	w.mu.Unlock()
	if !cut || err == nil {
		return err
	}
	s.heldTransition(x, w.ua) // enforce.go: the notice goes out with the answer
	if x.dec.Action == policy.Block {
		x.en.taken = "block"
		x.en.early = quarantine.Block(x.cmd, x.version)
	} else {
		x.en.taken = "quarantine"
		a := quarantine.Answer{HTTPStatus: fasthttp.StatusOK, Outcome: "resync"}
		if x.cmd == eas.CmdPing {
			a.Body, _ = eas.AppendStatusBody(nil, eas.CmdPing, eas.PingStatusHierarchyChange)
		}
		x.en.early = a
	}
	return errAnsweredEarly
}

// attach records the CAS connection the request is about to be sent on. It
// reports false when the watch has already refused the request: nothing is
// sent then. A nil watch attaches everything.
func (w *heldWatch) attach(c net.Conn) bool {
	if w == nil {
		return true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cut {
		return false
	}
	w.conn = c
	return true
}

// detach ends the part of the round trip the watch may cut, and reports
// whether it did (the connection is closed then).
func (w *heldWatch) detach() (cut bool) {
	if w == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.detached, w.conn = true, nil
	return w.cut
}

// check re-decides the device and cuts the request when the decision no
// longer allows it. It holds mu while it decides, so that unwatch (and the
// reuse of x) waits for it.
func (w *heldWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done || w.cut || w.detached {
		return
	}
	d := w.s.redecide(w.x, w.ua)
	if !d.Enforced || d.Action == policy.Allow {
		return
	}
	// The held goroutine reads x.dec only after unwatch has taken mu.
	w.cut, w.x.dec = true, d
	if w.conn != nil {
		_ = w.conn.Close()
	}
}

// waiter is one held request in the registry.
type waiter struct {
	key        string
	prev, next *waiter       // the device's waiters
	c          checker       // the held request: *heldWatch or *quarHold (quarhold.go)
	reg        *heldRegistry // set while registered
	slot       uint8         // the sweep slice it is re-decided in
}

// checker re-decides a held request: a long poll held at a CAS
// (*heldWatch) or a quarantined device's request held by easgate
// (*quarHold).
type checker interface{ check() }

// heldRegistry lists the requests each device has held (by easgate or at a
// CAS), so that a decision change answers them at once. Each device's
// waiters form a list: a registration costs one map entry per device, not a
// map.
type heldRegistry struct {
	mu  sync.Mutex
	m   map[string]*waiter // the first waiter of each device key
	n   int
	seq uint32 // numbers the waiters into sweep slices
}

// sweepSlices is how many parts the sweep re-decides the held requests in,
// one part every recheck interval ÷ sweepSlices (1 s by default): each
// request is re-decided once per interval, and the work is spread over it
// instead of coming as one burst (9,000 decisions at once would delay the
// Syncs of that moment).
const sweepSlices = 15

func (h *heldRegistry) insert(w *waiter) {
	h.mu.Lock()
	if h.m == nil {
		h.m = map[string]*waiter{}
	}
	if first := h.m[w.key]; first != nil {
		w.next, first.prev = first, w
	}
	h.m[w.key] = w
	w.reg = h
	w.slot = uint8(h.seq % sweepSlices)
	h.seq++
	h.n++
	h.mu.Unlock()
}

func (h *heldRegistry) remove(w *waiter) {
	h.mu.Lock()
	if w.reg == h {
		if w.prev != nil {
			w.prev.next = w.next
		} else if w.next != nil {
			h.m[w.key] = w.next
		} else {
			delete(h.m, w.key)
		}
		if w.next != nil {
			w.next.prev = w.prev
		}
		w.prev, w.next, w.reg = nil, nil, nil
		h.n--
	}
	h.mu.Unlock()
}

// wake tells every request the device holds to re-decide.
func (h *heldRegistry) wake(user, device []byte) {
	var buf [eas.MaxUserLen + 1 + eas.MaxDeviceIDLen]byte // the longest key: no allocation
	k := policy.AppendDeviceKey(buf[:0], user, device)
	var checks []checker
	h.mu.Lock()
	for w := h.m[string(k)]; w != nil; w = w.next {
		checks = append(checks, w.c)
	}
	h.mu.Unlock()
	checkAll(checks)
}

// wakeAll makes every held request re-decide.
func (h *heldRegistry) wakeAll() { checkAll(h.checkers(-1)) }

// checkAll re-decides held requests in the background: the waker (a
// request, a reload) does not wait for the decisions.
func checkAll(checks []checker) {
	if len(checks) > 0 {
		go runChecks(checks)
	}
}

// checkWorkers bounds the decisions one sweep or wake runs at once. A
// decision is mostly a cache hit (about a microsecond), but one whose
// verdict is not cached waits for the compliance source (up to
// compliance.cache.lookup_timeout): in parallel, an unreachable source
// delays a sweep of 9,000 polls by 9,000 ÷ 16 lookup timeouts, not 9,000.
const checkWorkers = 16

// runChecks re-decides every held request in checks and returns when all
// are done.
func runChecks(checks []checker) {
	if len(checks) <= 1 {
		for _, w := range checks {
			w.check()
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(checkWorkers, len(checks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(checks)); i = next.Add(1) - 1 {
				checks[i].check()
			}
		}()
	}
	wg.Wait()
}

// checkers returns the held requests registered now, all of them (slot
// -1) or those of one sweep slice.
func (h *heldRegistry) checkers(slot int) []checker {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.n
	if slot >= 0 {
		n = n/sweepSlices + 1
	}
	out := make([]checker, 0, n)
	for _, first := range h.m {
		for w := first; w != nil; w = w.next {
			if slot < 0 || int(w.slot) == slot {
				out = append(out, w.c)
			}
		}
	}
	return out
}

func (h *heldRegistry) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// sweepLoop re-decides every held request each recheck interval, a slice
// at a time, so that a verdict that changed without a wake (a compliance
// source's answer) reaches a held poll within that time.
func (en *enforcer) sweepLoop() {
	defer en.wg.Done()
	tick := func() time.Duration { return time.Duration(en.recheck.Load()) / sweepSlices }
	t := time.NewTimer(tick())
	defer t.Stop()
	slot := 0
	for {
		select {
		case <-en.stop:
			return
		case <-en.recheckSet:
		case <-t.C:
			runChecks(en.held.checkers(slot))
			slot = (slot + 1) % sweepSlices
		}
		t.Reset(tick())
	}
}

// setRecheck changes how often held requests re-decide; the sweep takes
// the new interval at once.
func (en *enforcer) setRecheck(d time.Duration) {
	en.recheck.Store(int64(d))
	select {
	case en.recheckSet <- struct{}{}:
	default:
	}
}
