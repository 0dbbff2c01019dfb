package kerberos_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// The tests run in this order and share one gateway and one KDC relay:
// relay.conns tells whether a request made easgate talk to the KDC.

func cert(t testing.TB, upn string) *tls.Certificate {
	t.Helper()
	c, err := pki.issue("phone of "+upn, upn)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestAliceReachesCASAsHerself: a phone with only a client certificate
// whose UPN is alice@corp.test reaches the Negotiate-protected stand-in
// through easgate, which sees alice@CORP.TEST (the user part with the
// realm, not the UPN as an enterprise name). The second request uses the
// cached ticket: no KDC connection.
func TestAliceReachesCASAsHerself(t *testing.T) {
	need(t)
	c := phone(cert(t, "alice@corp.test"))
	before := relay.conns.Load()
	a, err := folderSync(ctx(t), c, gw.url, "alice", "KRBALICE1", false)
	if err != nil {
		t.Fatal(err)
	}
	if a.status != 200 || a.user != "alice@CORP.TEST" || a.body != "alice@CORP.TEST" {
		t.Fatalf("got %d, stand-in user %q, body %q; want 200 alice@CORP.TEST\n%s", a.status, a.user, a.body, gw.tail())
	}
	cold := relay.conns.Load() - before
	if cold < 2 {
		t.Errorf("%d KDC connections for a cold ticket; want S4U2Self and S4U2Proxy at least", cold)
	}
	before = relay.conns.Load()
	for i := 0; i < 3; i++ {
		a, err = folderSync(ctx(t), c, gw.url, "alice", "KRBALICE1", false)
		if err != nil || a.status != 200 || a.user != "alice@CORP.TEST" {
			t.Fatalf("request %d with the cached ticket: %v %d %q", i+2, err, a.status, a.user)
		}
	}
	// A second device of alice, on a new connection: same cached ticket.
	if a, err = folderSync(ctx(t), phone(cert(t, "alice@corp.test")), gw.url, "alice", "KRBALICE2", false); err != nil || a.status != 200 {
		t.Fatalf("second device: %v %d", err, a.status)
	}
	if n := relay.conns.Load() - before; n != 0 {
		t.Errorf("%d KDC connections for requests with a cached ticket; want 0", n)
	}
	t.Logf("cold: %d KDC connections (AS for the service TGT, S4U2Self, S4U2Proxy); cached: 0", cold)
}

// TestUnmappedUserRefusedBeforeKDC: a certificate whose identity is of a
// domain easgate does not serve is refused (403) without any KDC exchange.
func TestUnmappedUserRefusedBeforeKDC(t *testing.T) {
	need(t)
	before := relay.conns.Load()
	a, err := folderSync(ctx(t), phone(cert(t, "mallory@evil.test")), gw.url, "mallory", "KRBMAL1", false)
	if err != nil {
		t.Fatal(err)
	}
	if a.status != 403 || a.user != "" {
		t.Errorf("got %d (stand-in user %q); want 403 from easgate", a.status, a.user)
	}
	if n := relay.conns.Load() - before; n != 0 {
		t.Errorf("%d KDC connections for an unmapped user; want 0", n)
	}
}

// TestUnknownUserLogLine: a certificate of the served domain whose user
// the KDC does not know gets 401 (what Exchange answers an authentication
// failure) and one log line naming the cause and the principal.
func TestUnknownUserLogLine(t *testing.T) {
	need(t)
	a, err := folderSync(ctx(t), phone(cert(t, "eve@corp.test")), gw.url, "eve", "KRBEVE1", false)
	if err != nil {
		t.Fatal(err)
	}
	if a.status != 401 {
		t.Errorf("got %d; want 401", a.status)
	}
	if line, ok := gw.logHas(`"cause":"unknown_user"`, `"principal":"eve@CORP.TEST"`, "kerberos: no ticket"); !ok {
		t.Errorf("no log line with cause unknown_user for eve@CORP.TEST:\n%s", gw.tail())
	} else {
		t.Logf("log: %s", line)
	}
}

// TestRevokedCertificateNoTicket: a revoked certificate (in the CRL) of a
// user the KDC knows is refused in the TLS handshake and never causes a
// ticket request.
func TestRevokedCertificateNoTicket(t *testing.T) {
	need(t)
	before := relay.conns.Load()
	_, err := folderSync(ctx(t), phone(&revokedCarol), gw.url, "carol", "KRBCAROL1", false)
	if err == nil {
		t.Error("a revoked certificate got an HTTP answer; want the handshake refused")
	}
	if n := relay.conns.Load() - before; n != 0 {
		t.Errorf("%d KDC connections for a revoked certificate; want 0", n)
	}
	// carol's valid certificate does get a ticket: the refusal above was the revocation.
	a, err := folderSync(ctx(t), phone(cert(t, "carol@corp.test")), gw.url, "carol", "KRBCAROL2", false)
	if err != nil || a.status != 200 || a.user != "carol@CORP.TEST" {
		t.Errorf("carol's valid certificate: %v %d %q", err, a.status, a.user)
	}
}

// TestForbiddenSPN: a gateway whose SPN the service account may not
// delegate to (HTTP/other.corp.test exists but is not in its
// msDS-AllowedToDelegateTo) answers 401 and logs delegation_refused with
// the principal and the SPN.
func TestForbiddenSPN(t *testing.T) {
	need(t)
	g, err := startGateway("forbidden-spn", func(dir string, port int) (string, error) {
		return kerberosConfig(dir, port, env.ForbiddenSPN)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := g.stop(); err != nil {
			t.Error(err)
		}
	}()
	a, err := folderSync(ctx(t), phone(cert(t, "alice@corp.test")), g.url, "alice", "KRBALICE3", false)
	if err != nil {
		t.Fatal(err)
	}
	if a.status != 401 || a.user != "" {
		t.Errorf("got %d (stand-in user %q); want 401 from easgate", a.status, a.user)
	}
	line, ok := g.logHas(`"cause":"delegation_refused"`, `"principal":"alice@CORP.TEST to `+env.ForbiddenSPN+`"`)
	if !ok {
		t.Fatalf("no delegation_refused log line naming alice and %s:\n%s", env.ForbiddenSPN, g.tail())
	}
	t.Logf("log: %s", line)
}

// TestKDCDownThenBack: with the KDC unreachable a user without a cached
// ticket gets 503 with Retry-After (and a log line); a cached user still
// gets through; once the KDC is back the same user gets in.
func TestKDCDownThenBack(t *testing.T) {
	need(t)
	bob := phone(cert(t, "bob@corp.test"))
	alice := phone(cert(t, "alice@corp.test"))
	if a, err := folderSync(ctx(t), alice, gw.url, "alice", "KRBALICE1", false); err != nil || a.status != 200 {
		t.Fatalf("alice before the outage: %v %d", err, a.status)
	}
	relay.stop()
	restarted := false
	defer func() {
		if !restarted {
			_ = relay.start()
		}
	}()
	a, err := folderSync(ctx(t), bob, gw.url, "bob", "KRBBOB1", false)
	if err != nil {
		t.Fatal(err)
	}
	if a.status != 503 || a.retryAfter == "" {
		t.Errorf("KDC down: got %d Retry-After %q; want 503 with Retry-After", a.status, a.retryAfter)
	}
	if _, ok := gw.logHas(`"cause":"kdc_unreachable"`, `"principal":"bob@CORP.TEST"`); !ok {
		t.Errorf("no kdc_unreachable log line for bob@CORP.TEST:\n%s", gw.tail())
	}
	if a, err := folderSync(ctx(t), alice, gw.url, "alice", "KRBALICE1", false); err != nil || a.status != 200 || a.user != "alice@CORP.TEST" {
		t.Errorf("alice (cached ticket) during the outage: %v %d %q; want 200", err, a.status, a.user)
	}
	if err := relay.start(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	a, err = folderSync(ctx(t), bob, gw.url, "bob", "KRBBOB1", false)
	if err != nil || a.status != 200 || a.user != "bob@CORP.TEST" {
		t.Errorf("KDC back: %v %d %q; want 200 bob@CORP.TEST", err, a.status, a.user)
	}
}

// TestNoSecretsInLogs: no log of easgate carries a Negotiate token or a
// ticket (base64 of a GSS-API token starts with "YII").
func TestNoSecretsInLogs(t *testing.T) {
	need(t)
	for _, name := range []string{gw.log, gw.dir + "/access.log"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, bad := range []string{"Negotiate ", "YII", "oYI"} {
			if strings.Contains(s, bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
}

// TestOptionsAsUser: the OPTIONS a phone sends first (no query) reaches
// the CAS with the user's ticket too: Exchange answers it only when
// authenticated.
func TestOptionsAsUser(t *testing.T) {
	need(t)
	c := phone(cert(t, "alice@corp.test"))
	req, err := http.NewRequestWithContext(ctx(t), http.MethodOptions, gw.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Remote-User") != "alice@CORP.TEST" {
		t.Errorf("OPTIONS: %d, stand-in user %q; want 200 alice@CORP.TEST", resp.StatusCode, resp.Header.Get("X-Remote-User"))
	}
}

// TestHeldPingAsUser: a Ping with a heartbeat is a long poll easgate holds
// on a hijacked connection with its own round trip; it too reaches the
// CAS with the user's ticket (the stand-in answers at once).
func TestHeldPingAsUser(t *testing.T) {
	need(t)
	c := phone(cert(t, "alice@corp.test"))
	// WBXML 1.3, UTF-8; code page 13 (Ping): <Ping><HeartbeatInterval>480</HeartbeatInterval></Ping>
	body := []byte{0x03, 0x01, 0x6a, 0x00, 0x00, 0x0d, 0x45, 0x48, 0x03, '4', '8', '0', 0x00, 0x01, 0x01}
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, gw.url+"?Cmd=Ping&User=alice&DeviceId=KRBPING1&DeviceType=iPhone", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("MS-ASProtocolVersion", "14.1")
	req.Header.Set("Content-Type", "application/vnd.ms-sync.wbxml")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Remote-User") != "alice@CORP.TEST" {
		t.Errorf("held Ping: %d, stand-in user %q; want 200 alice@CORP.TEST", resp.StatusCode, resp.Header.Get("X-Remote-User"))
	}
	// The access-log line of a held poll is written when its exchange ends,
	// which has been seen up to about 5 s after the phone had the answer.
	line, ok := gw.logHasFile(gw.dir+"/access.log", 20*time.Second, `"command":"Ping"`, `"device_id":"KRBPING1"`, `"hold_s":480`)
	if !ok {
		b, _ := os.ReadFile(gw.dir + "/access.log")
		t.Fatalf("no access-log line of a held Ping (hold_s 480) for KRBPING1:\n%s\n%s", b, gw.tail())
	}
	t.Logf("access log: %s", line)
}
