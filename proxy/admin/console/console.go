package console

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"embed"
	"encoding/base64"
	"html/template"
	"io/fs"
	"mime"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/proxy/access"
	"github.com/easgate/easgate/proxy/admin"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Gateway is what the console needs of the running gateway besides the
// API. Its methods are safe for concurrent use and return quickly.
type Gateway interface {
	// Access is the current configuration's access state.
	Access() *access.Access
	// Tokens are the current configuration's admin tokens.
	Tokens() []admin.Token
	// HeldLongPolls is the number of Ping and Sync requests held now (at a
	// CAS or by the quarantine emulation).
	HeldLongPolls() int64
	// Upstreams is the health of each CAS.
	Upstreams() []Upstream
	// SessionTimeout is admin.console.session_timeout; Enabled reports
	// that the console is on (admin.console.disabled unset).
	SessionTimeout() time.Duration
	Enabled() bool
	// ClientPrincipal maps the verified admin client certificate of a
	// TLS connection (nil: not TLS) to an admin; false when there is none
	// or it is not one of admin.tls.clients.
	ClientPrincipal(cs *tls.ConnectionState) (admin.Principal, bool)
}

// Upstream is one CAS as the dashboard shows it.
type Upstream struct {
	Name     string
	Healthy  bool
	InFlight int64
}

// Console serves the pages. Create it with New.
type Console struct {
	api   *admin.API
	gw    Gateway
	log   zerolog.Logger
	now   func() time.Time
	pages map[string]*template.Template

	mu       sync.Mutex
	sessions map[string]*session
}

// maxSessions bounds the sessions kept; the oldest idle one makes room.
const maxSessions = 10000

// Cookie names. The sign-in cookie carries the CSRF token of the sign-in
// form, before there is a session.
const (
	sessionCookie = "easgate_session"
	signinCookie  = "easgate_signin"
)

// session is one signed-in admin. The token is kept here, in memory only,
// and authenticated again on every request: a token removed or given
// another role by a reload ends or changes the session at once.
type session struct {
	id      string
	csrf    string
	how     string // "token", "certificate" or "loopback"
	secret  []byte // how == "token"
	name    string // the principal signed in (certificate, loopback)
	expires time.Time
}

// New returns the console of api and gw; log receives sign-ins, refusals
// and failures (never a token, cookie or session id).
func New(api *admin.API, gw Gateway, log zerolog.Logger) *Console {
	c := &Console{api: api, gw: gw, log: log, now: time.Now, sessions: map[string]*session{}, pages: map[string]*template.Template{}}
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		name := path.Base(n)
		if name == "layout.html" {
			continue
		}
		c.pages[strings.TrimSuffix(name, ".html")] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
	}
	return c
}

// Serve answers the request when it is the console's: every path but
// /api/, /metrics, /healthz and /readyz. It reports whether it answered.
func (c *Console) Serve(ctx *fasthttp.RequestCtx) bool {
	p := string(ctx.Path())
	if strings.HasPrefix(p, "/api/") || p == "/metrics" || p == "/healthz" || p == "/readyz" || !c.gw.Enabled() {
		return false
	}
	securityHeaders(ctx)
	defer func() {
		if r := recover(); r != nil {
			c.log.Error().Interface("panic", r).Str("path", p).Msg("console page failed")
			ctx.ResetBody()
			c.errorPage(ctx, nil, fasthttp.StatusInternalServerError, "The page could not be built; the gateway log says why.")
		}
	}()
	if strings.HasPrefix(p, "/static/") {
		c.static(ctx, strings.TrimPrefix(p, "/static/"))
		return true
	}
	switch p {
	case "/signin":
		c.signin(ctx)
		return true
	case "/signout":
		c.signout(ctx)
		return true
	}
	r, ok := c.route(ctx)
	if !ok {
		c.errorPage(ctx, nil, fasthttp.StatusNotFound, "There is no page at "+p+".")
		return true
	}
	if !ctx.IsGet() && !ctx.IsHead() && !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "GET, POST")
		c.errorPage(ctx, nil, fasthttp.StatusMethodNotAllowed, "Use the page's links and buttons.")
		return true
	}
	s, v, why := c.session(ctx)
	if s == nil {
		c.toSignin(ctx, why)
		return true
	}
	if ctx.IsPost() {
		if !c.csrfOK(ctx, s) {
			c.log.Warn().Str("path", p).Str("actor", v.P.Name).Stringer("client", ctx.RemoteAddr()).Msg("console form refused: missing or wrong CSRF token")
			c.errorPage(ctx, v, fasthttp.StatusForbidden, "This form was refused: it did not carry this session's security token. Reload the page and try again.")
			return true
		}
		if r.post == nil {
			ctx.Response.Header.Set("Allow", "GET")
			c.errorPage(ctx, v, fasthttp.StatusMethodNotAllowed, "This page takes no form.")
			return true
		}
		r.post(ctx, v, r.args)
		return true
	}
	r.get(ctx, v, r.args)
	return true
}

