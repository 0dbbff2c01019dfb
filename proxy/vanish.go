package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/easgate/easgate/proxy/quarantine"
	"github.com/easgate/easgate/proxy/upstream"
)

// Vanished phones and shutdown of held requests.
//
// A phone that leaves while its Ping or Sync is held (Wi-Fi to mobile
// data, a tunnel, the app killed) closes its connection, or its network
// drops it and TCP keepalive ends it. Nobody reads a held request's phone
// connection, so nothing would notice until the heartbeat ended, up to an
// hour later: the socket sits in CLOSE-WAIT, the CAS connection stays open
// and the held gauges count a ghost. easgate frees such a request, as
// nginx does (proxy_ignore_client_abort off): the CAS connection is closed,
// a quarantine hold is dropped, the gauges go down, the phone's connection
// is closed, and the access log says status 499, why client_gone.
//
// Every held request (at a CAS, hijacked or not, watched or not, and the
// quarantine holds easgate keeps itself) is a heldPhone in the server's
// phoneSet while it is held. The set is also how shutdown answers every
// held request at once (stop).
//
// How a vanished phone is noticed: one goroutine per server sweeps the set,
// a third of it every second, and asks the kernel about each phone's socket
// with a zero-timeout ppoll for POLLRDHUP (upstream.PeerProbe). POLLRDHUP is the
// peer's FIN (a TLS phone sends close_notify, then FIN) and POLLHUP/POLLERR
// a reset or a keepalive that gave up; bytes of a request pipelined on the
// held connection are not an end, so such a phone is not cut. A phone is
// noticed within vanishEvery (3 s). The alternative, one epoll instance
// with every held phone socket registered for EPOLLRDHUP and one goroutine
// in epoll_wait, would notice at once, but costs two epoll_ctl calls and a
// kernel epitem per held request on the held path, a second registration
// of a descriptor the Go runtime already polls, and a token table to map
// events back to requests (a closed descriptor's number is reused at once).
// The sweep costs no goroutine, timer, buffer or system call per held
// request while it waits, only an entry in an intrusive list (its links
// live in the heldPoll or quarHold that exists anyway), and one system call
// per held request per vanishEvery: 2.6 µs on the CI machine
// (BenchmarkVanishProbe), so 9,000 held cost about 8 ms of CPU a second.
// (One ppoll over many descriptors would be cheaper, but a descriptor
// number read outside RawConn.Control may have been closed and reused by
// another connection meanwhile.)

// vanishEvery is how often each held request's phone socket is checked;
// the sweep visits a vanishSlices-th of the held requests at a time.
const (
	vanishEvery  = 3 * time.Second
	vanishSlices = 3
)

// statusClientGone is the status the access log records for a held request
// whose phone left (nginx's 499); the phone is sent nothing.
const statusClientGone = 499

// errClientGone ends the upstream call of a held request whose phone left.
var errClientGone = errors.New("proxy: the phone closed its connection while its request was held")

// errStopping ends the upstream call of a held request at shutdown; it is
// answered as if its heartbeat had ended (answerCutLongPoll).
var errStopping = errors.New("proxy: long poll cut: easgate is shutting down")

// goneAnswer ends a quarantine hold whose phone left: nothing is sent.
var goneAnswer = quarantine.Answer{HTTPStatus: statusClientGone, Outcome: "client_gone"}

// heldPhone is a held request as the sweep and shutdown see it: a long
// poll at a CAS (*heldPoll) or a quarantine hold (*quarHold).
type heldPhone interface {
	phone() net.Conn // the phone's connection (never nil)
	phoneGone()      // the phone left: free the request, send nothing
	stop()           // shutdown: answer as if the heartbeat had ended
}

// phoneWatch is a held request's entry in the phoneSet. Its fields are
// guarded by the set's mutex.
type phoneWatch struct {
	prev, next *phoneWatch
	on         heldPhone
	slot       uint8
	linked     bool
}

// phoneSet lists the held requests: an intrusive doubly linked list, so a
// registration allocates nothing.
type phoneSet struct {
	mu   sync.Mutex
	head *phoneWatch
	n    int
	seq  uint32
	stop chan struct{} // ends the sweep (Shutdown)
	once sync.Once
}

// add registers on, whose entry w is, and reports false when the server is
// shutting down (closing is read after the insertion: a Shutdown that
// began earlier either sees the entry or is seen here). The caller then
// stops the request itself.
func (s *Server) addHeld(w *phoneWatch, on heldPhone) bool {
	ps := &s.phones
	ps.mu.Lock()
	w.on, w.linked = on, true
	w.prev, w.next = nil, ps.head
	if ps.head != nil {
		ps.head.prev = w
	}
	ps.head = w
	w.slot = uint8(ps.seq % vanishSlices)
	ps.seq++
	ps.n++
	ps.mu.Unlock()
	return !s.closing.Load()
}

// removeHeld takes w out of the set (no effect when it is not in it).
func (s *Server) removeHeld(w *phoneWatch) {
	ps := &s.phones
	ps.mu.Lock()
	if w.linked {
		if w.prev != nil {
			w.prev.next = w.next
		} else {
			ps.head = w.next
		}
		if w.next != nil {
			w.next.prev = w.prev
		}
		w.prev, w.next, w.linked = nil, nil, false
		ps.n--
	}
	ps.mu.Unlock()
}

// collect appends the held requests of one sweep slice (all of them for
// slot -1) to dst.
func (ps *phoneSet) collect(slot int, dst []heldPhone) []heldPhone {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for w := ps.head; w != nil; w = w.next {
		if slot < 0 || int(w.slot) == slot {
			dst = append(dst, w.on)
		}
	}
	return dst
}

func (ps *phoneSet) len() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.n
}

