package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/bench"
	"github.com/easgate/easgate/proxy/admin"
)

// The web console (issue 19) in a real browser: Debian's chromium, driven
// with chromedp, through `easgate serve`, a fake CAS and an easbench
// fleet. It runs with EASGATE_BROWSER=1 (the .ci/run step sets it) or
// EASGATE_SCREENSHOTS=DIR, which also saves every page at 1366×768 and
// 1920×1080 into DIR. Without chromium it skips; with CI=true it fails.

const consoleConfig = `listen:
  address: %q
  plain_http: true
upstreams:
  servers:
    - url: http://%s
  health_check:
    interval: 2s
    timeout: 1s
auth:
  domains: [corp.example.com]
policy:
  mode: enforce
  default_access: quarantine
  discovery_period: 0s
  rules:
    - name: outlook-mobile
      match: {client: outlook-mobile}
      access: allow
state:
  path: %s
admin:
  address: %q
  tokens:
    - {name: helpdesk, file: %s, role: operate}
    - {name: viewer, file: %s, role: read}
  console:
    session_timeout: %s
log:
  level: info
  access_log: %s
`

// sessionTimeout is the console's idle timeout in this test: long
// enough for the slowest step of the flow, short enough to wait out.
const sessionTimeout = 30 * time.Second

type consoleRig struct {
	t         *testing.T
	base      string // the admin listener, http://127.0.0.1:port
	accessLog string
	opToken   string
	shots     string // screenshot directory, "" for none
}

