package held

import (
	"errors"
	"net"
	"sync"

	"github.com/easgate/easgate/policy"
)

// Cut says why a held request's wait at its CAS was cut.
type Cut uint8

const (
	NotCut   Cut = iota
	Refused      // the device's decision no longer allows it (a watched Poll)
	Gone         // the phone left: nothing is sent to it
	Stopping     // shutdown: answer as if the heartbeat had ended
)

// The errors of a cut Poll's round trip (Poll.Detach).
var (
	ErrRefused  = errors.New("proxy: long poll cut after a decision change")
	ErrGone     = errors.New("proxy: the phone closed its connection while its request was held")
	ErrStopping = errors.New("proxy: long poll cut: easgate is shutting down")
)

// Err is the round-trip error of a cut (nil for NotCut).
func (c Cut) Err() error {
	switch c {
	case Refused:
		return ErrRefused
	case Gone:
		return ErrGone
	case Stopping:
		return ErrStopping
	}
	return nil
}

// Poll is a long poll held at a CAS, between the registry and the round
// trip that waits on it. The caller embeds it (zero value) in what it keeps
// for the request anyway, lists it with AddPoll while it is held, and
// passes it to the round trip: Attach and Detach are the cut points of
// upstream.Hooks. The vanish sweep (Gone), Stop (Stopping) and, when the
// poll is watched, a refusing re-decision (Refused) cut it by closing the
// CAS connection it waits on; the round trip then fails with Cut.Err. The
// first cut stands, except that the phone's leaving and shutdown explain a
// failure before a decision change does. An answer whose header has
// arrived (Detach) is never cut.
type Poll struct {
	e entry

	mu       sync.Mutex
	conn     net.Conn // the CAS connection the request waits on, between Attach and Detach
	detached bool     // the CAS's answer is being read: too late to cut
	cut      Cut
	refusal  *policy.Decision // the decision that refused it (cut == Refused)

	// The watch: d re-decides while watched. dmu is held for a whole
	// re-decision, so that Unwatch waits for one under way.
	dmu       sync.Mutex
	d         Decider
	unwatched bool
}

// AddPoll lists p, whose phone's socket is phone (nil: never swept), as
// held. It reports false when the registry is stopping: p is then cut
// (Stopping) and its round trip sends nothing.
func (r *Registry) AddPoll(p *Poll, phone *net.TCPConn) bool {
	if !r.list(&p.e, p, phone) {
		p.stop()
		return false
	}
	return true
}

// RemovePoll takes p off the list once its round trip is over (a watched
// poll is unwatched first). Neither the vanish sweep nor Stop sees it
// afterwards.
func (r *Registry) RemovePoll(p *Poll) {
	r.unlist(&p.e)
}

// Watch indexes p under its device (user, device), so that a decision
// change re-decides it with d; a refusing decision cuts it. Call it before
// the round trip, and Unwatch after it, on the request's goroutine; p must
// have been added (AddPoll) and not removed yet.
func (r *Registry) Watch(p *Poll, user, device []byte, d Decider) {
	p.dmu.Lock()
	p.d, p.unwatched = d, false
	p.dmu.Unlock()
	r.insert(&p.e, user, device)
}

// Unwatch ends p's watch: d is not called again once it returns (it waits
// for a re-decision under way). It returns the decision that refused the
// request when the watch cut it, nil otherwise.
func (r *Registry) Unwatch(p *Poll) (refusal *policy.Decision) {
	r.remove(&p.e)
	p.dmu.Lock()
	p.d, p.unwatched = nil, true
	p.dmu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut == Refused {
		return p.refusal
	}
	return nil
}

// Attach records the CAS connection the request is about to be sent on
// (upstream.Hooks). It reports false when the request was cut already:
// nothing is sent then.
func (p *Poll) Attach(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut != NotCut {
		return false
	}
	p.conn, p.detached = c, false
	return true
}

// Detach ends the part of the round trip that may be cut
// (upstream.Hooks) and returns the error of a cut, nil when there was
// none.
func (p *Poll) Detach() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.detached, p.conn = true, nil
	return p.cut.Err()
}

// Cut reports why the poll was cut (NotCut: it was not).
func (p *Poll) Cut() Cut {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// cutWith cuts the request for why unless its answer is being read. Gone
// and Stopping replace Refused: they explain the failure better.
func (p *Poll) cutWith(why Cut, refusal *policy.Decision) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.detached || p.cut == why || p.cut != NotCut && !(p.cut == Refused && why != Refused) {
		return false
	}
	p.cut = why
	if refusal != nil {
		p.refusal = refusal
	}
	if p.conn != nil {
		_ = p.conn.Close()
	}
	return true
}

func (p *Poll) phoneGone() { p.cutWith(Gone, nil) }
func (p *Poll) stop()      { p.cutWith(Stopping, nil) }

// check re-decides the device and cuts the request when the decision no
// longer allows it.
func (p *Poll) check() {
	p.dmu.Lock()
	defer p.dmu.Unlock()
	if p.d == nil || p.unwatched {
		return
	}
	p.mu.Lock()
	late := p.detached || p.cut != NotCut
	p.mu.Unlock()
	if late {
		return
	}
	d, _ := p.d.Redecide()
	if !d.Enforced || d.Action == policy.Allow {
		return
	}
	p.cutWith(Refused, &d)
}
