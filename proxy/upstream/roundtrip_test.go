package upstream

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// doTrip sends one ordinary request through Do on hc and reads the answer
// whole. whole reports whether Do read the body itself (no stream).
func doTrip(hc *fasthttp.HostClient, method string, timeout time.Duration) (status int, body []byte, whole bool, err error) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("http://cas.test/Microsoft-Server-ActiveSync?Cmd=Sync&User=jdoe&DeviceId=DEV&DeviceType=iPhone")
	req.Header.SetMethod(method)
	req.SetBodyString("sync body")
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	stream, err := (&Backend{hc: hc}).Do(req, resp, time.Now().Add(timeout))
	if err != nil {
		return 0, nil, false, err
	}
	status, whole = resp.StatusCode(), stream == nil
	if whole {
		return status, append([]byte(nil), resp.Body()...), true, nil
	}
	if len(resp.Body()) != 0 {
		return 0, nil, false, errors.New("a streamed answer left bytes in the response's body")
	}
	body, err = io.ReadAll(io.LimitReader(stream, 1<<20))
	if cerr := stream.Close(); err == nil {
		err = cerr
	}
	return status, body, false, err
}

// TestDoAnswers: every framing of a CAS answer comes out of Do as
// fasthttp's own parser reads it; small bodies of known length are read
// whole and the rest streams; the connection is pooled only when the
// answer was read to its end and neither side asked to close it.
func TestDoAnswers(t *testing.T) {
	big := strings.Repeat("b", SmallBody+1)
	type doCase struct {
		name   string
		answer string
		method string
		whole  bool // Do reads the body itself
		pooled bool
		any    bool // a captured answer: whole and pooled are not checked
	}
	cases := []doCase{
		{"small", "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: 5\r\n\r\nhello", "POST", true, true, false},
		{"empty", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "POST", true, true, false},
		{"at limit", "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(SmallBody) + "\r\n\r\n" + big[:SmallBody], "POST", true, true, false},
		{"over limit", "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n" + big, "POST", false, true, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", "POST", false, true, false},
		{"close delimited", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", "POST", false, false, false},
		{"cas closes", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "POST", true, false, false},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", "POST", true, true, false},
		{"not modified", "HTTP/1.1 304 Not Modified\r\nContent-Length: 12\r\n\r\n", "GET", true, true, false},
		{"head", "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", "HEAD", true, true, false},
		{"continue first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "POST", true, true, false},
		{"401 with body", "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 4\r\n\r\nnope", "POST", true, true, false},
	}
	for name, answer := range heldAnswers(t) {
		cases = append(cases, doCase{name: name, answer: string(answer), method: "POST", any: true})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var wg sync.WaitGroup
			defer wg.Wait()
			hc := pipeClient([]byte(c.answer), &wg)
			defer hc.CloseIdleConnections()
			status, body, whole, err := doTrip(hc, c.method, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if c.method != "HEAD" {
				wantStatus, wantBody, ok := referenceRead([]byte(c.answer))
				if !ok {
					t.Fatal("fasthttp cannot read the answer")
				}
				if c.method == "GET" && wantStatus == fasthttp.StatusNotModified {
					wantBody = nil
				}
				if status != wantStatus || !bytes.Equal(body, wantBody) {
					t.Fatalf("status %d body %q, want %d %q", status, body, wantStatus, wantBody)
				}
			} else if status != 200 || len(body) != 0 {
				t.Fatalf("HEAD: status %d body %q", status, body)
			}
			if c.any {
				return
			}
			if whole != c.whole {
				t.Fatalf("read whole %v, want %v", whole, c.whole)
			}
			if got := hc.IdleConnsCount(); (got == 1) != c.pooled || hc.ConnsCount() != got {
				t.Fatalf("%d idle of %d connections after the answer, want pooled=%v", got, hc.ConnsCount(), c.pooled)
			}
		})
	}
}

// TestDoBrokenAnswers: an answer cut short or unreadable is an error that
// quotes none of its bytes, and its connection is closed, not pooled.
func TestDoBrokenAnswers(t *testing.T) {
	for name, answer := range map[string]string{
		"short body":   "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
		"bad status":   "HTTP/1.1 2x0 OK\r\nSet-Cookie: s=secret\r\n\r\n",
		"no answer":    "",
		"only 1xx":     "HTTP/1.1 100 Continue\r\n\r\n",
		"header cut":   "HTTP/1.1 200 OK\r\nContent-Le",
		"too many 1xx": strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", maxInterim+2),
	} {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			defer wg.Wait()
			hc := pipeClient([]byte(answer), &wg)
			defer hc.CloseIdleConnections()
			_, _, _, err := doTrip(hc, "POST", 5*time.Second)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), `"`) {
				t.Fatalf("error quotes the answer: %v", err)
			}
			if hc.ConnsCount() != 0 {
				t.Fatalf("%d connections left open after a broken answer", hc.ConnsCount())
			}
		})
	}
}

