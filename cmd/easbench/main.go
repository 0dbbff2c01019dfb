package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/easgate/easgate/bench"
	"github.com/easgate/easgate/cmd/internal/buildinfo"
)

const usage = `usage: easbench <command> [flags]

commands:
  upstream   run a fake Exchange CAS:  easbench upstream --listen 127.0.0.1:8081 [flags]
  run        drive a fleet of simulated phones at a target URL
  compare    run one scenario direct, through easgate and through nginx, with the
             fake CAS in its own process; prints the ratios and, per leg, the CPU
             of the gateway, of the fake CAS and of the load generator
             (--rounds N: N interleaved rounds, each leg's median round;
             --bare: a fourth leg through a bare fasthttp proxy)
  bare-proxy a minimal fasthttp reverse proxy, no EAS work (the --bare leg):
             easbench bare-proxy --listen 127.0.0.1:8082 --upstream 127.0.0.1:8081
  version    print the version, commit, build date and Go version (also --version)

Run "easbench <command> -h" for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "upstream":
		err = cmdUpstream(args[1:], stderr)
	case "run":
		err = cmdRun(args[1:], stdout, stderr)
	case "compare":
		err = cmdCompare(args[1:], stdout, stderr)
	case "bare-proxy":
		err = cmdBareProxy(args[1:], stderr)
	case "version", "--version", "-version":
		err = cmdVersion(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "easbench: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		fmt.Fprintln(stderr, "easbench:", ee.msg)
		return ee.code
	}
	if err != nil {
		fmt.Fprintln(stderr, "easbench:", err)
		return 1
	}
	return 0
}

// version, commit and date may be set at build time, as for easgate:
// go build -ldflags "-X main.version=... -X main.commit=... -X main.date=...".
var (
	version = "dev"
	commit  = ""
	date    = ""
)

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("easbench version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: easbench version\n\nPrints easbench's version, commit, build date and Go version.\n")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return exitError{2, "version: unexpected argument " + fs.Arg(0)}
	}
	buildinfo.Read("easbench", version, commit, date).Write(stdout)
	return nil
}

// parseFlags parses a command's flags; a bad flag is a usage error (exit
// 2), like an unknown command.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return exitError{2, err.Error()}
}

// exitError carries a specific exit code (2 = usage, 3 = errors seen with
// --fail-on-error).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// casFlags registers the FakeCASConfig flags on fs.
func casFlags(fs *flag.FlagSet, cfg *bench.FakeCASConfig, users *string) {
	fs.DurationVar(&cfg.Latency, "latency", 0, "latency added to every non-held answer")
	fs.Float64Var(&cfg.FailRate, "fail-rate", 0, "fraction of requests answered 503 + Retry-After")
	fs.Float64Var(&cfg.ResetRate, "reset-rate", 0, "fraction of connections reset")
	fs.Float64Var(&cfg.SlowRate, "slow-rate", 0, "fraction of requests delayed by --slow-delay")
	fs.DurationVar(&cfg.SlowDelay, "slow-delay", 2*time.Second, "delay of a slow request")
	fs.IntVar(&cfg.Messages, "messages", 50, "initial Inbox messages per mailbox")
	fs.IntVar(&cfg.MessageSize, "message-size", 2048, "body bytes per message")
	fs.IntVar(&cfg.AttachmentSize, "attachment-size", 64<<10, "bytes per attachment (every third message has one; -1 none)")
	fs.DurationVar(&cfg.PingChangeEvery, "ping-change-every", 0, "deliver one message to every mailbox at this period (protocol time)")
	fs.DurationVar(&cfg.MaxHeartbeat, "max-heartbeat", 3540*time.Second, "largest Ping/Sync heartbeat accepted")
	fs.StringVar(users, "users", "", "user:password,... for Basic auth (empty: accept any)")
}

func parseUsers(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	m := map[string]string{}
	for _, up := range strings.Split(s, ",") {
		u, p, ok := strings.Cut(up, ":")
		if !ok || u == "" {
			return nil, fmt.Errorf("--users: %q is not user:password", u)
		}
		m[u] = p
	}
	return m, nil
}

func cmdUpstream(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("easbench upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8081", "address to listen on (plain HTTP)")
	var cfg bench.FakeCASConfig
	var users string
	casFlags(fs, &cfg, &users)
	fs.Float64Var(&cfg.TimeScale, "time-scale", 1, "divide held durations by this factor")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `usage: easbench upstream [flags]

Runs a fake Exchange CAS (plain HTTP) until SIGINT or SIGTERM.

When $%s is set (easbench compare sets it for the fake CAS it starts as
its own process), the address and every option come from that JSON spec and
no flag may be given.

`, bench.CASSpecEnv)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return exitError{2, "upstream: unexpected argument " + fs.Arg(0)}
	}
	var err error
	if cfg.Users, err = parseUsers(users); err != nil {
		return exitError{2, err.Error()}
	}
	spec, err := bench.CASSpecFromEnv()
	if err != nil {
		return exitError{2, "upstream: " + err.Error()}
	}
	if spec != nil {
		var set []string
		fs.Visit(func(f *flag.Flag) { set = append(set, "--"+f.Name) })
		if len(set) > 0 {
			return exitError{2, fmt.Sprintf("upstream: %s cannot be combined with $%s (the spec easbench compare passes)",
				strings.Join(set, ", "), bench.CASSpecEnv)}
		}
		*listen, cfg = spec.Listen, spec.CAS
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	cas := bench.NewFakeCAS(cfg)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		_ = cas.Close()
	}()
	fmt.Fprintf(stderr, "easbench: fake Exchange CAS on http://%s/Microsoft-Server-ActiveSync (time scale %g)\n", ln.Addr(), cfg.TimeScale)
	err = cas.Serve(ln)
	s := cas.Stats()
	fmt.Fprintf(stderr, "easbench: served %v; SendMail %d; Provisioned %d; max held Pings %d\n", s.Requests, s.SendMail, s.Provisioned, s.MaxHeldPings)
	return err
}

func cmdBareProxy(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("easbench bare-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8082", "address to listen on (plain HTTP)")
	upstream := fs.String("upstream", "127.0.0.1:8081", "host:port of the upstream (plain HTTP), e.g. a fake CAS")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: easbench bare-proxy [flags]

Runs the smallest reverse proxy fasthttp makes, in front of one plain-HTTP
upstream, until SIGINT or SIGTERM: each request is passed on over kept-alive
connections and the answer handed back, with no EAS work (no parsing, policy,
access log or metrics). easbench compare --bare runs it as a fourth leg, so
that easgate ÷ bare shows what easgate's own work costs and bare ÷ nginx what
Go and fasthttp cost against nginx on this machine. Answers are buffered
whole: it is a yardstick for small requests, not a gateway.

`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return exitError{2, "bare-proxy: unexpected argument " + fs.Arg(0)}
	}
	if _, _, err := net.SplitHostPort(*upstream); err != nil {
		return exitError{2, fmt.Sprintf("bare-proxy: --upstream %q: want host:port (%v)", *upstream, err)}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	p := bench.NewBareProxy(*upstream)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		_ = p.Close()
	}()
	fmt.Fprintf(stderr, "easbench: bare fasthttp proxy on http://%s to http://%s\n", ln.Addr(), *upstream)
	return p.Serve(ln)
}
