package held

import (
	"time"

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
// nginx does (proxy_ignore_client_abort off): the CAS connection is closed
// (a Poll's round trip fails with ErrGone), a Hold ends with Gone, and the
// caller frees the rest (proxy closes the phone's connection, lowers the
// gauges and logs status 499, why client_gone).
//
// Every held request is on the registry's list while it is held, with its
// phone's socket. The list is also how Stop answers every held request at
// once.
//
// How a vanished phone is noticed: one goroutine per server sweeps the set,
// a third of it every second, and asks the kernel about each phone's socket
// with a zero-timeout ppoll for POLLRDHUP (upstream.PeerProbe). POLLRDHUP is the
// peer's FIN (a TLS phone sends close_notify, then FIN) and POLLHUP/POLLERR
// a reset or a keepalive that gave up; bytes of a request pipelined on the
// held connection are not an end, so such a phone is not cut. A phone is
// noticed within VanishEvery (3 s). The alternative, one epoll instance
// with every held phone socket registered for EPOLLRDHUP and one goroutine
// in epoll_wait, would notice at once, but costs two epoll_ctl calls and a
// kernel epitem per held request on the held path, a second registration
// of a descriptor the Go runtime already polls, and a token table to map
// events back to requests (a closed descriptor's number is reused at once).
// The sweep costs no goroutine, timer, buffer or system call per held
// request while it waits, only an entry in an intrusive list (its links
// live in the Poll or Hold that exists anyway), and one system call
// per held request per VanishEvery: 2.6 µs on the CI machine
// (BenchmarkVanishProbe), so 9,000 held cost about 8 ms of CPU a second.
// (One ppoll over many descriptors would be cheaper, but a descriptor
// number read outside RawConn.Control may have been closed and reused by
// another connection meanwhile.)

// VanishEvery is how often each held request's phone socket is checked: a
// phone that left is noticed within it. The sweep visits a vanishSlices-th
// of the held requests at a time.
const (
	VanishEvery  = 3 * time.Second
	vanishSlices = 3
)

// vanishLoop checks the phone sockets of a vanishSlices-th of the held
// requests every VanishEvery ÷ vanishSlices.
func (r *Registry) vanishLoop() {
	defer r.wg.Done()
	t := time.NewTicker(VanishEvery / vanishSlices)
	defer t.Stop()
	var p upstream.PeerProbe // allocates nothing per check
	var buf []*entry
	slot := 0
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
		}
		buf = r.collect(slot, buf[:0])
		for i, e := range buf {
			// A request answered since collect is no longer listed:
			// phoneGone then finds it done and does nothing.
			if p.Closed(e.phone) {
				e.on.phoneGone()
			}
			buf[i] = nil
		}
		if cap(buf) > 4096 && len(buf) < cap(buf)/4 {
			buf = nil // after a burst of held requests
		}
		slot = (slot + 1) % vanishSlices
	}
}
