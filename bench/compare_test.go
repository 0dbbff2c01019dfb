package bench

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func compareRun() RunConfig {
	return RunConfig{Devices: 3, Duration: 700 * time.Millisecond, Heartbeat: 120 * time.Second, TimeScale: 300,
		SendMailRate: 1, AttachmentRate: 1, SendAttachmentSize: 2000}
}

// TestCompareLegs runs the direct leg and an "easgate" leg through a small
// fasthttp reverse proxy standing in for a running gateway; a gateway
// binary that exits at once is reported as skipped.
func TestCompareLegs(t *testing.T) {
	casAddr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hc := &fasthttp.HostClient{Addr: casAddr, MaxConns: 1000}
	proxy := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.SetStatusCode(fasthttp.StatusBadGateway)
		}
	}}
	go func() { _ = proxy.Serve(ln) }()
	defer proxy.Shutdown()

	var logb bytes.Buffer
	res, err := Compare(CompareConfig{
		Run: compareRun(), CAS: FakeCASConfig{Messages: 6, AttachmentSize: 3000, TimeScale: 300, PingChangeEvery: time.Minute},
		CASListen: casAddr, EasgateURL: "http://" + ln.Addr().String(), NginxBin: "-", Log: &logb,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Legs) != 2 || res.Legs[0].Name != "direct" || res.Legs[1].Name != "easgate" {
		t.Fatalf("legs %+v skipped %v", res.Legs, res.Skipped)
	}
	for _, l := range res.Legs {
		if l.Report.Errors != 0 || l.Report.Requests == 0 {
			t.Errorf("leg %s: %d requests, errors %v %v", l.Name, l.Report.Requests, l.Report.ErrorKinds, l.Report.ErrorExamples)
		}
	}
	var out bytes.Buffer
	if err := res.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "easgate") || !strings.Contains(out.String(), "skipped nginx: disabled") {
		t.Errorf("compare table:\n%s", out.String())
	}

	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	res, err = Compare(CompareConfig{Run: compareRun(), CAS: FakeCASConfig{TimeScale: 300},
		EasgateBin: sh, EasgateArgs: []string{"-c", "echo cannot read {config}; exit 3"}, NginxBin: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if why := res.Skipped["easgate"]; !strings.Contains(why, "easgate exited") || !strings.Contains(why, "cannot read") {
		t.Errorf("easgate skip reason %q", why)
	}
}

// TestCompareNginx runs the nginx leg when nginx is installed.
func TestCompareNginx(t *testing.T) {
	if _, err := findNginx(""); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %v", err)
		}
		t.Skip(err)
	}
	res, err := Compare(CompareConfig{Run: compareRun(), CAS: FakeCASConfig{Messages: 6, TimeScale: 300, PingChangeEvery: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	var nginx *Report
	for _, l := range res.Legs {
		if l.Name == "nginx" {
			nginx = l.Report
		}
	}
	if nginx == nil {
		t.Fatalf("nginx leg skipped: %v", res.Skipped["nginx"])
	}
	if nginx.Errors != 0 || nginx.Gateway == nil || nginx.Gateway.RSSMaxKiB == 0 {
		t.Errorf("nginx leg: errors %v, gateway %+v", nginx.ErrorKinds, nginx.Gateway)
	}
}

func TestNginxConfig(t *testing.T) {
	c := NginxConfig("/tmp/x", "127.0.0.1:9", "127.0.0.1:8")
	for _, want := range []string{"listen 127.0.0.1:9;", "server 127.0.0.1:8;", "keepalive 1024", "proxy_read_timeout 3660s",
		"proxy_buffering off", "proxy_request_buffering off", `proxy_set_header Connection ""`, "proxy_http_version 1.1", "daemon off"} {
		if !strings.Contains(c, want) {
			t.Errorf("nginx config lacks %q", want)
		}
	}
}
