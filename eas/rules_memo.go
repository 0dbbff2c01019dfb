package eas

import (
	"hash/maphash"
	"sync/atomic"
)

// The identification memo. A device sends the same User-Agent, DeviceType
// and DeviceInformation on every request, and Identify is a pure function
// of those inputs (once trimmed and cut, identInputs) and the rule set, so
// Rules keeps classifications in a small direct-mapped table: a hit costs
// one hash of the inputs, one atomic load and a comparison, instead of
// running the rules.
//
// The key holds only the evidence some rule of the set reads (memoKey):
// the DeviceInformation FriendlyName ("Anna's iPhone") differs from phone
// to phone, and the embedded rules never read it. A rule set whose rules
// read it has no memo, since one entry per phone would only churn.
//
// Entries are immutable once published, and a slot is filled once, by the
// first classification that lands in it, and never replaced: the memo
// makes at most identMemoSlots allocations per rule set (a reload builds a
// new one), so Identify allocates nothing once it is warm, whatever the
// fleet. Inputs that find their slot taken by others run the rules, as
// without a memo.

const identMemoSlots = 1024

type identMemo struct {
	seed  maphash.Seed
	slots [identMemoSlots]atomic.Pointer[identMemoEntry]
}

type identMemoEntry struct {
	hash uint64
	in   [evCount]string // the inputs classified
	c    Client          // with Model nil: it aliases the inputs
	// The Model capture, as a span of in[modelEv], when hasModel.
	hasModel bool
	modelEv  uint8
	model    span
}

func newIdentMemo() *identMemo { return &identMemo{seed: maphash.MakeSeed()} }

// hash hashes the inputs field by field (one maphash.Bytes call each),
// mixing in the field's position; a hit is confirmed by comparing the
// inputs, so the hash only has to spread.
func (m *identMemo) hash(in *identInputs) uint64 {
	k := uint64(0)
	for i := range in {
		h := uint64(i) + 1
		if len(in[i]) > 0 {
			h ^= maphash.Bytes(m.seed, in[i])
		}
		k = (k ^ h) * 0x9e3779b97f4a7c15
		k ^= k >> 29
	}
	return k
}

// lookup returns the memoised classification of in.
func (m *identMemo) lookup(k uint64, in *identInputs) (Client, bool) {
	e := m.slots[k%identMemoSlots].Load()
	if e == nil || e.hash != k {
		return Client{}, false
	}
	for i := range in {
		if e.in[i] != string(in[i]) {
			return Client{}, false
		}
	}
	c := e.c
	if e.hasModel {
		c.Model = in[e.modelEv][e.model.start:e.model.end]
	}
	return c, true
}

// store publishes the classification c of in in its slot if the slot is
// still empty; model says where c.Model came from (ok false: c.Model is
// nil).
func (m *identMemo) store(k uint64, in *identInputs, c Client, modelEv uint8, model span, hasModel bool) {
	slot := &m.slots[k%identMemoSlots]
	if slot.Load() != nil {
		return
	}
	e := &identMemoEntry{hash: k, c: c, hasModel: hasModel, modelEv: modelEv, model: model}
	e.c.Model = nil
	for i := range in {
		e.in[i] = string(in[i])
	}
	slot.CompareAndSwap(nil, e)
}

// memoKey is in with the evidence no rule of the set reads left out.
func (rs *Rules) memoKey(in *identInputs) identInputs {
	key := *in
	for ev := range key {
		if rs.reads&(1<<ev) == 0 {
			key[ev] = nil
		}
	}
	return key
}
