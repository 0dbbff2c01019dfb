package proxy

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/proxy/held"
)

// Held long polls on hijacked connections.
//
// A held Ping or Sync may wait at the CAS for up to an hour. Served the
// ordinary way, the phone's connection keeps fasthttp's read buffer
// (limits.max_header_bytes, 16 KiB by default), its RequestCtx and a
// deep handler goroutine for all that time. Instead, once the pipeline has
// decided to forward a long poll, the handler hijacks the connection: once the
// few bytes fasthttp's reader may hold past the request are taken out of it,
// fasthttp returns the reader and the RequestCtx to its pools. It would also
// close the connection; the phoneConn wrapper every accepted connection gets
// swallows that one Close. A goroutine with a shallow stack
// then does the upstream round trip, writes the answer itself (the same
// status, headers and framing the ordinary path sends) and hands the
// keep-alive connection back to fasthttp with Server.ServeConn, so the
// phone's next request is served as usual. While the CAS holds it, the
// held registry (proxy/held) watches the phone's socket and shutdown may
// cut it (vanish.go). held.Conns keeps the books of the hijacked and the
// resumed connections, which fasthttp's Shutdown does not know of, and
// held.TakeBuffered takes the bytes fasthttp had read past the request.

// canHijack reports whether a held request can be answered on a hijacked
// connection: HTTP/1.1 (HTTP/1.0 framing is left to fasthttp), not HEAD, and
// a body already read (a streamed body still belongs to fasthttp's reader).
func canHijack(ctx *fasthttp.RequestCtx) bool {
	return ctx.Request.Header.IsHTTP11() && !ctx.IsHead() && !ctx.Request.IsBodyStream()
}

// heldPoll is a long poll between the handler and its hijacked connection
// (or its handler, holdInHandler).
type heldPoll struct {
	// Poll is its place in the held registry while the CAS holds it, and,
	// with Sent, the upstream.Hooks of its round trip: the registry cuts
	// it (the phone left, shutdown, a decision change) by closing the CAS
	// connection it waits on.
	held.Poll

	s          *Server
	x          *exchange
	req        *fasthttp.Request // a copy: the RequestCtx goes back to fasthttp
	deadline   time.Time
	phoneClose bool

	// quar is set when easgate holds the request itself (a quarantined
	// device's Ping or Sync): nothing goes to a CAS, and the hold's timer or
	// a decision change answers it (quarhold.go).
	quar *quarHold

	// Set by take.
	pc        *phoneConn // nil when the connection was not accepted by Serve
	c         net.Conn   // the connection as fasthttp served it
	pending   []byte     // bytes fasthttp had read past the request
	resumable bool       // the connection may be served on after the answer

	// ua is the request's User-Agent while the poll is watched (the
	// request itself is released once sent): Redecide reads it.
	ua []byte
}

// hijackLongPoll hands the request to a hijacked connection. The exchange is
// completed there, so it returns false.
func (s *Server) hijackLongPoll(ctx *fasthttp.RequestCtx, x *exchange, deadline time.Time, phoneClose bool) bool {
	h := &heldPoll{s: s, x: x, req: fasthttp.AcquireRequest(), deadline: deadline, phoneClose: phoneClose}
	ctx.Request.CopyTo(h.req)
	x.hijacked = h // the round trip lets go of h.req once it is written
	return s.hijack(ctx, h)
}

// hijack hands ctx's connection to h once the handler returns (take). The
// exchange is completed there, so it returns false.
func (s *Server) hijack(ctx *fasthttp.RequestCtx, h *heldPoll) bool {
	s.conns.Hijack()
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(h.take)
	return false
}

// take runs on fasthttp's hijack goroutine. It takes the bytes fasthttp had
// already read past the request (pipelined requests; normally none) out of
// fasthttp's reader and starts the goroutine that holds the request. When
// it returns, fasthttp puts the RequestCtx back in its pool and lets go of
// the connection without closing it (KeepHijackedConns): from then on the
// held poll owns it.
func (h *heldPoll) take(c net.Conn) {
	raw := c
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		raw = u.UnsafeConn()
	}
	h.c, h.pc = raw, asPhoneConn(raw)
	h.pending, h.resumable = held.TakeBuffered(c, raw)
	if q := h.quar; q != nil {
		q.conn = raw
		if h.pc == nil { // see below: answer before this returns
			h.resumable = false
			q.ready = make(chan struct{}, 1)
			q.arm()
			<-q.ready
			h.s.answerHeld(h, nil, errAnsweredEarly)
			return
		}
		q.arm() // no goroutine while it waits
		return
	}
	// Swept until answered; at shutdown it is cut at once and the round
	// trip sends nothing.
	h.s.registry.AddPoll(&h.Poll, tcpOf(raw))
	if h.pc == nil {
		// Not accepted by Serve (ServeConn on a foreign connection): the
		// hijacked connection dies with this handler, so hold here.
		h.resumable = false
		h.run()
		return
	}
	go h.run()
}

