package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/easgate/easgate/bench"
)

// TestMain lets `easbench compare` start this test binary as its fake CAS
// (os.Executable() + "upstream") and as its bare proxy (+ "bare-proxy"): it
// then runs the real command.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "upstream" && os.Getenv(bench.CASSpecEnv) != "" || os.Args[1] == "bare-proxy") {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage: easbench") {
		t.Errorf("no args: code %d, stderr %q", code, errb.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 {
		t.Errorf("unknown command: code %d", code)
	}
	if code := run([]string{"run"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--target is required") {
		t.Errorf("run without target: code %d, %q", code, errb.String())
	}
	if code := run([]string{"run", "--target", "http://127.0.0.1:1", "--mix", "nokia=1"}, &out, &errb); code != 2 {
		t.Errorf("bad mix: code %d", code)
	}
}

// TestRunCommand runs `easbench run` for about a second against an
// in-process fake CAS and checks the JSON and HTML it writes.
func TestRunCommand(t *testing.T) {
	cas := bench.NewFakeCAS(bench.FakeCASConfig{Messages: 10, MessageSize: 300, AttachmentSize: 5000,
		PingChangeEvery: 60 * time.Second, TimeScale: 300})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = cas.Serve(ln) }()
	defer cas.Close()
	dir := t.TempDir()
	jsonPath, htmlPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	var out, errb bytes.Buffer
	code := run([]string{"run", "--target", "http://" + ln.Addr().String(), "--devices", "5", "--duration", "1s",
		"--time-scale", "300", "--heartbeat", "120s", "--send-mail-rate", "1", "--attachment-rate", "1",
		"--verify-content", "--fail-on-error", "--pid", itoa(os.Getpid()), "--json", jsonPath, "--html", htmlPath}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "Ping (held: ms until answered)") || !strings.Contains(out.String(), "gateway pid") {
		t.Errorf("terminal report:\n%s", out.String())
	}
	var rep map[string]any
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	cmds, _ := rep["commands"].(map[string]any)
	sync, _ := cmds["Sync"].(map[string]any)
	for _, k := range []string{"p50", "p90", "p99", "p999", "errors", "throughput", "count"} {
		if _, ok := sync[k]; !ok {
			t.Errorf("JSON commands.Sync lacks %q: %v", k, sync)
		}
	}
	h, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<svg id="latency-over-time"`, `<svg id="latency-histogram"`, "<polyline", "<rect class=\"bar\""} {
		if !bytes.Contains(h, []byte(want)) {
			t.Errorf("HTML lacks %s", want)
		}
	}
	if bytes.Contains(h, []byte("<script")) || bytes.Contains(h, []byte("http://cdn")) {
		t.Errorf("HTML must be self-contained")
	}
}

// TestCompareSkipsMissingLegs runs `easbench compare` with its defaults:
// the fake CAS as its own process (this binary, see TestMain), the
// easgate and nginx legs skipped. The table, the JSON and the HTML carry
// the CAS's own CPU and RSS and the load generator's.
func TestCompareSkipsMissingLegs(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run([]string{"compare", "--devices", "3", "--duration", "700ms", "--time-scale", "300", "--scenario", "small",
		"--heartbeat", "120s", "--nginx", "/nonexistent/nginx", "--messages", "5", "--latency", "2ms",
		"--users", "udirect-0001:pw,udirect-0002:pw,udirect-0003:pw", "--password", "pw",
		"--json", filepath.Join(dir, "r.json"), "--html", filepath.Join(dir, "r.html")}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	s := out.String()
	if !strings.Contains(s, "direct") || !strings.Contains(s, "skipped easgate") || !strings.Contains(s, "skipped nginx") {
		t.Errorf("compare output:\n%s", s)
	}
	lines := strings.Split(s, "\n")
	for _, col := range []string{"gw CPU%", "CAS CPU%", "CAS RSS", "bench CPU%"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("table header lacks %q: %q", col, lines[0])
		}
	}
	row := strings.Fields(lines[1])
	if len(row) < 12 || row[0] != "direct" || row[6] != "-" || !strings.HasSuffix(row[8], "%") || !strings.HasSuffix(row[11], "%") {
		t.Errorf("direct row: want gw CPU%% '-', CAS and bench CPU%% figures: %q", lines[1])
	}
	if !strings.Contains(errb.String(), "fake CAS pid") || !strings.Contains(errb.String(), "served map[") {
		t.Errorf("the fake CAS did not run as its own process:\n%s", errb.String())
	}

	b, err := os.ReadFile(filepath.Join(dir, "r-direct.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || len(rep.ErrorExamples) > 0 || rep.DevicesSetUp == 0 {
		t.Errorf("errors %v %v, set up %d (the --users/--latency spec must reach the CAS)", rep.ErrorKinds, rep.ErrorExamples, rep.DevicesSetUp)
	}
	if rep.Overall.P50 < 1.9 {
		t.Errorf("p50 %.2f ms below --latency 2ms: the CAS options did not reach the child", rep.Overall.P50)
	}
	if rep.CASInProcess || rep.CAS == nil || rep.CAS.PID == os.Getpid() || rep.CAS.CPUSeconds <= 0 || rep.CAS.RSSMaxKiB <= 0 {
		t.Errorf("CAS figures %+v (in process %v)", rep.CAS, rep.CASInProcess)
	}
	if rep.Client == nil || rep.Client.PID != os.Getpid() || rep.Client.CPUSeconds <= 0 {
		t.Errorf("load generator figures %+v", rep.Client)
	}
	if rep.CAS != nil {
		if err := syscall.Kill(rep.CAS.PID, 0); err != syscall.ESRCH {
			t.Errorf("fake CAS pid %d still exists after compare: %v", rep.CAS.PID, err)
		}
	}
	h, err := os.ReadFile(filepath.Join(dir, "r-direct.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<table id="processes">`, "<td>fake CAS</td>", "<td>load generator</td>"} {
		if !bytes.Contains(h, []byte(want)) {
			t.Errorf("HTML lacks %s", want)
		}
	}
}

