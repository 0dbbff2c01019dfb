package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func compareRun() RunConfig {
	return RunConfig{Devices: 3, Duration: 700 * time.Millisecond, Heartbeat: 120 * time.Second, TimeScale: 300,
		SendMailRate: 1, AttachmentRate: 1, SendAttachmentSize: 2000}
}

// TestCompareLegs runs the direct leg and an "easgate" leg through a small
// fasthttp reverse proxy standing in for a running gateway; a gateway
// binary that exits at once is reported as skipped.
func TestCompareLegs(t *testing.T) {
	casAddr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hc := &fasthttp.HostClient{Addr: casAddr, MaxConns: 1000}
	proxy := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.SetStatusCode(fasthttp.StatusBadGateway)
		}
	}}
	go func() { _ = proxy.Serve(ln) }()
	defer proxy.Shutdown()

	var logb bytes.Buffer
	res, err := Compare(CompareConfig{
		Run: compareRun(), CAS: FakeCASConfig{Messages: 6, AttachmentSize: 3000, TimeScale: 300, PingChangeEvery: time.Minute},
		CASListen: casAddr, EasgateURL: "http://" + ln.Addr().String(), NginxBin: "-", Log: &logb,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Legs) != 2 || res.Legs[0].Name != "direct" || res.Legs[1].Name != "easgate" {
		t.Fatalf("legs %+v skipped %v", res.Legs, res.Skipped)
	}
	for _, l := range res.Legs {
		if l.Report.Errors != 0 || l.Report.Requests == 0 {
			t.Errorf("leg %s: %d requests, errors %v %v", l.Name, l.Report.Requests, l.Report.ErrorKinds, l.Report.ErrorExamples)
		}
		// In process: no CAS figure of its own, the load generator's includes it.
		if r := l.Report; !r.CASInProcess || r.CAS != nil || r.Client == nil || r.Client.PID != os.Getpid() {
			t.Errorf("leg %s: in-process CAS: cas_in_process %v, cas %+v, client %+v", l.Name, r.CASInProcess, r.CAS, r.Client)
		}
	}
	var out bytes.Buffer
	if err := res.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"easgate", "skipped nginx: disabled", "bench CPU%", "%*", "* the fake CAS ran inside easbench"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("compare table lacks %q:\n%s", want, out.String())
		}
	}

	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	res, err = Compare(CompareConfig{Run: compareRun(), CAS: FakeCASConfig{TimeScale: 300},
		EasgateBin: sh, EasgateArgs: []string{"-c", "echo cannot read {config}; exit 3"}, NginxBin: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if why := res.Skipped["easgate"]; !strings.Contains(why, "easgate exited") || !strings.Contains(why, "cannot read") {
		t.Errorf("easgate skip reason %q", why)
	}
}

// TestCompareNginx runs the nginx leg when nginx is installed.
func TestCompareNginx(t *testing.T) {
	if _, err := findNginx(""); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %v", err)
		}
		t.Skip(err)
	}
	res, err := Compare(CompareConfig{Run: compareRun(), CAS: FakeCASConfig{Messages: 6, TimeScale: 300, PingChangeEvery: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	var nginx *Report
	for _, l := range res.Legs {
		if l.Name == "nginx" {
			nginx = l.Report
		}
	}
	if nginx == nil {
		t.Fatalf("nginx leg skipped: %v", res.Skipped["nginx"])
	}
	if nginx.Errors != 0 || nginx.Gateway == nil || nginx.Gateway.RSSMaxKiB == 0 {
		t.Errorf("nginx leg: errors %v, gateway %+v", nginx.ErrorKinds, nginx.Gateway)
	}
}

// gatewayStandIn is a small fasthttp reverse proxy to casAddr standing in
// for a running gateway; it returns its URL.
func gatewayStandIn(t *testing.T, casAddr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hc := &fasthttp.HostClient{Addr: casAddr, MaxConns: 1000}
	proxy := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.SetStatusCode(fasthttp.StatusBadGateway)
		}
	}}
	go func() { _ = proxy.Serve(ln) }()
	t.Cleanup(func() { _ = proxy.Shutdown() })
	return "http://" + ln.Addr().String()
}