// route is a page: its GET handler, its POST handler (nil: none) and
// the path segments it took.
type route struct {
	get, post func(*fasthttp.RequestCtx, *view, []string)
	args      []string
}

func (c *Console) route(ctx *fasthttp.RequestCtx) (route, bool) {
	raw := string(ctx.URI().PathOriginal())
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	parts := strings.Split(strings.TrimPrefix(raw, "/"), "/")
	for i, s := range parts {
		u, err := url.PathUnescape(s)
		if err != nil {
			return route{}, false
		}
		parts[i] = u
	}
	switch {
	case raw == "/":
		return route{get: c.dashboard}, true
	case raw == "/devices":
		return route{get: c.devices}, true
	case raw == "/devices.csv":
		return route{get: c.devicesCSV}, true
	case len(parts) == 3 && parts[0] == "devices" && parts[1] != "" && parts[2] != "":
		return route{get: c.device, post: c.deviceAction, args: parts[1:]}, true
	case raw == "/queue":
		return route{get: c.queue, post: c.queueAction}, true
	case raw == "/audit":
		return route{get: c.audit}, true
	case raw == "/audit.csv":
		return route{get: c.auditCSV}, true
	case raw == "/report":
		return route{get: c.report, post: c.reportCandidate}, true
	}
	return route{}, false
}

