package bench

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the processes that Compare starts, so the
// subprocess tests need no separate build:
const (
	// testCASChildEnv=1: serve $EASBENCH_CAS_SPEC like `easbench upstream`.
	testCASChildEnv = "EASBENCH_TEST_CAS_CHILD"
	// testCASPIDFileEnv: such a child writes its PID to this file once it listens.
	testCASPIDFileEnv = "EASBENCH_TEST_CAS_PIDFILE"
	// testCompareParentEnv=1: run a 30 s Compare with a fake CAS child (to be
	// killed by the test).
	testCompareParentEnv = "EASBENCH_TEST_COMPARE_PARENT"
)

func TestMain(m *testing.M) {
	switch {
	case len(os.Args) > 1 && os.Args[1] == "bare-proxy": // CompareConfig.BareCommand
		os.Exit(bareChildMain(os.Args[2:]))
	case os.Getenv(testCASChildEnv) == "1":
		os.Exit(casChildMain())
	case os.Getenv(testCompareParentEnv) == "1":
		os.Exit(compareParentMain())
	}
	os.Exit(m.Run())
}

// casChildMain is `easbench upstream` under $EASBENCH_CAS_SPEC.
func casChildMain() int {
	spec, err := CASSpecFromEnv()
	if err != nil || spec == nil {
		fmt.Fprintln(os.Stderr, "test CAS child: no usable spec:", err)
		return 2
	}
	ln, err := net.Listen("tcp", spec.Listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cas := NewFakeCAS(spec.CAS)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-sig
		_ = cas.Close()
	}()
	if path := os.Getenv(testCASPIDFileEnv); path != "" { // once it listens
		if err := writePIDFile(path, os.Getpid()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Fprintf(os.Stderr, "easbench: test fake CAS on %s\n", ln.Addr())
	if err := cas.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// bareChildMain is `easbench bare-proxy --listen ADDR --upstream HOST:PORT`.
func bareChildMain(args []string) int {
	fs := flag.NewFlagSet("bare-proxy", flag.ContinueOnError)
	listen := fs.String("listen", "", "")
	upstream := fs.String("upstream", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p := NewBareProxy(*upstream)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-sig
		_ = p.Close()
	}()
	if err := p.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// compareParentMain runs a Compare that lasts 30 s unless killed.
func compareParentMain() int {
	os.Setenv(testCASChildEnv, "1") // for the child only: this process already chose its role
	_, err := Compare(CompareConfig{
		Run:        RunConfig{Devices: 1, Duration: 30 * time.Second, Scenario: ScenarioSmall, TimeScale: 300, Heartbeat: 120 * time.Second},
		CAS:        FakeCASConfig{Messages: 3, TimeScale: 300},
		CASCommand: []string{os.Args[0]},
		NginxBin:   "-",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func writePIDFile(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// waitPIDFile waits (at most 20 s) for a child to write its PID.
func waitPIDFile(t *testing.T, path string) int {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			t.Fatalf("pid file %s: %q", path, b)
		}
		t.Cleanup(func() { // never leave it behind, even when the test fails
			if !processGone(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		})
		return pid
	}
	t.Fatalf("no pid file %s after 20 s", filepath.Base(path))
	return 0
}

// processGone reports whether pid no longer runs: it does not exist, or it
// is a zombie waiting for init to reap it.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}
