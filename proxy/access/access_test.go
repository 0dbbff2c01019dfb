package access

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/policy/sources"
	"github.com/easgate/easgate/proxy/config"
)

func writeConfig(t *testing.T, dir, policyYAML string) *config.Config {
	t.Helper()
	path := filepath.Join(dir, "easgate.yaml")
	text := "listen:\n  address: \"127.0.0.1:0\"\n  plain_http: true\nupstreams:\n  servers:\n    - url: http://127.0.0.1:9\n" +
		"state:\n  path: " + filepath.Join(dir, "state.db") + "\n" + policyYAML
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func subj(user, dev, ua string) *policy.Subject {
	info := &eas.DeviceInfo{Model: "iPhone15C2", OS: "iOS 17.5.1 21F90"}
	s := &policy.Subject{User: []byte(user), DeviceID: []byte(dev), DeviceType: []byte("iPhone"), UserAgent: []byte(ua), Info: info}
	s.Client = eas.Identify(s.UserAgent, s.DeviceType, info)
	return s
}

func TestBuildFromConfigAndReload(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "c.csv")
	os.WriteFile(csv, []byte("alice@corp.example.com,ApplDMPL69PZF18P,compliant\n"), 0o600)
	pol := `policy:
  default_access: block
  rules:
    - name: tb
      match: {user_agent: "Thunderbird*"}
      access: quarantine
      mode: report
  compliance:
    require_for: [all]
    source: {type: file, path: ` + csv + `}
    cache: {on_unavailable: block}
`
	cfg := writeConfig(t, dir, pol)
	a, err := Build(cfg, zerolog.Nop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	a.Run()
	ctx := context.Background()
	d := a.Engine.Decide(ctx, subj("alice@corp.example.com", "ApplDMPL69PZF18P", "iOS/17.5.1 (21F90) dataaccessd/1.0"))
	if d.Action != policy.Allow || !d.HasReason(policy.ReasonCompliant) {
		t.Fatalf("compliant device: %s %v", d.Action, d.Reasons())
	}
	d = a.Engine.Decide(ctx, subj("bob@corp.example.com", "X1", "Thunderbird ActiveSync"))
	if d.Action != policy.Quarantine || d.ReportedRule != "tb" {
		t.Fatalf("unknown device: %s %v reported %q", d.Action, d.Reasons(), d.ReportedRule)
	}
	a.Devices.Touch([]byte("alice@corp.example.com"), []byte("ApplDMPL69PZF18P"), []byte("iPhone"), nil, time.Now())

	// A reload with the same source keeps the cache (no second lookup) and
	// the device table; a new rule applies at once.
	cfg2 := writeConfig(t, dir, strings.Replace(pol, "mode: report", "mode: enforce", 1))
	b, err := Build(cfg2, zerolog.Nop(), Options{Prev: a})
	if err != nil {
		t.Fatal(err)
	}
	if b.Cache != a.Cache && a.Cache != nil {
		t.Fatal("cache not handed over")
	}
	if b.Devices != a.Devices {
		t.Fatal("device table not kept across the reload")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b.Run()
	d = b.Engine.Decide(ctx, subj("bob@corp.example.com", "X1", "Thunderbird ActiveSync"))
	if d.Rule != "tb" || d.Action != policy.Quarantine {
		t.Fatalf("after reload: %s rule %q", d.Action, d.Rule)
	}
	if st := b.Cache.Stats(); st.Entries == 0 {
		t.Fatal("handed-over cache lost its entries")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Read-only, as explain beside a running gateway: the device recorded
	// above is in the store.
	ro, err := Build(cfg2, zerolog.Nop(), Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rec, ok, err := policy.LoadDevice(ro.Store, "alice@corp.example.com", "ApplDMPL69PZF18P")
	if err != nil || !ok || rec.DeviceType != "iPhone" {
		t.Fatalf("device not persisted: %+v %v %v", rec, ok, err)
	}
}

func TestPolicyConfigErrors(t *testing.T) {
	p := &config.Policy{Mode: "sometimes", DefaultAccess: "maybe", Rules: []config.Rule{{Name: "r", Access: "perhaps", Match: config.Match{DeviceType: config.Patterns{"x"}}}},
		Compliance: config.Compliance{RequireFor: []string{"all"}}}
	_, err := PolicyConfig(p)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{`unknown mode "sometimes"`, `unknown access "maybe"`, `unknown access "perhaps"`, "needs policy.compliance.source"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

// TestFileChangeReachesCachedVerdicts: editing the compliance file changes
// the decision at once (within the file watch interval), not after the
// cached verdict's TTL.
func TestFileChangeReachesCachedVerdicts(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "c.csv")
	os.WriteFile(csv, []byte("bob@corp.example.com,D1,noncompliant\n"), 0o600)
	cfg := writeConfig(t, dir, `policy:
  default_access: block
  compliance:
    require_for: [all]
    source: {type: file, path: `+csv+`}
    cache: {ttl: 1h, negative_ttl: 1h}
`)
	a, err := Build(cfg, zerolog.Nop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	s := subj("bob@corp.example.com", "D1", "iOS/17.5.1 (21F90) dataaccessd/1.0")
	if d := a.Engine.Decide(context.Background(), s); d.Action != policy.Quarantine {
		t.Fatalf("before: %s", d.Action)
	}
	os.WriteFile(csv, []byte("bob@corp.example.com,D1,compliant\n"), 0o600)
	deadline := time.Now().Add(10 * time.Second)
	for a.Engine.Decide(context.Background(), s).Action != policy.Allow {
		if time.Now().After(deadline) {
			t.Fatal("the edited file did not change the cached verdict")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fakeGuardMetrics records GuardMetrics calls.
type fakeGuardMetrics struct {
	mu    sync.Mutex
	held  map[string]bool
	holds []string // "source/reason"
}

func (m *fakeGuardMetrics) HeldBack(source, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.held[source] = true
	m.holds = append(m.holds, source+"/"+reason)
}

func (m *fakeGuardMetrics) HoldEnded(source string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.held[source] = false
}

func (m *fakeGuardMetrics) state() (bool, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held["file"], append([]string(nil), m.holds...)
}

// syncBuffer is a log sink safe for the watch goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTruncatedFileIsHeldBack: a compliance file emptied by a non-atomic
// write leaves every decision as it was (the cache is not purged), logs one
// error line with the counts, sets the metric, and is applied once the
// admin accepts it with the marker `easgate compliance accept` writes.
func TestTruncatedFileIsHeldBack(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "c.csv")
	var rows strings.Builder
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&rows, "bob@corp.example.com,D%d,compliant\n", i)
	}
	os.WriteFile(csv, []byte(rows.String()), 0o600)
	cfg := writeConfig(t, dir, `policy:
  default_access: block
  compliance:
    require_for: [all]
    source: {type: file, path: `+csv+`, max_drop: 50%}
    cache: {ttl: 1h, negative_ttl: 1h}
`)
	logs := &syncBuffer{}
	gm := &fakeGuardMetrics{held: map[string]bool{}}
	a, err := Build(cfg, zerolog.New(logs), Options{GuardMetrics: gm})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	d3 := subj("bob@corp.example.com", "D3", "iOS/17.5.1 (21F90) dataaccessd/1.0")
	if d := a.Engine.Decide(ctx, d3); d.Action != policy.Allow {
		t.Fatalf("before: %s", d.Action)
	}
	os.WriteFile(csv, []byte("bob@corp.example.com,D0,compliant\n"), 0o600) // 75% fewer entries
	waitUntil(t, "the hold", func() bool { h, _ := gm.state(); return h })
	// Several watch rounds later nothing has changed and nothing was
	// reported twice.
	time.Sleep(4500 * time.Millisecond)
	if d := a.Engine.Decide(ctx, d3); d.Action != policy.Allow {
		t.Fatalf("a held-back reload changed the decision: %s", d.Action)
	}
	if _, holds := gm.state(); len(holds) != 1 || holds[0] != "file/drop" {
		t.Fatalf("holds %q, want one file/drop", holds)
	}
	var line map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "held back") {
			if line != nil {
				t.Fatalf("the hold was logged twice:\n%s", logs.String())
			}
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line == nil || line["level"] != "error" || line["old_entries"] != 4.0 || line["new_entries"] != 1.0 ||
		line["drop_percent"] != 75.0 || line["reason"] != "drop" || line["accept_marker"] != csv+".accept" {
		t.Fatalf("held-back log line %v", line)
	}

	// The admin confirms: the reduced file applies, D3 is no longer known.
	sum, err := sources.InspectFile(csv)
	if err != nil {
		t.Fatal(err)
	}
	if err := sources.WriteAccept(csv+".accept", sum.SHA256); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the accepted file to apply", func() bool { return a.Engine.Decide(ctx, d3).Action != policy.Allow })
	if h, _ := gm.state(); h {
		t.Error("the held-back gauge is still set after the accept")
	}
	if !strings.Contains(logs.String(), "compliance reload accepted by an administrator") {
		t.Errorf("no log line for the accept:\n%s", logs.String())
	}
	st, err := sources.ReadStatus(csv + ".status")
	if err != nil || st.HeldBack != nil || st.Entries != 1 {
		t.Errorf("status %+v %v", st, err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEmptyFileAtStartFails: with no table to keep, an empty compliance
// file stops Build with an error that names the file and the way out.
func TestEmptyFileAtStartFails(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "c.csv")
	os.WriteFile(csv, nil, 0o600)
	cfg := writeConfig(t, dir, `policy:
  compliance:
    require_for: [all]
    source: {type: file, path: `+csv+`}
`)
	a, err := Build(cfg, zerolog.Nop(), Options{})
	if a != nil || err == nil || !strings.Contains(err.Error(), csv) || !strings.Contains(err.Error(), "refusing to start") ||
		!strings.Contains(err.Error(), "easgate compliance accept") {
		t.Fatalf("Build on an empty file: %v", err)
	}
}

// TestRebuiltSourceKeepsTheGuard: a config reload that changes the
// compliance settings builds a new file source; it does not apply content
// the running source holds back, and the running Access keeps working.
func TestRebuiltSourceKeepsTheGuard(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "c.csv")
	os.WriteFile(csv, []byte("bob@corp.example.com,D0,compliant\nbob@corp.example.com,D1,compliant\nbob@corp.example.com,D2,compliant\n"), 0o600)
	yaml := func(ttl string) string {
		return `policy:
  default_access: block
  compliance:
    require_for: [all]
    source: {type: file, path: ` + csv + `}
    cache: {ttl: ` + ttl + `}
`
	}
	a, err := Build(writeConfig(t, dir, yaml("1h")), zerolog.Nop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	os.WriteFile(csv, []byte("bob@corp.example.com,D0,compliant\n"), 0o600)
	b, err := Build(writeConfig(t, dir, yaml("2h")), zerolog.Nop(), Options{Prev: a})
	if b != nil || err == nil || !strings.Contains(err.Error(), "(3 entries) stays") {
		t.Fatalf("rebuilt source on a shrunken file: %v", err)
	}
	if d := a.Engine.Decide(context.Background(), subj("bob@corp.example.com", "D2", "iOS/17.5.1 (21F90) dataaccessd/1.0")); d.Action != policy.Allow {
		t.Fatalf("the running Access changed: %s", d.Action)
	}
}
