package held

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
)

// The registry of held requests.
//
// Every held request (a Poll at a CAS, hijacked or not, watched or not, and
// every Hold) is on the registry's list while it is held: the vanish sweep
// visits the list, and Stop answers everything on it at once. A request
// whose device can be refused is also indexed under its device key, so
// that a decision change re-decides it at once:
//
//   - when its device's decision may have changed (Wake for the device,
//     WakeAll after a reload), in the background;
//   - once every recheck interval (15 s by default) by the re-decision
//     sweep, which re-decides a fifteenth of the indexed requests every
//     second on at most 16 goroutines (a cached decision costs about a
//     microsecond).
//
// Neither costs a goroutine, timer, buffer or allocation per held request
// while it waits: the links live in the Poll or Hold, which the caller
// embeds in what it allocates anyway.

// Decider re-runs the access policy for a held request's device with the
// newest configuration. The registry calls it on its own goroutines (the
// sweep, a wake), never on the held request's, and never after the request
// left the registry (Unwatch, RemovePoll, the end of a Hold): until then,
// what it reads of the request must not change. It may be slow (a
// compliance lookup); other held requests are re-decided meanwhile.
// replaced reports whether the configuration the request was decided under
// has been replaced since.
type Decider interface {
	Redecide() (d policy.Decision, replaced bool)
}

// entry is a held request's place in the registry: on the list (guarded by
// Registry.lmu) and, when watched, in the device index (guarded by
// Registry.mu).
type entry struct {
	r  *Registry
	on member

	// The list: every held request.
	lprev, lnext *entry
	listed       bool
	lslot        uint8        // the vanish-sweep slice it is checked in
	phone        *net.TCPConn // the phone's socket; nil: never swept

	// The device index: the watched ones.
	key          string
	dprev, dnext *entry
	indexed      bool
	dslot        uint8 // the re-decision sweep slice
}

// member is a held request as the registry drives it: *Poll or *Hold.
type member interface {
	check()     // re-decide
	phoneGone() // the phone left: free the request, send nothing
	stop()      // Stop: answer as if the heartbeat had ended
}

// Registry lists the held requests of a process. Create it with
// NewRegistry, start its sweeps with Start and end them with Close; Stop
// answers every held request at shutdown. All methods are safe for
// concurrent use.
type Registry struct {
	mu    sync.Mutex
	index map[string]*entry // the first watched request of each device key
	nIdx  int
	dseq  uint32

	lmu   sync.Mutex
	head  *entry
	nList int
	lseq  uint32

	stopping atomic.Bool
	recheck  atomic.Int64  // nanoseconds between two re-decisions of a request
	reset    chan struct{} // SetRecheck: the sweep takes the new interval at once
	done     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	started  bool
}

// Recheck is how often a held request re-runs the decision by default, so
// that a verdict change (compliance source) reaches a held Ping within this
// time.
const Recheck = 15 * time.Second

// sweepSlices is how many parts the sweep re-decides the held requests in,
// one part every recheck interval ÷ sweepSlices (1 s by default): each
// request is re-decided once per interval, and the work is spread over it
// instead of coming as one burst (9,000 decisions at once would delay the
// Syncs of that moment).
const sweepSlices = 15

// NewRegistry returns an empty registry whose sweeps have not started.
func NewRegistry() *Registry {
	r := &Registry{reset: make(chan struct{}, 1), done: make(chan struct{})}
	r.recheck.Store(int64(Recheck))
	return r
}

// Start starts the re-decision sweep and the vanish sweep, one goroutine
// each. Call it once.
func (r *Registry) Start() {
	r.started = true
	r.wg.Add(2)
	go r.sweepLoop()
	go r.vanishLoop()
}

// Close ends the sweeps and waits for them. Held requests stay as they are
// (Stop answers them).
func (r *Registry) Close() {
	r.once.Do(func() { close(r.done) })
	r.wg.Wait()
}

// SetRecheck changes how often held requests re-decide; the sweep takes the
// new interval at once.
func (r *Registry) SetRecheck(d time.Duration) {
	r.recheck.Store(int64(d))
	select {
	case r.reset <- struct{}{}:
	default:
	}
}

// Len is the number of held requests; Watched the number of those indexed
// under their device.
func (r *Registry) Len() int {
	r.lmu.Lock()
	defer r.lmu.Unlock()
	return r.nList
}

func (r *Registry) Watched() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nIdx
}

// list puts e on the list and reports false when the registry is stopping
// (read after the insertion: a Stop that began earlier either sees the
// entry or is seen here). The caller then stops the request itself.
func (r *Registry) list(e *entry, on member, phone *net.TCPConn) bool {
	r.lmu.Lock()
	e.r, e.on, e.phone, e.listed = r, on, phone, true
	e.lprev, e.lnext = nil, r.head
	if r.head != nil {
		r.head.lprev = e
	}
	r.head = e
	e.lslot = uint8(r.lseq % vanishSlices)
	r.lseq++
	r.nList++
	r.lmu.Unlock()
	return !r.stopping.Load()
}