// TestCompareCASSubprocess runs the fake CAS as its own process (this test
// binary, see TestMain) for a direct leg and a leg through a stand-in
// gateway: each report carries the CAS's own CPU and RSS and the load
// generator's, a CAS option (Latency) crosses the process boundary, and
// the child is gone when Compare returns.
func TestCompareCASSubprocess(t *testing.T) {
	t.Setenv(testCASChildEnv, "1")
	casAddr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	var logb bytes.Buffer
	res, err := Compare(CompareConfig{
		Run: RunConfig{Devices: 4, Duration: 800 * time.Millisecond, Scenario: ScenarioSmall, TimeScale: 300, Heartbeat: 120 * time.Second,
			Password: "pw"},
		CAS: FakeCASConfig{Messages: 6, Latency: 3 * time.Millisecond, TimeScale: 300, Users: map[string]string{
			"direct-u0001": "pw", "direct-u0002": "pw", "direct-u0003": "pw", "direct-u0004": "pw",
			"easgate-u0001": "pw", "easgate-u0002": "pw", "easgate-u0003": "pw", "easgate-u0004": "pw"}},
		CASListen: casAddr, CASCommand: []string{os.Args[0]},
		EasgateURL: gatewayStandIn(t, casAddr), EasgatePID: os.Getpid(), NginxBin: "-", Log: &logb,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, logb.String())
	}
	if len(res.Legs) != 2 {
		t.Fatalf("legs %+v skipped %v\n%s", res.Legs, res.Skipped, logb.String())
	}
	casPID := 0
	for _, l := range res.Legs {
		r := l.Report
		if r.Errors != 0 || r.Requests == 0 || len(r.ErrorExamples) > 0 || r.DevicesSetUp == 0 {
			t.Errorf("leg %s: %d requests, %d set up, errors %v %v", l.Name, r.Requests, r.DevicesSetUp, r.ErrorKinds, r.ErrorExamples)
		}
		if r.Overall.P50 < 2.9 { // FakeCASConfig.Latency 3 ms reached the child
			t.Errorf("leg %s: p50 %.2f ms below the CAS's 3 ms latency: the spec did not reach the child\n%s", l.Name, r.Overall.P50, logb.String())
		}
		if r.CASInProcess || r.CAS == nil || r.Client == nil {
			t.Fatalf("leg %s: cas_in_process %v, cas %+v, client %+v", l.Name, r.CASInProcess, r.CAS, r.Client)
		}
		if casPID == 0 {
			casPID = r.CAS.PID
		}
		if r.CAS.PID != casPID || r.CAS.PID == os.Getpid() || r.CAS.CPUSeconds <= 0 || r.CAS.CPUPercent <= 0 || r.CAS.RSSMaxKiB <= 0 {
			t.Errorf("leg %s: CAS figures %+v", l.Name, r.CAS)
		}
		if r.Client.PID != os.Getpid() || r.Client.CPUSeconds <= 0 || r.Client.CPUPercent <= 0 || r.Client.RSSMaxKiB <= 0 {
			t.Errorf("leg %s: load generator figures %+v", l.Name, r.Client)
		}
		var js bytes.Buffer
		if err := r.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(js.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		for _, proc := range []string{"cas", "client"} {
			pm, _ := m[proc].(map[string]any)
			for _, k := range []string{"pid", "cpu_seconds", "cpu_percent", "rss_start_kib", "rss_max_kib", "rss_end_kib"} {
				if _, ok := pm[k]; !ok {
					t.Errorf("leg %s: JSON %q lacks %q: %v", l.Name, proc, k, m[proc])
				}
			}
		}
		if _, ok := m["cas_in_process"]; ok {
			t.Errorf("leg %s: cas_in_process in the JSON of a subprocess CAS", l.Name)
		}
	}
	if res.Legs[1].Report.Gateway == nil {
		t.Errorf("easgate leg: no gateway figures")
	}
	if !processGone(casPID) {
		t.Errorf("fake CAS pid %d still runs after Compare returned", casPID)
	}
	var out bytes.Buffer
	if err := res.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	head := strings.Fields(lines[0])
	if strings.Join(head, " ") != "leg req/s p50 ms p99 ms p99.9 ms errors gw CPU% gw RSS CAS CPU% CAS RSS bench CPU% p50 × p99 × req/s ×" {
		t.Errorf("table header %q", lines[0])
	}
	if direct := strings.Fields(lines[1]); len(direct) < 11 || direct[0] != "direct" || !strings.HasSuffix(direct[8], "%") || !strings.HasSuffix(direct[11], "%") {
		t.Errorf("direct row lacks CAS and bench CPU%%: %q", lines[1])
	}
	if strings.Contains(out.String(), "*") {
		t.Errorf("in-process footnote for a subprocess CAS:\n%s", out.String())
	}
	if !strings.Contains(logb.String(), fmt.Sprintf("fake CAS pid %d: test fake CAS on", casPID)) {
		t.Errorf("the fake CAS's output was not forwarded to Log:\n%s", logb.String())
	}
}

// TestCompareCASChildErrors checks each way the fake CAS subprocess can
// fail: Compare returns an error and leaves no process behind.
func TestCompareCASChildErrors(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but no sh")
		}
		t.Skip("no sh")
	}
	defer func(d time.Duration) { childStartTimeout = d }(childStartTimeout)
	childStartTimeout = time.Second
	short := RunConfig{Devices: 1, Duration: 300 * time.Millisecond, Scenario: ScenarioSmall, TimeScale: 300}
	tests := []struct {
		name    string
		run     RunConfig
		cas     FakeCASConfig
		command func(pidFile string) []string
		testBin bool // the child is this test binary (TestMain)
		want    []string
	}{
		{name: "exits at once", run: short,
			command: func(string) []string { return []string{sh, "-c", "echo cannot serve >&2; exit 4"} },
			want:    []string{"compare: fake CAS: fake CAS exited", "exit status 4", "cannot serve"}},
		{name: "never listens", run: short,
			command: func(pf string) []string { return []string{sh, "-c", `echo $$ > "$0"; exec sleep 30`, pf} },
			want:    []string{"fake CAS did not listen on 127.0.0.1:", "within 1s"}},
		{name: "bad spec", run: short, cas: FakeCASConfig{FailRate: 2},
			command: func(string) []string { return []string{sh, "-c", "exit 0"} },
			want:    []string{"field cas.FailRate", "not a fraction"}},
		{name: "no leg ran", run: RunConfig{Devices: -1, Duration: time.Second}, testBin: true,
			command: func(string) []string { return []string{os.Args[0]} },
			want:    []string{"compare: no leg ran"}},
		{name: "missing binary", run: short,
			command: func(string) []string { return []string{"/nonexistent/easbench", "upstream"} },
			want:    []string{"compare: fake CAS: fake CAS:", "no such file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "cas.pid")
			t.Setenv(testCASPIDFileEnv, pidFile)
			if tc.testBin {
				t.Setenv(testCASChildEnv, "1")
			}
			res, err := Compare(CompareConfig{Run: tc.run, CAS: tc.cas, CASCommand: tc.command(pidFile), NginxBin: "-"})
			if err == nil {
				t.Fatalf("no error; legs %+v", res.Legs)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, statErr := os.Stat(pidFile); statErr == nil {
				if pid := waitPIDFile(t, pidFile); !processGone(pid) {
					t.Errorf("fake CAS pid %d still runs after Compare failed", pid)
				}
			} else if tc.testBin || tc.name == "never listens" {
				t.Errorf("the child never wrote %s", pidFile)
			}
		})
	}
}

