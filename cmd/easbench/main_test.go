package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/bench"
)

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage: easbench") {
		t.Errorf("no args: code %d, stderr %q", code, errb.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 {
		t.Errorf("unknown command: code %d", code)
	}
	if code := run([]string{"run"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--target is required") {
		t.Errorf("run without target: code %d, %q", code, errb.String())
	}
	if code := run([]string{"run", "--target", "http://127.0.0.1:1", "--mix", "nokia=1"}, &out, &errb); code != 2 {
		t.Errorf("bad mix: code %d", code)
	}
}

// TestRunCommand runs `easbench run` for about a second against an
// in-process fake CAS and checks the JSON and HTML it writes.
func TestRunCommand(t *testing.T) {
	cas := bench.NewFakeCAS(bench.FakeCASConfig{Messages: 10, MessageSize: 300, AttachmentSize: 5000,
		PingChangeEvery: 60 * time.Second, TimeScale: 300})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = cas.Serve(ln) }()
	defer cas.Close()
	dir := t.TempDir()
	jsonPath, htmlPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	var out, errb bytes.Buffer
	code := run([]string{"run", "--target", "http://" + ln.Addr().String(), "--devices", "5", "--duration", "1s",
		"--time-scale", "300", "--heartbeat", "120s", "--send-mail-rate", "1", "--attachment-rate", "1",
		"--verify-content", "--fail-on-error", "--pid", itoa(os.Getpid()), "--json", jsonPath, "--html", htmlPath}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "Ping (hold)") || !strings.Contains(out.String(), "gateway pid") {
		t.Errorf("terminal report:\n%s", out.String())
	}
	var rep map[string]any
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	cmds, _ := rep["commands"].(map[string]any)
	sync, _ := cmds["Sync"].(map[string]any)
	for _, k := range []string{"p50", "p90", "p99", "p999", "errors", "throughput", "count"} {
		if _, ok := sync[k]; !ok {
			t.Errorf("JSON commands.Sync lacks %q: %v", k, sync)
		}
	}
	h, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<svg id="latency-over-time"`, `<svg id="latency-histogram"`, "<polyline", "<rect class=\"bar\""} {
		if !bytes.Contains(h, []byte(want)) {
			t.Errorf("HTML lacks %s", want)
		}
	}
	if bytes.Contains(h, []byte("<script")) || bytes.Contains(h, []byte("http://cdn")) {
		t.Errorf("HTML must be self-contained")
	}
}

func TestCompareSkipsMissingLegs(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"compare", "--devices", "2", "--duration", "500ms", "--time-scale", "300",
		"--heartbeat", "120s", "--nginx", "/nonexistent/nginx", "--messages", "5"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	s := out.String()
	if !strings.Contains(s, "direct") || !strings.Contains(s, "skipped easgate") || !strings.Contains(s, "skipped nginx") {
		t.Errorf("compare output:\n%s", s)
	}
}

func TestLegPath(t *testing.T) {
	for in, want := range map[string]string{"r.json": "r-nginx.json", "/a.b/r": "/a.b/r-nginx", "x/r.html": "x/r-nginx.html"} {
		if got := legPath(in, "nginx"); got != want {
			t.Errorf("legPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/easgate/easgate/proxy", "github.com/easgate/easgate/policy", "github.com/easgate/easgate/certs"} {
			if p == bad || strings.HasPrefix(p, bad+"/") {
				t.Errorf("easbench imports %s: it must reach easgate over HTTP only", p)
			}
		}
	}
}
