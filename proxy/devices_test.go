package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/bench"
	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/access"
	"github.com/easgate/easgate/proxy/admin"
)

// Device management (issue 13) end to end: real gateway, bench.FakeCAS,
// simulated phones, the admin API over HTTP on loopback.

const (
	mgmtOutlook = "0123456789abcdef0123456789abcdef" // allowed by a rule
	mgmtIPhone  = "ApplDMPL69PZF18P"                 // quarantined (default)
	mgmtGmail   = "androidc0000000001"               // blocked (user list)
	mgmtSamsung = "SEC0123456789ABCD"                // quarantined (default)
)

func mgmtPolicy(def string) string {
	return fmt.Sprintf(`  default_access: %s
  discovery_period: 0s
  users:
    jdoe@corp.example.com:
      blocked_devices: [%s]
  rules:
    - name: outlook-allowed
      match: {client: [outlook-mobile]}
      access: allow
`, def, mgmtGmail)
}

// adminClient calls the admin API of a test gateway.
type adminClient struct {
	t     *testing.T
	base  string
	token string
}

// serveAdmin runs the gateway's admin listener on 127.0.0.1.
func serveAdmin(t *testing.T, s *Server, token string) *adminClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.admin.Serve(ln) }()
	t.Cleanup(func() { _ = ln.Close() })
	return &adminClient{t: t, base: "http://" + ln.Addr().String(), token: token}
}

