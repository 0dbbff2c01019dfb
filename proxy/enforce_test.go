package proxy

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/bench"
	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
	"github.com/easgate/easgate/internal/testkit"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/config"
	"github.com/easgate/easgate/proxy/quarantine"
)

// countingCAS is bench.FakeCAS (a CAS with real per-device sync state over
// a generated mailbox) behind a counter of the EAS commands each device got
// through to it.
type countingCAS struct {
	f   *bench.FakeCAS
	url string
	mu  sync.Mutex
	n   map[string]int // "DeviceId Command"
}

func startCountingCAS(t *testing.T, cfg bench.FakeCASConfig) *countingCAS {
	t.Helper()
	c := &countingCAS{f: bench.NewFakeCAS(cfg), n: map[string]int{}}
	h := c.f.Handler()
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == "/hc" {
				return // health check: 200
			}
			var r eas.Request
			if err := r.Parse(ctx.Method(), ctx.Path(), ctx.URI().QueryString(), &ctx.Request.Header); err == nil {
				c.mu.Lock()
				c.n[string(r.DeviceID)+" "+r.Command.String()]++
				c.mu.Unlock()
			}
			h(ctx)
		},
		MaxRequestBodySize: 64 << 20, ReadBufferSize: 16 << 10, Concurrency: 1 << 16,
		NoDefaultContentType: true, CloseOnShutdown: true,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	c.url = "http://" + ln.Addr().String()
	t.Cleanup(func() { _ = c.f.Close(); _ = srv.Shutdown() })
	return c
}

func (c *countingCAS) count(device, cmd string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[device+" "+cmd]
}

// enforceYAML is a plain-HTTP gateway config with the given policy section
// (indented under "policy:").
func enforceYAML(casURL, dir, policy string) string {
	return fmt.Sprintf(`listen:
  address: "127.0.0.1:0"
  plain_http: true
upstreams:
  servers:
    - url: %s
  health_check:
    path: /hc
    interval: 1s
    timeout: 500ms
  timeouts:
    connect: 1s
    request: 30s
    long_poll_max: 120s
    long_poll_margin: 5s
    drain: 1s
limits:
  max_held_long_polls: 1000
admin:
  address: ""
state:
  path: %s
log:
  level: warn
  access_log: %s
policy:
%s`, casURL, filepath.Join(dir, "state.db"), filepath.Join(dir, "access.log"), policy)
}

// hook is a local admin webhook receiver.
type hook struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []quarantine.Event
}

func newHook(t *testing.T) *hook {
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev quarantine.Event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			w.WriteHeader(400)
			return
		}
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) got() []quarantine.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]quarantine.Event(nil), h.events...)
}

func profile(name string, v eas.Version) bench.Profile {
	p := bench.Profiles[name]
	p.Version = v
	p.Base64 = p.Base64 && v >= eas.V121
	return p
}

func newPhone(p *testProxy, user, id string, prof bench.Profile) *bench.Device {
	return bench.NewDevice(bench.DeviceConfig{Target: "http://" + p.addr, User: user, DeviceID: id, Profile: prof,
		Timeout: 90 * time.Second})
}

// accessLines reads the JSON access log.
func accessLines(t *testing.T, dir string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func writeCSV(t *testing.T, path string, rows ...string) {
	t.Helper()
	data := "user,device_id,state\n" + strings.Join(rows, "\n") + "\n"
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// metricValue sums a counter family's series whose labels include want.
func metricValue(t *testing.T, s *Server, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := s.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
			if g := m.GetGauge(); g != nil {
				sum += g.GetValue()
			}
		}
	}
	return sum
}

const (
	iphoneID  = "ApplDMPL69PZF18P"
	androidID = "androidc1957925941"
	user      = "jdoe@corp.example.com"
)

