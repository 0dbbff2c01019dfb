package upstream

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/internal/testkit"
)

// rawCAS is an upstream that answers each request with the bytes answer
// returns, written as they are (status line, framing and all). An empty
// answer closes the connection without a byte; so does an answer that
// asks for it (Connection: close, or a body that ends with the connection).
type rawCAS struct {
	addr     string
	accepted atomic.Int64
	answer   func(req *fasthttp.Request) (answer string, closeAfter bool)
}

func newRawCAS(t *testing.T, cfg *tls.Config, answer func(req *fasthttp.Request) (string, bool)) *rawCAS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	c := &rawCAS{addr: ln.Addr().String(), answer: answer}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, nc := range open {
			_ = nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c.accepted.Add(1)
			mu.Lock()
			open = append(open, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				br := bufio.NewReader(nc)
				for {
					var req fasthttp.Request
					if err := req.Read(br); err != nil {
						return
					}
					a, closeAfter := c.answer(&req)
					if a == "" {
						return
					}
					if _, err := io.WriteString(nc, a); err != nil || closeAfter {
						return
					}
				}
			}()
		}
	}()
	return c
}

// releaseProbe is a request user value: fasthttp closes it when the
// request is reset, that is when the held poll releases its copy.
type releaseProbe struct {
	once sync.Once
	ch   chan struct{}
}

func (p *releaseProbe) Close() error {
	p.once.Do(func() { close(p.ch) })
	return nil
}

// heldPoll is a held request's Hooks as proxy's hijacked polls have them,
// without a cut: Sent releases the request copy.
type heldPoll struct{ req *fasthttp.Request }

func (h *heldPoll) Attach(net.Conn) bool { return true }
func (h *heldPoll) Detach() error        { return nil }
func (h *heldPoll) Sent(req *fasthttp.Request) {
	if h.req == req {
		h.req = nil
		fasthttp.ReleaseRequest(req)
	}
}

// heldCopy is a held poll's request copy as proxy's hijackLongPoll makes
// it, with a probe that tells when it is released.
func heldCopy(addr string) (*heldPoll, *releaseProbe) {
	req := fasthttp.AcquireRequest()
	req.SetRequestURI("http://" + addr + "/Microsoft-Server-ActiveSync?Cmd=Ping&User=jdoe&DeviceId=DEV&DeviceType=iPhone")
	req.Header.SetMethod("POST")
	req.Header.Set("MS-ASProtocolVersion", "14.1")
	req.SetBodyString("ping body")
	p := &releaseProbe{ch: make(chan struct{})}
	req.SetUserValue("probe", p)
	return &heldPoll{req: req}, p
}

