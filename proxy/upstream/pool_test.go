package upstream

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// waitFor polls cond for up to 20 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPickPanicMode: pick ignores health only when no CAS is available,
// and never returns a CAS already tried.
func TestPickPanicMode(t *testing.T) {
	a := testBackend(t, "http://127.0.0.1:1", Options{})
	b := testBackend(t, "http://127.0.0.1:2", Options{})
	p := &Pool{Backends: []*Backend{a, b}}
	a.healthy.Store(false)
	for range 4 {
		if i := p.Pick(0); i != 1 {
			t.Fatalf("one CAS healthy: picked %d, want the healthy one (1)", i)
		}
	}
	if i := p.Pick(1 << 1); i != -1 {
		t.Fatalf("the healthy CAS tried, the other down: picked %d, want none (-1)", i)
	}
	b.healthy.Store(false)
	if got := p.NotePanic(); got != 1 {
		t.Fatalf("notePanic = %d entering panic mode", got)
	}
	if i := p.Pick(1 << 1); i != 0 {
		t.Fatalf("panic mode, 1 tried: picked %d, want 0", i)
	}
	if i := p.Pick(1<<0 | 1<<1); i != -1 {
		t.Fatalf("panic mode, all tried: picked %d, want -1", i)
	}
	a.healthy.Store(true)
	if got := p.NotePanic(); got != -1 {
		t.Fatalf("notePanic = %d leaving panic mode", got)
	}
}

// TestProbeFailureReasons: the "marked down" reason names the failure.
func TestProbeFailureReasons(t *testing.T) {
	probe := func(b *Backend) (bool, string) { return b.Probe("/hc", []int{200}, 300*time.Millisecond) }

	// Refused: a port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if ok, why := probe(testBackend(t, "http://"+closed, Options{})); ok || !strings.HasPrefix(why, "refused") {
		t.Errorf("closed port: ok=%v why=%q, want refused", ok, why)
	}

	// Timeout: a listener that accepts and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	if ok, why := probe(testBackend(t, "http://"+silent.Addr().String(), Options{})); ok || !strings.HasPrefix(why, "timeout") {
		t.Errorf("silent server: ok=%v why=%q, want timeout", ok, why)
	}

	// TLS error: a certificate easgate does not trust.
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ts.Close()
	b := testBackend(t, ts.URL, Options{TLS: &tls.Config{}, Connect: time.Second})
	if ok, why := probe(b); ok || !strings.HasPrefix(why, "TLS error") {
		t.Errorf("untrusted certificate: ok=%v why=%q, want TLS error", ok, why)
	}

	// Status: listed or not.
	if ok, _ := expectedStatus(401, []int{200, 401}, "/hc"); !ok {
		t.Error("401 with expect_status [200, 401] counted as down")
	}
	if ok, why := expectedStatus(302, []int{200}, "/hc"); ok || !strings.Contains(why, "status 302") {
		t.Errorf("302 with [200]: ok=%v why=%q", ok, why)
	}
}

func TestStaleConnDetected(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	var set connSet
	d := &dialer{timeout: time.Second, set: &set}
	c, err := d.dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := <-accepted
	lc := c.(*liveConn)
	if lc.peerClosed() {
		t.Fatal("open connection reported closed")
	}
	_ = srv.Close()
	waitFor(t, "FIN seen", func() bool { return lc.peerClosed() })
	var b [1]byte
	lc.readSeen.Store(true)                        // as after a response
	lc.lastStart = monoNow() - 10*time.Millisecond // used just now: not asked
	if _, err := lc.Write(b[:]); err != nil {
		t.Fatalf("write on a connection used 10 ms ago: %v; want no check, the write to pass", err)
	}
	lc.readSeen.Store(true)
	lc.lastStart = monoNow() - staleCheckAfter // idle long enough to be asked
	if _, err := lc.Write(b[:]); !NothingSent(err) {
		t.Fatalf("write on a closed keep-alive connection: %v, want ErrStaleConn", err)
	}
	if set.n.Load() != 1 {
		t.Fatalf("tracked %d conns", set.n.Load())
	}
	_ = lc.Close()
	if set.n.Load() != 0 {
		t.Fatal("closed conn still tracked")
	}
	// A refused connect is a dial error: safe to retry elsewhere.
	_, err = (&dialer{timeout: time.Second, set: &set}).dial("127.0.0.1:1")
	if !NothingSent(err) {
		t.Fatalf("refused connect: %v", err)
	}
}

// TestHeldError: transport errors of the held path read as HostClient.Do's
// would, without the response bytes fasthttp quotes in parse errors.
func TestHeldError(t *testing.T) {
	quoted := fmt.Errorf("error when reading response headers: %w. Buffer size=13, contents: \"Set-Cookie: s=secret\"", fasthttp.ErrTimeout)
	cases := []struct {
		name   string
		in     error
		want   string
		status int
	}{
		{"eof", io.EOF, fasthttp.ErrConnectionClosed.Error(), fasthttp.StatusBadGateway},
		{"timeout", fasthttp.ErrTimeout, fasthttp.ErrTimeout.Error(), fasthttp.StatusGatewayTimeout},
		{"quoted", quoted, "error when reading response headers: fasthttp: timeout", fasthttp.StatusGatewayTimeout},
		// fasthttp 1.78's formats (headerErrorMsg, parseFirstLine).
		{"buffer", fmt.Errorf("error when reading response headers: %w: buffer size=20, contents: \"Set-Cookie: s=secret\"", fasthttp.ErrTimeout),
			"error when reading response headers: fasthttp: timeout", fasthttp.StatusGatewayTimeout},
		{"status line", errors.New("error when reading response headers: invalid response status code \"2x0\": response \"HTTP/1.1 2x0 OK\\r\\nSet-Cookie: s=secret\": buffer size=41, contents: \"Set-Cookie: s=secret\""),
			"error when reading response headers: invalid response status code", fasthttp.StatusBadGateway},
		{"plain", errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: connection reset by peer"),
			"read tcp 127.0.0.1:1->127.0.0.1:2: connection reset by peer", fasthttp.StatusBadGateway},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := heldError(tc.in)
			if err.Error() != tc.want || strings.Contains(err.Error(), "secret") {
				t.Fatalf("message %q, want %q", err.Error(), tc.want)
			}
			// proxy's statusFor reads the cause: it must survive.
			if timeout := tc.status == fasthttp.StatusGatewayTimeout; errors.Is(err, fasthttp.ErrTimeout) != timeout {
				t.Fatalf("errors.Is(ErrTimeout) = %v, want %v", !timeout, timeout)
			}
		})
	}
}
