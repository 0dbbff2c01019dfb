package kerberos_test

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// fakeCAS answers 401 with a Negotiate challenge to the first request of
// each command in reject (every request when always), 200 otherwise, and
// records the Authorization header of every request. It stands in for a
// CAS that refuses a ticket (a stale one, a changed key): it cannot check
// tickets, so the Apache stand-in does that part of the suite.
type fakeCAS struct {
	mu     sync.Mutex
	reject map[string]bool // command -> reject every time (true) or once (false)
	seen   map[string][]string
	srv    *http.Server
	url    string
}

func startFakeCAS(reject map[string]bool) (*fakeCAS, error) {
	f := &fakeCAS{reject: reject, seen: map[string][]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.url = "http://" + ln.Addr().String()
	f.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cmd := r.URL.Query().Get("Cmd")
		f.mu.Lock()
		f.seen[cmd] = append(f.seen[cmd], r.Header.Get("Authorization"))
		n := len(f.seen[cmd])
		always, ok := f.reject[cmd]
		f.mu.Unlock()
		if ok && (always || n == 1) {
			w.Header().Set("WWW-Authenticate", "Negotiate")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *fakeCAS) requests(cmd string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen[cmd]...)
}

// TestCASRefusesTicket: a 401 Negotiate from the CAS gets one new ticket
// (a KDC exchange) and one retry for a request whose body can be replayed;
// a second 401 goes to the phone; a SendMail is never sent twice.
func TestCASRefusesTicket(t *testing.T) {
	need(t)
	f, err := startFakeCAS(map[string]bool{"FolderSync": false, "MoveItems": true, "SendMail": false})
	if err != nil {
		t.Fatal(err)
	}
	defer f.srv.Close()
	g, err := startGateway("retry", func(dir string, port int) (string, error) {
		return kerberosConfigTo(dir, port, env.SPN, f.url)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := g.stop(); err != nil {
			t.Error(err)
		}
	}()
	c := phone(cert(t, "bob@corp.test"))

	before := relay.conns.Load()
	a, err := command(ctx(t), c, g.url, "FolderSync", "bob", "KRBRETRY1", false)
	if err != nil {
		t.Fatal(err)
	}
	seen := f.requests("FolderSync")
	if a.status != 200 || len(seen) != 2 {
		t.Fatalf("FolderSync refused once: phone got %d, CAS saw %d requests; want 200 after 2\n%s", a.status, len(seen), g.tail())
	}
	for i, h := range seen {
		if !strings.HasPrefix(h, "Negotiate ") {
			t.Errorf("attempt %d carried %.12q, not Negotiate", i+1, h)
		}
	}
	if seen[0] == seen[1] {
		t.Error("the retry carried the refused token again")
	}
	if n := relay.conns.Load() - before; n < 3 {
		t.Errorf("%d KDC connections; want a ticket and, after the 401, a new one (S4U2Self + S4U2Proxy each)", n)
	}
	if _, ok := g.logHas("retrying once with a new one", `"principal":"bob@CORP.TEST"`); !ok {
		t.Errorf("no log line for the retry:\n%s", g.tail())
	}

	a, err = command(ctx(t), c, g.url, "MoveItems", "bob", "KRBRETRY1", false)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.requests("MoveItems")); a.status != 401 || n != 2 {
		t.Errorf("MoveItems refused every time: phone got %d, CAS saw %d; want 401 after exactly 2 (one retry)", a.status, n)
	}

	a, err = command(ctx(t), c, g.url, "SendMail", "bob", "KRBRETRY1", false)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.requests("SendMail")); a.status != 401 || n != 1 {
		t.Errorf("SendMail refused once: phone got %d, CAS saw %d; want the 401 after exactly 1 (never sent twice)", a.status, n)
	}
}
