package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
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
	"github.com/easgate/easgate/internal/testkit"
	"github.com/easgate/easgate/proxy/held"
	"github.com/easgate/easgate/proxy/upstream"
)

// holdingCAS is a raw HTTP/1.1 CAS that holds every Ping until easgate
// closes the connection it waits on, and counts the connections open to it
// and the Pings held on them: unlike a fasthttp handler blocked on a gate,
// it sees at once when easgate lets a held Ping go. FolderSync gets a
// Status 1 answer naming the Inbox (ServerId 9), so a quarantined device
// learns it; anything else gets Ping Status 1.
type holdingCAS struct {
	ln    net.Listener
	addr  string
	open  atomic.Int64 // connections open now
	held  atomic.Int64 // Pings waiting now
	pings atomic.Int64 // Pings received
	wg    sync.WaitGroup
}

func startHoldingCAS(t testing.TB) *holdingCAS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &holdingCAS{ln: ln, addr: ln.Addr().String()}
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[conn] = struct{}{}
			mu.Unlock()
			c.open.Add(1)
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				c.serve(conn)
				c.open.Add(-1)
				mu.Lock()
				delete(conns, conn)
				mu.Unlock()
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
		c.wg.Wait()
	})
	return c
}

var casInbox = eas.AppendFolderSyncResponse(nil, 1, "1", []eas.Folder{
	{ServerID: "9", ParentID: "0", DisplayName: "Inbox", Type: 2},
	{ServerID: "5", ParentID: "0", DisplayName: "Archive", Type: 12},
})

func (c *holdingCAS) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	var req fasthttp.Request
	for {
		req.Reset()
		if err := req.Read(br); err != nil {
			return
		}
		body := pingNoChanges
		switch string(req.URI().QueryArgs().Peek("Cmd")) {
		case "Ping":
			c.pings.Add(1)
			c.held.Add(1)
			_, _ = br.ReadByte() // easgate sends nothing more: this ends when it closes
			c.held.Add(-1)
			return
		case "FolderSync":
			body = casInbox
		}
		if string(req.URI().Path()) == "/hc" {
			body = nil
		}
		if _, err := fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
			return
		}
	}
}

// phoneRequest is a raw EAS POST of a phone with the given device id and
// type (HTTP/1.1 unless http10).
func phoneRequest(cmd, device, devType string, body []byte, http10 bool) []byte {
	proto := "HTTP/1.1"
	if http10 {
		proto = "HTTP/1.0"
	}
	return []byte("POST /Microsoft-Server-ActiveSync?Cmd=" + cmd + "&User=jdoe&DeviceId=" + device + "&DeviceType=" + devType +
		" " + proto + "\r\nHost: x\r\nMS-ASProtocolVersion: 14.1\r\nAuthorization: " + testBasicAuth + "\r\n" +
		"User-Agent: Apple-iPhone9C1/1402.100\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body))
}

// dialPhones opens n phone connections to addr in parallel; prepare runs
// on each (its requests before the held one) and returns its error.
func dialPhones(t testing.TB, addr string, n int, prepare func(i int, c net.Conn, br *bufio.Reader) error) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	sem := make(chan struct{}, 64)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.Dial("tcp", addr)
			if err == nil {
				err = prepare(i, c, bufio.NewReader(c))
			}
			if err != nil {
				if failed.Add(1) <= 3 {
					t.Errorf("phone %d: %v", i, err)
				}
				if c != nil {
					_ = c.Close()
				}
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d phones could not start", failed.Load(), n)
	}
	return conns
}

// casPhone sends a Ping the CAS holds.
func casPhone(ping []byte) func(int, net.Conn, *bufio.Reader) error {
	return func(i int, c net.Conn, _ *bufio.Reader) error {
		_, err := c.Write(phoneRequest("Ping", fmt.Sprintf("vcas%06d", i), "iPhone", ping, false))
		return err
	}
}

