package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/easgate/easgate/policy/sources"
	"github.com/easgate/easgate/proxy/config"
)

// `easgate compliance accept|status`: the admin's side of the compliance
// reload guard (policy/sources/guard.go). Both work against a running
// gateway without an admin API: accept writes the accept marker file the
// source looks for, status reads the status file the source writes.

const complianceUsage = `Usage: easgate compliance <accept|status> --config FILE [--json]

  accept   confirm the compliance content the gateway holds back: the
           file source's current CSV, or the Graph source's held-back full
           sync. Writes the accept marker naming the content's SHA-256; the
           gateway applies exactly that content once, within seconds.
  status   show the table in force, a held-back reload, a pending marker.
           Exits 3 while a reload is held back.
`

func runCompliance(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, complianceUsage)
		return &exitError{code: 2, err: errors.New("")}
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, complianceUsage)
		return errHelp
	case "accept":
		return complianceAccept(args[1:], stdout, stderr)
	case "status":
		return complianceStatus(args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, complianceUsage)
	return &exitError{code: 2, err: fmt.Errorf("unknown subcommand %q", args[0])}
}

// guardTarget is what `easgate compliance` works on: the configured source
// and the guard's files, named as the gateway names them.
type guardTarget struct {
	typ, csv             string
	acceptPath, statPath string
}

func loadGuardTarget(name string, args []string, stdout, stderr io.Writer, asJSON *bool) (*guardTarget, error) {
	synopsis := "--config FILE"
	if asJSON != nil {
		synopsis += " [--json]"
	}
	fs := newFlagSet("compliance "+name, synopsis, stderr)
	cfgPath := fs.String("config", "", "the gateway's config file")
	if asJSON != nil {
		fs.BoolVar(asJSON, "json", false, "print JSON")
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if *cfgPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return nil, &exitError{code: 2, err: errors.New("--config is required, and nothing else")}
	}
	cfg, err := loadConfig(*cfgPath, stderr)
	if err != nil {
		return nil, err
	}
	src := cfg.Policy.Compliance.Source
	switch src.Type {
	case config.SourceFile, config.SourceGraph:
	case config.SourceNone:
		return nil, fmt.Errorf("%s configures no compliance source (policy.compliance.source)", *cfgPath)
	default:
		return nil, fmt.Errorf("the %s compliance source is asked per device and keeps no table: there is nothing to hold back or accept", src.Type)
	}
	t := &guardTarget{typ: src.Type, csv: src.Path}
	t.acceptPath, t.statPath = sources.GuardPaths(src.Type, src.Path, cfg.State.Path, cfg.Source)
	return t, nil
}

func complianceAccept(args []string, stdout, stderr io.Writer) error {
	t, err := loadGuardTarget("accept", args, stdout, stderr, nil)
	if err != nil {
		return err
	}
	st, stErr := sources.ReadStatus(t.statPath)
	var sum string
	if t.typ == config.SourceGraph {
		if stErr != nil {
			return fmt.Errorf("no Graph sync to accept: the gateway's status file is not readable (%v)", stErr)
		}
		h := st.HeldBack
		if h == nil {
			fmt.Fprintf(stdout, "nothing to accept: no full sync is held back (%d entries in force, status of %s)\n", st.Entries, st.Updated.Format(time.RFC3339))
			return nil
		}
		fmt.Fprintf(stdout, "accepting the Graph full sync held back since %s (%s): %d entries, %d in force (%.1f%% fewer)\n",
			h.Since.Format(time.RFC3339), h.Reason, h.New, h.Old, h.DropPercent)
		fmt.Fprintf(stdout, "digest: sha256 %s\n", h.SHA256)
		sum = h.SHA256
	} else {
		if stErr == nil && st.Shared != nil && st.Shared.Role == sources.RoleFollower {
			// The guard belongs to the node that reads the file: a marker
			// here would accept nothing now and, at a later takeover,
			// content nobody looked at then.
			return fmt.Errorf("nothing to accept on this node: it does not read %s while another node holds the compliance file lease; "+
				"it uses the table that node published%s. A held-back reload is accepted on the node that reads the file: "+
				"find it with easgate compliance status (it says \"this node holds the compliance file lease\") and accept there", t.csv, publishedNote(st.Shared))
		}
		f, err := sources.InspectFile(t.csv)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "accepting %s: %d entries, sha256 %s\n", t.csv, f.Entries, f.SHA256)
		if f.LineErrors > 0 {
			fmt.Fprintf(stdout, "  %d malformed line(s) will be skipped\n", f.LineErrors)
		}
		if f.Unparsable != "" {
			fmt.Fprintf(stdout, "  warning: the file is not the CSV format: %s\n", f.Unparsable)
		}
		if f.Entries == 0 {
			fmt.Fprintln(stdout, "  warning: no entries: every device will be treated as not enrolled")
		}
		switch {
		case stErr != nil:
			fmt.Fprintf(stdout, "  entries in force: not known here (the gateway's status file is not readable: %v)\n", stErr)
		case st.HeldBack == nil && st.SHA256 == f.SHA256:
			fmt.Fprintf(stdout, "nothing to accept: this content is in force (status of %s)\n", st.Updated.Format(time.RFC3339))
			return nil
		case st.HeldBack != nil && st.HeldBack.SHA256 == f.SHA256:
			h := st.HeldBack
			fmt.Fprintf(stdout, "  held back since %s (%s): %d entries in force, %.1f%% fewer\n", h.Since.Format(time.RFC3339), h.Reason, h.Old, h.DropPercent)
		default:
			fmt.Fprintf(stdout, "  %d entries in force (status of %s); the gateway has not looked at this content yet\n", st.Entries, st.Updated.Format(time.RFC3339))
		}
		sum = f.SHA256
	}
	if err := sources.WriteAccept(t.acceptPath, sum); err != nil {
		return fmt.Errorf("writing the accept marker: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s: the gateway applies exactly this content at its next check (every 2s) and removes the marker\n", t.acceptPath)
	if t.typ == config.SourceFile {
		fmt.Fprintln(stdout, "if the file changes before then, the marker accepts nothing; run accept again")
	}
	return nil
}