// TestCompareCASDiesWithParent kills a process in the middle of Compare
// (SIGKILL: no deferred clean-up runs) and checks that its fake CAS child
// goes too.
func TestCompareCASDiesWithParent(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux only")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "cas.pid")
	parent := exec.Command(os.Args[0], "-test.run=^$")
	// TMPDIR: the killed parent cannot remove the fake CAS's directory.
	parent.Env = append(os.Environ(), testCompareParentEnv+"=1", testCASPIDFileEnv+"="+pidFile, "TMPDIR="+dir)
	var perr bytes.Buffer
	parent.Stderr = &perr
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = parent.Process.Kill()
		_ = parent.Wait()
	}()
	casPID := waitPIDFile(t, pidFile)
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	for deadline := time.Now().Add(20 * time.Second); !processGone(casPID); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("fake CAS pid %d outlived its killed parent by 20 s\n%s", casPID, perr.String())
		}
	}
}

func TestNginxConfig(t *testing.T) {
	c := NginxConfig("/tmp/x", "127.0.0.1:9", "127.0.0.1:8")
	for _, want := range []string{"listen 127.0.0.1:9;", "server 127.0.0.1:8;", "keepalive 1024", "proxy_read_timeout 3660s",
		"proxy_buffering off", "proxy_request_buffering off", `proxy_set_header Connection ""`, "proxy_http_version 1.1", "daemon off"} {
		if !strings.Contains(c, want) {
			t.Errorf("nginx config lacks %q", want)
		}
	}
}
