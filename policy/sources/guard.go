package sources

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Compliance table safety (issue 12 item 5).
//
// The file and graph sources keep their whole verdict table locally and
// replace it on every reload or full sync. A half-written CSV (a non-atomic
// write by another tool) or a Graph pull that suddenly returns few devices
// would replace a good table with a wrong one and quarantine every phone at
// once. The guard holds such a reload back: the last good table stays in
// force until an administrator confirms the new content, with
// `easgate compliance accept` (an accept marker file naming the content's
// SHA-256) or, for the file source, a marker line in the file itself.

// DefaultMaxDrop is the share of entries one reload may drop before it is
// held back (policy.compliance.source.max_drop, 50%).
const DefaultMaxDrop = 0.5

// HoldReason says why a reload was held back.
type HoldReason string

// Hold reasons; they are metric labels and log fields.
const (
	// HoldEmpty: the new content has no entry at all (a zero-length or
	// comment-only file; a Graph pull without a device) while the table in
	// force has some, or at start.
	HoldEmpty HoldReason = "empty"
	// HoldUnparsable: the file is not the CSV format: its header does not
	// read user,device_id,state[,expires], or it has data lines of which
	// not one is a valid row.
	HoldUnparsable HoldReason = "unparsable"
	// HoldDrop: the new content has more than max_drop fewer entries than
	// the table in force.
	HoldDrop HoldReason = "drop"
)

// MarkerLine starts the first line of a compliance CSV that accepts its own
// content even when the guard would hold it back. It must name the number
// of entries the file holds, "# easgate: accept-drop entries=120", so that
// a file cut short while it is being written (the marker line is written
// first) is still held back. The CSV parser reads it as a comment.
const MarkerLine = "# easgate: accept-drop"

// HeldBack describes a reload that was not applied. It is the error Reload
// and Sync return for it, the payload of a GuardEvent, and part of the
// status file.
type HeldBack struct {
	Source      string     `json:"source"`         // "file" or "graph"
	Path        string     `json:"path,omitempty"` // the CSV file (file source)
	Reason      HoldReason `json:"reason"`
	Old         int        `json:"old_entries"` // entries in force (0 at start)
	New         int        `json:"new_entries"` // entries in the held-back content
	DropPercent float64    `json:"drop_percent"`
	MaxDrop     float64    `json:"max_drop_percent"`
	// SHA256 names the held-back content: the file's bytes, or for Graph a
	// digest of the pulled entries (see Graph). An accept marker must name it.
	SHA256 string `json:"sha256"`
	// Detail says what made the content unparsable, or why a marker did not
	// accept it.
	Detail string    `json:"detail,omitempty"`
	Since  time.Time `json:"since"`
	// Initial is set when there was no table to keep (the first load).
	Initial bool `json:"initial,omitempty"`
}

func (h *HeldBack) what() string {
	if h.Source == "file" {
		return "compliance file " + h.Path
	}
	return "compliance source " + h.Source
}

func (h *HeldBack) Error() string {
	var b strings.Builder
	b.WriteString(h.what())
	b.WriteString(": ")
	content := "the new content"
	if h.Initial {
		content = "the content"
	}
	switch h.Reason {
	case HoldEmpty:
		fmt.Fprintf(&b, "%s has no entries", content)
	case HoldUnparsable:
		fmt.Fprintf(&b, "%s cannot be parsed", content)
	default:
		fmt.Fprintf(&b, "the new content has %d entries, %.1f%% fewer than the %d in force (more than max_drop %g%%)",
			h.New, h.DropPercent, h.Old, h.MaxDrop)
	}
	if h.Detail != "" {
		b.WriteString(" (")
		b.WriteString(h.Detail)
		b.WriteString(")")
	}
	switch {
	case h.Initial && h.Source == "file" && h.Old > 0:
		fmt.Fprintf(&b, "; not loaded: the compliance source in force (%d entries) stays", h.Old)
	case h.Initial && h.Source == "file":
		b.WriteString("; refusing to start with an empty compliance table, which would treat every device as not enrolled")
	case h.Initial:
		b.WriteString("; held back: there is no table yet, so verdicts stay unavailable and on_unavailable applies")
	default:
		fmt.Fprintf(&b, "; held back: the last good table (%d entries) stays in force", h.Old)
	}
	fmt.Fprintf(&b, "; if this content is right, confirm it with \"easgate compliance accept --config FILE\"")
	if h.Source == "file" {
		fmt.Fprintf(&b, " or a first line %q", fmt.Sprintf("%s entries=%d", MarkerLine, h.New))
	}
	return b.String()
}