// waitReleased waits for the probe, failing the test after 10 s (a held
// copy that is never released, or only with the answer).
func waitReleased(p *releaseProbe) bool {
	select {
	case <-p.ch:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

func testBackend(t *testing.T, url string, o Options) *Backend {
	t.Helper()
	if o.Connect == 0 {
		o.Connect = 5 * time.Second
	}
	b, err := NewBackend(url, "", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.hcHold.CloseIdleConnections() })
	return b
}

// TestHeldRoundTrip: a held poll's round trip reads every framing of answer
// as fasthttp does, streams the body, hands the connection back to the
// pool only when the answer was read to its end and nobody asked to close
// it, and lets go of the request copy while the CAS still holds it (the
// CAS answers only once the copy is released).
func TestHeldRoundTrip(t *testing.T) {
	cases := []struct {
		name       string
		answer     string
		closeAfter bool
		status     int
		body       string
		readOnly   int // read only so many body bytes before closing
		pooled     bool
	}{
		{name: "content-length", answer: "HTTP/1.1 200 OK\r\nX-Up: 1\r\nContent-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: 5\r\n\r\nhello",
			status: 200, body: "hello", pooled: true},
		{name: "chunked", answer: "HTTP/1.1 200 OK\r\nX-Up: 1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
			status: 200, body: "hello", pooled: true},
		{name: "until close", answer: "HTTP/1.1 200 OK\r\nX-Up: 1\r\n\r\nhello", closeAfter: true, status: 200, body: "hello"},
		{name: "interim", answer: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-Up: 1\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok", pooled: true},
		{name: "no content", answer: "HTTP/1.1 204 No Content\r\nX-Up: 1\r\n\r\n", status: 204, pooled: true},
		{name: "empty", answer: "HTTP/1.1 200 OK\r\nX-Up: 1\r\nContent-Length: 0\r\n\r\n", status: 200, pooled: true},
		{name: "connection close", answer: "HTTP/1.1 200 OK\r\nX-Up: 1\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
			closeAfter: true, status: 200, body: "ok"},
		{name: "left unread", answer: "HTTP/1.1 200 OK\r\nX-Up: 1\r\nContent-Length: 20000\r\n\r\n" + strings.Repeat("x", 20000),
			status: 200, body: "xxxxxxxxxx", readOnly: 10},
		{name: "status kept", answer: "HTTP/1.1 503 Service Unavailable\r\nX-Up: 1\r\nRetry-After: 5\r\nContent-Length: 4\r\n\r\nbusy",
			status: 503, body: "busy", pooled: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var probe *releaseProbe
			cas := newRawCAS(t, nil, func(req *fasthttp.Request) (string, bool) {
				if string(req.Body()) != "ping body" || !strings.Contains(string(req.RequestURI()), "Cmd=Ping") {
					t.Errorf("CAS got %q %q", req.RequestURI(), req.Body())
				}
				if !waitReleased(probe) {
					t.Error("the request copy was not released while the CAS held the request")
				}
				return tc.answer, tc.closeAfter
			})
			b := testBackend(t, "http://"+cas.addr, Options{})
			for round := range 2 {
				h, p := heldCopy(cas.addr)
				probe = p
				resp, err := b.DoHeld(h.req, time.Now().Add(10*time.Second), h)
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				if h.req != nil {
					t.Fatal("held copy still set after the round trip")
				}
				if resp.StatusCode() != tc.status || string(resp.Header.Peek("X-Up")) != "1" {
					t.Fatalf("status %d header %q", resp.StatusCode(), resp.Header.String())
				}
				var got []byte
				if bs := resp.BodyStream(); bs != nil {
					if tc.readOnly > 0 {
						got = make([]byte, tc.readOnly)
						_, err = io.ReadFull(bs, got)
					} else {
						got, err = io.ReadAll(bs)
					}
					if err != nil {
						t.Fatalf("body: %v", err)
					}
				}
				if string(got) != tc.body {
					t.Fatalf("body %q, want %q", got, tc.body)
				}
				if err := resp.CloseBodyStream(); err != nil {
					t.Fatalf("close: %v", err)
				}
				fasthttp.ReleaseResponse(resp)
				if idle, open := b.hcHold.IdleConnsCount(), b.hcHold.ConnsCount(); tc.pooled && (idle != 1 || open != 1) ||
					!tc.pooled && (idle != 0 || open != 0) {
					t.Fatalf("round %d: %d idle of %d connections, pooled=%v", round, idle, open, tc.pooled)
				}
			}
			want := int64(2)
			if tc.pooled {
				want = 1 // the second round reused the pooled connection
			}
			if got := cas.accepted.Load(); got != want {
				t.Fatalf("CAS accepted %d connections, want %d", got, want)
			}
		})
	}
}

// statusOf is the status proxy's statusFor gives the errors of a held
// round trip that sent something: timeouts are 504, the rest 502.
func statusOf(err error) int {
	var ne net.Error
	if errors.Is(err, fasthttp.ErrTimeout) || errors.As(err, &ne) && ne.Timeout() {
		return fasthttp.StatusGatewayTimeout
	}
	return fasthttp.StatusBadGateway
}

// TestHeldRoundTripErrors: failures map to the statuses HostClient.Do's
// errors get, close the connection, and release the request copy only once
// it was written (a request nothing of which was written may go to another
// CAS, and needs its copy for that).
func TestHeldRoundTripErrors(t *testing.T) {
	cases := []struct {
		name     string
		answer   string
		deadline time.Duration
		status   int
		released bool
	}{
		{name: "closed without an answer", answer: "", deadline: 10 * time.Second, status: fasthttp.StatusBadGateway, released: true},
		{name: "malformed", answer: "HTTP/1.1 2x0 OK\r\nSet-Cookie: s=secret\r\n\r\n", deadline: 10 * time.Second,
			status: fasthttp.StatusBadGateway, released: true},
		{name: "cut body", answer: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", deadline: 10 * time.Second,
			status: fasthttp.StatusBadGateway, released: true},
		{name: "timeout", answer: "wait", deadline: 300 * time.Millisecond, status: fasthttp.StatusGatewayTimeout, released: true},
		{name: "past deadline", answer: "", deadline: -time.Second, status: fasthttp.StatusGatewayTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stop := make(chan struct{})
			defer close(stop)
			cas := newRawCAS(t, nil, func(*fasthttp.Request) (string, bool) {
				if tc.answer == "wait" {
					<-stop
					return "", false
				}
				return tc.answer, true
			})
			b := testBackend(t, "http://"+cas.addr, Options{})
			h, p := heldCopy(cas.addr)
			resp, err := b.DoHeld(h.req, time.Now().Add(tc.deadline), h)
			if resp != nil {
				defer fasthttp.ReleaseResponse(resp)
			}
			if tc.name == "cut body" && err == nil {
				// The header arrived: the body fails while it streams.
				_, err = io.ReadAll(resp.BodyStream())
				_ = resp.CloseBodyStream()
			}
			if err == nil {
				t.Fatal("no error")
			}
			if got := statusOf(err); got != tc.status {
				t.Fatalf("%v: status %d, want %d", err, got, tc.status)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error quotes the answer: %v", err)
			}
			released := h.req == nil
			if released != tc.released {
				t.Fatalf("released %v, want %v", released, tc.released)
			}
			if released {
				select {
				case <-p.ch:
				default:
					t.Fatal("copy marked released but not reset")
				}
			} else {
				fasthttp.ReleaseRequest(h.req)
			}
			waitFor(t, "connection closed", func() bool { return b.hcHold.ConnsCount() == 0 })
		})
	}
}

