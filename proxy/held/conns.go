package held

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Hijacked connections.
//
// A held Ping or Sync may wait for up to an hour. Served the ordinary way,
// the phone's connection keeps the HTTP server's read buffer, its request
// context and a deep handler goroutine for all that time. Instead, once
// the pipeline has decided to hold a request, it hijacks the connection
// from the HTTP server, answers the request itself, and hands the
// keep-alive connection back (resumes it) so the phone's next request is
// served as usual. Conns keeps the books of both: the server's own shutdown
// knows neither the hijacked connections nor the resumed ones.

// Conns counts the hijacked connections of held requests and tracks the
// resumed ones. Its zero value is ready; it is safe for concurrent use.
type Conns struct {
	hijacked atomic.Int64

	mu      sync.Mutex
	resumed map[net.Conn]struct{}
	closing bool
}

// Hijack counts one more connection answered by easgate itself; Answered
// ends it (the answer is written, or the connection was dropped).
func (c *Conns) Hijack()   { c.hijacked.Add(1) }
func (c *Conns) Answered() { c.hijacked.Add(-1) }

// Hijacked is the number of hijacked connections whose request is held or
// being answered.
func (c *Conns) Hijacked() int64 { return c.hijacked.Load() }

// Resume registers conn as handed back to the HTTP server. It reports
// false once Closing was called: the caller closes the connection instead.
func (c *Conns) Resume(conn net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	if c.resumed == nil {
		c.resumed = make(map[net.Conn]struct{})
	}
	c.resumed[conn] = struct{}{}
	return true
}

// Done forgets a resumed connection the server has finished with.
func (c *Conns) Done(conn net.Conn) {
	c.mu.Lock()
	delete(c.resumed, conn)
	c.mu.Unlock()
}

// Resumed is the number of resumed connections still served.
func (c *Conns) Resumed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.resumed)
}

// Closing refuses every later Resume (shutdown).
func (c *Conns) Closing() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
}

// CloseIdle closes the resumed connections for which idle reports true
// (waiting for the phone's next request): the server's shutdown would wait
// for them.
func (c *Conns) CloseIdle(idle func(net.Conn) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for conn := range c.resumed {
		if idle(conn) {
			_ = conn.Close()
		}
	}
}

// CloseAll closes every resumed connection (those resumed while the server
// was finishing its shutdown).
func (c *Conns) CloseAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for conn := range c.resumed {
		_ = conn.Close()
	}
}

// MaxPipelined bounds the bytes of following requests that are carried
// over from the server's read buffer when a connection is hijacked; a
// connection with more is closed after the answer instead of being served
// on.
const MaxPipelined = 64 << 10

// TakeBuffered reads, without waiting for the network, what r has buffered
// for raw (r reads raw through a buffer, as the HTTP server's reader of a
// hijacked connection does): a read deadline in the past makes the first
// read that would reach the socket fail at once. ok is false when the
// connection cannot be served on (closed, or more than MaxPipelined bytes
// buffered).
func TakeBuffered(r io.Reader, raw net.Conn) (pending []byte, ok bool) {
	if err := raw.SetReadDeadline(time.Unix(1, 0)); err != nil {
		return nil, false
	}
	var buf [512]byte
	for {
		n, err := r.Read(buf[:])
		if len(pending)+n > MaxPipelined {
			return nil, false
		}
		pending = append(pending, buf[:n]...)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return pending, false
			}
			break
		}
	}
	if err := raw.SetReadDeadline(time.Time{}); err != nil {
		return pending, false
	}
	return pending, true
}
