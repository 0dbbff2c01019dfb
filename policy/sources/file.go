package sources

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
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
// second column is "device_id" or whose third is "state" is a header; it
// must read user,device_id,state[,expires]. Blank lines, a UTF-8 byte order
// mark and lines starting with '#' are ignored.
//
// Malformed lines are reported with their line number and skipped; the rest
// of the file still loads. A file that cannot be read at all keeps the
// previous table. Content that is empty, unparsable (a wrong header, or
// data lines of which none is a valid row) or that drops more than
// Guard.MaxDrop of the entries is held back: the previous table stays in
// force until the content is accepted (see Guard and MarkerLine). At start,
// with no previous table, empty or unparsable content is an error.
type File struct {
	path  string
	table atomic.Pointer[fileTable]

	mu    sync.Mutex
	sum   [32]byte // content in force
	guard guardState
	stop  chan struct{}
	done  chan struct{} // closed when Watch's goroutine ends (nil without Watch)
	once  sync.Once

	// Several nodes (file_shared.go): only the lease holder reads the
	// file; the others import the table it publishes.
	share    *FileShare
	leading  atomic.Bool
	sharedAt time.Time // the newest table published or imported here
}

type fileRow struct {
	user    string
	state   policy.State
	expires time.Time
}

type fileTable struct {
	rows    map[string][]fileRow // lower-cased device id -> rows
	entries int
	loaded  time.Time
}

// LineError is one malformed line of the CSV file.
type LineError struct {
	Path string
	Line int
	Msg  string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg) }

// NewFile loads path with the default guard. See NewFileGuarded.
func NewFile(path string) (*File, error) { return NewFileGuarded(path, Guard{}) }

// NewFileGuarded loads path. The returned error is nil, or a joined list of
// *LineError for malformed lines (the source is usable then), or a read
// error or a *HeldBack with Initial set for empty or unparsable content
// (the source is nil), or for a first load that drops more than
// Guard.MaxDrop of Guard.Baseline.
func NewFileGuarded(path string, g Guard) (*File, error) {
	f := &File{path: path, stop: make(chan struct{}), guard: guardState{g: g, source: "file", path: path}}
	_, err := f.Reload()
	var le *LineError
	if err != nil && (f.table.Load() == nil || !errors.As(err, &le)) {
		return nil, err
	}
	return f, err
}

// Name implements policy.Source.
func (f *File) Name() string { return "file" }

// Reload re-reads the file if its contents changed. It returns whether the
// table changed, and the malformed lines (joined *LineError), a read error,
// or a *HeldBack when the guard kept the previous table (reported once per
// distinct content; while it is held back, each Reload looks for the accept
// marker).
func (f *File) Reload() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := os.ReadFile(f.path)
	if err != nil {
		return false, fmt.Errorf("compliance file: %w", err)
	}
	sum := sha256.Sum256(data)
	cur := f.table.Load()
	if cur != nil && sum == f.sum {
		if f.guard.held != nil {
			f.guard.end(EndedByRestored, cur.entries, f.sum)
		}
		return false, nil
	}
	if f.guard.held != nil && sum == f.guard.heldSum {
		if ok, _ := f.guard.accepted(sum); !ok {
			return false, nil // still held back, already reported
		}
	}
	c := parseFile(f.path, data)
	old := -1
	if cur != nil {
		old = cur.entries
	} else if f.guard.g.Baseline > 0 {
		old = f.guard.g.Baseline
	}
	by := ""
	if reason, drop := f.guard.g.check(old, c.table.entries, c.unparsable); reason != "" {
		detail := c.unparsable
		if c.marker >= 0 && c.marker == c.table.entries {
			by = EndedByMarkerLine
		} else if ok, why := f.guard.accepted(sum); ok {
			by = EndedByAcceptFile
		} else {
			detail = joinDetail(detail, c.markerProblem(), why)
		}
		if by == "" {
			h := &HeldBack{Reason: reason, Old: max(old, 0), New: c.table.entries, DropPercent: drop, Detail: detail, Initial: cur == nil}
			if n := len(c.lineErrs); n > 0 {
				h.Detail = joinDetail(h.Detail, fmt.Sprintf("%d malformed line(s), the first %v", n, c.lineErrs[0]))
			}
			if cur == nil {
				// Nothing to keep: the caller fails. No event, no status:
				// the gateway does not start on this file.
				h.Source, h.Path, h.MaxDrop = "file", f.path, 100*f.guard.g.maxDrop()
				h.SHA256 = hex.EncodeToString(sum[:])
				return false, h
			}
			f.guard.hold(h, sum, cur.entries, f.sum)
			return false, errors.Join(append([]error{h}, c.lineErrs...)...)
		}
	}
	if by == EndedByAcceptFile {
		f.guard.consume(sum)
	}
	f.table.Store(c.table)
	f.sum = sum
	f.guard.end(by, c.table.entries, sum)
	return true, errors.Join(c.lineErrs...)
}