// TestHeldRoundTripStaleConn: a pooled connection the CAS has closed fails
// before any byte is written, so the request keeps its copy and may be
// sent again (NothingSent).
func TestHeldRoundTripStaleConn(t *testing.T) {
	cas := newRawCAS(t, nil, func(*fasthttp.Request) (string, bool) {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	})
	b := testBackend(t, "http://"+cas.addr, Options{})
	h, _ := heldCopy(cas.addr)
	resp, err := b.DoHeld(h.req, time.Now().Add(10*time.Second), h)
	if err != nil {
		t.Fatal(err)
	}
	defer fasthttp.ReleaseResponse(resp)
	if _, err := io.ReadAll(resp.BodyStream()); err != nil {
		t.Fatal(err)
	}
	_ = resp.CloseBodyStream()
	if b.hcHold.IdleConnsCount() != 1 {
		t.Fatal("connection not pooled")
	}
	// The CAS closes its side of the pooled connection.
	b.conns.mu.Lock()
	var lc *liveConn
	for c := range b.conns.conns {
		lc = c
	}
	b.conns.mu.Unlock()
	if lc == nil || lc.raw == nil {
		t.Fatal("no tracked connection")
	}
	closeRawPeer(t, lc)
	lc.lastStart = monoNow() - staleCheckAfter // idle long enough to be checked

	h, p := heldCopy(cas.addr)
	if _, err := b.DoHeld(h.req, time.Now().Add(10*time.Second), h); !errors.Is(err, ErrStaleConn) || !NothingSent(err) {
		t.Fatalf("err %v, want the stale-connection error", err)
	}
	if h.req == nil {
		t.Fatal("a request nothing of which was written lost its copy")
	}
	select {
	case <-p.ch:
		t.Fatal("copy reset although it was not written")
	default:
	}
	fasthttp.ReleaseRequest(h.req)
}

// closeRawPeer makes the rawCAS close its end of lc: it sends the CAS a
// request it cannot parse, past liveConn (whose state stays that of an
// idle pooled connection), and waits until the kernel reports the FIN.
func closeRawPeer(t *testing.T, lc *liveConn) {
	t.Helper()
	if _, err := lc.Conn.Write([]byte("garbage\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "CAS closed its side", func() bool {
		var gone bool
		_ = lc.raw.Control(func(fd uintptr) { gone = fdPeerClosed(fd) })
		return gone
	})
}