// run is the goroutine of a hijacked long poll. The upstream wait runs
// under few, small frames (run, roundTrip, doUpstream, Backend.DoHeld,
// heldRoundTrip and liveConn.SetReadDeadline), so that the garbage collector shrinks the
// goroutine's stack to 4 KiB while the CAS holds the request.
func (h *heldPoll) run() {
	h.answer(h.s.roundTrip(h.x, h.req, nil, h.deadline, false)) // held: no phone response to read into
}

func (h *heldPoll) answer(resp *fasthttp.Response, err error) {
	h.s.registry.RemovePoll(&h.Poll)
	if h.req != nil { // not written: the round trip failed before
		fasthttp.ReleaseRequest(h.req)
		h.req = nil
	}
	h.s.answerHeld(h, resp, err)
}

// Sent takes back the held request once the round trip has written it to
// the CAS: nothing reads it again, because a request goes to another CAS
// only when none of it was written (upstream.NothingSent). The copy then
// costs nothing while the CAS holds the poll. A request that is not h's is
// left alone.
func (h *heldPoll) Sent(req *fasthttp.Request) {
	if h.req != req {
		return
	}
	h.req = nil
	fasthttp.ReleaseRequest(req)
}

// writerPool holds the bufio.Writers the hijacked answers are written with.
var writerPool sync.Pool

// answerHeld writes the answer to the phone and serves the connection on,
// or closes it. A phone that left gets nothing (answerGone).
func (s *Server) answerHeld(h *heldPoll, resp *fasthttp.Response, upErr error) {
	if q := h.quar; q != nil {
		q.settle() // quarhold.go: the hold's outcome becomes the answer
	}
	if resp == nil && h.phoneLeft() {
		s.answerGone(h)
		return
	}
	x, c, pc := h.x, h.c, h.pc
	keep := h.resumable && !h.phoneClose && !s.closing.Load()
	out := fasthttp.AcquireResponse()
	complete := s.respond(x, out, resp, upErr, !keep)
	if out.ConnectionClose() {
		keep = false
	}
	bw, _ := writerPool.Get().(*bufio.Writer)
	if bw == nil {
		bw = bufio.NewWriterSize(c, 4096)
	} else {
		bw.Reset(c)
	}
	// The phone has to take the answer within heldAnswerWriteTimeout.
	err := c.SetWriteDeadline(time.Now().Add(heldAnswerWriteTimeout))
	if err == nil {
		// Write closes a streamed body, which completes the exchange.
		err = out.Write(bw)
		if err == nil {
			err = bw.Flush()
		}
	} else if !complete {
		_ = out.CloseBodyStream()
	}
	bw.Reset(nil)
	writerPool.Put(bw)
	fasthttp.ReleaseResponse(out)
	if err != nil {
		keep = false
	}
	if complete {
		// (A streamed body completed the exchange when it was closed: x
		// is not ours any more then.)
		if err != nil && x.errText == "" {
			x.errText = err.Error()
		}
		x.finish()
	}
	if err == nil {
		err = c.SetWriteDeadline(time.Time{})
	}
	if pc == nil || !keep || err != nil || !s.resume(c) {
		s.conns.Answered()
		if pc != nil {
			_ = pc.Close()
		}
		return
	}
	s.conns.Answered()
	pc.pending, h.pending = h.pending, nil
	_ = s.srv.ServeConn(c) // closes the connection when done
	s.conns.Done(c)
}

// resume hands c back to fasthttp's bookkeeping, unless the server is
// shutting down: it waits for the phone's next request.
func (s *Server) resume(c net.Conn) bool {
	if s.closing.Load() {
		return false
	}
	if pc := asPhoneConn(c); pc != nil {
		// Not served by anyone until ServeConn: nothing else sets these.
		pc.idle.Store(true) // waiting for the phone's next request
		if pc.s != nil {
			pc.waitNext()
		}
	}
	return s.conns.Resume(c)
}

// idleResumed reports whether a resumed connection waits for a request,
// and marks it taken (held.Conns.CloseIdle closes it then): during
// Shutdown fasthttp only closes idle connections it accepted itself, and
// would wait for these until its context ends.
func idleResumed(c net.Conn) bool {
	pc := asPhoneConn(c)
	return pc != nil && pc.idle.CompareAndSwap(true, false)
}

// phoneListener gives every accepted connection a phoneConn wrapper, and
// closes at once those its address may not open (Server.admitConn).
type phoneListener struct {
	net.Listener
	s *Server
}

func (l phoneListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var (
			pc  *phoneConn
			out net.Conn
		)
		if tc, ok := c.(*tls.Conn); ok {
			ptc := &phoneTLSConn{phoneConn: phoneConn{Conn: c}, tls: tc}
			pc, out = &ptc.phoneConn, ptc
		} else {
			pc = &phoneConn{Conn: c}
			out = pc
		}
		if l.s.admitConn(pc) { // slowclient.go
			return out, nil
		}
	}
}

