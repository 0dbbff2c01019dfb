package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/easgate/easgate/bench"
)

func cmdCompare(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("easbench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rf runFlags
	rf.register(fs)
	var cc bench.CompareConfig
	var users string
	casFlags(fs, &cc.CAS, &users)
	fs.StringVar(&cc.CASListen, "cas-listen", "127.0.0.1:0", "fake CAS address (fix it when --easgate-url's config points at it)")
	fs.StringVar(&cc.EasgateURL, "easgate-url", "", "a running easgate in front of --cas-listen")
	fs.IntVar(&cc.EasgatePID, "easgate-pid", 0, "PID of the running easgate (RSS/CPU)")
	fs.StringVar(&cc.EasgateBin, "easgate-bin", "", "easgate binary to start as a subprocess")
	easgateArgs := fs.String("easgate-args", "serve --config {config}", "arguments for --easgate-bin; {config} is the config path")
	fs.StringVar(&cc.EasgateConfig, "easgate-config", "", "config template for --easgate-bin with {listen} and {upstream} (default: generated)")
	fs.StringVar(&cc.NginxBin, "nginx", "", `nginx binary ("" = look up, "-" = skip)`)
	fs.IntVar(&cc.Rounds, "rounds", 1, "run every leg this many times, interleaved (the leg order rotates each round); each leg's figures are its median round")
	bare := fs.Bool("bare", false, "add a leg through a bare fasthttp proxy (easbench bare-proxy, its own process): what any fasthttp gateway costs before EAS work")
	casInProcess := fs.Bool("cas-in-process", false, "run the fake CAS inside easbench instead of as its own process (its CPU then counts as bench CPU%)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), compareUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return exitError{2, "compare: unexpected argument " + fs.Arg(0)}
	}
	if err := rf.finish(fs); err != nil {
		return err
	}
	if cc.Rounds < 1 {
		return exitError{2, fmt.Sprintf("compare: --rounds %d: want at least 1", cc.Rounds)}
	}
	var err error
	if cc.CAS.Users, err = parseUsers(users); err != nil {
		return exitError{2, err.Error()}
	}
	// The fleet and the fake CAS must share the time scale.
	cc.CAS.TimeScale = rf.cfg.TimeScale
	cc.EasgateArgs = strings.Fields(*easgateArgs)
	cc.Run = rf.cfg
	cc.Log = stderr
	if !*casInProcess || *bare {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("compare: cannot find the easbench binary to run the fake CAS and the bare proxy (%v); use --cas-in-process without --bare", err)
		}
		if !*casInProcess {
			cc.CASCommand = []string{exe, "upstream"}
		}
		if *bare {
			cc.BareCommand = []string{exe, "bare-proxy"}
		}
	}
	res, err := bench.Compare(cc)
	if res != nil {
		if werr := res.WriteText(stdout); werr != nil {
			return werr
		}
	}
	if err != nil {
		return err
	}
	if rf.jsonOut != "" || rf.htmlOut != "" {
		for _, l := range res.Legs {
			lf := rf
			lf.failOnErr = false
			if lf.jsonOut != "" {
				lf.jsonOut = legPath(lf.jsonOut, l.Name)
			}
			if lf.htmlOut != "" {
				lf.htmlOut = legPath(lf.htmlOut, l.Name)
			}
			if err := writeReports(l.Report, &lf, io.Discard); err != nil {
				return err
			}
		}
	}
	if rf.failOnErr {
		for _, l := range res.Legs {
			for _, r := range l.Rounds {
				if r.Errors > 0 {
					msg := "errors in leg " + l.Name
					if res.Rounds > 1 {
						msg += fmt.Sprintf(" (round %d)", r.Round)
					}
					return exitError{3, msg}
				}
			}
		}
	}
	return nil
}

const compareUsage = `usage: easbench compare [flags]

Runs one fleet scenario three times against a fake Exchange CAS: straight to
it ("direct"), through easgate (--easgate-bin or --easgate-url) and through
nginx, with fresh users each time, and prints one line per leg:

  req/s, p50/p99/p99.9 ms, errors
  gw CPU%, gw RSS     the gateway process (easgate, nginx or the bare proxy;
                      "-" when direct)
  CAS CPU%, CAS RSS   the fake CAS, which runs as its own process
                      ("easbench upstream", given its options through $EASBENCH_CAS_SPEC)
                      unless --cas-in-process
  bench CPU%          easbench itself, the load generator
  p50 ×, p99 ×, req/s ×   ratios to the direct leg

CPU% is CPU time over the leg's wall time (100% = one core busy). On the
direct leg the fake CAS and the load generator have the machine to
themselves; through a gateway all three share it: compare CAS CPU% with
gw CPU%, and their sum with 100% × the cores (printed under the table).
--rounds N runs the legs N times in one invocation, each leg for the full
--duration every round, the order rotating (round 1: direct, easgate, nginx;
round 2: easgate, nginx, direct; ...); the fake CAS and the gateways start
once and serve every round, the users are fresh each round (round R > 1
inserts "rR-": udirect-r2-0001; list those in --users too). Each row is then
the leg's round with the median req/s (the lower-middle one for even N) and
the ratios are of these; under the table come every round's req/s per leg
with the spread ((max - min) / median) and the ratio easgate ÷ nginx of
each round with its median: the ratio within a round is the steadier one
on a busy machine.

--bare adds a fourth leg, "bare": the smallest reverse proxy fasthttp makes
(easbench bare-proxy, its own process), which does no EAS work. It rotates
with the others; with --rounds the ratios easgate ÷ bare (the price of
easgate's own work) and bare ÷ nginx (the price of Go and fasthttp on this
machine) are printed by round too.

--json/--html write one report per leg (report-direct.json, ...); in the
JSON the figures are "gateway", "cas" and "client" ({pid, cpu_seconds,
cpu_percent, rss_start_kib, rss_max_kib, rss_end_kib}); with --rounds N > 1
the report is the median round's and also has "rounds" ([{round, position,
req_per_s, p50_ms, p99_ms, errors}, ...], position = the leg's place in that
round's order) and "median_round" (1-based).

flags:
`

// legPath inserts the leg name before the extension: report.json →
// report-easgate.json.
func legPath(path, leg string) string {
	if i := strings.LastIndexByte(path, '.'); i > strings.LastIndexByte(path, '/') {
		return path[:i] + "-" + leg + path[i:]
	}
	return path + "-" + leg
}