// startConsoleRig runs the fake CAS, easgate serve and a fleet of nine
// phones (three each of iOS Mail, Samsung Email and Outlook: the first
// two quarantined by default_access, Outlook allowed by a rule).
func startConsoleRig(t *testing.T) *consoleRig {
	t.Helper()
	bin := easgateBinary(t) // service_test.go
	dir := t.TempDir()
	cas := bench.NewFakeCAS(bench.FakeCASConfig{Messages: 3})
	casLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go cas.Serve(casLn)
	t.Cleanup(func() { _ = cas.Close() })

	r := &consoleRig{t: t, accessLog: filepath.Join(dir, "access.log"), opToken: "op-4f1e9a7c2b"}
	opFile, readFile := filepath.Join(dir, "helpdesk.token"), filepath.Join(dir, "viewer.token")
	_ = os.WriteFile(opFile, []byte(r.opToken+"\n"), 0o600)
	_ = os.WriteFile(readFile, []byte("read-8d2c6b10"), 0o600)
	addr, adminAddr := freeAddr(t), freeAddr(t) // shutdown_test.go
	r.base = "http://" + adminAddr
	cfg := fmt.Sprintf(consoleConfig, addr, casLn.Addr().String(), filepath.Join(dir, "state.db"), adminAddr, opFile, readFile,
		sessionTimeout, r.accessLog)
	path := filepath.Join(dir, "easgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("easgate serve's log:\n%s", stderr.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _, err := fasthttp.Get(nil, r.base+"/readyz")
		if err == nil && status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("easgate serve is not ready: %v %d\n%s", err, status, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The fleet runs past the end of the test; the gateway's cleanup ends
	// its connections.
	go func() {
		_, _ = bench.Run(bench.RunConfig{Target: "http://" + addr, Devices: 9, Duration: 3 * time.Minute,
			Mix: map[string]int{"ios": 1, "samsung": 1, "outlook": 1}, UserPrefix: "user", Password: "pw",
			Heartbeat: 295 * time.Second, TimeScale: 1, Timeout: 30 * time.Second, SendMailRate: 0.0001, AttachmentRate: 0.0001})
	}()
	return r
}

// api calls the admin API with the operate token (test set-up and
// cross-checks only: the flows go through the browser).
func (r *consoleRig) api(path string, out any) {
	r.t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(r.base + path)
	req.Header.Set("Authorization", "Bearer "+r.opToken)
	if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil || resp.StatusCode() != 200 {
		r.t.Fatalf("GET %s: %v %d %s", path, err, resp.StatusCode(), resp.Body())
	}
	if err := json.Unmarshal(resp.Body(), out); err != nil {
		r.t.Fatal(err)
	}
}

// accessEntries reads the access log.
func (r *consoleRig) accessEntries() []map[string]any {
	data, err := os.ReadFile(r.accessLog)
	if err != nil {
		return nil
	}
	var out []map[string]any
	for _, line := range strings.Split(string(data), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// viewports are the sizes every page is checked at: a laptop, a wide
// screen, and the laptop at 200 % zoom (half as many CSS pixels, each
// drawn twice). Screenshots are taken at the first two.
var viewports = []struct {
	w, h  int64
	scale float64
	shot  bool
}{{1366, 768, 1, true}, {1920, 1080, 1, true}, {683, 384, 2, false}}

// look checks that the page fits every viewport's width (nothing runs off
// to the side; wide tables scroll inside their own box) and saves it at
// 1366×768 and 1920×1080 when screenshots are asked for.
func (r *consoleRig) look(ctx context.Context, name string) {
	r.t.Helper()
	// Every control has a label a screen reader reads, and every button
	// and link says what it does.
	unlabelled := eval[[]string](r.t, ctx, `[...document.querySelectorAll("input:not([type=hidden]), select, textarea, button, a")]
		.filter(e => e.tagName === "A" || e.tagName === "BUTTON" ? !(e.textContent.trim() || e.getAttribute("aria-label")) :
			!(e.labels && e.labels.length) && !e.getAttribute("aria-label"))
		.map(e => e.outerHTML.slice(0, 80))`)
	if len(unlabelled) > 0 {
		r.t.Errorf("%s: controls without a label: %q", name, unlabelled)
	}
	if v := eval[[]string](r.t, ctx, `window.cspViolations || []`); len(v) > 0 {
		r.t.Errorf("%s: the Content-Security-Policy blocked %q", name, v)
	}
	for _, vp := range viewports {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(vp.w, vp.h, chromedp.EmulateScale(vp.scale))); err != nil {
			r.t.Fatal(err)
		}
		over := eval[[]string](r.t, ctx, `(() => {
			const w = document.documentElement.clientWidth, out = [];
			if (document.documentElement.scrollWidth > w) out.push("page " + document.documentElement.scrollWidth + "px");
			for (const e of document.querySelectorAll("main *, header *")) {
				if (e.closest(".scroll, svg, .src, select")) continue;
				const b = e.getBoundingClientRect();
				if (b.width > 0 && b.right > w + 1) out.push(e.tagName + (e.id ? "#" + e.id : "") + "." + e.className + " ends at " + Math.round(b.right));
			}
			return out.slice(0, 5);
		})()`)
		if len(over) > 0 {
			r.t.Errorf("%s at %dx%d (scale %g) overflows: %v", name, vp.w, vp.h, vp.scale, over)
		}
		if r.shots == "" || !vp.shot {
			continue
		}
		buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(r.shots, fmt.Sprintf("%s-%dx%d.png", name, vp.w, vp.h)), buf, 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(viewports[0].w, viewports[0].h)); err != nil {
		r.t.Fatal(err)
	}
}

// must runs actions or fails with what was being done.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// open navigates and returns the document's HTTP status.
func open(t *testing.T, ctx context.Context, u string) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(u))
	must(t, "open "+u, err)
	return resp.Status
}

// submit clicks a button that posts a form and returns the status of the
// page it leads to.
func submit(t *testing.T, ctx context.Context, button string) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID(button)))
	must(t, "click #"+button, err)
	return resp.Status
}

func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
	must(t, "text of #"+id, err)
	return strings.TrimSpace(s)
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	must(t, js, err)
	return v
}

func signIn(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	open(t, ctx, base+"/")
	if loc := eval[string](t, ctx, "location.pathname"); loc != "/signin" {
		t.Fatalf("a new browser is at %s, not the sign-in page", loc)
	}
	must(t, "type the token", chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("token"), token)))
	if st := submit(t, ctx, "signin-token"); st != 200 {
		t.Fatalf("sign-in: HTTP %d", st)
	}
	if loc := eval[string](t, ctx, "location.pathname"); loc != "/" {
		t.Fatalf("after sign-in the browser is at %s", loc)
	}
}

