package proxy

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/certs"
	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/auth"
)

// testBasicAuth is what the tests' phones send: Basic credentials for the
// EAS User "jdoe" of easURI (auth.mode credentials is the default).
var testBasicAuth = basicAuth(`CORP\jdoe`, "s3cret")

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// withTestAuth adds testBasicAuth to a raw EAS or Autodiscover request
// that has no Authorization header, right after the request line (so
// framing tests keep their exact framing).
func withTestAuth(raw string) string {
	line, rest, ok := strings.Cut(raw, "\r\n")
	l := strings.ToLower(line)
	if !ok || !strings.Contains(l, "/microsoft-server-activesync") && !strings.Contains(l, "/autodiscover/") ||
		strings.Contains(strings.ToLower(rest), "\r\nauthorization:") || strings.HasPrefix(strings.ToLower(rest), "authorization:") {
		return raw
	}
	return line + "\r\nAuthorization: " + testBasicAuth + "\r\n" + rest
}

// metricsText scrapes the admin handler's /metrics.
func metricsText(t testing.TB, s *Server) string {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/metrics")
	s.AdminHandler()(&ctx)
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("/metrics: %d", ctx.Response.StatusCode())
	}
	return string(ctx.Response.Body())
}

func wantMetrics(t testing.TB, s *Server, lines ...string) {
	t.Helper()
	body := metricsText(t, s)
	for _, l := range lines {
		if !strings.Contains(body, l) {
			t.Errorf("/metrics lacks %s", l)
		}
	}
}

// authYAML is testYAML with extra YAML appended (auth, state, upstreams
// identity header).
func authYAML(urls []string, extra map[string]string, more string) string {
	return testYAML(urls, extra) + more
}

// TestAuthnCredentials drives auth.mode credentials through the gateway:
// what is refused locally (status, challenge, reason in log and metrics),
// what reaches the CAS, and the identity header rule.
func TestAuthnCredentials(t *testing.T) {
	cas := newFakeCAS(t)
	logPath := t.TempDir() + "/access.log"
	p := startProxy(t, mustParse(t, authYAML([]string{cas.url()}, map[string]string{"access_log": logPath},
		"auth:\n  mode: credentials\n")))
	cases := []struct {
		name      string
		hdr       map[string]string
		status    int
		challenge bool
		reaches   bool
	}{
		{"no credentials", map[string]string{"Authorization": ""}, 401, true, false},
		{"Bearer token", map[string]string{"Authorization": "Bearer eyJhbGciOi"}, 401, true, false},
		{"Basic of another user", map[string]string{"Authorization": basicAuth("mallory@corp.example.com", "x")}, 403, false, false},
		{"Basic with an empty user part", map[string]string{"Authorization": basicAuth(`CORP\`, "x")}, 401, true, false},
		{"Basic of the EAS user, UPN form", map[string]string{"Authorization": basicAuth("JDOE@corp.example.com", "s3cret")}, 200, false, true},
		{"Basic of the EAS user, NetBIOS form", nil, 200, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := cas.count.Load()
			resp, err := p.do(t, "FolderSync", "ApplDMPL69PZF18P", nil, tc.hdr)
			if err != nil {
				t.Fatal(err)
			}
			defer fasthttp.ReleaseResponse(resp)
			if resp.StatusCode() != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode(), tc.status)
			}
			chal := string(resp.Header.Peek("WWW-Authenticate"))
			if tc.challenge != (chal != "") || (chal != "" && !strings.HasPrefix(chal, `Basic realm="`)) {
				t.Fatalf("WWW-Authenticate %q", chal)
			}
			if got := cas.count.Load() > before; got != tc.reaches {
				t.Fatalf("reached the CAS = %v, want %v", got, tc.reaches)
			}
		})
	}
	reqs := cas.requests()
	if got := reqs[len(reqs)-1].header["authorization"]; got != testBasicAuth {
		t.Errorf("the CAS got Authorization %q, want the phone's Basic credentials unchanged", got)
	}
	wantMetrics(t, p.s,
		`easgate_rejected_requests_total{reason="no_credentials"} 1`,
		`easgate_rejected_requests_total{reason="unsupported_scheme"} 1`,
		`easgate_rejected_requests_total{reason="user_mismatch"} 1`,
		`easgate_rejected_requests_total{reason="bad_credentials"} 1`,
		`easgate_auth_accepted_total{method="basic"} 2`)
	var data []byte
	waitFor(t, "six access-log lines", func() bool {
		data, _ = os.ReadFile(logPath)
		return strings.Count(string(data), "\n") >= 6
	})
	for _, why := range []string{`"why":"no_credentials"`, `"why":"unsupported_scheme"`, `"why":"user_mismatch"`, `"why":"bad_credentials"`} {
		if !strings.Contains(string(data), why) {
			t.Errorf("access log lacks %s:\n%s", why, data)
		}
	}
	if !strings.Contains(string(data), `"auth":"basic"`) {
		t.Errorf("access log lacks the auth method:\n%s", data)
	}
	if strings.Contains(string(data), "s3cret") || strings.Contains(string(data), "eyJhbGciOi") {
		t.Error("a secret reached the access log")
	}
}

