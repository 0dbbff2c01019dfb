package kerberos_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// krbEnv is what setup.sh wrote to $EASGATE_KRB_DIR/env.
type krbEnv struct {
	Realm, KDC, Keytab, ServicePrincipal, SPN, ForbiddenSPN string
	CASURL, OpenURL, UserPassword                           string
}

var (
	suiteOn  = os.Getenv("EASGATE_E2E_KERBEROS") == "1"
	inCI     = os.Getenv("CI") == "true"
	env      *krbEnv
	setupErr error // why the suite cannot run although it is on
	bin      string
	work     string
	pki      *testPKI
	relay    *kdcRelay
	gw       *gateway // certificate phones, Kerberos to HTTP/cas.corp.test
	// revokedCarol is a certificate of carol (a real user of the KDC) that
	// the gateway's CRL lists.
	revokedCarol tls.Certificate
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	if !suiteOn {
		return m.Run() // every test skips with the reason
	}
	var err error
	if work, err = os.MkdirTemp("", "easgate-e2e-krb-"); err != nil {
		setupErr = err
		return m.Run()
	}
	defer os.RemoveAll(work)
	if env, err = loadEnv(); err != nil {
		setupErr = fmt.Errorf("no Kerberos set-up (run test/e2e/kerberos/setup.sh start): %w", err)
		return m.Run()
	}
	if bin, err = buildEasgate(work); err != nil {
		setupErr = err
		return m.Run()
	}
	if pki, err = newTestPKI(); err != nil {
		setupErr = err
		return m.Run()
	}
	if revokedCarol, err = pki.issue("revoked phone of carol", "carol@corp.test"); err != nil {
		setupErr = err
		return m.Run()
	}
	pki.revoke(revokedCarol)
	if relay, err = startRelay(env.KDC); err != nil {
		setupErr = err
		return m.Run()
	}
	defer relay.close()
	g, err := startGateway("kcd", func(dir string, port int) (string, error) {
		return kerberosConfig(dir, port, env.SPN)
	})
	if err != nil {
		setupErr = err
		return m.Run()
	}
	gw = g
	code := m.Run()
	if basicGW != nil {
		if err := basicGW.stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	if err := gw.stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	return code
}

// need skips (locally) or fails (CI) a test whose set-up is missing.
func need(tb testing.TB) {
	tb.Helper()
	if !suiteOn {
		tb.Skip("EASGATE_E2E_KERBEROS=1 is not set: these tests need the Samba KDC and Apache of test/e2e/kerberos/setup.sh")
	}
	if setupErr != nil {
		if inCI {
			tb.Fatalf("Kerberos end-to-end set-up: %v", setupErr)
		}
		tb.Skipf("Kerberos end-to-end set-up missing here: %v", setupErr)
	}
}

func loadEnv() (*krbEnv, error) {
	dir := os.Getenv("EASGATE_KRB_DIR")
	if dir == "" {
		dir = "/tmp/easgate-krb"
	}
	f, err := os.Open(filepath.Join(dir, "env"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			kv[k] = v
		}
	}
	e := &krbEnv{Realm: kv["REALM"], KDC: kv["KDC"], Keytab: kv["KEYTAB"], ServicePrincipal: kv["SERVICE_PRINCIPAL"],
		SPN: kv["SPN"], ForbiddenSPN: kv["FORBIDDEN_SPN"], CASURL: kv["CAS_URL"], OpenURL: kv["OPEN_URL"], UserPassword: kv["USER_PASSWORD"]}
	if e.Realm == "" || e.KDC == "" || e.Keytab == "" || e.CASURL == "" {
		return nil, errors.New("env file incomplete")
	}
	for _, tool := range []string{"samba", "apache2"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is not installed: %w", tool, err)
		}
	}
	return e, nil
}

// buildEasgate builds cmd/easgate (with -race when the tests run with it).
func buildEasgate(dir string) (string, error) {
	out := filepath.Join(dir, "easgate")
	args := []string{"build", "-o", out}
	if raceBuild {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/easgate")...)
	cmd.Dir = "../../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/easgate: %v\n%s", err, b)
	}
	return out, nil
}

// kdcRelay stands between easgate and the KDC on loopback: it counts the
// connections easgate opens to "the KDC" and can stop listening, which is
// what a stopped KDC looks like to easgate (connection refused).
type kdcRelay struct {
	target string
	addr   string
	conns  atomic.Int64
	mu     sync.Mutex
	ln     net.Listener
}

func startRelay(target string) (*kdcRelay, error) {
	r := &kdcRelay{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	return r, nil
}

func (r *kdcRelay) serve(ln net.Listener) {
	r.mu.Lock()
	r.ln = ln
	r.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.conns.Add(1)
			go func() {
				defer c.Close()
				up, err := net.DialTimeout("tcp", r.target, 5*time.Second)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c) }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
}

// stop closes the listener: new connections are refused.
func (r *kdcRelay) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
}

// start listens again on the same address.
func (r *kdcRelay) start() error {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		return err
	}
	r.serve(ln)
	return nil
}

func (r *kdcRelay) close() { r.stop() }

// gateway is an `easgate serve` subprocess.
type gateway struct {
	name, dir, url string
	cmd            *exec.Cmd
	done           chan error
	log            string
}

// kerberosConfig: TLS with required client certificates (and a CRL),
// auth.mode certificate, Kerberos through the relay to spn.
func kerberosConfig(dir string, port int, spn string) (string, error) {
	return kerberosConfigTo(dir, port, spn, env.CASURL)
}