func joinDetail(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}

// Watch reloads the file every interval until Close, calling report with
// the outcome of each reload that changed something or failed.
// With a FileShare (Share), the file is read only while this node holds
// the lease, and the first check runs at once.
func (f *File) Watch(interval time.Duration, report func(changed bool, err error)) {
	f.mu.Lock()
	f.done = make(chan struct{})
	done, shared := f.done, f.share != nil
	f.mu.Unlock()
	check := func() {
		changed, err := f.check()
		if (changed || err != nil) && report != nil {
			report(changed, err)
		}
	}
	go func() {
		defer close(done)
		if shared {
			check()
		}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-t.C:
				check()
			}
		}
	}()
}

// Close stops Watch and, on the node that leads (Share), gives the lease
// up so that another node reads its file at once.
func (f *File) Close() error {
	f.once.Do(func() { close(f.stop) })
	f.mu.Lock()
	done, share := f.done, f.share
	f.mu.Unlock()
	if share == nil {
		return nil // one node: as before, Close does not wait for a reload under way
	}
	if done != nil {
		<-done // no check may take the lease again after it is given up
	}
	if share.Release != nil && f.leading.Swap(false) {
		share.Release()
	}
	return nil
}

// Len returns the number of rows (entries) in force.
func (f *File) Len() int { return f.table.Load().entries }