// TestDoReusesConnection: small answers hand their connection back before
// Do returns, so back-to-back requests use one connection to the CAS.
func TestDoReusesConnection(t *testing.T) {
	cas := newRawCAS(t, nil, func(req *fasthttp.Request) (string, bool) {
		return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(req.Body())) + "\r\n\r\n" + string(req.Body()), false
	})
	b := testBackend(t, "http://"+cas.addr, Options{})
	defer b.hc.CloseIdleConnections()
	for i := range 5 {
		req := fasthttp.AcquireRequest()
		req.SetRequestURI("http://" + cas.addr + "/Microsoft-Server-ActiveSync?Cmd=Sync")
		req.Header.SetMethod("POST")
		want := "body " + strconv.Itoa(i)
		req.SetBodyString(want)
		resp := fasthttp.AcquireResponse()
		stream, err := b.Do(req, resp, time.Now().Add(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if stream != nil || string(resp.Body()) != want {
			t.Fatalf("answer %q (stream %v), want %q read whole", resp.Body(), stream != nil, want)
		}
		fasthttp.ReleaseResponse(resp)
		fasthttp.ReleaseRequest(req)
	}
	if got := cas.accepted.Load(); got != 1 {
		t.Fatalf("CAS accepted %d connections, want 1", got)
	}
	if _, err := b.Do(fasthttp.AcquireRequest(), fasthttp.AcquireResponse(), time.Now().Add(-time.Second)); !errors.Is(err, fasthttp.ErrTimeout) {
		t.Fatalf("past deadline: %v, want ErrTimeout", err)
	}
}

// FuzzDo feeds arbitrary CAS answers to Do: it never panics or hangs, its
// errors never quote the answer, the connection is pooled only when idle
// and reusable, and what it reads is what fasthttp's own parser reads.
func FuzzDo(f *testing.F) {
	addTripSeeds(f)
	f.Fuzz(func(t *testing.T, answer []byte) {
		checkFuzzedTrip(t, answer, func(hc *fasthttp.HostClient) (int, []byte, error) {
			status, body, _, err := doTrip(hc, "POST", 5*time.Second)
			return status, body, err
		})
	})
}

// TestKeepDeadline: a deadline in force stands for a new one only when it
// ends no later than the new one and at most a 64th of its remaining time
// before it.
func TestKeepDeadline(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	cur := now.Add(time.Minute)
	for _, c := range []struct {
		name      string
		cur, next time.Time
		keep      bool
	}{
		{"same", cur, cur, true},
		{"moved by a millisecond", cur, cur.Add(time.Millisecond), true},
		{"moved by the slack", cur, cur.Add(time.Minute / 64), true},
		{"moved by more", cur, cur.Add(time.Minute/64 + time.Millisecond), false},
		{"new one earlier", cur, cur.Add(-time.Millisecond), false},
		{"none in force", time.Time{}, cur, false},
		{"clearing", cur, time.Time{}, false},
		{"in force has passed", now.Add(-time.Millisecond), now.Add(time.Millisecond), false},
		{"short timeout", now.Add(100 * time.Millisecond), now.Add(110 * time.Millisecond), false},
	} {
		if got := KeepDeadline(c.cur, c.next, now); got != c.keep {
			t.Errorf("%s: KeepDeadline = %v, want %v", c.name, got, c.keep)
		}
	}
}
