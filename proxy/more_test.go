package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/internal/testkit"
	"github.com/valyala/fasthttp"
)

func TestSmugglingRefused(t *testing.T) {
	cas := newFakeCAS(t)
	p := startProxy(t, mustParse(t, testYAML([]string{cas.url()}, nil)))
	line := "POST " + easURI("SendMail", "jdoe", "d1") + " HTTP/1.1\r\nHost: x\r\nMS-ASProtocolVersion: 14.1\r\n"
	smuggled := "GET /owa/ HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct{ name, raw string }{
		{"CL and TE", line + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE and CL", line + "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + smuggled},
		{"duplicate CL", line + "Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd"},
		{"conflicting CL", line + "Content-Length: 4\r\nContent-Length: 40\r\n\r\nabcd" + smuggled},
		{"CL list", line + "Content-Length: 4, 4\r\n\r\nabcd"},
		{"CL sign", line + "Content-Length: +4\r\n\r\nabcd"},
		{"TE gzip chunked", line + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
		{"TE identity", line + "Transfer-Encoding: identity\r\n\r\n"},
		{"TE twice", line + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"TE space before colon", line + "Transfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\nabcd"},
		{"bad chunk size", line + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\n"},
		{"chunk size overflow", line + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabcd\r\n0\r\n\r\n"},
		{"chunk missing CRLF", line + "Transfer-Encoding: chunked\r\n\r\n4\r\nabcdXX0\r\n\r\n"},
		{"TE in HTTP/1.0", strings.Replace(line, "HTTP/1.1", "HTTP/1.0", 1) + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := cas.count.Load()
			status, _, _ := rawRequest(t, p.addr, tt.raw)
			if status != 400 && status != 0 {
				t.Fatalf("status %d, want 400 (or the connection closed)", status)
			}
			if cas.count.Load() != before {
				t.Fatal("an ambiguously framed request reached the CAS")
			}
		})
	}
	// A well-formed chunked request goes through.
	status, hdr, _ := rawRequest(t, p.addr, line+"Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n")
	if status != 200 || hdr["x-body-len"] != "4" {
		t.Fatalf("chunked: status %d, CAS got %s bytes", status, hdr["x-body-len"])
	}
}

func TestAccessLogHasNoSecrets(t *testing.T) {
	cas := newFakeCAS(t)
	logPath := t.TempDir() + "/access.log"
	p := startProxy(t, mustParse(t, testYAML([]string{cas.url()}, map[string]string{"access_log": logPath})))
	const password = "Winter2026!secret"
	cred := base64.StdEncoding.EncodeToString([]byte(`CORP\jdoe:` + password))
	resp, err := p.do(t, "Ping", "ApplDMPL69PZF18P", testkit.PingBody(t, 480), map[string]string{"Authorization": "Basic " + cred})
	if err != nil || resp.StatusCode() != 200 {
		t.Fatalf("%v", err)
	}
	fasthttp.ReleaseResponse(resp)
	// A request that fails to parse is logged too.
	status, _, _ := rawRequest(t, p.addr, "POST /Microsoft-Server-ActiveSync?Cmd=Sync&User=jdoe&DeviceType=iPhone HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "+cred+"\r\nContent-Length: 0\r\n\r\n")
	if status == 0 {
		t.Fatal("no answer")
	}
	var data []byte
	waitFor(t, "two access-log lines", func() bool {
		data, _ = os.ReadFile(logPath)
		return bytes.Count(data, []byte("\n")) >= 2
	})
	for _, secret := range []string{cred, password, "Basic "} {
		if bytes.Contains(data, []byte(secret)) {
			t.Fatalf("access log contains %q:\n%s", secret, data)
		}
	}
	for _, want := range []string{`"command":"Ping"`, `"device_id":"ApplDMPL69PZF18P"`, `"decision":"allow"`, `"status":200`, `"hold_s":480`, `"client_family":"iOS Mail"`, `"protocol":"14.1"`, `"user":"jdoe@corp.example.com"`} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("access log lacks %s:\n%s", want, data)
		}
	}
}

