package held

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestTakeBuffered: bytes buffered past the request are taken without
// waiting for the network, and the connection's deadline is cleared.
func TestTakeBuffered(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	cases := []struct {
		name     string
		buffered string
		ok       bool
	}{
		{"none", "", true},
		{"pipelined", "GET / HTTP/1.1\r\n\r\n", true},
		{"too much", strings.Repeat("x", MaxPipelined+1), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pending, ok := TakeBuffered(&pipeTail{r: strings.NewReader(tc.buffered), c: a}, a)
			if ok != tc.ok {
				t.Fatalf("ok %v, want %v", ok, tc.ok)
			}
			if ok && string(pending) != tc.buffered {
				t.Fatalf("pending %q, want %q", pending, tc.buffered)
			}
			// The deadline is cleared: a read waits again (until a write).
			go func() { _, _ = b.Write([]byte("z")) }()
			one := make([]byte, 1)
			if n, err := a.Read(one); ok && (n != 1 || err != nil) {
				t.Fatalf("read after TakeBuffered: %d %v", n, err)
			}
		})
	}
}

// pipeTail reads what br holds, then the connection c (as fasthttp's reader
// does for a hijacked connection).
type pipeTail struct {
	r *strings.Reader
	c net.Conn
}

func (p *pipeTail) Read(b []byte) (int, error) {
	if p.r.Len() > 0 {
		return p.r.Read(b)
	}
	return p.c.Read(b)
}

// TestConns: hijacked connections are counted until answered; resumed ones
// are tracked until done, closed when idle or all at once, and refused
// once shutdown began.
func TestConns(t *testing.T) {
	var c Conns
	c.Hijack()
	c.Hijack()
	c.Answered()
	if c.Hijacked() != 1 {
		t.Fatalf("hijacked %d, want 1", c.Hijacked())
	}
	pipes := make([]net.Conn, 3)
	for i := range pipes {
		a, b := net.Pipe()
		defer b.Close()
		pipes[i] = a
		if !c.Resume(a) {
			t.Fatal("resume refused before shutdown")
		}
	}
	c.Done(pipes[2])
	if c.Resumed() != 2 {
		t.Fatalf("resumed %d, want 2", c.Resumed())
	}
	closed := func(conn net.Conn) bool {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		_, err := conn.Read(make([]byte, 1))
		return errors.Is(err, io.ErrClosedPipe)
	}
	c.CloseIdle(func(conn net.Conn) bool { return conn == pipes[0] })
	if !closed(pipes[0]) || closed(pipes[1]) {
		t.Fatal("CloseIdle closed the wrong connections")
	}
	c.Closing()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if c.Resume(a) {
		t.Fatal("resume accepted during shutdown")
	}
	c.CloseAll()
	if !closed(pipes[1]) || closed(pipes[2]) {
		t.Fatal("CloseAll closed the wrong connections")
	}
}