// securityHeaders: no inline script or style may run, the pages are never
// framed, no referrer leaves the console, nothing is cached.
func securityHeaders(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if ctx.IsTLS() {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
}

// static serves an embedded asset.
func (c *Console) static(ctx *fasthttp.RequestCtx, name string) {
	if name == "" || strings.Contains(name, "..") || strings.Contains(name, "/") {
		c.errorPage(ctx, nil, fasthttp.StatusNotFound, "No such file.")
		return
	}
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil {
		c.errorPage(ctx, nil, fasthttp.StatusNotFound, "No such file.")
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	ctx.SetContentType(ct)
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	ctx.SetBody(b)
}

func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("console: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (c *Console) setCookie(ctx *fasthttp.RequestCtx, name, value, path string, maxAge int) {
	ck := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(ck)
	ck.SetKey(name)
	ck.SetValue(value)
	ck.SetPath(path)
	ck.SetHTTPOnly(true)
	ck.SetSecure(ctx.IsTLS())
	ck.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	if maxAge != 0 {
		ck.SetMaxAge(maxAge)
	}
	ctx.Response.Header.SetCookie(ck)
}

// session finds the request's session and who it is now. It returns nil
// and a reason shown on the sign-in page when there is none.
func (c *Console) session(ctx *fasthttp.RequestCtx) (*session, *view, string) {
	id := string(ctx.Request.Header.Cookie(sessionCookie))
	if id == "" {
		return nil, nil, ""
	}
	now := c.now()
	c.mu.Lock()
	s, ok := c.sessions[id]
	if ok && now.After(s.expires) {
		delete(c.sessions, id)
		c.mu.Unlock()
		c.log.Info().Str("actor", s.name).Msg("console session expired")
		return nil, nil, "expired"
	}
	if !ok {
		c.mu.Unlock()
		return nil, nil, "expired"
	}
	cp := *s
	c.mu.Unlock()
	p, ok := c.principal(ctx, &cp)
	if !ok {
		c.end(id)
		return nil, nil, "revoked"
	}
	c.mu.Lock()
	if s, ok := c.sessions[id]; ok {
		s.expires = now.Add(c.gw.SessionTimeout())
	}
	c.mu.Unlock()
	return &cp, &view{P: p, CanAct: p.Role >= admin.RoleOperate, CSRF: cp.csrf, How: cp.how}, ""
}

// principal authenticates a session again: its token against the
// current tokens, its certificate against this connection's.
func (c *Console) principal(ctx *fasthttp.RequestCtx, s *session) (admin.Principal, bool) {
	switch s.how {
	case "token":
		return admin.Authenticate(c.gw.Tokens(), s.secret)
	case "certificate":
		p, ok := c.gw.ClientPrincipal(ctx.TLSConnectionState())
		return p, ok && p.Name == s.name
	case "loopback":
		if len(c.gw.Tokens()) == 0 && loopback(ctx) {
			return admin.Principal{Name: "loopback", Role: admin.RoleAdmin}, true
		}
	}
	return admin.Principal{}, false
}

func loopback(ctx *fasthttp.RequestCtx) bool {
	ip := ctx.RemoteIP()
	return ip != nil && ip.IsLoopback()
}

func (c *Console) end(id string) {
	c.mu.Lock()
	delete(c.sessions, id)
	c.mu.Unlock()
}

// start makes a session and sets its cookie.
func (c *Console) start(ctx *fasthttp.RequestCtx, s *session) {
	now := c.now()
	s.id, s.csrf, s.expires = randomToken(), randomToken(), now.Add(c.gw.SessionTimeout())
	c.mu.Lock()
	for id, o := range c.sessions {
		if now.After(o.expires) {
			delete(c.sessions, id)
		}
	}
	if len(c.sessions) >= maxSessions {
		var oldest string
		for id, o := range c.sessions {
			if oldest == "" || o.expires.Before(c.sessions[oldest].expires) {
				oldest = id
			}
		}
		delete(c.sessions, oldest)
	}
	c.sessions[s.id] = s
	c.mu.Unlock()
	c.setCookie(ctx, sessionCookie, s.id, "/", 0)
}

// csrfOK checks the form's csrf field against the session's token.
func (c *Console) csrfOK(ctx *fasthttp.RequestCtx, s *session) bool {
	got := formValue(ctx, "csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}

// formValue reads a field of an urlencoded or multipart form.
func formValue(ctx *fasthttp.RequestCtx, name string) string {
	if bytes.HasPrefix(ctx.Request.Header.ContentType(), []byte("multipart/form-data")) {
		f, err := ctx.MultipartForm()
		if err != nil || len(f.Value[name]) == 0 {
			return ""
		}
		return f.Value[name][0]
	}
	return string(ctx.PostArgs().Peek(name))
}

// toSignin sends the browser to the sign-in page and, afterwards, back to
// this page (a form's page for a POST: the form is not sent again).
func (c *Console) toSignin(ctx *fasthttp.RequestCtx, why string) {
	next := string(ctx.URI().RequestURI())
	if ctx.IsPost() {
		next = string(ctx.URI().PathOriginal())
	}
	q := url.Values{"next": {next}}
	if why != "" {
		q.Set("why", why)
	}
	seeOther(ctx, "/signin?"+q.Encode())
}

// safeNext keeps a sign-in's destination on this console: a local path,
// never another origin.
func safeNext(s string) string {
	u, err := url.Parse(s)
	if err != nil || s == "" || u.IsAbs() || u.Host != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(s, "//") ||
		strings.ContainsAny(s, "\\\r\n") || strings.HasPrefix(u.Path, "/signin") || strings.HasPrefix(u.Path, "/signout") {
		return "/"
	}
	return u.RequestURI()
}

// signinView is the sign-in page's data.
type signinView struct {
	view
	Next, Why, Error string
	Cert             string // a certificate that may sign in
	Loopback         bool   // no token configured and a loopback client
	Token            bool   // tokens are configured
}

func (c *Console) signin(ctx *fasthttp.RequestCtx) {
	if ctx.IsPost() {
		c.signinPost(ctx)
		return
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, POST")
		c.errorPage(ctx, nil, fasthttp.StatusMethodNotAllowed, "Use the sign-in form.")
		return
	}
	q := ctx.QueryArgs()
	c.signinPage(ctx, fasthttp.StatusOK, safeNext(string(q.Peek("next"))), string(q.Peek("why")), "")
}

func (c *Console) signinPage(ctx *fasthttp.RequestCtx, status int, next, why, msg string) {
	tok := randomToken()
	c.setCookie(ctx, signinCookie, tok, "/signin", 600)
	v := &signinView{view: view{Title: "Sign in", CSRF: tok}, Next: next, Error: msg, Token: len(c.gw.Tokens()) > 0}
	switch why {
	case "expired":
		v.Why = "Your session has expired. Sign in again."
	case "revoked":
		v.Why = "Your session ended: its token or certificate is no longer accepted."
	case "signedout":
		v.Why = "You are signed out."
	}
	if p, ok := c.gw.ClientPrincipal(ctx.TLSConnectionState()); ok {
		v.Cert = p.Name + " (" + p.Role.String() + ")"
	}
	v.Loopback = !v.Token && loopback(ctx)
	c.render(ctx, status, "signin", v)
}

func (c *Console) signinPost(ctx *fasthttp.RequestCtx) {
	next := safeNext(formValue(ctx, "next"))
	want := ctx.Request.Header.Cookie(signinCookie)
	got := formValue(ctx, "csrf")
	if len(want) == 0 || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
		c.log.Warn().Stringer("client", ctx.RemoteAddr()).Msg("console sign-in refused: missing or wrong CSRF token")
		c.signinPage(ctx, fasthttp.StatusForbidden, next, "", "The sign-in form had expired. Please try again.")
		return
	}
	c.setCookie(ctx, signinCookie, "", "/signin", -1)
	s := &session{how: formValue(ctx, "method")}
	var p admin.Principal
	ok := false
	switch s.how {
	case "token":
		if wait := c.api.GuessWait(ctx.RemoteIP()); wait > 0 {
			c.log.Warn().Stringer("client", ctx.RemoteAddr()).Msg("console sign-in refused: too many wrong tokens from this address")
			ctx.Response.Header.Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)+1))
			c.signinPage(ctx, fasthttp.StatusTooManyRequests, next, "",
				"Too many wrong tokens were sent from this address. Try again in "+wait.Round(time.Minute).String()+".")
			return
		}
		s.secret = []byte(strings.TrimSpace(formValue(ctx, "token")))
		p, ok = admin.Authenticate(c.gw.Tokens(), s.secret)
		if !ok && len(s.secret) > 0 {
			c.api.GuessFailed(ctx.RemoteIP())
		}
	case "certificate":
		p, ok = c.gw.ClientPrincipal(ctx.TLSConnectionState())
	case "loopback":
		p, ok = c.principal(ctx, s)
	}
	if !ok {
		c.log.Warn().Str("method", s.how).Stringer("client", ctx.RemoteAddr()).Msg("console sign-in refused")
		c.signinPage(ctx, fasthttp.StatusUnauthorized, next, "", "That did not sign you in: the token is unknown, or no admin certificate was presented.")
		return
	}
	s.name = p.Name
	c.start(ctx, s)
	c.log.Info().Str("actor", p.Name).Str("role", p.Role.String()).Str("method", s.how).Stringer("client", ctx.RemoteAddr()).Msg("console sign-in")
	seeOther(ctx, next)
}

