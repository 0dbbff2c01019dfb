package proxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/upstream"
	"github.com/valyala/fasthttp"
)

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
	body       upstreamBody // the streamed answer; lives in the pooled exchange
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
			x.hold = s.holds.holdFor(r.Command, body, x.field(x.user), r.DeviceID)
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

// hopHeaders are removed in both directions (RFC 9110 §7.6.1), as are
// Connection itself and the headers it names. Expect is removed from
// requests only (easgate answers 100-continue itself).
var hopHeaders = [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Upgrade", "Transfer-Encoding", "Expect"}

const (
	hopConnection = 1 << 0
	hopExpect     = 1 << (len(hopHeaders) - 1)
)

// hopBit is the bit of the hop-by-hop header named k, or 0.
func hopBit(k []byte) uint16 {
	for i, name := range hopHeaders {
		if len(k) == len(name) && asciiEqualFold(k, name) {
			return 1 << i
		}
	}
	return 0
}

// hopScan collects, during one pass over a header, which hop-by-hop
// headers it has and the Connection header's value.
type hopScan struct {
	present uint16
	conn    []byte
}

// add notes the header k: v when it is a hop-by-hop header.
func (s *hopScan) add(k, v []byte) {
	bit := hopBit(k)
	s.present |= bit
	if bit == hopConnection && s.conn == nil {
		s.conn = v
	}
}

// hopHeader is what stripHops needs of a request or response header.
type hopHeader interface {
	Del(key string)
	DelBytes(key []byte)
	ResetConnectionClose()
}

// stripHops removes the hop-by-hop headers found by one pass over the
// header (present, with conn the Connection header's value): most requests
// and answers carry none of them, so the common case costs one scan
// instead of a lookup per name.
func stripHops(h hopHeader, present uint16, conn []byte) {
	if present&hopConnection != 0 {
		forEachToken(conn, func(tok []byte) {
			if !asciiEqualFold(tok, "close") && !asciiEqualFold(tok, "keep-alive") {
				h.DelBytes(tok)
			}
		})
	}
	for i, name := range hopHeaders {
		if present&(1<<i) != 0 {
			h.Del(name)
		}
	}
	h.ResetConnectionClose()
}

// stripRequestHops removes hop-by-hop request headers and sets
// X-Forwarded-For and X-Forwarded-Proto. A client's own X-Forwarded-*
// headers are gone by now unless its peer is a trusted proxy
// (dropForeign): then the peer is appended to them.
func stripRequestHops(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	var (
		hops     hopScan
		xff, xfp []byte
	)
	for k, v := range h.All() {
		switch {
		case len(k) == len(hdrForwardedFor) && asciiEqualFold(k, hdrForwardedFor):
			xff = v
		case len(k) == len(hdrForwardedProto) && asciiEqualFold(k, hdrForwardedProto):
			xfp = v
		default:
			hops.add(k, v)
		}
	}
	// The new values are built before any header is removed: the values
	// found above alias the header's storage.
	var forBuf [512]byte
	forV := forBuf[:0]
	if len(xff) > 0 && len(xff) < len(forBuf)-64 {
		forV = append(append(forV, xff...), ", "...)
	}
	forV = appendIP(forV, ctx.RemoteIP())
	proto := "http"
	if ctx.IsTLS() {
		proto = "https"
	}
	var protoBuf [128]byte
	protoV := protoBuf[:0]
	if len(xfp) > 0 && len(xfp) < len(protoBuf)-8 {
		protoV = append(append(protoV, xfp...), ", "...)
	}
	protoV = append(protoV, proto...)
	stripHops(h, hops.present, hops.conn)
	h.SetCanonical(keyForwardedFor, forV)
	h.SetCanonical(keyForwardedProto, protoV)
}

// trustedPeer reports whether the connection comes from one of
// listen.trusted_proxies.
func (st *state) trustedPeer(ctx *fasthttp.RequestCtx) bool {
	if len(st.trusted) == 0 {
		return false
	}
	a, ok := netip.AddrFromSlice(ctx.RemoteIP())
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, p := range st.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

const (
	hdrForwardedFor   = "X-Forwarded-For"
	hdrForwardedProto = "X-Forwarded-Proto"
)

var (
	keyForwardedFor   = []byte(hdrForwardedFor)
	keyForwardedProto = []byte(hdrForwardedProto)
)

// appendIP appends the textual form of ip (IPv4-mapped addresses as IPv4)
// without allocating.
func appendIP(dst []byte, ip net.IP) []byte {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return dst
	}
	return a.Unmap().AppendTo(dst)
}

// stripResponseHops removes hop-by-hop headers from the CAS's answer.
func stripResponseHops(h *fasthttp.ResponseHeader) {
	var hops hopScan
	for k, v := range h.All() {
		hops.add(k, v)
	}
	stripHops(h, hops.present&^hopExpect, hops.conn)
}

func forEachToken(v []byte, f func([]byte)) {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		tok := trimSpace(v[:i])
		if len(tok) > 0 {
			f(tok)
		}
		if i == len(v) {
			return
		}
		v = v[i+1:]
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
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
	timeout := upstreamTimeout(x.hold, st.requestTimeout, st.longPollMargin, st.longPollMax)
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
	deadline := time.Now().Add(timeout)
	if x.held && canHijack(ctx) {
		return s.hijackLongPoll(ctx, x, deadline, phoneClose)
	}
	if x.held {
		s.holdInHandler(x, ctx.Conn()) // vanish.go: swept and stopped like the hijacked ones
	}
	resp, lastErr := s.roundTrip(x, &ctx.Request, deadline, bodyStreamed)
	if x.held {
		s.releaseHeld(x)
	}
	return s.respond(x, &ctx.Response, resp, lastErr, phoneClose)
}

// roundTrip sends req to a CAS, trying the next one only when nothing was
// sent, and returns the CAS's answer (its body still streaming) or the last
// error. It sets x.backend and x.upStart/x.upDur and ends the held count.
// A held long poll waits under this frame for as long as the CAS holds it,
// so the per-attempt work lives in helpers and its frame stays small.
func (s *Server) roundTrip(x *exchange, req *fasthttp.Request, deadline time.Time, bodyStreamed bool) (*fasthttp.Response, error) {
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
		resp, err := s.doUpstream(x, b, req, deadline) // enforce.go: may answer a long poll early
		x.upDur = time.Since(x.upStart)
		if err == nil {
			s.endHeld(x, b)
			return resp, nil
		}
		b.End()
		if resp != nil {
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
	s.metrics.upstreamDuration(x.cmd.String(), x.upDur.Seconds())

	// The CAS's answer goes back unchanged apart from hop-by-hop headers.
	resp.Header.CopyTo(&out.Header)
	out.Header.SetNoDefaultContentType(true)
	stripResponseHops(&out.Header)
	if phoneClose {
		out.SetConnectionClose()
	}
	x.status = resp.StatusCode()
	s.authnRecord(x, x.status) // authn.go: the lockout shield counts the CAS's 401s
	cl := resp.Header.ContentLength()
	if cl < 0 {
		cl = -1
	}
	x.body = upstreamBody{x: x, resp: resp, r: resp.BodyStream()}
	if x.en.learnInbox { // enforce.go: a quarantined device's FolderSync teaches the Inbox
		x.body.r = s.learnFolderSync(x, resp, x.body.r)
	}
	if cl >= 0 && cl <= smallResponse {
		// Most EAS answers are a few hundred bytes: copy them into the
		// phone's response so header and body leave in one write, and give
		// the CAS connection back at once.
		return x.copySmallBody(out, cl)
	}
	out.SetBodyStream(&x.body, cl)
	return false
}

// smallResponse is the largest CAS answer copied whole instead of streamed.
const smallResponse = 16 << 10

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
	resp   *fasthttp.Response
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
	err := u.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(u.resp)
	u.x.backend.End()
	return err
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
	cmd := commandLabel(x)
	decision := x.decisionLabel() // enforce.go
	if refusal(x.reason) {
		s.metrics.rejected.WithLabelValues(x.reason).Inc()
	}
	s.metrics.request(cmd, decision, x.status)
	if x.hold == 0 {
		s.metrics.requestDuration(cmd, total.Seconds())
	}
	x.st.writeAccess(x, cmd, decision, now, total)
	st := x.st
	*x = exchange{}
	exchangePool.Put(x)
	s.leave(st)
}

func commandLabel(x *exchange) string {
	switch x.route {
	case routeAutodiscover:
		return "Autodiscover"
	case routeNone:
		return "none"
	}
	if !x.parsed && x.cmd != eas.CmdOptions {
		return "invalid"
	}
	return x.cmd.String()
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
