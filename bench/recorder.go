package bench

import (
	"sort"
	"sync"
	"time"
)

// Recorder aggregates Samples from many devices: per-command histograms,
// errors by kind, and a timeline of fixed-width slices. It is safe for
// concurrent use.
type Recorder struct {
	mu       sync.Mutex
	start    time.Time
	slice    time.Duration
	cmds     map[string]*cmdAgg
	errors   map[string]int64
	policy   map[string]int64 // blocked and denied answers (IsPolicyAnswer): not errors
	slices   []*sliceAgg
	all      hist // every non-long-poll sample
	bytesIn  int64
	bytesOut int64
	lastErr  map[string]string
	now      func() time.Time // clock of RecordError (tests fix it)
}

type cmdAgg struct {
	h        hist
	count    int64
	errors   int64
	canceled int64
	refused  int64 // blocked or denied answers
	kinds    map[string]int64
}

type sliceAgg struct {
	h        hist
	requests int64
	errors   int64
	held     int64 // held Pings at the end of the slice (set by the fleet)
}

// NewRecorder starts a recorder whose timeline has slices of width slice.
func NewRecorder(start time.Time, slice time.Duration) *Recorder {
	if slice <= 0 {
		slice = time.Second
	}
	return &Recorder{start: start, slice: slice, cmds: map[string]*cmdAgg{}, errors: map[string]int64{}, policy: map[string]int64{},
		lastErr: map[string]string{}, now: time.Now}
}

// maxSlices bounds the timeline's memory whatever the clock does.
const maxSlices = 100000

func (r *Recorder) sliceAt(t time.Time) *sliceAgg {
	i := int(t.Sub(r.start) / r.slice)
	i = max(0, min(i, maxSlices-1))
	for len(r.slices) <= i {
		r.slices = append(r.slices, &sliceAgg{})
	}
	return r.slices[i]
}

// Record adds one sample.
func (r *Recorder) Record(s Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cmds[s.Command]
	if c == nil {
		c = &cmdAgg{kinds: map[string]int64{}}
		r.cmds[s.Command] = c
	}
	end := s.Start.Add(s.Duration)
	sl := r.sliceAt(end)
	switch {
	case s.Canceled:
		c.canceled++
		return
	case IsPolicyAnswer(s.Kind):
		c.refused++
		r.policy[s.Kind]++
	case s.Kind != "":
		c.errors++
		c.kinds[s.Kind]++
		r.errors[s.Kind]++
		sl.errors++
	}
	c.count++
	c.h.add(s.Duration)
	sl.requests++
	r.bytesIn += s.BytesIn
	r.bytesOut += s.BytesOut
	if !s.LongPoll {
		sl.h.add(s.Duration)
		r.all.add(s.Duration)
	}
}

// RecordError counts an error that is not tied to one HTTP exchange
// (e.g. a protocol error found while interpreting an answer). Blocked and
// denied answers (IsPolicyAnswer) are counted apart, not as errors.
func (r *Recorder) RecordError(command, kind, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cmds[command]
	if c == nil {
		c = &cmdAgg{kinds: map[string]int64{}}
		r.cmds[command] = c
	}
	if IsPolicyAnswer(kind) {
		// The gateway's access decision (Status 129, 130), found while
		// reading an answer: counted as what it is, not as an error.
		c.refused++
		r.policy[kind]++
		return
	}
	c.errors++
	c.kinds[kind]++
	r.sliceAt(r.now()).errors++
	r.errors[kind]++
	if _, ok := r.lastErr[kind]; !ok {
		r.lastErr[kind] = command + ": " + detail
	}
}

// noteError remembers the first message of each error kind.
func (r *Recorder) noteError(kind, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.lastErr[kind]; !ok {
		r.lastErr[kind] = msg
	}
}

// setHeld records the number of held Pings in the slice containing t.
func (r *Recorder) setHeld(t time.Time, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sl := r.sliceAt(t)
	if n > sl.held {
		sl.held = n
	}
}

// totals returns requests and errors so far (for the progress line).
func (r *Recorder) totals() (requests, errors int64, p99 float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.cmds {
		requests += c.count
		errors += c.errors
	}
	return requests, errors, r.all.quantile(0.99)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