func TestReloadUnderLoadAndInvalidConfig(t *testing.T) {
	cas1, cas2 := newFakeCAS(t), newFakeCAS(t)
	cfgPath := tempFile(t, "easgate.yaml", withDomains(testYAML([]string{cas1.url()}, nil)))
	p := startProxy(t, mustParse(t, testYAML([]string{cas1.url()}, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	go p.s.watchConfig(ctx, cfgPath, hup, 50*time.Millisecond)

	var stop atomic.Bool
	var failed, done atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				cmd, body, hdr := "FolderSync", []byte(nil), map[string]string{}
				if i%3 == 0 {
					cmd, body, hdr = "Ping", testkit.PingBody(t, 480), map[string]string{"X-Test-Hold-Ms": "150"}
				}
				resp, err := p.do(t, cmd, "dev"+strconv.Itoa(w), body, hdr)
				if err != nil || resp.StatusCode() != 200 {
					failed.Add(1)
					t.Errorf("%s during reload: %v", cmd, err)
				}
				done.Add(1)
				if resp != nil {
					fasthttp.ReleaseResponse(resp)
				}
			}
		}(w)
	}
	defer func() { stop.Store(true); wg.Wait() }()
	// Valid change: add cas2, then drop cas1.
	time.Sleep(100 * time.Millisecond)
	if err := os.WriteFile(cfgPath, []byte(withDomains(testYAML([]string{cas1.url(), cas2.url()}, nil))), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "cas2 in use", func() bool { return cas2.count.Load() > 5 })
	if err := os.WriteFile(cfgPath, []byte(withDomains(testYAML([]string{cas2.url()}, nil))), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "one-server config", func() bool { return len(p.s.cur.Load().pool.Backends) == 1 })
	// Invalid change: the running config stays.
	running := p.s.cur.Load()
	if err := os.WriteFile(cfgPath, []byte("upstreams:\n  servers: []\n  bogus_key: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup <- syscall.SIGHUP
	time.Sleep(300 * time.Millisecond)
	if p.s.cur.Load() != running {
		t.Fatal("an invalid config replaced the running one")
	}
	before := cas2.count.Load()
	waitFor(t, "traffic continues on the kept config", func() bool { return cas2.count.Load() > before+5 })
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 || done.Load() == 0 {
		t.Fatalf("%d of %d requests failed across reloads", failed.Load(), done.Load())
	}
	// Reload directly refuses a listener change.
	cfg := mustParse(t, testYAML([]string{cas2.url()}, nil))
	cfg.Listen.Address = "127.0.0.1:1"
	if err := p.s.Reload(cfg); err == nil {
		t.Fatal("Reload accepted a listen.address change")
	}
}

func TestReloadCutsHeldPingsAfterDrain(t *testing.T) {
	cas := newFakeCAS(t)
	cas.gate = make(chan struct{})
	p := startProxy(t, mustParse(t, testYAML([]string{cas.url()}, map[string]string{"drain": "200ms"})))
	type result struct {
		status int
		body   []byte
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := p.do(t, "Ping", "held1", testkit.PingBody(t, 480), map[string]string{"X-Test-Gate": "1"})
		if err != nil {
			res <- result{err: err}
			return
		}
		res <- result{status: resp.StatusCode(), body: append([]byte(nil), resp.Body()...)}
		fasthttp.ReleaseResponse(resp)
	}()
	waitFor(t, "ping held", func() bool { return cas.gated.Load() == 1 })
	if err := p.s.Reload(mustParse(t, testYAML([]string{cas.url()}, nil))); err != nil {
		t.Fatal(err)
	}
	r := <-res
	// Ping Status 1 ("no changes, re-issue"), not a 5xx the phone would back off from.
	if r.err != nil || r.status != 200 || !bytes.Equal(r.body, pingNoChanges) {
		t.Fatalf("cut ping: %v status %d body % x", r.err, r.status, r.body)
	}
}

func TestAdminHandler(t *testing.T) {
	cas := newFakeCAS(t)
	p := startProxy(t, mustParse(t, testYAML([]string{cas.url()}, nil)))
	resp, err := p.do(t, "FolderSync", "d1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fasthttp.ReleaseResponse(resp)
	get := func(path string) (int, string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(path)
		p.s.AdminHandler()(&ctx)
		return ctx.Response.StatusCode(), string(ctx.Response.Body())
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz %d", code)
	}
	code, body := get("/metrics")
	for _, want := range []string{`easgate_requests_total{command="FolderSync",decision="allow",status="200"} 1`,
		"easgate_held_long_polls 0", `easgate_upstream_healthy{upstream="` + cas.addr + `"} 1`, "easgate_upstream_duration_seconds_bucket"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cas.health.Store(503)
	waitFor(t, "not ready", func() bool { c, _ := get("/readyz"); return c == 503 })
}

func TestCheckFraming(t *testing.T) {
	tests := []struct {
		raw    string
		http11 bool
		want   error
	}{
		{"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", true, nil},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", true, nil},
		{"POST / HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n", true, nil},
		{"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", true, errBothLengths},
		{"POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", true, errDupLength},
		{"POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n", true, errBadLength},
		{"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", true, errBadLength},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", true, errDupEncoding},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", true, errBadEncoding},
		{"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", false, errEncodingHTTP1},
		{"POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", true, errBadHeaderLine},
		{"POST / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", true, errBadHeaderLine},
	}
	capture, err := os.ReadFile("testdata/raw_request.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests = append(tests, struct {
		raw    string
		http11 bool
		want   error
	}{string(capture), true, nil})
	for i, tt := range tests {
		if got := checkFraming([]byte(tt.raw), tt.http11); got != tt.want {
			t.Errorf("%d: %q: got %v, want %v", i, tt.raw, got, tt.want)
		}
	}
}

func FuzzCheckFraming(f *testing.F) {
	for _, s := range []string{
		"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
		"X: a\r\n folded\r\n",
	} {
		f.Add([]byte(s), true)
	}
	if data, err := os.ReadFile("testdata/raw_request.txt"); err == nil {
		f.Add(data, true)
	}
	f.Fuzz(func(t *testing.T, raw []byte, http11 bool) {
		err := checkFraming(raw, http11)
		// Adding a second Content-Length line must never make a request acceptable.
		if err == nil && bytes.Contains(bytes.ToLower(raw), []byte("\ncontent-length:")) {
			dup := append(append([]byte(nil), raw...), "\r\nContent-Length: 1\r\n"...)
			if checkFraming(dup, http11) == nil {
				t.Fatalf("duplicate Content-Length accepted: %q", dup)
			}
		}
	})
}

func TestRouteOf(t *testing.T) {
	tests := map[string]route{
		"/Microsoft-Server-ActiveSync":                   routeEAS,
		"/microsoft-server-activesync/":                  routeEAS,
		"/MICROSOFT-SERVER-ACTIVESYNC/default.eas":       routeEAS,
		"/Microsoft-Server-ActiveSync/Proxy/default.eas": routeEAS,
		"/Microsoft-Server-ActiveSync/Proxy":             routeNone,
		"/Microsoft-Server-ActiveSyncX":                  routeNone,
		"/autodiscover/autodiscover.xml":                 routeAutodiscover,
		"/AutoDiscover/AutoDiscover.XML":                 routeAutodiscover,
		"/autodiscover/autodiscover.json":                routeNone,
		"/":                                              routeNone,
		"/ecp/":                                          routeNone,
	}
	for path, want := range tests {
		if got := routeOf([]byte(path)); got != want {
			t.Errorf("%s: %d, want %d", path, got, want)
		}
	}
}

// TestInspectAllocs proves that the per-request pipeline before the upstream
// call (parse, body hold, identify, decide) allocates nothing.
func TestInspectAllocs(t *testing.T) {
	cas := newFakeCAS(t)
	s, err := newServer(mustParse(t, testYAML([]string{cas.url()}, nil)), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.cur.Load().close()
	for _, tc := range []struct {
		name, cmd string
		body      []byte
	}{{"Ping", "Ping", testkit.PingBody(t, 480)}, {"Sync", "Sync", testkit.SyncWaitBody(t, 5)}, {"FolderSync", "FolderSync", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := newTestCtx(tc.cmd, tc.body)
			r := new(eas.Request)
			x := new(exchange)
			st := s.cur.Load()
			run := func() {
				*x = exchange{s: s, st: st}
				done, _ := s.inspect(ctx, x, r)
				if done {
					t.Fatal("inspect answered a valid request")
				}
			}
			run()
			if x.cmd.String() != tc.cmd || x.client.Family.String() != "iOS Mail" {
				t.Fatalf("inspected %s, client %s", x.cmd, x.client.Family)
			}
			if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
				t.Fatalf("%v allocations per request", allocs)
			}
		})
	}
}

func newTestCtx(cmd string, body []byte) *fasthttp.RequestCtx {
	ctx := new(fasthttp.RequestCtx)
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI(easURI(cmd, "jdoe", "ApplDMPL69PZF18P"))
	ctx.Request.Header.Set("MS-ASProtocolVersion", "14.1")
	ctx.Request.Header.Set("User-Agent", "Apple-iPhone9C1/1402.100")
	ctx.Request.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(`CORP\jdoe:pw`)))
	ctx.Request.SetBody(body)
	return ctx
}