// quarPhone is a quarantined device (DeviceType QuarPhone): its FolderSync
// reaches the CAS (easgate learns the Inbox), then its Ping, on the same
// connection, is held by easgate (the Ping does not watch the Inbox, where
// the notice waits).
func quarPhone(t testing.TB, ping []byte) func(int, net.Conn, *bufio.Reader) error {
	fs := folderSyncZero()
	return func(i int, c net.Conn, br *bufio.Reader) error {
		dev := fmt.Sprintf("vquar%06d", i)
		if _, err := c.Write(phoneRequest("FolderSync", dev, "QuarPhone", fs, false)); err != nil {
			return err
		}
		var resp fasthttp.Response
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		if err := resp.Read(br); err != nil {
			return fmt.Errorf("FolderSync: %w", err)
		}
		if resp.StatusCode() != 200 {
			return fmt.Errorf("FolderSync: status %d", resp.StatusCode())
		}
		_ = c.SetReadDeadline(time.Time{})
		_, err := c.Write(phoneRequest("Ping", dev, "QuarPhone", ping, false))
		return err
	}
}

// vanishPolicy quarantines the devices of type QuarPhone and allows the
// others (whose held Pings are then watched, as in production).
func vanishPolicy(dir string) string {
	return fmt.Sprintf(`policy:
  mode: enforce
  default_access: allow
  discovery_period: 0s
  rules:
    - name: quarantine-test-phones
      match: {device_type: QuarPhone}
      access: quarantine
state:
  path: %s
`, filepath.Join(dir, "state.db"))
}

// closeWaitOn counts the sockets in CLOSE-WAIT whose local port is port
// (the gateway's side of phone connections the phones closed).
func closeWaitOn(t testing.TB, port int) int {
	t.Helper()
	n := 0
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 4 || fs[3] != "08" { // 08: CLOSE_WAIT
				continue
			}
			i := strings.LastIndexByte(fs[1], ':')
			if p, err := strconv.ParseUint(fs[1][i+1:], 16, 16); err == nil && int(p) == port {
				n++
			}
		}
	}
	return n
}

func portOf(t testing.TB, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// clientGoneLines counts the access-log lines of Pings answered 499
// client_gone, by device type.
func clientGoneLines(t testing.TB, path string) map[string]int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if bytes.Contains(line, []byte(`"status":499`)) && bytes.Contains(line, []byte(`"why":"client_gone"`)) &&
			bytes.Contains(line, []byte(`"command":"Ping"`)) {
			typ := "other"
			for _, dt := range []string{"iPhone", "QuarPhone"} {
				if bytes.Contains(line, []byte(`"device_type":"`+dt+`"`)) {
					typ = dt
				}
			}
			out[typ]++
		}
	}
	return out
}

