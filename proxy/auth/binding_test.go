package auth

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/policy/store"
)

func newDevs() *policy.Devices { return policy.NewDevices(nil) }

func TestBinder(t *testing.T) {
	const fpA, fpB = "aaaa", "bbbb"
	for _, tc := range []struct {
		mode  string
		steps []struct {
			user, device, fp string
			want             BindResult
		}
	}{
		{mode: "off", steps: []struct {
			user, device, fp string
			want             BindResult
		}{
			{"jdoe", "dev1", fpA, BindResult{OK: true}},
			{"jdoe", "dev1", fpB, BindResult{OK: true}},
		}},
		{mode: "enforce", steps: []struct {
			user, device, fp string
			want             BindResult
		}{
			{"jdoe", "dev1", "", BindResult{OK: true}},               // no certificate, nothing bound
			{"jdoe", "dev1", fpA, BindResult{OK: true, Bound: true}}, // first certificate binds
			{"jdoe", "dev1", fpA, BindResult{OK: true}},
			{"JDOE", "dev1", fpA, BindResult{OK: true}}, // user case is ignored (device table rule)
			{"jdoe", "dev1", fpB, BindResult{Mismatch: true, Reason: ReasonDeviceBinding}},
			{"jdoe", "dev1", "", BindResult{Mismatch: true, Reason: ReasonDeviceBinding}}, // bound device without certificate
			{"jdoe", "dev2", fpB, BindResult{OK: true, Bound: true}},                      // another device binds its own
			{"mary", "dev1", fpB, BindResult{OK: true, Bound: true}},                      // another user's device of the same id
			{"jdoe", "", fpB, BindResult{OK: true}},                                       // no DeviceId (OPTIONS): nothing to bind
		}},
		{mode: "report", steps: []struct {
			user, device, fp string
			want             BindResult
		}{
			{"jdoe", "dev1", fpA, BindResult{OK: true, Bound: true}},
			{"jdoe", "dev1", fpB, BindResult{OK: true, Mismatch: true, Reason: ReasonDeviceBinding}},
			{"jdoe", "dev1", fpA, BindResult{OK: true}}, // the report did not re-bind
		}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			bd, err := NewBinder(tc.mode, newDevs())
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				if got := bd.Check([]byte(s.user), []byte(s.device), s.fp, t0); got != s.want {
					t.Errorf("step %d Check(%s, %s, %q) = %+v, want %+v", i, s.user, s.device, s.fp, got, s.want)
				}
			}
		})
	}
}

func TestBinderErrors(t *testing.T) {
	if _, err := NewBinder("sometimes", newDevs()); err == nil || !strings.Contains(err.Error(), `"sometimes"`) {
		t.Errorf("NewBinder(sometimes) error = %v", err)
	}
	if _, err := NewBinder("enforce", nil); err == nil {
		t.Error("NewBinder(enforce, nil) accepted")
	}
	if bd, err := NewBinder("", nil); err != nil || bd.Mode() != BindingOff {
		t.Errorf("NewBinder(\"\") = %v, %v", bd, err)
	}
	if BindingMode(7).String() != "binding(7)" {
		t.Error("BindingMode(7).String")
	}
}

// TestBinderRace: two first requests with different certificates: exactly
// one binds, the other is a mismatch.
func TestBinderRace(t *testing.T) {
	for range 20 {
		bd, _ := NewBinder("enforce", newDevs())
		var wg sync.WaitGroup
		res := make([]BindResult, 2)
		for i, fp := range []string{"aaaa", "bbbb"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = bd.Check([]byte("jdoe"), []byte("dev1"), fp, t0)
			}()
		}
		wg.Wait()
		if res[0].OK == res[1].OK || res[0].Bound == res[1].Bound {
			t.Fatalf("results %+v", res)
		}
	}
}

// TestBinderPersisted: the binding is the device record's cert_fingerprint,
// written by policy.Devices.Flush and read back after a restart.
func TestBinderPersisted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := store.Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	devs := policy.NewDevices(st)
	bd, _ := NewBinder("enforce", devs)
	if r := bd.Check([]byte("jdoe"), []byte("dev1"), "aaaa", t0); !r.Bound {
		t.Fatalf("first Check = %+v", r)
	}
	if err := devs.Flush(); err != nil {
		t.Fatal(err)
	}
	devs2 := policy.NewDevices(st)
	if err := devs2.Load(); err != nil {
		t.Fatal(err)
	}
	bd2, _ := NewBinder("enforce", devs2)
	if r := bd2.Check([]byte("jdoe"), []byte("dev1"), "bbbb", t0.Add(time.Hour)); r.OK || !r.Mismatch {
		t.Errorf("after restart, another certificate: %+v", r)
	}
	if r := bd2.Check([]byte("jdoe"), []byte("dev1"), "aaaa", t0.Add(time.Hour)); !r.OK || r.Bound {
		t.Errorf("after restart, the bound certificate: %+v", r)
	}
}
