package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/internal/testkit"
)

// slowYAML is testYAML's plain-HTTP gateway with the given lines under
// listen: (indented by two spaces).
func slowYAML(casURL, listen string) string {
	return strings.Replace(testYAML([]string{casURL}, nil), "  plain_http: true\n", "  plain_http: true\n"+listen, 1)
}

// rawRequestHead is the head of an EAS POST sent by hand, announcing a
// body of length bytes.
func rawRequestHead(cmd, device string, length int, extra string) string {
	return "POST " + easURI(cmd, "jdoe", device) + " HTTP/1.1\r\nHost: gw\r\nMS-ASProtocolVersion: 14.1\r\n" +
		"User-Agent: Apple-iPhone9C1/1402.100\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n" +
		"Authorization: " + testBasicAuth + "\r\n" + extra + "Content-Length: " + strconv.Itoa(length) + "\r\n\r\n"
}

// closedWithin waits until the server closes c (a read of r, which reads
// c, returns an error after whatever answer it sent) and reports how long
// that took, failing when it takes longer than limit.
func closedWithin(t *testing.T, r io.Reader, c net.Conn, limit time.Duration) (answer string, took time.Duration) {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	b, err := io.ReadAll(r)
	took = time.Since(start)
	if isTimeout(err) {
		t.Fatalf("the connection was still open after %s", limit)
	}
	return string(b), took
}

// TestSlowBodyTrickleClosed: the MUST SHOW of issue 12 item 4. 500
// connections announce a body and send one byte a second; each is closed
// by the body timeout (2 s plus the minimum-rate rule), whether its body
// would be read whole (small) or streamed to the CAS (large), and a phone
// is served meanwhile.
func TestSlowBodyTrickleClosed(t *testing.T) {
	raiseFileLimit()
	cas := newFakeCAS(t)
	cfg := mustParse(t, slowYAML(cas.url(), "  timeouts:\n    header: 5s\n    body: 2s\n    body_min_rate: 500\n    idle: 60s\n"))
	p := startProxy(t, cfg)

	const n = 500
	type slow struct {
		c      net.Conn
		closed atomic.Bool
		at     atomic.Int64 // UnixNano of the close
	}
	conns := make([]*slow, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range conns {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		length := 1000 // read whole before the handler
		if i%2 == 1 {
			length = 1 << 20 // streamed to the CAS
		}
		if _, err := io.WriteString(c, rawRequestHead("SendMail", fmt.Sprintf("trickle%d", i), length, "")); err != nil {
			t.Fatal(err)
		}
		s := &slow{c: c}
		conns[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(io.Discard, c) // until the gateway closes it
			s.at.Store(time.Now().UnixNano())
			s.closed.Store(true)
		}()
	}
	// One byte a second on every connection still open.
	stop := make(chan struct{})
	var trickle sync.WaitGroup
	trickle.Add(1)
	go func() {
		defer trickle.Done()
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			for _, s := range conns {
				if !s.closed.Load() {
					_ = s.c.SetWriteDeadline(time.Now().Add(time.Second))
					_, _ = s.c.Write([]byte{'x'})
				}
			}
		}
	}()
	defer func() { close(stop); trickle.Wait() }()

	// A phone is served while the trickling connections are open.
	resp, err := p.do(t, "FolderSync", "phone1", []byte{0x03, 0x01, 0x6A, 0x00}, nil)
	if err != nil {
		t.Fatalf("phone: %v", err)
	}
	if resp.StatusCode() != 200 {
		t.Fatalf("phone: status %d", resp.StatusCode())
	}
	fasthttp.ReleaseResponse(resp)
	open := 0
	for _, s := range conns {
		if !s.closed.Load() {
			open++
		}
	}
	t.Logf("%d of %d trickling connections open when the phone was answered", open, n)
	if open == 0 {
		t.Errorf("the phone was answered only after every trickling connection had closed")
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		left := 0
		for _, s := range conns {
			if !s.closed.Load() {
				left++
			}
		}
		t.Fatalf("%d of %d trickling connections still open after 60 s (body timeout 2 s)", left, n)
	}
	var last time.Duration
	for _, s := range conns {
		last = max(last, time.Duration(s.at.Load()-start.UnixNano()))
	}
	t.Logf("all %d closed; the last %s after the first was opened", n, last.Round(time.Millisecond))
	if got := metricValue(t, p.s, "easgate_client_timeouts_total", map[string]string{"phase": "body"}); got != n {
		t.Errorf("easgate_client_timeouts_total{phase=body} = %v, want %d", got, n)
	}
	if got := metricValue(t, p.s, "easgate_client_timeouts_total", map[string]string{"phase": "idle"}); got != 0 {
		t.Errorf("easgate_client_timeouts_total{phase=idle} = %v: the trickling connections were not closed by the body timeout", got)
	}
	// plain_http: nothing is counted per address.
	if got := metricValue(t, p.s, "easgate_unauthenticated_connections", nil); got != 0 {
		t.Errorf("easgate_unauthenticated_connections = %v under plain_http", got)
	}
}