// TestEnforceQuarantine is the main scenario, end to end through
// the real gateway and a fake CAS that keeps a real mailbox: a compliant
// iPhone (14.1) syncs its mail; an unknown Android phone (14.0) is
// quarantined, sees exactly one notice and nothing else while the CAS never
// receives its Sync or Ping; editing the compliance file releases it, its
// held Ping is answered at once, and it resyncs every real message.
func TestEnforceQuarantine(t *testing.T) {
	const messages = 12
	cas := startCountingCAS(t, bench.FakeCASConfig{Messages: messages, MessageSize: 512, AttachmentSize: -1})
	dir := t.TempDir()
	csv := filepath.Join(dir, "compliance.csv")
	writeCSV(t, csv, user+","+iphoneID+",compliant")
	wh := newHook(t)
	yaml := enforceYAML(cas.url, dir, fmt.Sprintf(`  mode: enforce
  default_access: allow
  compliance:
    require_for: [all]
    source:
      type: file
      path: %s
    cache:
      ttl: 1s
      negative_ttl: 1s
      stale_if_error: 1h
      lookup_timeout: 1s
      refresh_before: 100ms
      on_unavailable: quarantine
  quarantine:
    notice:
      from: "IT Service Desk <it@corp.example.com>"
      subject: "Enrol your {{.DeviceType}} to get mail"
      enroll_url: https://portal.example.com/enroll
    admin_webhook: %s/hook
`, csv, wh.srv.URL))
	p := startProxy(t, mustParse(t, yaml))
	p.s.registry.SetRecheck(100 * time.Millisecond)

	// The compliant iPhone syncs its whole Inbox.
	iphone := newPhone(p, user, iphoneID, profile("ios", eas.V141))
	if err := iphone.Setup(); err != nil {
		t.Fatalf("iPhone setup: %v", err)
	}
	if iphone.Items != messages {
		t.Fatalf("iPhone got %d messages, want %d", iphone.Items, messages)
	}

	// The unknown Android phone: provisioned and its hierarchy forwarded,
	// then an emulated, empty mailbox with one notice.
	android := newPhone(p, user, androidID, profile("gmail", eas.V140))
	for _, step := range []func() error{android.Options, android.Provision, android.Settings, android.FolderSync} {
		if err := step(); err != nil {
			t.Fatalf("Android setup: %v", err)
		}
	}
	if android.InboxID == "" {
		t.Fatal("Android has no Inbox")
	}
	for id, typ := range android.Folders {
		if typ == eas.FolderTypeCalendar || typ == eas.FolderTypeContacts {
			if n, err := android.SyncAll(id); err != nil || n != 0 {
				t.Fatalf("quarantined %d folder: %d items, %v", typ, n, err)
			}
		}
	}
	if n, err := android.SyncAll(android.InboxID); err != nil || n != 1 {
		t.Fatalf("quarantined Inbox: %d items (want the one notice), %v", n, err)
	}
	// The notice is pending until the phone acknowledges it: Ping says so.
	if st, folders, err := android.Ping(300); err != nil || st != 2 || len(folders) != 1 || folders[0] != android.InboxID {
		t.Fatalf("Ping with the notice pending: %d %v %v", st, folders, err)
	}
	if n, _, err := android.Sync(android.InboxID); err != nil || n != 0 {
		t.Fatalf("Sync after the notice: %d items, %v", n, err)
	}
	if android.Items != 1 {
		t.Fatalf("Android saw %d items, want exactly the notice", android.Items)
	}
	for _, cmd := range []string{"Sync", "Ping", "GetItemEstimate"} {
		if n := cas.count(androidID, cmd); n != 0 {
			t.Fatalf("the CAS received %d %s requests from the quarantined phone", n, cmd)
		}
	}
	if cas.count(androidID, "FolderSync") == 0 || cas.count(androidID, "Provision") == 0 || cas.count(androidID, "Settings") == 0 {
		t.Fatal("Provision, Settings or FolderSync of the quarantined phone did not reach the CAS")
	}
	rec, ok := p.s.enf.quar.Get([]byte(user), []byte(androidID))
	if !ok || !rec.NoticeDelivered || rec.InboxID != android.InboxID || !strings.Contains(rec.Notice.Subject, "Enrol your Android") {
		t.Fatalf("quarantine record %+v", rec)
	}

	// A Ping now is held for its heartbeat; releasing the device (the
	// compliance file changes) answers it at once.
	type pingResult struct {
		status  int
		folders []string
		err     error
	}
	pinged := make(chan pingResult, 1)
	go func() {
		st, f, err := android.Ping(300)
		pinged <- pingResult{st, f, err}
	}()
	waitFor(t, "the Ping to be held by easgate", func() bool { return p.s.registry.Watched() == 1 })
	writeCSV(t, csv, user+","+iphoneID+",compliant", user+","+androidID+",compliant")
	var res pingResult
	select {
	case res = <-pinged:
	case <-time.After(60 * time.Second):
		t.Fatal("the held Ping was not answered after the release")
	}
	if res.err != nil || res.status != 2 || len(res.folders) != 1 || res.folders[0] != android.InboxID {
		t.Fatalf("held Ping after release: %+v", res)
	}
	if p.s.enf.quar.Active([]byte(user), []byte(androidID)) {
		t.Fatal("still quarantined after the release")
	}
	// Its next Sync reaches Exchange with an easgate key: Status 3, and the
	// phone starts over and gets every real message.
	if _, _, err := android.Sync(android.InboxID); err == nil || !strings.Contains(err.Error(), "Status 3") {
		t.Fatalf("first Sync after release: %v, want the CAS's Status 3", err)
	}
	n, err := android.SyncAll(android.InboxID)
	if err != nil || n != messages {
		t.Fatalf("resync after release: %d messages, %v; want %d", n, err, messages)
	}
	if cas.count(androidID, "Sync") == 0 {
		t.Fatal("the released phone's Sync did not reach the CAS")
	}

	// The admin was told once, with the device's details.
	waitFor(t, "the admin webhook", func() bool { return len(wh.got()) >= 1 })
	evs := wh.got()
	if len(evs) != 1 || evs[0].Event != "quarantine" || evs[0].DeviceID != androidID || evs[0].User != user ||
		!evs[0].Enforced || len(evs[0].Reasons) == 0 {
		t.Fatalf("admin notices %+v", evs)
	}
	// Access log and metrics say what happened and why.
	var sawQuarantine, sawVerdict bool
	for _, l := range accessLines(t, dir) {
		if l["device_id"] == androidID && l["decision"] == "quarantine" {
			sawQuarantine = true
			if l["verdict_source"] == "file" && l["verdict_state"] == "unknown" {
				sawVerdict = true
			}
			if rs, _ := l["reasons"].([]any); len(rs) == 0 || rs[0] != "device-not-enrolled" {
				t.Errorf("access log reasons %v", l["reasons"])
			}
		}
	}
	if !sawQuarantine || !sawVerdict {
		t.Errorf("access log lacks the quarantine decision with its verdict (%v %v)", sawQuarantine, sawVerdict)
	}
	if v := metricValue(t, p.s, "easgate_policy_decisions_total", map[string]string{"action": "quarantine", "reason": "device-not-enrolled"}); v == 0 {
		t.Error("no quarantine decisions counted")
	}
	if v := metricValue(t, p.s, "easgate_policy_decisions_total", map[string]string{"action": "allow", "reason": "device-compliant"}); v == 0 {
		t.Error("no allow decisions counted")
	}
}

