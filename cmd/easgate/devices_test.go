package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/bench"
	"github.com/easgate/easgate/proxy"
	"github.com/easgate/easgate/proxy/admin"
	"github.com/easgate/easgate/proxy/config"
)

const mgmtConfig = `listen:
  address: "127.0.0.1:0"
  plain_http: true
upstreams:
  servers:
    - url: %s
  health_check:
    interval: 2s
    timeout: 1s
auth:
  domains: [demo.example]
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
    - {name: grafana, file: %s, role: read}
log:
  level: warn
  access_log: "off"
`

type mgmtEnv struct {
	dir, cfgPath, adminURL, opToken, readFile string
	srv                                       *proxy.Server
	adminSrv                                  *fasthttp.Server
}

// startMgmt runs a fake CAS, the gateway with its admin listener, and
// three phones through it.
func startMgmt(t *testing.T) *mgmtEnv {
	t.Helper()
	e := &mgmtEnv{dir: t.TempDir()}
	cas := bench.NewFakeCAS(bench.FakeCASConfig{Messages: 2, Users: map[string]string{"alice": "alice-pw", "bob": "bob-pw"}})
	casLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go cas.Serve(casLn)
	t.Cleanup(func() { _ = cas.Close() })
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.adminURL = "http://" + adminLn.Addr().String()
	opFile, readFile := filepath.Join(e.dir, "helpdesk.token"), filepath.Join(e.dir, "grafana.token")
	e.opToken, e.readFile = "op-7c1d5e0f9a8b", readFile
	_ = os.WriteFile(opFile, []byte(e.opToken+"\n"), 0o600)
	_ = os.WriteFile(readFile, []byte("read-0a1b2c3d"), 0o600)
	e.cfgPath = filepath.Join(e.dir, "easgate.yaml")
	text := fmt.Sprintf(mgmtConfig, "http://"+casLn.Addr().String(), filepath.Join(e.dir, "state.db"), adminLn.Addr().String(), opFile, readFile)
	if err := os.WriteFile(e.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	e.srv, err = proxy.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.srv.Serve(ln) }()
	e.adminSrv = &fasthttp.Server{Handler: e.srv.AdminHandler()}
	go func() { _ = e.adminSrv.Serve(adminLn) }()
	t.Cleanup(e.stop)
	if err := waitReady(e.srv, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ user, id, profile string }{
		{"alice@demo.example", "ApplF17XK2Q8N0PA", "ios"},
		{"alice@demo.example", "BF36923991ADFBA9C0FFEE0123456789", "outlook"},
		{"bob@demo.example", "SEC1F2E3D4C5B6A79", "samsung"},
	} {
		name, _, _ := strings.Cut(p.user, "@")
		d := bench.NewDevice(bench.DeviceConfig{Target: "http://" + ln.Addr().String(), User: p.user, Password: name + "-pw",
			DeviceID: p.id, Profile: bench.Profiles[p.profile], Timeout: 20 * time.Second})
		if err := d.Setup(); err != nil {
			t.Fatalf("%s: %v", p.id, err)
		}
	}
	return e
}

func (e *mgmtEnv) stop() {
	if e.srv == nil {
		return
	}
	_ = e.adminSrv.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = e.srv.Shutdown(ctx)
	e.srv = nil
}

// easgate runs the command line and returns its exit status and output.
func easgate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	t.Logf("$ easgate %s\n%s%s", strings.Join(args, " "), out.String(), errb.String())
	return code, out.String(), errb.String()
}