// TestCompareCASInProcess: --cas-in-process keeps the fake CAS in easbench
// and says so under the table.
func TestCompareCASInProcess(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"compare", "--cas-in-process", "--devices", "2", "--duration", "400ms", "--time-scale", "300",
		"--scenario", "small", "--nginx", "-", "--messages", "5"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	row := strings.Fields(strings.Split(out.String(), "\n")[1])
	if len(row) < 12 || row[8] != "-" || !strings.HasSuffix(row[10], "%*") {
		t.Errorf("direct row: want CAS CPU%% '-' and bench CPU%% marked *: %q", row)
	}
	if !strings.Contains(out.String(), "* the fake CAS ran inside easbench") || !strings.Contains(errb.String(), "(in process)") {
		t.Errorf("output:\n%s\n%s", out.String(), errb.String())
	}
}

func TestCompareHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"compare", "-h"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"usage: easbench compare", "CAS CPU%", "bench CPU%", "-cas-in-process", `"cas"`, `"client"`, bench.CASSpecEnv} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("compare -h lacks %q", want)
		}
	}
	errb.Reset()
	if code := run([]string{"upstream", "-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), bench.CASSpecEnv) {
		t.Errorf("upstream -h: exit %d\n%s", code, errb.String())
	}
}

// TestUpstreamSpec: `easbench upstream` under $EASBENCH_CAS_SPEC refuses
// a bad spec (without quoting it) and flags that would contradict it.
func TestUpstreamSpec(t *testing.T) {
	tests := []struct {
		name, spec string
		args       []string
		want       string
	}{
		{"malformed", `{"listen":"127.0.0.1:1","cas":{"Users":{"u":"hunter2"x}}}`, nil, "malformed JSON"},
		{"bad rate", `{"listen":"127.0.0.1:1","cas":{"FailRate":7}}`, nil, "field cas.FailRate"},
		{"flags too", `{"listen":"127.0.0.1:1","cas":{}}`, []string{"--messages", "3", "--listen", "127.0.0.1:2"},
			"--listen, --messages cannot be combined with $" + bench.CASSpecEnv},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(bench.CASSpecEnv, tc.spec)
			var out, errb bytes.Buffer
			if code := run(append([]string{"upstream"}, tc.args...), &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errb.String(), tc.want)
			}
			if strings.Contains(errb.String(), "hunter2") {
				t.Errorf("the password leaked: %s", errb.String())
			}
		})
	}
}

