package proxy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestAccessLogReopen: after logrotate renames the access log, SIGHUP (even
// when the reload it asks for is rejected) and ReopenLogs (SIGUSR1) send
// the next lines to a new file of the configured name; the lines before
// stay in the renamed one.
func TestAccessLogReopen(t *testing.T) {
	cas := newFakeCAS(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	cfgText := testYAML([]string{cas.url()}, map[string]string{"access_log": logPath})
	p, logs := startProxyLogged(t, mustParse(t, cfgText))
	// The file on disk does not load: SIGHUP's reload is rejected, the
	// reopen must happen anyway.
	cfgPath := tempFile(t, "easgate.yaml", cfgText+"bogus: 1\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	go p.s.watchConfig(ctx, cfgPath, hup, time.Hour)

	request := func(device string) {
		t.Helper()
		resp, err := p.do(t, "FolderSync", device, nil, nil)
		if err != nil || resp.StatusCode() != 200 {
			t.Fatalf("FolderSync: %v", err)
		}
		fasthttp.ReleaseResponse(resp)
	}
	contains := func(path, device string) bool {
		data, _ := os.ReadFile(path)
		return strings.Contains(string(data), `"device_id":"`+device+`"`)
	}

	request("before1")
	waitFor(t, "the first line written", func() bool { return contains(logPath, "before1") })
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	hup <- syscall.SIGHUP
	waitFor(t, "the rejected reload", func() bool { return strings.Contains(logs.String(), "configuration reload rejected") })
	request("after1")
	waitFor(t, "the line after SIGHUP in the new file", func() bool { return contains(logPath, "after1") })
	if contains(logPath+".1", "after1") || !contains(logPath+".1", "before1") || contains(logPath, "before1") {
		t.Fatal("after SIGHUP the lines are in the wrong files")
	}

	if err := os.Rename(logPath, logPath+".2"); err != nil {
		t.Fatal(err)
	}
	p.s.ReopenLogs()
	request("after2")
	waitFor(t, "the line after ReopenLogs in the new file", func() bool { return contains(logPath, "after2") })
	if contains(logPath+".2", "after2") || !contains(logPath+".2", "after1") {
		t.Fatal("after ReopenLogs the lines are in the wrong files")
	}
}
