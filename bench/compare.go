package bench

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

// CompareConfig describes `easbench compare`: one fleet scenario run
// straight against a fake CAS, through easgate and through nginx, one
// after the other, with fresh users each time; with Rounds > 1 the legs
// run that many times, interleaved.
type CompareConfig struct {
	Run RunConfig     // the scenario (Target, PID and UserPrefix are set per leg)
	CAS FakeCASConfig // the upstream
	// Rounds is how many times every leg runs (≤ 1: once). Each round runs
	// every leg once for the full Run.Duration; the order of the legs
	// rotates by one each round (round 1: direct, easgate, nginx; round 2:
	// easgate, nginx, direct; ...) so that no leg always runs first or last.
	// The fake CAS and the gateways are started once and serve every round.
	// Each leg's result is its round with the median throughput (the
	// lower-middle one for an even number of rounds); see Leg.
	//
	// Users are fresh in every leg and round, so no device state carries
	// over: leg L of round 1 uses Run.UserPrefix+L+"-" (e.g. udirect-0001),
	// or L+"-u" when Run.UserPrefix is empty (direct-u0001), as with one
	// round; round R > 1 inserts "rR-" (udirect-r2-0001, direct-u-r2-0001).
	// A fake CAS with CAS.Users must list those users too.
	Rounds int
	// CASListen is the fake CAS's address (default 127.0.0.1:0: a free
	// loopback port). It must be fixed when EasgateURL points at an easgate
	// already configured with it.
	CASListen string
	// CASCommand, when set, runs the fake CAS as its own process, so that
	// its CPU and memory are told apart from the load generator's: the argv
	// of an `easbench upstream`, e.g. {"/usr/local/bin/easbench",
	// "upstream"}. Compare chooses the address (CASListen, its port resolved
	// when 0) and passes it with CAS, every option of it, in $EASBENCH_CAS_SPEC
	// (see CASSpec); the command must serve exactly that in the process it
	// starts (a wrapper such as taskset must exec it: that PID is sampled).
	// Compare waits until the address accepts connections, samples the
	// process's CPU and RSS during each leg (Report.CAS) and stops it at the
	// end: SIGTERM, then SIGKILL after 5 s; on Linux it is also sent SIGTERM
	// if Compare's process dies first.
	//
	// Empty: the fake CAS runs inside this process, as a goroutine; each
	// Report's Client figures then include it (Report.CASInProcess).
	CASCommand []string
	// EasgateURL is a running easgate in front of CASListen; EasgatePID its
	// process for RSS/CPU (optional).
	EasgateURL string
	EasgatePID int
	// EasgateBin starts easgate as a subprocess instead: EasgateArgs
	// (default "serve --config {config}") with {config} replaced by a
	// config file: EasgateConfig with {listen} and {upstream} replaced, or,
	// when EasgateConfig is empty, a generated plain-HTTP, allow-all,
	// report-only config.
	EasgateBin    string
	EasgateArgs   []string
	EasgateConfig string
	// NginxBin is the nginx binary ("" looks up "nginx" in PATH and
	// /usr/sbin; "-" skips nginx).
	NginxBin string
	// BareCommand, when set, adds a fourth leg, "bare": a BareProxy in
	// front of the fake CAS, run as its own process so that its CPU is
	// sampled like the other gateways'. It is the argv of an `easbench
	// bare-proxy`, e.g. {"/usr/local/bin/easbench", "bare-proxy"}, to which
	// Compare appends --listen ADDR --upstream HOST:PORT. Empty: no bare leg.
	BareCommand []string
	// Log receives progress messages (nil: discarded).
	Log io.Writer
}

// CompareResult holds one Leg per leg that ran, in the order direct,
// easgate, nginx, bare, and the reason for every leg that was skipped.
type CompareResult struct {
	Legs    []Leg
	Skipped map[string]string
	// CPUs is the number of CPUs of the machine that ran the legs: the
	// CPU% figures are of one core, so their sum is at most 100 × CPUs.
	CPUs int
	// Rounds is the number of rounds run (CompareConfig.Rounds, at least 1).
	Rounds int
}

