package upstream

import (
	"bufio"
	"errors"
	"io"
	"time"

	"github.com/valyala/fasthttp"
)

// The round trip of an ordinary request.
//
// Most EAS answers are a few hundred bytes. fasthttp's HostClient, with
// StreamResponseBody on (which large answers need), wraps every answer's
// body in a stream with a finaliser, closures and a sync.Once, and the
// caller then copies the few bytes out again. roundTrip does the transport's
// work with the client's own connection pool and buffers instead: it reads
// the answer's header into the caller's response and then either reads a
// small body of known length straight into the response's own buffer (the
// connection is back in the pool before Do returns) or streams the body as
// the held requests' answers stream (heldBody).

// SmallBody is the largest answer body Do reads whole. It matches the
// proxy's own threshold for copying an answer rather than streaming it.
const SmallBody = 16 << 10

// maxInterim bounds the 1xx answers read before the final one, as
// fasthttp's own client does.
const maxInterim = 100

var errTooManyInterim = errors.New("upstream: too many 1xx informational answers")

// Do sends an ordinary request and reads its answer's header into resp (a
// fresh response, as from fasthttp.AcquireResponse, or a server's response
// still empty, which then needs no copy) under deadline. A body of known
// length up to SmallBody is read whole into resp: body is nil and the
// connection is back in the pool when Do returns. Any other body (larger,
// chunked, or delimited by the connection's close) is returned as body,
// which the caller must close: Close hands the connection back (to the pool
// when the body was read to its end and neither side asked to close).
// Errors are those of DoHeld: dial failures are *DialError, a pooled
// connection the CAS had closed is ErrStaleConn (NothingSent tells both
// apart from a failure after sending), a timeout is fasthttp.ErrTimeout, a
// connection closed before the answer is fasthttp.ErrConnectionClosed, and
// no error quotes the CAS's bytes. After an error resp may hold part of an
// answer.
func (b *Backend) Do(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) (body io.ReadCloser, err error) {
	if time.Until(deadline) <= 0 {
		return nil, fasthttp.ErrTimeout
	}
	hc := b.hc
	prepareHeld(hc, req)
	body, err = roundTrip(hc, req, resp, deadline)
	if err != nil {
		return nil, heldError(err)
	}
	return body, nil
}

// roundTrip is Do's work (see the comment at the top of this file).
func roundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) (io.ReadCloser, error) {
	reqClose := req.ConnectionClose()
	cc, err := hc.AcquireConn(time.Until(deadline), reqClose)
	if err != nil {
		return nil, err
	}
	conn := cc.Conn()
	if err := heldWrite(hc, conn, req, Earlier(deadline, hc.WriteTimeout)); err != nil {
		hc.CloseConn(cc)
		return nil, err
	}
	if err := conn.SetReadDeadline(Earlier(deadline, hc.ReadTimeout)); err != nil {
		hc.CloseConn(cc)
		return nil, err
	}
	resp.SkipBody = req.Header.IsHead()
	br := hc.AcquireReader(conn)
	if err := readHeader(resp, br); err != nil {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		return nil, err
	}
	keep := !reqClose && !resp.ConnectionClose()
	cl := resp.Header.ContentLength()
	if none := noBody(resp); none || (cl >= 0 && cl <= SmallBody) {
		if !none && cl > 0 {
			err = resp.ReadBody(br, 0) // exactly cl bytes, into resp's own buffer
		}
		hc.ReleaseReader(br)
		if err != nil || !keep {
			hc.CloseConn(cc)
		} else {
			hc.ReleaseConn(cc)
		}
		return nil, err
	}
	// A large, chunked or close-delimited body streams from br; fasthttp's
	// stream does the framing.
	in := fasthttp.AcquireResponse()
	resp.Header.CopyTo(&in.Header)
	in.StreamBody = true
	if err := in.ReadBody(br, 0); err != nil { // a stream: only sets it up
		fasthttp.ReleaseResponse(in)
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		return nil, err
	}
	body := &heldBody{in: in, br: br, hc: hc, keep: keep, eof: cl == 0}
	body.release = func(pool bool) {
		if pool {
			hc.ReleaseConn(cc)
		} else {
			hc.CloseConn(cc)
		}
	}
	return body, nil
}

// readHeader reads the final answer's header into resp, skipping 1xx
// answers (but not 101), as fasthttp's Response.ReadLimitBody does.
func readHeader(resp *fasthttp.Response, br *bufio.Reader) error {
	if err := resp.Header.Read(br); err != nil {
		return err
	}
	for n := 0; ; n++ {
		code := resp.Header.StatusCode()
		if code < 100 || code > 199 || code == fasthttp.StatusSwitchingProtocols {
			return nil
		}
		if n >= maxInterim {
			return errTooManyInterim
		}
		if err := resp.Header.Read(br); err != nil {
			return err
		}
	}
}

// noBody reports whether the answer has no body: an answer to HEAD, and
// 1xx, 204 and 304 answers (RFC 9112, section 6.3).
func noBody(resp *fasthttp.Response) bool {
	code := resp.StatusCode()
	return resp.SkipBody || code < 200 || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified
}