// statusOutput is what `easgate compliance status --json` prints.
type statusOutput struct {
	Source        string               `json:"source"`
	StatusFile    string               `json:"status_file"`
	Status        *sources.Status      `json:"status,omitempty"`
	StatusError   string               `json:"status_error,omitempty"`
	File          *sources.FileSummary `json:"file,omitempty"`
	FileState     string               `json:"file_state,omitempty"` // in-force, held-back, not-seen, not-read (a follower)
	AcceptPending string               `json:"accept_pending,omitempty"`
}

func complianceStatus(args []string, stdout, stderr io.Writer) error {
	var asJSON bool
	t, err := loadGuardTarget("status", args, stdout, stderr, &asJSON)
	if err != nil {
		return err
	}
	out := statusOutput{Source: t.typ, StatusFile: t.statPath}
	st, stErr := sources.ReadStatus(t.statPath)
	if stErr != nil {
		out.StatusError = stErr.Error()
	} else {
		out.Status = st
	}
	if t.typ == config.SourceFile {
		f, err := sources.InspectFile(t.csv)
		if err != nil {
			return err
		}
		out.File = &f
		switch {
		case st == nil:
		case st.Shared != nil && st.Shared.Role == sources.RoleFollower:
			out.FileState = "not-read"
		case st.HeldBack != nil && st.HeldBack.SHA256 == f.SHA256:
			out.FileState = "held-back"
		case st.SHA256 == f.SHA256:
			out.FileState = "in-force"
		default:
			out.FileState = "not-seen"
		}
	}
	if b, err := os.ReadFile(t.acceptPath); err == nil {
		out.AcceptPending = string(trimLine(b))
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		printStatus(stdout, t, &out)
	}
	if st != nil && st.HeldBack != nil {
		return &exitError{code: 3, err: errors.New("")}
	}
	return nil
}

func printStatus(w io.Writer, t *guardTarget, out *statusOutput) {
	fmt.Fprintf(w, "source: %s\n", t.typ)
	if st := out.Status; st != nil {
		fmt.Fprintf(w, "in force: %d entries, sha256 %s (as the gateway wrote at %s)\n", st.Entries, st.SHA256, st.Updated.Format(time.RFC3339))
		switch sh := st.Shared; {
		case sh == nil:
		case sh.Role == sources.RoleLeader:
			fmt.Fprintln(w, "shared state: this node holds the compliance file lease: it reads its file and publishes the table to the other nodes")
		default:
			fmt.Fprintf(w, "shared state: another node holds the compliance file lease: this node uses the table it published%s and does not read its own file\n", publishedNote(sh))
		}
		if h := st.HeldBack; h != nil {
			fmt.Fprintf(w, "HELD BACK since %s: %s, %d entries instead of %d (%.1f%% fewer, max_drop %g%%), sha256 %s\n",
				h.Since.Format(time.RFC3339), h.Reason, h.New, h.Old, h.DropPercent, h.MaxDrop, h.SHA256)
			if h.Detail != "" {
				fmt.Fprintf(w, "  %s\n", h.Detail)
			}
			fmt.Fprintln(w, "  if that content is right: easgate compliance accept --config FILE")
		} else {
			fmt.Fprintln(w, "no reload held back")
		}
	} else {
		fmt.Fprintf(w, "gateway status: unknown (%s): is the gateway running, and may it write there?\n", out.StatusError)
	}
	if f := out.File; f != nil {
		fmt.Fprintf(w, "file %s now: %d entries, sha256 %s", t.csv, f.Entries, f.SHA256)
		switch out.FileState {
		case "in-force":
			fmt.Fprint(w, " (in force)")
		case "held-back":
			fmt.Fprint(w, " (the held-back content)")
		case "not-seen":
			fmt.Fprint(w, " (not yet seen by the gateway, which looks every 2s)")
		case "not-read":
			fmt.Fprint(w, " (not read by this node: it is only read once this node takes the lease over)")
		}
		fmt.Fprintln(w)
		if f.Unparsable != "" {
			fmt.Fprintf(w, "  not the CSV format: %s\n", f.Unparsable)
		}
	}
	if out.AcceptPending != "" {
		fmt.Fprintf(w, "accept marker pending: %s names sha256 %s\n", t.acceptPath, out.AcceptPending)
	}
}

func trimLine(b []byte) []byte {
	for i, c := range b {
		if c == '\n' || c == '\r' {
			return b[:i]
		}
	}
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// publishedNote says where and when the table a follower uses was
// published ("" before the first one arrived).
func publishedNote(sh *sources.SharedStatus) string {
	if sh.Published.IsZero() {
		return " (none received yet: its own file as read at start is in force)"
	}
	note := " at " + sh.Published.Format(time.RFC3339)
	if sh.Path != "" {
		note += " from its " + sh.Path
	}
	return note
}
