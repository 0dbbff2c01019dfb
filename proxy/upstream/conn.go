package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DialError says that a connection to a CAS could not be set up (TCP connect
// or TLS handshake failed). Nothing of the request was sent, so the request
// may be retried on another server.
type DialError struct {
	addr string
	err  error
}

func (e *DialError) Error() string { return "dial " + e.addr + ": " + e.err.Error() }
func (e *DialError) Unwrap() error { return e.err }

// ErrStaleConn is returned by the first write of a request on a pooled
// connection that the CAS has already closed (a keep-alive race). The check
// runs before any byte of the request is written, so the request may be
// retried.
var ErrStaleConn = errors.New("proxy: pooled upstream connection was closed by the server")

// NothingSent reports whether err proves that no byte of the request reached
// the CAS, which is the only case in which a request may be sent again.
func NothingSent(err error) bool {
	var de *DialError
	return errors.As(err, &de) || errors.Is(err, ErrStaleConn)
}

// connSet tracks the open upstream connections of one backend so that a
// drained state can cut the requests it still holds.
type connSet struct {
	mu    sync.Mutex
	conns map[*liveConn]struct{}
	n     atomic.Int64
}

func (s *connSet) add(c *liveConn) {
	s.mu.Lock()
	if s.conns == nil {
		s.conns = make(map[*liveConn]struct{})
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.n.Add(1)
}

func (s *connSet) remove(c *liveConn) {
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.n.Add(-1)
	}
	s.mu.Unlock()
}

// closeWaiting closes every tracked connection on which a request was sent
// and no byte of the answer has come back yet: the held long polls (and any
// request the CAS is still working on). Responses already streaming are
// left to finish. The requests waiting on the closed connections fail at
// once.
func (s *connSet) closeWaiting() {
	s.mu.Lock()
	list := make([]*liveConn, 0, len(s.conns))
	for c := range s.conns {
		if c.awaiting.Load() {
			list = append(list, c)
		}
	}
	s.mu.Unlock()
	for _, c := range list {
		_ = c.Close()
	}
}

// waiting counts the tracked connections on which a request was sent and no
// byte of the answer has come back yet.
func (s *connSet) waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.awaiting.Load() {
			n++
		}
	}
	return n
}

// liveConn wraps a TCP connection to a CAS. Before the first write that
// follows a read (the start of a request on a reused keep-alive connection)
// it asks the kernel whether the peer has already closed the connection and,
// if so, fails that write with ErrStaleConn without writing anything.
//
// The question is a system call, as costly as a tenth of easgate's own work
// on a small request, so it is skipped when the previous request on the
// connection started less than staleCheckAfter ago: what the check is for is
// a CAS closing a connection that sat idle for its keep-alive timeout
// (IIS: 120 s; Apache: 5 s), which cannot have run out since. Under load
// every pooled connection is reused within milliseconds and the check is
// never made; an idle one is checked on its next use. (nginx watches its
// idle upstream connections in its event loop instead, which fasthttp's
// pool cannot.)
type liveConn struct {
	net.Conn
	raw   syscall.RawConn  // nil when the check is not available
	check func(fd uintptr) // built once: RawConn.Control without a closure per request
	gone  bool             // result of the last check
	// waitFirst: connections of the long-poll client wait for the first
	// byte of the answer before fasthttp takes a read buffer (see
	// SetReadDeadline).
	waitFirst bool
	readable  func(fd uintptr) bool // built once, like check
	set       *connSet
	readSeen  atomic.Bool
	awaiting  atomic.Bool // request bytes written, no answer byte read since
	closed    atomic.Bool
	// lastStart is when the last request on the connection started to be
	// written (monoNow); only the writing goroutine touches it.
	lastStart time.Duration
	// rdl and wdl are the read and write deadlines in force (see
	// KeepDeadline); only the goroutine using the connection touches them.
	rdl, wdl time.Time
}

// KeepDeadline reports whether a deadline cur already in force may stand
// for a new one, next: it ends no later than next, and not earlier than a
// 64th of its remaining time before it. Setting a deadline re-arms a
// runtime timer; a connection reused every few milliseconds would re-arm it
// on every request to move it by as much. A kept deadline ends an operation
// at most a 64th of its time early (under a second for a one-minute
// timeout). The long-poll connections never keep one: their deadline is
// the heartbeat plus a margin, which must hold to the second.
func KeepDeadline(cur, next, now time.Time) bool {
	if cur.IsZero() || next.IsZero() || cur.After(next) || !cur.After(now) {
		return false
	}
	return next.Sub(cur) <= cur.Sub(now)/64
}