// Guard configures the reload guard of a file or graph source.
type Guard struct {
	// MaxDrop is the largest share of entries (0 < MaxDrop <= 1) a reload
	// may drop; more is held back. 0 means DefaultMaxDrop; 1 holds back
	// only empty and unparsable content.
	MaxDrop float64
	// AcceptPath is the accept marker file `easgate compliance accept`
	// writes (see GuardPaths); StatusPath the status file the source writes
	// for `easgate compliance status`. Empty disables either.
	AcceptPath string
	StatusPath string
	// Baseline, for the file source, is the number of entries of the table
	// this source replaces (a config reload that builds a new source): the
	// first load is then held to MaxDrop against it, as a reload would be.
	// 0 means none.
	Baseline int
	// OnEvent, when set, is called when a reload is held back and when a
	// hold ends. It runs on the source's goroutine, under its lock: it must
	// not call back into the source.
	OnEvent func(GuardEvent)
}

func (g *Guard) maxDrop() float64 {
	if g.MaxDrop <= 0 || g.MaxDrop > 1 {
		return DefaultMaxDrop
	}
	return g.MaxDrop
}

// Ways a hold ends (GuardEvent.EndedBy).
const (
	EndedByAcceptFile = "accept-command" // `easgate compliance accept` wrote the marker file
	EndedByMarkerLine = "marker-line"    // the file's first line accepted it
	EndedByReload     = "reload"         // newer content passed the guard
	EndedByRestored   = "restored"       // the file is back to the content in force
	// EndedByShared: this node stopped reading its file (another node
	// leads, state.url) and installed the table that node published.
	EndedByShared = "shared"
)

// GuardEvent reports a change of a source's guard.
type GuardEvent struct {
	Source string
	// Held is set when a reload was held back; each distinct held-back
	// content is reported once.
	Held *HeldBack
	// EndedBy is set when a hold ended, or when content that the guard
	// would have held back was accepted at once (a marker): one of the
	// EndedBy constants.
	EndedBy string
	// Entries is the number of entries in force after the event.
	Entries int
	// StatusErr is set when the status file could not be written (reported
	// once until a write succeeds).
	StatusErr error
}

// check returns the reason to hold back content with n entries (and the
// unparsable detail) when old entries are in force; old < 0 at start.
func (g *Guard) check(old, n int, unparsable string) (HoldReason, float64) {
	switch {
	case unparsable != "":
		return HoldUnparsable, dropPercent(old, n)
	case n == 0 && old != 0:
		return HoldEmpty, dropPercent(old, n)
	case old > 0 && float64(old-n) > g.maxDrop()*float64(old):
		return HoldDrop, dropPercent(old, n)
	}
	return "", 0
}

func dropPercent(old, n int) float64 {
	if old <= 0 || n >= old {
		return 0
	}
	return 100 * float64(old-n) / float64(old)
}

// Status is what a source writes to its status file after every reload:
// the table in force and the reload held back, if any. The gateway writes
// it; `easgate compliance status` and `accept` read it.
type Status struct {
	Source   string    `json:"source"`
	Path     string    `json:"path,omitempty"`
	Entries  int       `json:"entries"` // in force
	SHA256   string    `json:"sha256"`  // of the content in force
	HeldBack *HeldBack `json:"held_back,omitempty"`
	Updated  time.Time `json:"updated"`
	// Shared is set with several nodes on a shared state database
	// (state.url), for the file source: whether this node reads its file
	// and publishes the table, or uses the table another node published.
	Shared *SharedStatus `json:"shared,omitempty"`
}

// Roles of a node in SharedStatus.
const (
	RoleLeader   = "leader"   // holds the lease, reads its file and publishes the table
	RoleFollower = "follower" // uses the table the leader published; does not read its file
)

// SharedStatus is the part of Status about a table shared between nodes.
type SharedStatus struct {
	Role string `json:"role"` // RoleLeader or RoleFollower
	// Published is when the table in force was published (zero on a
	// follower that has not received one yet: its own file, as read at
	// start, is in force).
	Published time.Time `json:"published,omitzero"`
	// Path is the file the leader read the table from (on the leader's
	// machine).
	Path string `json:"path,omitempty"`
}

// GuardPaths names the accept marker and status files of a source:
// "<path>.accept" and "<path>.status" next to the CSV for the file source;
// for graph, "<state.path>.graph.accept" and ".graph.status" next to the
// state store, or next to the config file when state.path is empty. Both
// the gateway and `easgate compliance` use it, so they agree.
func GuardPaths(sourceType, csvPath, statePath, configPath string) (accept, status string) {
	base := csvPath
	if sourceType != "file" {
		base = statePath
		if base == "" {
			base = configPath
		}
		if base == "" {
			return "", ""
		}
		base += "." + sourceType
	}
	if base == "" {
		return "", ""
	}
	return base + ".accept", base + ".status"
}

