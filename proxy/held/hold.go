package held

import (
	"net"
	"sync"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
)

// Hold is a request easgate holds itself (a quarantined device's Ping or
// Sync) for the interval the phone asked. It waits without a goroutine: a
// timer ends it when the interval is over, and it is listed and indexed in
// the registry, where a decision change for its device (a wake), a reload
// (WakeAll) or the re-decision sweep re-decide it, Stop ends it at
// shutdown and the vanish sweep when the phone leaves. Whoever ends it
// first decides the Outcome; the Ender is then told, once.
//
// The caller embeds a Hold (zero value) in what it keeps for the request
// and starts it with StartHold.
type Hold struct {
	e     entry
	d     Decider
	end   Ender
	start time.Time

	mu    sync.Mutex
	done  bool
	out   Outcome
	timer *time.Timer

	// dmu is held for a whole re-decision: the end waits for one under
	// way, so that d is never called once the Ender has been told.
	dmu sync.Mutex
}

// Result is how a Hold ended.
type Result uint8

const (
	Expired  Result = iota // the interval ended: "no changes"
	Stopped                // Stop (shutdown): "no changes", at once
	Renewed                // the configuration was replaced: "no changes", so that the phone asks again under the new one
	Released               // the device is allowed now (Outcome.Decision)
	Blocked                // the device is blocked now (Outcome.Decision)
	Left                   // the phone left: nothing is sent
)

var resultNames = [...]string{"expired", "stopped", "renewed", "released", "blocked", "left"}

func (r Result) String() string { return resultNames[r] }

// Outcome is how a Hold ended, for the caller to answer.
type Outcome struct {
	Result   Result
	Decision policy.Decision // the new decision (Released, Blocked)
	Held     time.Duration   // from StartHold to the end
}

// Ender is told that a Hold ended. HoldEnded is called exactly once, on the
// goroutine that ended the hold (its timer's, a sweep's, Stop's, or
// StartHold's own when the registry is stopping), after the hold left the
// registry; Outcome then says how. It must not block.
type Ender interface {
	HoldEnded()
}

// StartHold holds a request for d, listed with its phone's socket (nil:
// never swept) and indexed under its device (user, device) with its
// Decider. When the registry is stopping it ends the hold at once
// (Stopped).
func (r *Registry) StartHold(h *Hold, phone *net.TCPConn, user, device []byte, dec Decider, d time.Duration, e Ender) {
	h.d, h.end, h.start = dec, e, time.Now()
	if !r.list(&h.e, h, phone) {
		h.finish(Outcome{Result: Stopped})
		return
	}
	r.insert(&h.e, user, device)
	h.mu.Lock()
	done := h.done
	if !done {
		h.timer = time.AfterFunc(d, h.expire)
	}
	h.mu.Unlock()
	if done { // ended before it was indexed (deliver's remove ran first)
		r.remove(&h.e)
	}
}

// Outcome is how the hold ended; valid once the Ender was told.
func (h *Hold) Outcome() Outcome {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.out
}

// Left reports whether the hold ended because its phone left.
func (h *Hold) Left() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.done && h.out.Result == Left
}

func (h *Hold) expire()    { h.finish(Outcome{Result: Expired}) }
func (h *Hold) stop()      { h.finish(Outcome{Result: Stopped}) }
func (h *Hold) phoneGone() { h.finish(Outcome{Result: Left}) }

// finish ends the hold with out unless it has ended already.
func (h *Hold) finish(out Outcome) {
	if !h.settle(out) {
		return
	}
	h.dmu.Lock() // a re-decision under way ends first
	defer h.dmu.Unlock()
	h.deliver()
}

// settle records out as the outcome if the hold has not ended, and reports
// whether it did.
func (h *Hold) settle(out Outcome) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return false
	}
	h.done = true
	out.Held = time.Since(h.start)
	h.out = out
	if h.timer != nil {
		h.timer.Stop()
	}
	return true
}

// deliver takes the hold out of the registry and tells the Ender (only the
// one who settled it calls it).
func (h *Hold) deliver() {
	if r := h.e.r; r != nil {
		r.unlist(&h.e)
		r.remove(&h.e)
	}
	h.end.HoldEnded()
}

// check re-decides the device: a released or blocked device is answered
// at once; a hold of a configuration that has been replaced is renewed
// ("no changes", so that the phone asks again under the new one) unless the
// new one blocks the device.
func (h *Hold) check() {
	h.dmu.Lock()
	h.mu.Lock()
	done := h.done
	h.mu.Unlock()
	if done {
		h.dmu.Unlock()
		return
	}
	d, replaced := h.d.Redecide()
	var out Outcome
	switch {
	case d.Enforced && d.Action == policy.Block:
		out = Outcome{Result: Blocked, Decision: d}
	case replaced:
		out = Outcome{Result: Renewed}
	case !d.Enforced || d.Action == policy.Allow:
		out = Outcome{Result: Released, Decision: d}
	default: // still quarantined
		h.dmu.Unlock()
		return
	}
	settled := h.settle(out)
	h.dmu.Unlock()
	if settled {
		h.deliver()
	}
}

// ExpireHolds ends the device's holds now, as if their intervals had ended
// (Expired), and returns how many there were. Its polls at a CAS are left
// alone.
func (r *Registry) ExpireHolds(user, device []byte) int {
	var buf [eas.MaxUserLen + 1 + eas.MaxDeviceIDLen]byte
	k := policy.AppendDeviceKey(buf[:0], user, device)
	var holds []*Hold
	r.mu.Lock()
	for e := r.index[string(k)]; e != nil; e = e.dnext {
		if h, ok := e.on.(*Hold); ok {
			holds = append(holds, h)
		}
	}
	r.mu.Unlock()
	for _, h := range holds {
		h.expire()
	}
	return len(holds)
}
