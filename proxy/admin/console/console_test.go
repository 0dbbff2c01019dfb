package console

import (
	"bytes"
	"crypto/tls"
	"mime/multipart"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/access"
	"github.com/easgate/easgate/proxy/admin"
	"github.com/easgate/easgate/proxy/config"
)

// fakeGateway is an Access built from a config with two tokens.
type fakeGateway struct {
	acc    *access.Access
	tokens []admin.Token
	mu     sync.Mutex
	woken  []string
	cert   *admin.Principal
}

func (g *fakeGateway) Access() *access.Access { return g.acc }
func (g *fakeGateway) Tokens() []admin.Token  { return g.tokens }
func (g *fakeGateway) Wake(user, device string) {
	g.mu.Lock()
	g.woken = append(g.woken, user+" "+device)
	g.mu.Unlock()
}
func (g *fakeGateway) Quarantine(string, string) (admin.QuarantineInfo, bool) {
	return admin.QuarantineInfo{}, false
}
func (g *fakeGateway) HeldLongPolls() int64 { return 3 }
func (g *fakeGateway) Upstreams() []Upstream {
	return []Upstream{{Name: "cas1.corp.example.com", Healthy: true}, {Name: "cas2.corp.example.com"}}
}
func (g *fakeGateway) SessionTimeout() time.Duration { return 10 * time.Minute }
func (g *fakeGateway) Enabled() bool                 { return true }
func (g *fakeGateway) ClientPrincipal(cs *tls.ConnectionState) (admin.Principal, bool) {
	if g.cert == nil {
		return admin.Principal{}, false
	}
	return *g.cert, true
}

const (
	opToken   = "op-secret-5f2a9c"
	readToken = "read-secret-77b1e0"
)

type env struct {
	t   testing.TB
	gw  *fakeGateway
	api *admin.API
	c   *Console
	now time.Time
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "op"), []byte(opToken+"\n"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "read"), []byte(readToken), 0o600)
	cfg := config.Default()
	cfg.Policy.DefaultAccess = config.AccessQuarantine
	cfg.Auth.Domains = []string{"corp.example.com"}
	acc, err := access.Build(cfg, zerolog.Nop(), access.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = acc.Close() })
	toks, err := admin.LoadTokens(&config.Admin{Tokens: []config.AdminToken{
		{Name: "helpdesk", File: filepath.Join(dir, "op"), Role: config.RoleOperate},
		{Name: "grafana", File: filepath.Join(dir, "read"), Role: config.RoleRead},
	}})
	if err != nil {
		t.Fatal(err)
	}
	gw := &fakeGateway{acc: acc, tokens: toks}
	api := admin.New(gw, zerolog.Nop())
	e := &env{t: t, gw: gw, api: api, c: New(api, gw, zerolog.Nop()), now: time.Now()}
	e.c.now = func() time.Time { return e.now }
	for _, d := range []struct{ user, id string }{
		{"alice@corp.example.com", "ApplF17XK2Q8N0PA"},
		{"alice@corp.example.com", "ApplG22YY3Q8N0PB"},
		{"bob@corp.example.com", "SEC1F2E3D4C5B6A79"},
	} {
		seen(gw, d.user, d.id, policy.Quarantine)
	}
	return e
}

// seen records a device of user with its decision.
func seen(g *fakeGateway, user, dev string, a policy.Action) {
	d := g.acc.Devices
	now := time.Now()
	ua := []byte("iOS/17.5.1 (21F90) dataaccessd/1.0")
	info := eas.DeviceInfo{Model: "iPhone15,2", OS: "iOS 17.5.1 21F90", FriendlyName: user + "'s iPhone"}
	d.Touch([]byte(user), []byte(dev), []byte("iPhone"), ua, now)
	d.Update([]byte(user), []byte(dev), now, func(r *policy.DeviceRecord) { r.Info = info })
	dec := policy.Decision{Action: a, Enforced: true}
	c := eas.Identify(ua, []byte("iPhone"), &info)
	d.Observe([]byte(user), []byte(dev), &dec, &c, policy.Observation{Command: eas.CmdPing, Version: eas.V161, Addr: netip.MustParseAddr("192.0.2.7"), Now: now})
}

// resp is one answer of the console.
type resp struct {
	status  int
	body    string
	header  *fasthttp.ResponseHeader
	cookies map[string]string
}