// Leg is one leg's result: the report of its median round and the
// headline figures of every round.
type Leg struct {
	Name string // "direct", "easgate", "nginx", "bare"
	// Report is the run of the round with the median throughput (for an
	// even number of rounds the lower-middle one) among the rounds that
	// ran. With more than one round its Rounds and MedianRound are set.
	Report *Report
	// Rounds lists every round of this leg in round order, one entry when
	// a single round ran; a round that could not run has Failed set.
	Rounds []RoundResult
	// Median is the 1-based number of the round Report comes from.
	Median int
}

// RoundRatio is one round's ratio of two legs' throughputs.
type RoundRatio struct {
	Round int     // 1-based
	Ratio float64 // req/s of the numerator leg ÷ req/s of the denominator leg
}

// legTarget is where a leg sends its load.
type legTarget struct {
	name string
	url  string
	pid  int    // the gateway's process, sampled (0: none)
	proc *child // the gateway we started (nil: direct or --easgate-url)
}

// roundOrder returns the legs of round (0-based): legs rotated left by
// round places.
func roundOrder[T any](legs []T, round int) []T {
	n := len(legs)
	out := make([]T, 0, n)
	for i := range legs {
		out = append(out, legs[(i+round)%n])
	}
	return out
}

// roundUserPrefix is the user prefix of a leg in a round (1-based): see
// CompareConfig.Rounds.
func roundUserPrefix(prefix, leg string, round int) string {
	p := prefix + leg + "-"
	if prefix == "" {
		p = leg + "-u"
	}
	if round > 1 {
		if prefix == "" {
			p += "-"
		}
		p += fmt.Sprintf("r%d-", round)
	}
	return p
}

// medianIndex returns the index in vals of the median value: the middle of
// the sorted values, the lower-middle one when there is an even number of
// them; equal values keep their order. It returns -1 for no values.
func medianIndex(vals []float64) int {
	if len(vals) == 0 {
		return -1
	}
	idx := make([]int, len(vals))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return vals[idx[a]] < vals[idx[b]] })
	return idx[(len(idx)-1)/2]
}

// medianRound returns the index in rounds of the round with the median
// throughput among those that ran, or -1 when none ran.
func medianRound(rounds []RoundResult) int {
	var ran []int
	var tput []float64
	for i, r := range rounds {
		if r.Failed == "" {
			ran = append(ran, i)
			tput = append(tput, r.ReqPerS)
		}
	}
	if m := medianIndex(tput); m >= 0 {
		return ran[m]
	}
	return -1
}

// RoundRatios returns, for every round in which both legs ran, the
// throughput of leg num divided by that of leg den, in round order, and the
// median of these ratios (the lower-middle one for an even count). The
// ratio within a round is less noisy than one across rounds: both legs saw
// about the same machine. It returns nil and 0 when either leg is absent
// or no round has both.
func (c *CompareResult) RoundRatios(num, den string) ([]RoundRatio, float64) {
	var a, b *Leg
	for i := range c.Legs {
		switch c.Legs[i].Name {
		case num:
			a = &c.Legs[i]
		case den:
			b = &c.Legs[i]
		}
	}
	if a == nil || b == nil {
		return nil, 0
	}
	byRound := map[int]RoundResult{}
	for _, r := range b.Rounds {
		if r.Failed == "" && r.ReqPerS > 0 {
			byRound[r.Round] = r
		}
	}
	var out []RoundRatio
	var vals []float64
	for _, r := range a.Rounds {
		d, ok := byRound[r.Round]
		if !ok || r.Failed != "" {
			continue
		}
		out = append(out, RoundRatio{Round: r.Round, Ratio: r.ReqPerS / d.ReqPerS})
		vals = append(vals, r.ReqPerS/d.ReqPerS)
	}
	if len(out) == 0 {
		return nil, 0
	}
	return out, vals[medianIndex(vals)]
}

