package eas

import (
	"reflect"
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

// TestIdentifyMemoCollision: two inputs in one memo slot each get their
// own classification.
func TestIdentifyMemoCollision(t *testing.T) {
	rs, err := NewRules("none", nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := []byte("Apple-iPhone4C1/1002.329"), []byte("iOS/18.0 (22A3354) dataaccessd/1.0")
	ca := rs.Identify(a, []byte("iPhone"), nil)
	in := makeInputs(b, []byte("iPhone"), nil)
	// Put b's classification where a's hash points, under a's hash.
	ka := rs.memo.hash(&identInputs{evUA: a, evType: []byte("iPhone")})
	cb, ev, sp, ok := rs.identify(&in)
	rs.memo.store(ka, &in, cb, ev, sp, ok)
	if got := rs.Identify(a, []byte("iPhone"), nil); !sameClient(got, ca) {
		t.Fatalf("after a collision: %+v, want %+v", got, ca)
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