// do sends one request from a loopback client; cookie is the session.
func (e *env) do(method, target, cookie string, form url.Values) resp {
	e.t.Helper()
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(target)
	if cookie != "" {
		req.Header.SetCookie(sessionCookie, cookie)
	}
	if form != nil {
		req.Header.SetContentType("application/x-www-form-urlencoded")
		req.SetBodyString(form.Encode())
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
	if !e.c.Serve(&ctx) {
		return resp{status: -1}
	}
	r := resp{status: ctx.Response.StatusCode(), body: string(ctx.Response.Body()), header: &ctx.Response.Header, cookies: map[string]string{}}
	for k, v := range ctx.Response.Header.Cookies() {
		r.cookies[string(k)] = string(v)
	}
	return r
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs in with token and returns the session cookie and the CSRF
// token of its forms.
func (e *env) signIn(token string) (string, string) {
	e.t.Helper()
	var req fasthttp.Request
	req.SetRequestURI("/signin?next=%2Fqueue")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
	e.c.Serve(&ctx)
	m := csrfField.FindStringSubmatch(string(ctx.Response.Body()))
	if m == nil {
		e.t.Fatalf("no CSRF field on the sign-in page: %s", ctx.Response.Body())
	}
	pre := string(ctx.Response.Header.PeekCookie(signinCookie))
	var ck fasthttp.Cookie
	_ = ck.ParseBytes([]byte(pre))
	var post fasthttp.Request
	post.Header.SetMethod("POST")
	post.SetRequestURI("/signin")
	post.Header.SetCookie(signinCookie, string(ck.Value()))
	post.Header.SetContentType("application/x-www-form-urlencoded")
	post.SetBodyString(url.Values{"csrf": {m[1]}, "method": {"token"}, "token": {token}, "next": {"/queue"}}.Encode())
	var pctx fasthttp.RequestCtx
	pctx.Init(&post, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
	e.c.Serve(&pctx)
	if pctx.Response.StatusCode() != fasthttp.StatusSeeOther || string(pctx.Response.Header.Peek("Location")) != "/queue" {
		e.t.Fatalf("sign-in: %d %s %s", pctx.Response.StatusCode(), pctx.Response.Header.Peek("Location"), pctx.Response.Body())
	}
	raw := string(pctx.Response.Header.PeekCookie(sessionCookie))
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "path=/"} {
		if !strings.Contains(raw, want) {
			e.t.Errorf("session cookie %q lacks %s", raw, want)
		}
	}
	if strings.Contains(strings.ToLower(raw), "secure") {
		e.t.Errorf("session cookie %q is Secure on a plain connection", raw)
	}
	var sc fasthttp.Cookie
	_ = sc.ParseBytes([]byte(raw))
	page := e.do("GET", "/queue", string(sc.Value()), nil)
	m = csrfField.FindStringSubmatch(page.body)
	if m == nil {
		e.t.Fatalf("no CSRF field on the queue: %d %s", page.status, page.body)
	}
	return string(sc.Value()), m[1]
}

func TestSignedOutRequestsGoToSignIn(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/", "/devices?q=x", "/queue", "/audit", "/report", "/devices/alice/ApplF17XK2Q8N0PA"} {
		r := e.do("GET", p, "", nil)
		loc := string(r.header.Peek("Location"))
		if r.status != fasthttp.StatusSeeOther || !strings.HasPrefix(loc, "/signin?next=") {
			t.Errorf("%s: %d %q", p, r.status, loc)
		}
	}
	if r := e.do("GET", "/", "forged-session-id", nil); r.status != fasthttp.StatusSeeOther {
		t.Errorf("an unknown session: %d", r.status)
	}
	for _, p := range []string{"/api/v1/devices", "/metrics", "/healthz", "/readyz"} {
		if r := e.do("GET", p, "", nil); r.status != -1 {
			t.Errorf("%s was answered by the console: %d", p, r.status)
		}
	}
}

func TestPagesAndHeaders(t *testing.T) {
	e := newEnv(t)
	sid, _ := e.signIn(opToken)
	for _, tc := range []struct {
		path   string
		status int
		want   []string
	}{
		{"/", 200, []string{"Dashboard", `id="count-quarantined">3<`, "cas2.corp.example.com", "<svg",
			`id="today">3 devices entered quarantine, 0 were blocked, and administrators took 0 actions.`}},
		{"/devices", 200, []string{"Devices 1–3 of 3", "ApplF17XK2Q8N0PA", "Export CSV"}},
		{"/devices?user=alice", 200, []string{"Devices 1–2 of 2", "ApplG22YY3Q8N0PB"}},
		{"/devices?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", 200, []string{"&lt;script&gt;alert(1)&lt;/script&gt;"}},
		{"/devices?state=%3Cb%3Ebold", 400, []string{`state &#34;&lt;b&gt;bold&#34;`}},
		{"/devices?page_size=0", 400, []string{"page size"}},
		{"/devices?page_size=2&sort=device_id", 200, []string{"Devices 1–2 of 3", `<option value="2" selected>2</option>`, "Next page"}},
		{"/devices/alice%40corp.example.com/ApplF17XK2Q8N0PA", 200, []string{"The policy, rule by rule", "default-access", "Approve"}},
		{"/devices/alice/nope", 404, []string{"no device"}},
		{"/queue", 200, []string{"3 devices in quarantine", `name="device"`}},
		{"/audit", 200, []string{"0 entries", "No entries."}},
		{"/audit?since=yesterday", 400, []string{"since"}},
		{"/report", 200, []string{"Running policy", "3 devices of 2 users"}},
		{"/nope", 404, []string{"This page does not exist"}},
		{"/devices/a/b/c", 404, nil},
		{"/static/console.css", 200, []string{":root"}},
		{"/static/../console.go", 404, nil},
		{"/devices.csv?user=bob", 200, []string{"user,device_id", "SEC1F2E3D4C5B6A79"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := e.do("GET", tc.path, sid, nil)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %.400s", r.status, tc.status, r.body)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("no %q in %s", w, r.body)
				}
			}
			if strings.Contains(r.body, "<script>alert") {
				t.Error("unescaped script")
			}
			csp := string(r.header.Peek("Content-Security-Policy"))
			if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("CSP %q", csp)
			}
			if string(r.header.Peek("X-Frame-Options")) != "DENY" || string(r.header.Peek("Referrer-Policy")) != "no-referrer" {
				t.Errorf("headers: %s", r.header.String())
			}
		})
	}
}

