package config

import (
	"strings"
	"testing"
	"time"
)

// TestSlowClientDefaults: the listen timeouts default to nginx's values
// and the per-address limit is on.
func TestSlowClientDefaults(t *testing.T) {
	cfg, err := Parse("d.yaml", []byte("listen:\n  plain_http: true\nupstreams:\n  servers:\n    - url: http://127.0.0.1:8081\n"))
	if err != nil {
		t.Fatal(err)
	}
	to := cfg.Listen.Timeouts
	if to.Header.D() != 60*time.Second || to.Body.D() != 60*time.Second || to.Idle.D() != 75*time.Second ||
		to.BodyMinRate != 500 || cfg.Listen.MaxUnauthenticatedPerAddress != 128 {
		t.Errorf("defaults: %+v, max_unauthenticated_per_address %d", to, cfg.Listen.MaxUnauthenticatedPerAddress)
	}
	for _, w := range cfg.Warnings() {
		if strings.Contains(w.Path, "max_unauthenticated") {
			t.Errorf("the default limit warns under plain_http: %v", w)
		}
	}
}

// TestSlowClientWarnings: a per-address limit written next to plain_http
// has no effect, and a high minimum body rate cuts slow phones; both warn.
func TestSlowClientWarnings(t *testing.T) {
	src := `listen:
  plain_http: true
  timeouts:
    header: 10s
    body: 30s
    body_min_rate: 1MiB
    idle: 2m
  max_unauthenticated_per_address: 64
upstreams:
  servers:
    - url: http://127.0.0.1:8081
`
	cfg, err := Parse("w.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"w.yaml:2:15: listen.plain_http: serving plain HTTP: passwords cross the network unencrypted (hint: run easgate like this only behind a load balancer that terminates TLS)",
		"w.yaml:6:20: listen.timeouts.body_min_rate: a minimum body rate of 1MiB per second cuts slow but live uploads (hint: phones on a weak mobile link upload at a few KiB/s; 500 is a safe value)",
		"w.yaml:8:36: listen.max_unauthenticated_per_address: not applied with plain_http: every connection comes from the load balancer's address (hint: remove it, or set it to 0; limit connections per client address at the load balancer)",
	}
	var got []string
	for _, w := range cfg.Warnings() {
		got = append(got, w.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings\n got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	if cfg.Listen.Timeouts.Idle.D() != 2*time.Minute || cfg.Listen.MaxUnauthenticatedPerAddress != 64 {
		t.Errorf("decoded %+v", cfg.Listen)
	}
}
