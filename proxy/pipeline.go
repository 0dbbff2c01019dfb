package proxy

import (
	"errors"
	"io"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/proxy/held"
	"github.com/easgate/easgate/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// The request pipeline: the path of one request, top to bottom in this
// file; the steps that have a file of their own are named with it.
//
//	handle      a reference on the running state, a pooled exchange, panics
//	            answered 500
//	serve       route (routeOf: only the EAS and Autodiscover paths, 404
//	            otherwise), then framing: one reading of the target and of
//	            the body (canonical.go, readChunked)
//	inspect     parse (eas.Request) → authenticate (authn.go: auth.mode,
//	            lockout shield, device binding) → read the small body (hold
//	            interval, DeviceInformation) → decide (enforce.go:
//	            state.decide) → act (enforce.go: enforce blocks or
//	            quarantines, or lets the request through)
//	forward     count a long poll as held, then hand it to a hijacked
//	            connection (hijack.go) or wait for it here
//	roundTrip   pick a CAS (proxy/upstream Pool), send, and try the next
//	            only when nothing was sent
//	doUpstream  an ordinary request (Backend.Do), or a held long poll
//	            (Backend.DoHeld), watched by the held registry (proxy/held,
//	            heldwatch.go) when its device can be refused
//	respond     the CAS's answer, or easgate's own (respond.go: statusFor)
//	finish      one access-log line and the metrics (exchange.go,
//	            accesslog.go)

// route is what a request path is served as.
type route uint8

const (
	routeNone         route = iota // 404: easgate is never an open proxy
	routeEAS                       // the ActiveSync pipeline
	routeAutodiscover              // forwarded as is
)

// routeOf classifies a (decoded, normalised) request path. Matching is
// ASCII case-insensitive, as in IIS.
func routeOf(path []byte) route {
	const eas = "/Microsoft-Server-ActiveSync"
	if hasPrefixFold(path, eas) {
		rest := path[len(eas):]
		if len(rest) == 0 || asciiEqualFold(rest, "/") || asciiEqualFold(rest, "/default.eas") ||
			asciiEqualFold(rest, "/Proxy/default.eas") {
			return routeEAS
		}
		return routeNone
	}
	if asciiEqualFold(path, "/autodiscover/autodiscover.xml") {
		return routeAutodiscover
	}
	return routeNone
}

// handle is the fasthttp handler of the client-facing listener.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	st := s.enter()
	x := acquireExchange(s, st, ctx)
	defer func() {
		if p := recover(); p != nil {
			s.log.Error().Interface("panic", p).Str("path", string(ctx.Path())).Msg("handler panic")
			ctx.Response.Reset()
			ctx.SetConnectionClose()
			x.answer(ctx, fasthttp.StatusInternalServerError, "panic")
			x.finish()
		}
	}()
	if s.serve(ctx, x) {
		x.finish()
	}
}