// The pages carry no inline script or style for the CSP to refuse.
func TestNoInlineScriptOrStyle(t *testing.T) {
	e := newEnv(t)
	sid, _ := e.signIn(opToken)
	inline := regexp.MustCompile(`(?i)<script>|<script [^>]*>[^<]|<style|\sstyle=|\son[a-z]+=|javascript:`)
	for _, p := range []string{"/", "/devices", "/queue", "/audit", "/report", "/devices/alice/ApplF17XK2Q8N0PA", "/signin"} {
		r := e.do("GET", p, sid, nil)
		if m := inline.FindString(r.body); m != "" {
			t.Errorf("%s: inline %q", p, m)
		}
	}
}

func TestActionsNeedCSRFAndRole(t *testing.T) {
	e := newEnv(t)
	sid, csrf := e.signIn(opToken)
	dev := "/devices/alice%40corp.example.com/ApplF17XK2Q8N0PA"
	audit := func() int {
		es, err := e.api.Audit(admin.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"no token", url.Values{"action": {"allow"}}},
		{"wrong token", url.Values{"action": {"allow"}, "csrf": {"x" + csrf}}},
		{"empty token", url.Values{"action": {"allow"}, "csrf": {""}}},
	} {
		r := e.do("POST", dev, sid, tc.form)
		if r.status != fasthttp.StatusForbidden || !strings.Contains(r.body, "security token") {
			t.Errorf("%s: %d %.300s", tc.name, r.status, r.body)
		}
	}
	if n := audit(); n != 0 {
		t.Fatalf("refused forms acted: %d entries", n)
	}
	r := e.do("POST", dev, sid, url.Values{"action": {"allow"}, "csrf": {csrf}, "note": {"ticket 4711"}})
	if r.status != fasthttp.StatusSeeOther {
		t.Fatalf("allow: %d %.500s", r.status, r.body)
	}
	es, _ := e.api.Audit(admin.AuditQuery{})
	if len(es) != 1 || es[0].Actor != "helpdesk" || es[0].Action != "allow" || es[0].Note != "ticket 4711" || es[0].After != "allowed (override allow)" {
		t.Fatalf("audit %+v", es)
	}
	if len(e.gw.woken) != 1 {
		t.Fatalf("woken %v", e.gw.woken)
	}
	// The queue's multi-select: one ApplyAll, entries marked bulk.
	r = e.do("POST", "/queue", sid, url.Values{"csrf": {csrf}, "action": {"block"}, "note": {"lost"},
		"device": {"alice%40corp.example.com/ApplG22YY3Q8N0PB", "bob%40corp.example.com/SEC1F2E3D4C5B6A79"}})
	if r.status != fasthttp.StatusSeeOther || string(r.header.Peek("Location")) != "/queue?done=2&action=block" {
		t.Fatalf("bulk block: %d %s %.300s", r.status, r.header.Peek("Location"), r.body)
	}
	if es, _ = e.api.Audit(admin.AuditQuery{}); len(es) != 3 || !es[1].Bulk || !es[2].Bulk || es[2].Note != "lost" {
		t.Fatalf("audit after bulk %+v", es)
	}
	if r = e.do("POST", "/queue", sid, url.Values{"csrf": {csrf}, "action": {"block"}, "device": {"nobody/x"}}); r.status != 404 {
		t.Fatalf("unknown device in the queue form: %d", r.status)
	}
	if r = e.do("POST", "/queue", sid, url.Values{"csrf": {csrf}, "action": {"block"}}); r.status != 400 || !strings.Contains(r.body, "select at least one") {
		t.Fatalf("nothing ticked: %d", r.status)
	}

	// A read token sees the actions disabled and is refused when it posts.
	rsid, rcsrf := e.signIn(readToken)
	page := e.do("GET", dev, rsid, nil)
	if !strings.Contains(page.body, `<fieldset disabled>`) || !strings.Contains(page.body, `id="readonly"`) {
		t.Fatalf("read role: actions not disabled: %.2000s", page.body)
	}
	r = e.do("POST", dev, rsid, url.Values{"action": {"block"}, "csrf": {rcsrf}})
	if r.status != fasthttp.StatusForbidden || !strings.Contains(r.body, "actions need operate") {
		t.Fatalf("read role post: %d %.300s", r.status, r.body)
	}
	r = e.do("POST", "/queue", rsid, url.Values{"csrf": {rcsrf}, "action": {"allow"}, "device": {"bob%40corp.example.com/SEC1F2E3D4C5B6A79"}})
	if r.status != fasthttp.StatusForbidden {
		t.Fatalf("read role bulk: %d", r.status)
	}
	if n := audit(); n != 3 {
		t.Fatalf("the read role acted: %d entries", n)
	}
	// One session's CSRF token does not work for another.
	if r = e.do("POST", dev, rsid, url.Values{"action": {"block"}, "csrf": {csrf}}); r.status != fasthttp.StatusForbidden || !strings.Contains(r.body, "security token") {
		t.Fatalf("another session's token: %d", r.status)
	}
}