// Compare runs the legs, Rounds times. A leg that cannot start, or none of
// whose rounds ran, is skipped with a reason; an error is returned only
// when the fake CAS cannot start or no leg ran. Every process Compare
// starts is stopped before it returns.
func Compare(cfg CompareConfig) (*CompareResult, error) {
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	rounds := max(cfg.Rounds, 1)
	addr := cfg.CASListen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("compare: fake CAS: %w", err)
	}
	addr = ln.Addr().String()
	var casChild *child
	if len(cfg.CASCommand) > 0 {
		// The child binds the address itself: free it first.
		if err := ln.Close(); err != nil {
			return nil, fmt.Errorf("compare: fake CAS: %w", err)
		}
		if casChild, err = startCASChild(cfg, addr, logw); err != nil {
			return nil, fmt.Errorf("compare: fake CAS: %w", err)
		}
		defer func() {
			if out := casChild.stop(); len(out) > 0 {
				for _, line := range strings.Split(tail(string(out), 2000), "\n") {
					fmt.Fprintf(logw, "easbench: fake CAS pid %d: %s\n", casChild.cmd.Process.Pid, strings.TrimPrefix(line, "easbench: "))
				}
			}
		}()
	} else {
		cas := NewFakeCAS(cfg.CAS)
		go func() { _ = cas.Serve(ln) }()
		defer cas.Close()
	}
	casURL := "http://" + addr
	if casChild != nil {
		fmt.Fprintf(logw, "easbench: fake CAS on %s (pid %d)\n", casURL, casChild.cmd.Process.Pid)
	} else {
		fmt.Fprintf(logw, "easbench: fake CAS on %s (in process)\n", casURL)
	}

	res := &CompareResult{Skipped: map[string]string{}, CPUs: runtime.NumCPU(), Rounds: rounds}
	// The gateways start once, before the first round, and serve them all.
	targets := []legTarget{{name: "direct", url: casURL}}
	switch {
	case cfg.EasgateURL != "":
		targets = append(targets, legTarget{name: "easgate", url: cfg.EasgateURL, pid: cfg.EasgatePID})
	case cfg.EasgateBin != "":
		if p, err := startEasgate(cfg, casURL, logw); err != nil {
			res.Skipped["easgate"] = err.Error()
		} else {
			defer p.stop()
			targets = append(targets, legTarget{name: "easgate", url: p.url, pid: p.cmd.Process.Pid, proc: p})
		}
	default:
		res.Skipped["easgate"] = "no --easgate-url or --easgate-bin given"
	}
	if cfg.NginxBin == "-" {
		res.Skipped["nginx"] = "disabled"
	} else if p, err := startNginx(cfg.NginxBin, addr, logw); err != nil {
		res.Skipped["nginx"] = err.Error()
	} else {
		defer p.stop()
		targets = append(targets, legTarget{name: "nginx", url: p.url, pid: p.cmd.Process.Pid, proc: p})
	}
	if len(cfg.BareCommand) > 0 {
		if p, err := startBare(cfg.BareCommand, addr, logw); err != nil {
			res.Skipped["bare"] = err.Error()
		} else {
			defer p.stop()
			targets = append(targets, legTarget{name: "bare", url: p.url, pid: p.cmd.Process.Pid, proc: p})
		}
	}

	casPID := 0
	if casChild != nil {
		casPID = casChild.cmd.Process.Pid
	}
	// leg runs one leg of a round (1-based) at position pos (1-based).
	leg := func(t legTarget, round, pos int) (RoundResult, *Report) {
		rr := RoundResult{Round: round, Position: pos}
		label := ""
		if rounds > 1 {
			label = fmt.Sprintf("round %d/%d: ", round, rounds)
		}
		switch {
		case casChild != nil && casChild.exited():
			rr.Failed = "the fake CAS exited: " + casChild.exitReason()
			return rr, nil
		case t.proc != nil && t.proc.exited():
			rr.Failed = t.name + " exited: " + t.proc.exitReason()
			return rr, nil
		}
		rc := cfg.Run
		rc.Target, rc.PID, rc.CASPID, rc.SampleSelf = t.url, t.pid, casPID, true
		rc.UserPrefix = roundUserPrefix(cfg.Run.UserPrefix, t.name, round)
		fmt.Fprintf(logw, "easbench: %sleg %s → %s\n", label, t.name, t.url)
		rep, err := Run(rc)
		// A process that died during the leg leaves figures of a broken
		// run, or makes Run fail (its /proc entry is gone): its death is
		// the reason either way. A gateway reaped just before the leg
		// is seen as exited a moment after Run failed on it.
		switch {
		case casChild != nil && casChild.exited():
			rr.Failed = "the fake CAS exited during the leg: " + casChild.exitReason()
			return rr, nil
		case t.proc != nil && (t.proc.exited() || err != nil && t.proc.exitedWithin(time.Second)):
			rr.Failed = t.name + " exited during the leg: " + t.proc.exitReason()
			return rr, nil
		case err != nil:
			rr.Failed = err.Error()
			return rr, nil
		}
		rep.CASInProcess = casChild == nil
		rr.ReqPerS, rr.P50MS, rr.P99MS, rr.Errors = rep.Throughput, rep.Overall.P50, rep.Overall.P99, rep.Errors
		if rounds > 1 {
			fmt.Fprintf(logw, "easbench: %sleg %s: %.1f req/s, p99 %.2f ms, %d errors\n", label, t.name, rr.ReqPerS, rr.P99MS, rr.Errors)
		}
		return rr, rep
	}

	results := make([][]RoundResult, len(targets))
	reports := make([][]*Report, len(targets))
	index := make([]int, len(targets))
	for i := range index {
		index[i] = i
	}
	for r := range rounds {
		for pos, i := range roundOrder(index, r) {
			rr, rep := leg(targets[i], r+1, pos+1)
			if rr.Failed != "" && rounds > 1 {
				fmt.Fprintf(logw, "easbench: round %d/%d: leg %s did not run: %s\n", r+1, rounds, targets[i].name, rr.Failed)
			}
			results[i] = append(results[i], rr)
			reports[i] = append(reports[i], rep)
		}
	}
	for i, t := range targets {
		m := medianRound(results[i])
		if m < 0 {
			why := results[i][0].Failed
			if rounds > 1 {
				why = fmt.Sprintf("none of the %d rounds ran; round 1: %s", rounds, why)
			}
			res.Skipped[t.name] = why
			continue
		}
		rep := reports[i][m]
		if rounds > 1 {
			rep.Rounds, rep.MedianRound = results[i], m+1
		}
		res.Legs = append(res.Legs, Leg{Name: t.name, Report: rep, Rounds: results[i], Median: m + 1})
	}
	if len(res.Legs) == 0 {
		return res, errors.New("compare: no leg ran")
	}
	return res, nil
}

