package upstream

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// The round trip of a held long poll.
//
// fasthttp's transport keeps the request until the answer has been read,
// which for a held Ping is the whole heartbeat interval. heldRoundTrip does
// the transport's work with the long-poll client's own connection pool and
// buffers, in three steps, so that a hijacked poll can let go of its copy
// of the request (a fasthttp.Request and its buffers, about 2 KiB) once the
// request is on the wire:
//
//  1. write the request (heldWrite), then hand it back (Hooks.Sent);
//  2. wait for the first byte of the answer without a read buffer
//     (liveConn.SetReadDeadline);
//  3. read the answer's header and stream its body (heldRead, heldBody): the
//     connection goes back to the pool, or is closed, when the body is
//     closed, as with fasthttp's streamed bodies.

// Hooks follow one held request through DoHeld, so that its owner can let
// go of the request once it is written and cut the wait at the CAS (the
// phone left, shutdown, a decision change) by closing the connection. DoHeld
// calls them on its own goroutine, in this order:
//
//   - Attach, with the CAS connection, just before the request is written.
//     false refuses: nothing is sent, and DoHeld returns Detach's error.
//     From Attach on, the owner may close the connection from any goroutine
//     to cut the request; DoHeld then fails at once.
//   - Sent, with the request, once it is written: DoHeld does not touch it
//     again (a held request goes to another CAS only when nothing of it was
//     sent, see NothingSent).
//   - Detach, once the answer's header is read or the round trip failed:
//     from then on the owner must not close the connection. It returns the
//     error that explains a cut (nil when there was none); DoHeld returns
//     that error instead of its own, and drops an answer that arrived just
//     as the cut came.
//
// Hooks must not block: DoHeld's frame is on the stack of every held
// request.
type Hooks interface {
	Attach(c net.Conn) bool
	Sent(req *fasthttp.Request)
	Detach() error
}

// DoHeld is Do for a held long poll (Ping or Sync with a heartbeat), on
// the backend's long-poll client: while the CAS holds the request it costs
// no read buffer and no response, and the request can be let go of once it
// is written (h.Sent). The answer's body streams; closing it hands the
// connection back to the pool. h may be nil. Errors are those of Do, or
// h's Detach error after a cut.
//
// It is HostClient.DoDeadline without three of its frames (Do, do,
// doNonNilReqResp), which together take more stack than the rest of the
// wait: it does their part of the work for the one attempt easgate makes
// per CAS (MaxIdemponentCallAttempts is 1) and does the round trip itself
// (heldRoundTrip). The answer (its body streaming) is nil when err is not.
func (b *Backend) DoHeld(req *fasthttp.Request, deadline time.Time, h Hooks) (*fasthttp.Response, error) {
	if time.Until(deadline) <= 0 {
		return nil, fasthttp.ErrTimeout
	}
	hc := b.hcHold
	prepareHeld(hc, req)
	resp, err := heldRoundTrip(hc, req, deadline, h)
	if err != nil {
		return nil, heldError(err)
	}
	return resp, nil
}

// prepareHeld does what HostClient.doNonNilReqResp does to the request
// before the round trip, for the long-poll clients' settings.
//
//go:noinline
func prepareHeld(hc *fasthttp.HostClient, req *fasthttp.Request) {
	req.URI().DisablePathNormalizing = hc.DisablePathNormalizing
	if len(req.Header.UserAgent()) == 0 {
		req.Header.SetUserAgent(hc.Name)
	}
}

// heldError maps transport errors as HostClient.Do does, and cuts the
// response bytes fasthttp quotes in a header parse error (HostClient's
// SecureErrorLogMessage, which only Do applies): they may carry cookies.
// fasthttp quotes them with %q ("invalid response status code %q: response
// %q", "buffer size=%d, contents: %q"), so the message ends before its first
// quote or buffer report.
//
//go:noinline
func heldError(err error) error {
	if errors.Is(err, io.EOF) {
		return fasthttp.ErrConnectionClosed
	}
	msg := err.Error()
	cut := len(msg)
	for _, mark := range [...]string{`"`, ". Buffer size=", ": buffer size="} {
		if i := strings.Index(msg, mark); i >= 0 && i < cut {
			cut = i
		}
	}
	if cut < len(msg) {
		return &quotedError{msg: strings.TrimRight(msg[:cut], " ,:"), err: err}
	}
	return err
}

// quotedError is an upstream error whose message had response bytes cut.
type quotedError struct {
	msg string
	err error
}

func (e *quotedError) Error() string { return e.msg }
func (e *quotedError) Unwrap() error { return e.err }