// TestSlowSteadyBodyNotCut: a 256 KiB body sent in 4 KiB pieces every
// 100 ms (40 KiB/s, well above body_min_rate) takes several times the body
// timeout and reaches the CAS whole, and so does a body that pauses for
// less than the body timeout.
func TestSlowSteadyBodyNotCut(t *testing.T) {
	cas := newFakeCAS(t)
	cfg := mustParse(t, slowYAML(cas.url(), "  timeouts:\n    header: 2s\n    body: 1s\n    body_min_rate: 8KiB\n    idle: 5s\n"))
	p := startProxy(t, cfg)

	body := make([]byte, 256<<10)
	for i := range body {
		body[i] = byte(i * 31)
	}
	sum := sha256.Sum256(body)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, rawRequestHead("SendMail", "steady1", len(body), "")); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(body); off += 4 << 10 {
		if off == 128<<10 {
			time.Sleep(700 * time.Millisecond) // a pause shorter than the body timeout
		}
		if _, err := c.Write(body[off : off+4<<10]); err != nil {
			t.Fatalf("write at %d (%s): %v", off, time.Since(start).Round(time.Millisecond), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	t.Logf("upload took %s", time.Since(start).Round(time.Millisecond))
	if resp.StatusCode() != 200 || string(resp.Header.Peek("X-Body-Len")) != strconv.Itoa(len(body)) ||
		string(resp.Header.Peek("X-Body-Sha256")) != hex.EncodeToString(sum[:]) {
		t.Fatalf("status %d, CAS saw %s bytes (sha %s)", resp.StatusCode(), resp.Header.Peek("X-Body-Len"), resp.Header.Peek("X-Body-Sha256"))
	}
	if got := metricValue(t, p.s, "easgate_client_timeouts_total", nil); got != 0 {
		t.Errorf("easgate_client_timeouts_total = %v, want 0", got)
	}
}

// TestSlowHeldPollOutlivesTimeouts: a Ping held by the CAS for longer than
// every listen timeout is answered, and its connection serves the next
// request: the timeouts cut reads, and nothing is read while a poll is held.
func TestSlowHeldPollOutlivesTimeouts(t *testing.T) {
	cas := newFakeCAS(t)
	cfg := mustParse(t, slowYAML(cas.url(), "  timeouts:\n    header: 1s\n    body: 1s\n    idle: 2s\n"))
	p := startProxy(t, cfg)
	resp, err := p.do(t, "Ping", "held1", testkit.PingBody(t, 480), map[string]string{"X-Test-Hold-Ms": "3500"})
	if err != nil {
		t.Fatalf("held Ping: %v", err)
	}
	if resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), pingNoChanges) {
		t.Fatalf("held Ping: status %d body %x", resp.StatusCode(), resp.Body())
	}
	fasthttp.ReleaseResponse(resp)
	// The same keep-alive connection (the client holds one) serves on.
	resp, err = p.do(t, "FolderSync", "held1", []byte{0x03, 0x01, 0x6A, 0x00}, nil)
	if err != nil || resp.StatusCode() != 200 {
		t.Fatalf("after the held Ping: %v %d", err, resp.StatusCode())
	}
	fasthttp.ReleaseResponse(resp)
	if got := metricValue(t, p.s, "easgate_client_timeouts_total", map[string]string{"phase": "header"}); got != 0 {
		t.Errorf("header timeouts: %v", got)
	}
	if got := metricValue(t, p.s, "easgate_client_timeouts_total", map[string]string{"phase": "body"}); got != 0 {
		t.Errorf("body timeouts: %v", got)
	}
}

