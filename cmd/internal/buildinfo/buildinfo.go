// Package buildinfo says which build of easgate or easbench is running:
// the version, the commit, the build date and the Go version, for
// `easgate version`, `easgate --version` and the same in easbench.
//
// Values set at link time win (go build -ldflags "-X main.version=1.4.0
// -X main.commit=$(git rev-parse HEAD) -X main.date=$(date -u +%FT%TZ)");
// what is not set comes from runtime/debug.ReadBuildInfo: the module
// version, and the vcs.revision, vcs.time and vcs.modified that go build
// records when it builds inside a git checkout.
package buildinfo

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Info describes one build.
type Info struct {
	Program   string
	Version   string // "dev" when unknown
	Commit    string // "" when unknown
	Modified  bool   // built from a tree with uncommitted changes
	Date      string // RFC 3339; "" when unknown
	DateIsVCS bool   // Date is the commit's time, not the build's
	GoVersion string
	Platform  string // GOOS/GOARCH
}

// Read combines the link-time values (empty or "dev" when not set) with
// the build information of the running binary.
func Read(program, version, commit, date string) Info {
	bi, _ := debug.ReadBuildInfo()
	return From(bi, program, version, commit, date)
}

// From is Read with the build information given (nil when there is none).
func From(bi *debug.BuildInfo, program, version, commit, date string) Info {
	in := Info{Program: program, Version: version, Commit: commit, Date: date,
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
		if (in.Version == "" || in.Version == "dev") && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if in.Commit == "" {
					in.Commit = s.Value
				}
			case "vcs.modified":
				in.Modified = s.Value == "true"
			case "vcs.time":
				if in.Date == "" {
					in.Date, in.DateIsVCS = s.Value, true
				}
			}
		}
	}
	if in.Version == "" {
		in.Version = "dev"
	}
	return in
}

// Write prints the build, one field a line:
//
//	easgate 1.4.0
//	commit:     5b3e6da0c0ffee... (with uncommitted changes)
//	build date: 2026-12-06T08:49:00Z
//	go:         go1.26.0 linux/amd64
func (in Info) Write(w io.Writer) {
	fmt.Fprintf(w, "%s %s\n", in.Program, in.Version)
	commit := in.Commit
	switch {
	case commit == "":
		commit = "unknown (the build recorded no VCS information; set -ldflags \"-X main.commit=...\")"
	case in.Modified:
		commit += " (with uncommitted changes)"
	}
	fmt.Fprintf(w, "commit:     %s\n", commit)
	date := in.Date
	switch {
	case date == "":
		date = "unknown (set -ldflags \"-X main.date=...\")"
	case in.DateIsVCS:
		date += " (time of the commit)"
	}
	fmt.Fprintf(w, "build date: %s\n", date)
	fmt.Fprintf(w, "go:         %s %s\n", in.GoVersion, in.Platform)
}