// heldRoundTrip sends req on a connection of hc and returns the answer,
// whose body streams. The response is taken from fasthttp's pool only once
// the answer's header has arrived: a poll the CAS holds does not keep one.
// h (see Hooks), when not nil, is told when the request is written and may
// cut it while it waits at the CAS by closing the connection. Errors are
// those of fasthttp's transport: the dialler's and liveConn's
// (ErrStaleConn), a write timeout as fasthttp.ErrTimeout, and the answer's
// read errors as they are.
func heldRoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, deadline time.Time, h Hooks) (*fasthttp.Response, error) {
	reqClose := req.ConnectionClose()
	cc, err := hc.AcquireConn(time.Until(deadline), reqClose)
	if err != nil {
		return nil, err
	}
	conn := cc.Conn()
	if h != nil && !h.Attach(conn) { // refused (cut before sending): nothing is sent
		hc.ReleaseConn(cc)
		return nil, refusedError(h)
	}
	skipBody := req.Header.IsHead()
	if err := heldWrite(hc, conn, req, Earlier(deadline, hc.WriteTimeout)); err != nil {
		if cutErr := detach(h); cutErr != nil {
			err = cutErr
		}
		hc.CloseConn(cc)
		return nil, err
	}
	if h != nil {
		h.Sent(req)
	}
	// On a long-poll connection this waits for the answer's first byte.
	if err := conn.SetReadDeadline(Earlier(deadline, hc.ReadTimeout)); err != nil {
		if cutErr := detach(h); cutErr != nil {
			err = cutErr
		}
		hc.CloseConn(cc)
		return nil, err
	}
	in, br, err := heldRead(hc, conn, skipBody)
	if cutErr := detach(h); cutErr != nil { // the cut explains the failure, or drops an answer that came just then
		if err == nil {
			fasthttp.ReleaseResponse(in)
			hc.ReleaseReader(br)
		}
		err = cutErr
	}
	if err != nil {
		hc.CloseConn(cc)
		return nil, err
	}
	resp := fasthttp.AcquireResponse()
	resp.ParseNetConn(conn)
	in.Header.CopyTo(&resp.Header)
	keep := !reqClose && !in.ConnectionClose()
	if in.BodyStream() == nil { // no body (204, 304, HEAD)
		fasthttp.ReleaseResponse(in)
		hc.ReleaseReader(br)
		if keep {
			hc.ReleaseConn(cc)
		} else {
			hc.CloseConn(cc)
		}
		return resp, nil
	}
	b := &heldBody{in: in, br: br, hc: hc, keep: keep, eof: in.Header.ContentLength() == 0}
	b.release = func(pool bool) {
		if pool {
			hc.ReleaseConn(cc)
		} else {
			hc.CloseConn(cc)
		}
	}
	resp.SetBodyStream(b, in.Header.ContentLength())
	return resp, nil
}

// ErrRefused is DoHeld's error when its hooks refused the request at Attach
// without saying why (Detach returned nil): nothing was sent.
var ErrRefused = errors.New("upstream: held request refused before it was sent")

// refusedError is the error of a request the hooks refused at Attach.
func refusedError(h Hooks) error {
	if err := h.Detach(); err != nil {
		return err
	}
	return ErrRefused
}

// detach is h.Detach for a nil h too.
func detach(h Hooks) error {
	if h == nil {
		return nil
	}
	return h.Detach()
}

// Earlier is deadline, or now+timeout when timeout is set and ends sooner
// (as fasthttp's transport applies ReadTimeout and WriteTimeout).
func Earlier(deadline time.Time, timeout time.Duration) time.Time {
	if timeout > 0 {
		if t := time.Now().Add(timeout); t.Before(deadline) {
			return t
		}
	}
	return deadline
}

// heldWrite writes req to conn under the deadline, as fasthttp's transport
// does.
//
//go:noinline
func heldWrite(hc *fasthttp.HostClient, conn net.Conn, req *fasthttp.Request, deadline time.Time) error {
	if err := conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	bw := hc.AcquireWriter(conn)
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if t, ok := err.(interface{ Timeout() bool }); ok && t.Timeout() {
		return fasthttp.ErrTimeout
	}
	return err
}

// heldRead reads the answer's header (after any 1xx) into a response of its
// own, whose body (if any) streams from br.
//
//go:noinline
func heldRead(hc *fasthttp.HostClient, conn net.Conn, skipBody bool) (*fasthttp.Response, *bufio.Reader, error) {
	in := fasthttp.AcquireResponse()
	in.StreamBody = true
	in.SkipBody = skipBody
	if hc.DisableHeaderNamesNormalizing {
		in.Header.DisableNormalizing()
	}
	br := hc.AcquireReader(conn)
	if err := in.ReadLimitBody(br, 0); err != nil {
		fasthttp.ReleaseResponse(in)
		hc.ReleaseReader(br)
		return nil, nil, err
	}
	return in, br, nil
}

// heldBody is the streamed body of a held poll's answer, or of an ordinary
// answer too large, chunked or close-delimited to be read whole (Do). Close hands the
// connection back to the pool when the body was read to its end and
// neither side asked to close it, and closes it otherwise. It is read and
// closed by one goroutine (the one writing the answer to the phone).
type heldBody struct {
	in      *fasthttp.Response // the answer as read: its body stream reads br
	br      *bufio.Reader
	hc      *fasthttp.HostClient
	release func(pool bool)
	keep    bool // the connection may be pooled after the body
	eof     bool // the body was read to its end
	closed  bool
}

func (b *heldBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, io.ErrClosedPipe
	}
	n, err := b.in.BodyStream().Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, BodyReadError(err)
}

// BodyReadError keeps the CAS's bytes out of a body read error (fasthttp's
// chunk errors quote the offending byte): such errors reach the access log.
func BodyReadError(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return heldError(err)
}

func (b *heldBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.in.CloseBodyStream()
	pool := b.keep && b.eof && !b.in.ConnectionClose()
	fasthttp.ReleaseResponse(b.in)
	b.hc.ReleaseReader(b.br)
	b.in, b.br = nil, nil
	b.release(pool)
	return err
}