func TestSessionsExpireAndEnd(t *testing.T) {
	e := newEnv(t)
	sid, csrf := e.signIn(opToken)
	e.now = e.now.Add(9 * time.Minute)
	if r := e.do("GET", "/", sid, nil); r.status != 200 {
		t.Fatalf("within the timeout: %d", r.status)
	}
	e.now = e.now.Add(9 * time.Minute) // idle 9 min after the last page: still on
	if r := e.do("GET", "/audit", sid, nil); r.status != 200 {
		t.Fatalf("the timeout is not idle time: %d", r.status)
	}
	e.now = e.now.Add(11 * time.Minute)
	r := e.do("GET", "/devices?user=alice", sid, nil)
	if loc := string(r.header.Peek("Location")); r.status != fasthttp.StatusSeeOther || loc != "/signin?next=%2Fdevices%3Fuser%3Dalice&why=expired" {
		t.Fatalf("expired: %d %q", r.status, loc)
	}
	if r = e.do("POST", "/queue?x=1", sid, url.Values{"csrf": {csrf}, "action": {"block"}}); r.status != fasthttp.StatusSeeOther ||
		string(r.header.Peek("Location")) != "/signin?next=%2Fqueue&why=expired" {
		t.Fatalf("a form of an expired session: %d %s", r.status, r.header.Peek("Location"))
	}
	// A token removed by a reload ends its session at the next page.
	sid, _ = e.signIn(opToken)
	e.gw.tokens = e.gw.tokens[1:]
	if r = e.do("GET", "/", sid, nil); r.status != fasthttp.StatusSeeOther || !strings.Contains(string(r.header.Peek("Location")), "why=revoked") {
		t.Fatalf("revoked token: %d %s", r.status, r.header.Peek("Location"))
	}
	// Sign-out ends the session.
	sid, csrf = e.signIn(readToken)
	if r = e.do("POST", "/signout", sid, url.Values{"csrf": {csrf}}); r.status != fasthttp.StatusSeeOther {
		t.Fatalf("sign-out: %d", r.status)
	}
	if r = e.do("GET", "/", sid, nil); r.status != fasthttp.StatusSeeOther {
		t.Fatalf("after sign-out: %d", r.status)
	}
}

