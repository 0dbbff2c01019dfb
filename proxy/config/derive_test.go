package config

import (
	"strings"
	"testing"
	"time"
)

// TestDefaultsFollowWrittenValues: a default that depends on another key
// is derived from what the file wrote; an error appears only when both
// keys were written, and a message about a default says it is one.
func TestDefaultsFollowWrittenValues(t *testing.T) {
	hc := func(lines string) string {
		return minimal + "  health_check:\n" + lines
	}
	cache := func(lines string) string {
		return minimal + "policy:\n  compliance:\n    cache:\n" + lines
	}
	tests := []struct {
		desc        string
		yaml        string
		interval    time.Duration
		timeout     time.Duration
		ttl         time.Duration
		refresh     time.Duration
		wantErr     string // substring of the only error; "" for none
		wantWarning string // substring of a warning; "" for none
	}{
		{desc: "defaults", yaml: minimal, interval: 10 * time.Second, timeout: 5 * time.Second,
			ttl: 15 * time.Minute, refresh: time.Minute},
		{desc: "interval 1s: timeout half of it", yaml: hc("    interval: 1s\n"),
			interval: time.Second, timeout: 500 * time.Millisecond, ttl: 15 * time.Minute, refresh: time.Minute},
		{desc: "interval 1m: timeout stays 5s", yaml: hc("    interval: 1m\n"),
			interval: time.Minute, timeout: 5 * time.Second, ttl: 15 * time.Minute, refresh: time.Minute},
		{desc: "timeout 20s alone: interval grows, with a warning", yaml: hc("    timeout: 20s\n"),
			interval: 40 * time.Second, timeout: 20 * time.Second, ttl: 15 * time.Minute, refresh: time.Minute,
			wantWarning: "upstreams.health_check.timeout: interval not set: probing every 40s"},
		{desc: "both written, inconsistent", yaml: hc("    interval: 1s\n    timeout: 5s\n"),
			wantErr: "upstreams.health_check.timeout: timeout 5s is longer than interval 1s (hint"},
		{desc: "ttl 2s: refresh_before a quarter", yaml: cache("      ttl: 2s\n"),
			interval: 10 * time.Second, timeout: 5 * time.Second, ttl: 2 * time.Second, refresh: 500 * time.Millisecond},
		{desc: "ttl 1h: refresh_before stays 1m", yaml: cache("      ttl: 1h\n"),
			interval: 10 * time.Second, timeout: 5 * time.Second, ttl: time.Hour, refresh: time.Minute},
		{desc: "refresh_before 20m alone: ttl grows, with a warning", yaml: cache("      refresh_before: 20m\n"),
			interval: 10 * time.Second, timeout: 5 * time.Second, ttl: 80 * time.Minute, refresh: 20 * time.Minute,
			wantWarning: "ttl not set: keeping verdicts 1h20m0s"},
		{desc: "both written, inconsistent", yaml: cache("      ttl: 2s\n      refresh_before: 1m\n"),
			wantErr: "policy.compliance.cache.refresh_before: refresh_before 1m0s is not shorter than ttl 2s (hint"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			cfg, err := Parse("t.yaml", []byte(tc.yaml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || len(err.(Errors)) != 1 {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h, c := cfg.Upstreams.HealthCheck, cfg.Policy.Compliance.Cache
			if h.Interval.D() != tc.interval || h.Timeout.D() != tc.timeout || c.TTL.D() != tc.ttl || c.RefreshBefore.D() != tc.refresh {
				t.Errorf("interval %s timeout %s ttl %s refresh_before %s; want %s %s %s %s",
					h.Interval, h.Timeout, c.TTL, c.RefreshBefore, tc.interval, tc.timeout, tc.ttl, tc.refresh)
			}
			w := cfg.Warnings().Error()
			if len(cfg.Warnings()) == 0 {
				w = ""
			}
			if (tc.wantWarning == "") != (w == "") || !strings.Contains(w, tc.wantWarning) {
				t.Errorf("warnings %q, want %q", w, tc.wantWarning)
			}
		})
	}
}

// TestOriginNamesTheDefault: a message about two values says which one is
// a default.
func TestOriginNamesTheDefault(t *testing.T) {
	c := &checker{pos: map[string]keyPos{"a.b": {}}}
	if got := c.origin("a.b"); got != "" {
		t.Errorf("written key: origin %q, want empty", got)
	}
	if got := c.origin("a.c"); got != " (the default; set a.c to change it)" {
		t.Errorf("unwritten key: origin %q", got)
	}
}

// TestExpectStatus: one number or a list; codes must be HTTP statuses.
func TestExpectStatus(t *testing.T) {
	for _, tc := range []struct {
		lines   string
		want    []int
		wantErr string
	}{
		{"", []int{200}, ""},
		{"    expect_status: [200, 401]\n", []int{200, 401}, ""},
		{"    expect_status: 401\n", []int{401}, ""},
		{"    expect_status: [200, 99]\n", nil, "upstreams.health_check.expect_status[1]: invalid status code 99"},
		{"    expect_status: []\n", nil, "upstreams.health_check.expect_status: must list at least one status code"},
	} {
		cfg, err := Parse("t.yaml", []byte(minimal+"  health_check:\n    path: /hc\n"+tc.lines))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.lines, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.lines, err)
			continue
		}
		if got := cfg.Upstreams.HealthCheck.ExpectStatus; len(got) != len(tc.want) || got[0] != tc.want[0] || got[len(got)-1] != tc.want[len(tc.want)-1] {
			t.Errorf("%q: expect_status %v, want %v", tc.lines, got, tc.want)
		}
	}
}
