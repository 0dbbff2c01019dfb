package proxy

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/proxy/config"
)

// pwCAS is a CAS that checks Basic passwords like IIS does: a wrong one
// gets 401 with a Basic challenge. It counts every attempt it sees.
type pwCAS struct {
	addr      string
	passwords map[string]string // user part (lower case) -> password
	// autodiscover404: answer Autodiscover 404 before authentication (as a
	// CAS without the Autodiscover virtual directory does).
	autodiscover404 bool
	mu              sync.Mutex
	attempts        map[string]int // "user|device|password" -> attempts seen
	byUser          map[string]int // user part -> attempts seen
	wrong           map[string]int // user part -> wrong passwords checked (401s sent)
	autodiscovers   int            // Autodiscover requests answered 404 unchecked
}

func newPwCAS(t testing.TB, passwords map[string]string) *pwCAS {
	t.Helper()
	return startPwCAS(t, &pwCAS{passwords: passwords})
}

func startPwCAS(t testing.TB, c *pwCAS) *pwCAS {
	t.Helper()
	c.attempts, c.byUser, c.wrong = map[string]int{}, map[string]int{}, map[string]int{}
	srv := &fasthttp.Server{Handler: c.handle, NoDefaultServerHeader: true}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return c
}

func (c *pwCAS) url() string { return "http://" + c.addr }

func (c *pwCAS) handle(ctx *fasthttp.RequestCtx) {
	if string(ctx.Path()) == "/hc" {
		return
	}
	if c.autodiscover404 && strings.EqualFold(string(ctx.Path()), "/autodiscover/autodiscover.xml") {
		c.mu.Lock()
		c.autodiscovers++
		c.mu.Unlock()
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		return
	}
	user, pw := "", ""
	if v, ok := strings.CutPrefix(string(ctx.Request.Header.Peek("Authorization")), "Basic "); ok {
		if dec, err := base64.StdEncoding.DecodeString(v); err == nil {
			user, pw, _ = strings.Cut(string(dec), ":")
		}
	}
	u, _ := eas.SplitUser([]byte(user))
	up := strings.ToLower(string(u))
	c.mu.Lock()
	c.attempts[up+"|"+string(ctx.QueryArgs().Peek("DeviceId"))+"|"+pw]++
	c.byUser[up]++
	c.mu.Unlock()
	if want, ok := c.passwords[up]; !ok || want != pw {
		c.mu.Lock()
		c.wrong[up]++
		c.mu.Unlock()
		ctx.Response.Header.Set("WWW-Authenticate", `Basic realm="cas"`)
		ctx.SetStatusCode(fasthttp.StatusUnauthorized)
		return
	}
	ctx.SetContentType("application/vnd.ms-sync.wbxml")
	ctx.SetBody(pingNoChanges)
}

func (c *pwCAS) seen(user, device, pw string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempts[user+"|"+device+"|"+pw]
}

func (c *pwCAS) seenUser(user string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byUser[user]
}

// wrongFor is how many wrong passwords of user the CAS checked.
func (c *pwCAS) wrongFor(user string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wrong[user]
}

func (c *pwCAS) autodiscoverCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.autodiscovers
}

// phone sends EAS requests over TLS from a chosen loopback address
// (127.0.0.x), so per-address counting can be tested on one machine. (Over
// listen.plain_http the gateway does not count per address: every request
// would come from the load balancer.)
type phone struct {
	hc   *fasthttp.HostClient
	addr string
}

func (g *gateway) phoneAt(t testing.TB, from string) *phone {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	return &phone{addr: g.addr, hc: &fasthttp.HostClient{Addr: g.addr, MaxIdemponentCallAttempts: 1,
		IsTLS: true, TLSConfig: g.pki.clientTLS(t, "", ""),
		Dial: func(addr string) (net.Conn, error) { return d.Dial("tcp", addr) }}}
}