func (c *Console) signout(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		c.errorPage(ctx, nil, fasthttp.StatusMethodNotAllowed, "Sign out with the button in the page header.")
		return
	}
	s, _, _ := c.session(ctx)
	if s != nil {
		if !c.csrfOK(ctx, s) {
			c.errorPage(ctx, nil, fasthttp.StatusForbidden, "This form was refused: it did not carry this session's security token.")
			return
		}
		c.end(s.id)
	}
	c.setCookie(ctx, sessionCookie, "", "/", -1)
	seeOther(ctx, "/signin?why=signedout")
}

// view is what every page's template gets.
type view struct {
	Title  string
	Nav    string
	P      admin.Principal
	How    string
	CanAct bool
	CSRF   string
	Flash  string
	Error  string
	Data   any
}

// SignedIn reports a page shown in a session.
func (v *view) SignedIn() bool { return v.P.Name != "" }

func (c *Console) render(ctx *fasthttp.RequestCtx, status int, page string, data any) {
	t, ok := c.pages[page]
	if !ok {
		panic("console: no template " + page)
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout.html", data); err != nil {
		c.log.Error().Err(err).Str("page", page).Msg("console template failed")
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("the page could not be rendered\n")
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetBody(b.Bytes())
}

// errorPage shows msg with status; v is the session's view, or nil.
func (c *Console) errorPage(ctx *fasthttp.RequestCtx, v *view, status int, msg string) {
	if v == nil {
		v = &view{}
	}
	e := *v
	e.Title = fasthttp.StatusMessage(status)
	e.Error = msg
	e.Data = status
	c.render(ctx, status, "error", &e)
}

// seeOther answers 303 with a relative Location (the console never names
// its own host, which a proxy in front may rewrite).
func seeOther(ctx *fasthttp.RequestCtx, loc string) {
	ctx.Response.Header.Set("Location", loc)
	ctx.SetStatusCode(fasthttp.StatusSeeOther)
}