func TestSignInRefusals(t *testing.T) {
	e := newEnv(t)
	// No CSRF cookie: refused even with a good token.
	r := e.do("POST", "/signin", "", url.Values{"csrf": {"x"}, "method": {"token"}, "token": {opToken}})
	if r.status != fasthttp.StatusForbidden || r.cookies[sessionCookie] != "" {
		t.Fatalf("sign-in without its CSRF cookie: %d %v", r.status, r.cookies)
	}
	page := e.do("GET", "/signin", "", nil)
	if page.status != 200 || !strings.Contains(page.body, `type="password"`) || strings.Contains(page.body, "Sign in with this certificate") {
		t.Fatalf("sign-in page: %d", page.status)
	}
	e.gw.cert = &admin.Principal{Name: "cert:alice@corp.example.com", Role: admin.RoleOperate}
	if page = e.do("GET", "/signin", "", nil); !strings.Contains(page.body, "cert:alice@corp.example.com (operate)") {
		t.Fatalf("no certificate sign-in offered")
	}
}

func TestSafeNext(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/devices?user=alice", "/devices?user=alice"},
		{"", "/"},
		{"https://evil.example/", "/"},
		{"//evil.example/x", "/"},
		{"/\\evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"/signin?next=/", "/"},
		{"devices", "/"},
	} {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCandidateConfigErrorsArePositioned(t *testing.T) {
	e := newEnv(t)
	sid, csrf := e.signIn(opToken)
	bad := "listen:\n  address: \":443\"\n  plain_http: maybe\npolicy:\n  default_acces: allow\n"
	r := e.do("POST", "/report", sid, url.Values{"csrf": {csrf}, "config": {bad}})
	if r.status != fasthttp.StatusUnprocessableEntity {
		t.Fatalf("bad candidate: %d %.500s", r.status, r.body)
	}
	for _, w := range []string{"line 3, column 15", "listen.plain_http", "line 5, column 3", "default_acces", "nothing was evaluated"} {
		if !strings.Contains(r.body, w) {
			t.Errorf("no %q in %.4000s", w, r.body)
		}
	}
	good := "listen:\n  plain_http: true\nupstreams:\n  servers:\n    - url: http://127.0.0.1:1\nauth:\n  domains: [corp.example.com]\npolicy:\n  default_access: block\n"
	r = e.do("POST", "/report", sid, url.Values{"csrf": {csrf}, "config": {good}})
	if r.status != 200 || !strings.Contains(r.body, ">3 devices</strong> would change state") {
		t.Fatalf("good candidate: %d %.6000s", r.status, r.body)
	}
	if r = e.do("POST", "/report", sid, url.Values{"csrf": {csrf}, "config": {" "}}); r.status != 400 {
		t.Fatalf("empty candidate: %d", r.status)
	}
}

// An uploaded candidate (multipart, as the file field sends it) is
// evaluated like a pasted one, and its errors name the uploaded file.
func TestCandidateUpload(t *testing.T) {
	e := newEnv(t)
	sid, csrf := e.signIn(opToken)
	post := func(file, content string) resp {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		_ = w.WriteField("csrf", csrf)
		_ = w.WriteField("config", "")
		fw, _ := w.CreateFormFile("file", file)
		_, _ = fw.Write([]byte(content))
		_ = w.Close()
		var req fasthttp.Request
		req.Header.SetMethod("POST")
		req.SetRequestURI("/report")
		req.Header.SetCookie(sessionCookie, sid)
		req.Header.SetContentType(w.FormDataContentType())
		req.SetBody(b.Bytes())
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
		e.c.Serve(&ctx)
		return resp{status: ctx.Response.StatusCode(), body: string(ctx.Response.Body())}
	}
	r := post(`C:\configs\next.yaml`, "policy:\n  mode: sometimes\n")
	if r.status != fasthttp.StatusUnprocessableEntity || !strings.Contains(r.body, "Errors in next.yaml") || !strings.Contains(r.body, "line 2, column 9") {
		t.Fatalf("uploaded candidate with errors: %d %.3000s", r.status, r.body)
	}
	good := "listen:\n  plain_http: true\nupstreams:\n  servers:\n    - url: http://127.0.0.1:1\nauth:\n  domains: [corp.example.com]\npolicy:\n  mode: report\n"
	if r = post("next.yaml", good); r.status != 200 || !strings.Contains(r.body, "mode report") {
		t.Fatalf("uploaded candidate: %d %.3000s", r.status, r.body)
	}
}

// With admin.console.disabled the console answers nothing (the API and
// /metrics still do).
func TestConsoleDisabled(t *testing.T) {
	e := newEnv(t)
	c := New(e.api, disabledGateway{e.gw}, zerolog.Nop())
	var req fasthttp.Request
	req.SetRequestURI("/signin")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
	if c.Serve(&ctx) {
		t.Fatal("a disabled console answered")
	}
}

type disabledGateway struct{ *fakeGateway }

func (disabledGateway) Enabled() bool { return false }

// A wiped phone's new device id shows its allowed predecessor, and
// "approve like" carries the approval over through Apply (Like).
func TestPredecessorApproveLike(t *testing.T) {
	e := newEnv(t)
	seen(e.gw, "carol@corp.example.com", "OLDPHONE1", policy.Allow)
	seen(e.gw, "carol@corp.example.com", "NEWPHONE2", policy.Quarantine)
	sid, csrf := e.signIn(opToken)
	dev := "/devices/carol%40corp.example.com/NEWPHONE2"
	r := e.do("GET", dev, sid, nil)
	for _, w := range []string{`id="predecessor"`, `href="/devices/carol@corp.example.com/OLDPHONE1"`, `id="act-like"`} {
		if !strings.Contains(r.body, w) {
			t.Fatalf("no %q on the device page: %.4000s", w, r.body)
		}
	}
	if r = e.do("POST", dev, sid, url.Values{"csrf": {csrf}, "action": {"allow-like"}, "like": {"OLDPHONE1"}}); r.status != fasthttp.StatusSeeOther {
		t.Fatalf("approve like: %d %.500s", r.status, r.body)
	}
	es, _ := e.api.Audit(admin.AuditQuery{DeviceID: "NEWPHONE2"})
	if len(es) != 1 || es[0].Action != "allow" || es[0].Like != "OLDPHONE1" {
		t.Fatalf("audit %+v", es)
	}
	if r = e.do("GET", dev+"?done=allow", sid, nil); !strings.Contains(r.body, "Approved.") || strings.Contains(r.body, `id="predecessor"`) {
		t.Fatalf("after approve like: %.3000s", r.body)
	}
}

// Without any admin token the console, like the API, answers loopback
// clients only: they sign in as the loopback administrator.
func TestLoopbackSignInWithoutTokens(t *testing.T) {
	e := newEnv(t)
	e.gw.tokens = nil
	signin := func(remote net.IP) (int, string) {
		var req fasthttp.Request
		req.SetRequestURI("/signin")
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: remote, Port: 5555}, nil)
		e.c.Serve(&ctx)
		m := csrfField.FindStringSubmatch(string(ctx.Response.Body()))
		if m == nil {
			return 0, string(ctx.Response.Body())
		}
		var ck fasthttp.Cookie
		_ = ck.ParseBytes(ctx.Response.Header.PeekCookie(signinCookie))
		var post fasthttp.Request
		post.Header.SetMethod("POST")
		post.SetRequestURI("/signin")
		post.Header.SetCookie(signinCookie, string(ck.Value()))
		post.Header.SetContentType("application/x-www-form-urlencoded")
		post.SetBodyString(url.Values{"csrf": {m[1]}, "method": {"loopback"}, "next": {"/"}}.Encode())
		var pctx fasthttp.RequestCtx
		pctx.Init(&post, &net.TCPAddr{IP: remote, Port: 5555}, nil)
		e.c.Serve(&pctx)
		return pctx.Response.StatusCode(), string(ctx.Response.Body())
	}
	if st, page := signin(net.IPv4(127, 0, 0, 1)); st != fasthttp.StatusSeeOther || !strings.Contains(page, "Continue as loopback administrator") {
		t.Fatalf("loopback: %d", st)
	}
	st, page := signin(net.IPv4(192, 0, 2, 10))
	if st != 0 || strings.Contains(page, "Continue as loopback") || !strings.Contains(page, "No way to sign in from here") {
		t.Fatalf("a remote client without tokens was offered a form: %d %.2000s", st, page)
	}
	// Posting the loopback sign-in anyway (with a matching CSRF pair) fails.
	var post fasthttp.Request
	post.Header.SetMethod("POST")
	post.SetRequestURI("/signin")
	post.Header.SetCookie(signinCookie, "pair")
	post.Header.SetContentType("application/x-www-form-urlencoded")
	post.SetBodyString(url.Values{"csrf": {"pair"}, "method": {"loopback"}}.Encode())
	var ctx fasthttp.RequestCtx
	ctx.Init(&post, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 5555}, nil)
	e.c.Serve(&ctx)
	if ctx.Response.StatusCode() != fasthttp.StatusUnauthorized || len(ctx.Response.Header.PeekCookie(sessionCookie)) != 0 {
		t.Fatalf("a remote loopback sign-in: %d", ctx.Response.StatusCode())
	}
}