// phoneConn is a phone's connection as fasthttp serves it. When it is
// served on after a held long poll, it first returns the bytes fasthttp had
// buffered past the held request.
//
// (fasthttp never closes a hijacked connection here, because the server
// sets KeepHijackedConns; the held poll closes it or serves it on.)
type phoneConn struct {
	net.Conn
	pending []byte // read only by the goroutine serving the connection
	// idle is true while fasthttp waits for the connection's next request
	// (set by connState); Shutdown closes resumed connections that are idle,
	// which fasthttp's own sweep does not know about.
	idle atomic.Bool

	// The read deadline policy (slowclient.go). s is set at accept; the
	// other fields belong to the goroutine reading the connection.
	s        *Server
	phase    uint8
	start    time.Time // when the phase started (idle: zero until its first read)
	deadline time.Time // the read deadline set on Conn
	got      int64     // body bytes read in the body phase
	// counted is true while the connection holds one of key's
	// unauthenticated slots (from accept to its first complete header).
	counted atomic.Bool
	key     netip.Addr
}

// connState is fasthttp's ConnState hook: it tracks whether a phone's
// connection is between requests. It costs one type switch and one atomic
// store per transition.
func connState(c net.Conn, state fasthttp.ConnState) {
	if pc := asPhoneConn(c); pc != nil {
		pc.idle.Store(state == fasthttp.StateNew || state == fasthttp.StateIdle)
		if state == fasthttp.StateIdle && pc.s != nil {
			pc.waitNext()
		}
	}
}

// waitNext starts the idle phase: the connection waits for its next request
// (listen.timeouts.idle, armed by its first read).
func (p *phoneConn) waitNext() {
	p.phase, p.start = phaseIdle, time.Time{}
}

func asPhoneConn(c net.Conn) *phoneConn {
	switch pc := c.(type) {
	case *phoneConn:
		return pc
	case *phoneTLSConn:
		return &pc.phoneConn
	}
	return nil
}

// Read reads the bytes carried over from a held request first, then the
// network under the deadline of the connection's phase (slowclient.go).
func (p *phoneConn) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		if len(p.pending) == 0 {
			p.pending = nil
		}
		if p.s != nil {
			p.received(n)
		}
		return n, nil
	}
	if p.s == nil || p.phase == phaseNone {
		return p.Conn.Read(b)
	}
	if err := p.arm(); err != nil {
		return 0, err
	}
	n, err := p.Conn.Read(b)
	if n > 0 {
		p.received(n)
	}
	if err != nil && isTimeout(err) {
		if p.phase == phaseBody {
			err = &clientTimeoutError{err: err}
		}
		p.timedOut()
	}
	return n, err
}

// SetReadDeadline recognises fasthttp's "header complete" call (see
// headerDoneMark) and otherwise sets the deadline asked for, which then
// stays until the connection waits for its next request.
func (p *phoneConn) SetReadDeadline(t time.Time) error {
	if p.s != nil && t.After(headerDoneFloor) {
		p.headerDone(t.Add(-headerDoneMark))
		return nil
	}
	p.phase, p.deadline = phaseNone, t
	return p.Conn.SetReadDeadline(t)
}

// SetDeadline, like SetReadDeadline, hands the read deadline to its caller
// (fasthttp clears both deadlines of a connection it hijacks).
func (p *phoneConn) SetDeadline(t time.Time) error {
	p.phase, p.deadline = phaseNone, t
	return p.Conn.SetDeadline(t)
}

// Close gives back the connection's unauthenticated slot, if it still holds
// one, and closes it.
func (p *phoneConn) Close() error {
	if p.s != nil {
		p.release()
	}
	return p.Conn.Close()
}

// SetKeepAlive and SetKeepAlivePeriod let fasthttp's TCPKeepalive reach the
// TCP connection.
func (p *phoneConn) SetKeepAlive(on bool) error {
	if tc := p.tcp(); tc != nil {
		return tc.SetKeepAlive(on)
	}
	return nil
}

func (p *phoneConn) SetKeepAlivePeriod(d time.Duration) error {
	if tc := p.tcp(); tc != nil {
		return tc.SetKeepAlivePeriod(d)
	}
	return nil
}

func (p *phoneConn) tcp() *net.TCPConn {
	c := p.Conn
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	tc, _ := c.(*net.TCPConn)
	return tc
}

// phoneTLSConn is a phoneConn over TLS: fasthttp recognises TLS connections
// (IsTLS, client certificates, ALPN) by these two methods.
type phoneTLSConn struct {
	phoneConn
	tls *tls.Conn
}

func (p *phoneTLSConn) Handshake() error {
	err := p.tls.Handshake()
	if err != nil && p.s != nil && isTimeout(err) {
		p.timedOut() // the handshake counts against listen.timeouts.header
	}
	return err
}

func (p *phoneTLSConn) ConnectionState() tls.ConnectionState { return p.tls.ConnectionState() }