// TestVanishedPhones kills phones while their Pings are held: n at the CAS
// and n/4 quarantined ones held by easgate itself, through a gateway in its
// own process (the held-Ping memory test's set-up). Within 30 s the gateway
// has closed every phone connection (no CLOSE-WAIT socket on its listener
// port), its held gauges read 0, the connections the CAS held the Pings on
// are closed, and the access log has a 499 client_gone line for each.
//
// EASGATE_VANISH_PINGS sets the number of Pings (default 250, of which 200
// at the CAS); CI runs 9,000.
func TestVanishedPhones(t *testing.T) {
	total := 250
	if v, err := strconv.Atoi(os.Getenv("EASGATE_VANISH_PINGS")); err == nil && v > 0 {
		total = v
	}
	nQuar := total / 5
	nCAS := total - nQuar
	// This process holds a descriptor per phone and per Ping at the CAS,
	// and so does the gateway.
	if lim := raiseFileLimit(); uint64(total+nCAS+500) > lim {
		t.Fatalf("open-file limit %d is too low for %d Pings", lim, total)
	}
	cas := startHoldingCAS(t)
	dir := t.TempDir()
	accessLog := filepath.Join(dir, "access.log")
	yaml := testYAML([]string{"http://" + cas.addr}, map[string]string{"health_interval": "60s", "access_log": accessLog})
	yaml = strings.Replace(yaml, "connect: 5s", "connect: 20s", 1)
	yaml = strings.Replace(yaml, "long_poll_max: 120s", "long_poll_max: 600s", 1)
	yaml += vanishPolicy(dir)
	g := startGatewayProc(t, yaml)
	port := portOf(t, g.addr)
	before := childStats(t, g)
	ping := testkit.PingBody(t, 480)

	start := time.Now()
	phones := dialPhones(t, g.addr, nCAS, casPhone(ping))
	phones = append(phones, dialPhones(t, g.addr, nQuar, quarPhone(t, ping))...)
	waitForLong(t, "the Pings held", 2*time.Minute, func() bool {
		return cas.held.Load() == int64(nCAS) && childStats(t, g)["held"] == int64(total)
	})
	held := childStats(t, g)
	t.Logf("%d Pings held (%d at the CAS, %d quarantined) in %v: %v", total, nCAS, nQuar, time.Since(start).Round(time.Millisecond), held)
	if held["gauge"] != int64(total) || held["set"] != int64(total) {
		t.Fatalf("held gauge %d, held set %d; want %d", held["gauge"], held["set"], total)
	}

	// The phones vanish.
	killed := time.Now()
	for _, c := range phones {
		_ = c.Close()
	}
	var after map[string]int64
	var cw int
	deadline := killed.Add(30 * time.Second)
	for {
		after = childStats(t, g)
		cw = closeWaitOn(t, port)
		if cw == 0 && cas.held.Load() == 0 && after["gauge"] == 0 && after["held"] == 0 && after["hijacked"] == 0 && after["set"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after %d phones vanished: %d CLOSE-WAIT sockets on the listener, %d Pings still held at the CAS, gateway %v",
				total, cw, cas.held.Load(), after)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d vanished phones freed in %v; gateway before the Pings %v, after %v; CAS connections open %d",
		total, time.Since(killed).Round(time.Millisecond), before, after, cas.open.Load())
	// Descriptors: the phones' and the held CAS connections are closed (the
	// pool may keep a few idle CAS connections of the FolderSyncs).
	if after["fds"] > before["fds"]+64 {
		t.Errorf("gateway has %d descriptors open, %d before the Pings", after["fds"], before["fds"])
	}
	waitForLong(t, "the access-log lines", 10*time.Second, func() bool {
		got := clientGoneLines(t, accessLog)
		return got["iPhone"] == nCAS && got["QuarPhone"] == nQuar
	})
}

// childStats asks the gateway child for its held-request figures.
func childStats(t testing.TB, g *gatewayProc) map[string]int64 {
	t.Helper()
	reply := g.command(t, "held")
	out := map[string]int64{}
	for _, f := range strings.Fields(strings.TrimPrefix(reply, "held ")) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("gateway child: %q", reply)
		}
		out[k] = n
	}
	return out
}

