package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/eas"
)

// The tests of this file reproduce the ways around a decision that a
// hostile test of the gateway found (issue 12), through the real gateway
// and a CAS stand-in that records every request byte for byte. For each,
// they assert what reached the CAS: no request of a refused device in any
// spelling, never two Authorization headers, never a header only easgate
// may set.

// wireCAS is a CAS stand-in that records each request as it arrived on the
// wire (request line, every header line, body) and answers 200.
type wireCAS struct {
	ln   net.Listener
	mu   sync.Mutex
	reqs []wireRequest
}

type wireRequest struct {
	method, target string
	headers        []string // "Name: value" as received, in order
	body           []byte
}

// header returns every value of the header name (ASCII case ignored).
func (r wireRequest) header(name string) []string {
	var out []string
	for _, l := range r.headers {
		k, v, _ := strings.Cut(l, ":")
		if strings.EqualFold(k, name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// read is the server side's reading of the request (aspnet_test.go).
func (r wireRequest) read() aspRequest { return aspRead(r.target, r.headers) }

func newWireCAS(t testing.TB) *wireCAS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &wireCAS{ln: ln}
	go c.serve()
	t.Cleanup(func() { _ = ln.Close() })
	return c
}

func (c *wireCAS) url() string { return "http://" + c.ln.Addr().String() }

func (c *wireCAS) serve() {
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		go c.serveConn(conn)
	}
}

func (c *wireCAS) serveConn(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		parts := strings.SplitN(strings.TrimRight(line, "\r\n"), " ", 3)
		if len(parts) != 3 {
			return
		}
		req := wireRequest{method: parts[0], target: parts[1]}
		n := 0
		for {
			h, err := br.ReadString('\n')
			if err != nil {
				return
			}
			h = strings.TrimRight(h, "\r\n")
			if h == "" {
				break
			}
			req.headers = append(req.headers, h)
			if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(k, "Content-Length") {
				n, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		req.body = make([]byte, n)
		if _, err := io.ReadFull(br, req.body); err != nil {
			return
		}
		if req.target != "/hc" {
			c.mu.Lock()
			c.reqs = append(c.reqs, req)
			c.mu.Unlock()
		}
		if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"); err != nil {
			return
		}
	}
}

func (c *wireCAS) requests() []wireRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]wireRequest(nil), c.reqs...)
}

// crafted counts the crafted requests this file's tests send, for the
// figure in the closing note of issue 12.
var crafted atomic.Int64

// sendRaw writes one raw request to the gateway (over TLS when cfg is
// set) and returns the status easgate answered, 0 when it closed the
// connection without an answer.
func sendRaw(t testing.TB, addr string, cfg *tls.Config, raw string) int {
	t.Helper()
	crafted.Add(1)
	var c net.Conn
	var err error
	if cfg != nil {
		c, err = tls.Dial("tcp", addr, cfg)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		return 0
	}
	return resp.StatusCode()
}

// easRaw builds a raw EAS POST with a Basic login (none when login is "")
// and extra header lines.
func easRaw(target, login string, body []byte, extra ...string) string {
	var b strings.Builder
	b.WriteString("POST " + target + " HTTP/1.1\r\nHost: mail.corp.example.com\r\n")
	if login != "" {
		b.WriteString("Authorization: " + basicAuth(login, "s3cret") + "\r\n")
	}
	b.WriteString("MS-ASProtocolVersion: 14.1\r\nUser-Agent: Apple-iPhone9C1/1402.100\r\n")
	b.WriteString("Content-Type: application/vnd.ms-sync.wbxml\r\n")
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	b.Write(body)
	return b.String()
}

// bypassPolicy is alice's: one device blocked, one allowed as a personal
// exemption, everything else blocked by default, so any request of hers
// that reaches the CAS through a bypass shows.
const bypassPolicy = `  default_access: block
  users:
    alice@corp.example.com:
      allowed_devices: [ALICEALLOWED1]
      blocked_devices: [ALICEBLOCKED1]
`

// reached returns the requests of device (ASCII case ignored) that reached
// the CAS, as the server side reads them.
func reached(cas *wireCAS, device string) []aspRequest {
	var out []aspRequest
	for _, r := range cas.requests() {
		if a := r.read(); strings.EqualFold(a.deviceID, device) {
			out = append(out, a)
		}
	}
	return out
}