func BenchmarkInspect(b *testing.B) {
	cas := newFakeCAS(b)
	s, err := newServer(mustParse(b, testYAML([]string{cas.url()}, nil)), testLogger(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.cur.Load().close()
	ctx := newTestCtx("Ping", testkit.PingBody(b, 480))
	r := new(eas.Request)
	x := new(exchange)
	st := s.cur.Load()
	b.ReportAllocs()
	for b.Loop() {
		*x = exchange{s: s, st: st}
		s.inspect(ctx, x, r)
	}
}

func ExampleServer() {
	// A CAS stand-in and a configuration in front of it.
	cas := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello from CAS") }}
	casLn, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = cas.Serve(casLn) }()
	defer cas.Shutdown()

	cfg, err := configForExample("http://" + casLn.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := New(cfg, zerologDiscard())
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = s.Serve(ln) }()
	defer s.Shutdown(context.Background())

	req := fasthttp.AcquireRequest()
	req.SetRequestURI("http://" + ln.Addr().String() + "/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=jdoe&DeviceId=ApplDMPL69PZF18P&DeviceType=iPhone")
	req.Header.SetMethod("POST")
	req.Header.Set("MS-ASProtocolVersion", "14.1")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(`CORP\jdoe:s3cret`))) // the CAS checks the password
	resp := fasthttp.AcquireResponse()
	if err := fasthttp.Do(req, resp); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.StatusCode(), string(resp.Body()))
	// Output: 200 hello from CAS
}

