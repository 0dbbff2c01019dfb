package store

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

func TestBoltRoundTripAndConcurrentReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "state.db")
	w, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Update("devices", map[string][]byte{"a": []byte("1"), "b": []byte("2")}, nil); err != nil {
		t.Fatal(err)
	}
	// A second handle, as `easgate explain` in another process would open it,
	// reads while the writer keeps writing.
	r, err := Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			if err := w.Update("devices", map[string][]byte{fmt.Sprint("k", i): []byte("v")}, nil); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; i < 50; i++ {
		if v, ok, err := r.Get("devices", "a"); err != nil || !ok || string(v) != "1" {
			t.Fatalf("read %q %v %v", v, ok, err)
		}
	}
	wg.Wait()
	if err := w.Update("devices", nil, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := r.ForEach("devices", func(k, v []byte) error { keys = append(keys, string(k)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 51 || keys[0] != "b" {
		t.Fatalf("keys %d %v", len(keys), keys[:2])
	}
	if err := r.Update("devices", map[string][]byte{"x": nil}, nil); err == nil {
		t.Fatal("read-only store accepted a write")
	}
	if _, ok, err := r.Get("nothing", "a"); ok || err != nil {
		t.Fatalf("missing bucket: %v %v", ok, err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("", false); err == nil {
		t.Fatal("empty path accepted")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.db"), true); err == nil {
		t.Fatal("read-only open of a missing file accepted")
	}
}