func TestBypassDeviceIDCase(t *testing.T) {
	cas := newWireCAS(t)
	// Default access allow, as in the finding: a spelling that missed the
	// blocked list would be allowed.
	p := startProxy(t, mustParse(t, enforceYAML(cas.url(), t.TempDir(), strings.Replace(bypassPolicy, "default_access: block", "default_access: allow", 1))))
	// The allowed device syncs: the CAS stand-in and the path work.
	if st := sendRaw(t, p.addr, nil, easRaw("/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=alice&DeviceId=ALICEALLOWED1&DeviceType=iPhone", "alice@corp.example.com", nil)); st != 200 {
		t.Fatalf("allowed device: status %d", st)
	}
	sent := 0
	for _, id := range []string{"ALICEBLOCKED1", "aliceblocked1", "AliceBlocked1", "aLiCeBlOcKeD1"} {
		for _, cmd := range []string{"FolderSync", "Sync", "SendMail", "Ping", "ItemOperations"} {
			target := "/Microsoft-Server-ActiveSync?Cmd=" + cmd + "&User=alice&DeviceId=" + id + "&DeviceType=iPhone"
			st := sendRaw(t, p.addr, nil, easRaw(target, `CORP\alice`, nil))
			sent++
			if st == 0 {
				t.Errorf("%s %s: no answer", id, cmd)
			}
		}
		// The base64 form of the same request.
		r := &eas.Request{Version: eas.V141, Command: eas.CmdSync, DeviceID: []byte(id), DeviceType: []byte("iPhone")}
		target := "/Microsoft-Server-ActiveSync?" + string(eas.AppendBase64Query(nil, r))
		sendRaw(t, p.addr, nil, strings.Replace(easRaw(target, "alice@corp.example.com", nil), "MS-ASProtocolVersion: 14.1\r\n", "", 1))
		sent++
	}
	if got := reached(cas, "ALICEBLOCKED1"); len(got) != 0 {
		t.Fatalf("%d of %d requests of the blocked device reached the CAS: %+v", len(got), sent, got)
	}
	if got := reached(cas, "ALICEALLOWED1"); len(got) != 1 {
		t.Fatalf("the allowed device reached the CAS %d times, want 1", len(got))
	}
}

func TestBypassCertificateWithoutUser(t *testing.T) {
	pki := newTestPKI(t)
	srvCert, srvKey, _ := pki.issue(t, "gateway", "", true)
	aliceCert, aliceKey, _ := pki.issue(t, "alice-phone", "alice@corp.example.com", false)
	cas := newWireCAS(t)
	dir := t.TempDir()
	y := tlsListenYAML(enforceYAML(cas.url(), dir, bypassPolicy), srvCert, srvKey,
		"    client_certificates:\n      mode: optional\n      trusted_cas: "+pki.caPath+"\n")
	y += "auth:\n  mode: either\n  domains: [corp.example.com]\n"
	p := startProxy(t, mustParse(t, y))
	tlsCfg := pki.clientTLS(t, aliceCert, aliceKey)

	// No User= and no Authorization: the certificate's identity is alice,
	// and her blocked device stays blocked, in plain and base64 form.
	for _, cmd := range []string{"FolderSync", "Sync", "SendMail"} {
		sendRaw(t, p.addr, tlsCfg, easRaw("/Microsoft-Server-ActiveSync?Cmd="+cmd+"&DeviceId=ALICEBLOCKED1&DeviceType=iPhone", "", nil))
	}
	r := &eas.Request{Version: eas.V141, Command: eas.CmdSendMail, DeviceID: []byte("ALICEBLOCKED1"), DeviceType: []byte("iPhone")}
	sendRaw(t, p.addr, tlsCfg, strings.Replace(easRaw("/Microsoft-Server-ActiveSync?"+string(eas.AppendBase64Query(nil, r)), "", nil), "MS-ASProtocolVersion: 14.1\r\n", "", 1))
	if got := reached(cas, "ALICEBLOCKED1"); len(got) != 0 {
		t.Fatalf("a certificate-only request without User= of the blocked device reached the CAS %d times", len(got))
	}
	// Her exemption applies to her certificate without User= too.
	if st := sendRaw(t, p.addr, tlsCfg, easRaw("/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=ALICEALLOWED1&DeviceType=iPhone", "", nil)); st != 200 {
		t.Fatalf("certificate-only request of the allowed device: status %d", st)
	}
	waitFor(t, "the access log shows the certificate's identity as the user", func() bool {
		data, _ := os.ReadFile(filepath.Join(dir, "access.log"))
		return strings.Contains(string(data), `"user":"alice@corp.example.com","device_id":"ALICEBLOCKED1"`) &&
			!strings.Contains(string(data), `"user":"","device_id":"ALICEBLOCKED1"`)
	})
}

