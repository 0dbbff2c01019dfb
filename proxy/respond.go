package proxy

import (
	"errors"
	"io"
	"net"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// easgate's own answers, the answer built from a CAS's, and statusFor: the
// one place where an upstream error becomes the status a phone gets.

// answerParseError gives a request easgate could not parse the answer
// Exchange gives: the common status (108/109) in the command's namespace for
// 14.0 and later, else the bare HTTP status.
func (x *exchange) answerParseError(ctx *fasthttp.RequestCtx, r *eas.Request, err error) bool {
	x.errText = err.Error()
	x.cmd, x.version = r.Command, r.Version
	if x.version == 0 {
		// The parser stopped before the version header; Exchange still
		// answers in the client's protocol version.
		x.version, _ = eas.ParseVersion(ctx.Request.Header.Peek("MS-ASProtocolVersion"))
	}
	if x.cmd == 0 && len(r.CommandName) == 0 {
		x.cmd = eas.CmdUnknown
	}
	var pe *eas.ParseError
	if !errors.As(err, &pe) {
		return x.answer(ctx, fasthttp.StatusBadRequest, "parse")
	}
	code := pe.HTTPStatus
	if code == 0 {
		code = fasthttp.StatusBadRequest
	}
	if pe.Status != 0 && x.version >= eas.V140 && x.cmd != eas.CmdUnknown {
		status, body := eas.AppendErrorAnswer(ctx.Response.Body()[:0], x.version, x.cmd, pe.Status, code)
		ctx.SetStatusCode(status)
		if len(body) > 0 {
			ctx.SetContentType("application/vnd.ms-sync.wbxml")
			ctx.Response.SetBodyRaw(body)
		}
		x.status, x.reason, x.bytesOut = status, "parse", int64(len(body))
		return true
	}
	return x.answer(ctx, code, "parse")
}

// answer sends an empty-bodied status answered by easgate itself.
func (x *exchange) answer(ctx *fasthttp.RequestCtx, code int, reason string) bool {
	return x.answerTo(&ctx.Response, code, reason)
}

// answerTo is answer for a response that is not (or no longer) the
// RequestCtx's: the hijacked long polls write their own.
func (x *exchange) answerTo(out *fasthttp.Response, code int, reason string) bool {
	out.SetStatusCode(code)
	out.Header.SetNoDefaultContentType(true)
	if code == fasthttp.StatusServiceUnavailable {
		out.Header.Set("Retry-After", retryAfter)
	}
	x.status, x.reason = code, reason
	return true
}

// retryAfter is the Retry-After easgate sends with its own 503s, in seconds.
const retryAfter = "30"

// smallResponse is the largest CAS answer given to the phone whole instead
// of streamed: Backend.Do reads such answers whole, and a held request's
// answer of this size is copied.
const smallResponse = upstream.SmallBody

// copySmallBody reads a CAS answer of known, small length into the phone's
// response. A CAS that sends fewer bytes than it announced is answered 502.
func (x *exchange) copySmallBody(out *fasthttp.Response, cl int) bool {
	// Read straight into the response's own (pooled) body buffer: no
	// intermediate buffer, nothing allocated once the pool is warm.
	body := out.SwapBody(nil)
	if cap(body) < cl {
		body = make([]byte, cl)
	}
	body = body[:cl]
	n, err := io.ReadFull(&x.body, body)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	out.SwapBody(body[:n])
	_ = x.body.closeStream()
	if err != nil {
		// The CAS failed mid-answer. Nothing has reached the phone yet, so
		// it gets a 502 rather than a truncated answer that looks whole.
		x.errText = err.Error()
		phoneClose := out.ConnectionClose()
		out.ResetBody()
		out.Header.Reset()
		if phoneClose {
			out.SetConnectionClose()
		}
		x.bytesOut = 0
		return x.answerTo(out, fasthttp.StatusBadGateway, "upstream_error")
	}
	return true
}

// answerCutLongPoll answers a held Ping or Sync whose CAS connection easgate
// closed itself while draining an old configuration or shutting down. It
// gives the answer the CAS gives when the interval ends without changes, so
// the phone re-issues the request at once (to the new configuration) instead
// of backing off after a 5xx.
func (x *exchange) answerCutLongPoll(out *fasthttp.Response) bool {
	out.SetStatusCode(fasthttp.StatusOK)
	if x.cmd == eas.CmdPing {
		body, ok := eas.AppendStatusBody(out.Body()[:0], eas.CmdPing, 1)
		if ok {
			out.Header.SetContentType("application/vnd.ms-sync.wbxml")
			out.SetBodyRaw(body)
			x.bytesOut = int64(len(body))
		}
	}
	// Sync: an empty 200 is the "empty Sync response", no changes
	// (MS-ASCMD §2.2.1.21.2).
	x.status, x.reason = fasthttp.StatusOK, "long_poll_cut"
	return true
}

// statusFor is the one place that turns an upstream error into the HTTP
// status the phone gets.
func statusFor(err error) int {
	var (
		de *upstream.DialError
		bc fasthttp.ErrBrokenChunk
	)
	switch {
	case isClientTimeout(err): // slowclient.go: the phone's body stalled
		return fasthttp.StatusRequestTimeout
	case errors.As(err, &bc):
		// The phone's chunked body was malformed; the CAS connection was
		// closed mid-body, so it never saw a complete request.
		return fasthttp.StatusBadRequest
	case errors.As(err, &de):
		return fasthttp.StatusServiceUnavailable
	case errors.Is(err, fasthttp.ErrTimeout):
		return fasthttp.StatusGatewayTimeout
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return fasthttp.StatusRequestEntityTooLarge
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fasthttp.StatusGatewayTimeout
	}
	return fasthttp.StatusBadGateway
}

// upstreamBody streams the CAS's response body to the phone. fasthttp
// closes it when the response is written (or the phone went away); Close
// hands the upstream connection back and completes the exchange.
type upstreamBody struct {
	x      *exchange
	resp   *fasthttp.Response // a held request's answer (DoHeld), or nil
	c      io.Closer          // an ordinary request's streamed body (Backend.Do), or nil
	r      io.Reader
	closed bool
}

func (u *upstreamBody) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	u.x.bytesOut += int64(n)
	return n, upstream.BodyReadError(err)
}

func (u *upstreamBody) Close() error {
	if u.closed {
		return nil
	}
	err := u.closeStream()
	u.x.finish()
	return err
}

// closeStream hands the CAS connection back without completing the
// exchange (the small-body path completes it when the handler returns).
func (u *upstreamBody) closeStream() error {
	if u.closed {
		return nil
	}
	u.closed = true
	var err error
	if u.resp != nil {
		err = u.resp.CloseBodyStream()
		fasthttp.ReleaseResponse(u.resp)
	} else if u.c != nil {
		err = u.c.Close()
	}
	u.x.backend.End()
	return err
}