// startCASChild runs cfg.CASCommand with the spec of a fake CAS on addr.
func startCASChild(cfg CompareConfig, addr string, logw io.Writer) (*child, error) {
	spec, err := CASSpec{Listen: addr, CAS: cfg.CAS}.Encode()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "easbench-cas-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(cfg.CASCommand[0], cfg.CASCommand[1:]...)
	cmd.Env = append(os.Environ(), CASSpecEnv+"="+spec)
	fmt.Fprintf(logw, "easbench: starting the fake CAS: %s (on %s)\n", strings.Join(cfg.CASCommand, " "), addr)
	return startChild(cmd, addr, dir, "fake CAS")
}

// child is a started process: the fake CAS or a reverse proxy.
type child struct {
	cmd     *exec.Cmd
	url     string
	dir     string
	logPath string
	done    chan struct{} // closed once the process has been reaped
	waitErr error         // set before done is closed
	once    sync.Once
	out     []byte
}

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// exitedWithin reports whether the process ends within d.
func (c *child) exitedWithin(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C:
		return false
	}
}

// exitReason is the exit status and the end of the output of an exited
// child.
func (c *child) exitReason() string {
	<-c.done
	out, _ := os.ReadFile(c.logPath)
	return fmt.Sprintf("%v: %s", c.waitErr, tail(string(out), 600))
}