// TestSlowHeaderTimeout: a connection that sends nothing, and one that
// sends its header a byte at a time, are both closed by the header timeout
// (which a trickle does not extend).
func TestSlowHeaderTimeout(t *testing.T) {
	cas := newFakeCAS(t)
	cfg := mustParse(t, slowYAML(cas.url(), "  timeouts:\n    header: 1s\n    idle: 30s\n"))
	p := startProxy(t, cfg)

	silent, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	trickle, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer trickle.Close()
	head := rawRequestHead("FolderSync", "hdr1", 0, "")
	stop := make(chan struct{})
	go func() {
		for i := 0; i < len(head); i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := trickle.Write([]byte{head[i]}); err != nil {
				return
			}
		}
	}()
	defer close(stop)
	// Nothing read: closed without an answer (as nginx does); part of a
	// header read: 408.
	for _, tc := range []struct {
		name   string
		c      net.Conn
		answer string
	}{{"silent", silent, ""}, {"trickle", trickle, "HTTP/1.1 408 "}} {
		answer, took := closedWithin(t, tc.c, tc.c, 15*time.Second)
		t.Logf("%s: closed after %s", tc.name, took.Round(time.Millisecond))
		if !strings.HasPrefix(answer, tc.answer) || (tc.answer == "" && answer != "") {
			t.Errorf("%s: answer %q, want %q", tc.name, answer, tc.answer)
		}
	}
	if got := metricValue(t, p.s, "easgate_client_timeouts_total", map[string]string{"phase": "header"}); got != 2 {
		t.Errorf("easgate_client_timeouts_total{phase=header} = %v, want 2", got)
	}
	// Only the request cut inside its header was answered.
	if got := metricValue(t, p.s, "easgate_rejected_requests_total", map[string]string{"reason": "client_timeout"}); got != 1 {
		t.Errorf("easgate_rejected_requests_total{reason=client_timeout} = %v, want 1", got)
	}
}