func TestBypassOtherDomain(t *testing.T) {
	for _, tt := range []struct {
		name, domains string
		want          int
	}{
		// With auth.domains, a user of another domain is refused as Exchange
		// refuses an unknown user.
		{"auth.domains set", "  domains: [corp.example.com]\n", 401},
		// Without, alice@evil.example.com is a user of her own, not alice:
		// default_access block answers her (HTTP 200 with Status 129 at 14.1).
		{"no auth.domains", "  domains: []\n", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cas := newWireCAS(t)
			y := enforceYAML(cas.url(), t.TempDir(), bypassPolicy) + "auth:\n  mode: credentials\n" + tt.domains
			p := startProxy(t, mustParse(t, y))
			for _, login := range []string{"alice@evil.example.com", `EVIL\alice`, "alice@corp.example.com.evil.example"} {
				for _, q := range []string{
					"Cmd=Sync&DeviceId=ALICEALLOWED1&DeviceType=iPhone",
					"Cmd=SendMail&DeviceId=ALICEALLOWED1&DeviceType=iPhone&SaveInSent=T",
				} {
					if st := sendRaw(t, p.addr, nil, easRaw("/Microsoft-Server-ActiveSync?"+q, login, []byte("x"))); st != tt.want {
						t.Errorf("%s: status %d, want %d", login, st, tt.want)
					}
				}
			}
			if got := reached(cas, "ALICEALLOWED1"); len(got) != 0 {
				t.Fatalf("another domain's alice reached the CAS with alice's exemption %d times", len(got))
			}
		})
	}
}

// TestBypassTargets: requests that easgate and IIS/ASP.NET could read
// differently get 400 and never reach the CAS; the CAS gets the normalised
// path and the query rebuilt from what easgate parsed.
func TestBypassTargets(t *testing.T) {
	cas := newWireCAS(t)
	p := startProxy(t, mustParse(t, enforceYAML(cas.url(), t.TempDir(), bypassPolicy)))
	const q = "Cmd=Sync&User=alice&DeviceId=ALICEALLOWED1&DeviceType=iPhone"
	refused := []struct{ name, target string }{
		{"dot-dot with an escaped slash", "/ecp/..%2FMicrosoft-Server-ActiveSync?" + q},
		{"dot segment", "/Microsoft-Server-ActiveSync/./?" + q},
		{"dot-dot", "/ecp/../Microsoft-Server-ActiveSync?" + q},
		{"double slash", "//Microsoft-Server-ActiveSync?" + q},
		{"escaped letter in the path", "/Microsoft%2DServer-ActiveSync?" + q},
		{"fragment", "/Microsoft-Server-ActiveSync?" + q + "#x"},
		{"escaped parameter name", "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&Device%49d=ALICEBLOCKED1&DeviceId=ALICEALLOWED1&DeviceType=iPhone"},
		{"escaped Cmd name", "/Microsoft-Server-ActiveSync?Cm%64=SendMail&User=alice&DeviceId=ALICEALLOWED1&DeviceType=iPhone"},
		{"duplicate DeviceId", "/Microsoft-Server-ActiveSync?" + q + "&deviceid=ALICEBLOCKED1"},
		{"duplicate Cmd", "/Microsoft-Server-ActiveSync?Cmd=Sync&" + q},
		{"%u escape", "/Microsoft-Server-ActiveSync?Cmd=Sync&User=%u0061lice&DeviceId=ALICEALLOWED1&DeviceType=iPhone"},
		{"overlong UTF-8", "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice%C0%AE&DeviceId=ALICEALLOWED1&DeviceType=iPhone"},
		{"name with a dotless i", "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&Dev%C4%B1ceId=X&DeviceId=ALICEALLOWED1&DeviceType=iPhone"},
		{"pair without =", "/Microsoft-Server-ActiveSync?" + q + "&jAAJBBBpUGhvbmUxMjM0NTY3ODkwAAZpUGhvbmU="},
	}
	for _, tt := range refused {
		if st := sendRaw(t, p.addr, nil, easRaw(tt.target, "alice", nil)); st != 400 {
			t.Errorf("%s: status %d, want 400", tt.name, st)
		}
	}
	if n := len(cas.requests()); n != 0 {
		t.Fatalf("%d ambiguous requests reached the CAS: %+v", n, cas.requests())
	}

	// An accepted request: unknown parameters stay behind, and the CAS
	// reads exactly what easgate decided on.
	if st := sendRaw(t, p.addr, nil, easRaw("/microsoft-server-activesync?cmd=Sync&Foo=%zz&user=alice&DEVICEID=ALICEALLOWED1&DeviceType=iPhone&Bar=1", "alice", nil)); st != 200 {
		t.Fatalf("accepted request: status %d", st)
	}
	reqs := cas.requests()
	if len(reqs) != 1 {
		t.Fatalf("CAS saw %d requests", len(reqs))
	}
	if got, want := reqs[0].target, "/microsoft-server-activesync?Cmd=Sync&User=alice&DeviceId=ALICEALLOWED1&DeviceType=iPhone"; got != want {
		t.Fatalf("CAS got %s, want %s", got, want)
	}
	// The base64 form is forwarded in base64, re-encoded, without the
	// deprecated tags easgate does not read, escaped as the phone escaped it.
	r := &eas.Request{Version: eas.V141, Command: eas.CmdSync, DeviceID: []byte("ALICEALLOWED1"), DeviceType: []byte("iPhone"), User: []byte("alice")}
	b64 := eas.AppendBase64Query(nil, r)
	escaped := strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(string(b64))
	if st := sendRaw(t, p.addr, nil, strings.Replace(easRaw("/Microsoft-Server-ActiveSync?"+escaped, "alice", nil), "MS-ASProtocolVersion: 14.1\r\n", "", 1)); st != 200 {
		t.Fatalf("base64 request: status %d", st)
	}
	reqs = cas.requests()
	if len(reqs) != 2 || reqs[1].target != "/Microsoft-Server-ActiveSync?"+escaped {
		t.Fatalf("base64 request reached the CAS as %q", reqs[len(reqs)-1].target)
	}
	if a := reqs[1].read(); !a.ok || a.deviceID != "ALICEALLOWED1" || a.user != "alice" || a.cmd != "Code0" {
		t.Fatalf("the CAS reads the forwarded base64 request as %+v", a)
	}
	// A base64 query with a version header that says otherwise: two readings.
	if st := sendRaw(t, p.addr, nil, strings.Replace(easRaw("/Microsoft-Server-ActiveSync?"+string(b64), "alice", nil), "MS-ASProtocolVersion: 14.1", "MS-ASProtocolVersion: 12.1", 1)); st != 400 {
		t.Fatalf("base64 query with a conflicting version header: status %d", st)
	}
	if len(cas.requests()) != 2 {
		t.Fatal("the conflicting request reached the CAS")
	}
}

