package multinode

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/easgate/easgate/bench"
)

// BenchmarkSharedStateLatency: the latency the shared state adds to a
// phone's request. The same small-Sync load (easbench's "small" scenario:
// back-to-back Syncs of the Inbox) runs against a node keeping its state in
// a bbolt file and against a node on the shared database, one after the
// other; the Sync p50 and p99 of each, and their ratio, are reported. The
// request path never touches the database, so the ratio should be ~1.
func BenchmarkSharedStateLatency(b *testing.B) {
	for range b.N {
		fileP50, fileP99 := latencyRun(b, false)
		pgP50, pgP99 := latencyRun(b, true)
		b.ReportMetric(fileP50, "file-p50-ms")
		b.ReportMetric(pgP50, "pg-p50-ms")
		b.ReportMetric(pgP50/fileP50, "p50-ratio")
		b.ReportMetric(fileP99, "file-p99-ms")
		b.ReportMetric(pgP99, "pg-p99-ms")
		b.ReportMetric(pgP99/fileP99, "p99-ratio")
	}
}

// latencyRun starts one node (with or without the shared database) and
// returns the Sync p50 and p99 of a small-request load in milliseconds.
func latencyRun(b *testing.B, shared bool) (p50, p99 float64) {
	b.Helper()
	cas := bench.NewFakeCAS(bench.FakeCASConfig{TimeScale: timeScale})
	casURL, err := cas.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer cas.Close()
	dir := b.TempDir()
	addr := freeAddrB(b)
	state := fmt.Sprintf("  path: %s\n", filepath.Join(dir, "state.db"))
	if shared {
		db, err := cluster.NewDatabase()
		if err != nil {
			b.Fatal(err)
		}
		pw := filepath.Join(dir, "pw")
		if err := os.WriteFile(pw, []byte(db.Password), 0o600); err != nil {
			b.Fatal(err)
		}
		state += fmt.Sprintf("  url: %s\n  password_file: %s\n", db.URL(false), pw)
	}
	cfg := filepath.Join(dir, "easgate.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen:
  address: %q
  plain_http: true
upstreams:
  servers:
    - url: %q
admin:
  address: ""
log:
  access_log: off
policy:
  mode: enforce
  default_access: allow
  discovery_period: 0s
state:
%s`, addr, casURL, state)), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "--config", cfg)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := netDial(addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the node does not listen")
		}
		time.Sleep(50 * time.Millisecond)
	}
	rep, err := bench.Run(bench.RunConfig{Target: "http://" + addr, Devices: 50, Duration: 8 * time.Second, Ramp: time.Second,
		Scenario: bench.ScenarioSmall, TimeScale: timeScale, Password: "pw"})
	if err != nil {
		b.Fatal(err)
	}
	if rep.Errors != 0 {
		b.Fatalf("%d errors", rep.Errors)
	}
	s := rep.Commands["Sync"]
	return s.P50, s.P99
}

func freeAddrB(b *testing.B) string {
	b.Helper()
	c, err := netListen()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	return c.Addr().String()
}
