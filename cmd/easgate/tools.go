package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/eas/wbxml"
)

// maxToolInput bounds what decode/encode read, so a wrong file cannot exhaust memory.
const maxToolInput = 64 << 20

func newFlagSet(name, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: easgate %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args with fs, accepting flags before and after the
// positional arguments (easgate check-config FILE --no-files), as admins
// type them. After "--" everything is positional. fs.Args() then holds the
// positional arguments in their order.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return errHelp
			}
			return &exitError{code: 2, err: fmt.Errorf("")}
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// Leave exactly the positional arguments in fs.Args().
	_ = fs.Parse(append([]string{"--"}, pos...))
	return nil
}

func readAllLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxToolInput+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxToolInput {
		return nil, fmt.Errorf("input larger than %d bytes", maxToolInput)
	}
	return data, nil
}

func runDecode(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("decode", "[--libwbxml] [FILE|-]", stderr)
	lib := fs.Bool("libwbxml", false, "spell element names and namespaces as libwbxml's wbxml2xml does")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	in, name, err := openInput(fs.Args(), stdin)
	if err != nil {
		return err
	}
	defer in.Close()
	data, err := readAllLimited(in)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	w := bufio.NewWriter(stdout)
	if err := wbxml.ToXML(w, data, wbxml.XMLOptions{Libwbxml: *lib}); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return w.Flush()
}

func runEncode(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("encode", "[FILE|-]", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	in, name, err := openInput(fs.Args(), stdin)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := wbxml.FromXML(io.LimitReader(in, maxToolInput))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	_, err = stdout.Write(out)
	return err
}

func runParseRequest(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("parse-request", "--url URL [-X METHOD] [-H 'Name: value' ...]", stderr)
	rawURL := fs.String("url", "", "request URL or path with query, e.g. '/Microsoft-Server-ActiveSync?Cmd=Sync&...'")
	method := fs.String("X", "POST", "HTTP method")
	var headers headerFlag
	fs.Var(&headers, "H", "request header 'Name: value' (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rawURL == "" {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("--url is required")}
	}
	u, err := url.Parse(*rawURL)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	h := eas.HeaderMap{}
	for _, line := range headers {
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return &exitError{code: 2, err: fmt.Errorf("-H %q: want 'Name: value'", line)}
		}
		h[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	var req eas.Request
	if err := req.Parse([]byte(strings.ToUpper(*method)), []byte(path), []byte(u.RawQuery), h); err != nil {
		return err
	}
	return writeJSON(stdout, &req)
}

func runClassify(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("classify", "--user-agent UA [--device-type T] [--os OS] [--model M] [--friendly-name N] [--rules FILE] [--explain]", stderr)
	ua := fs.String("user-agent", "", "HTTP User-Agent of the device")
	dt := fs.String("device-type", "", "EAS DeviceType")
	osName := fs.String("os", "", "DeviceInformation OS, e.g. 'iOS 17.5.1 21F90'")
	model := fs.String("model", "", "DeviceInformation Model")
	friendly := fs.String("friendly-name", "", "DeviceInformation FriendlyName")
	rulesFile := fs.String("rules", "", "an administrator's rules file (identify.rules_file) to use with the embedded rules")
	explain := fs.Bool("explain", false, "show which rule gave each fact and why the other rules did not match")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *ua == "" && *dt == "" && *osName == "" && *model == "" && *friendly == "" {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("give at least --user-agent")}
	}
	rs := eas.DefaultRules()
	if *rulesFile != "" {
		data, err := readFileLimited(*rulesFile, eas.MaxRulesFileSize)
		if err != nil {
			return err
		}
		if rs, err = eas.NewRules(*rulesFile, data); err != nil {
			return &exitError{code: 1, err: err}
		}
	}
	info := &eas.DeviceInfo{OS: *osName, Model: *model, FriendlyName: *friendly}
	if !*explain {
		return writeJSON(stdout, rs.Identify([]byte(*ua), []byte(*dt), info))
	}
	c, trace := rs.Explain([]byte(*ua), []byte(*dt), info)
	if err := writeJSON(stdout, c); err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	fmt.Fprintln(w, "rules, in the order they are tried (DeviceInformation, then User-Agent, then DeviceType):")
	for _, t := range trace {
		fmt.Fprintf(w, "  %-9s %-28s %s:%d  %s\n", t.Outcome, t.Rule, t.File, t.Line, t.Reason)
	}
	return w.Flush()
}

// readFileLimited reads a file of at most limit bytes.
func readFileLimited(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
	}
	return data, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
