package proxy

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/proxy/config"
)

// lockedBuffer is an io.Writer that records each Write whole.
type lockedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.buf.Write(p)
}

// Lines written at once by many requests, while the buffer is flushed by
// its timer and swapped to other writers (reopen), all arrive whole and
// once, each writer's in order; a line larger than the buffer too; close
// writes out the rest.
func TestLineBufferConcurrent(t *testing.T) {
	outs := []*lockedBuffer{new(lockedBuffer)}
	b := newLineBuffer(outs[0])
	const writers, lines = 8, 3000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				pad := strings.Repeat("x", (g*31+i*7)%300)
				if g == 0 && i%1000 == 999 {
					pad = strings.Repeat("y", lineBufferSize+123)
				}
				line := fmt.Sprintf("{\"g\":%d,\"i\":%d,\"pad\":%q}\n", g, i, pad)
				if n, err := b.Write([]byte(line)); n != len(line) || err != nil {
					t.Errorf("Write = %d, %v", n, err)
					return
				}
			}
		})
	}
	for range 5 {
		b.flush()
		next := new(lockedBuffer)
		outs = append(outs, next)
		b.swap(next)
	}
	wg.Wait()
	b.close()

	seen := make(map[[2]int]bool)
	for _, out := range outs {
		last := make(map[int]int)
		text := out.buf.String()
		if text != "" && !strings.HasSuffix(text, "\n") {
			t.Fatal("output ends in the middle of a line")
		}
		for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
			if line == "" {
				continue
			}
			var g, i int
			if _, err := fmt.Sscanf(line, `{"g":%d,"i":%d,`, &g, &i); err != nil || !strings.HasSuffix(line, `"}`) {
				t.Fatalf("broken line %.80q: %v", line, err)
			}
			if seen[[2]int{g, i}] {
				t.Fatalf("line %d of %d twice", i, g)
			}
			seen[[2]int{g, i}] = true
			if l, ok := last[g]; ok && l > i {
				t.Fatalf("writer %d: line %d after %d", g, i, l)
			}
			last[g] = i
		}
	}
	if len(seen) != writers*lines {
		t.Fatalf("%d lines, want %d", len(seen), writers*lines)
	}
}

// The access-log lines of a forwarded request, a held one cut with an
// error and one with an unknown protocol version, byte for byte as the
// encoding before the pre-encoded members and the quoting fast path gave
// them.
func TestAccessLineGolden(t *testing.T) {
	_, x := finishBench(t, "")
	var out bytes.Buffer
	al, err := openAccessLog(config.Log{AccessLog: "stdout", Format: "json"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	x.st.access = al
	x.remote = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 51234}
	x.backend.Name = "cas1.corp.example.com"
	now := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	for _, v := range []struct {
		ver         eas.Version
		hold        int
		reason, err string
		status      int
	}{{141, 0, "", "", 200}, {0, 480, "upstream_error", `boom "x"`, 502}, {99, 0, "framing", "", 400}} {
		x.version, x.hold, x.reason, x.errText, x.status = v.ver, v.hold, v.reason, v.err, v.status
		x.st.writeAccess(x, commandIndex(x), x.decisionLabel(), now, 5123456*time.Nanosecond)
	}
	al.close()
	want := []string{
		`{"level":"info","client":"192.0.2.7:51234","user":"jdoe@corp.example.com","device_id":"ApplDMPL69PZF18P","device_type":"iPhone","client_family":"iOS Mail","os":"iOS","os_version":"10.1.1","command":"FolderSync","protocol":"14.1","decision":"allow","policy_action":"allow","enforced":true,"reasons":["default-access"],"auth":"basic","upstream":"cas1.corp.example.com","status":200,"bytes_in":13,"bytes_out":230,"duration_ms":5.123,"upstream_ms":2.345,"time":"2026-12-06T14:00:00Z"}`,
		`{"level":"info","client":"192.0.2.7:51234","user":"jdoe@corp.example.com","device_id":"ApplDMPL69PZF18P","device_type":"iPhone","client_family":"iOS Mail","os":"iOS","os_version":"10.1.1","command":"FolderSync","decision":"allow","policy_action":"allow","enforced":true,"reasons":["default-access"],"auth":"basic","answered_by":"easgate","why":"upstream_error","upstream":"cas1.corp.example.com","status":502,"bytes_in":13,"bytes_out":230,"duration_ms":5.123,"upstream_ms":2.345,"hold_s":480,"held_s":0.002345,"error":"boom \"x\"","time":"2026-12-06T14:00:00Z"}`,
		`{"level":"info","client":"192.0.2.7:51234","user":"jdoe@corp.example.com","device_id":"ApplDMPL69PZF18P","device_type":"iPhone","client_family":"iOS Mail","os":"iOS","os_version":"10.1.1","command":"FolderSync","protocol":"","decision":"allow","policy_action":"allow","enforced":true,"reasons":["default-access"],"auth":"basic","answered_by":"easgate","why":"framing","upstream":"cas1.corp.example.com","status":400,"bytes_in":13,"bytes_out":230,"duration_ms":5.123,"upstream_ms":2.345,"time":"2026-12-06T14:00:00Z"}`,
	}
	if got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