func TestShutdownAnswersHeldPings(t *testing.T) {
	cas := newFakeCAS(t)
	cas.gate = make(chan struct{})
	cfg := mustParse(t, testYAML([]string{cas.url()}, map[string]string{"drain": "200ms"}))
	s, err := newServer(cfg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	p := &testProxy{s: s, addr: ln.Addr().String(), hc: &fasthttp.HostClient{Addr: ln.Addr().String()}}
	res := make(chan int, 1)
	var body []byte
	go func() {
		resp, err := p.do(t, "Ping", "held1", testkit.PingBody(t, 480), map[string]string{"X-Test-Gate": "1"})
		if err != nil {
			res <- 0
			return
		}
		body = append([]byte(nil), resp.Body()...)
		res <- resp.StatusCode()
		fasthttp.ReleaseResponse(resp)
	}()
	waitFor(t, "ping held", func() bool { return cas.gated.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if code := <-res; code != 200 || !bytes.Equal(body, pingNoChanges) {
		t.Fatalf("held ping at shutdown: status %d body % x", code, body)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if s.Ready() {
		t.Fatal("ready after shutdown")
	}
}

// TestShortAnswerFromCAS: a CAS that announces more body than it sends
// (it died mid-answer) must not reach the phone as a complete answer. Small
// answers are read whole before the phone sees anything, so the phone gets
// 502 Bad Gateway, and the access log says why.
func TestShortAnswerFromCAS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				buf := make([]byte, 8192)
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, _ := c.Read(buf)
				if bytes.HasPrefix(buf[:n], []byte("GET ")) { // health probe
					_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
					return
				}
				_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: 100\r\n\r\n0123456789"))
			}(c)
		}
	}()
	p := startProxy(t, mustParse(t, testYAML([]string{"http://" + ln.Addr().String()}, nil)))
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "POST " + easURI("FolderSync", "jdoe", "short1") + " HTTP/1.1\r\nHost: x\r\nMS-ASProtocolVersion: 14.1\r\n" +
		"User-Agent: Apple-iPhone9C1/1402.100\r\nAuthorization: " + testBasicAuth + "\r\nContent-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp := readResp(t, bufio.NewReader(c))
	if resp.StatusCode() != fasthttp.StatusBadGateway || len(resp.Body()) != 0 {
		t.Fatalf("answer to a truncated CAS answer: %d %q, want 502 with no body", resp.StatusCode(), resp.Body())
	}
}