// easDo sends one EAS POST in the plain query form with the given protocol
// version and returns the HTTP status, body and Content-Type.
func (p *testProxy) easDo(t *testing.T, cmd eas.Command, device, devType string, v eas.Version, body []byte) (int, []byte, string) {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + p.addr + "/Microsoft-Server-ActiveSync?Cmd=" + cmd.String() + "&User=" + user +
		"&DeviceId=" + device + "&DeviceType=" + devType)
	req.Header.SetMethod("POST")
	req.Header.Set("MS-ASProtocolVersion", v.String())
	req.Header.Set("User-Agent", "Android/14-EAS-2.0")
	req.Header.Set("X-MS-PolicyKey", "0")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":pw")))
	req.Header.Set("Authorization", testBasicAuth) // authn_test.go: phones authenticate (auth.mode credentials)
	req.Header.SetContentType(quarantine.ContentTypeWBXML)
	req.SetBody(body)
	if err := p.hc.DoTimeout(req, resp, 2*time.Minute); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), string(resp.Header.ContentType())
}

func wbxmlDoc(build func(e *wbxml.Encoder)) []byte {
	e := wbxml.NewEncoder(nil)
	e.Header()
	build(e)
	return e.Bytes()
}

func folderSyncZero() []byte {
	return wbxmlDoc(func(e *wbxml.Encoder) {
		e.Start(wbxml.FolderHierarchyFolderSync)
		e.Element(wbxml.FolderHierarchySyncKey, "0")
		e.End()
	})
}

func settingsModel(model string) []byte {
	return wbxmlDoc(func(e *wbxml.Encoder) {
		e.Start(wbxml.SettingsSettings)
		e.Start(wbxml.SettingsDeviceInformation)
		e.Start(wbxml.SettingsSet)
		e.Element(wbxml.SettingsModel, model)
		e.End()
		e.End()
		e.End()
	})
}

// statusOf returns the Status of a status-only body (<Root><Status>N</Status></Root>).
func statusOf(t *testing.T, body []byte) (wbxml.Tag, string) {
	t.Helper()
	d := wbxml.NewDecoder(body)
	var root wbxml.Tag
	status := ""
	inStatus := false
	for {
		tok, err := d.Next()
		if err != nil {
			break
		}
		switch tok.Kind {
		case wbxml.StartTag:
			if root == 0 {
				root = tok.Tag
			}
			inStatus = tok.Tag.Name() == "Status" && status == ""
		case wbxml.Text:
			if inStatus {
				status = string(tok.Data)
			}
		case wbxml.EndTag:
			inStatus = false
		}
	}
	return root, status
}