// staleCheckAfter is how long a pooled connection must have been unused
// before its next request asks the kernel whether the CAS closed it. A CAS
// closes idle keep-alive connections after seconds (IIS 120 s, Apache 5 s,
// nginx 75 s), never within one. It was 50 ms: with 500 phones each pooled
// connection is reused every ~45 ms, so about half the requests still paid
// for the system call (0.7 µs of ~87 in a profile at 500 phones).
const staleCheckAfter = time.Second

// monoEpoch makes monoNow a monotonic clock reading without a time.Time.
var monoEpoch = time.Now()

func monoNow() time.Duration { return time.Since(monoEpoch) }

func (c *liveConn) Read(p []byte) (int, error) {
	c.readSeen.Store(true)
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.awaiting.Store(false)
	}
	return n, err
}

func (c *liveConn) Write(p []byte) (int, error) {
	if c.readSeen.Swap(false) {
		now := monoNow()
		if now-c.lastStart >= staleCheckAfter && c.peerClosed() {
			return 0, ErrStaleConn
		}
		c.lastStart = now
	}
	c.awaiting.Store(true)
	return c.Conn.Write(p)
}

// peerClosed reports whether the CAS has already closed this connection.
// Only the goroutine writing a request calls it.
func (c *liveConn) peerClosed() bool {
	if c.raw == nil {
		return false
	}
	c.gone = false
	if err := c.raw.Control(c.check); err != nil {
		return true
	}
	return c.gone
}

// SetReadDeadline is called by fasthttp's HostClient (and, on the long-poll
// client, by heldRoundTrip) right after it has written a request and just
// before it takes a read buffer from its pool to read the answer. On a
// long-poll connection it then also waits, in this shallow frame and without
// a buffer, until the answer's first byte (or the deadline, or an error) is
// there: a held Ping costs no read buffer and less goroutine stack while the
// CAS holds it. Errors are left for the read that follows, which sees them
// at once.
func (c *liveConn) SetReadDeadline(t time.Time) error {
	if c.waitFirst || !KeepDeadline(c.rdl, t, time.Now()) {
		if err := c.Conn.SetReadDeadline(t); err != nil {
			return err
		}
		c.rdl = t
	}
	if c.waitFirst && c.raw != nil && c.awaiting.Load() {
		_ = c.raw.Read(c.readable)
	}
	return nil
}

// SetWriteDeadline sets the write deadline unless the one in force may
// stand for it (KeepDeadline).
func (c *liveConn) SetWriteDeadline(t time.Time) error {
	if !c.waitFirst && KeepDeadline(c.wdl, t, time.Now()) {
		return nil
	}
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	c.wdl = t
	return nil
}

// SetDeadline sets both deadlines.
func (c *liveConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetDeadline(t); err != nil {
		return err
	}
	c.rdl, c.wdl = t, t
	return nil
}

func (c *liveConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.set.remove(c)
	return c.Conn.Close()
}

// dialer opens connections to one CAS address: TCP with the connect timeout,
// then (for https) a TLS handshake under the same timeout. Any failure is a
// *DialError.
type dialer struct {
	timeout time.Duration
	tls     *tls.Config // nil for http
	set     *connSet
	// waitFirst marks the connections of the long-poll client.
	waitFirst bool
}

func (d *dialer) dial(addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &DialError{addr: addr, err: err}
	}
	lc := &liveConn{Conn: c, set: d.set, waitFirst: d.waitFirst, lastStart: monoNow()}
	if tc, ok := c.(*net.TCPConn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			lc.raw = raw
			lc.check = func(fd uintptr) { lc.gone = fdPeerClosed(fd) }
			if d.waitFirst {
				lc.readable = fdReadable
			}
		}
	}
	d.set.add(lc)
	if d.tls == nil {
		return lc, nil
	}
	tc := tls.Client(lc, d.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = lc.Close()
		return nil, &DialError{addr: addr, err: err}
	}
	// The handshake's last write followed a read; clear the flag so the
	// first request is not checked against a connection that just opened.
	lc.readSeen.Store(false)
	return tc, nil
}

// PeerProbe asks the kernel whether the peer of a TCP connection has shut
// its side down (FIN, reset, or a keepalive that gave up), without reading
// and without blocking: bytes waiting to be read do not count. The vanish
// sweep uses it on phone sockets. Its zero value is ready; it is not safe
// for concurrent use, and a check allocates nothing.
type PeerProbe struct {
	fn   func(fd uintptr) // p.probe, built once
	gone bool
}

func (p *PeerProbe) probe(fd uintptr) { p.gone = fdPeerClosed(fd) }

// Closed reports whether tc's peer has shut its side down. A connection
// closed here is not "closed by the peer".
func (p *PeerProbe) Closed(tc *net.TCPConn) bool {
	if tc == nil {
		return false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	if p.fn == nil {
		p.fn = p.probe
	}
	p.gone = false
	if raw.Control(p.fn) != nil {
		return false
	}
	return p.gone
}