// serve runs the pipeline. It reports whether the exchange is complete
// (false when a streamed response body will finish it).
func (s *Server) serve(ctx *fasthttp.RequestCtx, x *exchange) bool {
	h := &ctx.Request.Header
	if h.IsConnect() {
		ctx.SetConnectionClose()
		return x.answer(ctx, fasthttp.StatusMethodNotAllowed, "connect")
	}
	if uri := h.RequestURI(); len(uri) == 0 || uri[0] != '/' {
		// absolute-form ("GET http://elsewhere/ HTTP/1.1") or "*"
		ctx.SetConnectionClose()
		return x.answer(ctx, fasthttp.StatusBadRequest, "absolute_uri")
	}
	foreign, err := scanHeaders(h.RawHeaders(), h.IsHTTP11())
	if err == nil && foreign != 0 {
		err = dropForeign(h, foreign, x.st.trustedPeer(ctx)) // canonical.go: headers only easgate may set
	}
	if err != nil {
		ctx.SetConnectionClose()
		x.errText = err.Error()
		return x.answer(ctx, fasthttp.StatusBadRequest, "framing")
	}
	x.route = routeOf(ctx.Path())
	if x.route == routeNone {
		return x.answer(ctx, fasthttp.StatusNotFound, "not_found")
	}
	if err := checkTarget(ctx); err != nil { // canonical.go: one reading of the target
		ctx.SetConnectionClose()
		x.errText = err.Error()
		return x.answer(ctx, fasthttp.StatusBadRequest, "target")
	}
	if cl := h.ContentLength(); cl > 0 && int64(cl) > x.st.maxRequestBody {
		ctx.SetConnectionClose()
		return x.answer(ctx, fasthttp.StatusRequestEntityTooLarge, "body_too_large")
	}
	if h.ContentLength() == -1 {
		// Chunked: fasthttp would hand the chunks over unparsed while the
		// request is already being written to the CAS. Read and check them
		// first (bounded by limits.max_policy_body), so a malformed chunked
		// body is a 400 that never reaches a CAS.
		if code := readChunked(ctx, x.st.maxPolicyBody); code != 0 {
			ctx.SetConnectionClose()
			return x.answer(ctx, code, "framing")
		}
		x.bytesIn = int64(len(ctx.Request.Body()))
	} else {
		x.bytesIn = int64(max(h.ContentLength(), 0))
	}
	if x.route == routeAutodiscover {
		if s.authenticateAutodiscover(ctx, x) { // authn.go: auth.mode and the lockout shield
			return true
		}
		setTarget(&ctx.Request, ctx.Path(), nil) // canonical.go
		return s.forward(ctx, x)
	}
	r := easRequestPool.Get().(*eas.Request)
	done, ok := s.inspect(ctx, x, r)
	easRequestPool.Put(r)
	if done {
		return ok
	}
	return s.forward(ctx, x)
}

// inspect is the per-request EAS work before the upstream call: parse,
// read the small body the pipeline needs, work out the hold, identify the
// client and decide. It allocates nothing for an ordinary Ping or Sync. It
// returns done=true when it answered the request itself.
func (s *Server) inspect(ctx *fasthttp.RequestCtx, x *exchange, r *eas.Request) (done, complete bool) {
	done, complete = s.inspectRequest(ctx, x, r)
	x.dropScratch()
	return done, complete
}

func (s *Server) inspectRequest(ctx *fasthttp.RequestCtx, x *exchange, r *eas.Request) (done, complete bool) {
	st := x.st
	err := r.Parse(ctx.Method(), ctx.Path(), ctx.URI().QueryString(), &ctx.Request.Header)
	if err != nil {
		if r.Command == eas.CmdOptions || ctx.IsOptions() {
			// OPTIONS is always forwarded (Exchange never blocks it),
			// without the query easgate could not read.
			x.cmd = eas.CmdOptions
			setTarget(&ctx.Request, ctx.Path(), nil) // canonical.go
			return false, false
		}
		return true, x.answerParseError(ctx, r, err)
	}
	x.record(r)
	if done, complete := s.authenticate(ctx, x, r); done { // authn.go: auth.mode, lockout, device binding
		return true, complete
	}

	var info *eas.DeviceInfo
	var infoBuf eas.DeviceInfo
	switch r.Command {
	case eas.CmdPing, eas.CmdSync, eas.CmdSettings, eas.CmdProvision:
		body, ok := policyBody(ctx, st.maxPolicyBody)
		if !ok {
			break
		}
		switch r.Command {
		case eas.CmdPing, eas.CmdSync:
			x.hold = s.holds.HoldFor(r.Command, body, x.field(x.user), r.DeviceID)
		default:
			if found, _ := eas.ReadDeviceInfo(body, &infoBuf); found {
				info = &infoBuf
			}
		}
	}
	x.dec = st.decide(x, r, info)                     // enforce.go; identifies the client too
	if done, complete := s.enforce(ctx, x, r); done { // enforce.go: block or quarantine
		return true, complete
	}
	setTarget(&ctx.Request, ctx.Path(), r) // canonical.go: the CAS gets what was decided on
	return false, false
}