// ReadStatus reads a status file.
func ReadStatus(path string) (*Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: not a compliance status file: %v", path, err)
	}
	return &s, nil
}

// maxMarker bounds the accept marker file read by the source.
const maxMarker = 4096

// WriteAccept writes the accept marker that confirms the content whose
// SHA-256 is sum (64 hex digits). The write is atomic (a temporary file
// renamed over the marker), so the source never reads half a marker.
func WriteAccept(path, sum string) error {
	if _, err := parseSum(sum); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := fmt.Fprintf(tmp, "%s\n", strings.ToLower(sum)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// readAccept returns the digest an accept marker names; ok is false when
// there is no marker. A marker that is not a digest is an error.
func readAccept(path string) (sum [32]byte, ok bool, err error) {
	if path == "" {
		return sum, false, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return sum, false, nil
	}
	if err != nil {
		return sum, false, err
	}
	defer f.Close()
	buf := make([]byte, maxMarker)
	n, _ := f.Read(buf)
	first, _, _ := bytes.Cut(buf[:n], []byte{'\n'})
	sum, err = parseSum(strings.TrimSpace(string(first)))
	if err != nil {
		return sum, false, fmt.Errorf("accept marker %s: %v", path, err)
	}
	return sum, true, nil
}

func parseSum(s string) ([32]byte, error) {
	var sum [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(sum) {
		return sum, fmt.Errorf("%q is not a SHA-256 digest (64 hex digits)", s)
	}
	copy(sum[:], b)
	return sum, nil
}

// writeStatus writes st to path atomically.
func writeStatus(path string, st *Status) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// guardState is the part of a source's state the guard keeps; the source
// guards it with its own lock.
type guardState struct {
	g          Guard
	source     string
	path       string
	held       *HeldBack
	heldSum    [32]byte
	consumed   [32]byte // the last accept marker used: it accepts once
	statusFail bool
	shared     *SharedStatus
}

func (s *guardState) emit(ev GuardEvent) {
	ev.Source = s.source
	if s.g.OnEvent != nil {
		s.g.OnEvent(ev)
	}
}

// status writes the status file, reporting the first failure.
func (s *guardState) status(entries int, sum [32]byte) {
	if s.g.StatusPath == "" {
		return
	}
	err := writeStatus(s.g.StatusPath, &Status{Source: s.source, Path: s.path, Entries: entries,
		SHA256: hex.EncodeToString(sum[:]), HeldBack: s.held, Updated: time.Now().UTC(), Shared: s.shared})
	if err != nil && !s.statusFail {
		s.emit(GuardEvent{Entries: entries, StatusErr: fmt.Errorf("compliance status file: %w", err)})
	}
	s.statusFail = err != nil
}

// accepted reports whether the accept marker names sum and was not used
// yet. It returns the marker's problem, if any, for the hold's detail.
func (s *guardState) accepted(sum [32]byte) (bool, string) {
	m, ok, err := readAccept(s.g.AcceptPath)
	switch {
	case err != nil:
		return false, err.Error()
	case !ok:
		return false, ""
	case m == s.consumed:
		return false, ""
	case m != sum:
		return false, "an accept marker names other content (sha256 " + hex.EncodeToString(m[:8]) + "...); it accepts only the content it names"
	}
	return true, ""
}

// consume forgets an accept marker that has been used.
func (s *guardState) consume(sum [32]byte) {
	s.consumed = sum
	if s.g.AcceptPath != "" {
		_ = os.Remove(s.g.AcceptPath) // when it cannot be removed, consumed still makes it accept once
	}
}

// hold records and reports a held-back reload.
func (s *guardState) hold(h *HeldBack, sum [32]byte, inForce int, inForceSum [32]byte) {
	h.Source, h.Path, h.MaxDrop = s.source, s.path, 100*s.g.maxDrop()
	h.SHA256 = hex.EncodeToString(sum[:])
	h.Since = time.Now().UTC()
	s.held, s.heldSum = h, sum
	s.emit(GuardEvent{Held: h, Entries: inForce})
	s.status(inForce, inForceSum)
}

// end reports that content was installed after a hold, or accepted at
// once by a marker (by != "").
func (s *guardState) end(by string, entries int, sum [32]byte) {
	wasHeld := s.held != nil
	s.held = nil
	if wasHeld || (by != "" && by != EndedByReload) {
		if by == "" {
			by = EndedByReload
		}
		s.emit(GuardEvent{EndedBy: by, Entries: entries})
	}
	s.status(entries, sum)
}