// send is one FolderSync of user on device with password; it returns the
// HTTP status the phone gets.
func (p *phone) send(t testing.TB, user, device, password string) int {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("https://" + p.addr + easURI("FolderSync", user, device))
	req.Header.SetMethod("POST")
	req.Header.Set("MS-ASProtocolVersion", "14.1")
	req.Header.Set("User-Agent", "Apple-iPhone15C2/2104.100")
	req.Header.Set("Authorization", basicAuth(user, password))
	if err := p.hc.DoTimeout(req, resp, 30*time.Second); err != nil {
		t.Fatalf("%s on %s: %v", user, device, err)
	}
	if resp.StatusCode() == 401 && len(resp.Header.Peek("WWW-Authenticate")) == 0 {
		t.Errorf("%s on %s: 401 without WWW-Authenticate", user, device)
	}
	return resp.StatusCode()
}

// autodiscover is one Autodiscover POST of user with password; it returns
// the HTTP status the phone gets.
func (p *phone) autodiscover(t testing.TB, user, password string) int {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("https://" + p.addr + "/autodiscover/autodiscover.xml")
	req.Header.SetMethod("POST")
	req.Header.Set("Authorization", basicAuth(user, password))
	req.SetBodyString(`<Autodiscover><Request><EMailAddress>` + user + `@corp.example.com</EMailAddress></Request></Autodiscover>`)
	if err := p.hc.DoTimeout(req, resp, 30*time.Second); err != nil {
		t.Fatalf("autodiscover %s: %v", user, err)
	}
	return resp.StatusCode()
}

// lockoutYAML is a TLS gateway in auth.mode credentials with the given
// auth.lockout lines.
func lockoutYAML(p *testPKI, casURL, statePath, lockout string) string {
	cert, key := filepath.Join(p.dir, "gateway.pem"), filepath.Join(p.dir, "gateway.key")
	return tlsListenYAML(testYAML([]string{casURL}, nil), cert, key, "") +
		"state:\n  path: " + statePath + "\n" +
		"auth:\n  mode: credentials\n  lockout:\n" + lockout
}

// lockoutPKI has the gateway's server certificate (gateway.pem).
func lockoutPKI(t testing.TB) *testPKI {
	p := newTestPKI(t)
	p.issue(t, "gateway", "", true)
	return p
}

// gateway runs a Server that the test stops itself (to restart it).
type gateway struct {
	s    *Server
	addr string
	pki  *testPKI
	once sync.Once
}

func startGateway(t testing.TB, cfg *config.Config) *gateway {
	t.Helper()
	s, err := newServer(cfg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	g := &gateway{s: s, addr: ln.Addr().String()}
	t.Cleanup(g.stop)
	return g
}

func (g *gateway) stop() {
	g.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.s.Shutdown(ctx)
	})
}

// TestLockoutStalePasswordStorm: a phone that keeps retrying an old
// password costs the directory two bad attempts, and the right password
// still gets through at once.
func TestLockoutStalePasswordStorm(t *testing.T) {
	cas := newPwCAS(t, map[string]string{"jdoe": "new-password"})
	pki := lockoutPKI(t)
	cfg := mustParse(t, lockoutYAML(pki, cas.url(), filepath.Join(t.TempDir(), "state.db"),
		"    failures: 5\n    window: 15m\n    backoff: 30m\n"))
	g := startGateway(t, cfg)
	g.pki = pki
	ph := g.phoneAt(t, "127.0.0.1")
	for i := range 20 {
		if st := ph.send(t, "jdoe", "ApplDMPL69PZF18P", "old-password"); st != 401 {
			t.Fatalf("attempt %d: status %d", i, st)
		}
	}
	if n := cas.seen("jdoe", "ApplDMPL69PZF18P", "old-password"); n != 2 {
		t.Fatalf("the CAS saw the stale password %d times, want 2", n)
	}
	if st := ph.send(t, "jdoe", "ApplDMPL69PZF18P", "new-password"); st != 200 {
		t.Fatalf("the right password: status %d", st)
	}
	// The same stale password from the user's other device is refused too.
	if st := ph.send(t, `CORP\jdoe`, "androidc195792594", "old-password"); st != 401 || cas.seen("jdoe", "androidc195792594", "old-password") != 0 {
		t.Fatalf("other device: status %d, CAS saw %d", st, cas.seen("jdoe", "androidc195792594", "old-password"))
	}
	wantMetrics(t, g.s, `easgate_rejected_requests_total{reason="stale_password"} 19`)
}