// policyBody returns the whole request body when it is small enough for the
// pipeline to read (limits.max_policy_body), reading a streamed body into
// the request's own buffer. ok is false for bodies that are too big or of
// unknown length: those are streamed to the CAS unread.
func policyBody(ctx *fasthttp.RequestCtx, limit int64) ([]byte, bool) {
	cl := ctx.Request.Header.ContentLength()
	if cl < 0 || int64(cl) > limit {
		return nil, false
	}
	if cl == 0 {
		return nil, true
	}
	return ctx.Request.Body(), true
}

// forward sends the request to a CAS and streams the answer back. A request
// goes to another CAS only when nothing of it was sent (the connection could
// not be opened, or a pooled one turned out closed before the first byte).
// A long poll is handed to a hijacked connection (hijack.go) so that the
// phone's connection costs no fasthttp buffers or goroutine while it waits.
func (s *Server) forward(ctx *fasthttp.RequestCtx, x *exchange) bool {
	st := x.st
	if x.auth.krb && s.kerberosPrepare(ctx, x) { // kerberos.go: a ticket before anything is sent
		return true
	}
	timeout := held.Timeout(x.hold, st.requestTimeout, st.longPollMargin, st.longPollMax)
	if x.hold != 0 {
		if n := s.held.Add(1); st.maxHeld > 0 && n > st.maxHeld {
			s.held.Add(-1)
			return x.answer(ctx, fasthttp.StatusServiceUnavailable, "too_many_long_polls")
		}
		x.held = true
		s.metrics.held.Inc()
	}
	phoneClose := ctx.Request.Header.ConnectionClose()
	x.applyUpstreamIdentity(&ctx.Request.Header) // authn.go
	stripRequestHops(ctx)
	bodyStreamed := ctx.Request.IsBodyStream()
	deadline := x.start.Add(timeout) // counted from the request's arrival
	if x.held && canHijack(ctx) {
		return s.hijackLongPoll(ctx, x, deadline, phoneClose)
	}
	if x.held {
		s.holdInHandler(x, ctx.Conn()) // vanish.go: swept and stopped like the hijacked ones
	}
	resp, lastErr := s.roundTrip(x, &ctx.Request, &ctx.Response, deadline, bodyStreamed)
	if x.held {
		s.releaseHeld(x)
	}
	return s.respond(x, &ctx.Response, resp, lastErr, phoneClose)
}

// roundTrip sends req to a CAS, trying the next one only when nothing was
// sent, and returns the CAS's answer or the last error: for an ordinary
// request the answer is out itself (the phone's response, see doUpstream),
// for a held one a response of its own whose body streams. It sets
// x.backend and x.upStart/x.upDur and ends the held count.
// A held long poll waits under this frame for as long as the CAS holds it,
// so the per-attempt work lives in helpers and its frame stays small.
func (s *Server) roundTrip(x *exchange, req *fasthttp.Request, out *fasthttp.Response, deadline time.Time, bodyStreamed bool) (*fasthttp.Response, error) {
	var (
		tried   uint64
		lastErr error
		b       *upstream.Backend

		answeredEarly bool // enforce.go: the decision changed during a long poll
	)
	for {
		nb := s.nextAttempt(x, req, &tried)
		if nb == nil {
			break
		}
		b = nb
		resp, err := s.doUpstream(x, b, req, out, deadline) // heldwatch.go: may answer a long poll early
		x.upDur = time.Since(x.upStart)
		if err == nil {
			s.endHeld(x, b)
			return resp, nil
		}
		b.End()
		if resp != nil && resp != out {
			fasthttp.ReleaseResponse(resp)
		}
		if err == errAnsweredEarly { // heldwatch.go: the CAS call was cut
			answeredEarly = true
			break
		}
		lastErr = err
		if !s.mayRetry(x.st, b, err, bodyStreamed) {
			break
		}
	}
	if answeredEarly {
		s.endHeld(x, b)
		return nil, errAnsweredEarly
	}
	if lastErr == nil {
		b = nil
	}
	s.endHeld(x, b)
	return nil, lastErr
}

