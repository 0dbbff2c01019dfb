package proxy

import (
	"bufio"
	"io"
	"net"
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
//  1. write the request (heldWrite), then hand it back (heldPoll.sent);
//  2. wait for the first byte of the answer without a read buffer
//     (liveConn.SetReadDeadline);
//  3. read the answer's header and stream its body (heldRead, heldBody): the
//     connection goes back to the pool, or is closed, when the body is
//     closed, as with fasthttp's streamed bodies.

// heldRoundTrip sends req on a connection of hc and returns the answer,
// whose body streams. The response is taken from fasthttp's pool only once
// the answer's header has arrived: a poll the CAS holds does not keep one.
// h, when not nil, gets req back once it is written: from then on
// heldRoundTrip does not touch it; the vanish sweep and shutdown may cut
// the request through h while it waits at the CAS, by closing the
// connection (errClientGone, errStopping; vanish.go). w, when not nil, may
// cut it the same way after a decision change (errCut, or the
// connection's error). Errors are those of fasthttp's transport: the
// dialler's and liveConn's (errStaleConn), a write timeout as
// fasthttp.ErrTimeout, and the answer's read errors as they are.
func heldRoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, deadline time.Time, h *heldPoll, w *heldWatch) (*fasthttp.Response, error) {
	reqClose := req.ConnectionClose()
	cc, err := hc.AcquireConn(time.Until(deadline), reqClose)
	if err != nil {
		return nil, err
	}
	conn := cc.Conn()
	if !w.attach(conn) { // refused by its watch: nothing is sent
		hc.ReleaseConn(cc)
		return nil, errCut
	}
	if !h.attachUp(conn) { // the phone left, or shutdown (vanish.go): nothing is sent
		w.detach()
		hc.ReleaseConn(cc)
		return nil, h.detachUp()
	}
	skipBody := req.Header.IsHead()
	if err := heldWrite(hc, conn, req, earlier(deadline, hc.WriteTimeout)); err != nil {
		w.detach()
		if cutErr := h.detachUp(); cutErr != nil {
			err = cutErr
		}
		hc.CloseConn(cc)
		return nil, err
	}
	h.sent(req)
	// On a long-poll connection this waits for the answer's first byte.
	if err := conn.SetReadDeadline(earlier(deadline, hc.ReadTimeout)); err != nil {
		w.detach()
		if cutErr := h.detachUp(); cutErr != nil {
			err = cutErr
		}
		hc.CloseConn(cc)
		return nil, err
	}
	in, br, err := heldRead(hc, conn, skipBody)
	watchCut := w.detach()
	cutErr := h.detachUp()
	if (watchCut || cutErr != nil) && err == nil { // cut just after the header arrived
		fasthttp.ReleaseResponse(in)
		hc.ReleaseReader(br)
		err = errCut
	}
	if cutErr != nil && err != nil { // the phone's leaving or shutdown explains the failure
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

// earlier is deadline, or now+timeout when the client has a timeout that
// ends sooner (as fasthttp's transport applies ReadTimeout and WriteTimeout).
func earlier(deadline time.Time, timeout time.Duration) time.Time {
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

// heldBody is the streamed body of a held poll's answer. Close hands the
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
	return n, bodyReadError(err)
}

// bodyReadError keeps the CAS's bytes out of a body read error (fasthttp's
// chunk errors quote the offending byte): such errors reach the access log.
func bodyReadError(err error) error {
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