// TestLockoutThreshold: after auth.lockout.failures wrong passwords the CAS
// receives nothing more from that phone, the user's other phone on another
// address still gets in, and the lock survives a restart.
func TestLockoutThreshold(t *testing.T) {
	cas := newPwCAS(t, map[string]string{"jdoe": "right"})
	state := filepath.Join(t.TempDir(), "state.db")
	pki := lockoutPKI(t)
	cfg := func() *config.Config {
		return mustParse(t, lockoutYAML(pki, cas.url(), state, "    failures: 3\n    window: 15m\n    backoff: 30m\n"))
	}
	g := startGateway(t, cfg())
	g.pki = pki
	ph := g.phoneAt(t, "127.0.0.1")
	for i := range 3 {
		if st := ph.send(t, "jdoe", "dev1", fmt.Sprintf("guess%d", i)); st != 401 {
			t.Fatalf("guess %d: status %d", i, st)
		}
	}
	if n := cas.seenUser("jdoe"); n != 3 {
		t.Fatalf("the CAS saw %d attempts, want 3", n)
	}
	for _, pw := range []string{"guess4", "guess5", "right"} {
		if st := ph.send(t, "jdoe", "dev1", pw); st != 401 {
			t.Fatalf("locked phone, %s: status %d", pw, st)
		}
	}
	// the same device from another address: the user+device lock
	if st := g.phoneAt(t, "127.0.0.3").send(t, "jdoe", "dev1", "right"); st != 401 {
		t.Fatalf("locked device from another address: status %d", st)
	}
	// another device from the same address: the user+address lock
	if st := ph.send(t, "jdoe", "dev2", "right"); st != 401 {
		t.Fatalf("another device from the locked address: status %d", st)
	}
	if n := cas.seenUser("jdoe"); n != 3 {
		t.Fatalf("after the threshold the CAS saw %d attempts, want still 3", n)
	}
	// the user's other phone, elsewhere, is not locked out
	if st := g.phoneAt(t, "127.0.0.2").send(t, "jdoe", "dev2", "right"); st != 200 {
		t.Fatalf("other phone: status %d", st)
	}
	wantMetrics(t, g.s, `easgate_rejected_requests_total{reason="lockout"} 5`, "easgate_lockout_locked_user_devices 1")

	// Restart: counters come back from the state store.
	g.stop()
	g2 := startGateway(t, cfg())
	g2.pki = pki
	before := cas.seenUser("jdoe")
	if st := g2.phoneAt(t, "127.0.0.1").send(t, "jdoe", "dev1", "right"); st != 401 {
		t.Fatalf("after a restart the locked phone got %d", st)
	}
	if cas.seenUser("jdoe") != before {
		t.Fatal("after a restart the locked phone reached the CAS")
	}
	wantMetrics(t, g2.s, `easgate_rejected_requests_total{reason="lockout"} 1`, "easgate_lockout_locked_user_devices 1",
		"easgate_lockout_locked_user_addresses 1")
}

