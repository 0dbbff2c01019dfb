package bench

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestBareProxyFleet drives a short fleet through a BareProxy in front of
// the fake CAS: every request of the life cycle, held Pings included,
// passes without an error.
func TestBareProxyFleet(t *testing.T) {
	cas := startCAS(t, NewFakeCAS(FakeCASConfig{Messages: 6, TimeScale: 300}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := NewBareProxy(strings.TrimPrefix(cas, "http://"))
	done := make(chan error, 1)
	go func() { done <- p.Serve(ln) }()
	rep, err := Run(RunConfig{Target: "http://" + ln.Addr().String(), Devices: 4, Duration: 1500 * time.Millisecond,
		TimeScale: 300, Heartbeat: 120 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.DevicesSetUp != 4 || rep.Commands["Ping"].Count == 0 {
		t.Errorf("through the bare proxy: %d errors %v %v, %d set up, %d Pings", rep.Errors, rep.ErrorKinds, rep.ErrorExamples,
			rep.DevicesSetUp, rep.Commands["Ping"].Count)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after Close: %v, want nil", err)
	}
}

// TestBareProxyHops: a phone's "Connection: close" is for its own hop, so
// the connection to the upstream stays open and is reused; an upstream
// that is gone is a 502 that names no address.
func TestBareProxyHops(t *testing.T) {
	var mu sync.Mutex
	var remotes, connHeaders []string
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		remotes = append(remotes, ctx.RemoteAddr().String())
		connHeaders = append(connHeaders, string(ctx.Request.Header.Peek("Connection")))
		mu.Unlock()
		ctx.SetBodyString("ok")
	}}
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = up.Serve(upLn) }()
	p := NewBareProxy(upLn.Addr().String())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.Serve(ln) }()
	t.Cleanup(func() { _ = p.Close() })

	get := func() (status int, body string) {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /Microsoft-Server-ActiveSync?Cmd=Sync HTTP/1.1\r\nHost: mail\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
		var resp fasthttp.Response
		if err := resp.Read(bufio.NewReader(c)); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode(), string(resp.Body())
	}
	for range 2 {
		if st, body := get(); st != 200 || body != "ok" {
			t.Fatalf("through the bare proxy: %d %q", st, body)
		}
	}
	mu.Lock()
	if len(remotes) != 2 || remotes[0] != remotes[1] {
		t.Errorf("upstream connections %v: want one, reused", remotes)
	}
	for _, h := range connHeaders {
		if strings.EqualFold(h, "close") {
			t.Errorf("the phone's Connection: close reached the upstream")
		}
	}
	mu.Unlock()

	_ = up.Shutdown()
	st, body := get()
	if st != fasthttp.StatusBadGateway || strings.Contains(body, "127.0.0.1") {
		t.Errorf("upstream gone: %d %q, want 502 naming no address", st, body)
	}
}
