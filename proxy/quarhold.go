package proxy

import (
	"net"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/held"
	"github.com/easgate/easgate/proxy/quarantine"
)

// quarHold is a quarantined device's Ping or Sync that easgate holds itself
// for the interval the phone asked (holdQuarantined). The waiting is a
// held.Hold: no goroutine, a timer, and a place in the held registry, which
// re-decides it (Redecide) and ends it on a decision change, a reload,
// shutdown or the phone's leaving. When it ends (HoldEnded), the answer
// goes out on a goroutine of its own (answerHeld then serves the connection
// on), or, when the handler waits (ready), through it; either turns the
// hold's Outcome into the answer (settle), so that only the goroutine that
// answers writes the exchange.
type quarHold struct {
	held.Hold
	s     *Server
	x     *exchange
	a     quarantine.Answer
	ua    []byte
	h     *heldPoll     // the hijacked connection; nil when the handler waits
	ready chan struct{} // the handler (or take) waits here; nil otherwise
	conn  net.Conn      // the phone's connection
}

// arm starts the hold. At shutdown it ends at once.
func (q *quarHold) arm() {
	x := q.x
	q.s.registry.StartHold(&q.Hold, tcpOf(q.conn), x.field(x.user), x.field(x.device), q, q.a.Hold, q)
}

// Redecide re-runs the policy for the held device with the newest
// configuration (held.Decider); replaced reports that the hold's own
// configuration has been swapped out.
func (q *quarHold) Redecide() (policy.Decision, bool) {
	return q.s.redecide(q.x, q.ua), q.s.cur.Load() != q.x.st
}

// HoldEnded lowers the held gauges and hands the answer to the goroutine
// that writes it (held.Ender).
func (q *quarHold) HoldEnded() {
	s := q.s
	s.held.Add(-1)
	s.metrics.held.Dec()
	if q.ready != nil {
		q.ready <- struct{}{}
		return
	}
	go s.answerHeld(q.h, nil, errAnsweredEarly)
}

// settle turns the ended hold's outcome into x's answer (x.en.early) and
// decision. It runs on the goroutine that answers.
func (q *quarHold) settle() {
	s, x := q.s, q.x
	o := q.Outcome()
	x.upDur = o.Held
	out := q.a // "no changes": the interval ended, shutdown, a new configuration
	switch o.Result {
	case held.Left:
		out = goneAnswer
	case held.Released:
		user, device := x.field(x.user), x.field(x.device)
		s.enf.quar.Release(user, device)
		s.log.Info().Bytes("user", user).Bytes("device_id", device).
			Msg("device released from quarantine while its long poll was held: its next Sync reaches Exchange and starts over")
		if q.a.ReleaseBody != nil {
			out.Body = q.a.ReleaseBody
		}
		out.Outcome = "released"
		x.dec, x.en.taken = o.Decision, "allow"
	case held.Blocked:
		x.dec, x.en.taken = o.Decision, "block"
		out = quarantine.Block(x.cmd, x.version)
		s.heldTransition(x, q.ua) // enforce.go: the notice goes out with the answer
	}
	x.en.early = out
}

// waitInHandler holds the request in its handler (HTTP/1.0 or a streamed
// body: the connection cannot be hijacked) and answers it there.
func (q *quarHold) waitInHandler(ctx *fasthttp.RequestCtx) bool {
	q.conn = ctx.Conn()
	q.ready = make(chan struct{}, 1)
	q.arm()
	<-q.ready
	q.settle()
	x := q.x
	if x.en.early.HTTPStatus == statusClientGone {
		ctx.SetConnectionClose() // nobody reads the answer
	}
	return x.writeAnswer(&ctx.Response, x.en.early)
}