// Paging follows the API's page tokens and keeps the filter.
func TestDevicesPaging(t *testing.T) {
	e := newEnv(t)
	sid, _ := e.signIn(opToken)
	r := e.do("GET", "/devices?page_size=2&sort=device_id", sid, nil)
	m := regexp.MustCompile(`href="([^"]+)" id="next"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no next page link: %.3000s", r.body)
	}
	next := strings.ReplaceAll(m[1], "&amp;", "&")
	if !strings.Contains(next, "sort=device_id") || !strings.Contains(next, "page_size=2") {
		t.Fatalf("the next link drops the filter: %s", next)
	}
	r = e.do("GET", next, sid, nil)
	if !strings.Contains(r.body, "Devices 3–3 of 3") || !strings.Contains(r.body, "SEC1F2E3D4C5B6A79") || !strings.Contains(r.body, "First page") || strings.Contains(r.body, `id="next"`) {
		t.Fatalf("page 2: %.3000s", r.body)
	}
	if r = e.do("GET", "/devices?page_token=bm9wZQ", sid, nil); r.status != 400 || !strings.Contains(r.body, "not a token this API gave out") {
		t.Fatalf("a forged page token: %d", r.status)
	}
}

// TestSignInGuessesLimited: wrong tokens typed into the sign-in form count
// like wrong bearer tokens of the API (admin.GuessLimit per address);
// then even the right token is refused with 429 and a message, and the
// API refuses that address too.
func TestSignInGuessesLimited(t *testing.T) {
	e := newEnv(t)
	post := func(token string) resp {
		page := e.do("GET", "/signin", "", nil)
		m := csrfField.FindStringSubmatch(page.body)
		if m == nil {
			t.Fatalf("no CSRF field on the sign-in page")
		}
		var req fasthttp.Request
		req.Header.SetMethod("POST")
		req.SetRequestURI("/signin")
		var ck fasthttp.Cookie
		_ = ck.Parse(page.cookies[signinCookie])
		req.Header.SetCookie(signinCookie, string(ck.Value()))
		req.Header.SetContentType("application/x-www-form-urlencoded")
		req.SetBodyString(url.Values{"csrf": {m[1]}, "method": {"token"}, "token": {token}}.Encode())
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
		e.c.Serve(&ctx)
		return resp{status: ctx.Response.StatusCode(), body: string(ctx.Response.Body()), header: &ctx.Response.Header}
	}
	for i := 0; i < admin.GuessLimit; i++ {
		if r := post("not-the-token"); r.status != fasthttp.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i+1, r.status)
		}
	}
	r := post(opToken)
	if r.status != fasthttp.StatusTooManyRequests || !strings.Contains(r.body, "Too many wrong tokens") || len(r.header.Peek("Retry-After")) == 0 {
		t.Fatalf("right token after %d wrong ones: %d %q; want 429 with a message and Retry-After", admin.GuessLimit, r.status, r.header.Peek("Retry-After"))
	}
	var req fasthttp.Request
	req.SetRequestURI("/api/v1/devices")
	req.Header.Set("Authorization", "Bearer "+opToken)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5556}, nil)
	e.api.Gate(&ctx)
	if ctx.Response.StatusCode() != fasthttp.StatusTooManyRequests {
		t.Errorf("the API after the console's wrong tokens: %d, want 429", ctx.Response.StatusCode())
	}
}
