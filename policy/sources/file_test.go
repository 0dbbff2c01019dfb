package sources

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/policy"
)

func TestFileSourceLoadsAndReportsBadLines(t *testing.T) {
	f, err := NewFile("testdata/compliance.csv")
	if f == nil {
		t.Fatalf("source not usable: %v", err)
	}
	var lineErrs []string
	for _, e := range unwrapJoined(err) {
		var le *LineError
		if !errors.As(e, &le) {
			t.Fatalf("non-line error %v", e)
		}
		lineErrs = append(lineErrs, le.Error())
	}
	want := []string{
		"testdata/compliance.csv:7: want 3 or 4 columns (user,device_id,state[,expires]), got 1",
		`testdata/compliance.csv:8: unknown state "sideways" (want compliant, noncompliant, unknown or grace)`,
		`testdata/compliance.csv:9: expires "next tuesday" is not an RFC 3339 time such as 2026-12-31T23:59:59Z`,
	}
	if len(lineErrs) < len(want) {
		t.Fatalf("line errors %q, want at least %q", lineErrs, want)
	}
	for i, w := range want {
		if lineErrs[i] != w {
			t.Errorf("line error %d = %q, want %q", i, lineErrs[i], w)
		}
	}
	if !strings.Contains(lineErrs[len(lineErrs)-1], "compliance.csv:10") {
		t.Errorf("unterminated quote not reported at line 10: %q", lineErrs)
	}

	tests := []struct {
		user, dev string
		want      policy.State
	}{
		{"alice@corp.example.com", "ApplDMPL69PZF18P", policy.StateCompliant},
		{`CORP\alice`, "appldmpl69pzf18p", policy.StateCompliant}, // NetBIOS form and device id case
		{"bob@corp.example.com", "SEC17CD1A3E9E3F2", policy.StateNoncompliant},
		{"carol@corp.example.com", "androidc195792594", policy.StateGrace},
		{"dave@corp.example.com", "BF36923991ADFBA9", policy.StateUnknown}, // expired row
		{"mallory@corp.example.com", "ApplDMPL69PZF18P", policy.StateUnknown},
		{"eve@corp.example.com", "DEV5", policy.StateUnknown}, // malformed line skipped
	}
	for _, tc := range tests {
		v, err := f.Lookup(context.Background(), policy.Query{User: tc.user, DeviceID: tc.dev})
		if err != nil || v.State != tc.want || v.Source != "file" {
			t.Errorf("%s/%s: %+v %v, want %s", tc.user, tc.dev, v, err, tc.want)
		}
	}
}

func TestFileSourceReloadsOnChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.csv")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("u@x.example,D1,noncompliant\n")
	f, err := NewFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	reloaded := make(chan struct{}, 4)
	f.Watch(10*time.Millisecond, func(changed bool, err error) {
		if changed {
			reloaded <- struct{}{}
		}
	})
	write("u@x.example,D1,compliant\n")
	select {
	case <-reloaded:
	case <-time.After(5 * time.Second):
		t.Fatal("file change not picked up")
	}
	v, _ := f.Lookup(context.Background(), policy.Query{User: "u@x.example", DeviceID: "D1"})
	if v.State != policy.StateCompliant {
		t.Fatalf("after reload: %s", v.State)
	}
	// An unreadable file keeps the old table.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Reload(); err == nil {
		t.Fatal("missing file not reported")
	}
	v, _ = f.Lookup(context.Background(), policy.Query{User: "u@x.example", DeviceID: "D1"})
	if v.State != policy.StateCompliant {
		t.Fatalf("old table lost after a failed reload: %s", v.State)
	}
}

func TestFileSourceMissingFile(t *testing.T) {
	if f, err := NewFile(filepath.Join(t.TempDir(), "nope.csv")); f != nil || err == nil {
		t.Fatalf("want an error and no source, got %v %v", f, err)
	}
}

func FuzzFileParse(f *testing.F) {
	for _, name := range []string{"testdata/compliance.csv", "testdata/guard/full.csv", "testdata/guard/truncated.csv",
		"testdata/guard/bad-header.csv", "testdata/guard/marker-ok.csv", "testdata/guard/bom.csv", "testdata/guard/zeros.csv"} {
		seed, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(seed)
	}
	f.Add([]byte("a,b,compliant\n"))
	f.Add([]byte("\"\n,,,,,\n"))
	f.Add([]byte("# easgate: accept-drop entries=-1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := parseFile("fuzz.csv", data)
		if c == nil || c.table == nil {
			t.Fatal("nil table")
		}
		n := 0
		for _, rs := range c.table.rows {
			n += len(rs)
		}
		if n != c.table.entries {
			t.Fatalf("entries %d, rows %d", c.table.entries, n)
		}
		if c.table.entries+len(c.lineErrs) > c.dataLines {
			t.Fatalf("%d entries and %d bad lines out of %d data lines", c.table.entries, len(c.lineErrs), c.dataLines)
		}
		if c.dataLines > 0 && c.table.entries == 0 && c.unparsable == "" {
			t.Fatal("data lines without a valid row must be unparsable")
		}
		if c.marker < -1 || (c.marker >= 0 && c.badMarker != "") {
			t.Fatalf("marker %d %q", c.marker, c.badMarker)
		}
		for _, e := range c.lineErrs {
			var le *LineError
			if !errors.As(e, &le) || le.Line < 0 {
				t.Fatalf("untyped error %v", e)
			}
		}
	})
}

func unwrapJoined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
