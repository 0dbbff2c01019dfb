package multinode

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/easgate/easgate/bench"
)

// An easbench fleet spread over both nodes by the balancer syncs without
// an error, and both nodes' devices end up in the shared database.
func TestFleetAcrossNodes(t *testing.T) {
	e := newEnv(t, bench.FakeCASConfig{PingChangeEvery: 120 * time.Second})
	a, b := e.startNode("A", ""), e.startNode("B", "")
	lb := newBalancer(t, a, b)
	rep, err := bench.Run(bench.RunConfig{Target: lb.url(), Devices: 120, Duration: 15 * time.Second, Ramp: 3 * time.Second,
		Heartbeat: 480 * time.Second, TimeScale: timeScale, Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fleet: %d requests, %d errors; node A served %d, node B %d", rep.Requests, rep.Errors, a.requests(), b.requests())
	if rep.Errors != 0 || rep.Requests < 500 {
		t.Fatalf("fleet: %d requests, %d errors (%v), want many and none", rep.Requests, rep.Errors, rep.ErrorKinds)
	}
	if a.requests() < 100 || b.requests() < 100 {
		t.Fatalf("the balancer did not spread the fleet: A %d, B %d requests", a.requests(), b.requests())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := e.sql(`SELECT count(*) FROM easgate_records WHERE bucket = 'devices' AND value IS NOT NULL`)
		if n == 120 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d device records in the shared database, want 120", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if up := a.metric(t, "easgate_state_database_up") + b.metric(t, "easgate_state_database_up"); up != 2 {
		t.Fatalf("easgate_state_database_up: %v of 2", up)
	}
}

// newPhone is a phone that talks to the given nodes: with several, each
// request goes over a new connection to the next node in turn (a balancer
// without affinity).
func newPhone(user, device, devType string, nodes ...*node) *bench.Device {
	prof := bench.Profiles["ios"]
	if devType != "" {
		prof.DeviceType = devType
	}
	var turn int
	var mu sync.Mutex
	client := bench.NewHTTPClient(nil)
	client.MaxIdemponentCallAttempts = 1
	if len(nodes) > 1 {
		client.MaxConnDuration = time.Nanosecond // one request per connection
		client.Dial = func(string) (net.Conn, error) {
			mu.Lock()
			n := nodes[turn%len(nodes)]
			turn++
			mu.Unlock()
			return net.DialTimeout("tcp", n.addr, 5*time.Second)
		}
	}
	return bench.NewDevice(bench.DeviceConfig{Target: nodes[0].url(), User: user, Password: "pw", DeviceID: device,
		Profile: prof, Client: client, TimeScale: timeScale, Timeout: 90 * time.Second})
}

// `easgate devices block` sent to node B answers the phone's Ping held on
// node A within 2 s.
func TestBlockOnOneNodeAnswersHeldPingOnOther(t *testing.T) {
	e := newEnv(t, bench.FakeCASConfig{})
	a, b := e.startNode("A", ""), e.startNode("B", "")
	p := newPhone("alice@corp.example.com", "ApplBLOCKME0001", "", a)
	if err := p.Setup(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		status int
		err    error
		at     time.Time
	}
	res := make(chan result, 1)
	go func() {
		st, _, err := p.Ping(3540) // held 59 s by the fake CAS
		res <- result{st, err, time.Now()}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for a.metric(t, "easgate_held_long_polls") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the Ping is not held on node A")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The administrator acts on node B, which lists the device the phone
	// reached node A with.
	waitDevice(t, b, "alice@corp.example.com", "ApplBLOCKME0001")
	sent := time.Now() // the command's own start-up counts
	easgate(t, "devices", "block", "--admin", "http://"+b.admin, "--user", "alice@corp.example.com", "--device-id", "ApplBLOCKME0001")
	select {
	case r := <-res:
		took := r.at.Sub(sent)
		t.Logf("the held Ping on A answered %v after the block on B (status %d, %v)", took.Round(time.Millisecond), r.status, r.err)
		if took > 2*time.Second {
			t.Fatalf("the Ping answered after %v, want within 2 s", took)
		}
		if r.err == nil || bench.ErrorKind(r.err) != bench.KindBlocked {
			t.Fatalf("the Ping's answer: status %d, %v; want the block answer", r.status, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the Ping held on A was not answered after the block on B")
	}
	// The next request, on either node, is blocked too.
	if _, _, err := newPhone("alice@corp.example.com", "ApplBLOCKME0001", "", b).Sync("1"); bench.ErrorKind(err) != bench.KindBlocked {
		t.Fatalf("a request on B after the block: %v", err)
	}
}

// A quarantined phone that alternates between the nodes gets exactly one
// notice: both nodes continue one quarantine episode.
func TestQuarantineNoticeOnceAcrossNodes(t *testing.T) {
	e := newEnv(t, bench.FakeCASConfig{})
	a, b := e.startNode("A", ""), e.startNode("B", "")
	p := newPhone("bob@corp.example.com", "QUARPHONE000001", "QuarPhone", a, b)
	pace := func() { time.Sleep(400 * time.Millisecond) } // a phone's requests are seconds apart; the feed takes milliseconds
	if err := p.Options(); err != nil {
		t.Fatal(err)
	}
	pace()
	if err := p.Provision(); err != nil {
		t.Fatal(err)
	}
	pace()
	if err := p.FolderSync(); err != nil {
		t.Fatal(err)
	}
	pace()
	notices := 0
	for i := range 8 {
		before := p.Items
		_, _, err := p.Sync(p.InboxID)
		if err != nil && bench.ErrorKind(err) != bench.KindDenied {
			t.Fatalf("Sync %d: %v", i, err)
		}
		notices += p.Items - before
		if p.Items > before && !strings.Contains(p.LastSubject, "Enrol your phone") {
			t.Fatalf("Sync %d delivered %q, not the notice", i, p.LastSubject)
		}
		pace()
	}
	if p.Decision() != bench.DecisionQuarantined {
		t.Fatalf("the phone's decision is %q, want quarantined", p.Decision())
	}
	if notices != 1 {
		t.Fatalf("the phone received %d notices over both nodes, want exactly 1", notices)
	}
	if a.requests() < 3 || b.requests() < 3 {
		t.Fatalf("the phone did not alternate: A %d, B %d requests", a.requests(), b.requests())
	}
}

// A stale password sent to both nodes reaches the CAS no more often than
// auth.lockout.failures (3) in total.
func TestLockoutCountsOverBothNodes(t *testing.T) {
	e := newEnv(t, bench.FakeCASConfig{Users: map[string]string{"carol": "the-new-password"}})
	a, b := e.startNode("A", ""), e.startNode("B", "")
	nodes := []*node{a, b}
	c := &fasthttp.Client{}
	refused := 0
	for i := range 12 {
		n := nodes[i%2]
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(n.url() + "/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=carol&DeviceId=ApplCAROL000001&DeviceType=iPhone")
		req.Header.SetMethod("POST")
		req.Header.Set("MS-ASProtocolVersion", "14.1")
		req.Header.Set("Authorization", "Basic "+basic("carol@corp.example.com", "the-old-password"))
		req.Header.SetContentType("application/vnd.ms-sync.wbxml")
		req.SetBody([]byte{0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, 0x30, 0x00, 0x01, 0x01})
		if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != 401 {
			t.Fatalf("request %d on %s: HTTP %d, want 401", i, n.name, resp.StatusCode())
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
		time.Sleep(300 * time.Millisecond)
	}
	hits := e.cas.Stats().AuthFailures
	refused = 12 - int(hits)
	t.Logf("12 requests with a stale password over both nodes: %d reached the CAS, %d answered by easgate", hits, refused)
	if hits > 3 {
		t.Fatalf("the stale password reached the CAS %d times, want at most auth.lockout.failures = 3", hits)
	}
	if hits == 0 {
		t.Fatal("no request reached the CAS: the test proves nothing")
	}
}

func basic(user, pass string) string { return b64(user + ":" + pass) }
