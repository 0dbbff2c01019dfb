package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestFlagsAfterPositionalArguments: flags are accepted before and after
// the positional arguments; "--" ends the flags.
func TestFlagsAfterPositionalArguments(t *testing.T) {
	const example = "../../examples/easgate.yaml"
	for _, args := range [][]string{
		{"check-config", "--no-files", example},
		{"check-config", example, "--no-files"},
		{"check-config", example, "-no-files"},
	} {
		if code, out, errOut := runCmd(t, nil, args...); code != 0 || !strings.Contains(out, example+": OK") {
			t.Errorf("%q: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	// Without --no-files the example's files (/etc/easgate/...) are missing:
	// proof that the trailing flag above was honoured.
	if code, out, _ := runCmd(t, nil, "check-config", example); code != 1 || !strings.Contains(out, "/etc/easgate/") {
		t.Errorf("without --no-files: exit %d\n%s", code, out)
	}
	// After "--", "--no-files" is a file name.
	if code, _, errOut := runCmd(t, nil, "check-config", example, "--", "--no-files"); code != 2 || !strings.Contains(errOut, "give exactly one config file") {
		t.Errorf("after --: exit %d %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, nil, "check-config", example, "--bogus"); code != 2 || !strings.Contains(errOut, "flag provided but not defined: -bogus") {
		t.Errorf("unknown trailing flag: exit %d %q", code, errOut)
	}
}

// TestUsageLines: the usage lines show optional flags in brackets and the
// values a flag takes.
func TestUsageLines(t *testing.T) {
	_, _, errOut := runCmd(t, nil, "explain")
	want := "Usage: easgate explain --config FILE --user U --device-id D [--device-type T] [--user-agent UA] [--os OS] [--model M] [--auth basic|certificate|both|none] [--json]"
	if !strings.Contains(errOut, want) {
		t.Errorf("explain usage:\n%s\nwant %s", errOut, want)
	}
	_, _, errOut = runCmd(t, nil, "compliance", "status")
	if !strings.Contains(errOut, "Usage: easgate compliance status --config FILE [--json]") {
		t.Errorf("compliance status usage:\n%s", errOut)
	}
}

// TestVersion: `easgate version` and `easgate --version` print the
// version, commit, build date and Go version.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		code, out, errOut := runCmd(t, nil, arg)
		if code != 0 || errOut != "" {
			t.Fatalf("%s: exit %d %q", arg, code, errOut)
		}
		for _, w := range []string{"easgate dev\n", "commit:     ", "build date: ", "go:         " + runtime.Version()} {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", arg, w, out)
			}
		}
	}
	if code, _, _ := runCmd(t, nil, "version", "extra"); code != 2 {
		t.Errorf("version with an argument: exit %d, want 2", code)
	}
}

// TestVersionOfABuiltBinary: a binary built with -ldflags reports those
// values (what comes from the Go build information instead is tested in
// cmd/internal/buildinfo).
func TestVersionOfABuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "easgate")
	build := exec.Command("go", "build", "-o", bin, "-ldflags",
		"-X main.version=9.8.7 -X main.commit=feedface -X main.date=2026-12-06T08:00:00Z", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", bin, err, out)
	}
	for _, w := range []string{"easgate 9.8.7\n", "commit:     feedface", "build date: 2026-12-06T08:00:00Z\n", "go:         go"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestDemoIsReadable: the demo prints a table of decisions (no Go maps),
// says which message is the quarantine notice and what Ping statuses mean.
func TestDemoIsReadable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo")
	}
	code, out, errOut := runCmd(t, nil, "demo")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"Sync Inbox  1 message: easgate's quarantine notice \"" + demoNoticeSubject + "\"",
		"Sync Inbox  12 messages from Exchange",
		"Ping        Status 1: no changes during the heartbeat",
		"Ping        Status 2: changes in the Inbox (5): the quarantine notice",
		"blocked: Status 129, the answer Exchange gives a device that is not allowed to sync",
		"USER", "DECISION", "REQUESTS", "HTTP STATUS", "REASONS",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	rows := map[string]string{"alice@demo.example": "allow", "bob@demo.example": "quarantine",
		"carol@demo.example": "allow", "dave@demo.example": "block"}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && rows[f[0]] != "" {
			if f[2] != rows[f[0]] {
				t.Errorf("decision row %q: want %s", l, rows[f[0]])
			}
			delete(rows, f[0])
		}
	}
	if len(rows) != 0 || strings.Contains(out, "map[") {
		t.Errorf("decision table incomplete (%v missing) or prints Go maps:\n%s", rows, out)
	}
}

func TestCountList(t *testing.T) {
	if got := countList(map[string]int{"allow": 7}); got != "allow" {
		t.Errorf("one value: %q", got)
	}
	if got := countList(map[int]int{503: 1, 200: 3}); got != "200 3, 503 1" {
		t.Errorf("two values: %q", got)
	}
}