// unlist takes e off the list (no effect when it is not on it).
func (r *Registry) unlist(e *entry) {
	r.lmu.Lock()
	if e.listed {
		if e.lprev != nil {
			e.lprev.lnext = e.lnext
		} else {
			r.head = e.lnext
		}
		if e.lnext != nil {
			e.lnext.lprev = e.lprev
		}
		e.lprev, e.lnext, e.listed = nil, nil, false
		r.nList--
	}
	r.lmu.Unlock()
}

// collect appends the held requests of one vanish-sweep slice (all of them
// for slot -1) to dst.
func (r *Registry) collect(slot int, dst []*entry) []*entry {
	r.lmu.Lock()
	defer r.lmu.Unlock()
	for e := r.head; e != nil; e = e.lnext {
		if slot < 0 || int(e.lslot) == slot {
			dst = append(dst, e)
		}
	}
	return dst
}

// insert indexes e under the device key of user and device.
func (r *Registry) insert(e *entry, user, device []byte) {
	var buf [eas.MaxUserLen + 1 + eas.MaxDeviceIDLen]byte // the longest key: no allocation for the lookup
	k := policy.AppendDeviceKey(buf[:0], user, device)
	r.mu.Lock()
	if r.index == nil {
		r.index = map[string]*entry{}
	}
	first, ok := r.index[string(k)]
	if ok {
		e.key = first.key // one string per device
	} else {
		e.key = string(k)
	}
	e.dprev, e.dnext = nil, first
	if first != nil {
		first.dprev = e
	}
	r.index[e.key] = e
	e.indexed = true
	e.dslot = uint8(r.dseq % sweepSlices)
	r.dseq++
	r.nIdx++
	r.mu.Unlock()
}

// remove takes e out of the device index (no effect when it is not in it).
func (r *Registry) remove(e *entry) {
	r.mu.Lock()
	if e.indexed {
		if e.dprev != nil {
			e.dprev.dnext = e.dnext
		} else if e.dnext != nil {
			r.index[e.key] = e.dnext
		} else {
			delete(r.index, e.key)
		}
		if e.dnext != nil {
			e.dnext.dprev = e.dprev
		}
		e.dprev, e.dnext, e.indexed = nil, nil, false
		r.nIdx--
	}
	r.mu.Unlock()
}

// Wake tells every request the device holds to re-decide, in the
// background: the waker (a request, an admin action) does not wait for the
// decisions.
func (r *Registry) Wake(user, device []byte) {
	var buf [eas.MaxUserLen + 1 + eas.MaxDeviceIDLen]byte // the longest key: no allocation
	k := policy.AppendDeviceKey(buf[:0], user, device)
	var checks []member
	r.mu.Lock()
	for e := r.index[string(k)]; e != nil; e = e.dnext {
		checks = append(checks, e.on)
	}
	r.mu.Unlock()
	checkAll(checks)
}

// WakeAll makes every watched request re-decide in the background (a
// reload).
func (r *Registry) WakeAll() { checkAll(r.watched(-1)) }

// checkAll re-decides held requests in the background.
func checkAll(checks []member) {
	if len(checks) > 0 {
		go runChecks(checks)
	}
}

// checkWorkers bounds the decisions one sweep or wake runs at once. A
// decision is mostly a cache hit (about a microsecond), but one whose
// verdict is not cached waits for the compliance source (up to
// compliance.cache.lookup_timeout): in parallel, an unreachable source
// delays a sweep of 9,000 polls by 9,000 ÷ 16 lookup timeouts, not 9,000.
const checkWorkers = 16

// runChecks re-decides every held request in checks and returns when all
// are done.
func runChecks(checks []member) {
	if len(checks) <= 1 {
		for _, m := range checks {
			m.check()
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(checkWorkers, len(checks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(checks)); i = next.Add(1) - 1 {
				checks[i].check()
			}
		}()
	}
	wg.Wait()
}

// watched returns the watched requests indexed now, all of them (slot -1)
// or those of one sweep slice.
func (r *Registry) watched(slot int) []member {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.nIdx
	if slot >= 0 {
		n = n/sweepSlices + 1
	}
	out := make([]member, 0, n)
	for _, first := range r.index {
		for e := first; e != nil; e = e.dnext {
			if slot < 0 || int(e.dslot) == slot {
				out = append(out, e.on)
			}
		}
	}
	return out
}

// sweepLoop re-decides every watched request each recheck interval, a
// slice at a time, so that a verdict that changed without a wake (a
// compliance source's answer) reaches a held poll within that time.
func (r *Registry) sweepLoop() {
	defer r.wg.Done()
	tick := func() time.Duration { return time.Duration(r.recheck.Load()) / sweepSlices }
	t := time.NewTimer(tick())
	defer t.Stop()
	slot := 0
	for {
		select {
		case <-r.done:
			return
		case <-r.reset:
		case <-t.C:
			runChecks(r.watched(slot))
			slot = (slot + 1) % sweepSlices
		}
		t.Reset(tick())
	}
}

// Stop answers every held request at once, as if its heartbeat had ended
// (shutdown), and returns how many there were. Requests registered from
// now on are stopped as they register.
func (r *Registry) Stop() int {
	r.stopping.Store(true)
	all := r.collect(-1, nil)
	for _, e := range all {
		e.on.stop()
	}
	return len(all)
}