// startSweep starts the vanish sweep; stopSweep ends it.
func (s *Server) startSweep() {
	s.phones.stop = make(chan struct{})
	go s.vanishLoop(s.phones.stop)
}

func (s *Server) stopSweep() { s.phones.once.Do(func() { close(s.phones.stop) }) }

// vanishLoop checks the phone sockets of a vanishSlices-th of the held
// requests every vanishEvery ÷ vanishSlices.
func (s *Server) vanishLoop(stop <-chan struct{}) {
	t := time.NewTicker(vanishEvery / vanishSlices)
	defer t.Stop()
	var p upstream.PeerProbe // allocates nothing per check
	var buf []heldPhone
	slot := 0
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		buf = s.phones.collect(slot, buf[:0])
		for i, h := range buf {
			// A request answered since collect is no longer in the set:
			// phoneGone then finds it done and does nothing.
			if p.Closed(tcpOf(h.phone())) {
				h.phoneGone()
			}
			buf[i] = nil
		}
		if cap(buf) > 4096 && len(buf) < cap(buf)/4 {
			buf = nil // after a burst of held requests
		}
		slot = (slot + 1) % vanishSlices
	}
}

// tcpOf is the TCP connection under a phone's connection, or nil (a
// connection that is not TCP, such as a test's pipe, is never swept).
func tcpOf(c net.Conn) *net.TCPConn {
	switch pc := c.(type) {
	case *phoneConn:
		return pc.tcp()
	case *phoneTLSConn:
		return pc.tcp()
	case *tls.Conn:
		c = pc.NetConn()
	}
	tc, _ := c.(*net.TCPConn)
	return tc
}

// stopHeld answers every held request at once, as if its heartbeat had
// ended (Shutdown), and returns how many there were.
func (s *Server) stopHeld() int {
	all := s.phones.collect(-1, nil)
	for _, h := range all {
		h.stop()
	}
	return len(all)
}

// Cut reasons of a long poll at a CAS (heldPoll.cut).
const (
	cutNone     uint8 = iota
	cutGone           // the phone left: answered 499 client_gone, nothing sent
	cutStopping       // shutdown: answered as if the heartbeat had ended
)

// heldUp is the part of a long poll at a CAS that the sweep and shutdown
// may cut: the CAS connection the request waits on, as heldWatch has it
// for decision changes.
type heldUp struct {
	mu       sync.Mutex
	conn     net.Conn // between attach and detach
	detached bool     // the CAS's answer is being read: too late to cut
	cut      uint8
}

func (h *heldPoll) phone() net.Conn { return h.c }
func (h *heldPoll) phoneGone()      { h.cutUp(cutGone) }
func (h *heldPoll) stop()           { h.cutUp(cutStopping) }

// cutUp ends the request's wait at its CAS: the CAS connection is closed
// (or, before it is attached, never used), and the round trip fails with
// errClientGone or errStopping. An answer already arriving stands.
func (h *heldPoll) cutUp(why uint8) {
	u := &h.up
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.detached || u.cut != cutNone {
		return
	}
	u.cut = why
	if u.conn != nil {
		_ = u.conn.Close()
	}
}

// attachUp records the CAS connection the request is about to be sent on;
// it reports false when the request was cut already (nothing is sent). A
// nil h attaches everything.
func (h *heldPoll) attachUp(c net.Conn) bool {
	if h == nil {
		return true
	}
	u := &h.up
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.cut != cutNone {
		return false
	}
	u.conn = c
	return true
}

// detachUp ends the part of the round trip that may be cut and returns the
// error of a cut (nil when there was none).
func (h *heldPoll) detachUp() error {
	if h == nil {
		return nil
	}
	u := &h.up
	u.mu.Lock()
	defer u.mu.Unlock()
	u.detached, u.conn = true, nil
	return cutError(u.cut)
}

func cutError(why uint8) error {
	switch why {
	case cutGone:
		return errClientGone
	case cutStopping:
		return errStopping
	}
	return nil
}

// phoneLeft reports whether the request was freed because its phone left
// (nil h: no).
func (h *heldPoll) phoneLeft() bool {
	if h == nil {
		return false
	}
	if q := h.quar; q != nil {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.gone
	}
	u := &h.up
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.cut == cutGone
}

// holdInHandler registers a long poll that could not be hijacked (HTTP/1.0,
// a streamed body) and is held by its handler: it is swept and stopped
// like the others. The caller calls releaseHeld when the round trip is
// over.
func (s *Server) holdInHandler(x *exchange, c net.Conn) {
	h := &heldPoll{s: s, x: x, c: c}
	x.hijacked = h // heldDo attaches the CAS connection to it
	if !s.addHeld(&h.pw, h) {
		h.stop()
	}
}

// releaseHeld takes a long poll held by its handler out of the set.
func (s *Server) releaseHeld(x *exchange) {
	if h := x.hijacked; h != nil {
		s.removeHeld(&h.pw)
	}
}

// answerGone completes the exchange of a held request whose phone left:
// nothing is written, the phone's connection is closed.
func (s *Server) answerGone(h *heldPoll) {
	x := h.x
	x.status, x.reason = statusClientGone, "client_gone"
	x.bytesOut = 0
	if x.errText == "" {
		x.errText = errClientGone.Error()
	}
	x.finish()
	s.hijacked.Add(-1)
	if h.pc != nil { // (as in answerHeld: a foreign connection is its server's)
		_ = h.pc.Close()
	}
}

// refusal reports whether easgate's own answer with this reason refused
// the request (easgate_rejected_requests_total): a long poll cut by a
// reload or shutdown, or whose phone left, was not refused.
func refusal(reason string) bool {
	return reason != "" && reason != "long_poll_cut" && reason != "client_gone"
}