// TestEnforceBlock: a blocked 12.1 phone gets a bare 403 for everything but
// OPTIONS, a blocked 14.1 phone HTTP 200 with Status 129; and a Ping held at
// the CAS is answered at once when its device becomes blocked.
func TestEnforceBlock(t *testing.T) {
	cas := startCountingCAS(t, bench.FakeCASConfig{Messages: 3, MessageSize: 256, AttachmentSize: -1})
	dir := t.TempDir()
	p := startProxy(t, mustParse(t, enforceYAML(cas.url, dir, `  default_access: allow
  users:
    jdoe@corp.example.com:
      blocked_devices: [BLOCKED121, BLOCKED141]
  rules:
    - name: block-bad-phone
      match: {device_model: ["Bad Phone 1"]}
      access: block
`)))
	p.s.registry.SetRecheck(time.Hour) // only the decision change may wake the held Ping

	for _, tt := range []struct {
		device string
		v      eas.Version
	}{{"BLOCKED121", eas.V121}, {"BLOCKED141", eas.V141}} {
		for _, cmd := range []eas.Command{eas.CmdFolderSync, eas.CmdSync, eas.CmdPing, eas.CmdSettings, eas.CmdProvision, eas.CmdSendMail, eas.CmdGetAttachment} {
			body := folderSyncZero()
			code, resp, ct := p.easDo(t, cmd, tt.device, "Android", tt.v, body)
			root, hasRoot := eas.StatusNamespaceRoot(cmd)
			if tt.v < eas.V140 || !hasRoot {
				if code != 403 || len(resp) != 0 {
					t.Errorf("%s %s: %d %x, want a bare 403", tt.v, cmd, code, resp)
				}
				continue
			}
			gotRoot, status := statusOf(t, resp)
			if code != 200 || ct != quarantine.ContentTypeWBXML || gotRoot != root || status != "129" {
				t.Errorf("%s %s: %d %q root %s status %q, want 200 with Status 129", tt.v, cmd, code, ct, gotRoot, status)
			}
		}
		if n := cas.count(tt.device, "FolderSync") + cas.count(tt.device, "Sync") + cas.count(tt.device, "Provision"); n != 0 {
			t.Errorf("%s: %d requests of a blocked device reached the CAS", tt.device, n)
		}
	}

	// An allowed phone's Ping is held at the CAS ...
	const dev = "androidc1234567890"
	phone := newPhone(p, user, dev, profile("gmail", eas.V141))
	if err := phone.Setup(); err != nil {
		t.Fatalf("allowed phone: %v", err)
	}
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		st, _, err := phone.Ping(600)
		done <- result{st, err}
	}()
	waitFor(t, "the Ping to be held at the CAS", func() bool { return cas.f.Stats().HeldPings == 1 })
	// ... when its Settings reports a blocked model, the Settings and the
	// held Ping both get the block answer at once.
	code, body, _ := p.easDo(t, eas.CmdSettings, dev, "Android", eas.V141, settingsModel("Bad Phone 1"))
	if _, st := statusOf(t, body); code != 200 || st != "129" {
		t.Fatalf("Settings with a blocked model: %d %s", code, st)
	}
	select {
	case r := <-done:
		if r.status != 129 {
			t.Fatalf("held Ping: %+v, want Status 129", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the held Ping was not answered when its device was blocked")
	}
	// The CAS's own Ping ends in the background; nothing leaks.
	_ = cas.f.Close()
	waitFor(t, "the background CAS call to end", func() bool { return p.s.registry.Watched() == 0 })
}

// TestEnforceReportMode: in report mode everything is forwarded and the
// log and metrics say what would have happened.
func TestEnforceReportMode(t *testing.T) {
	cas := startCountingCAS(t, bench.FakeCASConfig{Messages: 2, MessageSize: 256, AttachmentSize: -1})
	dir := t.TempDir()
	p := startProxy(t, mustParse(t, enforceYAML(cas.url, dir, `  mode: report
  default_access: block
`)))
	// The fake CAS asks the unprovisioned phone to Provision (Status
	// 142): the point is that the CAS, not easgate, answered.
	code, body, _ := p.easDo(t, eas.CmdFolderSync, "REPORTDEV", "Android", eas.V141, folderSyncZero())
	if _, st := statusOf(t, body); code != 200 || st == "129" || cas.count("REPORTDEV", "FolderSync") != 1 {
		t.Fatalf("report mode: %d status %s, CAS saw %d", code, st, cas.count("REPORTDEV", "FolderSync"))
	}
	if v := metricValue(t, p.s, "easgate_policy_decisions_total", map[string]string{"action": "block", "mode": "report"}); v != 1 {
		t.Errorf("report decisions counted %v", v)
	}
	waitFor(t, "the access log line", func() bool { return len(accessLines(t, dir)) > 0 })
	l := accessLines(t, dir)[0]
	if l["decision"] != "allow" || l["policy_action"] != "block" || l["enforced"] != false {
		t.Errorf("access log %v", l)
	}
	if rs, _ := l["reasons"].([]any); len(rs) != 2 || rs[0] != "report-only-policy" || rs[1] != "default-access" {
		t.Errorf("reasons %v", l["reasons"])
	}
}

// TestEnforceSourceDown: with the compliance source failing, a cached
// verdict holds until its stale bound (ttl + stale_if_error), then
// on_unavailable applies.
func TestEnforceSourceDown(t *testing.T) {
	cas := startCountingCAS(t, bench.FakeCASConfig{Messages: 1, MessageSize: 256, AttachmentSize: -1})
	var mu sync.Mutex
	down := false
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		d := down
		mu.Unlock()
		if d {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var q struct {
			User     string `json:"user"`
			DeviceID string `json:"device_id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil || q.DeviceID == "" {
			w.WriteHeader(400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"state":"compliant"}`))
	}))
	defer src.Close()
	dir := t.TempDir()
	p := startProxy(t, mustParse(t, enforceYAML(cas.url, dir, fmt.Sprintf(`  default_access: allow
  compliance:
    require_for: [all]
    source:
      type: http
      url: %s
      timeout: 1s
      retries: 0
    cache:
      ttl: 1s
      negative_ttl: 1s
      stale_if_error: 2s
      lookup_timeout: 500ms
      refresh_before: 100ms
      on_unavailable: block
`, src.URL))))
	const dev = "STALEDEV1"
	folderSync := func() string {
		code, body, _ := p.easDo(t, eas.CmdFolderSync, dev, "Android", eas.V141, folderSyncZero())
		if code != 200 {
			t.Fatalf("FolderSync: HTTP %d", code)
		}
		_, st := statusOf(t, body)
		return st
	}
	if st := folderSync(); st == "129" || cas.count(dev, "FolderSync") != 1 {
		t.Fatalf("compliant phone: status %s, CAS saw %d", st, cas.count(dev, "FolderSync"))
	}
	mu.Lock()
	down = true
	mu.Unlock()
	downAt := time.Now()
	// Past the TTL, within the stale bound: the cached verdict still holds.
	time.Sleep(1200 * time.Millisecond)
	if st := folderSync(); st == "129" || cas.count(dev, "FolderSync") != 2 {
		t.Fatalf("within stale_if_error: status %s, CAS saw %d", st, cas.count(dev, "FolderSync"))
	}
	waitFor(t, "the access log to say the verdict was stale", func() bool {
		for _, l := range accessLines(t, dir) {
			rs, _ := l["reasons"].([]any)
			for _, r := range rs {
				if l["device_id"] == dev && r == "stale-verdict" && l["verdict_stale"] == true && l["decision"] == "allow" {
					return true
				}
			}
		}
		return false
	})
	// Past ttl + stale_if_error: on_unavailable (block).
	time.Sleep(time.Until(downAt.Add(3300 * time.Millisecond)))
	if st := folderSync(); st != "129" || cas.count(dev, "FolderSync") != 2 {
		t.Fatalf("past the stale bound: status %s, CAS saw %d; want the block answer", st, cas.count(dev, "FolderSync"))
	}
}

