package bench

import (
	"math"
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram in microseconds: 32 sub-buckets
// per power of two (about 3 % relative error), fixed size, no allocation
// per sample.
type hist struct {
	counts [histOctaves * histSub]int64
	n      int64
	sum    float64 // microseconds
	max    int64
}

const (
	histSub     = 32
	histSubBits = 5
	histOctaves = 44 // up to 2^43 µs ≈ 100 days
)

func histIndex(us int64) int {
	if us < histSub {
		if us < 0 {
			us = 0
		}
		return int(us)
	}
	k := bits.Len64(uint64(us)) - histSubBits // ≥ 1
	sub := int(us>>(k-1)) & (histSub - 1)
	idx := k*histSub + sub
	if idx >= len(hist{}.counts) {
		idx = len(hist{}.counts) - 1
	}
	return idx
}

// histLower is the smallest value of bucket i (microseconds).
func histLower(i int) float64 {
	if i < histSub {
		return float64(i)
	}
	k := i / histSub
	sub := i % histSub
	return float64(int64(histSub+sub) << (k - 1))
}

func histUpper(i int) float64 {
	if i+1 >= len(hist{}.counts) {
		return math.Inf(1)
	}
	return histLower(i + 1)
}

func (h *hist) add(d time.Duration) {
	us := d.Microseconds()
	h.counts[histIndex(us)]++
	h.n++
	h.sum += float64(us)
	if us > h.max {
		h.max = us
	}
}

// quantile returns the q-quantile (0..1) in milliseconds: the middle of
// the bucket holding that rank, capped by the maximum seen.
func (h *hist) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := histLower(i), histUpper(i)
			v := lo
			if i >= histSub && !math.IsInf(hi, 1) {
				v = (lo + hi) / 2
			}
			return math.Min(v, float64(h.max)) / 1000
		}
	}
	return float64(h.max) / 1000
}

func (h *hist) mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n) / 1000
}