// TestBypassHeaders: two Authorization headers, a second copy of any
// header easgate reads, and the headers only easgate may set.
func TestBypassHeaders(t *testing.T) {
	cas := newWireCAS(t)
	y := strings.Replace(enforceYAML(cas.url(), t.TempDir(), bypassPolicy), "upstreams:\n", "upstreams:\n  identity_header: X-EASGate-User\n", 1)
	p := startProxy(t, mustParse(t, y))
	target := "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=ALICEALLOWED1&DeviceType=iPhone"
	for _, dup := range []string{
		"Authorization: " + basicAuth("bob", "x"),
		"MS-ASProtocolVersion: 12.1",
		"User-Agent: Outlook-iOS/2.0",
		"X-MS-PolicyKey: 1",
		"Host: other.example.com",
		"Content-Type: text/plain",
	} {
		extra := []string{dup}
		if strings.HasPrefix(dup, "X-MS-PolicyKey") {
			extra = append(extra, "X-MS-PolicyKey: 2")
		}
		if st := sendRaw(t, p.addr, nil, easRaw(target, "alice", nil, extra...)); st != 400 {
			t.Errorf("second %s: status %d, want 400", strings.SplitN(dup, ":", 2)[0], st)
		}
	}
	if n := len(cas.requests()); n != 0 {
		t.Fatalf("%d requests with a repeated header reached the CAS", n)
	}

	// Headers only easgate may set, in every spelling, from a peer that is
	// not a trusted proxy.
	spoof := []string{"X_EASGate_User: ceo@corp.example.com", "x-easgate-user: ceo@corp.example.com",
		"X-Forwarded-For: 10.6.6.6", "X-Forwarded-Host: evil.example.com", "X-Forwarded-Proto: https",
		"X-Forwarded-Port: 443", "Forwarded: for=10.6.6.6;proto=https", "X_Forwarded_For: 10.6.6.6"}
	if st := sendRaw(t, p.addr, nil, easRaw(target, "alice", nil, spoof...)); st != 200 {
		t.Fatalf("status %d", st)
	}
	reqs := cas.requests()
	if len(reqs) != 1 {
		t.Fatalf("CAS saw %d requests", len(reqs))
	}
	got := reqs[0]
	if a := got.header("Authorization"); len(a) != 1 {
		t.Errorf("CAS got %d Authorization headers", len(a))
	}
	if v := got.header("X-Forwarded-For"); len(v) != 1 || v[0] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the peer only", v)
	}
	if v := got.header("X-Forwarded-Proto"); len(v) != 1 || v[0] != "http" {
		t.Errorf("X-Forwarded-Proto = %q", v)
	}
	for _, l := range got.headers {
		k, _, _ := strings.Cut(l, ":")
		if strings.ContainsRune(k, '_') || strings.EqualFold(k, "X-EASGate-User") || strings.EqualFold(k, "Forwarded") ||
			strings.EqualFold(k, "X-Forwarded-Host") || strings.EqualFold(k, "X-Forwarded-Port") {
			t.Errorf("CAS got %q", l)
		}
	}

	// Many of them, and one whose name is too long to remove by name: all
	// removed, or the request refused; never forwarded.
	var many []string
	for i := range 150 {
		many = append(many, "X_Junk_"+strconv.Itoa(i)+": 1", "X-Forwarded-Junk-"+strconv.Itoa(i)+": 1")
	}
	if st := sendRaw(t, p.addr, nil, easRaw(target, "alice", nil, many...)); st != 200 {
		t.Fatalf("150 underscore headers: status %d", st)
	}
	if st := sendRaw(t, p.addr, nil, easRaw(target, "alice", nil, "X_"+strings.Repeat("a", 300)+": 1")); st != 400 {
		t.Fatalf("a 302-byte underscore header name: status %d, want 400", st)
	}
	for _, r := range cas.requests() {
		for _, l := range r.headers {
			if k, _, _ := strings.Cut(l, ":"); strings.ContainsRune(k, '_') || strings.HasPrefix(strings.ToLower(k), "x-forwarded-junk") {
				t.Fatalf("CAS got %q", l)
			}
		}
	}

	// From a trusted proxy the forwarding headers are kept and extended.
	cas2 := newWireCAS(t)
	y2 := strings.Replace(enforceYAML(cas2.url(), t.TempDir(), bypassPolicy), "  plain_http: true\n", "  plain_http: true\n  trusted_proxies: [127.0.0.0/8]\n", 1)
	p2 := startProxy(t, mustParse(t, y2))
	if st := sendRaw(t, p2.addr, nil, easRaw(target, "alice", nil, "X-Forwarded-For: 192.0.2.7", "X-Forwarded-Host: mail.corp.example.com", "X_Custom: 1")); st != 200 {
		t.Fatalf("trusted proxy: status %d", st)
	}
	got = cas2.requests()[0]
	if v := got.header("X-Forwarded-For"); len(v) != 1 || v[0] != "192.0.2.7, 127.0.0.1" {
		t.Errorf("trusted proxy: X-Forwarded-For = %q", v)
	}
	if v := got.header("X-Forwarded-Host"); len(v) != 1 {
		t.Errorf("trusted proxy: X-Forwarded-Host = %q", v)
	}
	if v := got.header("X_Custom"); len(v) != 0 {
		t.Errorf("trusted proxy: a header with '_' reached the CAS: %q", v)
	}
}

// TestBypassFigures logs how many crafted requests this file sent (run
// last: go test runs tests in source order).
func TestBypassFigures(t *testing.T) {
	t.Logf("issue 12 regression tests sent %d crafted requests through the gateway", crafted.Load())
}

// TestReloadKeepsDomains: auth.domains names every stored record, so a
// reload that changes it is refused (a restart moves the records).
func TestReloadKeepsDomains(t *testing.T) {
	cas := newWireCAS(t)
	y := enforceYAML(cas.url(), t.TempDir(), bypassPolicy)
	p := startProxy(t, mustParse(t, y))
	other := strings.Replace(withDomains(y), "domains: [corp.example.com]", "domains: [corp.example.com, partner.example.org]", 1)
	if err := p.s.reload(mustParse(t, other)); err == nil || !strings.Contains(err.Error(), "auth.domains") {
		t.Fatalf("reload with other domains: %v", err)
	}
	if err := p.s.reload(mustParse(t, y)); err != nil {
		t.Fatalf("reload with the same domains: %v", err)
	}
}
