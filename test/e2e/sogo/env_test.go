package sogo_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sogoEnv is what setup.sh wrote to $EASGATE_SOGO_DIR/env.
type sogoEnv struct {
	URL         string // nginx in front of sogod: http://127.0.0.1:20080/Microsoft-Server-ActiveSync
	Upstream    string // the same server as easgate's upstream: http://127.0.0.1:20080
	Users       []string
	Passwords   map[string]string
	MailDomain  string
	Doveadm     string
	DovecotConf string
	Seed        int
	AccessLog   string // nginx's access log: which requests reached SOGo
}

var (
	sogo    *sogoEnv // nil when the suite is off or SOGo is unreachable
	sogoErr error    // why sogo is nil when the switch is on
	gwSkip  string   // why every test through easgate skips (easgate cannot be built or has no serve)
	// The gateways: plain (Basic, allow-all), quarantine (compliance file,
	// default quarantine) and certificate (TLS, client certificates, auth
	// both). A nil gateway with its error set failed to start: its tests
	// fail.
	gw, qgw, cgw          *gateway
	gwErr, qgwErr, cgwErr error
	suiteOn               = os.Getenv("EASGATE_E2E_SOGO") == "1"
	inCI                  = os.Getenv("CI") == "true"
	deviceSeq             atomic.Uint32
	runDevices            = strconv.FormatInt(time.Now().Unix()%1000000, 36)
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if !suiteOn {
		return m.Run()
	}
	sogo, sogoErr = loadEnv()
	if sogoErr == nil {
		sogoErr = sogo.reachable()
	}
	if sogoErr != nil {
		sogo = nil
		return m.Run()
	}
	stop := startGateways(sogo)
	code := m.Run()
	if code != 0 {
		for _, g := range []*gateway{gw, qgw, cgw} {
			if g != nil {
				fmt.Fprintf(os.Stderr, "--- end of the easgate %s log (%s):\n%s\n", g.name, g.dir, g.logTail())
			}
		}
	}
	if err := stop(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		code = 1
	}
	return code
}

// startGateways builds easgate once and starts the three gateways in
// parallel. The returned function stops them and removes their directory;
// it reports any gateway that did not exit cleanly (the race detector's
// exit status 66, for one).
func startGateways(e *sogoEnv) (stop func() error) {
	dir, err := os.MkdirTemp("", "easgate-e2e-sogo-")
	if err != nil {
		gwErr, qgwErr, cgwErr = err, err, err
		return func() error { return nil }
	}
	bin, skip, err := buildGateway(dir)
	if err != nil || skip != "" {
		gwSkip, gwErr, qgwErr, cgwErr = skip, err, err, err
		return func() error { return os.RemoveAll(dir) }
	}
	setups := []struct {
		s   gwSetup
		g   **gateway
		err *error
	}{
		{plainSetup(e), &gw, &gwErr},
		{quarantineSetup(e), &qgw, &qgwErr},
		{certSetup(e), &cgw, &cgwErr},
	}
	stops := make([]func() error, len(setups))
	var wg sync.WaitGroup
	for i, x := range setups {
		wg.Go(func() {
			*x.g, stops[i], *x.err = startGateway(bin, dir, x.s)
		})
	}
	wg.Wait()
	return func() error {
		var errs []error
		for _, s := range stops {
			errs = append(errs, s())
		}
		if os.Getenv("EASGATE_E2E_KEEP") == "" {
			os.RemoveAll(dir)
		}
		return errors.Join(errs...)
	}
}

// needGateway returns the gateway g for a test through easgate: it skips
// when easgate cannot be built, and fails when g did not start (err).
func needGateway(t *testing.T, g *gateway, err error) *gateway {
	t.Helper()
	if gwSkip != "" {
		t.Skip(gwSkip)
	}
	if err != nil {
		t.Fatalf("easgate could not be started: %v", err)
	}
	if g == nil {
		t.Fatal("easgate was not started")
	}
	return g
}

// requireSOGo skips the test unless the suite is switched on, and fails it
// when the suite is on but SOGo is not usable and CI=true.
func requireSOGo(t *testing.T) *sogoEnv {
	t.Helper()
	if !suiteOn {
		t.Skip("end-to-end tests against SOGo are off: run `sudo test/e2e/sogo/setup.sh start`, then set EASGATE_E2E_SOGO=1 (see test/e2e/sogo/README.md)")
	}
	if sogo == nil {
		if inCI {
			t.Fatalf("EASGATE_E2E_SOGO=1 but SOGo is not usable: %v", sogoErr)
		}
		t.Skipf("EASGATE_E2E_SOGO=1 but SOGo is not usable (failing instead when CI=true): %v", sogoErr)
	}
	return sogo
}

func runDir() string {
	if d := os.Getenv("EASGATE_SOGO_DIR"); d != "" {
		return d
	}
	return "/tmp/easgate-sogo"
}