// TestHeldRoundTripTLS: the same over https (the wait for the first byte
// is under the TLS connection).
func TestHeldRoundTripTLS(t *testing.T) {
	dir := t.TempDir()
	casCertPath, _, casCert := testkit.SelfSignedCert(t, dir, "cas.corp.example.com")
	var probe *releaseProbe
	cas := newRawCAS(t, &tls.Config{Certificates: []tls.Certificate{casCert}, MinVersion: tls.VersionTLS12},
		func(*fasthttp.Request) (string, bool) {
			if !waitReleased(probe) {
				t.Error("the request copy was not released while the CAS held the request")
			}
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false
		})
	roots := x509.NewCertPool()
	pem, err := os.ReadFile(casCertPath)
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(pem)
	b := testBackend(t, "https://"+cas.addr, Options{TLS: &tls.Config{RootCAs: roots, ServerName: "cas.corp.example.com"}})
	for range 2 {
		h, p := heldCopy(cas.addr)
		probe = p
		resp, err := b.DoHeld(h.req, time.Now().Add(10*time.Second), h)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.BodyStream())
		if err != nil || string(body) != "hello" {
			t.Fatalf("body %q: %v", body, err)
		}
		_ = resp.CloseBodyStream()
		fasthttp.ReleaseResponse(resp)
	}
	if got := cas.accepted.Load(); got != 1 {
		t.Fatalf("CAS accepted %d connections, want 1 (pooled)", got)
	}
}

// pipeClient is a long-poll HostClient (newHostClient's settings) whose
// every connection is one end of a net.Pipe; the other end reads one
// request and writes answer, then closes.
func pipeClient(answer []byte, wg *sync.WaitGroup) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr: "cas.test",
		Dial: func(string) (net.Conn, error) {
			c, s := net.Pipe()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer s.Close()
				var req fasthttp.Request
				if err := req.Read(bufio.NewReader(s)); err != nil {
					return
				}
				_, _ = s.Write(answer)
			}()
			return c, nil
		},
		MaxConns:                  maxUpstreamConns,
		MaxIdemponentCallAttempts: 1,
		ReadBufferSize:            4096,
		WriteBufferSize:           4096,
		StreamResponseBody:        true,
		DisablePathNormalizing:    true,
		NoDefaultUserAgentHeader:  true,
		SecureErrorLogMessage:     true,
	}
}

// referenceRead is what fasthttp's own (buffered) parser makes of an answer.
func referenceRead(answer []byte) (status int, body []byte, ok bool) {
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(bytes.NewReader(answer))); err != nil {
		return 0, nil, false
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), true
}

// heldAnswers are the CAS answers in testdata/held_answers.
func heldAnswers(t testing.TB) map[string][]byte {
	dir := filepath.Join("testdata", "held_answers")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = data
	}
	return out
}

