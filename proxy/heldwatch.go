package proxy

import (
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
// The held registry (proxy/held) does the watching: the poll's held.Poll is
// indexed under its device while the CAS holds it, and re-decided through
// the poll (heldPoll.Redecide) on a wake, after a reload and by the
// registry's sweep. A refusing decision closes the CAS connection the
// request waits on; the round trip fails at once, and unwatch, on the
// request's own goroutine, turns the decision the registry hands back into
// errAnsweredEarly with the answer to give. A CAS answer that has already
// arrived is delivered instead: the device's next request meets the new
// decision.

// watchHeld indexes x's long poll for watching and reports true, or
// reports false when no decision of its configuration can refuse the
// device.
//
//go:noinline
func (s *Server) watchHeld(x *exchange, req *fasthttp.Request) bool {
	h := x.hijacked
	if h == nil || s.enf == nil || !x.en.decided || x.st.enf == nil || !x.st.enf.watchHeld {
		return false
	}
	h.ua = append(h.ua[:0], req.Header.UserAgent()...)
	s.registry.Watch(&h.Poll, x.field(x.user), x.field(x.device), h)
	return true
}

// unwatch ends the watch after the round trip returned err. When the watch
// cut the request, x gets the refusing decision and the answer to give
// (x.en.early), and errAnsweredEarly is returned.
//
//go:noinline
func (s *Server) unwatch(x *exchange, err error) error {
	d := s.registry.Unwatch(&x.hijacked.Poll)
	if d == nil || err == nil {
		return err
	}
	x.dec = *d
	s.heldTransition(x, x.hijacked.ua) // enforce.go: the notice goes out with the answer
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

// Redecide re-runs the policy for the poll's device with the newest
// configuration (held.Decider). The registry calls it while the request
// waits at its CAS, when nothing else reads or writes the exchange.
func (h *heldPoll) Redecide() (policy.Decision, bool) {
	return h.s.redecide(h.x, h.ua), h.s.cur.Load() != h.x.st
}
