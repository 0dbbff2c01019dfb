package sources

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
)

// File is a compliance source read from a CSV file with the columns
// user,device_id,state[,expires]. state is one of compliant, noncompliant,
// unknown, grace; expires, when present, is an RFC 3339 time after which the
// row no longer counts (the device is then unknown). A first line whose
// second column is "device_id" is a header and is skipped. Blank lines and
// lines starting with '#' are ignored.
//
// Malformed lines are reported with their line number and skipped; the rest
// of the file still loads. A file that cannot be read at all keeps the
// previous table.
type File struct {
	path  string
	table atomic.Pointer[fileTable]

	mu   sync.Mutex
	sum  [32]byte
	stop chan struct{}
	once sync.Once
}

type fileRow struct {
	user    string
	state   policy.State
	expires time.Time
}

type fileTable struct {
	rows   map[string][]fileRow // lower-cased device id -> rows
	loaded time.Time
}

// LineError is one malformed line of the CSV file.
type LineError struct {
	Path string
	Line int
	Msg  string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg) }

// NewFile loads path. The returned error is nil, or a joined list of
// *LineError for malformed lines (the source is usable then), or a read
// error (the source is nil).
func NewFile(path string) (*File, error) {
	f := &File{path: path, stop: make(chan struct{})}
	_, err := f.Reload()
	var le *LineError
	if err != nil && !errors.As(err, &le) {
		return nil, err
	}
	return f, err
}

// Name implements policy.Source.
func (f *File) Name() string { return "file" }

// Reload re-reads the file if its contents changed. It returns whether the
// table changed, and the malformed lines (joined *LineError) or a read error.
func (f *File) Reload() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := os.ReadFile(f.path)
	if err != nil {
		return false, fmt.Errorf("compliance file: %w", err)
	}
	sum := sha256.Sum256(data)
	if f.table.Load() != nil && sum == f.sum {
		return false, nil
	}
	t, lineErrs := parseCSV(f.path, data)
	f.table.Store(t)
	f.sum = sum
	return true, errors.Join(lineErrs...)
}

// Watch reloads the file every interval until Close, calling report with
// the outcome of each reload that changed something or failed.
func (f *File) Watch(interval time.Duration, report func(changed bool, err error)) {
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-t.C:
				changed, err := f.Reload()
				if (changed || err != nil) && report != nil {
					report(changed, err)
				}
			}
		}
	}()
}

// Close stops Watch.
func (f *File) Close() error {
	f.once.Do(func() { close(f.stop) })
	return nil
}

// Len returns the number of rows loaded.
func (f *File) Len() int {
	n := 0
	for _, rs := range f.table.Load().rows {
		n += len(rs)
	}
	return n
}

// Lookup implements policy.Source. It never fails once loaded.
func (f *File) Lookup(_ context.Context, q policy.Query) (policy.Verdict, error) {
	t := f.table.Load()
	v := policy.Verdict{State: policy.StateUnknown, Source: "file", Fetched: time.Now()}
	for _, r := range t.rows[strings.ToLower(q.DeviceID)] {
		if !eas.SameUser([]byte(r.user), []byte(q.User)) {
			continue
		}
		if !r.expires.IsZero() && !v.Fetched.Before(r.expires) {
			continue
		}
		v.State, v.Expires = r.state, r.expires
		break
	}
	return v, nil
}

func parseCSV(path string, data []byte) (*fileTable, []error) {
	t := &fileTable{rows: map[string][]fileRow{}, loaded: time.Now()}
	var errs []error
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.Comment = '#'
	r.TrimLeadingSpace = true
	first := true
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				errs = append(errs, &LineError{Path: path, Line: pe.Line, Msg: pe.Err.Error()})
				continue
			}
			errs = append(errs, &LineError{Path: path, Line: 0, Msg: err.Error()})
			break
		}
		line, _ := r.FieldPos(0)
		if first {
			first = false
			if len(rec) >= 2 && strings.EqualFold(strings.TrimSpace(rec[1]), "device_id") {
				continue
			}
		}
		if len(rec) < 3 || len(rec) > 4 {
			errs = append(errs, &LineError{Path: path, Line: line, Msg: fmt.Sprintf("want 3 or 4 columns (user,device_id,state[,expires]), got %d", len(rec))})
			continue
		}
		user, dev, st := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1]), strings.TrimSpace(rec[2])
		if user == "" || dev == "" {
			errs = append(errs, &LineError{Path: path, Line: line, Msg: "user and device_id must not be empty"})
			continue
		}
		state, ok := policy.ParseState(strings.ToLower(st))
		if !ok {
			errs = append(errs, &LineError{Path: path, Line: line, Msg: fmt.Sprintf("unknown state %q (want compliant, noncompliant, unknown or grace)", st)})
			continue
		}
		row := fileRow{user: user, state: state}
		if len(rec) == 4 && strings.TrimSpace(rec[3]) != "" {
			exp, err := time.Parse(time.RFC3339, strings.TrimSpace(rec[3]))
			if err != nil {
				errs = append(errs, &LineError{Path: path, Line: line, Msg: fmt.Sprintf("expires %q is not an RFC 3339 time such as 2026-12-31T23:59:59Z", rec[3])})
				continue
			}
			row.expires = exp
		}
		key := strings.ToLower(dev)
		t.rows[key] = append(t.rows[key], row)
	}
	return t, errs
}

var _ policy.Source = (*File)(nil)
