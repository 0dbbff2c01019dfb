package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/internal/testkit"
)

// rawPing is a held Ping as a phone sends it; extra is more header lines.
func rawPing(t testing.TB, device, extra string) string {
	body := testkit.PingBody(t, 480)
	return "POST " + easURI("Ping", "jdoe", device) + " HTTP/1.1\r\nHost: mail.example.com\r\nMS-ASProtocolVersion: 14.1\r\nAuthorization: " + testBasicAuth + "\r\n" +
		"User-Agent: Apple-iPhone9C1/1402.100\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n" + extra +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)
}

func rawFolderSync(device string) string {
	return "POST " + easURI("FolderSync", "jdoe", device) + " HTTP/1.1\r\nHost: mail.example.com\r\n" +
		"MS-ASProtocolVersion: 14.1\r\nAuthorization: " + testBasicAuth + "\r\nUser-Agent: Apple-iPhone9C1/1402.100\r\nContent-Length: 0\r\n\r\n"
}

func readResp(t testing.TB, br *bufio.Reader) *fasthttp.Response {
	t.Helper()
	resp := &fasthttp.Response{}
	if err := resp.Read(br); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return resp
}

// heldGoroutines counts the goroutines of hijacked long polls (holding or
// serving a resumed connection).
func heldGoroutines() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("proxy.(*heldPoll)")) {
			n++
		}
	}
	return n
}

// TestHeldPingsHijackedAndServedOn holds Pings on hijacked connections, checks
// the answers and the access log, serves the phones' next requests on the
// same connections (including a second held Ping), and checks that nothing
// is left behind: no goroutine, no hijack count, no tracked connection.
func TestHeldPingsHijackedAndServedOn(t *testing.T) {
	const n = 20
	cas := newFakeCAS(t)
	cas.gate = make(chan struct{})
	logPath := filepath.Join(t.TempDir(), "access.log")
	p := startProxy(t, mustParse(t, testYAML([]string{cas.url()}, map[string]string{"access_log": logPath})))

	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range conns {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i], readers[i] = c, bufio.NewReader(c)
		if _, err := c.Write([]byte(rawPing(t, "dev"+strconv.Itoa(i), "X-Test-Gate: 1\r\n"))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "pings held", func() bool { return cas.gated.Load() == n })
	if got := p.s.conns.Hijacked(); got != n {
		t.Errorf("hijacked %d, want %d", got, n)
	}
	if got := p.s.HeldLongPolls(); got != n {
		t.Errorf("HeldLongPolls %d, want %d", got, n)
	}
	cas.openGate()
	for i, c := range conns {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		resp := readResp(t, readers[i])
		if resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), pingNoChanges) {
			t.Fatalf("ping %d: status %d body % x", i, resp.StatusCode(), resp.Body())
		}
		// The CAS's headers, hop-by-hop ones removed, as on the ordinary path.
		if len(resp.Header.Peek("X-Cas")) == 0 || string(resp.Header.ContentType()) != "application/vnd.ms-sync.wbxml" ||
			resp.Header.ContentLength() != len(pingNoChanges) || resp.ConnectionClose() {
			t.Fatalf("ping %d: header %q", i, resp.Header.String())
		}
		// The connection is served on.
		if _, err := c.Write([]byte(rawFolderSync("dev" + strconv.Itoa(i)))); err != nil {
			t.Fatal(err)
		}
		if resp := readResp(t, readers[i]); resp.StatusCode() != 200 {
			t.Fatalf("request after the held ping on conn %d: status %d", i, resp.StatusCode())
		}
		// And a long poll on a served-on connection is held again.
		if _, err := c.Write([]byte(rawPing(t, "dev"+strconv.Itoa(i), "X-Test-Hold-Ms: 20\r\n"))); err != nil {
			t.Fatal(err)
		}
		if resp := readResp(t, readers[i]); resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), pingNoChanges) {
			t.Fatalf("second ping on conn %d: status %d", i, resp.StatusCode())
		}
	}
	if got := p.s.HeldLongPolls(); got != 0 {
		t.Errorf("HeldLongPolls %d after the answers", got)
	}
	for _, c := range conns {
		_ = c.Close()
	}
	waitFor(t, "hijacked long polls finished", func() bool {
		return p.s.conns.Hijacked() == 0 && p.s.conns.Resumed() == 0 && heldGoroutines() == 0
	})
	waitFor(t, "no upstream request waiting", func() bool {
		for _, b := range p.s.cur.Load().pool.Backends {
			if b.Waiting() > 0 {
				return false
			}
		}
		return true
	})
	// One access-log line per held Ping, with the interval and the time held.
	var lines int
	waitFor(t, "access log written", func() bool {
		data, _ := os.ReadFile(logPath)
		lines = 0
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, `"command":"Ping"`) && strings.Contains(l, `"hold_s":480`) &&
				strings.Contains(l, `"held_s":`) && strings.Contains(l, `"status":200`) {
				lines++
			}
		}
		return lines == 2*n
	})
}

// TestHeldPingPipelined sends a Ping and a FolderSync in one write: the
// FolderSync, which fasthttp had already read past the Ping, is answered
// after the Ping on the same connection.
func TestHeldPingPipelined(t *testing.T) {
	cas := newFakeCAS(t)
	p := startProxy(t, mustParse(t, testYAML([]string{cas.url()}, nil)))
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(rawPing(t, "pipe", "X-Test-Hold-Ms: 50\r\n") + rawFolderSync("pipe"))); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	if resp := readResp(t, br); resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), pingNoChanges) {
		t.Fatalf("ping: status %d body % x", resp.StatusCode(), resp.Body())
	}
	if resp := readResp(t, br); resp.StatusCode() != 200 {
		t.Fatalf("pipelined FolderSync: status %d", resp.StatusCode())
	}
	reqs := cas.requests()
	if len(reqs) != 2 || !strings.Contains(reqs[0].uri, "Cmd=Ping") || !strings.Contains(reqs[1].uri, "Cmd=FolderSync") {
		t.Fatalf("CAS saw %+v", reqs)
	}
}