// TestLockoutSpray: many users failing from one address block it; another
// address is not affected.
func TestLockoutSpray(t *testing.T) {
	pw := map[string]string{}
	for i := range 6 {
		pw[fmt.Sprintf("user%d", i)] = "Correct-" + fmt.Sprint(i)
	}
	cas := newPwCAS(t, pw)
	pki := lockoutPKI(t)
	cfg := mustParse(t, lockoutYAML(pki, cas.url(), filepath.Join(t.TempDir(), "state.db"),
		"    failures: 5\n    window: 15m\n    backoff: 30m\n    spray_users: 3\n    spray_window: 10m\n    spray_block: 30m\n"))
	g := startGateway(t, cfg)
	g.pki = pki
	sprayer := g.phoneAt(t, "127.0.0.4")
	for i := range 3 {
		if st := sprayer.send(t, fmt.Sprintf("user%d", i), "dev", "Winter2026!"); st != 401 {
			t.Fatalf("spray %d: status %d", i, st)
		}
	}
	// user3 with the right password from the spraying address: refused
	// without asking the CAS
	if st := sprayer.send(t, "user3", "dev", "Correct-3"); st != 401 || cas.seenUser("user3") != 0 {
		t.Fatalf("from the spraying address: status %d, CAS saw %d", st, cas.seenUser("user3"))
	}
	if st := g.phoneAt(t, "127.0.0.5").send(t, "user3", "dev", "Correct-3"); st != 200 {
		t.Fatalf("from another address: status %d", st)
	}
	wantMetrics(t, g.s, `easgate_rejected_requests_total{reason="spray_block"} 1`, "easgate_lockout_blocked_addresses 1")
}

// TestLockoutSurvivesReload: a reload with the same auth.lockout keeps the
// shield (digests included); one that changes it starts a new shield from
// the persisted counters, so the lock holds either way.
func TestLockoutSurvivesReload(t *testing.T) {
	cas := newPwCAS(t, map[string]string{"jdoe": "right", "mary": "pw"})
	state := filepath.Join(t.TempDir(), "state.db")
	pki := lockoutPKI(t)
	yaml := func(failures int) *config.Config {
		return mustParse(t, lockoutYAML(pki, cas.url(), state, fmt.Sprintf("    failures: %d\n    window: 15m\n    backoff: 30m\n", failures)))
	}
	g := startGateway(t, yaml(2))
	g.pki = pki
	ph := g.phoneAt(t, "127.0.0.1")
	ph.send(t, "jdoe", "dev1", "old")
	ph.send(t, "jdoe", "dev1", "old") // stale now, and the pair is locked
	if err := g.s.Reload(yaml(2)); err != nil {
		t.Fatal(err)
	}
	if st := ph.send(t, "jdoe", "dev1", "right"); st != 401 {
		t.Fatalf("after a reload: status %d", st)
	}
	if err := g.s.Reload(yaml(4)); err != nil {
		t.Fatal(err)
	}
	if st := ph.send(t, "jdoe", "dev1", "right"); st != 401 {
		t.Fatalf("after a reload that changed auth.lockout: status %d", st)
	}
	if n := cas.seenUser("jdoe"); n != 2 {
		t.Fatalf("the CAS saw %d attempts, want 2", n)
	}
	// another user's phone is fine throughout
	if st := g.phoneAt(t, "127.0.0.2").send(t, "mary", "dev9", "pw"); st != 200 {
		t.Fatalf("mary: %d", st)
	}
}