func (c *adminClient) do(method, path, body string) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (c *adminClient) json(method, path, body string, want int, out any) {
	c.t.Helper()
	code, b := c.do(method, path, body)
	if code != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

func (c *adminClient) devices(query string) admin.DeviceList {
	var l admin.DeviceList
	c.json("GET", "/api/v1/devices"+query, "", 200, &l)
	return l
}

func states(l admin.DeviceList) map[string]string {
	m := map[string]string{}
	for _, d := range l.Devices {
		m[d.DeviceID] = d.State
	}
	return m
}

type mgmtFleet struct {
	outlook, iphone, gmail, samsung *bench.Device
}

func startFleet(t *testing.T, p *testProxy) mgmtFleet {
	t.Helper()
	mk := func(id, prof string, v eas.Version) *bench.Device {
		pr := profile(prof, v)
		return newPhone(p, user, id, pr)
	}
	f := mgmtFleet{
		outlook: mk(mgmtOutlook, "outlook", eas.V161), iphone: mk(mgmtIPhone, "ios", eas.V161),
		gmail: mk(mgmtGmail, "gmail", eas.V141), samsung: mk(mgmtSamsung, "samsung", eas.V141),
	}
	for _, d := range []*bench.Device{f.outlook, f.iphone, f.samsung} {
		if err := d.Setup(); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	_ = f.gmail.Options()
	if err := f.gmail.Provision(); err == nil {
		t.Fatal("the blocked phone was provisioned")
	}
	return f
}

func TestDeviceManagement(t *testing.T) {
	cas := startCountingCAS(t, bench.FakeCASConfig{Messages: 3, MessageSize: 256, AttachmentSize: -1})
	dir := t.TempDir()
	cfgYAML := enforceYAML(cas.url, dir, mgmtPolicy("quarantine"))
	p := startProxy(t, mustParse(t, cfgYAML))
	api := serveAdmin(t, p.s, "")
	f := startFleet(t, p)

	// The list shows every device with the right state and what was seen.
	l := api.devices("")
	want := map[string]string{mgmtOutlook: "allowed", mgmtIPhone: "quarantined", mgmtGmail: "blocked", mgmtSamsung: "quarantined"}
	if got := states(l); fmt.Sprint(got) != fmt.Sprint(want) || l.Total != 4 {
		t.Fatalf("devices %v (total %d), want %v", got, l.Total, want)
	}
	for _, d := range l.Devices {
		if d.User != user || d.LastSeen.IsZero() || d.FirstSeen.IsZero() || d.LastCommand == "" || d.ProtocolVersion == "" ||
			d.LastAddress.String() != "127.0.0.1" || d.Node == "" || len(d.Reasons) == 0 || len(d.UserAgents) != 1 {
			t.Errorf("inventory record %+v", d.DeviceRecord)
		}
		switch d.DeviceID {
		case mgmtOutlook:
			if d.Client != "outlook-mobile" || d.Rule != "outlook-allowed" || d.ProtocolVersion != "16.1" {
				t.Errorf("outlook %+v", d.DeviceRecord)
			}
		case mgmtIPhone:
			if d.Client != "ios-mail" || d.OS != "iOS" || d.OSVersion != "17.5.1" || d.Info.IMEI == "" || d.QuarantinedAt.IsZero() ||
				d.Reasons[0] != "default-access" || d.Quarantine == nil {
				t.Errorf("iphone %+v %+v", d.DeviceRecord, d.Quarantine)
			}
		case mgmtGmail:
			if d.Reasons[0] != "individual-block" || d.LastCommand != "Provision" {
				t.Errorf("gmail %+v", d.DeviceRecord)
			}
		}
	}
	// Filters, CSV.
	if q := api.devices("?state=quarantined&sort=device_id"); q.Total != 2 || q.Devices[0].DeviceID != mgmtIPhone {
		t.Fatalf("state filter: %+v", q)
	}
	if q := api.devices("?client=samsung-email"); q.Total != 1 || q.Devices[0].DeviceID != mgmtSamsung {
		t.Fatalf("client filter: %+v", q)
	}
	if q := api.devices("?q=pixel"); q.Total != 1 || q.Devices[0].DeviceID != mgmtGmail {
		t.Fatalf("q filter: %+v", q)
	}
	if q := api.devices("?page_size=3"); len(q.Devices) != 3 || q.NextPageToken == "" {
		t.Fatalf("page 1: %+v", q)
	} else if q2 := api.devices("?page_size=3&page_token=" + q.NextPageToken); len(q2.Devices) != 1 || q2.NextPageToken != "" {
		t.Fatalf("page 2: %+v", q2)
	}
	if code, body := api.do("GET", "/api/v1/devices?format=csv&sort=device_id", ""); code != 200 ||
		!strings.HasPrefix(string(body), "user,device_id,") || strings.Count(string(body), "\n") != 5 {
		t.Fatalf("csv: %d %s", code, body)
	}
	var detail admin.DeviceDetail
	api.json("GET", "/api/v1/devices/CORP%5Cjdoe/"+strings.ToLower(mgmtIPhone), "", 200, &detail)
	if detail.Device.DeviceID != mgmtIPhone || detail.Decision.State != "quarantined" || len(detail.Steps) == 0 {
		t.Fatalf("detail %+v", detail)
	}

	// The quarantined iPhone acknowledges its notice, then its Ping is
	// held by easgate; allow answers it within 2 s, and its next Sync
	// reaches the CAS.
	if _, _, err := f.iphone.Sync(f.iphone.InboxID); err != nil {
		t.Fatal(err)
	}
	pinged := make(chan error, 1)
	go func() {
		st, _, err := f.iphone.Ping(600)
		if err == nil && st != 2 && st != 7 {
			err = fmt.Errorf("status %d", st)
		}
		pinged <- err
	}()
	waitFor(t, "the iPhone's Ping to be held", func() bool { return p.s.registry.Watched() == 1 })
	start := time.Now()
	var e policy.AuditEntry
	api.json("POST", "/api/v1/devices/jdoe@corp.example.com/"+mgmtIPhone+"/allow", `{"note":"ticket 4711"}`, 200, &e)
	if e.Actor != "loopback" || e.Before != "quarantined" || e.After != "allowed (override allow)" || e.Note != "ticket 4711" {
		t.Fatalf("audit entry %+v", e)
	}
	select {
	case err := <-pinged:
		if err != nil {
			t.Fatalf("held Ping after allow: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("held Ping answered after %s", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the held Ping was not answered within 2 s of allow")
	}
	before := cas.count(mgmtIPhone, "Sync")
	_, _, _ = f.iphone.Sync(f.iphone.InboxID) // the CAS answers Status 3 (an easgate key): it reached Exchange
	if cas.count(mgmtIPhone, "Sync") != before+1 {
		t.Fatal("the allowed iPhone's Sync did not reach the CAS")
	}

	// The allowed Outlook phone's Ping is held at the CAS; block answers
	// it at once with the block answer.
	blocked := make(chan int, 1)
	go func() {
		st, _, _ := f.outlook.Ping(900)
		blocked <- st
	}()
	waitFor(t, "the Outlook Ping to be held at the CAS", func() bool { return cas.f.Stats().HeldPings == 1 })
	start = time.Now()
	api.json("POST", "/api/v1/devices/jdoe/"+mgmtOutlook+"/block", `{"note":"lost phone"}`, 200, &e)
	select {
	case st := <-blocked:
		if st != int(eas.StatusDeviceIsBlockedForThisUser) {
			t.Fatalf("held Ping after block: Status %d", st)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("held Ping answered after %s", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the held Ping was not answered within 2 s of block")
	}

	// Bulk: the dry run lists without acting; the real run acts.
	var br admin.BulkResult
	api.json("POST", "/api/v1/devices:bulk", `{"filter":{"state":"quarantined"},"action":"allow","dry_run":true}`, 200, &br)
	if br.Matched != 1 || len(br.Devices) != 1 || br.Devices[0].DeviceID != mgmtSamsung || len(br.Applied) != 0 {
		t.Fatalf("dry run %+v", br)
	}
	if _, ok := p.s.cur.Load().enf.acc.Overrides.Get(user, mgmtSamsung); ok {
		t.Fatal("the dry run set an override")
	}
	api.json("POST", "/api/v1/devices:bulk", `{"filter":{"state":"quarantined","client":"samsung-email"},"action":"quarantine","note":"bulk"}`, 200, &br)
	if br.Matched != 1 || len(br.Applied) != 1 || !br.Applied[0].Bulk {
		t.Fatalf("bulk %+v", br)
	}

	var audit admin.AuditList
	api.json("GET", "/api/v1/audit", "", 200, &audit)
	if len(audit.Entries) != 3 || audit.Entries[0].Action != "allow" || audit.Entries[1].Action != "block" ||
		audit.Entries[1].Before != "allowed" || audit.Entries[1].After != "blocked (override block)" || audit.Entries[2].Seq != 3 {
		t.Fatalf("audit %+v", audit.Entries)
	}

	// Overrides and the audit trail survive a restart.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	p2 := startProxyAt(t, mustParse(t, cfgYAML), p.addr)
	api2 := serveAdmin(t, p2.s, "")
	api2.json("GET", "/api/v1/audit", "", 200, &audit)
	if len(audit.Entries) != 3 {
		t.Fatalf("audit after restart: %+v", audit.Entries)
	}
	l = api2.devices("?sort=device_id")
	if l.Total != 4 {
		t.Fatalf("devices after restart: %+v", l)
	}
	for _, d := range l.Devices {
		wantOv := map[string]string{mgmtIPhone: "allow", mgmtOutlook: "block", mgmtSamsung: "quarantine"}[d.DeviceID]
		if (d.Override == nil) != (wantOv == "") || d.Override != nil && d.Override.Action != wantOv {
			t.Errorf("override of %s after restart: %+v", d.DeviceID, d.Override)
		}
	}
	// The overrides decide after the restart: the blocked Outlook phone is
	// refused.
	err := f.outlook.FolderSync()
	if err != nil && strings.Contains(err.Error(), "closed connection") {
		err = f.outlook.FolderSync() // the keep-alive connection died with the old server
	}
	if err == nil || !strings.Contains(err.Error(), "403") && !strings.Contains(err.Error(), "129") {
		t.Fatalf("blocked Outlook FolderSync after restart: %v", err)
	}
	// default removes the override and is audited.
	api2.json("POST", "/api/v1/devices/jdoe/"+mgmtOutlook+"/default", "", 200, &e)
	if e.After != "allowed" || e.Before != "blocked (override block)" {
		t.Fatalf("default: %+v", e)
	}
}

// TestDeviceReportMatchesGateway: the impact report's counts for a
// candidate policy equal what the gateway does once that policy is
// loaded.
func TestDeviceReportMatchesGateway(t *testing.T) {
	cas := startCountingCAS(t, bench.FakeCASConfig{Messages: 2, MessageSize: 256, AttachmentSize: -1})
	dir := t.TempDir()
	cur := enforceYAML(cas.url, dir, mgmtPolicy("quarantine"))
	p := startProxy(t, mustParse(t, cur))
	api := serveAdmin(t, p.s, "")
	f := startFleet(t, p)

	// The candidate allows by default but blocks Samsung Email.
	cand := enforceYAML(cas.url, dir, mgmtPolicy("allow")+`    - name: no-samsung
      match: {client: [samsung-email]}
      access: block
`)
	candCfg := mustParse(t, cand)
	// An admin override, set before: it must survive the reload and rank
	// above the candidate's allow rule, in the report and in the gateway.
	api.json("POST", "/api/v1/devices/jdoe/"+mgmtOutlook+"/block", `{"note":"lost"}`, 200, nil)
	acc, err := access.Build(candCfg, zerolog.Nop(), access.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer acc.Close()
	rep := admin.BuildReport(context.Background(), acc.Engine, acc.Rules, p.s.cur.Load().enf.acc.Devices, time.Now().Add(-time.Hour), time.Now())
	if rep.Devices != 4 || rep.ByState["allowed"] != 1 || rep.ByState["blocked"] != 3 || len(rep.Changes) != 2 ||
		rep.ByReason["admin-block"] != 1 {
		t.Fatalf("report %+v", rep)
	}
	// The API serves the running policy's report: nothing would change.
	var now admin.Report
	api.json("GET", "/api/v1/report?since=1h", "", 200, &now)
	if now.Devices != 4 || len(now.Changes) != 0 || now.ByState["quarantined"] != 2 || now.ByState["blocked"] != 2 {
		t.Fatalf("report of the running policy %+v", now)
	}

	if err := p.s.Reload(candCfg); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*bench.Device{f.outlook, f.iphone, f.gmail, f.samsung} {
		_ = d.FolderSync()
	}
	got := map[string]int{}
	for _, d := range api.devices("").Devices {
		got[d.State]++
	}
	for st, n := range rep.ByState {
		if got[st] != n {
			t.Errorf("state %s: report %d, gateway %d (%v)", st, n, got[st], got)
		}
	}
	for _, row := range rep.Rows {
		rec, _ := p.s.cur.Load().enf.acc.Devices.Get([]byte(row.User), []byte(row.DeviceID))
		if rec.State != row.State {
			t.Errorf("%s: report %s, gateway %s", row.DeviceID, row.State, rec.State)
		}
	}
}

// TestAdminAccess: tokens and roles on the admin listener; tokens never
// reach the log.
func TestAdminAccess(t *testing.T) {
	cas := newFakeCAS(t)
	dir := t.TempDir()
	const readTok, opTok = "read-secret-0f9e8d7c6b5a", "operate-secret-1a2b3c4d5e6f"
	rf, of := filepath.Join(dir, "read.token"), filepath.Join(dir, "op.token")
	if err := os.WriteFile(rf, []byte(readTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(of, []byte(opTok), 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(strings.Replace(testYAML([]string{cas.url()}, nil), "level: warn", "level: info", 1), "admin:\n  address: \"\"\n",
		fmt.Sprintf("admin:\n  address: \"127.0.0.1:0\"\n  tokens:\n    - {name: grafana, file: %s, role: read}\n    - {name: helpdesk, file: %s, role: operate}\n", rf, of), 1)
	logs := &syncWriter{w: &bytes.Buffer{}}
	s, err := newServer(mustParse(t, y), zerolog.New(logs), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Shutdown(context.Background()) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	p := &testProxy{s: s, addr: ln.Addr().String(), hc: &fasthttp.HostClient{Addr: ln.Addr().String()}}
	resp, err := p.do(t, "FolderSync", "d1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fasthttp.ReleaseResponse(resp)

	anon := serveAdmin(t, s, "")
	wrong := &adminClient{t: t, base: anon.base, token: "not-a-token"}
	reader := &adminClient{t: t, base: anon.base, token: readTok}
	operator := &adminClient{t: t, base: anon.base, token: opTok}
	for _, tc := range []struct {
		c            *adminClient
		method, path string
		want         int
	}{
		{anon, "GET", "/api/v1/devices", 401},
		{anon, "GET", "/metrics", 401},
		{wrong, "GET", "/api/v1/devices", 401},
		{wrong, "GET", "/metrics", 401},
		{reader, "POST", "/api/v1/devices/jdoe/d1/block", 403},
		{reader, "POST", "/api/v1/devices:bulk", 403},
		{anon, "GET", "/healthz", 200},
		{anon, "GET", "/readyz", 200},
		{reader, "GET", "/metrics", 200},
		{reader, "GET", "/api/v1/devices", 200},
		{operator, "POST", "/api/v1/devices/jdoe/d1/block", 200},
		{operator, "DELETE", "/api/v1/devices/jdoe/d1", 405},
	} {
		if code, body := tc.c.do(tc.method, tc.path, ""); code != tc.want {
			t.Errorf("%s %s with %q: %d %s, want %d", tc.method, tc.path, tc.c.token, code, body, tc.want)
		} else if code >= 400 {
			var eb struct {
				Error struct {
					Status  int
					Message string
				}
			}
			if json.Unmarshal(body, &eb) != nil || eb.Error.Status != code || eb.Error.Message == "" {
				t.Errorf("%s %s: error body %s", tc.method, tc.path, body)
			}
		}
	}
	var audit admin.AuditList
	reader.json("GET", "/api/v1/audit", "", 200, &audit)
	if len(audit.Entries) != 1 || audit.Entries[0].Actor != "helpdesk" || audit.Entries[0].Role != "operate" {
		t.Fatalf("audit %+v", audit.Entries)
	}
	// Prometheus sends "authorization: bearer" in lower case.
	req, _ := http.NewRequest("GET", anon.base+"/metrics", nil)
	req.Header.Set("authorization", "bearer "+readTok)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 200 {
		t.Fatalf("lower-case bearer: %v %v", r, err)
	}
	if strings.Contains(logs.String(), readTok) || strings.Contains(logs.String(), opTok) || strings.Contains(logs.String(), "not-a-token") {
		t.Fatalf("a token reached the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "admin request refused") || !strings.Contains(logs.String(), `"actor":"helpdesk"`) {
		t.Fatalf("refusals and actions are not logged:\n%s", logs.String())
	}
}

// TestAdminLoopbackOnly: without tokens, a client from the network is
// refused (in-process and loopback clients are served).
func TestAdminLoopbackOnly(t *testing.T) {
	cas := newFakeCAS(t)
	p := startProxy(t, mustParse(t, testYAML([]string{cas.url()}, nil)))
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	req.SetRequestURI("/metrics")
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4444}, nil)
	p.s.AdminHandler()(&ctx)
	if ctx.Response.StatusCode() != 403 {
		t.Fatalf("network client without tokens: %d", ctx.Response.StatusCode())
	}
	var ctx2 fasthttp.RequestCtx
	ctx2.Init(&req, &net.TCPAddr{IP: net.IPv6loopback, Port: 4444}, nil)
	p.s.AdminHandler()(&ctx2)
	if ctx2.Response.StatusCode() != 200 {
		t.Fatalf("loopback client: %d", ctx2.Response.StatusCode())
	}
}

// TestAdminBadInput: malformed filters, unknown devices, a huge page_size
// and bodies that are not JSON each get a clear 4xx in the one error shape.
func TestAdminBadInput(t *testing.T) {
	cas := startCountingCAS(t, bench.FakeCASConfig{Messages: 1, MessageSize: 256, AttachmentSize: -1})
	p := startProxy(t, mustParse(t, enforceYAML(cas.url, t.TempDir(), mgmtPolicy("quarantine"))))
	api := serveAdmin(t, p.s, "")
	phone := newPhone(p, user, mgmtSamsung, profile("samsung", eas.V141))
	if err := phone.Setup(); err != nil {
		t.Fatal(err)
	}
	dev := "/api/v1/devices/jdoe/" + mgmtSamsung
	for _, tc := range []struct {
		method, path, body string
		want               int
		msg                string
	}{
		{"GET", "/api/v1/devices?state=happy", "", 400, `state "happy"`},
		{"GET", "/api/v1/devices?reason=whim", "", 400, `reason "whim"`},
		{"GET", "/api/v1/devices?client=pine", "", 400, `client "pine"`},
		{"GET", "/api/v1/devices?seen_since=yesterday", "", 400, "seen_since"},
		{"GET", "/api/v1/devices?sort=color", "", 400, `sort "color"`},
		{"GET", "/api/v1/devices?page_size=100000", "", 400, "too large"},
		{"GET", "/api/v1/devices?page_size=-1", "", 400, "page_size"},
		{"GET", "/api/v1/devices?page_token=xyz", "", 400, "page_token"},
		{"GET", "/api/v1/devices?format=xml", "", 400, "format"},
		{"GET", "/api/v1/devices?user=jdoe@other.example", "", 400, "user"},
		{"GET", "/api/v1/devices/jdoe/NOSUCHDEVICE", "", 404, "no device"},
		{"POST", "/api/v1/devices/jdoe/NOSUCHDEVICE/allow", "", 404, "no device"},
		{"POST", dev + "/explode", "", 404, "unknown action"},
		{"POST", dev + "/allow", "not json", 400, "not the JSON object"},
		{"POST", dev + "/allow", `{"note": 5}`, 400, "not the JSON object"},
		{"POST", dev + "/allow", `{"nope": 1}`, 400, "unknown field"},
		{"POST", dev + "/block", `{"like": "X"}`, 400, "like applies to allow only"},
		{"POST", dev + "/allow", `{"like": "NOSUCH"}`, 404, "no device"},
		{"POST", "/api/v1/devices:bulk", "", 400, "needs a JSON body"},
		{"POST", "/api/v1/devices:bulk", "{", 400, "not the JSON object"},
		{"POST", "/api/v1/devices:bulk", `{"filter":{},"action":"block"}`, 400, "empty filter"},
		{"POST", "/api/v1/devices:bulk", `{"filter":{"state":"x"},"action":"block"}`, 400, `state "x"`},
		{"POST", "/api/v1/devices:bulk", `{"filter":{"state":"blocked"},"action":"nuke"}`, 400, `action "nuke"`},
		{"GET", "/api/v1/audit?since=never", "", 400, "since"},
		{"GET", "/api/v1/report?since=-3d", "", 400, "since"},
		{"GET", "/api/v1/nothing", "", 404, "no API endpoint"},
		{"GET", "/api/v2/devices", "", 404, "under /api/v1"},
	} {
		code, body := api.do(tc.method, tc.path, tc.body)
		var eb struct {
			Error struct {
				Status  int
				Code    string
				Message string
			}
		}
		if code != tc.want || json.Unmarshal(body, &eb) != nil || eb.Error.Status != code || !strings.Contains(eb.Error.Message, tc.msg) {
			t.Errorf("%s %s %q: %d %s; want %d with %q", tc.method, tc.path, tc.body, code, body, tc.want, tc.msg)
		}
	}
	if n := len(p.s.cur.Load().enf.acc.Overrides.All()); n != 0 {
		t.Fatalf("bad requests left %d overrides", n)
	}
}

// syncWriter serialises writes to a buffer (the server logs from many
// goroutines).
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