// TestEnforceRestart: quarantine state survives a restart, so the notice is
// not delivered twice and the keys easgate issued stay valid.
func TestEnforceRestart(t *testing.T) {
	cas := startCountingCAS(t, bench.FakeCASConfig{Messages: 4, MessageSize: 256, AttachmentSize: -1})
	dir := t.TempDir()
	cfg := enforceYAML(cas.url, dir, "  default_access: quarantine\n")
	p := startProxy(t, mustParse(t, cfg))
	android := newPhone(p, user, androidID, profile("samsung", eas.V141))
	for _, step := range []func() error{android.Options, android.Provision, android.FolderSync} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := android.SyncAll(android.InboxID); err != nil || n != 1 {
		t.Fatalf("notice: %d %v", n, err)
	}
	if n, _, err := android.Sync(android.InboxID); err != nil || n != 0 {
		t.Fatalf("ack: %d %v", n, err)
	}
	// Restart: a new server on the same state file.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	p2 := startProxyAt(t, mustParse(t, cfg), p.addr) // the phone keeps its URL
	rec, ok := p2.s.enf.quar.Get([]byte(user), []byte(androidID))
	if !ok || !rec.NoticeDelivered {
		t.Fatalf("record after restart: %v %+v", ok, rec)
	}
	n, _, err := android.Sync(android.InboxID)
	if err != nil && strings.Contains(err.Error(), "closed connection") {
		n, _, err = android.Sync(android.InboxID) // the keep-alive connection died with the old server
	}
	if err != nil || n != 0 {
		t.Fatalf("after restart: %d items, %v (want none: the notice was delivered)", n, err)
	}
	if android.Items != 1 || cas.count(androidID, "Sync") != 0 {
		t.Fatalf("items %d, CAS Syncs %d", android.Items, cas.count(androidID, "Sync"))
	}
}