// TestHeldPingConnectionClose: a phone that asks to close gets its answer
// with Connection: close, and the connection is closed.
func TestHeldPingConnectionClose(t *testing.T) {
	cas := newFakeCAS(t)
	p := startProxy(t, mustParse(t, testYAML([]string{cas.url()}, nil)))
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(rawPing(t, "closer", "Connection: close\r\nX-Test-Hold-Ms: 20\r\n"))); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp := readResp(t, br)
	if resp.StatusCode() != 200 || !resp.ConnectionClose() {
		t.Fatalf("status %d, header %q", resp.StatusCode(), resp.Header.String())
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("connection still open after Connection: close")
	}
	waitFor(t, "hijacked long poll finished", func() bool { return p.s.conns.Hijacked() == 0 && heldGoroutines() == 0 })
}

// TestHeldPingTLS holds a Ping on a hijacked TLS connection and serves the
// next request on it: both reach the CAS as https (fasthttp still sees the
// TLS connection after the hijack).
func TestHeldPingTLS(t *testing.T) {
	dir := t.TempDir()
	gwCert, gwKey, _ := testkit.SelfSignedCert(t, dir, "mail.example.com")
	cas := newFakeCAS(t)
	y := testYAML([]string{cas.url()}, nil)
	y = strings.Replace(y, "  plain_http: true\n", "  tls:\n    certificate: "+gwCert+"\n    key: "+gwKey+"\n", 1)
	s, err := newServer(mustParse(t, y), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	defer s.Shutdown(t.Context())

	roots := x509.NewCertPool()
	pem, _ := os.ReadFile(gwCert)
	roots.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "mail.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if _, err := c.Write([]byte(rawPing(t, "tlsdev", "X-Test-Hold-Ms: 30\r\n"))); err != nil {
		t.Fatal(err)
	}
	if resp := readResp(t, br); resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), pingNoChanges) {
		t.Fatalf("ping over TLS: status %d", resp.StatusCode())
	}
	if _, err := c.Write([]byte(rawFolderSync("tlsdev"))); err != nil {
		t.Fatal(err)
	}
	if resp := readResp(t, br); resp.StatusCode() != 200 {
		t.Fatalf("request after the ping over TLS: status %d", resp.StatusCode())
	}
	reqs := cas.requests()
	if len(reqs) != 2 {
		t.Fatalf("CAS saw %d requests", len(reqs))
	}
	for _, r := range reqs {
		if r.header["x-forwarded-proto"] != "https" {
			t.Errorf("%s reached the CAS with X-Forwarded-Proto %q", r.uri, r.header["x-forwarded-proto"])
		}
	}
}

// TestShutdownLeavesNoHijackedPoll: Shutdown answers a hijacked held Ping
// (as the interval having ended) and returns only when it is done.
func TestShutdownLeavesNoHijackedPoll(t *testing.T) {
	cas := newFakeCAS(t)
	cas.gate = make(chan struct{})
	s, err := newServer(mustParse(t, testYAML([]string{cas.url()}, map[string]string{"drain": "100ms"})), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(rawPing(t, "sd", "X-Test-Gate: 1\r\n"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ping held", func() bool { return cas.gated.Load() == 1 && s.conns.Hijacked() == 1 })
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := s.conns.Hijacked(); n != 0 {
		t.Fatalf("Shutdown returned with %d hijacked long polls", n)
	}
	resp := readResp(t, bufio.NewReader(c))
	if resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), pingNoChanges) || !resp.ConnectionClose() {
		t.Fatalf("cut ping: status %d body % x header %q", resp.StatusCode(), resp.Body(), resp.Header.String())
	}
	waitFor(t, "no hijack goroutine", func() bool { return heldGoroutines() == 0 })
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestHijackedConnectionsAreClosed: when phones hang up after their held
// Pings were answered, easgate closes its side of every connection (a
// swallowed Close would leak one socket per phone per reconnect).
func TestHijackedConnectionsAreClosed(t *testing.T) {
	const n = 30
	// No GC: the runtime's finalizer would close a leaked socket sooner or
	// later and hide the leak.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	cas := newFakeCAS(t)
	p := startProxy(t, mustParse(t, testYAML([]string{cas.url()}, nil)))
	// Warm the upstream pool so its connections are not counted below.
	c0, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	c0.Write([]byte(rawPing(t, "warm", "X-Test-Hold-Ms: 10\r\n")))
	readResp(t, bufio.NewReader(c0))
	c0.Close()
	waitFor(t, "warm-up connection closed", func() bool { return p.s.conns.Resumed() == 0 })
	before := openFDs(t)
	for round := 0; round < 2; round++ {
		for i := 0; i < n; i++ {
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte(rawPing(t, "fd"+strconv.Itoa(i), "X-Test-Hold-Ms: 10\r\n"))); err != nil {
				t.Fatal(err)
			}
			if resp := readResp(t, bufio.NewReader(c)); resp.StatusCode() != 200 {
				t.Fatalf("ping %d: status %d", i, resp.StatusCode())
			}
			c.Close()
		}
	}
	waitFor(t, "server side of the phones' connections closed", func() bool {
		return p.s.conns.Resumed() == 0 && openFDs(t) <= before+4
	})
}