// errAnsweredEarly means easgate answers a held request itself, with
// x.en.early: a long poll cut at its CAS because the device's decision
// changed (heldwatch.go), or a quarantine hold that ended (quarhold.go).
var errAnsweredEarly = errors.New("proxy: held request answered by easgate")

// doUpstream sends the request to b and returns the answer (nil when err
// is not). An ordinary request's answer is read into out, the phone's own
// response: its header, and its body when small (most EAS answers are a few
// hundred bytes), so nothing is copied; a larger body is left in x.upBody
// to stream. A long poll goes through the long-poll client
// (Backend.DoHeld), which takes a response from the pool only once the
// answer arrives, and, under a policy that can refuse its device, is
// watched while the CAS holds it (heldwatch.go): when the device is blocked
// or quarantined meanwhile, the CAS call is cut and errAnsweredEarly
// returned, with the answer to give in x.en.early.
//
// A held long poll waits under this frame, so it stays small: the watch's
// set-up and end live in watchHeld and unwatch.
func (s *Server) doUpstream(x *exchange, b *upstream.Backend, req *fasthttp.Request, out *fasthttp.Response, deadline time.Time) (*fasthttp.Response, error) {
	if !x.held {
		body, err := b.Do(req, out, deadline)
		if err != nil {
			out.Reset() // nothing of a part-read answer reaches the phone
			return nil, err
		}
		if x.auth.krb && out.StatusCode() == fasthttp.StatusUnauthorized {
			return s.kerberosRetry(x, b, req, out, body, deadline) // kerberos.go: one refresh and retry
		}
		x.upBody = body
		return out, nil
	}
	watched := s.watchHeld(x, req)
	resp, err := b.DoHeld(req, deadline, x.hijacked)
	if watched {
		err = s.unwatch(x, err)
	}
	return resp, err
}

// nextAttempt picks a CAS not tried yet, points req at it and returns it;
// nil when none is left.
//
//go:noinline
func (s *Server) nextAttempt(x *exchange, req *fasthttp.Request, tried *uint64) *upstream.Backend {
	st := x.st
	i := st.pool.Pick(*tried)
	if i < 0 {
		return nil
	}
	*tried |= 1 << uint(i)
	b := st.pool.Backends[i]
	uri := req.URI()
	if b.HTTPS {
		uri.SetScheme("https")
	} else {
		uri.SetScheme("http")
	}
	uri.SetHostBytes(b.HostHeader())
	req.Header.SetHostBytes(b.HostHeader())
	if x.auth.krb {
		s.kerberosHeader(x, req, b) // kerberos.go: Negotiate for this CAS's SPN
	}
	b.Begin()
	x.upStart = time.Now()
	return b
}

// endHeld records the CAS that answered (or failed last) and ends the
// long poll's held count.
func (s *Server) endHeld(x *exchange, b *upstream.Backend) {
	x.backend = b
	if x.held {
		s.held.Add(-1)
		s.metrics.held.Dec()
	}
}

// mayRetry handles a failed attempt (a connect failure ejects the CAS) and
// reports whether the request may go to another CAS. It is kept out of
// roundTrip so that the frame a held long poll waits under stays small.
//
//go:noinline
func (s *Server) mayRetry(st *state, b *upstream.Backend, err error, bodyStreamed bool) bool {
	var de *upstream.DialError
	dial := errors.As(err, &de)
	if dial && b.Eject(st.activeChecks, st.hc.Interval+10*time.Second) {
		s.metrics.healthy.WithLabelValues(b.Name).Set(0)
		s.log.Warn().Str("upstream", b.Name).Err(err).Msg("upstream ejected after connect failure")
		s.notePanic(st) // health.go
	}
	return upstream.NothingSent(err) && (!bodyStreamed || dial)
}