// TestHeldRoundTripAnswers: Exchange's and SOGo's answers (testdata) come
// out of a held round trip as fasthttp's own parser reads them.
func TestHeldRoundTripAnswers(t *testing.T) {
	for name, answer := range heldAnswers(t) {
		t.Run(name, func(t *testing.T) {
			wantStatus, wantBody, ok := referenceRead(answer)
			if !ok {
				t.Fatal("fasthttp cannot read the testdata answer")
			}
			var wg sync.WaitGroup
			defer wg.Wait()
			hc := pipeClient(answer, &wg)
			defer hc.CloseIdleConnections()
			status, body, err := heldTrip(hc, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if status != wantStatus || !bytes.Equal(body, wantBody) {
				t.Fatalf("status %d body % x, want %d % x", status, body, wantStatus, wantBody)
			}
		})
	}
}

// heldTrip runs one held round trip through hc and reads the answer whole.
func heldTrip(hc *fasthttp.HostClient, timeout time.Duration) (status int, body []byte, err error) {
	h, p := heldCopy("cas.test")
	resp, err := (&Backend{hcHold: hc}).DoHeld(h.req, time.Now().Add(timeout), h)
	if resp != nil {
		defer fasthttp.ReleaseResponse(resp)
	}
	if h.req != nil {
		// Only a request nothing of which was written keeps its copy.
		if err == nil || !NothingSent(err) && !errors.Is(err, fasthttp.ErrTimeout) {
			return 0, nil, errors.New("the request copy was not released after it was written")
		}
		fasthttp.ReleaseRequest(h.req)
	} else if !waitReleased(p) {
		return 0, nil, errors.New("released copy not reset")
	}
	if err != nil {
		return 0, nil, err
	}
	status = resp.StatusCode()
	if bs := resp.BodyStream(); bs != nil {
		body, err = io.ReadAll(io.LimitReader(bs, 1<<20))
	}
	if cerr := resp.CloseBodyStream(); err == nil {
		err = cerr
	}
	return status, body, err
}

// FuzzHeldRoundTrip feeds arbitrary CAS answers to a held round trip: it
// never panics or hangs, its errors never quote the answer, the request
// copy is released once written, the connection is pooled only when idle
// and reusable, and what it reads is what fasthttp's own parser reads.
func FuzzHeldRoundTrip(f *testing.F) {
	addTripSeeds(f)
	f.Fuzz(func(t *testing.T, answer []byte) {
		checkFuzzedTrip(t, answer, func(hc *fasthttp.HostClient) (int, []byte, error) {
			status, body, err := heldTrip(hc, 5*time.Second)
			if err != nil && strings.Contains(err.Error(), "the request copy") {
				t.Fatal(err)
			}
			return status, body, err
		})
	})
}

// addTripSeeds seeds a round-trip fuzzer with the captured answers and
// broken ones.
func addTripSeeds(f *testing.F) {
	for _, answer := range heldAnswers(f) {
		f.Add(answer)
	}
	f.Add([]byte("HTTP/1.1 2x0 OK\r\nSet-Cookie: s=secret\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
}

// checkFuzzedTrip runs trip over a client whose CAS answers answer: it
// never panics or hangs, its errors never quote the answer, the connection
// is pooled only when idle and reusable, and what it reads is what
// fasthttp's own parser reads.
func checkFuzzedTrip(t *testing.T, answer []byte, trip func(*fasthttp.HostClient) (int, []byte, error)) {
	var wg sync.WaitGroup
	hc := pipeClient(answer, &wg)
	status, body, err := trip(hc)
	if err != nil && strings.ContainsAny(err.Error(), "\"") {
		t.Fatalf("error quotes the answer: %v", err)
	}
	if idle, open := hc.IdleConnsCount(), hc.ConnsCount(); idle != open || open > 1 {
		t.Fatalf("%d idle of %d connections after the answer", idle, open)
	}
	hc.CloseIdleConnections()
	wg.Wait()
	if err == nil {
		if wantStatus, wantBody, ok := referenceRead(answer); ok && (status != wantStatus || !bytes.Equal(body, wantBody)) {
			t.Fatalf("status %d body %q; fasthttp reads %d %q", status, body, wantStatus, wantBody)
		}
	}
}

// BenchmarkHeldRoundTrip is a hijacked Ping's upstream part (copy the
// request, round trip, read and close the answer) with heldRoundTrip and,
// for comparison, with fasthttp's transport as before: the held one costs
// about the same and lets go of the copy while the CAS holds the poll.
func BenchmarkHeldRoundTrip(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/vnd.ms-sync.wbxml")
		ctx.SetBody(pingNoChanges)
	}, NoDefaultServerHeader: true, NoDefaultDate: true}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Shutdown() }()
	addr := ln.Addr().String()
	src, _ := heldCopy(addr)
	src.req.Header.Set("User-Agent", "Apple-iPhone9C1/1402.100")
	src.req.Header.Set("Authorization", testBasicAuth)
	buf := make([]byte, 512)
	finish := func(b *testing.B, resp *fasthttp.Response) {
		if resp.StatusCode() != 200 {
			b.Fatalf("status %d", resp.StatusCode())
		}
		for {
			if _, err := resp.BodyStream().Read(buf); err != nil {
				break
			}
		}
		_ = resp.CloseBodyStream()
	}
	b.Run("held", func(b *testing.B) {
		be := benchBackend(b, addr)
		b.ReportAllocs()
		for b.Loop() {
			h := &heldPoll{req: fasthttp.AcquireRequest()}
			src.req.CopyTo(h.req)
			resp, err := be.DoHeld(h.req, time.Now().Add(10*time.Second), h)
			if err != nil {
				b.Fatal(err)
			}
			finish(b, resp)
			fasthttp.ReleaseResponse(resp)
		}
	})
	b.Run("fasthttp-transport", func(b *testing.B) {
		be := benchBackend(b, addr)
		b.ReportAllocs()
		for b.Loop() {
			req := fasthttp.AcquireRequest()
			src.req.CopyTo(req)
			resp := fasthttp.AcquireResponse()
			prepareHeld(be.hcHold, req)
			resp.StreamBody = be.hcHold.StreamResponseBody
			req.SetTimeout(10 * time.Second)
			if _, err := fasthttp.DefaultTransport.RoundTrip(be.hcHold, req, resp); err != nil {
				b.Fatal(err)
			}
			finish(b, resp)
			fasthttp.ReleaseRequest(req)
			fasthttp.ReleaseResponse(resp)
		}
	})
}

// benchBackend is a backend for addr whose idle connections close when b
// ends.
func benchBackend(b *testing.B, addr string) *Backend {
	be, err := NewBackend("http://"+addr, "", Options{Connect: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(be.hcHold.CloseIdleConnections)
	return be
}