// HeldBack returns the reload held back now, or nil.
func (f *File) HeldBack() *HeldBack {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.guard.held == nil {
		return nil
	}
	h := *f.guard.held
	return &h
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

// fileContent is one parse of the CSV file.
type fileContent struct {
	table      *fileTable
	lineErrs   []error
	dataLines  int    // lines that are neither blank, comment nor header
	unparsable string // why the content is not the CSV format; "" when it is
	marker     int    // entries named by the marker line; -1 without one
	badMarker  string // what is wrong with a marker line
}

func (c *fileContent) markerProblem() string {
	switch {
	case c.badMarker != "":
		return c.badMarker
	case c.marker >= 0 && c.marker != c.table.entries:
		return fmt.Sprintf("the marker line names entries=%d but the file holds %d entries, so it does not accept this content (a file cut short?)", c.marker, c.table.entries)
	}
	return ""
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// FileSummary is what `easgate compliance` reads from a CSV file.
type FileSummary struct {
	SHA256     string `json:"sha256"`
	Entries    int    `json:"entries"`
	LineErrors int    `json:"line_errors"`
	Unparsable string `json:"unparsable,omitempty"` // why the content is not the CSV format
	Marker     int    `json:"marker_entries"`       // entries named by the marker line; -1 without one
}

// InspectFile parses a compliance CSV file as the file source does.
func InspectFile(path string) (FileSummary, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return FileSummary{}, fmt.Errorf("compliance file: %w", err)
	}
	sum := sha256.Sum256(data)
	c := parseFile(path, data)
	return FileSummary{SHA256: hex.EncodeToString(sum[:]), Entries: c.table.entries, LineErrors: len(c.lineErrs),
		Unparsable: c.unparsable, Marker: c.marker}, nil
}

func parseFile(path string, data []byte) *fileContent {
	data = bytes.TrimPrefix(data, utf8BOM)
	c := &fileContent{table: &fileTable{rows: map[string][]fileRow{}, loaded: time.Now()}, marker: -1}
	firstLine, _, _ := bytes.Cut(data, []byte{'\n'})
	if line := strings.TrimSpace(string(firstLine)); strings.HasPrefix(line, MarkerLine) {
		rest := strings.TrimSpace(strings.TrimPrefix(line, MarkerLine))
		n, err := strconv.Atoi(strings.TrimPrefix(rest, "entries="))
		if !strings.HasPrefix(rest, "entries=") || err != nil || n < 0 {
			c.badMarker = fmt.Sprintf("the marker line must read %q with the number of entries the file holds", MarkerLine+" entries=N")
		} else {
			c.marker = n
		}
	}
	t := c.table
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.Comment = '#'
	r.TrimLeadingSpace = true
	firstRec := true
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			c.dataLines++
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				c.lineErrs = append(c.lineErrs, &LineError{Path: path, Line: pe.Line, Msg: pe.Err.Error()})
				continue
			}
			c.lineErrs = append(c.lineErrs, &LineError{Path: path, Line: 0, Msg: err.Error()})
			break
		}
		line, _ := r.FieldPos(0)
		if firstRec {
			firstRec = false
			if isHeader(rec) {
				if !validHeader(rec) {
					c.unparsable = fmt.Sprintf("%s:%d: the header must read user,device_id,state[,expires], got %q", path, line, strings.Join(rec, ","))
				}
				continue
			}
		}
		c.dataLines++
		if len(rec) < 3 || len(rec) > 4 {
			c.lineErrs = append(c.lineErrs, &LineError{Path: path, Line: line, Msg: fmt.Sprintf("want 3 or 4 columns (user,device_id,state[,expires]), got %d", len(rec))})
			continue
		}
		user, dev, st := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1]), strings.TrimSpace(rec[2])
		if user == "" || dev == "" {
			c.lineErrs = append(c.lineErrs, &LineError{Path: path, Line: line, Msg: "user and device_id must not be empty"})
			continue
		}
		state, ok := policy.ParseState(strings.ToLower(st))
		if !ok {
			c.lineErrs = append(c.lineErrs, &LineError{Path: path, Line: line, Msg: fmt.Sprintf("unknown state %q (want compliant, noncompliant, unknown or grace)", st)})
			continue
		}
		row := fileRow{user: user, state: state}
		if len(rec) == 4 && strings.TrimSpace(rec[3]) != "" {
			exp, err := time.Parse(time.RFC3339, strings.TrimSpace(rec[3]))
			if err != nil {
				c.lineErrs = append(c.lineErrs, &LineError{Path: path, Line: line, Msg: fmt.Sprintf("expires %q is not an RFC 3339 time such as 2026-12-31T23:59:59Z", rec[3])})
				continue
			}
			row.expires = exp
		}
		key := strings.ToLower(dev)
		t.rows[key] = append(t.rows[key], row)
		t.entries++
	}
	if c.unparsable == "" && c.dataLines > 0 && t.entries == 0 {
		c.unparsable = fmt.Sprintf("none of its %d data line(s) is a valid row", c.dataLines)
	}
	return c
}

// isHeader: a first line naming the device_id column second or the state
// column third (neither is a valid data row).
func isHeader(rec []string) bool {
	col := func(i int) string {
		if i < len(rec) {
			return strings.ToLower(strings.TrimSpace(rec[i]))
		}
		return ""
	}
	return col(1) == "device_id" || col(2) == "state"
}

func validHeader(rec []string) bool {
	want := []string{"user", "device_id", "state", "expires"}
	if len(rec) < 3 || len(rec) > 4 {
		return false
	}
	for i, v := range rec {
		if strings.ToLower(strings.TrimSpace(v)) != want[i] {
			return false
		}
	}
	return true
}

var _ policy.Source = (*File)(nil)