// TestLockoutSprayAutodiscover: spraying through Autodiscover (where
// password sprays against Exchange usually happen) blocks the address for
// ActiveSync too, and the CAS sees no more attempts from it.
func TestLockoutSprayAutodiscover(t *testing.T) {
	cas := newPwCAS(t, map[string]string{"user0": "a", "user1": "b", "user2": "c", "user3": "d"})
	pki := lockoutPKI(t)
	cfg := mustParse(t, lockoutYAML(pki, cas.url(), filepath.Join(t.TempDir(), "state.db"),
		"    failures: 5\n    window: 15m\n    backoff: 30m\n    spray_users: 3\n    spray_window: 10m\n    spray_block: 30m\n"))
	g := startGateway(t, cfg)
	g.pki = pki
	sprayer := g.phoneAt(t, "127.0.0.6")
	autodiscover := func(user, pw string) int {
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("https://" + g.addr + "/autodiscover/autodiscover.xml")
		req.Header.SetMethod("POST")
		req.Header.Set("Authorization", basicAuth(user, pw))
		req.SetBodyString(`<Autodiscover><Request><EMailAddress>` + user + `@corp.example.com</EMailAddress></Request></Autodiscover>`)
		if err := sprayer.hc.DoTimeout(req, resp, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode()
	}
	for i := range 3 {
		if st := autodiscover(fmt.Sprintf("user%d", i), "Winter2026!"); st != 401 {
			t.Fatalf("spray %d: %d", i, st)
		}
	}
	if st := autodiscover("user3", "d"); st != 401 || cas.seenUser("user3") != 0 {
		t.Fatalf("autodiscover from the spraying address: %d, CAS saw %d", st, cas.seenUser("user3"))
	}
	if st := sprayer.send(t, "user3", "dev", "d"); st != 401 || cas.seenUser("user3") != 0 {
		t.Fatalf("ActiveSync from the spraying address: %d, CAS saw %d", st, cas.seenUser("user3"))
	}
	if st := g.phoneAt(t, "127.0.0.7").send(t, "user3", "dev", "d"); st != 200 {
		t.Fatalf("from another address: %d", st)
	}
	wantMetrics(t, g.s, `easgate_rejected_requests_total{reason="spray_block"} 2`)
}

// TestLockoutUserCapRotation reproduces issue 12 item 3: a guesser rotating
// DeviceIds and client addresses, with an Autodiscover request every fifth
// try that the CAS answers 404 before authenticating, used to get all 80
// guesses to the CAS. Now a 404 resets nothing and auth.lockout.user_failures
// caps the user's wrong passwords that reach the CAS, over all devices and
// addresses. Other users are unaffected, the user's phone that already
// worked keeps working, and the lock survives a restart.
func TestLockoutUserCapRotation(t *testing.T) {
	const userFailures = 10
	cas := startPwCAS(t, &pwCAS{passwords: map[string]string{"jdoe": "right", "mary": "pw"}, autodiscover404: true})
	state := filepath.Join(t.TempDir(), "state.db")
	pki := lockoutPKI(t)
	cfg := func() *config.Config {
		return mustParse(t, lockoutYAML(pki, cas.url(), state, fmt.Sprintf(
			"    failures: 5\n    user_failures: %d\n    window: 15m\n    backoff: 30m\n", userFailures)))
	}
	g := startGateway(t, cfg())
	g.pki = pki
	home := g.phoneAt(t, "127.0.0.2")
	if st := home.send(t, "jdoe", "ApplHOMEPHONE01", "right"); st != 200 {
		t.Fatalf("jdoe's phone before the attack: status %d", st)
	}

	// 80 tries from 40 addresses (two each, under auth.lockout.failures),
	// a new DeviceId every time, Autodiscover every fifth try.
	phones := map[int]*phone{}
	for i := range 80 {
		n := 10 + i%40
		if phones[n] == nil {
			phones[n] = g.phoneAt(t, fmt.Sprintf("127.0.0.%d", n))
		}
		pw := fmt.Sprintf("guess%02d", i)
		if i%5 == 4 {
			if st := phones[n].autodiscover(t, "jdoe", pw); st != 404 && st != 401 {
				t.Fatalf("try %d (Autodiscover): status %d", i, st)
			}
			continue
		}
		if st := phones[n].send(t, "jdoe", fmt.Sprintf("rot%02d", i), pw); st != 401 {
			t.Fatalf("try %d: status %d", i, st)
		}
	}
	if n := cas.wrongFor("jdoe"); n > userFailures || n == 0 {
		t.Fatalf("%d wrong passwords reached the CAS, want 1..%d (auth.lockout.user_failures)", n, userFailures)
	}
	if cas.autodiscoverCount() == 0 {
		t.Fatal("no Autodiscover request reached the CAS before the lock: the 404 path was not exercised")
	}
	t.Logf("the CAS checked %d wrong passwords and answered %d Autodiscover requests 404", cas.wrongFor("jdoe"), cas.autodiscoverCount())

	// jdoe's right password from a new device and address: refused locally.
	before := cas.seenUser("jdoe")
	if st := g.phoneAt(t, "127.0.0.3").send(t, "jdoe", "ApplNEWPHONE001", "right"); st != 401 || cas.seenUser("jdoe") != before {
		t.Fatalf("new device during the lock: status %d, CAS saw %d more", st, cas.seenUser("jdoe")-before)
	}
	// jdoe's phone that worked before the attack keeps working.
	if st := home.send(t, "jdoe", "ApplHOMEPHONE01", "right"); st != 200 {
		t.Fatalf("jdoe's known phone during the lock: status %d", st)
	}
	// Another user is unaffected, even from an address the guesser used.
	if st := g.phoneAt(t, "127.0.0.4").send(t, "mary", "androidmary0001", "pw"); st != 200 {
		t.Fatalf("mary: status %d", st)
	}
	if st := phones[10].send(t, "mary", "androidmary0002", "pw"); st != 200 {
		t.Fatalf("mary from the guesser's address: status %d", st)
	}
	wantMetrics(t, g.s, "easgate_lockout_locked_users 1", "easgate_lockout_locked_user_devices 0",
		`easgate_rejected_requests_total{reason="user_lockout"}`)

	// Restart: the per-user lock comes back from the state store.
	g.stop()
	g2 := startGateway(t, cfg())
	g2.pki = pki
	before = cas.seenUser("jdoe")
	if st := g2.phoneAt(t, "127.0.0.5").send(t, "jdoe", "ApplNEWPHONE002", "right"); st != 401 || cas.seenUser("jdoe") != before {
		t.Fatalf("after a restart: status %d, CAS saw %d more", st, cas.seenUser("jdoe")-before)
	}
	wantMetrics(t, g2.s, "easgate_lockout_locked_users 1")
}

// TestLockoutAutodiscover404NoReset is the finding on one address with the
// per-user cap off: DeviceId rotation plus an Autodiscover request every
// fifth try (answered 404 by the CAS before authentication) used to reset
// the user+address counter, so all guesses reached the CAS. A 404 is no
// success: the address counter locks after auth.lockout.failures.
func TestLockoutAutodiscover404NoReset(t *testing.T) {
	cas := startPwCAS(t, &pwCAS{passwords: map[string]string{"jdoe": "right"}, autodiscover404: true})
	pki := lockoutPKI(t)
	cfg := mustParse(t, lockoutYAML(pki, cas.url(), filepath.Join(t.TempDir(), "state.db"),
		"    failures: 5\n    user_failures: 0\n    window: 15m\n    backoff: 30m\n"))
	g := startGateway(t, cfg)
	g.pki = pki
	ph := g.phoneAt(t, "127.0.0.8")
	for i := range 80 {
		pw := fmt.Sprintf("guess%02d", i)
		if i%5 == 4 {
			ph.autodiscover(t, "jdoe", pw)
			continue
		}
		if st := ph.send(t, "jdoe", fmt.Sprintf("rot%02d", i), pw); st != 401 {
			t.Fatalf("try %d: status %d", i, st)
		}
	}
	if n := cas.wrongFor("jdoe"); n != 5 {
		t.Fatalf("%d wrong passwords reached the CAS, want auth.lockout.failures = 5", n)
	}
	wantMetrics(t, g.s, "easgate_lockout_locked_user_addresses 1", "easgate_lockout_locked_users 0")
}