func TestConsoleInBrowser(t *testing.T) {
	shots := os.Getenv("EASGATE_SCREENSHOTS")
	if os.Getenv("EASGATE_BROWSER") != "1" && shots == "" {
		t.Skip("the console's browser test runs with EASGATE_BROWSER=1 (or EASGATE_SCREENSHOTS=DIR); it needs Debian's chromium")
	}
	chromium := needTool(t, "chromium", "chromium") // service_test.go: skips, or fails with CI=true
	r := startConsoleRig(t)
	if shots != "" {
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
		r.shots = shots
	}
	root, cancelRoot := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancelRoot()
	alloc, cancelAlloc := chromedp.NewExecAllocator(root, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.WindowSize(1366, 768),
	)...)
	defer cancelAlloc() // kills chromium
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	var dialogs sync.Mutex
	var opened []string
	onDialog := func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			dialogs.Lock()
			opened = append(opened, d.Message)
			dialogs.Unlock()
			go func() {
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			}()
		}
	}
	must(t, "start chromium", chromedp.Listen(ctx, onDialog))
	// Record what the Content-Security-Policy blocks on any page: the
	// pages must need nothing it forbids (no inline script or style).
	const watchCSP = `document.addEventListener("securitypolicyviolation",
		e => (window.cspViolations = window.cspViolations || []).push(e.violatedDirective + " " + e.blockedURI))`
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: watchCSP}); err != nil {
		t.Fatal(err)
	}

	// Sign in with the operate token: the token field has the focus.
	open(t, ctx, r.base+"/")
	r.look(ctx, "signin")
	if f := eval[string](t, ctx, "document.activeElement.id"); f != "token" {
		t.Errorf("the sign-in page focuses %q, not the token field", f)
	}
	signIn(t, ctx, r.base, r.opToken)

	// The read-only admin, in a browser context of its own (its own
	// cookies): the actions are disabled, and the server refuses them when
	// they are posted anyway.
	rctx, rcancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer rcancel()
	signIn(t, rctx, r.base, "read-8d2c6b10")
	var quarantined admin.DeviceList
	deadline := time.Now().Add(40 * time.Second)
	for {
		r.api("/api/v1/devices?state=quarantined&sort=user", &quarantined)
		if quarantined.Total >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fleet's phones did not reach quarantine: %d", quarantined.Total)
		}
		time.Sleep(300 * time.Millisecond)
	}
	target := quarantined.Devices[0]
	for _, d := range quarantined.Devices {
		if d.Client == "ios-mail" {
			target = d
			break
		}
	}
	other := quarantined.Devices[len(quarantined.Devices)-1]
	if other.DeviceID == target.DeviceID {
		other = quarantined.Devices[0]
	}
	otherPage := r.base + "/devices/" + url.PathEscape(other.User) + "/" + url.PathEscape(other.DeviceID)
	open(t, rctx, otherPage)
	if !eval[bool](t, rctx, `document.querySelector("#actions fieldset").disabled && !!document.getElementById("readonly")`) {
		t.Fatal("the read role sees the actions enabled")
	}
	open(t, rctx, r.base+"/queue")
	if !eval[bool](t, rctx, `[...document.querySelectorAll('input[name="device"]')].every(b => b.disabled) && document.querySelector("#queue fieldset").disabled`) {
		t.Fatal("the read role can tick devices in the queue")
	}
	open(t, rctx, otherPage)
	eval[bool](t, rctx, `document.querySelector("#actions fieldset").disabled = false; true`)
	if st := submit(t, rctx, "act-block"); st != 403 {
		t.Fatalf("the read role's block: HTTP %d", st)
	}
	if msg := text(t, rctx, "error"); !strings.Contains(msg, "has role read; actions need operate") {
		t.Fatalf("the read role's block was refused with %q", msg)
	}
	readIdleSince := time.Now()

	// The dashboard: every phone of the fleet holds a Ping (the quarantined
	// ones at easgate, the Outlook ones at the CAS).
	deadline = time.Now().Add(40 * time.Second)
	for {
		open(t, ctx, r.base+"/")
		if text(t, ctx, "count-held") == "9" && text(t, ctx, "count-quarantined") == "6" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dashboard: %s held, %s quarantined", text(t, ctx, "count-held"), text(t, ctx, "count-quarantined"))
		}
		time.Sleep(300 * time.Millisecond)
	}
	r.look(ctx, "dashboard")
	// The keyboard reaches the skip link first; it jumps to the content.
	must(t, "press Tab", chromedp.Do(ctx, chromedp.KeyEvent("\t")))
	if f := eval[string](t, ctx, "document.activeElement.className"); f != "skip" {
		t.Errorf("the first Tab focuses %q, not the skip link", f)
	}
	must(t, "press Enter", chromedp.Do(ctx, chromedp.KeyEvent("\r")))
	if f := eval[string](t, ctx, "location.hash + ' ' + document.activeElement.id"); f != "#main main" {
		t.Errorf("the skip link leads to %q", f)
	}

	// Find the user's devices.
	open(t, ctx, r.base+"/devices")
	must(t, "type the user", chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("f-user"), target.User)))
	if st := submit(t, ctx, "filter"); st != 200 {
		t.Fatalf("filter: HTTP %d", st)
	}
	if got := text(t, ctx, "result-count"); got != "Devices 1–1 of 1" {
		t.Fatalf("filtered to %s: %q", target.User, got)
	}
	users := eval[[]string](t, ctx, `[...document.querySelectorAll("#devices tbody tr td:first-child")].map(td => td.textContent.trim())`)
	if len(users) != 1 || users[0] != target.User {
		t.Fatalf("rows %v, want only %s", users, target.User)
	}
	r.look(ctx, "devices")

	// Open the quarantined device and read why.
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#devices a.dev"))); err != nil {
		t.Fatal(err)
	}
	why := text(t, ctx, "why")
	if !strings.Contains(why, "decides quarantined") || !strings.Contains(why, "default-access") {
		t.Fatalf("why: %q", why)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#steps tbody tr").length`); n < 2 {
		t.Fatalf("the explain trace has %d steps", n)
	}
	r.look(ctx, "device")

	// Approve it with a note: its held Ping is answered, and the fleet's
	// next request from it is allowed (access log).
	before := len(r.accessEntries())
	must(t, "type the note", chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("note"), "ticket 4711: called the user")))
	approved := time.Now()
	if st := submit(t, ctx, "act-allow"); st != 200 {
		t.Fatalf("approve: HTTP %d", st)
	}
	if f := text(t, ctx, "flash"); !strings.HasPrefix(f, "Approved.") {
		t.Fatalf("after approve: %q", f)
	}
	var released, allowed bool
	deadline = time.Now().Add(15 * time.Second)
	for !allowed {
		if time.Now().After(deadline) {
			t.Fatalf("after approve: held Ping answered %v, a request allowed to the CAS %v", released, allowed)
		}
		time.Sleep(200 * time.Millisecond)
		for _, e := range r.accessEntries()[before:] {
			if !strings.EqualFold(fmt.Sprint(e["device_id"]), target.DeviceID) {
				continue
			}
			switch {
			case e["command"] == "Ping" && !released:
				released = true
				if d := time.Since(approved); d > 5*time.Second {
					t.Errorf("the held Ping was answered %s after the approval", d)
				}
			case released && e["decision"] == "allow" && e["upstream"] != nil:
				allowed = true
			}
		}
	}

	// Bulk-block three devices from the queue, newest first.
	open(t, ctx, r.base+"/queue")
	r.look(ctx, "queue")
	var picked []string
	for i := range 3 {
		id := fmt.Sprintf("q-%d", i)
		must(t, "tick "+id, chromedp.Do(ctx, chromedp.Click(chromedp.ID(id))))
		picked = append(picked, eval[string](t, ctx, `document.getElementById("`+id+`").value`))
	}
	if c := text(t, ctx, "q-count"); c != "3 ticked" {
		t.Errorf("the queue's count says %q", c)
	}
	must(t, "type the bulk note", chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("q-note"), "lost phones, INC-2231")))
	if st := submit(t, ctx, "q-block"); st != 200 {
		t.Fatalf("bulk block: HTTP %d", st)
	}
	if d := text(t, ctx, "done"); !strings.HasPrefix(d, "Done: 3 device(s)") {
		t.Fatalf("after bulk block: %q", d)
	}

	// The audit trail shows the four actions.
	open(t, ctx, r.base+"/audit")
	rows := eval[[][]string](t, ctx, `[...document.querySelectorAll("table.audit tbody tr")].map(tr => [...tr.cells].map(td => td.textContent.trim()))`)
	if len(rows) != 4 {
		t.Fatalf("audit trail rows: %v", rows)
	}
	blocks := 0
	for _, row := range rows[:3] {
		if strings.HasPrefix(row[1], "helpdesk") && strings.HasPrefix(row[2], "block") && strings.Contains(row[2], "bulk") &&
			row[4] == "quarantined → blocked (override block)" && row[5] == "lost phones, INC-2231" {
			blocks++
		}
	}
	last := rows[3]
	if blocks != 3 || !strings.HasPrefix(last[1], "helpdesk") || last[2] != "allow" || !strings.Contains(last[3], target.DeviceID) ||
		last[4] != "quarantined → allowed (override allow)" || last[5] != "ticket 4711: called the user" {
		t.Fatalf("audit trail:\n%v", rows)
	}
	for _, p := range picked {
		u, id, _ := strings.Cut(p, "/")
		uu, _ := url.PathUnescape(u)
		found := false
		for _, row := range rows[:3] {
			found = found || strings.Contains(row[3], id) && strings.Contains(row[3], uu)
		}
		if !found {
			t.Errorf("ticked %s is not in the audit trail", p)
		}
	}
	r.look(ctx, "audit")

	// The dashboard says what changed today.
	open(t, ctx, r.base+"/")
	if s := text(t, ctx, "today"); !strings.Contains(s, "administrators took 4 actions") {
		t.Fatalf("the dashboard's today: %q", s)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#main table.audit tbody tr").length`); n != 4 {
		t.Fatalf("the dashboard lists %d of today's actions", n)
	}
	r.look(ctx, "dashboard") // the screenshot with today's actions

	// A form without its CSRF token is refused, and nothing is done.
	open(t, ctx, otherPage)
	eval[bool](t, ctx, `document.querySelector('#actions input[name="csrf"]').remove(); true`)
	if st := submit(t, ctx, "act-allow"); st != 403 {
		t.Fatalf("a form without its CSRF token: HTTP %d", st)
	}
	if msg := text(t, ctx, "error"); !strings.Contains(msg, "security token") {
		t.Fatalf("refused with %q", msg)
	}
	var trail admin.AuditList
	r.api("/api/v1/audit", &trail)
	if len(trail.Entries) != 4 {
		t.Fatalf("the audit trail has %d entries after the refused form", len(trail.Entries))
	}

	// HTML and script in a filter are shown as text, never run.
	const payload = `<script>window.pwned=1</script><img src=x onerror="window.pwned=2"><b>bold</b>`
	open(t, ctx, r.base+"/devices")
	must(t, "type the payload", chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("f-q"), payload)))
	submit(t, ctx, "filter")
	if got := text(t, ctx, "echo-q"); got != payload {
		t.Fatalf("the filter is shown as %q", got)
	}
	if v := eval[bool](t, ctx, `window.pwned === undefined && document.querySelectorAll("#result-count b, #result-count img, #result-count script").length === 0`); !v {
		t.Fatal("the filter's HTML was interpreted")
	}
	if got := eval[string](t, ctx, `document.getElementById("f-q").value`); got != payload {
		t.Fatalf("the search box holds %q", got)
	}

	// Unknown pages are 404.
	if st := open(t, ctx, r.base+"/no-such-page"); st != 404 {
		t.Fatalf("unknown page: HTTP %d", st)
	}
	// The policy is enforced (and the watch works): an inline style put in
	// by a script is blocked and reported.
	eval[bool](t, ctx, `document.body.insertAdjacentHTML("beforeend", '<p style="color: red">x</p>'); true`)
	deadline = time.Now().Add(5 * time.Second)
	for len(eval[[]string](t, ctx, `window.cspViolations || []`)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("an inline style was not reported as a CSP violation")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The impact report: the running policy, then a candidate with errors,
	// shown with line and column.
	open(t, ctx, r.base+"/report")
	if s := text(t, ctx, "report-summary"); !strings.Contains(s, "9 devices of 9 users") {
		t.Fatalf("report: %q", s)
	}
	r.look(ctx, "report")
	bad := "listen:\n  address: \":443\"\n  plain_http: maybe\npolicy:\n  default_acces: allow\n"
	must(t, "paste the candidate", chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("r-config"), bad)))
	if st := submit(t, ctx, "r-candidate"); st != 422 {
		t.Fatalf("candidate with errors: HTTP %d", st)
	}
	probs := text(t, ctx, "problems")
	for _, w := range []string{"line 3, column 15", "listen.plain_http", "line 5, column 3", "default_acces"} {
		if !strings.Contains(probs, w) {
			t.Errorf("the candidate's errors lack %q:\n%s", w, probs)
		}
	}
	r.look(ctx, "report-candidate-errors")

	// The core flows work without JavaScript: in a tab of the same session
	// whose script is blocked, find a user, block a phone from its page
	// and approve another from the queue.
	nctx, ncancel := chromedp.NewContext(ctx)
	defer ncancel()
	if _, err := chromedp.Call(nctx, network.SetBlockedURLs, network.SetBlockedURLsParams{
		URLPatterns: []*network.BlockPattern{{URLPattern: "*://*:*/static/console.js", Block: true}}}); err != nil {
		t.Fatal(err)
	}
	var left admin.DeviceList
	r.api("/api/v1/devices?state=quarantined&sort=user", &left)
	if len(left.Devices) < 2 {
		t.Fatalf("%d quarantined devices left", len(left.Devices))
	}
	open(t, nctx, r.base+"/devices")
	if eval[bool](t, nctx, `document.documentElement.classList.contains("js")`) {
		t.Fatal("the script ran in the tab without JavaScript")
	}
	must(t, "type the user", chromedp.Do(nctx, chromedp.SendKeys(chromedp.ID("f-user"), left.Devices[0].User)))
	submit(t, nctx, "filter")
	if _, err := chromedp.RunResponse(nctx, chromedp.Click(chromedp.CSS("#devices a.dev"))); err != nil {
		t.Fatal(err)
	}
	must(t, "type the note", chromedp.Do(nctx, chromedp.SendKeys(chromedp.ID("note"), "no script")))
	if st := submit(t, nctx, "act-block"); st != 200 || !strings.HasPrefix(text(t, nctx, "flash"), "Blocked.") {
		t.Fatalf("block without JavaScript: HTTP %d", st)
	}
	open(t, nctx, r.base+"/queue")
	if n := eval[int](t, nctx, `document.querySelectorAll('input[name="device"]').length`); n != 1 {
		t.Fatalf("the queue lists %d devices, want 1", n)
	}
	must(t, "tick", chromedp.Do(nctx, chromedp.Click(chromedp.ID("q-0"))))
	if st := submit(t, nctx, "q-allow"); st != 200 || !strings.HasPrefix(text(t, nctx, "done"), "Done: 1 device(s)") {
		t.Fatalf("approve from the queue without JavaScript: HTTP %d", st)
	}
	r.api("/api/v1/audit", &trail)
	if n := len(trail.Entries); n != 6 || trail.Entries[4].Action != "block" || trail.Entries[4].Note != "no script" ||
		trail.Entries[5].Action != "allow" || trail.Entries[5].DeviceID != left.Devices[1].DeviceID {
		t.Fatalf("audit trail after the flows without JavaScript: %+v", trail.Entries)
	}

	// The read-only session has been idle longer than the session timeout:
	// its next page is the sign-in page, which says so.
	if wait := time.Until(readIdleSince.Add(sessionTimeout + time.Second)); wait > 0 {
		time.Sleep(wait)
	}
	open(t, rctx, r.base+"/queue")
	if loc := eval[string](t, rctx, "location.pathname + location.search"); !strings.HasPrefix(loc, "/signin?next=%2Fqueue") {
		t.Fatalf("an expired session is at %s", loc)
	}
	if w := text(t, rctx, "why"); !strings.Contains(w, "expired") {
		t.Fatalf("the sign-in page says %q", w)
	}

	dialogs.Lock()
	defer dialogs.Unlock()
	if len(opened) > 0 {
		t.Fatalf("the pages opened dialogs: %q", opened)
	}
}