// TestAuthnIdentityHeaderStripped: a phone cannot choose the identity the
// CAS trusts: its copy of upstreams.identity_header never arrives, on the
// EAS path and on Autodiscover.
func TestAuthnIdentityHeaderStripped(t *testing.T) {
	cas := newFakeCAS(t)
	cfg := mustParse(t, strings.Replace(testYAML([]string{cas.url()}, nil), "upstreams:\n", "upstreams:\n  identity_header: X-EASGate-User\n", 1))
	p2 := startProxy(t, cfg)
	resp, err := p2.do(t, "FolderSync", "ApplDMPL69PZF18P", nil, map[string]string{"X-EASGate-User": "ceo@corp.example.com"})
	if err != nil || resp.StatusCode() != 200 {
		t.Fatalf("%v %d", err, resp.StatusCode())
	}
	fasthttp.ReleaseResponse(resp)
	status, _, _ := rawRequest(t, p2.addr, "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nX-EASGate-User: ceo@corp.example.com\r\nContent-Length: 0\r\n\r\n")
	if status != 200 {
		t.Fatalf("autodiscover: %d", status)
	}
	for _, r := range cas.requests() {
		if v, ok := r.header["x-easgate-user"]; ok {
			t.Errorf("%s %s reached the CAS with X-EASGate-User %q", r.method, r.uri, v)
		}
	}
}

// TestAuthnSubject: the policy subject gets the gateway's method and the
// certificate identity.
func TestAuthnSubject(t *testing.T) {
	x := &exchange{}
	var r eas.Request
	r.AuthUser = []byte("jdoe")
	if x.authMethodOf(&r) != policy.AuthBasic {
		t.Error("without authenticate, a Basic request is basic")
	}
	x.auth.decided, x.auth.method = true, policy.AuthBoth
	sc := x.scratch()
	sc.cert = certs.Identity{Name: "jdoe@corp.example.com"}
	sc.certBytes = sc.certBuf[:copy(sc.certBuf[:], sc.cert.Name)]
	if x.authMethodOf(&r) != policy.AuthBoth || string(x.certIdentity()) != "jdoe@corp.example.com" {
		t.Errorf("method %s identity %q", x.authMethodOf(&r), x.certIdentity())
	}
	x.dropScratch()
	if x.certIdentity() != nil {
		t.Errorf("identity %q after the inspection", x.certIdentity())
	}
}

// TestLogAuthCertIdentity: the certificate identity outlives the
// inspection's scratch: the access log still names it.
func TestLogAuthCertIdentity(t *testing.T) {
	x := &exchange{}
	x.auth.decided, x.auth.method, x.auth.certName = true, policy.AuthCertificate, "jdoe@corp.example.com"
	line := string(x.logAuth(nil))
	if !strings.Contains(line, `"cert_identity":"jdoe@corp.example.com"`) || !strings.Contains(line, `"auth":"certificate"`) {
		t.Fatalf("log line %s", line)
	}
}

func TestWithTestAuth(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"POST /Microsoft-Server-ActiveSync?Cmd=Sync HTTP/1.1\r\nHost: x\r\n\r\n",
			"POST /Microsoft-Server-ActiveSync?Cmd=Sync HTTP/1.1\r\nAuthorization: " + testBasicAuth + "\r\nHost: x\r\n\r\n"},
		{"POST /Microsoft-Server-ActiveSync HTTP/1.1\r\nauthorization: Basic eA==\r\n\r\n", ""},
		{"GET /owa/ HTTP/1.1\r\nHost: x\r\n\r\n", ""},
	} {
		want := tc.want
		if want == "" {
			want = tc.in
		}
		if got := withTestAuth(tc.in); got != want {
			t.Errorf("withTestAuth(%q) = %q", tc.in, got)
		}
	}
}

// TestAuthnInspectAllocs: the pipeline before the upstream call stays
// allocation-free with the authentication step, also when the lockout
// shield has records of other users and addresses.
func TestAuthnInspectAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	cas := newFakeCAS(t)
	s, err := newServer(mustParse(t, testYAML([]string{cas.url()}, nil)), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.cur.Load().close()
	st := s.cur.Load()
	for i := range 50 {
		st.authn.shield.Record([]byte(fmt.Sprintf("user%d", i)), []byte("dev"), netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), []byte("pw"), auth.RouteEAS, 401, time.Now())
	}
	// jdoe has a failed password on record too: Allow digests the password.
	st.authn.shield.Record([]byte("jdoe"), []byte("other"), netip.Addr{}, []byte("old"), auth.RouteEAS, 401, time.Now())
	ctx := newTestCtx("FolderSync", nil)
	r := new(eas.Request)
	x := new(exchange)
	run := func() {
		*x = exchange{s: s, st: st, route: routeEAS} // a 200 to an EAS command: the shield remembers the device's password
		if done, _ := s.inspect(ctx, x, r); done {
			t.Fatalf("inspect answered: %d %s", x.status, x.reason)
		}
		x.applyUpstreamIdentity(&ctx.Request.Header)
		s.authnRecord(x, 200)
	}
	run()
	if x.auth.method != policy.AuthBasic {
		t.Fatalf("method %s", x.auth.method)
	}
	if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
		t.Fatalf("%v allocations per request", allocs)
	}
	if n := st.authn.shield.Stats().KnownDevices; n != 1 {
		t.Fatalf("the success did not reach the shield: %d known devices", n)
	}
}

