package proxy

import (
	"crypto/tls"
	"net"

	"github.com/easgate/easgate/proxy/held"
	"github.com/easgate/easgate/proxy/quarantine"
)

// Vanished phones and shutdown of held requests: what proxy does with the
// cuts and ends of proxy/held.
//
// A phone that leaves while its Ping or Sync is held closes its connection;
// the held registry's vanish sweep notices within seconds and cuts the
// request (held.ErrGone) or ends its hold (held.Left). easgate then frees it
// as nginx does (proxy_ignore_client_abort off): the phone is sent nothing,
// its connection is closed, the gauges go down, and the access log says
// status 499, why client_gone. At shutdown the registry's Stop cuts every
// held request (held.ErrStopping, held.Stopped), which is answered as if
// its heartbeat had ended (answerCutLongPoll).

// statusClientGone is the status the access log records for a held request
// whose phone left (nginx's 499); the phone is sent nothing.
const statusClientGone = 499

// errClientGone is the round-trip error of a held request whose phone
// left (the registry cut it).
var errClientGone = held.ErrGone

// goneAnswer ends a quarantine hold whose phone left: nothing is sent.
var goneAnswer = quarantine.Answer{HTTPStatus: statusClientGone, Outcome: "client_gone"}

// tcpOf is the TCP connection under a phone's connection, or nil (a
// connection that is not TCP, such as a test's pipe, is never swept).
func tcpOf(c net.Conn) *net.TCPConn {
	switch pc := c.(type) {
	case *phoneConn:
		return pc.tcp()
	case *phoneTLSConn:
		return pc.tcp()
	case *tls.Conn:
		c = pc.NetConn()
	}
	tc, _ := c.(*net.TCPConn)
	return tc
}

// phoneLeft reports whether the request was freed because its phone left
// (nil h: no).
func (h *heldPoll) phoneLeft() bool {
	if h == nil {
		return false
	}
	if q := h.quar; q != nil {
		return q.Left()
	}
	return h.Cut() == held.Gone
}

// holdInHandler registers a long poll that could not be hijacked (HTTP/1.0,
// a streamed body) and is held by its handler: it is swept and stopped
// like the others. The caller calls releaseHeld when the round trip is
// over.
func (s *Server) holdInHandler(x *exchange, c net.Conn) {
	h := &heldPoll{s: s, x: x, c: c}
	x.hijacked = h // the round trip attaches the CAS connection to it
	s.registry.AddPoll(&h.Poll, tcpOf(c))
}

// releaseHeld takes a long poll held by its handler out of the registry.
func (s *Server) releaseHeld(x *exchange) {
	if h := x.hijacked; h != nil {
		s.registry.RemovePoll(&h.Poll)
	}
}

// answerGone completes the exchange of a held request whose phone left:
// nothing is written, the phone's connection is closed.
func (s *Server) answerGone(h *heldPoll) {
	x := h.x
	x.status, x.reason = statusClientGone, "client_gone"
	x.bytesOut = 0
	if x.errText == "" {
		x.errText = errClientGone.Error()
	}
	x.finish()
	s.conns.Answered()
	if h.pc != nil { // (as in answerHeld: a foreign connection is its server's)
		_ = h.pc.Close()
	}
}

// refusal reports whether easgate's own answer with this reason refused
// the request (easgate_rejected_requests_total): a long poll cut by a
// reload or shutdown, or whose phone left, was not refused.
func refusal(reason string) bool {
	return reason != "" && reason != "long_poll_cut" && reason != "client_gone"
}