// childStopGrace is how long stop waits after SIGTERM before SIGKILL.
const childStopGrace = 5 * time.Second

// stop sends SIGTERM and, after 5 s, SIGKILL to the child we started,
// waits for it, removes its directory and returns what it printed. It may
// be called more than once.
func (c *child) stop() []byte {
	c.once.Do(func() {
		if !c.exited() {
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			t := time.NewTimer(childStopGrace)
			select {
			case <-c.done:
			case <-t.C:
				_ = c.cmd.Process.Kill()
				<-c.done
			}
			t.Stop()
		}
		c.out, _ = os.ReadFile(c.logPath)
		_ = os.RemoveAll(c.dir)
	})
	return c.out
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// childStartTimeout bounds the wait for a child to accept connections.
var childStartTimeout = 15 * time.Second

// startChild runs cmd, which owns dir, and waits until addr accepts
// connections. On any error the process is gone and dir removed.
func startChild(cmd *exec.Cmd, addr, dir, name string) (*child, error) {
	logPath := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := &child{cmd: cmd, url: "http://" + addr, dir: dir, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	deadline := time.Now().Add(childStartTimeout)
	for time.Now().Before(deadline) {
		if c.exited() {
			why := c.exitReason()
			c.stop()
			return nil, fmt.Errorf("%s exited (%s)", name, why)
		}
		if conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			conn.Close()
			return c, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.stop()
	return nil, fmt.Errorf("%s did not listen on %s within %v", name, addr, childStartTimeout)
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

const easgateConfigTemplate = `# generated by easbench compare
listen:
  address: "{listen}"
  plain_http: true
upstreams:
  servers:
    - url: "{upstream}"
admin:
  address: ""
policy:
  # Report mode: every request is parsed, authenticated, identified and
  # decided (rules plus a cached compliance verdict), and then forwarded
  # whatever the decision, so every leg carries the same traffic.
  mode: report
  default_access: quarantine
  discovery_period: 0s
  rules:
    - name: block-old-ios
      match: {os_family: iOS, os_version_below: "16.0"}
      access: block
    - name: outlook-mobile
      match: {client: outlook-mobile}
      access: allow
  compliance:
    require_for: [all]
    source: {type: file, path: "{dir}/compliance.csv"}
log:
  access_log: "{dir}/access.log"
`

func startEasgate(cfg CompareConfig, casURL string, logw io.Writer) (c *child, err error) {
	dir, err := os.MkdirTemp("", "easbench-easgate-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	tmpl := easgateConfigTemplate
	if cfg.EasgateConfig != "" {
		b, err := os.ReadFile(cfg.EasgateConfig)
		if err != nil {
			return nil, err
		}
		tmpl = string(b)
	}
	// An empty compliance table, confirmed as such (the guard refuses an
	// unconfirmed empty file at start: README "Compliance table safety").
	// Every phone is then not enrolled, which report mode forwards anyway.
	if err := os.WriteFile(filepath.Join(dir, "compliance.csv"), []byte("# easgate: accept-drop entries=0\nuser,device_id,state\n"), 0o600); err != nil {
		return nil, err
	}
	conf := strings.NewReplacer("{listen}", addr, "{upstream}", casURL, "{dir}", dir).Replace(tmpl)
	path := filepath.Join(dir, "easgate.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	args := cfg.EasgateArgs
	if len(args) == 0 {
		args = []string{"serve", "--config", "{config}"}
	}
	argv := make([]string, len(args))
	for i, a := range args {
		argv[i] = strings.ReplaceAll(a, "{config}", path)
	}
	fmt.Fprintf(logw, "easbench: starting %s %s\n", cfg.EasgateBin, strings.Join(argv, " "))
	return startChild(exec.Command(cfg.EasgateBin, argv...), addr, dir, "easgate")
}

// NginxConfig returns an nginx configuration that reverse-proxies listen
// to upstream with keep-alive on both sides, no buffering, and timeouts
// sized for hour-long Pings — the fair competitor for easgate.
func NginxConfig(dir, listen, upstream string) string {
	return fmt.Sprintf(`# generated by easbench compare
worker_processes 1;
daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 65536; multi_accept on; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  keepalive_timeout 3700s;
  keepalive_requests 1000000;
  client_max_body_size 64m;
  upstream cas { server %[3]s; keepalive 1024; keepalive_timeout 3700s; keepalive_requests 1000000; }
  server {
    listen %[2]s;
    location / {
      proxy_pass http://cas;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_connect_timeout 5s;
      proxy_read_timeout 3660s;
      proxy_send_timeout 3660s;
    }
  }
}
`, dir, listen, upstream)
}

func findNginx(bin string) (string, error) {
	if bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("nginx binary %s: %w", bin, err)
		}
		return bin, nil
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("nginx is not installed (Debian: apt-get install nginx); skipping the nginx leg")
}

func startNginx(bin, upstream string, logw io.Writer) (c *child, err error) {
	path, err := findNginx(bin)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "easbench-nginx-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(NginxConfig(dir, addr, upstream)), 0o600); err != nil {
		return nil, err
	}
	fmt.Fprintf(logw, "easbench: starting %s -c %s -p %s\n", path, conf, dir)
	return startChild(exec.Command(path, "-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log")), addr, dir, "nginx")
}

// startBare runs argv (an `easbench bare-proxy`) in front of the fake CAS
// at upstream.
func startBare(argv []string, upstream string, logw io.Writer) (*child, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "easbench-bare-")
	if err != nil {
		return nil, err
	}
	args := append(append([]string{}, argv[1:]...), "--listen", addr, "--upstream", upstream)
	fmt.Fprintf(logw, "easbench: starting the bare fasthttp proxy: %s %s\n", argv[0], strings.Join(args, " "))
	return startChild(exec.Command(argv[0], args...), addr, dir, "bare proxy")
}

// WriteText prints one line per leg and the ratios to the direct leg.
// Next to latency and throughput each line shows, for the leg's run, the
// CPU (% of one core) and maximum RSS of the gateway ("gw": easgate,
// nginx or the bare proxy, none on the direct leg), of the fake CAS's own process ("CAS",
// when it ran as a subprocess) and the CPU of the load generator, easbench
// itself ("bench"). A table is followed by a note saying how many cores the
// machine has and one per skipped leg. With more than one round the rows
// are each leg's median round, and the ratios are of these; under the table
// one line per leg gives every round's req/s and their spread, (max − min)
// as a percentage of the median, and one line per pair easgate ÷ nginx,
// easgate ÷ bare and bare ÷ nginx (req/s) with the ratio of every round in
// which both legs ran and its median.
func (c *CompareResult) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "leg\treq/s\tp50 ms\tp99 ms\tp99.9 ms\terrors\tgw CPU%\tgw RSS\tCAS CPU%\tCAS RSS\tbench CPU%\tp50 ×\tp99 ×\treq/s ×\t")
	var base *Report
	for _, l := range c.Legs {
		if l.Name == "direct" {
			base = l.Report
		}
	}
	inProcess := false
	for _, l := range c.Legs {
		r := l.Report
		ratio := func(a, b float64) string {
			if base == nil || b == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", a/b)
		}
		var b CommandReport
		baseTput := 0.0
		if base != nil {
			b, baseTput = base.Overall, base.Throughput
		}
		gwCPU, gwRSS := procCells(r.Gateway)
		casCPU, casRSS := procCells(r.CAS)
		benchCPU, _ := procCells(r.Client)
		if r.CASInProcess && r.Client != nil {
			benchCPU += "*"
			inProcess = true
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.2f\t%.2f\t%.2f\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", l.Name, r.Throughput,
			r.Overall.P50, r.Overall.P99, r.Overall.P999, r.Errors, gwCPU, gwRSS, casCPU, casRSS, benchCPU,
			ratio(r.Overall.P50, b.P50), ratio(r.Overall.P99, b.P99), ratio(r.Throughput, baseTput))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(c.Legs) > 0 {
		cores := ""
		if c.CPUs > 0 {
			cores = fmt.Sprintf("; %d cores here", c.CPUs)
		}
		fmt.Fprintf(w, "CPU%% = CPU time / leg wall time (100%% = one core%s); gw = easgate, nginx or the bare proxy, CAS = the fake CAS process, bench = the load generator\n", cores)
	}
	if inProcess {
		fmt.Fprintln(w, "* the fake CAS ran inside easbench: bench CPU% includes it (no separate CAS figure)")
	}
	if c.Rounds > 1 && len(c.Legs) > 0 {
		if err := c.writeRounds(w); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(c.Skipped) {
		fmt.Fprintf(w, "skipped %s: %s\n", name, c.Skipped[name])
	}
	return nil
}

// writeRounds prints, for more than one round, every leg's req/s per
// round with the spread, and the per-round ratios easgate ÷ nginx,
// easgate ÷ bare and bare ÷ nginx (those whose legs ran) with their
// medians.
func (c *CompareResult) writeRounds(w io.Writer) error {
	fmt.Fprintf(w, "%d rounds, leg order rotated each round; the rows above are each leg's median round (*); spread = (max − min) / median\n", c.Rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, l := range c.Legs {
		fmt.Fprintf(tw, "  %s req/s\t", l.Name)
		lo, hi, errs := math.Inf(1), math.Inf(-1), false
		for _, rr := range l.Rounds {
			switch {
			case rr.Failed != "":
				fmt.Fprintf(tw, "r%d failed\t", rr.Round)
				continue
			case rr.Round == l.Median:
				fmt.Fprintf(tw, "r%d %.1f*\t", rr.Round, rr.ReqPerS)
			default:
				fmt.Fprintf(tw, "r%d %.1f\t", rr.Round, rr.ReqPerS)
			}
			lo, hi = math.Min(lo, rr.ReqPerS), math.Max(hi, rr.ReqPerS)
			errs = errs || rr.Errors > 0
		}
		if med := l.Report.Throughput; med > 0 {
			fmt.Fprintf(tw, "spread %.1f–%.1f = %.1f%%", lo, hi, (hi-lo)/med*100)
		} else {
			fmt.Fprintf(tw, "spread %.1f–%.1f", lo, hi)
		}
		if errs {
			counts := make([]string, len(l.Rounds))
			for i, rr := range l.Rounds {
				counts[i] = "-"
				if rr.Failed == "" {
					counts[i] = fmt.Sprint(rr.Errors)
				}
			}
			fmt.Fprintf(tw, "; errors by round %s", strings.Join(counts, "/"))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, pair := range [][2]string{{"easgate", "nginx"}, {"easgate", "bare"}, {"bare", "nginx"}} {
		if ratios, med := c.RoundRatios(pair[0], pair[1]); len(ratios) > 0 {
			cells := make([]string, len(ratios))
			for i, r := range ratios {
				cells[i] = fmt.Sprintf("r%d %.2f", r.Round, r.Ratio)
			}
			fmt.Fprintf(w, "%s ÷ %s req/s by round: %s; median %.2f\n", pair[0], pair[1], strings.Join(cells, "  "), med)
		}
	}
	return nil
}

// procCells formats a process's CPU% and maximum RSS for the table.
func procCells(p *ProcReport) (cpu, rss string) {
	if p == nil {
		return "-", "-"
	}
	return fmt.Sprintf("%.0f%%", p.CPUPercent), byteSize(p.RSSMaxKiB << 10)
}