// respond fills out, the response to the phone, from the CAS's answer or
// from the error that kept it from coming. It reports whether the exchange
// is complete (false when the streamed body will finish it).
func (s *Server) respond(x *exchange, out *fasthttp.Response, resp *fasthttp.Response, lastErr error, phoneClose bool) bool {
	if phoneClose {
		out.SetConnectionClose()
	}
	if lastErr == errAnsweredEarly {
		return x.writeAnswer(out, x.en.early)
	}
	if resp == nil {
		if lastErr == nil {
			return x.answerTo(out, fasthttp.StatusServiceUnavailable, "no_healthy_upstream")
		}
		x.errText = lastErr.Error()
		if x.held && x.hijacked.phoneLeft() { // vanish.go: nothing is sent (the connection closes)
			out.SetConnectionClose()
			return x.answerTo(out, statusClientGone, "client_gone")
		}
		if x.held && (x.st.draining.Load() || s.closing.Load()) {
			return x.answerCutLongPoll(out)
		}
		code := statusFor(lastErr)
		if code == fasthttp.StatusBadRequest {
			out.SetConnectionClose()
			return x.answerTo(out, code, "framing")
		}
		if code == fasthttp.StatusRequestTimeout {
			out.SetConnectionClose()
			return x.answerTo(out, code, "client_timeout")
		}
		return x.answerTo(out, code, "upstream_error")
	}
	s.metrics.upstreamDuration(x.cmd, x.upDur.Seconds())

	// The CAS's answer goes back unchanged apart from hop-by-hop headers.
	// An ordinary request's answer is already in out (doUpstream).
	if resp != out {
		resp.Header.CopyTo(&out.Header)
	}
	out.Header.SetNoDefaultContentType(true)
	stripResponseHops(&out.Header)
	if phoneClose {
		out.SetConnectionClose()
	}
	x.status = out.StatusCode()
	s.authnRecord(x, x.status) // authn.go: the lockout shield counts the CAS's 401s
	cl := out.Header.ContentLength()
	if cl < 0 {
		cl = -1
	}
	if resp == out {
		if x.upBody == nil {
			// Read whole: header and body leave in one write, and the CAS
			// connection is back in the pool already.
			if x.en.learnInbox && int64(len(out.Body())) <= x.st.maxPolicyBody {
				s.learnFolderSyncBody(x, out, out.Body()) // enforce.go: a quarantined device's FolderSync teaches the Inbox
			}
			x.bytesOut = int64(len(out.Body()))
			x.backend.End()
			return true
		}
		x.body = upstreamBody{x: x, c: x.upBody, r: x.upBody}
		x.upBody = nil
	} else {
		x.body = upstreamBody{x: x, resp: resp, r: resp.BodyStream()}
	}
	if x.en.learnInbox { // enforce.go: a quarantined device's FolderSync teaches the Inbox
		x.body.r = s.learnFolderSync(x, out, x.body.r)
	}
	if resp != out && cl >= 0 && cl <= smallResponse {
		// A held request's small answer (DoHeld streams every body): copy it
		// into the phone's response so header and body leave in one write,
		// and give the CAS connection back at once.
		return x.copySmallBody(out, cl)
	}
	out.SetBodyStream(&x.body, cl)
	return false
}

// readChunked reads a chunked request body whole, up to limit bytes, and
// makes it the request's fixed-length body. It returns 0, 400 for broken
// chunking or 413 for a body over limit.
func readChunked(ctx *fasthttp.RequestCtx, limit int64) int {
	bs := ctx.RequestBodyStream()
	if bs == nil {
		return 0
	}
	body, err := io.ReadAll(io.LimitReader(bs, limit+1))
	if err != nil {
		return fasthttp.StatusBadRequest
	}
	if int64(len(body)) > limit {
		return fasthttp.StatusRequestEntityTooLarge
	}
	ctx.Request.SetBodyRaw(body)
	return 0
}