// TestCompareRounds runs `easbench compare --rounds 3` with short legs: the
// fake CAS in its own process, a stand-in gateway as easgate and nginx when
// installed. The log shows the rotated order, the table has the rounds
// lines, and each leg's JSON and HTML carry the three rounds and the chosen
// one.
func TestCompareRounds(t *testing.T) {
	nginx := ""
	if _, err := exec.LookPath("nginx"); err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("CI=true but nginx is not installed")
			}
			t.Log("nginx is not installed: without the nginx leg")
			nginx = "-"
		}
	}
	casAddr := freeAddr(t)
	gw := standInGateway(t, casAddr)
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run([]string{"compare", "--rounds", "3", "--devices", "2", "--duration", "300ms", "--time-scale", "300",
		"--scenario", "small", "--heartbeat", "120s", "--messages", "4", "--cas-listen", casAddr, "--easgate-url", gw,
		"--nginx", nginx, "--fail-on-error", "--json", filepath.Join(dir, "r.json"), "--html", filepath.Join(dir, "r.html")}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	legs := []string{"direct", "easgate", "nginx"}
	if nginx == "-" {
		legs = legs[:2]
	}
	var order, want []string
	for _, line := range strings.Split(errb.String(), "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[1] == "round" && f[5] == "→" {
			order = append(order, f[2]+" "+f[4])
		}
	}
	for r := range 3 {
		for i := range legs {
			want = append(want, fmt.Sprintf("%d/3: %s", r+1, legs[(i+r)%len(legs)]))
		}
	}
	if strings.Join(order, ", ") != strings.Join(want, ", ") {
		t.Errorf("legs ran in the order\n%s\nwant\n%s", strings.Join(order, ", "), strings.Join(want, ", "))
	}
	s := out.String()
	for _, l := range legs {
		if !strings.Contains(s, "\n  "+l+" req/s  ") {
			t.Errorf("no rounds line for %s:\n%s", l, s)
		}
	}
	if !strings.Contains(s, "3 rounds, leg order rotated each round") {
		t.Errorf("no rounds note:\n%s", s)
	}
	if got := strings.Contains(s, "easgate ÷ nginx req/s by round: r1 "); got != (nginx == "") {
		t.Errorf("easgate ÷ nginx line present %v, nginx %q:\n%s", got, nginx, s)
	}
	for _, l := range legs {
		b, err := os.ReadFile(filepath.Join(dir, "r-"+l+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var rep bench.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Rounds) != 3 || rep.MedianRound < 1 || rep.MedianRound > 3 || rep.Throughput != rep.Rounds[rep.MedianRound-1].ReqPerS {
			t.Errorf("%s: rounds %+v, median_round %d, req/s %.1f", l, rep.Rounds, rep.MedianRound, rep.Throughput)
		}
		for i, r := range rep.Rounds {
			if r.Round != i+1 || r.Position < 1 || r.Position > len(legs) || r.ReqPerS <= 0 || r.P99MS <= 0 || r.Failed != "" {
				t.Errorf("%s round %d: %+v", l, i+1, r)
			}
		}
		h, err := os.ReadFile(filepath.Join(dir, "r-"+l+".html"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(h, []byte(`<table id="rounds">`)) {
			t.Errorf("%s: HTML lacks the rounds table", l)
		}
	}
}

// TestCompareRoundsFlag: --rounds is documented and must be at least 1.
func TestCompareRoundsFlag(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--rounds", "0"}, 2, "compare: --rounds 0: want at least 1"},
		{[]string{"--rounds=-2"}, 2, "compare: --rounds -2: want at least 1"},
		{[]string{"--rounds", "three"}, 2, `invalid value "three" for flag -rounds`},
		{[]string{"-h"}, 0, "--rounds N runs the legs N times in one invocation"},
		{[]string{"-h"}, 0, "-rounds int"},
		{[]string{"-h"}, 0, `"median_round"`},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		if code := run(append([]string{"compare"}, tc.args...), &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("compare %v: exit %d, want %d and %q in\n%s", tc.args, code, tc.code, tc.want, errb.String())
		}
	}
}

// TestCompareBare: --bare adds a leg through `easbench bare-proxy`, run as
// its own process (this binary, see TestMain), with its own CPU figures;
// with rounds, the ratio easgate ÷ bare is printed by round.
func TestCompareBare(t *testing.T) {
	casAddr := freeAddr(t)
	var users []string
	for _, leg := range []string{"direct", "easgate", "bare"} {
		for _, r := range []string{"", "r2-"} {
			users = append(users, "u"+leg+"-"+r+"0001:pw")
		}
	}
	var out, errb bytes.Buffer
	code := run([]string{"compare", "--bare", "--rounds", "2", "--devices", "1", "--duration", "400ms", "--time-scale", "300",
		"--scenario", "small", "--nginx", "-", "--messages", "5", "--cas-listen", casAddr,
		"--easgate-url", standInGateway(t, casAddr), "--users", strings.Join(users, ","), "--password", "pw", "--fail-on-error"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	s := out.String()
	var bareRow []string
	for _, line := range strings.Split(s, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "bare" && bareRow == nil {
			bareRow = f // the table row; the rounds line comes later
		}
	}
	if len(bareRow) < 12 || !strings.HasSuffix(bareRow[6], "%") || bareRow[7] == "-" {
		t.Errorf("bare row without the bare proxy's CPU and RSS: %q\n%s", bareRow, s)
	}
	for _, want := range []string{"  bare req/s  ", "easgate ÷ bare req/s by round: r1 ", "skipped nginx"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if !strings.Contains(errb.String(), "starting the bare fasthttp proxy:") || !strings.Contains(errb.String(), " bare-proxy --listen 127.0.0.1:") {
		t.Errorf("the bare proxy did not run as its own process:\n%s", errb.String())
	}
}

// TestBareProxyCommand: bad flags are usage errors; -h explains the leg.
func TestBareProxyCommand(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--upstream", "cas"}, 2, `bare-proxy: --upstream "cas": want host:port`},
		{[]string{"extra"}, 2, "bare-proxy: unexpected argument extra"},
		{[]string{"--nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"-h"}, 0, "no EAS work"},
		{[]string{"--listen", "256.0.0.1:1"}, 1, "256.0.0.1"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		if code := run(append([]string{"bare-proxy"}, tc.args...), &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("bare-proxy %v: exit %d, want %d and %q in\n%s", tc.args, code, tc.code, tc.want, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"-h"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "bare-proxy") {
		t.Errorf("easbench -h does not list bare-proxy:\n%s", out.String())
	}
}

// freeAddr returns a free loopback address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// standInGateway is a small reverse proxy to casAddr standing in for a
// running easgate; it returns its URL.
func standInGateway(t *testing.T, casAddr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := bench.NewBareProxy(casAddr)
	go func() { _ = p.Serve(ln) }()
	t.Cleanup(func() { _ = p.Close() })
	return "http://" + ln.Addr().String()
}

func TestLegPath(t *testing.T) {
	for in, want := range map[string]string{"r.json": "r-nginx.json", "/a.b/r": "/a.b/r-nginx", "x/r.html": "x/r-nginx.html"} {
		if got := legPath(in, "nginx"); got != want {
			t.Errorf("legPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/easgate/easgate/proxy", "github.com/easgate/easgate/policy", "github.com/easgate/easgate/certs"} {
			if p == bad || strings.HasPrefix(p, bad+"/") {
				t.Errorf("easbench imports %s: it must reach easgate over HTTP only", p)
			}
		}
	}
}
