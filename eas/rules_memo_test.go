package eas

import (
	"reflect"
	"strconv"
	"testing"
	"unsafe"
)

// TestIdentifyMemo: a memoised classification is the one the rules give,
// for every example of the embedded rules, on the first call and on the
// next ones; Client.Model aliases the current call's inputs, never an
// earlier call's.
func TestIdentifyMemo(t *testing.T) {
	rs := DefaultRules()
	n := 0
	for i := range rs.rules {
		for _, x := range rs.rules[i].examples {
			n++
			in := makeInputs([]byte(x.UA), []byte(x.DeviceType), x.Info())
			want, _, _, _ := rs.identify(&in)
			for round := range 3 {
				ua, typ := []byte(x.UA), []byte(x.DeviceType) // fresh buffers each call
				info := x.Info()
				got := rs.Identify(ua, typ, info)
				if !sameClient(got, want) {
					t.Fatalf("%s line %d, call %d: %+v, want %+v", rs.rules[i].name, x.Line, round, got, want)
				}
				if len(got.Model) > 0 && !within(got.Model, ua, typ, info) {
					t.Fatalf("%s line %d, call %d: Model %q does not alias this call's inputs", rs.rules[i].name, x.Line, round, got.Model)
				}
			}
		}
	}
	if n < 50 {
		t.Fatalf("only %d examples", n)
	}
}

// TestIdentifyMemoCollision: an input whose slot another input took first
// gets its own classification (from the rules), and the slot is not
// replaced.
func TestIdentifyMemoCollision(t *testing.T) {
	ref, err := NewRules("none", nil)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := NewRules("none", nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b, typ := []byte("Apple-iPhone4C1/1002.329"), []byte("iOS/18.0 (22A3354) dataaccessd/1.0"), []byte("iPhone")
	ca := ref.Identify(a, typ, nil)
	// b's classification takes the slot a's hash points to, under a's hash.
	ka := rs.memo.hash(&identInputs{evUA: a, evType: typ})
	in := makeInputs(b, typ, nil)
	cb, ev, sp, ok := rs.identify(&in)
	rs.memo.store(ka, &in, cb, ev, sp, ok)
	first := rs.memo.slots[ka%identMemoSlots].Load()
	for range 3 {
		if got := rs.Identify(a, typ, nil); !sameClient(got, ca) {
			t.Fatalf("after a collision: %+v, want %+v", got, ca)
		}
	}
	if rs.memo.slots[ka%identMemoSlots].Load() != first {
		t.Fatal("a taken slot was replaced")
	}
}

// TestIdentifyMemoNoAllocs: once warm, Identify allocates nothing however
// many phones there are: the FriendlyName, different on every phone, is
// not part of the key of the embedded rules, and a slot is filled once.
func TestIdentifyMemoNoAllocs(t *testing.T) {
	rs, err := NewRules("none", nil)
	if err != nil {
		t.Fatal(err)
	}
	ua, typ := []byte("iOS/17.5.1 (21F90) dataaccessd/1.0"), []byte("iPhone")
	info := DeviceInfo{Model: "iPhone15C2", OS: "iOS 17.5.1 21F90", FriendlyName: "phone 0"}
	want := rs.Identify(ua, typ, &info)
	names := make([]string, 5000)
	for i := range names {
		names[i] = "Anna's iPhone " + strconv.Itoa(i)
	}
	for _, name := range names[:100] {
		info.FriendlyName = name
		if got := rs.Identify(ua, typ, &info); !sameClient(got, want) {
			t.Fatalf("FriendlyName %q: %+v, want %+v", name, got, want)
		}
	}
	n := 0
	allocs := testing.AllocsPerRun(len(names), func() {
		info.FriendlyName = names[n%len(names)]
		n++
		rs.Identify(ua, typ, &info)
	})
	if allocs != 0 {
		t.Fatalf("Identify allocates %.1f times per call across phones", allocs)
	}
	// Thousands of other clients, most finding their slot taken: bounded
	// allocations (one per slot), then none.
	for i := range 5000 {
		rs.Identify([]byte("Client"+strconv.Itoa(i)+"/1.0"), typ, nil)
	}
	i := 0
	allocs = testing.AllocsPerRun(5000, func() {
		rs.Identify([]byte("Client"+strconv.Itoa(i%5000)+"/1.0"), typ, nil)
		i++
	})
	if allocs > 2.01 { // the test's own []byte and strconv
		t.Fatalf("a full memo allocates %.1f times per call", allocs)
	}
}

// TestIdentifyNoMemoForFriendlyName: a rule set whose rules read the
// FriendlyName has no memo and classifies by the rules, allocation-free.
func TestIdentifyNoMemoForFriendlyName(t *testing.T) {
	rs, err := NewRules("site.rules", []byte(friendlyNineRule))
	if err != nil {
		t.Fatal(err)
	}
	if rs.memo != nil {
		t.Fatal("a memo for rules that read the FriendlyName")
	}
	ua, typ := []byte("Android/4.4.2-EAS-1.3"), []byte("SAMSUNGSMN900V")
	nine, other := &DeviceInfo{FriendlyName: "Nine on Pixel"}, &DeviceInfo{FriendlyName: "Galaxy"}
	allocs := testing.AllocsPerRun(100, func() {
		if c := rs.Identify(ua, typ, nine); c.Family != FamilyNine {
			t.Fatalf("Nine: %s", c.Family.Slug())
		}
		if c := rs.Identify(ua, typ, other); c.Family == FamilyNine {
			t.Fatal("the FriendlyName of another phone gave Nine")
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per call", allocs)
	}
}

func sameClient(a, b Client) bool {
	am, bm := a.Model, b.Model
	a.Model, b.Model = nil, nil
	return reflect.DeepEqual(a, b) && string(am) == string(bm)
}

// within reports whether m points into one of the inputs.
func within(m, ua, typ []byte, info *DeviceInfo) bool {
	p := uintptr(unsafe.Pointer(unsafe.SliceData(m)))
	in := func(b []byte) bool {
		q := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		return len(b) > 0 && p >= q && p < q+uintptr(len(b))
	}
	if in(ua) || in(typ) {
		return true
	}
	if info != nil {
		for _, s := range []string{info.Model, info.OS, info.FriendlyName, info.UserAgent} {
			q := uintptr(unsafe.Pointer(unsafe.StringData(s)))
			if len(s) > 0 && p >= q && p < q+uintptr(len(s)) {
				return true
			}
		}
	}
	return false
}