// TestSlowIdleTimeout: a keep-alive connection with no next request is
// closed by the idle timeout, silently, and counted.
func TestSlowIdleTimeout(t *testing.T) {
	cas := newFakeCAS(t)
	cfg := mustParse(t, slowYAML(cas.url(), "  timeouts:\n    header: 30s\n    idle: 1s\n"))
	p := startProxy(t, cfg)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := []byte{0x03, 0x01, 0x6A, 0x00}
	if _, err := io.WriteString(c, rawRequestHead("FolderSync", "idle1", len(body), "")+string(body)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var resp fasthttp.Response
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if err := resp.Read(br); err != nil || resp.StatusCode() != 200 || resp.ConnectionClose() {
		t.Fatalf("first request: %v status %d close %v", err, resp.StatusCode(), resp.ConnectionClose())
	}
	rest, took := closedWithin(t, br, c, 15*time.Second)
	t.Logf("idle connection closed after %s", took.Round(time.Millisecond))
	if rest != "" {
		t.Errorf("an idle connection got %q before closing", rest)
	}
	waitFor(t, "the idle timeout to be counted", func() bool {
		return metricValue(t, p.s, "easgate_client_timeouts_total", map[string]string{"phase": "idle"}) == 1
	})
}

// TestSlowUnauthenticatedPerAddress: over TLS, connections from 127.0.0.1
// that never finish a request (not even the TLS handshake) take its slots;
// beyond the limit new ones from it are closed at once, while a phone from
// 127.0.0.2 is served. Once the slow ones leave, 127.0.0.1 is served again.
func TestSlowUnauthenticatedPerAddress(t *testing.T) {
	const limit = 16
	pki := lockoutPKI(t)
	cas := newPwCAS(t, map[string]string{"jdoe": "pw"})
	y := lockoutYAML(pki, cas.url(), filepath.Join(t.TempDir(), "state.db"), "    failures: 5\n")
	y = strings.Replace(y, "listen:\n", fmt.Sprintf("listen:\n  timeouts:\n    header: 30s\n  max_unauthenticated_per_address: %d\n", limit), 1)
	g := startGateway(t, mustParse(t, y))
	g.pki = pki
	local := netip.MustParseAddr("127.0.0.1")

	var held []net.Conn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	for i := 0; i < limit; i++ {
		c, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	waitFor(t, "the slow connections to be counted", func() bool { return g.s.unauth.count(local) == limit })
	// Over the limit: closed at accept, without a byte.
	for i := 0; i < 2*limit; i++ {
		c, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		answer, _ := closedWithin(t, c, c, 10*time.Second)
		_ = c.Close()
		if answer != "" {
			t.Fatalf("a refused connection got %q", answer)
		}
	}
	waitFor(t, "the refusals to be counted", func() bool {
		return metricValue(t, g.s, "easgate_connections_refused_total", map[string]string{"reason": "unauthenticated_per_address"}) == 2*limit
	})
	if got := metricValue(t, g.s, "easgate_unauthenticated_connections", nil); got != limit {
		t.Errorf("easgate_unauthenticated_connections = %v, want %d", got, limit)
	}
	// Another address is served.
	if st := g.phoneAt(t, "127.0.0.2").send(t, "jdoe", "dev2", "pw"); st != 200 {
		t.Fatalf("phone from 127.0.0.2: status %d", st)
	}
	// The slow ones leave; 127.0.0.1 is served again and its slot is given
	// back after the header.
	for _, c := range held {
		_ = c.Close()
	}
	held = nil
	waitFor(t, "the slots to be given back", func() bool { return g.s.unauth.count(local) == 0 })
	if st := g.phoneAt(t, "127.0.0.1").send(t, "jdoe", "dev1", "pw"); st != 200 {
		t.Fatalf("phone from 127.0.0.1: status %d", st)
	}
	if n := g.s.unauth.count(local); n != 0 {
		t.Errorf("a served connection still holds %d slots", n)
	}
}

// TestSlowTLSHandshakeTimeout: the TLS handshake counts against the header
// timeout.
func TestSlowTLSHandshakeTimeout(t *testing.T) {
	pki := lockoutPKI(t)
	cas := newPwCAS(t, map[string]string{"jdoe": "pw"})
	y := lockoutYAML(pki, cas.url(), filepath.Join(t.TempDir(), "state.db"), "    failures: 5\n")
	y = strings.Replace(y, "listen:\n", "listen:\n  timeouts:\n    header: 1s\n", 1)
	g := startGateway(t, mustParse(t, y))
	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte{0x16, 0x03, 0x01}) // the start of a ClientHello, then nothing
	_, took := closedWithin(t, c, c, 15*time.Second)
	t.Logf("closed after %s", took.Round(time.Millisecond))
	waitFor(t, "the handshake timeout to be counted", func() bool {
		return metricValue(t, g.s, "easgate_client_timeouts_total", map[string]string{"phase": "header"}) == 1
	})
}

func TestAddrKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::"},
	} {
		got, ok := addrKey(&net.TCPAddr{IP: net.ParseIP(tc.in), Port: 443})
		if !ok || got.String() != tc.want {
			t.Errorf("addrKey(%s) = %v %v, want %s", tc.in, got, ok, tc.want)
		}
	}
	if _, ok := addrKey(&net.UnixAddr{Name: "/x"}); ok {
		t.Error("a unix address has a key")
	}
}

func TestSparseLog(t *testing.T) {
	var l sparseLog
	now := time.Unix(1000, 0)
	if _, ok := l.allow(now); !ok {
		t.Fatal("the first line is skipped")
	}
	for i := 0; i < 5; i++ {
		if _, ok := l.allow(now.Add(time.Second)); ok {
			t.Fatal("a line within the interval is logged")
		}
	}
	if skipped, ok := l.allow(now.Add(slowLogInterval)); !ok || skipped != 5 {
		t.Errorf("after the interval: %d %v, want 5 true", skipped, ok)
	}
}