func TestDevicesCommands(t *testing.T) {
	e := startMgmt(t)
	cfg := []string{"--config", e.cfgPath}

	code, out, _ := easgate(t, append([]string{"devices", "list"}, cfg...)...)
	if code != 0 || !strings.Contains(out, "3 of 3 devices") || strings.Count(out, "quarantined") != 2 || !strings.Contains(out, "outlook-mobile") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	code, out, _ = easgate(t, "devices", "list", "--admin", e.adminURL, "--token-file", e.readFile, "--state", "quarantined", "--json")
	var l admin.DeviceList
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil || l.Total != 2 {
		t.Fatalf("list --json: %d %s", code, out)
	}
	code, out, _ = easgate(t, "devices", "list", "--admin", e.adminURL, "--token-file", e.readFile, "--csv", "--user", `bob`)
	if code != 0 || !strings.HasPrefix(out, "user,device_id") || !strings.Contains(out, "SEC1F2E3D4C5B6A79") || strings.Count(out, "\n") != 2 {
		t.Fatalf("list --csv: %d %s", code, out)
	}
	code, out, _ = easgate(t, append([]string{"devices", "show", "--user", "alice", "--device-id", "ApplF17XK2Q8N0PA"}, cfg...)...)
	if code != 0 || !strings.Contains(out, "evaluation:") || !strings.Contains(out, "iPhone15C2") || !strings.Contains(out, "default access") {
		t.Fatalf("show: %d\n%s", code, out)
	}
	// A read token cannot act.
	code, _, errOut := easgate(t, "devices", "block", "--admin", e.adminURL, "--token-file", e.readFile, "--user", "bob", "--device-id", "SEC1F2E3D4C5B6A79")
	if code != 1 || !strings.Contains(errOut, "needs operate") {
		t.Fatalf("read token acted: %d %s", code, errOut)
	}
	code, out, _ = easgate(t, append([]string{"devices", "allow", "--user", "alice@demo.example", "--device-id", "ApplF17XK2Q8N0PA", "--note", "INC-1042"}, cfg...)...)
	if code != 0 || !strings.Contains(out, "quarantined -> allowed (override allow)") {
		t.Fatalf("allow: %d %s", code, out)
	}
	code, out, _ = easgate(t, append([]string{"devices", "block", "--all-of-user", "bob", "--dry-run"}, cfg...)...)
	if code != 0 || !strings.Contains(out, "dry run: block would touch 1 device(s)") {
		t.Fatalf("dry run: %d %s", code, out)
	}
	code, out, _ = easgate(t, append([]string{"devices", "quarantine", "--client", "outlook-mobile", "--note", "review"}, cfg...)...)
	if code != 0 || !strings.Contains(out, "1 device(s) matched, 1 done") {
		t.Fatalf("bulk: %d %s", code, out)
	}
	code, out, _ = easgate(t, append([]string{"audit"}, cfg...)...)
	if code != 0 || !strings.Contains(out, "helpdesk") || !strings.Contains(out, "INC-1042") || !strings.Contains(out, "quarantine (bulk)") {
		t.Fatalf("audit: %d %s", code, out)
	}
	code, out, _ = easgate(t, append([]string{"report"}, cfg...)...)
	if code != 0 || !strings.Contains(out, "impact report: 3 devices of 2 users") || !strings.Contains(out, "would change: 0 device(s)") {
		t.Fatalf("report: %d %s", code, out)
	}
	cand := filepath.Join(e.dir, "candidate.yaml")
	text, _ := os.ReadFile(e.cfgPath)
	_ = os.WriteFile(cand, bytes.Replace(text, []byte("default_access: quarantine"), []byte("default_access: block"), 1), 0o600)
	code, out, _ = easgate(t, append([]string{"report", "--candidate", cand}, cfg...)...)
	if code != 0 || !strings.Contains(out, "would change: 1 device(s) of 1 user(s)") || !strings.Contains(out, "bob@demo.example") {
		t.Fatalf("candidate report: %d %s", code, out)
	}
	code, out, _ = easgate(t, append([]string{"report", "--candidate", cand, "--csv"}, cfg...)...)
	if code != 0 || !strings.HasPrefix(out, "user,device_id,client") || strings.Count(out, "\n") != 4 {
		t.Fatalf("candidate report csv: %d %s", code, out)
	}

	// Every page, one device per page.
	code, out, _ = easgate(t, "devices", "list", "--admin", e.adminURL, "--token-file", e.readFile, "--page-size", "1", "--all", "--csv")
	if code != 0 || strings.Count(out, "\n") != 4 {
		t.Fatalf("list --all: %d %s", code, out)
	}
	// allow --like carries an approval over, and says so in the trail.
	code, out, _ = easgate(t, append([]string{"devices", "allow", "--user", "alice", "--device-id", "BF36923991ADFBA9C0FFEE0123456789",
		"--like", "applf17xk2q8n0pa", "--json"}, cfg...)...)
	var like struct{ Like, After string }
	if code != 0 || json.Unmarshal([]byte(out), &like) != nil || like.Like != "ApplF17XK2Q8N0PA" || like.After != "allowed (override allow)" {
		t.Fatalf("allow --like: %d %s", code, out)
	}

	// No gateway: list, show and report read the state store; actions refuse.
	e.stop()
	code, out, errOut = easgate(t, append([]string{"devices", "list"}, cfg...)...)
	if code != 0 || !strings.Contains(out, "3 of 3 devices") || !strings.Contains(errOut, "read-only") || !strings.Contains(out, "allow by helpdesk") {
		t.Fatalf("list without gateway: %d %s %s", code, out, errOut)
	}
	code, out, _ = easgate(t, append([]string{"devices", "show", "--user", "bob", "--device-id", "sec1f2e3d4c5b6a79"}, cfg...)...)
	if code != 0 || !strings.Contains(out, "SM-G991B") || !strings.Contains(out, "notice delivered: ") {
		t.Fatalf("show without gateway: %d %s", code, out)
	}
	code, out, _ = easgate(t, append([]string{"audit", "--csv"}, cfg...)...)
	if code != 0 || !strings.HasPrefix(out, "seq,time,actor") || strings.Count(out, "\n") != 4 {
		t.Fatalf("audit without gateway: %d %s", code, out)
	}
	code, _, errOut = easgate(t, append([]string{"devices", "allow", "--user", "bob", "--device-id", "SEC1F2E3D4C5B6A79"}, cfg...)...)
	if code == 0 || !strings.Contains(errOut, "does not answer") {
		t.Fatalf("action without gateway: %d %s", code, errOut)
	}
	// Usage errors.
	for _, args := range [][]string{
		{"devices"}, {"devices", "paint"}, {"devices", "allow", "--config", e.cfgPath},
		{"devices", "allow", "--device-id", "X", "--config", e.cfgPath},
		{"devices", "block", "--user", "bob", "--device-id", "X", "--like", "Y", "--config", e.cfgPath},
		{"devices", "list"},
	} {
		if code, _, _ := easgate(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