// kerberosConfigTo is kerberosConfig with another upstream.
func kerberosConfigTo(dir string, port int, spn, upstream string) (string, error) {
	ca, crt, key, crl, err := pki.writeFiles(dir)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`listen:
  address: 127.0.0.1:%d
  tls:
    certificate: %s
    key: %s
    client_certificates:
      mode: required
      trusted_cas: %s
      revocation:
        crl_files: [%s]
upstreams:
  servers:
    - url: %s
  kerberos:
    realm: %s
    kdcs: ["%s"]
    service_principal: %s
    keytab: %s
    spn: %s
    timeout: 3s
auth:
  mode: certificate
  certificate_identity: upn
  domains: [corp.test]
policy:
  mode: enforce
  default_access: allow
state:
  path: %s
admin:
  address: 127.0.0.1:%d
log:
  level: info
  format: json
  access_log: %s
`, port, crt, key, ca, crl, upstream, env.Realm, relay.addr, env.ServicePrincipal, env.Keytab, spn,
		filepath.Join(dir, "state.db"), freePort(), filepath.Join(dir, "access.log")), nil
}

// basicConfig: the Basic pass-through gateway of the benchmark, TLS
// without client certificates, to the stand-in's unauthenticated port.
func basicConfig(dir string, port int) (string, error) {
	_, crt, key, _, err := pki.writeFiles(dir)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`listen:
  address: 127.0.0.1:%d
  tls:
    certificate: %s
    key: %s
upstreams:
  servers:
    - url: %s
auth:
  mode: credentials
  domains: [corp.test]
  lockout:
    failures: 0
    user_failures: 0
policy:
  mode: enforce
  default_access: allow
state:
  path: %s
admin:
  address: 127.0.0.1:%d
log:
  level: info
  format: json
  access_log: %s
`, port, crt, key, env.OpenURL, filepath.Join(dir, "state.db"), freePort(), filepath.Join(dir, "access.log")), nil
}

// freePort is a loopback port free a moment ago (0 when none could be had).
func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startGateway(name string, config func(dir string, port int) (string, error)) (*gateway, error) {
	dir := filepath.Join(work, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	yaml, err := config(dir, port)
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "easgate.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.Command(bin, "check-config", cfg).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("check-config %s: %v\n%s", name, err, out)
	}
	g := &gateway{name: name, dir: dir, url: fmt.Sprintf("https://127.0.0.1:%d/Microsoft-Server-ActiveSync", port),
		done: make(chan error, 1), log: filepath.Join(dir, "easgate.log")}
	logf, err := os.Create(g.log)
	if err != nil {
		return nil, err
	}
	g.cmd = exec.Command(bin, "serve", "--config", cfg)
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	if err := g.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { g.done <- g.cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return g, nil
		}
		select {
		case err := <-g.done:
			return nil, fmt.Errorf("easgate %s exited: %v\n%s", name, err, g.tail())
		default:
		}
		if time.Now().After(deadline) {
			_ = g.stop()
			return nil, fmt.Errorf("easgate %s did not listen within 30 s\n%s", name, g.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (g *gateway) stop() error {
	if g.cmd.Process == nil {
		return nil
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-g.done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return err
		}
		return nil
	case <-time.After(20 * time.Second):
		_ = g.cmd.Process.Kill()
		return fmt.Errorf("easgate %s did not stop within 20 s", g.name)
	}
}

func (g *gateway) tail() string {
	b, _ := os.ReadFile(g.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// logHas waits up to 5 s for a line of g's log containing every part.
func (g *gateway) logHas(parts ...string) (string, bool) {
	return g.logHasFile(g.log, 5*time.Second, parts...)
}

// logHasFile is logHas for another log file of g (the access log), waiting
// up to wait.
func (g *gateway) logHasFile(name string, wait time.Duration, parts ...string) (string, bool) {
	deadline := time.Now().Add(wait)
	for {
		b, _ := os.ReadFile(name)
		for _, line := range strings.Split(string(b), "\n") {
			ok := true
			for _, p := range parts {
				if !strings.Contains(line, p) {
					ok = false
					break
				}
			}
			if ok {
				return line, true
			}
		}
		if time.Now().After(deadline) {
			return "", false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// phone is an HTTPS client with the client certificate of upn (none when
// cert is nil), keeping its connection alive like a phone.
func phone(cert *tls.Certificate) *http.Client {
	cfg := pki.phoneTLS()
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 64}}
}

// answer is what the phone saw.
type answer struct {
	status     int
	user       string // the stand-in's X-Remote-User
	retryAfter string
	body       string
}

// folderSync sends an EAS FolderSync for user (the EAS User parameter)
// with device id dev through url.
func folderSync(ctx context.Context, c *http.Client, url, user, dev string, basic bool) (answer, error) {
	return command(ctx, c, url, "FolderSync", user, dev, basic)
}

// command sends the EAS command cmd with a small body.
func command(ctx context.Context, c *http.Client, url, cmd, user, dev string, basic bool) (answer, error) {
	body := ""
	if cmd != "FolderSync" {
		body = "a body easgate reads whole"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		url+"?Cmd="+cmd+"&User="+user+"&DeviceId="+dev+"&DeviceType=iPhone", strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("MS-ASProtocolVersion", "14.1")
	req.Header.Set("Content-Type", "application/vnd.ms-sync.wbxml")
	req.Header.Set("User-Agent", "Apple-iPhone15C2/2101.40")
	if basic {
		req.SetBasicAuth(user+"@corp.test", env.UserPassword)
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, user: resp.Header.Get("X-Remote-User"), retryAfter: resp.Header.Get("Retry-After"),
		body: strings.TrimSpace(string(b))}, nil
}