func waitForLong(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestVanishedPhonesUnwatched: without a policy, held Pings are not
// watched, and a vanished phone is still noticed, whether its Ping waits on
// a hijacked connection or (HTTP/1.0) in its handler. A phone that sends
// its next request pipelined on the held connection is not gone: it is
// answered, then served. The last held Ping stays held across a reload,
// and is answered at shutdown at once, as if its heartbeat had ended.
func TestVanishedPhonesUnwatched(t *testing.T) {
	cas := startHoldingCAS(t)
	dir := t.TempDir()
	accessLog := filepath.Join(dir, "access.log")
	yaml := testYAML([]string{"http://" + cas.addr}, map[string]string{"health_interval": "60s", "access_log": accessLog, "drain": "60s"})
	p := startProxy(t, mustParse(t, yaml))
	ping := testkit.PingBody(t, 480)
	const n = 8
	phones := dialPhones(t, p.addr, n, casPhone(ping))
	old := dialPhones(t, p.addr, 1, func(_ int, c net.Conn, _ *bufio.Reader) error {
		_, err := c.Write(phoneRequest("Ping", "vold", "iPhone", ping, true)) // HTTP/1.0: held in its handler
		return err
	})[0]
	piped := dialPhones(t, p.addr, 1, func(_ int, c net.Conn, _ *bufio.Reader) error {
		_, err := c.Write(phoneRequest("Ping", "vpipe", "iPhone", ping, false))
		return err
	})[0]
	waitFor(t, "the Pings held at the CAS", func() bool { return cas.held.Load() == n+2 })
	if got := p.s.registry.Len(); got != n+2 {
		t.Fatalf("%d requests in the held set, want %d", got, n+2)
	}
	// The pipelining phone sends its next request before the Ping's answer.
	if _, err := piped.Write(phoneRequest("FolderSync", "vpipe", "iPhone", nil, false)); err != nil {
		t.Fatal(err)
	}
	for _, c := range append(phones, old) {
		_ = c.Close()
	}
	waitForLong(t, "the vanished phones' Pings freed", 30*time.Second, func() bool {
		return cas.held.Load() == 1 && p.s.held.Load() == 1 && p.s.registry.Len() == 1 && p.s.conns.Hijacked() == 1 &&
			closeWaitOn(t, portOf(t, p.addr)) == 0
	})
	// Two more sweeps: the pipelining phone is still held.
	time.Sleep(2 * held.VanishEvery)
	if cas.held.Load() != 1 || p.s.held.Load() != 1 {
		t.Fatalf("the phone with a pipelined request was cut: %d held at the CAS, %d by the gateway", cas.held.Load(), p.s.held.Load())
	}

	// A reload leaves it held on the old configuration.
	if err := p.s.Reload(mustParse(t, yaml)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if cas.held.Load() != 1 || p.s.held.Load() != 1 {
		t.Fatalf("a reload cut the held Ping at once: %d held at the CAS, %d by the gateway", cas.held.Load(), p.s.held.Load())
	}

	// Shutdown answers it at once (the drain is 60 s, for the retiring
	// configuration too), and the request it pipelined is not served (the
	// gateway is stopping).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	began := time.Now()
	go func() { stopped <- p.s.Shutdown(ctx) }()
	br := bufio.NewReader(piped)
	_ = piped.SetReadDeadline(time.Now().Add(20 * time.Second))
	var resp fasthttp.Response
	if err := resp.Read(br); err != nil {
		t.Fatalf("the held Ping got no answer at shutdown: %v", err)
	}
	if resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), pingNoChanges) || !resp.ConnectionClose() {
		t.Errorf("held Ping at shutdown: status %d, body % x, Connection: close %v; want Ping Status 1 and close",
			resp.StatusCode(), resp.Body(), resp.ConnectionClose())
	}
	if err := <-stopped; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if d := time.Since(began); d > 20*time.Second {
		t.Errorf("Shutdown with one held Ping took %v (drain 60 s): the held Ping waited for the drain", d)
	}

	got := clientGoneLines(t, accessLog)
	if got["iPhone"] != n+1 {
		t.Errorf("%d access-log lines say 499 client_gone, want %d: %v", got["iPhone"], n+1, got)
	}
	data, _ := os.ReadFile(accessLog)
	if !bytes.Contains(data, []byte(`"device_id":"vpipe"`)) || !bytes.Contains(data, []byte(`"why":"long_poll_cut"`)) {
		t.Errorf("no access-log line for the Ping answered at shutdown:\n%s", data)
	}
	if v := metricValue(t, p.s, "easgate_rejected_requests_total", map[string]string{"reason": "client_gone"}); v != 0 {
		t.Errorf("a vanished phone counted as a refusal: easgate_rejected_requests_total{reason=client_gone} %v", v)
	}
}