// TestBodyDeadlineRule checks the body rule on the defaults (60 s, 500
// bytes/s) without a clock: a 64 MiB attachment at 1 Mbit/s never waits
// near its deadline, an upload that stalls for 50 s once passes, and a
// byte every 10 s is cut about 60 s after the header.
func TestBodyDeadlineRule(t *testing.T) {
	lim := &clientLimits{body: 60 * time.Second, minRate: 500}
	start := time.Unix(1_000_000, 0)

	// 64 MiB in 16 KiB reads at 125,000 bytes/s.
	const size, piece, rate = 64 << 20, 16 << 10, 125_000
	for got := int64(0); got < size; got += piece {
		now := start.Add(time.Duration(got) * time.Second / rate)
		next := now.Add(time.Duration(piece) * time.Second / rate)
		if d := lim.bodyDeadline(now, start, got); !d.After(next) {
			t.Fatalf("1 Mbit/s upload cut after %d bytes: deadline %s, next piece at %s", got, d.Sub(start), next.Sub(start))
		}
	}
	// 1 MiB at 20 KB/s that stalls for 50 s after 256 KiB (a phone losing
	// coverage): the stall is under the body timeout, and the bytes before
	// it earned far more than it takes.
	now := start
	for got := int64(0); got < 1<<20; got += piece {
		wait := time.Duration(piece) * time.Second / 20_000
		if got == 256<<10 {
			wait = 50 * time.Second
		}
		if d := lim.bodyDeadline(now, start, got); !d.After(now.Add(wait)) {
			t.Fatalf("stalled upload cut after %d bytes at %s", got, now.Sub(start))
		}
		now = now.Add(wait)
	}
	// A byte every 10 s: the read that would wait past the deadline.
	var cut time.Duration
	for got := int64(0); ; got++ {
		now := start.Add(time.Duration(got) * 10 * time.Second)
		if d := lim.bodyDeadline(now, start, got); !d.After(now.Add(10 * time.Second)) {
			cut = d.Sub(start)
			break
		}
	}
	if cut < 60*time.Second || cut > 61*time.Second {
		t.Errorf("a byte every 10 s is cut at %s, want about 60 s", cut)
	}
	// Without a minimum rate, only the per-read rule (nginx) applies.
	nginx := &clientLimits{body: 60 * time.Second}
	if d := nginx.bodyDeadline(start.Add(time.Hour), start, 360); d != start.Add(time.Hour+time.Minute) {
		t.Errorf("per-read rule: deadline %s", d.Sub(start))
	}
}

// TestSlowStreamedBodyStalls: a large body that stalls after 200 KiB, while
// easgate is streaming it to the CAS, is answered 408 and counted as the
// phone's timeout, not as a CAS error (504, upstream_error).
func TestSlowStreamedBodyStalls(t *testing.T) {
	cas := newFakeCAS(t)
	cfg := mustParse(t, slowYAML(cas.url(), "  timeouts:\n    body: 1s\n"))
	p := startProxy(t, cfg)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, rawRequestHead("SendMail", "stall1", 1<<20, "")+strings.Repeat("a", 200<<10)); err != nil {
		t.Fatal(err)
	}
	answer, took := closedWithin(t, c, c, 15*time.Second)
	t.Logf("closed after %s", took.Round(time.Millisecond))
	if !strings.HasPrefix(answer, "HTTP/1.1 408 ") {
		t.Errorf("answer %q, want 408", answer)
	}
	if got := metricValue(t, p.s, "easgate_rejected_requests_total", map[string]string{"reason": "upstream_error"}); got != 0 {
		t.Errorf("counted as an upstream error: %v", got)
	}
	if got := metricValue(t, p.s, "easgate_rejected_requests_total", map[string]string{"reason": "client_timeout"}); got != 1 {
		t.Errorf("easgate_rejected_requests_total{reason=client_timeout} = %v, want 1", got)
	}
	if got := metricValue(t, p.s, "easgate_client_timeouts_total", map[string]string{"phase": "body"}); got != 1 {
		t.Errorf("easgate_client_timeouts_total{phase=body} = %v, want 1", got)
	}
}

// TestSlowReloadAppliesTimeouts: listen.timeouts change with a reload, for
// connections opened before it too.
func TestSlowReloadAppliesTimeouts(t *testing.T) {
	cas := newFakeCAS(t)
	p := startProxy(t, mustParse(t, slowYAML(cas.url(), "  timeouts:\n    idle: 60s\n")))
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := p.s.Reload(mustParse(t, slowYAML(cas.url(), "  timeouts:\n    idle: 1s\n"))); err != nil {
		t.Fatal(err)
	}
	body := []byte{0x03, 0x01, 0x6A, 0x00}
	if _, err := io.WriteString(c, rawRequestHead("FolderSync", "reload1", len(body), "")+string(body)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var resp fasthttp.Response
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if err := resp.Read(br); err != nil || resp.StatusCode() != 200 {
		t.Fatalf("request: %v status %d", err, resp.StatusCode())
	}
	_, took := closedWithin(t, br, c, 15*time.Second)
	t.Logf("idle connection closed after %s", took.Round(time.Millisecond))
}