func loadEnv() (*sogoEnv, error) {
	path := filepath.Join(runDir(), "env")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the facts setup.sh writes: %w (did `test/e2e/sogo/setup.sh start` run?)", err)
	}
	defer f.Close()
	e := &sogoEnv{Passwords: map[string]string{}}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: not KEY=VALUE", path, line)
		}
		switch {
		case k == "EASGATE_SOGO_URL":
			e.URL = v
		case k == "EASGATE_SOGO_UPSTREAM":
			e.Upstream = v
		case k == "EASGATE_SOGO_USERS":
			e.Users = strings.Fields(v)
		case strings.HasPrefix(k, "EASGATE_SOGO_PASSWORD_"):
			e.Passwords[strings.TrimPrefix(k, "EASGATE_SOGO_PASSWORD_")] = v
		case k == "EASGATE_SOGO_MAIL_DOMAIN":
			e.MailDomain = v
		case k == "EASGATE_SOGO_DOVEADM":
			e.Doveadm = v
		case k == "EASGATE_SOGO_DOVECOT_CONF":
			e.DovecotConf = v
		case k == "EASGATE_SOGO_ACCESS_LOG":
			e.AccessLog = v
		case k == "EASGATE_SOGO_SEED":
			if e.Seed, err = strconv.Atoi(v); err != nil {
				return nil, fmt.Errorf("%s:%d: EASGATE_SOGO_SEED: %v", path, line, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if e.AccessLog == "" { // env written by an older setup.sh
		e.AccessLog = filepath.Join(runDir(), "nginx", "access.log")
	}
	var missing []string
	for k, v := range map[string]string{"EASGATE_SOGO_URL": e.URL, "EASGATE_SOGO_UPSTREAM": e.Upstream,
		"EASGATE_SOGO_DOVEADM": e.Doveadm, "EASGATE_SOGO_DOVECOT_CONF": e.DovecotConf} {
		if v == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s lacks %s", path, strings.Join(missing, ", "))
	}
	for _, u := range e.Users {
		if e.Passwords[u] == "" {
			return nil, fmt.Errorf("%s: no password for user %s", path, u)
		}
	}
	for _, u := range allUsers {
		if e.Passwords[u] == "" {
			return nil, fmt.Errorf("%s: the tests need user %s (users: %v); run `test/e2e/sogo/setup.sh start` again to add it", path, u, e.Users)
		}
	}
	return e, nil
}

// reachable checks that SOGo answers an authenticated OPTIONS and that
// doveadm can read a mailbox (the tests deliver mail with it).
func (e *sogoEnv) reachable() error {
	u := e.Users[0]
	c := newClient(e.URL, u, e.Passwords[u], 141, false, "reach")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := c.options(ctx)
	if err != nil {
		return fmt.Errorf("OPTIONS %s: %w", e.URL, err)
	}
	if resp.code != http.StatusOK {
		return fmt.Errorf("OPTIONS %s as %s: HTTP %d, want 200", e.URL, u, resp.code)
	}
	if _, err := e.inboxCount(ctx, u); err != nil {
		return err
	}
	return nil
}

var messagesRe = regexp.MustCompile(`messages=(\d+)`)

// inboxCount asks Dovecot how many messages user's INBOX holds.
func (e *sogoEnv) inboxCount(ctx context.Context, user string) (int, error) {
	out, err := e.doveadm(ctx, nil, "-f", "flow", "mailbox", "status", "-u", user, "messages", "INBOX")
	if err != nil {
		return 0, err
	}
	m := messagesRe.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("doveadm mailbox status for %s: no messages= in %q", user, out)
	}
	return strconv.Atoi(string(m[1]))
}

var deliverSeq atomic.Uint32

// deliver saves one new RFC 5322 message into user's INBOX with Dovecot's
// own tool, as a local delivery would, and returns its Subject.
func (e *sogoEnv) deliver(ctx context.Context, user, what string) (string, error) {
	n := deliverSeq.Add(1)
	subject := fmt.Sprintf("easgate e2e %s %s-%d", what, runDevices, n)
	now := time.Now()
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Pinger <pinger@example.org>\r\n")
	fmt.Fprintf(&b, "To: %s <%s@%s>\r\n", user, user, e.MailDomain)
	fmt.Fprintf(&b, "Subject: %s\r\n", subject)
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%d.%d.%s@easgate.test>\r\n", now.UnixNano(), n, user)
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	fmt.Fprintf(&b, "Delivered during a test at %s.\r\n", now.Format(time.RFC3339Nano))
	if _, err := e.doveadm(ctx, b.Bytes(), "save", "-u", user, "-m", "INBOX"); err != nil {
		return "", err
	}
	return subject, nil
}

func (e *sogoEnv) doveadm(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Doveadm, append([]string{"-c", e.DovecotConf}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		hint := ""
		if os.Geteuid() != 0 {
			hint = " (doveadm switches to the mail user: run the tests as root)"
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("doveadm %s: %v: %s%s", args[0], err, strings.TrimSpace(stderr.String()), hint)
		}
		return nil, fmt.Errorf("doveadm %s: %w%s", args[0], err, hint)
	}
	return out, nil
}

// newDeviceID returns a DeviceId unique to this run and call: SOGo keeps
// sync state per device, so every flow starts from an empty state.
func newDeviceID(tag string) string {
	id := fmt.Sprintf("E2E%s%s%d", tag, runDevices, deviceSeq.Add(1))
	var b strings.Builder
	for _, c := range id {
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') {
			b.WriteRune(c)
		}
	}
	s := b.String()
	if len(s) > 32 {
		s = s[len(s)-32:]
	}
	return s
}
