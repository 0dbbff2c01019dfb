package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/easgate/easgate/bench"
	"github.com/easgate/easgate/proxy/config"
)

// The files of examples/ for running easgate as a service, checked with
// the tools that read them (Debian packages: systemd, prometheus for
// promtool, logrotate). Without a tool the test skips with a message; in
// CI (CI=true) it fails instead.

const examplesDir = "../../examples"

// needTool returns the path of a command or skips (fails in CI).
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (Debian package %s; .ci/run installs it)", name, pkg)
		}
		t.Skipf("%s not found: apt-get install %s to run this test", name, pkg)
	}
	return p
}

var (
	builtOnce sync.Once
	builtBin  string
	builtErr  error
)

// easgateBinary builds cmd/easgate once for the tests that run the real
// binary.
func easgateBinary(t *testing.T) string {
	t.Helper()
	builtOnce.Do(func() {
		dir, err := os.MkdirTemp("", "easgate-bin-")
		if err != nil {
			builtErr = err
			return
		}
		builtBin = filepath.Join(dir, "easgate")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			builtErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if builtErr != nil {
		t.Fatal(builtErr)
	}
	return builtBin
}

// TestSystemdUnit: the unit is hardened as the README says, sizes
// LimitNOFILE from max_held_long_polls, reloads with SIGHUP, and passes
// systemd-analyze verify without a single message.
func TestSystemdUnit(t *testing.T) {
	path := filepath.Join(examplesDir, "systemd", "easgate.service")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	directive := func(key string) []string {
		var vals []string
		for _, l := range strings.Split(unit, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), key+"="); ok {
				vals = append(vals, v)
			}
		}
		return vals
	}
	for key, want := range map[string]string{
		"ProtectSystem":           "strict",
		"NoNewPrivileges":         "yes",
		"CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE",
		"AmbientCapabilities":     "CAP_NET_BIND_SERVICE",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"ExecStart":               "/usr/local/bin/easgate serve --config /etc/easgate/easgate.yaml",
		"StateDirectory":          "easgate",
		"LogsDirectory":           "easgate",
		"SystemCallArchitectures": "native",
	} {
		if got := directive(key); len(got) != 1 || got[0] != want {
			t.Errorf("%s=%v, want %s", key, got, want)
		}
	}
	if u, d := directive("User"), directive("DynamicUser"); !(len(u) == 1 && u[0] != "root") && !(len(d) == 1 && d[0] == "yes") {
		t.Errorf("the unit runs as root: User=%v DynamicUser=%v", u, d)
	}
	// LimitNOFILE: two per held long poll plus headroom, for the default
	// limits.max_held_long_polls (what examples/minimal.yaml runs with).
	nofile := directive("LimitNOFILE")
	n, err := strconv.Atoi(strings.Join(nofile, ""))
	held := config.Default().Limits.MaxHeldLongPolls
	if err != nil || n < 2*held+1000 {
		t.Errorf("LimitNOFILE=%v: want at least 2 × max_held_long_polls (%d) + headroom", nofile, held)
	}
	// The state and access log paths of the minimal example are the
	// directories the unit lets it write.
	minimal, err := config.Load(filepath.Join(examplesDir, "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(minimal.State.Path, "/var/lib/easgate/") || !strings.HasPrefix(minimal.Log.AccessLog, "/var/log/easgate/") {
		t.Errorf("minimal.yaml writes %s and %s, outside StateDirectory and LogsDirectory", minimal.State.Path, minimal.Log.AccessLog)
	}

	analyze := needTool(t, "systemd-analyze", "systemd")
	// verify checks that the programs exist: point the unit at a real build.
	dir := t.TempDir()
	copyPath := filepath.Join(dir, "easgate.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(unit, "/usr/local/bin/easgate", easgateBinary(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestPrometheusExamples: promtool accepts the scrape config and the alert
// rules, and the rules' own unit tests (easgate-alerts.test.yml) pass.
func TestPrometheusExamples(t *testing.T) {
	promtool := needTool(t, "promtool", "prometheus")
	dir := filepath.Join(examplesDir, "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "easgate-alerts.yml"},
		{"check", "config", "prometheus.yml"},
		{"test", "rules", "easgate-alerts.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestMonitoringUsesRealMetrics: every easgate_* series the alert rules and
// the Grafana dashboard query is one easgate exports, and the alerts the
// issue asks for exist.
func TestMonitoringUsesRealMetrics(t *testing.T) {
	exported := map[string]bool{}
	srcs, _ := filepath.Glob("../../proxy/*.go")
	for _, p := range srcs {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`"(easgate_[a-z_]+)"`).FindAllStringSubmatch(string(data), -1) {
			exported[m[1]] = true
		}
	}
	if len(exported) < 10 {
		t.Fatalf("found only %d metric names in proxy/", len(exported))
	}
	rules, err := os.ReadFile(filepath.Join(examplesDir, "prometheus", "easgate-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dash, err := os.ReadFile(filepath.Join(examplesDir, "grafana", "easgate-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dash, &d); err != nil || len(d.Panels) < 6 {
		t.Fatalf("dashboard: %v, %d panels", err, len(d.Panels))
	}
	exprs := string(rules)
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs += "\n" + tg.Expr
		}
	}
	for _, m := range regexp.MustCompile(`\beasgate_[a-z_]+\b`).FindAllString(exprs, -1) {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
		if !exported[base] {
			t.Errorf("the monitoring examples query %s, which easgate does not export", m)
		}
	}
	for _, alert := range []string{"EasgateCASDown", "EasgateAllCASDown", "EasgateHeldPollsNearLimit",
		"EasgateComplianceSourceStale", "EasgateLockoutsSpiking"} {
		if !strings.Contains(string(rules), "alert: "+alert+"\n") {
			t.Errorf("alert rule %s missing", alert)
		}
	}
}

// TestLogrotateReopensAccessLog runs the shipped logrotate file (its paths
// and postrotate pointed at a test instance) against a running easgate: the
// rotated file keeps the lines before, and after SIGUSR1 easgate writes to
// a new file of the configured name.
func TestLogrotateReopensAccessLog(t *testing.T) {
	logrotate := needTool(t, "logrotate", "logrotate")
	if os.Geteuid() != 0 {
		t.Skip("logrotate's create directive needs root to chown; run as root")
	}
	bin := easgateBinary(t)
	cas := bench.NewFakeCAS(bench.FakeCASConfig{Messages: 1})
	casLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = cas.Serve(casLn) }()
	defer cas.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	cfgPath := filepath.Join(dir, "easgate.yaml")
	cfg := fmt.Sprintf("listen:\n  address: %q\n  plain_http: true\nupstreams:\n  servers:\n    - url: http://%s\nadmin:\n  address: \"\"\nlog:\n  level: warn\n  access_log: %s\n",
		addr, casLn.Addr(), logPath)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(bin, "serve", "--config", cfgPath)
	stderr := &lockedBuffer{}
	srv.Stderr = stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
	}()
	request := func(device string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			req, _ := http.NewRequest("OPTIONS", "http://"+addr+"/Microsoft-Server-ActiveSync?User=jdoe&DeviceId="+device+"&DeviceType=iPhone", nil)
			req.SetBasicAuth("jdoe", "pw")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return
				}
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			if time.Now().After(deadline) {
				t.Fatalf("OPTIONS through easgate: %v\n%s", err, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	has := func(path, device string) bool {
		data, _ := os.ReadFile(path)
		return strings.Contains(string(data), `"device_id":"`+device+`"`)
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, stderr.String())
			}
		}
	}
	request("before")
	wait("the first line", func() bool { return has(logPath, "before") })

	shipped, err := os.ReadFile(filepath.Join(examplesDir, "logrotate", "easgate"))
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.ReplaceAll(string(shipped), "/var/log/easgate/access.log", logPath)
	conf = strings.ReplaceAll(conf, "create 0640 easgate easgate", "create 0640 root root")
	conf = regexp.MustCompile(`systemctl kill [^\n]*`).ReplaceAllString(conf, "kill -USR1 "+strconv.Itoa(srv.Process.Pid))
	if !strings.Contains(conf, "kill -USR1 ") || !strings.Contains(conf, logPath+" {") {
		t.Fatalf("the shipped logrotate file changed shape:\n%s", shipped)
	}
	confPath := filepath.Join(dir, "logrotate.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(logrotate, "-f", "-s", filepath.Join(dir, "logrotate.state"), confPath).CombinedOutput(); err != nil {
		t.Fatalf("logrotate: %v\n%s", err, out)
	}
	request("after")
	wait("the line after the rotation", func() bool { return has(logPath, "after") })
	if !has(logPath+".1", "before") || has(logPath+".1", "after") || has(logPath, "before") {
		t.Fatal("after the rotation the lines are in the wrong files")
	}
	if strings.Contains(stderr.String(), "configuration reload") {
		t.Errorf("USR1 reloaded the configuration:\n%s", stderr.String())
	}
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
