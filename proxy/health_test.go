package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/proxy/config"
)

// syncBuf is a log sink the test can read while the server writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProxyLogged is startProxy with the operational log kept in a buffer.
func startProxyLogged(t *testing.T, cfg *config.Config) (*testProxy, *syncBuf) {
	t.Helper()
	buf := &syncBuf{}
	s, err := newServer(cfg, zerolog.New(io.MultiWriter(buf, testLogWriter{t})), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	p := &testProxy{s: s, addr: ln.Addr().String()}
	p.hc = &fasthttp.HostClient{Addr: p.addr, MaxConns: 1 << 16, ReadTimeout: 2 * time.Minute,
		MaxIdemponentCallAttempts: 1, DisablePathNormalizing: true}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return p, buf
}

// TestHealthExpectStatus: a CAS whose probe answers 401 stays in rotation
// with expect_status [200, 401]; with the default [200] it is marked down
// and the log line says why.
func TestHealthExpectStatus(t *testing.T) {
	cas := newFakeCAS(t)
	cas.health.Store(401)
	withAuth := strings.Replace(testYAML([]string{cas.url()}, nil), "    unhealthy_after: 2\n",
		"    unhealthy_after: 2\n    expect_status: [200, 401]\n", 1)
	p, logs := startProxyLogged(t, mustParse(t, withAuth))
	time.Sleep(1500 * time.Millisecond) // three probes
	if !p.s.Ready() || strings.Contains(logs.String(), "marked down") {
		t.Fatalf("a 401 probe with expect_status [200, 401] took the CAS down:\n%s", logs)
	}

	p2, logs2 := startProxyLogged(t, mustParse(t, testYAML([]string{cas.url()}, nil)))
	waitFor(t, "the CAS marked down", func() bool { return !p2.s.Ready() })
	waitFor(t, "the log line", func() bool { return strings.Contains(logs2.String(), "marked down") })
	for _, want := range []string{"status 401", "expected [200]", "needs authentication", `"healthy":false`} {
		if !strings.Contains(logs2.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs2)
		}
	}
}

// TestHealthPanicMode: when every CAS is marked down, requests still go to
// them (Envoy's panic threshold), and the log says so; when one is healthy
// again the log says that panic mode ended.
func TestHealthPanicMode(t *testing.T) {
	cas := newFakeCAS(t)
	p, logs := startProxyLogged(t, mustParse(t, testYAML([]string{cas.url()}, nil)))
	cas.health.Store(503)
	waitFor(t, "the only CAS marked down", func() bool { return !p.s.Ready() })
	waitFor(t, "the panic-mode log line", func() bool { return strings.Contains(logs.String(), "panic mode, requests go to all") })
	if got := metricValue(t, p.s, "easgate_upstream_panic_mode", nil); got != 1 {
		t.Errorf("easgate_upstream_panic_mode %v in panic mode, want 1", got)
	}
	if got := metricValue(t, p.s, "easgate_held_long_polls_limit", nil); got != 50000 {
		t.Errorf("easgate_held_long_polls_limit %v, want 50000", got)
	}
	before := cas.count.Load()
	resp, err := p.do(t, "FolderSync", "d1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	code := resp.StatusCode()
	fasthttp.ReleaseResponse(resp)
	if code != 200 || cas.count.Load() != before+1 {
		t.Fatalf("in panic mode the request got %d and the CAS saw %d request(s); want 200 from the CAS",
			code, cas.count.Load()-before)
	}
	cas.health.Store(200)
	waitFor(t, "the CAS back", func() bool { return p.s.Ready() })
	waitFor(t, "the end of panic mode logged", func() bool { return strings.Contains(logs.String(), "panic mode ended") })
	if got := metricValue(t, p.s, "easgate_upstream_panic_mode", nil); got != 0 {
		t.Errorf("easgate_upstream_panic_mode %v after panic mode, want 0", got)
	}
}