// startProxyAt is startProxy on a given address.
func startProxyAt(t *testing.T, cfg *config.Config, addr string) *testProxy {
	t.Helper()
	s, err := newServer(cfg, testLogger(t), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	waitFor(t, "the address to be free", func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	go func() { _ = s.Serve(ln) }()
	p := &testProxy{s: s, addr: addr}
	p.hc = &fasthttp.HostClient{Addr: addr, MaxConns: 64, ReadTimeout: 2 * time.Minute, MaxIdemponentCallAttempts: 1}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return p
}

// fakeGraph is a small Microsoft Graph + Entra ID token endpoint on a
// loopback TLS server: client-credentials tokens, managedDevices paged by
// @odata.nextLink (one device per page), one 429 with Retry-After, and the
// first token expiring in the middle of the first sync.
type fakeGraph struct {
	srv       *httptest.Server
	mu        sync.Mutex
	devices   []map[string]any
	tokens    int
	valid     map[string]bool
	pages     int
	throttled bool
	expired   bool
}

const graphTenant = "11111111-2222-3333-4444-555555555555"

func newFakeGraph(t *testing.T, devices ...map[string]any) *fakeGraph {
	g := &fakeGraph{devices: devices, valid: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /"+graphTenant+"/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		if r.ParseForm() != nil || r.Form.Get("grant_type") != "client_credentials" || r.Form.Get("client_secret") != "s3cret" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		g.mu.Lock()
		g.tokens++
		tok := fmt.Sprintf("tok-%d", g.tokens)
		g.valid[tok] = true
		g.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": 3600, "token_type": "Bearer"})
	})
	mux.HandleFunc("GET /v1.0/deviceManagement/managedDevices", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if !g.valid[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")] {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":"InvalidAuthenticationToken","message":"Access token has expired."}}`))
			return
		}
		g.pages++
		if !g.throttled {
			g.throttled = true
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		if g.pages == 3 && !g.expired {
			g.expired = true
			g.valid = map[string]bool{} // the token expires mid-sync
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		skip := 0
		fmt.Sscan(r.URL.Query().Get("$skiptoken"), &skip)
		devs := g.devices
		if r.URL.Query().Get("$filter") != "" {
			devs = nil // quick syncs: nothing changed
		}
		end := min(skip+1, len(devs))
		page := map[string]any{"value": devs[min(skip, end):end]}
		if end < len(devs) {
			q := r.URL.Query()
			q.Set("$skiptoken", fmt.Sprint(end))
			page["@odata.nextLink"] = g.srv.URL + r.URL.Path + "?" + q.Encode()
		}
		_ = json.NewEncoder(w).Encode(page)
	})
	g.srv = httptest.NewTLSServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func graphDevice(upn, easID, state string) map[string]any {
	return map[string]any{"id": easID + "-id", "userPrincipalName": upn, "easDeviceId": easID, "easActivated": true,
		"complianceState": state, "exchangeAccessState": "allowed", "operatingSystem": "iOS", "osVersion": "17.5.1",
		"lastSyncDateTime": "2026-11-01T00:00:00Z"}
}

// TestEnforceGraph: the Microsoft Graph source against a local fake with
// paging, a 429 and an expired token; its verdicts decide through the
// gateway.
func TestEnforceGraph(t *testing.T) {
	g := newFakeGraph(t,
		graphDevice(user, "someotherdevice", "compliant"),
		graphDevice(user, iphoneID, "compliant"),
		graphDevice(user, androidID, "noncompliant"),
		graphDevice("bob@corp.example.com", "bobsdevice", "inGracePeriod"))
	sourceClient = g.srv.Client()
	defer func() { sourceClient = nil }()
	cas := startCountingCAS(t, bench.FakeCASConfig{Messages: 5, MessageSize: 256, AttachmentSize: -1})
	dir := t.TempDir()
	secret := filepath.Join(dir, "graph.secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, mustParse(t, enforceYAML(cas.url, dir, fmt.Sprintf(`  default_access: allow
  compliance:
    require_for: [all]
    source:
      type: graph
      tenant_id: %s
      client_id: 66666666-7777-8888-9999-000000000000
      client_secret_file: %s
      authority_url: %s
      graph_url: %s
      full_sync: 1h
      quick_sync: 1h
      timeout: 5s
    cache:
      ttl: 10m
      negative_ttl: 1s
      lookup_timeout: 1s
      on_unavailable: quarantine
`, graphTenant, secret, g.srv.URL, g.srv.URL))))
	src := p.s.cur.Load().enf.acc.Source
	waitFor(t, "the first Graph sync", func() bool {
		v, err := src.Lookup(context.Background(), policyQuery(user, iphoneID))
		return err == nil && v.State == policy.StateCompliant
	})
	g.mu.Lock()
	pages, tokens := g.pages, g.tokens
	g.mu.Unlock()
	if pages < 6 || tokens != 2 {
		t.Errorf("Graph saw %d page requests and issued %d tokens; want paging, a 429 and a renewed token", pages, tokens)
	}

	iphone := newPhone(p, user, iphoneID, profile("ios", eas.V161))
	if err := iphone.Setup(); err != nil || iphone.Items != 5 {
		t.Fatalf("compliant (Graph) iPhone: %d items, %v", iphone.Items, err)
	}
	android := newPhone(p, user, androidID, profile("gmail", eas.V141))
	for _, step := range []func() error{android.Options, android.Provision, android.FolderSync} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := android.SyncAll(android.InboxID); err != nil || n != 1 || cas.count(androidID, "Sync") != 0 {
		t.Fatalf("noncompliant (Graph) Android: %d items, %v, CAS Syncs %d", n, err, cas.count(androidID, "Sync"))
	}
	rec, _ := p.s.enf.quar.Get([]byte(user), []byte(androidID))
	if !strings.Contains(rec.Notice.Text, "compliance policy") {
		t.Errorf("notice does not give the reason: %q", rec.Notice.Text)
	}
}

func policyQuery(user, device string) policy.Query { return policy.Query{User: user, DeviceID: device} }

// enforcedServer builds (without listening) a gateway whose compliance file
// says jdoe's iPhone is compliant, and primes the verdict cache.
func enforcedServer(tb testing.TB) (*Server, *state) {
	tb.Helper()
	cas := newFakeCAS(tb)
	dir := tb.TempDir()
	csv := filepath.Join(dir, "c.csv")
	if err := os.WriteFile(csv, []byte("jdoe,"+iphoneID+",compliant\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	y := enforceYAML(cas.url(), dir, fmt.Sprintf(`  default_access: quarantine
  compliance:
    require_for: [all]
    source: {type: file, path: %s}
`, csv))
	y = strings.Replace(y, "  access_log: "+filepath.Join(dir, "access.log"), "  access_log: \"off\"", 1)
	s, err := newServer(mustParse(tb, y), testLogger(tb), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s, s.cur.Load()
}

// TestEnforceInspectAllocs: parse, identify, touch the device table, decide
// with a cached compliance verdict and act on Allow allocate nothing.
func TestEnforceInspectAllocs(t *testing.T) {
	s, st := enforcedServer(t)
	for _, tc := range []struct {
		name, cmd string
		body      []byte
	}{{"Ping", "Ping", testkit.PingBody(t, 480)}, {"Sync", "Sync", testkit.SyncWaitBody(t, 5)}, {"FolderSync", "FolderSync", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := newTestCtx(tc.cmd, tc.body)
			r := new(eas.Request)
			x := new(exchange)
			run := func() {
				*x = exchange{s: s, st: st}
				if done, _ := s.inspect(ctx, x, r); done {
					t.Fatalf("inspect answered: %d %s", x.status, x.reason)
				}
			}
			run()
			if x.dec.Action != policy.Allow || !x.dec.HasReason(policy.ReasonCompliant) || x.en.taken != "allow" {
				t.Fatalf("decision %v %v", x.dec.Action, x.dec.Reasons())
			}
			if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
				t.Fatalf("%v allocations per request", allocs)
			}
		})
	}
}

func BenchmarkEnforceInspect(b *testing.B) {
	s, st := enforcedServer(b)
	ctx := newTestCtx("Ping", testkit.PingBody(b, 480))
	r := new(eas.Request)
	x := new(exchange)
	*x = exchange{s: s, st: st}
	s.inspect(ctx, x, r)
	b.ReportAllocs()
	for b.Loop() {
		*x = exchange{s: s, st: st}
		s.inspect(ctx, x, r)
	}
	if x.dec.Action != policy.Allow {
		b.Fatal("not allowed")
	}
}

// TestEnforceReloadBlocksHeldPing: a reload whose rules block a device
// answers that device's Ping held at the CAS at once with the block answer.
func TestEnforceReloadBlocksHeldPing(t *testing.T) {
	cas := startCountingCAS(t, bench.FakeCASConfig{Messages: 1, MessageSize: 256, AttachmentSize: -1})
	dir := t.TempDir()
	base := strings.Replace(enforceYAML(cas.url, dir, `  default_access: allow
  users:
    jdoe@corp.example.com:
      blocked_devices: [SOMEOTHERDEVICE]
`), "drain: 1s", "drain: 60s", 1)
	p := startProxy(t, mustParse(t, base))
	const dev = "androidc5555555555"
	phone := newPhone(p, user, dev, profile("gmail", eas.V141))
	if err := phone.Setup(); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		st, _, _ := phone.Ping(900)
		done <- st
	}()
	waitFor(t, "the Ping to be held at the CAS", func() bool { return cas.f.Stats().HeldPings == 1 })
	if err := p.s.Reload(mustParse(t, strings.Replace(base, "[SOMEOTHERDEVICE]", "[SOMEOTHERDEVICE, "+dev+"]", 1))); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-done:
		if st != 129 {
			t.Fatalf("held Ping after the reload: Status %d, want 129", st)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the held Ping was not answered after the reload blocked its device")
	}
	// The device table and the decision survived the reload.
	if rec, ok := p.s.cur.Load().enf.acc.Devices.Get([]byte(user), []byte(dev)); !ok || rec.Info.Model != "Pixel 7" {
		t.Fatalf("device record after reload: %v %+v", ok, rec)
	}
}

// TestEnforceReloadNotice: a reload with a broken notice template is
// refused and changes nothing; a good one is used for devices entering
// quarantine afterwards.
func TestEnforceReloadNotice(t *testing.T) {
	cas := startCountingCAS(t, bench.FakeCASConfig{Messages: 1, MessageSize: 256, AttachmentSize: -1})
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "notice.html")
	if err := os.WriteFile(tmpl, []byte(`<p>{{.User</p>`), 0o600); err != nil {
		t.Fatal(err)
	}
	base := enforceYAML(cas.url, dir, "  default_access: quarantine\n")
	p := startProxy(t, mustParse(t, base))
	old := p.s.cur.Load()
	withTemplate := base + "  quarantine:\n    notice:\n      template: " + tmpl + "\n"
	if err := p.s.Reload(mustParse(t, withTemplate)); err == nil || !strings.Contains(err.Error(), "template") {
		t.Fatalf("reload with a broken template: %v", err)
	}
	if p.s.cur.Load() != old {
		t.Fatal("a failed reload replaced the configuration")
	}
	if err := os.WriteFile(tmpl, []byte(`<p>Hi {{.User}}, enrol {{.Model}}</p>{{define "text"}}Hi {{.User}}{{end}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.s.Reload(mustParse(t, withTemplate)); err != nil {
		t.Fatal(err)
	}
	phone := newPhone(p, user, androidID, profile("samsung", eas.V141))
	for _, step := range []func() error{phone.Options, phone.Provision, phone.FolderSync} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := phone.SyncAll(phone.InboxID); err != nil || n != 1 {
		t.Fatalf("notice: %d %v", n, err)
	}
	rec, _ := p.s.enf.quar.Get([]byte(user), []byte(androidID))
	if rec.Notice.HTML != "<p>Hi "+user+", enrol SM-G991B</p>" || rec.Notice.Text != "Hi "+user {
		t.Fatalf("notice after reload: %+v", rec.Notice)
	}
}

// TestEnforceQuarantineVersions: the emulated quarantine for every
// protocol version a phone may speak (2.5 has none: it is blocked).
func TestEnforceQuarantineVersions(t *testing.T) {
	cas := startCountingCAS(t, bench.FakeCASConfig{Messages: 3, MessageSize: 256, AttachmentSize: -1})
	dir := t.TempDir()
	p := startProxy(t, mustParse(t, enforceYAML(cas.url, dir, "  default_access: quarantine\n")))
	for i, v := range []eas.Version{eas.V121, eas.V140, eas.V141, eas.V161} {
		t.Run(v.String(), func(t *testing.T) {
			id := fmt.Sprintf("androidc%010d", i)
			phone := newPhone(p, user, id, profile("gmail", v))
			for _, step := range []func() error{phone.Options, phone.Provision, phone.Settings, phone.FolderSync} {
				if err := step(); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := phone.SyncAll(phone.InboxID); err != nil || n != 1 {
				t.Fatalf("notice: %d %v", n, err)
			}
			if st, folders, err := phone.Ping(120); err != nil || st != 2 || len(folders) != 1 {
				t.Fatalf("Ping: %d %v %v", st, folders, err)
			}
			if n, _, err := phone.Sync(phone.InboxID); err != nil || n != 0 || phone.Items != 1 {
				t.Fatalf("after the notice: %d %v (items %d)", n, err, phone.Items)
			}
			if n := cas.count(id, "Sync") + cas.count(id, "Ping"); n != 0 {
				t.Fatalf("%d Sync/Ping requests reached the CAS", n)
			}
		})
	}
	code, _, _ := p.easDo(t, eas.CmdFolderSync, "OLDPHONE25", "PocketPC", eas.V25, folderSyncZero())
	if code != 403 {
		t.Fatalf("2.5 quarantined phone: HTTP %d, want 403", code)
	}
}

// BenchmarkEnforceDecide is (*state).decide alone as the pipeline runs it
// for a known device with a cached compliance verdict: the device table's
// Touch, the engine's Decide and the inventory's Observe, with the
// request's clock moving a microsecond a request.
func BenchmarkEnforceDecide(b *testing.B) {
	s, st := enforcedServer(b)
	ctx := newTestCtx("Sync", testkit.SyncWaitBody(b, 5))
	r := new(eas.Request)
	x := new(exchange)
	*x = exchange{s: s, st: st}
	if done, _ := s.inspect(ctx, x, r); done || x.dec.Action != policy.Allow {
		b.Fatalf("inspect: %v %v", x.dec.Action, x.dec.Reasons())
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		x.start = now
		x.dec = st.decide(x, r, nil)
	}
	if x.dec.Action != policy.Allow {
		b.Fatal("not allowed")
	}
}
