package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
	"github.com/easgate/easgate/internal/testkit"
)

// The shutdown tests run the real `easgate serve` binary, built here, in
// front of a raw CAS that holds every Ping (and every request of device
// "slow") until easgate closes the connection.

// rawCAS holds Pings, and every request of device "slow", until easgate
// closes the connection; FolderSync gets an answer naming the Inbox.
type rawCAS struct {
	addr string
	held atomic.Int64
}

func startRawCAS(t *testing.T) *rawCAS {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &rawCAS{addr: ln.Addr().String()}
	inbox := eas.AppendFolderSyncResponse(nil, 1, "1", []eas.Folder{
		{ServerID: "9", ParentID: "0", DisplayName: "Inbox", Type: 2},
		{ServerID: "5", ParentID: "0", DisplayName: "Archive", Type: 12},
	})
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[conn] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				br := bufio.NewReader(conn)
				var req fasthttp.Request
				for {
					req.Reset()
					if err := req.Read(br); err != nil {
						return
					}
					args := req.URI().QueryArgs()
					body := []byte{}
					switch {
					case string(args.Peek("Cmd")) == "Ping" || string(args.Peek("DeviceId")) == "slow":
						c.held.Add(1)
						_, _ = br.ReadByte() // until easgate closes the connection
						c.held.Add(-1)
						return
					case string(args.Peek("Cmd")) == "FolderSync":
						body = inbox
					}
					if _, err := fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for conn := range conns {
			_ = conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return c
}

// servedGateway is `easgate serve` running as a child process.
type servedGateway struct {
	cmd       *exec.Cmd
	addr      string
	admin     string // the admin listener (/metrics)
	dir       string
	stderr    *syncBuffer
	done      chan struct{}
	exitErr   error
	accessLog string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs easgate serve in front of cas: a plain-HTTP listener, an
// enforcing policy that quarantines devices of type QuarPhone, and a drain
// of 60 s.
func startServe(t *testing.T, cas *rawCAS) *servedGateway {
	t.Helper()
	bin := easgateBinary(t) // service_test.go
	dir := t.TempDir()
	addr, admin := freeAddr(t), freeAddr(t)
	g := &servedGateway{addr: addr, admin: admin, dir: dir, stderr: &syncBuffer{}, done: make(chan struct{}),
		accessLog: filepath.Join(dir, "access.log")}
	cfg := fmt.Sprintf(`listen:
  address: %q
  plain_http: true
upstreams:
  servers:
    - url: http://%s
  health_check:
    path: /hc
    interval: 1h
  timeouts:
    connect: 10s
    request: 60s
    long_poll_max: 600s
    long_poll_margin: 5s
    drain: 60s
auth:
  domains: [corp.example.com]
limits:
  max_held_long_polls: 10000
admin:
  address: %q
state:
  path: %s
log:
  level: info
  access_log: %s
policy:
  mode: enforce
  default_access: allow
  discovery_period: 0s
  rules:
    - name: quarantine-test-phones
      match: {device_type: QuarPhone}
      access: quarantine
`, addr, cas.addr, admin, filepath.Join(dir, "state.db"), g.accessLog)
	path := filepath.Join(dir, "easgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g.cmd = exec.Command(bin, "serve", "--config", path)
	g.cmd.Stderr = g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.exitErr = g.cmd.Wait(); close(g.done) }()
	t.Cleanup(func() {
		select {
		case <-g.done:
		default:
			_ = g.cmd.Process.Kill()
			<-g.done
		}
		if t.Failed() {
			t.Logf("easgate serve's log:\n%s", g.stderr.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("easgate serve does not listen on %s: %v\n%s", addr, err, g.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// heldLongPolls reads easgate_held_long_polls from the admin listener (-1
// when it cannot).
func (g *servedGateway) heldLongPolls() int {
	status, body, err := fasthttp.Get(nil, "http://"+g.admin+"/metrics")
	if err != nil || status != 200 {
		return -1
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "easgate_held_long_polls "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return int(n)
			}
		}
	}
	return -1
}

func (g *servedGateway) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := g.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// exited waits up to d for the process to end and reports whether it did.
func (g *servedGateway) exited(d time.Duration) bool {
	select {
	case <-g.done:
		return true
	case <-time.After(d):
		return false
	}
}

func easRequest(cmd, device, devType string, body []byte) []byte {
	return []byte("POST /Microsoft-Server-ActiveSync?Cmd=" + cmd + "&User=jdoe&DeviceId=" + device + "&DeviceType=" + devType +
		" HTTP/1.1\r\nHost: x\r\nMS-ASProtocolVersion: 14.1\r\nAuthorization: Basic " + basic(`CORP\jdoe`, "s3cret") + "\r\n" +
		"User-Agent: Apple-iPhone9C1/1402.100\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body))
}

func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

func wbxmlDoc(t *testing.T, build func(e *wbxml.Encoder)) []byte {
	e := wbxml.NewEncoder(nil)
	e.Header()
	build(e)
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), e.Bytes()...)
}

// heldPhone is a phone whose Ping is held; it reads the answer in the
// background.
type heldPhone struct {
	conn   net.Conn
	br     *bufio.Reader
	answer chan *fasthttp.Response
}

func holdPhones(t *testing.T, addr string, n int, devType string) []*heldPhone {
	t.Helper()
	ping := testkit.PingBody(t, 480)
	fs := wbxmlDoc(t, func(e *wbxml.Encoder) {
		e.Start(wbxml.FolderHierarchyFolderSync)
		e.Element(wbxml.FolderHierarchySyncKey, "0")
		e.End()
	})
	phones := make([]*heldPhone, n)
	for i := range phones {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		p := &heldPhone{conn: c, br: bufio.NewReader(c), answer: make(chan *fasthttp.Response, 1)}
		phones[i] = p
		dev := fmt.Sprintf("%s%05d", strings.ToLower(devType), i)
		if devType == "QuarPhone" { // the quarantine learns the Inbox first
			if _, err := c.Write(easRequest("FolderSync", dev, devType, fs)); err != nil {
				t.Fatal(err)
			}
			var resp fasthttp.Response
			if err := resp.Read(p.br); err != nil || resp.StatusCode() != 200 {
				t.Fatalf("FolderSync of %s: %v %d", dev, err, resp.StatusCode())
			}
		}
		if _, err := c.Write(easRequest("Ping", dev, devType, ping)); err != nil {
			t.Fatal(err)
		}
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
			resp := &fasthttp.Response{}
			if err := resp.Read(p.br); err != nil {
				p.answer <- nil
				return
			}
			p.answer <- resp
		}()
	}
	return phones
}

func accessLines(t *testing.T, path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// TestServeSIGTERMAnswersHeldPings: with 200 held Pings (150 at the CAS, 50
// of quarantined devices held by easgate) and a drain of 60 s, SIGTERM ends
// easgate serve within 10 s; every phone gets Ping Status 1 ("no changes",
// as when a heartbeat ends) and an access-log line, and the log says how
// many were held and when the drain ended.
func TestServeSIGTERMAnswersHeldPings(t *testing.T) {
	cas := startRawCAS(t)
	g := startServe(t, cas)
	const nCAS, nQuar = 150, 50
	phones := append(holdPhones(t, g.addr, nCAS, "iPhone"), holdPhones(t, g.addr, nQuar, "QuarPhone")...)
	deadline := time.Now().Add(30 * time.Second)
	for cas.held.Load() < nCAS || g.heldLongPolls() != len(phones) {
		if time.Now().After(deadline) {
			t.Fatalf("%d Pings held at the CAS (want %d), %d by the gateway (want %d)", cas.held.Load(), nCAS, g.heldLongPolls(), len(phones))
		}
		time.Sleep(20 * time.Millisecond)
	}

	start := time.Now()
	g.signal(t, syscall.SIGTERM)
	if !g.exited(10 * time.Second) {
		t.Fatalf("easgate serve still runs 10 s after SIGTERM with %d held Pings", len(phones))
	}
	t.Logf("easgate serve stopped %v after SIGTERM (exit: %v)", time.Since(start).Round(time.Millisecond), g.exitErr)
	if g.exitErr != nil {
		t.Errorf("exit: %v", g.exitErr)
	}
	for i, p := range phones {
		var resp *fasthttp.Response
		select {
		case resp = <-p.answer:
		case <-time.After(10 * time.Second):
		}
		if resp == nil {
			t.Errorf("phone %d got no HTTP answer", i)
			continue
		}
		var info eas.PingInfo
		err := eas.ReadPing(resp.Body(), &info)
		if resp.StatusCode() != 200 || err != nil || info.Status != eas.PingStatusExpired {
			t.Errorf("phone %d: HTTP %d, Ping Status %d (%v); want 200, Status 1", i, resp.StatusCode(), info.Status, err)
		}
		_ = p.conn.Close()
	}
	pings := map[string]int{}
	for _, l := range accessLines(t, g.accessLog) {
		if strings.Contains(l, `"command":"Ping"`) && strings.Contains(l, `"status":200`) {
			if strings.Contains(l, `"device_type":"QuarPhone"`) {
				pings["QuarPhone"]++
			} else if strings.Contains(l, `"why":"long_poll_cut"`) {
				pings["iPhone"]++
			}
		}
	}
	if pings["iPhone"] != nCAS || pings["QuarPhone"] != nQuar {
		t.Errorf("access log: %d Pings cut at the CAS (want %d), %d quarantine holds answered (want %d)",
			pings["iPhone"], nCAS, pings["QuarPhone"], nQuar)
	}
	log := g.stderr.String()
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "shutting down") || strings.Contains(l, "drain") || strings.Contains(l, "stopped") {
			t.Logf("log: %s", l)
		}
	}
	for _, want := range []string{`"held":200`, `drain ended`, `"drained":true`} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %s:\n%s", want, log)
		}
	}
}

// TestServeSecondSignalStopsAtOnce: a request the CAS is still working on
// holds the drain (60 s) after SIGTERM; a second signal ends the process at
// once, with a non-zero status.
func TestServeSecondSignalStopsAtOnce(t *testing.T) {
	cas := startRawCAS(t)
	g := startServe(t, cas)
	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(easRequest("FolderSync", "slow", "iPhone", nil)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for cas.held.Load() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the request did not reach the CAS")
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.signal(t, syscall.SIGTERM)
	if g.exited(2 * time.Second) {
		t.Fatalf("easgate serve stopped without draining the request in flight (exit: %v)", g.exitErr)
	}
	if log := g.stderr.String(); !strings.Contains(log, `"in_flight":1`) {
		t.Errorf("the log does not say one request is in flight:\n%s", log)
	}
	start := time.Now()
	g.signal(t, syscall.SIGINT)
	if !g.exited(5 * time.Second) {
		t.Fatal("easgate serve still runs 5 s after a second signal")
	}
	t.Logf("stopped %v after the second signal: %v", time.Since(start).Round(time.Millisecond), g.exitErr)
	if g.exitErr == nil {
		t.Error("a stop by a second signal exited 0")
	}
	if log := g.stderr.String(); !strings.Contains(log, "second signal") {
		t.Errorf("the log does not mention the second signal:\n%s", log)
	}
}