// TestVanishedTLSPhone: a phone on TLS that leaves (close_notify, then FIN)
// while the CAS holds its Ping is noticed through its TCP socket; a TLS
// phone that stays is not cut.
func TestVanishedTLSPhone(t *testing.T) {
	cas := startHoldingCAS(t)
	dir := t.TempDir()
	gwCert, gwKey, _ := testkit.SelfSignedCert(t, dir, "mail.example.com")
	accessLog := filepath.Join(dir, "access.log")
	y := testYAML([]string{"http://" + cas.addr}, map[string]string{"health_interval": "60s", "access_log": accessLog})
	y = strings.Replace(y, "  plain_http: true\n", "  tls:\n    certificate: "+gwCert+"\n    key: "+gwKey+"\n", 1)
	p := startProxy(t, mustParse(t, y))
	roots := x509.NewCertPool()
	pem, err := os.ReadFile(gwCert)
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(pem)
	ping := testkit.PingBody(t, 480)
	dial := func(device string) *tls.Conn {
		c, err := tls.Dial("tcp", p.addr, &tls.Config{RootCAs: roots, ServerName: "mail.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(phoneRequest("Ping", device, "iPhone", ping, false)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	leaving, staying := dial("vtlsgone"), dial("vtlsstay")
	defer staying.Close()
	waitFor(t, "the Pings held at the CAS", func() bool { return cas.held.Load() == 2 })
	_ = leaving.Close() // close_notify, then FIN
	waitForLong(t, "the TLS phone's Ping freed", 30*time.Second, func() bool {
		return cas.held.Load() == 1 && p.s.held.Load() == 1 && closeWaitOn(t, portOf(t, p.addr)) == 0
	})
	time.Sleep(held.VanishEvery + time.Second)
	if cas.held.Load() != 1 || p.s.held.Load() != 1 {
		t.Fatalf("the TLS phone that stays was cut: %d held at the CAS, %d by the gateway", cas.held.Load(), p.s.held.Load())
	}
	waitForLong(t, "the access-log line", 10*time.Second, func() bool {
		data, _ := os.ReadFile(accessLog)
		return bytes.Contains(data, []byte(`"device_id":"vtlsgone"`)) && clientGoneLines(t, accessLog)["iPhone"] == 1
	})
}

// TestVanishedQuarantinedHTTP10Phone: a quarantined device's Ping sent over
// HTTP/1.0 is held by its handler (the connection cannot be hijacked); when
// the phone leaves, the hold is dropped and logged 499 client_gone.
func TestVanishedQuarantinedHTTP10Phone(t *testing.T) {
	cas := startHoldingCAS(t)
	dir := t.TempDir()
	accessLog := filepath.Join(dir, "access.log")
	y := testYAML([]string{"http://" + cas.addr}, map[string]string{"health_interval": "60s", "access_log": accessLog})
	p := startProxy(t, mustParse(t, y+vanishPolicy(dir)))
	// The FolderSync teaches easgate the Inbox (HTTP/1.0: its connection
	// closes after the answer).
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(phoneRequest("FolderSync", "vquar10", "QuarPhone", folderSyncZero(), true)); err != nil {
		t.Fatal(err)
	}
	var resp fasthttp.Response
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := resp.Read(bufio.NewReader(c)); err != nil || resp.StatusCode() != 200 {
		t.Fatalf("FolderSync: %v %d", err, resp.StatusCode())
	}
	_ = c.Close()
	c, err = net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(phoneRequest("Ping", "vquar10", "QuarPhone", testkit.PingBody(t, 480), true)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Ping held by easgate", func() bool { return p.s.held.Load() == 1 && p.s.registry.Len() == 1 })
	if p.s.conns.Hijacked() != 0 {
		t.Fatal("an HTTP/1.0 Ping was hijacked")
	}
	_ = c.Close()
	waitForLong(t, "the hold dropped", 30*time.Second, func() bool {
		return p.s.held.Load() == 0 && p.s.registry.Len() == 0 && p.s.registry.Watched() == 0 && closeWaitOn(t, portOf(t, p.addr)) == 0
	})
	waitForLong(t, "the access-log line", 10*time.Second, func() bool { return clientGoneLines(t, accessLog)["QuarPhone"] == 1 })
	if cas.pings.Load() != 0 {
		t.Error("the quarantined device's Ping reached the CAS")
	}
}

// BenchmarkVanishProbe is the sweep's cost per held request: one check of
// a phone's TCP socket (an open one, as nearly all are).
func BenchmarkVanishProbe(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	server := <-accepted
	defer server.Close()
	pc := &phoneConn{Conn: server}
	var p upstream.PeerProbe
	b.ReportAllocs()
	for b.Loop() {
		if p.Closed(tcpOf(pc)) {
			b.Fatal("an open connection reads as closed")
		}
	}
	_ = c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !p.Closed(tcpOf(pc)) {
		if time.Now().After(deadline) {
			b.Fatal("a closed connection never reads as closed")
		}
		time.Sleep(time.Millisecond)
	}
}
