package proxy

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// The per-request record: what the pipeline (pipeline.go) learns about a
// request, kept from its start to the end of its answer, and what finish
// logs.

// exchange is the small per-request record kept from the start of a request
// to the end of its response (which may be after the handler returned, while
// the body streams). It holds copies of the few request fields the access log
// needs, so the big eas.Request can go back to its pool before the request
// is held at the CAS.
type exchange struct {
	s     *Server
	st    *state
	start time.Time

	remote  net.Addr
	route   route
	cmd     eas.Command
	version eas.Version
	parsed  bool
	client  eas.Client      // Model cleared: it would alias the request
	dec     policy.Decision // the access policy's decision (enforce.go)
	en      exEnforce       // enforcement state of the request (enforce.go)
	auth    exAuth          // authentication state of the request (authn.go)
	sc      *exScratch      // what only the inspection needs (scratch.go); nil after it

	// user, device id and device type, copied into buf at fixed offsets
	// (setUser replaces the user the phone claimed with the canonical
	// authenticated identity).
	buf                  [exUserOff + eas.MaxUserLen]byte
	user, device, devTyp [2]uint16 // offset, length in buf

	hold       int // seconds asked for (-1 unknown), 0 for ordinary requests
	held       bool
	hijacked   *heldPoll // the long poll holding this request (hijack.go)
	backend    *upstream.Backend
	upStart    time.Time
	upDur      time.Duration
	status     int
	bytesIn    int64
	bytesOut   int64
	errText    string
	reason     string // why easgate answered itself
	finishOnce bool
	body       upstreamBody  // the streamed answer; lives in the pooled exchange
	upBody     io.ReadCloser // an ordinary answer's body to stream (doUpstream to respond)
}

var exchangePool = sync.Pool{New: func() any { return new(exchange) }}

var easRequestPool = sync.Pool{New: func() any { return new(eas.Request) }}

func acquireExchange(s *Server, st *state, ctx *fasthttp.RequestCtx) *exchange {
	x := exchangePool.Get().(*exchange)
	*x = exchange{s: s, st: st, start: time.Now(), remote: ctx.RemoteAddr()}
	return x
}

// Offsets of the fields in exchange.buf.
const (
	exDeviceOff = 0
	exTypeOff   = exDeviceOff + eas.MaxDeviceIDLen
	exUserOff   = exTypeOff + eas.MaxDeviceTypeLen
)

func (x *exchange) setField(dst *[2]uint16, v []byte, off, limit int) {
	n := copy(x.buf[off:off+limit], v)
	dst[0], dst[1] = uint16(off), uint16(n)
}

// setUser records the user the request is decided for. A name longer
// than eas.MaxUserLen is cut (only a claimed name can be: the canonical
// identity never is).
func (x *exchange) setUser(v []byte) { x.setField(&x.user, v, exUserOff, eas.MaxUserLen) }

func (x *exchange) field(f [2]uint16) []byte { return x.buf[f[0] : f[0]+f[1]] }

// identify sets x.client from the request and the device's
// DeviceInformation (nil when unknown).
func (x *exchange) identify(r *eas.Request, info *eas.DeviceInfo) {
	x.client = x.st.ident.Identify(r.UserAgent, r.DeviceType, info)
	x.client.Model = nil
}

// record copies what the log needs from a parsed request. The user is the
// one the request claims until authenticate replaces it with the
// canonical authenticated identity.
func (x *exchange) record(r *eas.Request) {
	x.cmd, x.version, x.parsed = r.Command, r.Version, true
	x.setUser(r.EffectiveUser())
	x.setField(&x.device, r.DeviceID, exDeviceOff, eas.MaxDeviceIDLen)
	x.setField(&x.devTyp, r.DeviceType, exTypeOff, eas.MaxDeviceTypeLen)
}

// finish writes the access-log line and the metrics and returns the
// exchange and the state reference.
func (x *exchange) finish() {
	if x.finishOnce {
		return
	}
	x.finishOnce = true
	s := x.s
	now := time.Now()
	total := now.Sub(x.start)
	ci := commandIndex(x)
	decision := x.decisionLabel() // enforce.go
	if refusal(x.reason) {
		s.metrics.reject(x.reason)
	}
	s.metrics.request(ci, decision, x.status)
	if x.hold == 0 {
		s.metrics.requestDuration(ci, total.Seconds())
	}
	x.st.writeAccess(x, ci, decision, now, total)
	st := x.st
	*x = exchange{}
	exchangePool.Put(x)
	s.leave(st)
}

// commandIndex is the command of the access log and the metrics, as an
// index into cmdLabelNames (metrics.go): the EAS command's name, or
// Autodiscover, none (no route) or invalid.
func commandIndex(x *exchange) int {
	switch x.route {
	case routeAutodiscover:
		return cmdLabelAutodiscover
	case routeNone:
		return cmdLabelNone
	}
	if !x.parsed && x.cmd != eas.CmdOptions {
		return cmdLabelInvalid
	}
	return int(x.cmd)
}
