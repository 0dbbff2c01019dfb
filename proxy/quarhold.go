package proxy

import (
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/quarantine"
)

// quarHold is a quarantined device's Ping or Sync that easgate holds itself
// for the interval the phone asked (holdQuarantined). It waits without a
// goroutine: a timer answers it when the interval ends, and it sits in the
// held registry, where a decision change for its device (a wake), a reload
// or the enforcer's sweep re-decide it (check). endHolds answers every hold
// at shutdown, and the vanish sweep drops it when the phone leaves
// (vanish.go). Whoever answers first sets done; the answer goes out on a
// goroutine of its own (answerHeld then serves the connection on), or, when
// the handler waits (ready), through it.
type quarHold struct {
	waiter
	s     *Server
	x     *exchange
	a     quarantine.Answer
	ua    []byte
	start time.Time
	h     *heldPoll     // the hijacked connection; nil when the handler waits
	ready chan struct{} // the handler (or take) waits here; nil otherwise
	conn  net.Conn      // the phone's connection
	pw    phoneWatch    // its entry in the held set (vanish.go)

	mu    sync.Mutex
	done  bool
	gone  bool // the phone left: nothing is sent
	timer *time.Timer
}

// arm starts the hold: it joins the held set and the registry, and its
// timer runs. At shutdown it is answered at once instead.
func (q *quarHold) arm() {
	if !q.s.addHeld(&q.pw, q) {
		q.end(q.a)
		return
	}
	q.s.enf.held.insert(&q.waiter)
	q.mu.Lock()
	done := q.done
	if !done {
		q.timer = time.AfterFunc(q.a.Hold, q.expire)
	}
	q.mu.Unlock()
	if done { // answered before it joined the registry (deliver's remove ran first)
		q.s.enf.held.remove(&q.waiter)
	}
}

// waitInHandler holds the request in its handler (HTTP/1.0 or a streamed
// body: the connection cannot be hijacked) and answers it there.
func (q *quarHold) waitInHandler(ctx *fasthttp.RequestCtx) bool {
	q.conn = ctx.Conn()
	q.ready = make(chan struct{}, 1)
	q.arm()
	<-q.ready
	x := q.x
	if x.en.early.HTTPStatus == statusClientGone {
		ctx.SetConnectionClose() // nobody reads the answer
	}
	return x.writeAnswer(&ctx.Response, x.en.early)
}

func (q *quarHold) phone() net.Conn { return q.conn }

// phoneGone drops the hold of a phone that left (vanish.go).
func (q *quarHold) phoneGone() {
	q.mu.Lock()
	if q.done {
		q.mu.Unlock()
		return
	}
	q.done, q.gone = true, true
	q.mu.Unlock()
	q.deliver(goneAnswer)
}

// stop answers the hold "no changes" at once (shutdown).
func (q *quarHold) stop() { q.end(q.a) }

// expire answers a.Body ("no changes" for the interval).
func (q *quarHold) expire() { q.end(q.a) }

// end answers out unless the hold was answered already.
func (q *quarHold) end(out quarantine.Answer) {
	q.mu.Lock()
	if q.done {
		q.mu.Unlock()
		return
	}
	q.done = true
	q.mu.Unlock()
	q.deliver(out)
}

// check re-decides the device (see holdQuarantined for the answers). A hold
// of a configuration that has been replaced is answered a.Body, so that the
// phone asks again under the new one, or the block answer when the new one
// blocks the device.
func (q *quarHold) check() {
	q.mu.Lock()
	if q.done {
		q.mu.Unlock()
		return
	}
	s, x := q.s, q.x
	out := q.a
	blocked := false
	if cur := s.cur.Load(); cur != x.st {
		// A new configuration: the phone asks again under it ("no
		// changes"), unless it blocks the device: then the block answer and
		// its notice go out now, as they would at the next request.
		if d := s.redecide(x, q.ua); d.Enforced && d.Action == policy.Block {
			x.dec, x.en.taken = d, "block"
			out = quarantine.Block(x.cmd, x.version)
			blocked = true
		}
	} else {
		d := s.redecide(x, q.ua)
		switch {
		case !d.Enforced || d.Action == policy.Allow:
			user, device := x.field(x.user), x.field(x.device)
			s.enf.quar.Release(user, device)
			s.log.Info().Bytes("user", user).Bytes("device_id", device).
				Msg("device released from quarantine while its long poll was held: its next Sync reaches Exchange and starts over")
			if q.a.ReleaseBody != nil {
				out.Body = q.a.ReleaseBody
			}
			out.Outcome = "released"
			x.dec, x.en.taken = d, "allow"
		case d.Action == policy.Block:
			x.dec, x.en.taken = d, "block"
			out = quarantine.Block(x.cmd, x.version)
			blocked = true
		default:
			q.mu.Unlock()
			return
		}
	}
	q.done = true
	q.mu.Unlock()
	if blocked {
		s.heldTransition(x, q.ua) // enforce.go: the notice goes out with the answer
	}
	q.deliver(out)
}

// deliver ends the hold and sends out (only the one who set done calls it).
func (q *quarHold) deliver(out quarantine.Answer) {
	q.mu.Lock()
	if q.timer != nil {
		q.timer.Stop()
	}
	q.mu.Unlock()
	s, x := q.s, q.x
	s.removeHeld(&q.pw)
	s.enf.held.remove(&q.waiter)
	s.held.Add(-1)
	s.metrics.held.Dec()
	x.upDur = time.Since(q.start)
	x.en.early = out
	if q.ready != nil {
		q.ready <- struct{}{}
		return
	}
	go s.answerHeld(q.h, nil, errAnsweredEarly)
}

// endHolds answers every quarantine hold "no changes" (shutdown).
func (h *heldRegistry) endHolds() {
	var holds []*quarHold
	h.mu.Lock()
	for _, first := range h.m {
		for w := first; w != nil; w = w.next {
			if q, ok := w.c.(*quarHold); ok {
				holds = append(holds, q)
			}
		}
	}
	h.mu.Unlock()
	for _, q := range holds {
		q.end(q.a)
	}
}