func TestParseBasic(t *testing.T) {
	for _, tc := range []struct {
		in                string
		scheme, login, pw string
		ok                bool
	}{
		{in: basicAuth(`CORP\jdoe`, "s3cret"), scheme: "Basic", login: `CORP\jdoe`, pw: "s3cret", ok: true},
		{in: "basic " + strings.TrimRight(base64.StdEncoding.EncodeToString([]byte("jdoe@corp.example.com:pa:ss")), "="), scheme: "basic", login: "jdoe@corp.example.com", pw: "pa:ss", ok: true},
		{in: "Basic  " + base64.StdEncoding.EncodeToString([]byte("jdoe:")) + " ", scheme: "Basic", login: "jdoe", pw: "", ok: true},
		{in: "", scheme: "", ok: true},
		{in: "Negotiate YIIFyw==", scheme: "Negotiate", ok: true},
		{in: "Basic", scheme: "Basic"},
		{in: "Basic !!!!", scheme: "Basic"},
		{in: "Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon")), scheme: "Basic"},
		{in: "Basic " + base64.StdEncoding.EncodeToString([]byte(":pw")), scheme: "Basic"},
		{in: "Basic " + base64.StdEncoding.EncodeToString([]byte("jd\roe:pw")), scheme: "Basic"},
		{in: "Basic " + strings.Repeat("QUFB", 1000), scheme: "Basic"},
	} {
		var buf [eas.MaxAuthorizationLen]byte
		scheme, login, pw, ok := parseBasic([]byte(tc.in), buf[:])
		if string(scheme) != tc.scheme || string(login) != tc.login || string(pw) != tc.pw || ok != tc.ok {
			t.Errorf("parseBasic(%.40q) = %q, %q, (%d bytes), %v", tc.in, scheme, login, len(pw), ok)
		}
	}
}

// FuzzParseBasic: arbitrary Authorization values never panic, and what
// parses as Basic re-encodes to the same credentials.
func FuzzParseBasic(f *testing.F) {
	data, err := os.ReadFile("auth/testdata/logins.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" && l[0] != '#' {
			f.Add([]byte(basicAuth(l, "Winter2026!")))
		}
	}
	f.Add([]byte("Negotiate YIIFyw=="))
	f.Add([]byte("Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9"))
	f.Fuzz(func(t *testing.T, v []byte) {
		var buf [eas.MaxAuthorizationLen]byte
		scheme, login, pw, ok := parseBasic(v, buf[:])
		if !ok || len(login) == 0 {
			return
		}
		if !strings.EqualFold(string(scheme), "Basic") {
			t.Fatalf("credentials for scheme %q", scheme)
		}
		for _, c := range login {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("control character in %q", login)
			}
		}
		cred := append(append(append([]byte(nil), login...), ':'), pw...)
		if !strings.Contains(string(v), strings.TrimRight(base64.StdEncoding.EncodeToString(cred), "=")) {
			t.Fatalf("%q does not re-encode to %q", cred, v)
		}
	})
}

// TestAuthnPassSchemes: with auth.pass_schemes, Outlook's Bearer token (hybrid
// modern authentication) reaches the CAS unchanged and the CAS's answer
// comes back; an unlisted scheme is still refused locally.
func TestAuthnPassSchemes(t *testing.T) {
	cas := newFakeCAS(t)
	p := startProxy(t, mustParse(t, authYAML([]string{cas.url()}, nil,
		"auth:\n  mode: credentials\n  pass_schemes: [Bearer]\n")))
	before := cas.count.Load()
	resp, err := p.do(t, "FolderSync", "BF36923991ADFBA9", nil, map[string]string{"Authorization": "Bearer eyJ0eXAiOiJKV1Qi"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 200 || cas.count.Load() != before+1 {
		t.Fatalf("Bearer: status %d, reached CAS %v", resp.StatusCode(), cas.count.Load() > before)
	}
	fasthttp.ReleaseResponse(resp)
	reqs := cas.requests()
	if got := reqs[len(reqs)-1].header["authorization"]; got != "Bearer eyJ0eXAiOiJKV1Qi" {
		t.Fatalf("the CAS got Authorization %q, want the phone's Bearer token unchanged", got)
	}
	resp, err = p.do(t, "FolderSync", "BF36923991ADFBA9", nil, map[string]string{"Authorization": "Negotiate YIIFyw=="})
	if err != nil {
		t.Fatal(err)
	}
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 401 || cas.count.Load() != before+1 {
		t.Fatalf("Negotiate (not listed): status %d, CAS count %d", resp.StatusCode(), cas.count.Load()-before)
	}
}
