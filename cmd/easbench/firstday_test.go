package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/easgate/easgate/bench"
	"github.com/easgate/easgate/proxy"
	"github.com/easgate/easgate/proxy/config"
)

// TestRunReportsGatewayDecisions: easbench run through a real easgate
// whose policy quarantines iPhones, blocks Gmail and allows Outlook counts
// the fleet's devices by those decisions, counts the block and quarantine
// answers apart from errors (--fail-on-error passes), and warns that most
// of the fleet was not forwarded. The target is the full EAS URL.
func TestRunReportsGatewayDecisions(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a fleet through easgate")
	}
	cas := bench.NewFakeCAS(bench.FakeCASConfig{Messages: 3, MessageSize: 300, AttachmentSize: -1, TimeScale: 60})
	casLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = cas.Serve(casLn) }()
	defer cas.Close()
	dir := t.TempDir()
	yaml := `listen:
  address: "127.0.0.1:0"
  plain_http: true
upstreams:
  servers:
    - url: http://` + casLn.Addr().String() + `
  timeouts:
    long_poll_max: 120s
policy:
  default_access: quarantine
  discovery_period: 0s
  rules:
    - name: block-gmail
      match: {client: gmail}
      access: block
    - name: outlook
      match: {client: outlook-mobile}
      access: allow
state:
  path: ` + filepath.Join(dir, "state.db") + `
admin:
  address: ""
log:
  level: warn
  access_log: "off"
`
	cfg, err := config.Parse("easgate.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()

	jsonPath := filepath.Join(dir, "r.json")
	var out, errb bytes.Buffer
	code := run([]string{"run", "--target", "http://" + ln.Addr().String() + "/Microsoft-Server-ActiveSync",
		"--devices", "8", "--mix", "ios=2,gmail=1,outlook=1", "--duration", "3s", "--time-scale", "60",
		"--heartbeat", "120s", "--password", "pw", "--fail-on-error", "--json", jsonPath}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if d := rep.Decisions; d == nil || d.Quarantined != 4 || d.Blocked != 2 || d.Allowed != 2 || d.Unknown != 0 {
		t.Fatalf("decisions %+v, want 4 quarantined, 2 blocked, 2 allowed\n%s", rep.Decisions, out.String())
	}
	if rep.Errors != 0 || rep.PolicyAnswers[bench.KindBlocked] == 0 {
		t.Errorf("errors %d (%v), policy answers %v: want no errors and the blocks counted apart",
			rep.Errors, rep.ErrorKinds, rep.PolicyAnswers)
	}
	for _, want := range []string{
		"gateway decisions for the fleet (from its answers): allowed 2  quarantined 4  blocked 2  unknown 0",
		"warning: 6 of 8 devices (75%) were not forwarded to the CAS",
		"Ping (held: ms until answered)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.HasPrefix(rep.Target, "http://127.0.0.1:") || strings.Contains(rep.Target, "Microsoft") {
		t.Errorf("report target %q, want the base URL", rep.Target)
	}
}

// TestRunTargetForms: a target easbench cannot use is refused with a
// message that says what to give; -h of every subcommand describes it.
func TestRunTargetForms(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"run", "--target", "https://mail.example.com/owa"}, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "give the gateway's base URL (https://mail.example.com) or its EAS URL") {
		t.Errorf("bad path: exit %d %q", code, errb.String())
	}
	for cmd, want := range map[string]string{
		"run":        "Drives a fleet of simulated phones",
		"upstream":   "Runs a fake Exchange CAS",
		"compare":    "Runs one fleet scenario three times",
		"bare-proxy": "Runs the smallest reverse proxy",
		"version":    "Prints easbench's version",
	} {
		out.Reset()
		errb.Reset()
		if code := run([]string{cmd, "-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), want) {
			t.Errorf("easbench %s -h: exit %d, lacks %q:\n%s", cmd, code, want, errb.String())
		}
	}
}

// TestEasbenchVersion: version and --version print the version, commit,
// build date and Go version.
func TestEasbenchVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		var out, errb bytes.Buffer
		if code := run([]string{arg}, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d %q", arg, code, errb.String())
		}
		for _, w := range []string{"easbench dev\n", "commit:     ", "build date: ", "go:         go"} {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: lacks %q:\n%s", arg, w, out.String())
			}
		}
	}
}

// TestRampDefault: without --ramp the devices start over a quarter of the
// run (at most one heartbeat); --ramp 0s starts them at once.
func TestRampDefault(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{nil, 10 * time.Second},
		{[]string{"--heartbeat", "60s", "--time-scale", "10"}, 6 * time.Second},
		{[]string{"--ramp", "0s"}, 0},
		{[]string{"--ramp", "3s"}, 3 * time.Second},
	} {
		var rf runFlags
		fs := newTestFlagSet()
		rf.register(fs)
		if err := fs.Parse(append([]string{"--duration", "40s"}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		if err := rf.finish(fs); err != nil {
			t.Fatal(err)
		}
		if rf.cfg.Ramp != tc.want {
			t.Errorf("%v: ramp %s, want %s", tc.args, rf.cfg.Ramp, tc.want)
		}
	}
}

func newTestFlagSet() *flag.FlagSet { return flag.NewFlagSet("test", flag.ContinueOnError) }
