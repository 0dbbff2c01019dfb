package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
	gwURL := gatewayStandIn(t, casAddr)

	var logb bytes.Buffer
	res, err := Compare(CompareConfig{
		Run: compareRun(), CAS: FakeCASConfig{Messages: 6, AttachmentSize: 3000, TimeScale: 300, PingChangeEvery: time.Minute},
		CASListen: casAddr, EasgateURL: gwURL, NginxBin: "-", Log: &logb,
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
	p := NewBareProxy(casAddr)
	go func() { _ = p.Serve(ln) }()
	t.Cleanup(func() { _ = p.Close() })
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
		var m map[string]any
		reportJSON(t, r, &m)
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

func TestMedianIndex(t *testing.T) {
	tests := []struct {
		name string
		vals []float64
		want int
	}{
		{"none", nil, -1},
		{"one", []float64{5}, 0},
		{"two: lower", []float64{9, 3}, 1},
		{"three", []float64{30, 10, 20}, 2},
		{"three sorted", []float64{10, 20, 30}, 1},
		{"four: lower-middle", []float64{40, 10, 30, 20}, 3},
		{"ties keep round order", []float64{7, 7, 7}, 1},
		{"tie below the middle", []float64{5, 1, 5}, 0},
		{"five", []float64{2, 9, 4, 8, 1}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := medianIndex(tc.vals); got != tc.want {
				t.Errorf("medianIndex(%v) = %d, want %d", tc.vals, got, tc.want)
			}
		})
	}
}

func TestMedianRound(t *testing.T) {
	ok := func(tput float64) RoundResult { return RoundResult{ReqPerS: tput} }
	failed := RoundResult{Failed: "gone"}
	tests := []struct {
		name   string
		rounds []RoundResult
		want   int
	}{
		{"all ran", []RoundResult{ok(3), ok(1), ok(2)}, 2},
		{"a failed round is not a candidate", []RoundResult{ok(3), failed, ok(1)}, 2},
		{"failed first", []RoundResult{failed, ok(5), ok(9), ok(7)}, 3},
		{"none ran", []RoundResult{failed, failed}, -1},
		{"a failed round's zero is not the minimum", []RoundResult{failed, ok(4), ok(6), ok(8)}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := medianRound(tc.rounds); got != tc.want {
				t.Errorf("medianRound = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRoundRatios(t *testing.T) {
	leg := func(name string, tputs ...float64) Leg {
		l := Leg{Name: name}
		for i, v := range tputs {
			rr := RoundResult{Round: i + 1, ReqPerS: v}
			if v < 0 {
				rr = RoundResult{Round: i + 1, Failed: "exited"}
			}
			l.Rounds = append(l.Rounds, rr)
		}
		return l
	}
	tests := []struct {
		name       string
		legs       []Leg
		want       []RoundRatio
		wantMedian float64
	}{
		{"three rounds", []Leg{leg("direct", 10, 10, 10), leg("easgate", 80, 90, 60), leg("nginx", 100, 100, 100)},
			[]RoundRatio{{1, 0.8}, {2, 0.9}, {3, 0.6}}, 0.8},
		// The ratio of the median rounds would be 80/100; the median of the
		// per-round ratios pairs each round with itself.
		{"pairs by round", []Leg{leg("easgate", 80, 40, 90), leg("nginx", 100, 40, 100)},
			[]RoundRatio{{1, 0.8}, {2, 1}, {3, 0.9}}, 0.9},
		{"even: lower-middle", []Leg{leg("easgate", 5, 6, 7, 8), leg("nginx", 10, 10, 10, 10)},
			[]RoundRatio{{1, 0.5}, {2, 0.6}, {3, 0.7}, {4, 0.8}}, 0.6},
		{"a failed round on either side is left out", []Leg{leg("easgate", 9, -1, 6), leg("nginx", 10, 10, -1)},
			[]RoundRatio{{1, 0.9}}, 0.9},
		{"zero denominator left out", []Leg{leg("easgate", 9, 8), leg("nginx", 0, 10)}, []RoundRatio{{2, 0.8}}, 0.8},
		{"no nginx", []Leg{leg("direct", 1), leg("easgate", 1)}, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, med := (&CompareResult{Legs: tc.legs}).RoundRatios("easgate", "nginx")
			if len(got) != len(tc.want) {
				t.Fatalf("ratios %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].Round != tc.want[i].Round || math.Abs(got[i].Ratio-tc.want[i].Ratio) > 1e-9 {
					t.Errorf("ratio %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
			if math.Abs(med-tc.wantMedian) > 1e-9 {
				t.Errorf("median %v, want %v", med, tc.wantMedian)
			}
		})
	}
}

func TestRoundOrder(t *testing.T) {
	legs := []string{"direct", "easgate", "nginx"}
	want := []string{"direct easgate nginx", "easgate nginx direct", "nginx direct easgate", "direct easgate nginx"}
	for r, w := range want {
		if got := strings.Join(roundOrder(legs, r), " "); got != w {
			t.Errorf("round %d: %s, want %s", r+1, got, w)
		}
	}
	if got := strings.Join(roundOrder([]string{"direct", "nginx"}, 1), " "); got != "nginx direct" {
		t.Errorf("two legs, round 2: %s", got)
	}
}

func TestRoundUserPrefix(t *testing.T) {
	tests := []struct {
		prefix, leg string
		round       int
		want        string
	}{
		{"u", "direct", 1, "udirect-"}, // as with one round
		{"", "direct", 1, "direct-u"},
		{"u", "easgate", 2, "ueasgate-r2-"},
		{"", "nginx", 3, "nginx-u-r3-"},
		{"load-", "nginx", 12, "load-nginx-r12-"},
	}
	for _, tc := range tests {
		if got := roundUserPrefix(tc.prefix, tc.leg, tc.round); got != tc.want {
			t.Errorf("roundUserPrefix(%q, %q, %d) = %q, want %q", tc.prefix, tc.leg, tc.round, got, tc.want)
		}
	}
	// Every leg and round has users of its own (users are prefix + %04d).
	for _, prefix := range []string{"", "u", "u-r2-"} {
		owner := map[string]string{}
		for _, leg := range []string{"direct", "easgate", "nginx"} {
			for r := 1; r <= 12; r++ {
				p := roundUserPrefix(prefix, leg, r)
				for _, dev := range []int{1, 2, 12, 123, 9999, 10000, 123456} {
					user := fmt.Sprintf("%s%04d", p, dev)
					if o, ok := owner[user]; ok {
						t.Errorf("prefix %q: user %s of %s/r%d is also %s's", prefix, user, leg, r, o)
					}
					owner[user] = fmt.Sprintf("%s/r%d", leg, r)
				}
			}
		}
	}
}

// TestCompareRounds runs three short rounds of the direct leg, a stand-in
// gateway as easgate and, when installed, nginx: every leg runs once per
// round in the rotated order, each with fresh users (the fake CAS accepts
// only the documented names), the gateways start once, and each leg's
// report is its median round with the list of rounds.
func TestCompareRounds(t *testing.T) {
	casAddr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	nginxBin := ""
	if _, err := findNginx(""); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %v", err)
		}
		t.Logf("without the nginx leg: %v", err)
		nginxBin = "-"
	}
	const devices, rounds = 2, 3
	users := map[string]string{}
	for _, leg := range []string{"direct", "easgate", "nginx", "bare"} {
		for i := 1; i <= devices; i++ {
			users[fmt.Sprintf("%s-u%04d", leg, i)] = "pw"
			for r := 2; r <= rounds; r++ {
				users[fmt.Sprintf("%s-u-r%d-%04d", leg, r, i)] = "pw"
			}
		}
	}
	var logb bytes.Buffer
	res, err := Compare(CompareConfig{
		Run: RunConfig{Devices: devices, Duration: 300 * time.Millisecond, Scenario: ScenarioSmall, TimeScale: 300,
			Heartbeat: 120 * time.Second, Password: "pw"},
		CAS:       FakeCASConfig{Messages: 4, TimeScale: 300, Users: users},
		Rounds:    rounds,
		CASListen: casAddr, EasgateURL: gatewayStandIn(t, casAddr), NginxBin: nginxBin, Log: &logb,
		// The bare proxy is this test binary (TestMain).
		BareCommand: []string{os.Args[0], "bare-proxy"},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, logb.String())
	}
	names := []string{"direct", "easgate", "nginx", "bare"}
	if nginxBin == "-" {
		names = []string{"direct", "easgate", "bare"}
	}
	if len(res.Legs) != len(names) || res.Rounds != rounds {
		t.Fatalf("legs %+v, rounds %d, skipped %v\n%s", res.Legs, res.Rounds, res.Skipped, logb.String())
	}

	// The log shows the rotation: round r starts r-1 legs further.
	var order []string
	for _, line := range strings.Split(logb.String(), "\n") {
		if strings.Contains(line, " → ") {
			order = append(order, strings.Join(strings.Fields(line)[1:5], " "))
		}
	}
	var want []string
	for r := range rounds {
		for _, n := range roundOrder(names, r) {
			want = append(want, fmt.Sprintf("round %d/%d: leg %s", r+1, rounds, n))
		}
	}
	if strings.Join(order, "\n") != strings.Join(want, "\n") {
		t.Errorf("leg order\n%s\nwant\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}
	if nginxBin != "-" && strings.Count(logb.String(), "starting /") != 1 {
		t.Errorf("nginx started more than once:\n%s", logb.String())
	}

	for i, l := range res.Legs {
		if l.Name != names[i] || len(l.Rounds) != rounds {
			t.Fatalf("leg %d: %s with %d rounds", i, l.Name, len(l.Rounds))
		}
		tputs := make([]float64, rounds)
		for r, rr := range l.Rounds {
			pos := slicesIndex(roundOrder(names, r), l.Name) + 1
			if rr.Round != r+1 || rr.Position != pos || rr.Failed != "" {
				t.Errorf("leg %s round %d: %+v, want position %d", l.Name, r+1, rr, pos)
			}
			if rr.Errors != 0 || rr.ReqPerS <= 0 || rr.P99MS <= 0 {
				t.Errorf("leg %s round %d: %+v (errors: wrong users?)", l.Name, r+1, rr)
			}
			tputs[r] = rr.ReqPerS
		}
		if m := medianIndex(tputs); l.Median != m+1 || l.Report.Throughput != tputs[m] {
			t.Errorf("leg %s: median round %d (%.1f req/s) of %v", l.Name, l.Median, l.Report.Throughput, tputs)
		}
		if l.Report.MedianRound != l.Median || len(l.Report.Rounds) != rounds || l.Report.Errors != 0 {
			t.Errorf("leg %s: report median_round %d, %d rounds, %d errors", l.Name, l.Report.MedianRound, len(l.Report.Rounds), l.Report.Errors)
		}
		var m struct {
			Rounds []struct {
				ReqPerS float64 `json:"req_per_s"`
				P99MS   float64 `json:"p99_ms"`
			} `json:"rounds"`
			MedianRound int `json:"median_round"`
		}
		if err := json.Unmarshal(mustJSON(t, l.Report), &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Rounds) != rounds || m.MedianRound != l.Median || m.Rounds[1].ReqPerS != tputs[1] || m.Rounds[2].P99MS != l.Rounds[2].P99MS {
			t.Errorf("leg %s: JSON rounds %+v median_round %d", l.Name, m.Rounds, m.MedianRound)
		}
	}

	var out bytes.Buffer
	if err := res.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !strings.Contains(out.String(), "  "+n+" req/s  ") {
			t.Errorf("no rounds line for %s:\n%s", n, out.String())
		}
	}
	for _, pair := range []struct {
		line string
		want bool
	}{
		{"easgate ÷ nginx req/s by round: r1 ", nginxBin == ""},
		{"easgate ÷ bare req/s by round: r1 ", true},
		{"bare ÷ nginx req/s by round: r1 ", nginxBin == ""},
	} {
		if has := strings.Contains(out.String(), pair.line); has != pair.want {
			t.Errorf("%q: %v with nginx %q:\n%s", pair.line, has, nginxBin, out.String())
		}
	}
	var barePID int
	for _, l := range res.Legs {
		if l.Name == "bare" {
			if g := l.Report.Gateway; g == nil || g.PID == os.Getpid() || g.CPUSeconds <= 0 || g.RSSMaxKiB <= 0 {
				t.Errorf("bare leg: gateway figures %+v: want the bare proxy's own process", g)
			} else {
				barePID = g.PID
			}
		}
	}
	if barePID != 0 && !processGone(barePID) {
		t.Errorf("bare proxy pid %d still runs after Compare returned", barePID)
	}
	t.Logf("\n%s", out.String())
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// lineHook is a Log writer that calls onLine for every complete line.
type lineHook struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	part   []byte
	onLine func(string)
}

func (h *lineHook) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Write(p)
	h.part = append(h.part, p...)
	for {
		i := bytes.IndexByte(h.part, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(h.part[:i])
		h.part = h.part[i+1:]
		h.onLine(line)
	}
}

// TestCompareRoundsGatewayDies kills nginx after its leg of round 1: its
// round 2 is reported as failed, its result is round 1, and the direct
// leg still runs both rounds.
func TestCompareRoundsGatewayDies(t *testing.T) {
	if _, err := findNginx(""); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %v", err)
		}
		t.Skip(err)
	}
	var nginxDir string
	killed := 0
	hook := &lineHook{}
	hook.onLine = func(line string) {
		if i := strings.Index(line, " -p "); i >= 0 && strings.Contains(line, "starting ") {
			nginxDir = strings.Fields(line[i+4:])[0]
		}
		if strings.Contains(line, "round 1/2: leg nginx:") {
			b, err := os.ReadFile(filepath.Join(nginxDir, "nginx.pid"))
			if err != nil {
				t.Errorf("nginx pid file: %v", err)
				return
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Errorf("nginx pid file: %q", b)
				return
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Errorf("kill nginx: %v", err)
			}
			killed = pid
		}
	}
	res, err := Compare(CompareConfig{
		Run:    RunConfig{Devices: 2, Duration: 300 * time.Millisecond, Scenario: ScenarioSmall, TimeScale: 300, Heartbeat: 120 * time.Second},
		CAS:    FakeCASConfig{Messages: 4, TimeScale: 300},
		Rounds: 2, Log: hook,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, hook.buf.String())
	}
	if killed == 0 || len(res.Legs) != 2 {
		t.Fatalf("killed nginx pid %d; legs %+v skipped %v\n%s", killed, res.Legs, res.Skipped, hook.buf.String())
	}
	direct, nginx := res.Legs[0], res.Legs[1]
	if direct.Rounds[0].Failed != "" || direct.Rounds[1].Failed != "" {
		t.Errorf("direct rounds %+v", direct.Rounds)
	}
	if nginx.Rounds[0].Failed != "" || !strings.Contains(nginx.Rounds[1].Failed, "nginx exited") || nginx.Median != 1 ||
		nginx.Report.Throughput != nginx.Rounds[0].ReqPerS || nginx.Rounds[1].Position != 1 {
		t.Errorf("nginx rounds %+v median %d", nginx.Rounds, nginx.Median)
	}
	var out bytes.Buffer
	if err := res.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), " r2 failed") {
		t.Errorf("the failed round is not shown:\n%s", out.String())
	}
}
