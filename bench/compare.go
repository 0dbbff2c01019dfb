package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// CompareConfig describes `easbench compare`: one fleet scenario run
// straight against an in-process fake CAS, through easgate and through
// nginx, one after the other, with fresh users each time.
type CompareConfig struct {
	Run RunConfig     // the scenario (Target, PID and UserPrefix are set per leg)
	CAS FakeCASConfig // the upstream
	// CASListen is the fake CAS's address (default 127.0.0.1:0). It must be
	// fixed when EasgateURL points at an easgate already configured with it.
	CASListen string
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
	// Log receives progress messages (nil: discarded).
	Log io.Writer
}

// CompareResult holds one Report per leg that ran and the reason for every
// leg that was skipped.
type CompareResult struct {
	Legs    []Leg
	Skipped map[string]string
}

// Leg is one scenario run.
type Leg struct {
	Name   string // "direct", "easgate", "nginx"
	Report *Report
}

// Compare runs the legs. A leg that cannot start is skipped with a reason;
// an error is returned only when the fake CAS cannot start or no leg ran.
func Compare(cfg CompareConfig) (*CompareResult, error) {
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	addr := cfg.CASListen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("compare: fake CAS: %w", err)
	}
	cas := NewFakeCAS(cfg.CAS)
	go func() { _ = cas.Serve(ln) }()
	defer cas.Close()
	casURL := "http://" + ln.Addr().String()
	fmt.Fprintf(logw, "easbench: fake CAS on %s\n", casURL)

	res := &CompareResult{Skipped: map[string]string{}}
	leg := func(name, target string, pid int) {
		rc := cfg.Run
		rc.Target, rc.PID = target, pid
		rc.UserPrefix = cfg.Run.UserPrefix + name + "-"
		if rc.UserPrefix == name+"-" {
			rc.UserPrefix = name + "-u"
		}
		fmt.Fprintf(logw, "easbench: leg %s → %s\n", name, target)
		rep, err := Run(rc)
		if err != nil {
			res.Skipped[name] = err.Error()
			return
		}
		res.Legs = append(res.Legs, Leg{Name: name, Report: rep})
	}

	leg("direct", casURL, 0)

	switch {
	case cfg.EasgateURL != "":
		leg("easgate", cfg.EasgateURL, cfg.EasgatePID)
	case cfg.EasgateBin != "":
		p, err := startEasgate(cfg, casURL, logw)
		if err != nil {
			res.Skipped["easgate"] = err.Error()
			break
		}
		leg("easgate", p.url, p.cmd.Process.Pid)
		p.stop()
	default:
		res.Skipped["easgate"] = "no --easgate-url or --easgate-bin given"
	}

	if cfg.NginxBin == "-" {
		res.Skipped["nginx"] = "disabled"
	} else if p, err := startNginx(cfg.NginxBin, ln.Addr().String(), logw); err != nil {
		res.Skipped["nginx"] = err.Error()
	} else {
		leg("nginx", p.url, p.cmd.Process.Pid)
		p.stop()
	}
	if len(res.Legs) == 0 {
		return res, errors.New("compare: no leg ran")
	}
	return res, nil
}

// child is a started reverse proxy.
type child struct {
	cmd  *exec.Cmd
	url  string
	dir  string
	done chan error
}

// stop sends SIGTERM and, after 5 s, SIGKILL to the child we started.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	_ = os.RemoveAll(c.dir)
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// startChild runs cmd and waits until addr accepts connections.
func startChild(cmd *exec.Cmd, addr, dir, name string) (*child, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := &child{cmd: cmd, url: "http://" + addr, dir: dir, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-c.done:
			c.done <- err
			out, _ := os.ReadFile(filepath.Join(dir, name+".log"))
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("%s exited (%v): %s", name, err, tail(string(out), 600))
		default:
		}
		if conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			conn.Close()
			return c, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.stop()
	return nil, fmt.Errorf("%s did not listen on %s within 15 s", name, addr)
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
  # whatever the decision, so all three legs carry the same traffic.
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
	if err := os.WriteFile(filepath.Join(dir, "compliance.csv"), []byte("user,device_id,state\n"), 0o600); err != nil {
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

// WriteText prints one line per leg and the ratios to the direct leg.
func (c *CompareResult) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "leg\treq/s\tp50 ms\tp99 ms\tp99.9 ms\terrors\tRSS max\tCPU s\tp50 ×\tp99 ×\treq/s ×\t")
	var base *Report
	for _, l := range c.Legs {
		if l.Name == "direct" {
			base = l.Report
		}
	}
	for _, l := range c.Legs {
		r := l.Report
		rss, cpu := "-", "-"
		if r.Gateway != nil {
			rss = byteSize(r.Gateway.RSSMaxKiB << 10)
			cpu = fmt.Sprintf("%.2f", r.Gateway.CPUSeconds)
		}
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
		fmt.Fprintf(tw, "%s\t%.1f\t%.2f\t%.2f\t%.2f\t%d\t%s\t%s\t%s\t%s\t%s\t\n", l.Name, r.Throughput,
			r.Overall.P50, r.Overall.P99, r.Overall.P999, r.Errors, rss, cpu,
			ratio(r.Overall.P50, b.P50), ratio(r.Overall.P99, b.P99), ratio(r.Throughput, baseTput))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, name := range sortedKeys(c.Skipped) {
		fmt.Fprintf(w, "skipped %s: %s\n", name, c.Skipped[name])
	}
	return nil
}
