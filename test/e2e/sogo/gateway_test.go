package sogo_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/easgate/easgate/eas"
)

// gateway is an `easgate serve` subprocess in front of SOGo.
type gateway struct {
	name string // plain, quarantine, certificate
	url  string // http(s)://127.0.0.1:PORT/Microsoft-Server-ActiveSync
	dir  string // config, state, logs
	cmd  *exec.Cmd
	done chan error
	// phoneTLS, for a TLS listener, trusts the test CA; each phone adds its
	// own client certificate (nil: plain HTTP).
	phoneTLS *tls.Config
}

// client is a phone of user connecting to g, with the client certificate
// cert on a TLS listener (nil: none).
func (g *gateway) client(user, pass string, v eas.Version, base64 bool, tag string, cert *tls.Certificate) *easClient {
	c := newClient(g.url, user, pass, v, base64, tag)
	if g.phoneTLS != nil {
		c.withTLS(g.phoneTLS, cert)
	}
	return c
}

// gwSetup is one gateway the suite starts: its configuration and the
// client it proves readiness with.
type gwSetup struct {
	name string
	// config returns the YAML for the listener and admin ports; it may
	// write files (CSV, certificates) into dir.
	config func(dir string, listenPort, adminPort int) (string, error)
	scheme string      // http or https
	tls    *tls.Config // phones' TLS base configuration (https)
	// readyClient builds the client whose OPTIONS must get 200.
	readyClient func(url string) *easClient
}

// buildGateway builds cmd/easgate into dir. skip is set when easgate
// cannot be built or has no serve command (the via-easgate tests then skip
// with that message).
func buildGateway(dir string) (bin, skip string, err error) {
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "easgate")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"build", "-o", bin}
	if raceBuild {
		args = append(args, "-race")
	}
	build := exec.CommandContext(ctx, goTool, append(args, "./cmd/easgate")...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", "easgate is not buildable, so the via-easgate variants cannot run: go build ./cmd/easgate: " +
			firstLines(string(out), 4), nil
	}
	help, _ := exec.CommandContext(ctx, bin, "help").CombinedOutput()
	if !hasCommand(string(help), "serve") {
		return "", "`easgate serve` does not exist yet (not listed by `easgate help`), so the via-easgate variants cannot run", nil
	}
	return bin, "", nil
}

// startGateway starts `easgate serve` from bin with the configuration of
// s, in its own directory under parent, and waits until it answers. The
// returned stop function is never nil.
func startGateway(bin, parent string, s gwSetup) (g *gateway, stop func() error, err error) {
	stop = func() error { return nil }
	dir := filepath.Join(parent, s.name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, stop, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, stop, err
	}
	yaml, err := s.config(dir, ports[0], ports[1])
	if err != nil {
		return nil, stop, fmt.Errorf("easgate %s: %w", s.name, err)
	}
	cfg := filepath.Join(dir, "easgate.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		return nil, stop, err
	}
	logf, err := os.Create(filepath.Join(dir, "easgate.log"))
	if err != nil {
		return nil, stop, err
	}
	scheme := s.scheme
	if scheme == "" {
		scheme = "http"
	}
	g = &gateway{
		name:     s.name,
		url:      fmt.Sprintf("%s://127.0.0.1:%d/Microsoft-Server-ActiveSync", scheme, ports[0]),
		dir:      dir,
		cmd:      exec.Command(bin, "serve", "--config", cfg),
		done:     make(chan error, 1),
		phoneTLS: s.tls,
	}
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	if err := g.cmd.Start(); err != nil {
		logf.Close()
		return nil, stop, fmt.Errorf("starting easgate serve (%s): %w", s.name, err)
	}
	go func() { g.done <- g.cmd.Wait(); logf.Close() }()
	stop = func() error {
		err := g.shutdown()
		if err != nil {
			err = fmt.Errorf("easgate %s: %w\n--- end of its log:\n%s", g.name, err, g.logTail())
		}
		return err
	}
	if err := g.waitReady(s.readyClient(g.url)); err != nil {
		return nil, stop, fmt.Errorf("easgate %s: %v\n--- its log:\n%s", s.name, err, g.logTail())
	}
	return g, stop, nil
}

// baseConfig is the configuration every gateway shares: SOGo's nginx as
// the only upstream, JSON logs, an access log and a state file in dir.
// listen is the body of the listen section; authPolicy the auth and policy
// sections.
func baseConfig(dir, upstream string, listenPort, adminPort int, listen, authPolicy string) string {
	return fmt.Sprintf(`# easgate in front of the SOGo of test/e2e/sogo/setup.sh (written by the e2e tests)
listen:
  address: 127.0.0.1:%d
%supstreams:
  servers:
    - url: %s
  health_check:
    path: /Microsoft-Server-ActiveSync/healthcheck.htm
    interval: 2s
    timeout: 1s
  timeouts:
    connect: 5s
    request: 60s
    long_poll_max: 3660s
%sstate:
  path: %s
admin:
  address: 127.0.0.1:%d
log:
  level: info
  format: json
  access_log: %s
`, listenPort, listen, upstream, authPolicy, filepath.Join(dir, "state.db"), adminPort, filepath.Join(dir, "access.log"))
}

// plainSetup is the gateway of TestLifecycle, TestPingHeldAtLeast60s and
// TestBasicAuthFailure: plain HTTP, Basic credentials, an allow-all policy.
func plainSetup(e *sogoEnv) gwSetup {
	return gwSetup{
		name: "plain",
		config: func(dir string, listenPort, adminPort int) (string, error) {
			return baseConfig(dir, e.Upstream, listenPort, adminPort, "  plain_http: true\n", `auth:
  mode: credentials
policy:
  mode: enforce
  default_access: allow
`), nil
		},
		readyClient: func(url string) *easClient {
			u := e.Users[0]
			return newClient(url, u, e.Passwords[u], 141, false, "GW")
		},
	}
}

// waitReady polls an authenticated OPTIONS through easgate until it answers
// 200 (the upstream is then in rotation), for at most 60 s.
func (g *gateway) waitReady(c *easClient) error {
	deadline := time.Now().Add(60 * time.Second)
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case err := <-g.done:
			g.done <- err
			return fmt.Errorf("easgate serve exited during start-up: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := c.options(ctx)
		cancel()
		if err == nil && resp.code == http.StatusOK {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = resp.dump()
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("easgate at %s did not answer OPTIONS as %s with 200 within 60 s; last: %s", g.url, c.user, last)
}

// shutdown stops easgate: SIGTERM, then SIGKILL after 15 s. It returns an
// error when easgate did not exit cleanly (an exit status other than 0, such
// as the race detector's 66, or the need for SIGKILL).
func (g *gateway) shutdown() error {
	if g.cmd.Process == nil {
		return nil
	}
	select {
	case err := <-g.done: // exited on its own while the tests ran
		return fmt.Errorf("easgate serve exited before the end of the tests: %v", err)
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-g.done:
		if err != nil {
			return fmt.Errorf("easgate serve after SIGTERM: %w", err)
		}
		return nil
	case <-time.After(15 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
		return errors.New("easgate serve did not exit within 15 s of SIGTERM; killed")
	}
}

func (g *gateway) logTail() string {
	b, err := os.ReadFile(filepath.Join(g.dir, "easgate.log"))
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/easgate/easgate\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod of github.com/easgate/easgate not found above the test directory")
		}
		dir = parent
	}
}

func hasCommand(help, name string) bool {
	for _, line := range strings.Split(help, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return true
		}
	}
	return false
}

// freePorts reserves n loopback ports by listening and closing; easgate
// binds them right after.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, " | ")
}
