package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/easgate/easgate/bench"
)

// runFlags are the fleet flags shared by run and compare.
type runFlags struct {
	cfg       bench.RunConfig
	mix       string
	jsonOut   string
	htmlOut   string
	failOnErr bool
}

func (rf *runFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&rf.cfg.Devices, "devices", 10, "number of simulated devices")
	fs.DurationVar(&rf.cfg.Duration, "duration", 30*time.Second, "run length (wall time)")
	fs.DurationVar(&rf.cfg.Ramp, "ramp", 0, "start devices evenly over this period (default: a quarter of --duration, at most one --heartbeat in wall time; 0s starts them all at once)")
	fs.StringVar(&rf.cfg.Scenario, "scenario", bench.ScenarioLifecycle, "after set-up: lifecycle (the Ping loop with syncs, mail, downloads) or small (back-to-back small Syncs: throughput)")
	fs.StringVar(&rf.mix, "mix", "ios=40,outlook=30,gmail=10,samsung=10,windows=10", "client mix: name=weight,...")
	fs.DurationVar(&rf.cfg.Heartbeat, "heartbeat", 295*time.Second, "Ping HeartbeatInterval sent by devices (protocol time)")
	fs.Float64Var(&rf.cfg.TimeScale, "time-scale", 1, "server time scale (must match the fake CAS's --time-scale)")
	fs.StringVar(&rf.cfg.UserPrefix, "user-prefix", "u", "users are PREFIX0001, PREFIX0002, ...")
	fs.StringVar(&rf.cfg.Password, "password", "", "password of every user (Basic auth)")
	fs.Float64Var(&rf.cfg.SendMailRate, "send-mail-rate", 0.05, "probability of SendMail after each Ping answer")
	fs.Float64Var(&rf.cfg.AttachmentRate, "attachment-rate", 0.3, "probability of downloading a newly synced attachment")
	fs.IntVar(&rf.cfg.SendAttachmentSize, "send-attachment-size", 32<<10, "attachment bytes of sent mail")
	fs.DurationVar(&rf.cfg.Timeout, "timeout", 60*time.Second, "timeout of ordinary requests")
	fs.BoolVar(&rf.cfg.VerifyContent, "verify-content", false, "check downloaded attachments against the fake CAS's generator")
	fs.StringVar(&rf.jsonOut, "json", "", "write the JSON report to FILE")
	fs.StringVar(&rf.htmlOut, "html", "", "write the HTML report (inline SVG charts) to FILE")
	fs.BoolVar(&rf.failOnErr, "fail-on-error", false, "exit 3 when any error (protocol, HTTP, transport) was seen")
}

// finish checks the flags after parsing fs; an unset --ramp gets the
// default ramp (bench.DefaultRamp).
func (rf *runFlags) finish(fs *flag.FlagSet) error {
	mix, err := bench.ParseMix(rf.mix)
	if err != nil {
		return exitError{2, err.Error()}
	}
	rf.cfg.Mix = mix
	rampSet := false
	fs.Visit(func(f *flag.Flag) { rampSet = rampSet || f.Name == "ramp" })
	if !rampSet {
		rf.cfg.Ramp = bench.DefaultRamp(rf.cfg.Duration, rf.cfg.Heartbeat, rf.cfg.TimeScale)
	}
	if rf.cfg.Ramp < 0 {
		return exitError{2, fmt.Sprintf("--ramp %s: must not be negative", rf.cfg.Ramp)}
	}
	return nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("easbench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rf runFlags
	rf.register(fs)
	target := fs.String("target", "", "the gateway's base URL (https://127.0.0.1:8443) or its EAS URL (https://mail.example.com/Microsoft-Server-ActiveSync) (required)")
	insecure := fs.Bool("insecure", false, "do not verify the target's certificate")
	ca := fs.String("ca", "", "PEM CA bundle to verify the target")
	cert := fs.String("cert", "", "client certificate (PEM) for certificate authentication")
	key := fs.String("key", "", "client key (PEM)")
	pid := fs.Int("pid", 0, "gateway PID to sample RSS and CPU from /proc")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), runUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return exitError{2, "run: unexpected argument " + fs.Arg(0)}
	}
	if *target == "" {
		return exitError{2, "run: --target is required"}
	}
	if err := rf.finish(fs); err != nil {
		return err
	}
	t, err := bench.NormalizeTarget(*target)
	if err != nil {
		return exitError{2, "run: " + err.Error()}
	}
	rf.cfg.Target = t
	rf.cfg.PID = *pid
	if strings.HasPrefix(t, "https://") {
		tc, err := bench.ClientTLS(*insecure, *ca, *cert, *key)
		if err != nil {
			return exitError{2, err.Error()}
		}
		rf.cfg.TLSConfig = tc
	}
	rf.cfg.Progress = stderr
	if f, ok := stderr.(*os.File); ok {
		rf.cfg.ProgressTTY = isTerminal(f)
	}
	rep, err := bench.Run(rf.cfg)
	if err != nil {
		return exitError{2, err.Error()}
	}
	return writeReports(rep, &rf, stdout)
}

const runUsage = `usage: easbench run --target URL [flags]

Drives a fleet of simulated phones (iOS Mail, Outlook, Gmail, Samsung Email,
Windows Mail in --mix proportions) at a gateway, or straight at a CAS, for
--duration: each runs the real life cycle (OPTIONS, Provision, Settings,
FolderSync, Sync) and then Direct Push (Ping, Sync on new mail, attachment
downloads, SendMail). Devices start over --ramp. It prints a table per
command (count, errors, latency quantiles, req/s), the gateway's decisions
for the fleet as its answers show them (allowed, quarantined, blocked), and
a warning when most of the fleet was not forwarded to the CAS: then the run
measures easgate's quarantine emulation, not forwarding. Block and
quarantine answers are counted as what they are, not as errors.

--target takes the gateway's base URL or the EAS URL an admin copies
(https://host/Microsoft-Server-ActiveSync). Users are PREFIX0001... with
--password; "easbench upstream" accepts any password unless given --users.

`

func writeReports(rep *bench.Report, rf *runFlags, stdout io.Writer) error {
	if err := rep.WriteText(stdout); err != nil {
		return err
	}
	write := func(path string, w func(io.Writer) error) error {
		if path == "" {
			return nil
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := w(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if err := write(rf.jsonOut, rep.WriteJSON); err != nil {
		return err
	}
	if err := write(rf.htmlOut, rep.WriteHTML); err != nil {
		return err
	}
	if rf.failOnErr && rep.Errors > 0 {
		return exitError{3, fmt.Sprintf("%d errors (%d protocol errors)", rep.Errors, rep.ProtocolErrors())}
	}
	return nil
}
