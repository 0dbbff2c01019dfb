// Command easgate is the Exchange ActiveSync conditional-access gateway and its
// admin tools. It is a thin layer over the packages: every subcommand parses
// its flags, calls one package API and prints the result.
//
// It may import every easgate package; no package may import it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/easgate/easgate/cmd/internal/buildinfo"
)

// version, commit and date may be set at build time:
//
//	go build -ldflags "-X main.version=1.4.0 -X main.commit=$(git rev-parse HEAD) -X main.date=$(date -u +%FT%TZ)" ./cmd/easgate
//
// What is not set comes from the Go build information (buildinfo).
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// command is one subcommand of easgate.
type command struct {
	summary string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"serve":         {"run the gateway from a config file (admin listener: API, web console, /metrics)", runServe},
	"check-config":  {"validate a config file and print every error with file:line:column", runCheckConfig},
	"demo":          {"start a fake CAS and the gateway on loopback and send requests as real phones", runDemo},
	"decode":        {"decode WBXML (file or -) to indented XML", runDecode},
	"encode":        {"encode XML (file or -) to WBXML", runEncode},
	"parse-request": {"parse an EAS request URL and headers and print it as JSON", runParseRequest},
	"classify":      {"identify the mail client from User-Agent, DeviceType and DeviceInformation", runClassify},
	"explain":       {"show how the policy decides for a user and device, rule by rule", runExplain},
	"compliance":    {"accept | status: confirm or show a held-back compliance table reload", runCompliance},
	"version":       {"print the version, commit, build date and Go version (also --version)", runVersion},
}

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "easgate: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if err := cmd.run(args[1:], stdin, stdout, stderr); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.err != nil && ee.err.Error() != "" {
				fmt.Fprintf(stderr, "easgate %s: %v\n", args[0], ee.err)
			}
			return ee.code
		}
		if errors.Is(err, errHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "easgate %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

var errHelp = errors.New("help requested")

func usage(w io.Writer) {
	fmt.Fprintln(w, "easgate - Exchange ActiveSync conditional-access gateway")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: easgate <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'easgate <command> -h' for the flags of a command.")
}

func runVersion(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("version takes no arguments, got %q", fs.Arg(0))}
	}
	buildinfo.Read("easgate", version, commit, date).Write(stdout)
	return nil
}

// openInput opens a file argument, where "-" or no argument means stdin.
func openInput(args []string, stdin io.Reader) (io.ReadCloser, string, error) {
	if len(args) == 0 || args[0] == "-" {
		return io.NopCloser(stdin), "stdin", nil
	}
	if len(args) > 1 {
		return nil, "", fmt.Errorf("expected one input file, got %d: %s", len(args), strings.Join(args, " "))
	}
	f, err := os.Open(args[0])
	if err != nil {
		return nil, "", err
	}
	return f, args[0], nil
}

// headerFlag collects repeated -H 'Name: value' flags.
type headerFlag []string

func (h *headerFlag) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlag) Set(v string) error { *h = append(*h, v); return nil }
