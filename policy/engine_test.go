package policy

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
)

// fakeSource answers from a map keyed by device id; it can fail or stall.
type fakeSource struct {
	states map[string]State
	fail   atomic.Bool
	stall  chan struct{} // when non-nil, Lookup waits on it
	calls  atomic.Int64
}

func (f *fakeSource) Name() string { return "fake" }

func (f *fakeSource) Lookup(ctx context.Context, q Query) (Verdict, error) {
	f.calls.Add(1)
	if f.stall != nil {
		select {
		case <-f.stall:
		case <-ctx.Done():
			return Verdict{}, ctx.Err()
		}
	}
	if f.fail.Load() {
		return Verdict{}, errors.New("source down")
	}
	st, ok := f.states[q.DeviceID]
	if !ok {
		return Verdict{State: StateUnknown}, nil
	}
	return Verdict{State: st}, nil
}

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func subject(user, dev, devType, ua, model, osName string) *Subject {
	info := &eas.DeviceInfo{Model: model, OS: osName}
	s := &Subject{
		User: []byte(user), DeviceID: []byte(dev), DeviceType: []byte(devType), UserAgent: []byte(ua),
		Info: info, FirstSeen: t0.Add(-time.Hour), Now: t0, Auth: AuthBasic,
	}
	s.Client = eas.Identify(s.UserAgent, s.DeviceType, info)
	return s
}

const (
	uaOldIOS  = "Apple-iPhone4C1/1002.329" // iOS 6.1.3
	uaNewIOS  = "iOS/17.5.1 (21F90) dataaccessd/1.0"
	uaOutlook = "Outlook-iOS-Android/1.0"
	uaTbSync  = "Thunderbird ActiveSync"
	uaGmail   = "Android-Mail/2020.11.29.346182102.Release"
	uaSamsung = "SAMSUNG-SM-N900V/101.403"
)

// testDomains is auth.domains for the engine tests: corp.example.com (the
// default, NetBIOS name CORP) and other.example.com.
func testDomains() *eas.Domains {
	d, err := eas.NewDomains([]string{"corp.example.com", "other.example.com"}, nil)
	if err != nil {
		panic(err)
	}
	return d
}

func baseConfig() Config {
	return Config{
		Domains:         testDomains(),
		Mode:            Enforce,
		DefaultAccess:   Quarantine,
		DiscoveryPeriod: 14 * time.Minute,
		Groups:          map[string][]string{"executives": {"ceo@corp.example.com", "cfo@corp.example.com"}},
		Users: map[string]UserLists{
			"alice@corp.example.com": {AllowedDevices: []string{"ApplDMPL69PZF18P"}, BlockedDevices: []string{"androidc195792594"}},
		},
		Rules: []Rule{
			{Name: "block-old-ios", Match: Match{OSFamily: "iOS", OSVersionBelow: "16.0"}, Access: Block},
			{Name: "outlook-mobile", Match: Match{Client: []string{"outlook-mobile"}}, Access: Allow},
			{Name: "tbsync-trial", Match: Match{UserAgent: []string{"Thunderbird ActiveSync*"}}, Access: Block, Mode: Report},
			{Name: "samsung-quarantine", Match: Match{DeviceType: []string{"SAMSUNG*"}}, Access: Quarantine},
			{Name: "windows-allow", Match: Match{DeviceType: []string{"WindowsMail"}}, Access: Allow},
		},
	}
}

func TestDecideOrder(t *testing.T) {
	withCompliance := func(c Config) Config {
		c.Compliance = ComplianceConfig{RequireFor: []string{"all"}, Exclude: []string{"executives", "bob@corp.example.com"}, OnUnavailable: Quarantine}
		return c
	}
	reportPolicy := func(c Config) Config { c.Mode = Report; return c }
	defAllow := func(c Config) Config { c.DefaultAccess = Allow; return c }
	defBlock := func(c Config) Config { c.DefaultAccess = Block; return c }
	noRules := func(c Config) Config { c.Rules = nil; return c }
	src := &fakeSource{states: map[string]State{
		"COMPLIANT1": StateCompliant, "NONCOMP1": StateNoncompliant, "GRACE1": StateGrace,
		"ApplC39GQ8NNDTDL": StateCompliant, "androidc195792594": StateCompliant,
	}}

	tests := []struct {
		name    string
		cfg     func(Config) Config
		s       *Subject
		action  Action
		rule    string
		reason  Reason
		report  string // reported rule
		enforce bool
	}{
		// 1. per-user blocked list beats everything.
		{"individual block", nil, subject("alice@corp.example.com", "androidc195792594", "Android", uaGmail, "SM-M215F", "Android 10"), Block, "", ReasonIndividualBlock, "", true},
		{"individual block via NetBIOS name", nil, subject(`CORP\alice`, "androidc195792594", "Android", uaGmail, "SM-M215F", "Android 10"), Block, "", ReasonIndividualBlock, "", true},
		{"individual block via bare name", nil, subject("Alice", "androidc195792594", "Android", uaGmail, "", ""), Block, "", ReasonIndividualBlock, "", true},
		{"individual block beats compliant verdict", withCompliance, subject("alice@corp.example.com", "androidc195792594", "Android", uaGmail, "SM-M215F", "Android 10"), Block, "", ReasonIndividualBlock, "", true},
		{"individual block beats allow rule", nil, subject("alice@corp.example.com", "androidc195792594", "Outlook", uaOutlook, "Outlook for iOS and Android", ""), Block, "", ReasonIndividualBlock, "", true},
		{"individual block, other domain user not matched", nil, subject("alice@other.example.com", "androidc195792594", "Android", uaGmail, "SM-M215F", "Android 10"), Quarantine, "", ReasonDefault, "", true},
		// 2. per-user allowed list.
		{"individual allow", nil, subject("alice@corp.example.com", "ApplDMPL69PZF18P", "iPad", uaNewIOS, "iPad3C6", "iOS 17.5.1 21F90"), Allow, "", ReasonIndividualAllow, "", true},
		{"individual allow beats block rule", nil, subject("alice@corp.example.com", "ApplDMPL69PZF18P", "iPhone", uaOldIOS, "iPhone4C1", ""), Allow, "", ReasonIndividualAllow, "", true},
		{"individual allow beats compliance", withCompliance, subject("alice@corp.example.com", "ApplDMPL69PZF18P", "iPad", uaNewIOS, "iPad3C6", ""), Allow, "", ReasonIndividualAllow, "", true},
		{"individual allow ignores device id case", nil, subject("alice@corp.example.com", "appldmpl69pzf18p", "iPad", uaNewIOS, "iPad3C6", "iOS 17.5.1 21F90"), Allow, "", ReasonIndividualAllow, "", true},
		{"individual block ignores device id case", nil, subject("ALICE@CORP.EXAMPLE.COM", "AndroidC195792594", "Android", uaGmail, "SM-M215F", "Android 10"), Block, "", ReasonIndividualBlock, "", true},
		{"user of a domain not in auth.domains", nil, subject("alice@evil.example.com", "ApplDMPL69PZF18P", "iPad", uaNewIOS, "iPad3C6", "iOS 17.5.1 21F90"), Block, "", ReasonUnknownUser, "", true},
		{"NetBIOS name of no listed domain", nil, subject(`EVIL\alice`, "ApplDMPL69PZF18P", "iPad", uaNewIOS, "iPad3C6", "iOS 17.5.1 21F90"), Block, "", ReasonUnknownUser, "", true},
		{"allow list of alice does not apply to bob", nil, subject("bob@corp.example.com", "ApplDMPL69PZF18P", "iPad", uaNewIOS, "iPad3C6", "iOS 17.5.1 21F90"), Quarantine, "", ReasonDefault, "", true},
		// 3. discovery.
		{"discovery: no info, first seen now", nil, func() *Subject {
			s := subject("bob@corp.example.com", "DEV1", "Android", uaGmail, "", "")
			s.Info, s.FirstSeen = nil, t0.Add(-time.Minute)
			return s
		}(), Quarantine, "", ReasonDiscovery, "", true},
		{"discovery: zero info struct", nil, func() *Subject {
			s := subject("bob@corp.example.com", "DEV1", "Android", uaGmail, "", "")
			s.FirstSeen = t0
			return s
		}(), Quarantine, "", ReasonDiscovery, "", true},
		{"discovery period over: rules apply", nil, func() *Subject {
			s := subject("bob@corp.example.com", "DEV1", "Outlook", uaOutlook, "", "")
			s.Info, s.FirstSeen = nil, t0.Add(-15*time.Minute)
			return s
		}(), Allow, "outlook-mobile", ReasonDeviceRule, "", true},
		{"discovery only when rules exist", func(c Config) Config { return defAllow(noRules(c)) }, func() *Subject {
			s := subject("bob@corp.example.com", "DEV1", "Android", uaGmail, "", "")
			s.Info = nil
			return s
		}(), Allow, "", ReasonDefault, "", true},
		{"discovery beats default allow", defAllow, func() *Subject {
			s := subject("bob@corp.example.com", "DEV1", "Android", uaGmail, "", "")
			s.Info, s.FirstSeen = nil, t0
			return s
		}(), Quarantine, "", ReasonDiscovery, "", true},
		// 4. rules.
		{"old iOS legacy UA blocked", nil, subject("bob@corp.example.com", "ApplC39GQ8NNDTDL", "iPhone", uaOldIOS, "iPhone4C1", ""), Block, "block-old-ios", ReasonDeviceRule, "", true},
		{"old iOS by DeviceInformation OS", nil, subject("bob@corp.example.com", "ApplX", "iPhone", uaNewIOS, "iPhone9C3", "iOS 15.7.1 19H117"), Block, "block-old-ios", ReasonDeviceRule, "", true},
		{"new iOS not blocked: default", nil, subject("bob@corp.example.com", "ApplX", "iPhone", uaNewIOS, "iPhone16C1", "iOS 17.5.1 21F90"), Quarantine, "", ReasonDefault, "", true},
		{"new iOS with default allow", defAllow, subject("bob@corp.example.com", "ApplX", "iPhone", uaNewIOS, "iPhone16C1", "iOS 17.5.1 21F90"), Allow, "", ReasonDefault, "", true},
		{"iOS exactly 16.0 is not below", defAllow, subject("bob@corp.example.com", "ApplX", "iPhone", "iOS/16.0 (20A362) dataaccessd/1.0", "iPhone14C2", ""), Allow, "", ReasonDefault, "", true},
		{"iOS 15.8 is below 16.0", defAllow, subject("bob@corp.example.com", "ApplX", "iPhone", "iOS/15.8 (19H370) dataaccessd/1.0", "iPhone9C3", ""), Block, "block-old-ios", ReasonDeviceRule, "", true},
		{"outlook allow rule", nil, subject("bob@corp.example.com", "BF36923991ADFBA9", "Outlook", uaOutlook, "Outlook for iOS and Android", "iOS 17.5"), Allow, "outlook-mobile", ReasonDeviceRule, "", true},
		{"outlook on old iOS: block rule first", nil, subject("bob@corp.example.com", "BF36923991ADFBA9", "Outlook", uaOutlook, "Outlook for iOS and Android", "iOS 15.1"), Block, "block-old-ios", ReasonDeviceRule, "", true},
		{"report-only rule does not decide", nil, subject("bob@corp.example.com", "TB1", "TbSync", uaTbSync, "", "Linux"), Quarantine, "", ReasonDefault, "tbsync-trial", true},
		{"report-only rule with default allow", defAllow, subject("bob@corp.example.com", "TB1", "TbSync", uaTbSync, "", "Linux"), Allow, "", ReasonDefault, "tbsync-trial", true},
		{"glob device type quarantines samsung", defAllow, subject("bob@corp.example.com", "SEC17CD1A3E9E3F2", "SAMSUNGSMN900V", uaSamsung, "SM-N900V", "Android 4.4.2"), Quarantine, "samsung-quarantine", ReasonDeviceRule, "", true},
		{"device type match ignores case", defAllow, subject("bob@corp.example.com", "W1", "windowsmail", "MSFT-WIN-3/10.0.22621", "", ""), Allow, "windows-allow", ReasonDeviceRule, "", true},
		{"no rule matched, default block", defBlock, subject("bob@corp.example.com", "A1", "Android", uaGmail, "SM-M215F", "Android 10"), Block, "", ReasonDefault, "", true},
		// 5. compliance.
		{"compliant device allowed over default quarantine", withCompliance, subject("dave@corp.example.com", "COMPLIANT1", "Android", uaGmail, "SM-M215F", "Android 10"), Allow, "", ReasonCompliant, "", true},
		{"compliant device allowed over default block", func(c Config) Config { return defBlock(withCompliance(c)) }, subject("bob2@corp.example.com", "COMPLIANT1", "Android", uaGmail, "SM-M215F", "Android 10"), Allow, "", ReasonCompliant, "", true},
		{"grace counts as compliant", withCompliance, subject("dave@corp.example.com", "GRACE1", "Android", uaGmail, "SM-M215F", "Android 10"), Allow, "", ReasonGrace, "", true},
		{"noncompliant quarantined", func(c Config) Config { return defAllow(withCompliance(c)) }, subject("dave@corp.example.com", "NONCOMP1", "Android", uaGmail, "SM-M215F", "Android 10"), Quarantine, "", ReasonNoncompliant, "", true},
		{"unknown device quarantined as not enrolled", func(c Config) Config { return defAllow(withCompliance(c)) }, subject("dave@corp.example.com", "NEW1", "Android", uaGmail, "SM-M215F", "Android 10"), Quarantine, "", ReasonNotEnrolled, "", true},
		{"excluded group wins: default applies", func(c Config) Config { return defAllow(withCompliance(c)) }, subject("CEO@corp.example.com", "NEW1", "Android", uaGmail, "SM-M215F", "Android 10"), Allow, "", ReasonDefault, "", true},
		{"excluded user wins", func(c Config) Config { return defAllow(withCompliance(c)) }, subject(`CORP\bob`, "NEW1", "Android", uaGmail, "SM-M215F", "Android 10"), Allow, "", ReasonDefault, "", true},
		{"block rule beats compliant verdict", withCompliance, subject("dave@corp.example.com", "ApplC39GQ8NNDTDL", "iPhone", uaOldIOS, "iPhone4C1", ""), Block, "block-old-ios", ReasonDeviceRule, "", true},
		{"allow rule still needs compliance", withCompliance, subject("dave@corp.example.com", "NEW2", "Outlook", uaOutlook, "Outlook for iOS and Android", ""), Quarantine, "", ReasonNotEnrolled, "", true},
		{"allow rule and compliant", withCompliance, subject("dave@corp.example.com", "COMPLIANT1", "Outlook", uaOutlook, "Outlook for iOS and Android", ""), Allow, "", ReasonCompliant, "", true},
		{"require_for a group only: others use default", func(c Config) Config {
			c = defAllow(c)
			c.Compliance = ComplianceConfig{RequireFor: []string{"executives"}, OnUnavailable: Block}
			return c
		}, subject("dave@corp.example.com", "NEW1", "Android", uaGmail, "SM-M215F", "Android 10"), Allow, "", ReasonDefault, "", true},
		{"require_for a group: member must comply", func(c Config) Config {
			c = defAllow(c)
			c.Compliance = ComplianceConfig{RequireFor: []string{"executives"}, OnUnavailable: Block}
			return c
		}, subject("cfo@corp.example.com", "NONCOMP1", "Android", uaGmail, "SM-M215F", "Android 10"), Quarantine, "", ReasonNoncompliant, "", true},
		// report-only policy.
		{"report mode: block is not enforced", reportPolicy, subject("bob@corp.example.com", "ApplC39GQ8NNDTDL", "iPhone", uaOldIOS, "iPhone4C1", ""), Block, "block-old-ios", ReasonReportOnlyPolicy, "", false},
		{"report mode: individual block not enforced", reportPolicy, subject("alice@corp.example.com", "androidc195792594", "Android", uaGmail, "SM-M215F", "Android 10"), Block, "", ReasonIndividualBlock, "", false},
		{"report mode: allow stays allow", func(c Config) Config { return reportPolicy(defAllow(c)) }, subject("bob@corp.example.com", "ApplX", "iPhone", uaNewIOS, "iPhone16C1", "iOS 17.5.1 21F90"), Allow, "", ReasonDefault, "", false},
		// auth-method rules.
		{"rule requiring certificate for executives", func(c Config) Config {
			c = defAllow(c)
			c.Rules = append([]Rule{{Name: "execs-need-certs", Match: Match{Groups: []string{"executives"}, AuthMethod: []string{"basic", "none"}}, Access: Block}}, c.Rules...)
			return c
		}, subject("ceo@corp.example.com", "ApplX", "iPhone", uaNewIOS, "iPhone16C1", "iOS 17.5.1 21F90"), Block, "execs-need-certs", ReasonDeviceRule, "", true},
		{"executive with certificate passes", func(c Config) Config {
			c = defAllow(c)
			c.Rules = append([]Rule{{Name: "execs-need-certs", Match: Match{Groups: []string{"executives"}, AuthMethod: []string{"basic", "none"}}, Access: Block}}, c.Rules...)
			return c
		}, func() *Subject {
			s := subject("ceo@corp.example.com", "ApplX", "iPhone", uaNewIOS, "iPhone16C1", "iOS 17.5.1 21F90")
			s.Auth = AuthCertificate
			return s
		}(), Allow, "", ReasonDefault, "", true},
		{"regex rule on model", func(c Config) Config {
			c = defAllow(c)
			c.Rules = []Rule{{Name: "no-galaxy-s", Match: Match{DeviceModel: []string{`^SM-G9\d\dB$`}, Regex: true}, Access: Block}}
			return c
		}, subject("bob@corp.example.com", "A2", "Android", uaGmail, "SM-G991B", "Android 13"), Block, "no-galaxy-s", ReasonDeviceRule, "", true},
		{"regex rule does not match other model", func(c Config) Config {
			c = defAllow(c)
			c.Rules = []Rule{{Name: "no-galaxy-s", Match: Match{DeviceModel: []string{`^SM-G9\d\dB$`}, Regex: true}, Access: Block}}
			return c
		}, subject("bob@corp.example.com", "A2", "Android", uaGmail, "SM-M215F", "Android 13"), Allow, "", ReasonDefault, "", true},
		{"users glob rule", func(c Config) Config {
			c = defAllow(c)
			c.Domains = nil // every domain accepted, names compared as written
			c.Rules = []Rule{{Name: "contractors", Match: Match{Users: []string{"*@contractor.example.com"}}, Access: Block}}
			return c
		}, subject("Eve@Contractor.Example.com", "A3", "Android", uaGmail, "SM-M215F", "Android 13"), Block, "contractors", ReasonDeviceRule, "", true},
		{"without auth.domains, CORP\\alice is not alice@corp.example.com", func(c Config) Config {
			c.Domains = nil
			return c
		}, subject(`CORP\alice`, "androidc195792594", "Android", uaGmail, "SM-M215F", "Android 10"), Quarantine, "", ReasonDefault, "", true},
		{"without auth.domains, names compare case-folded with their domain", func(c Config) Config {
			c.Domains = nil
			return c
		}, subject("ALICE@Corp.Example.COM", "ANDROIDC195792594", "Android", uaGmail, "SM-M215F", "Android 10"), Block, "", ReasonIndividualBlock, "", true},
	}
	if len(tests) < 40 {
		t.Fatalf("want at least 40 cases, have %d", len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			if tc.cfg != nil {
				cfg = tc.cfg(cfg)
			}
			var cache *Cache
			if len(cfg.Compliance.RequireFor) > 0 {
				var err error
				cache, err = NewCache(src, CacheConfig{LookupTimeout: 5 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
			}
			e, err := NewEngine(cfg, cache)
			if err != nil {
				t.Fatal(err)
			}
			d, steps := e.Explain(context.Background(), tc.s)
			d2 := e.Decide(context.Background(), tc.s)
			if d.Action != d2.Action || d.Rule != d2.Rule {
				t.Fatalf("Explain and Decide disagree: %+v vs %+v", d, d2)
			}
			if d.Action != tc.action || d.Rule != tc.rule || !d.HasReason(tc.reason) || d.ReportedRule != tc.report || d.Enforced != tc.enforce {
				var b strings.Builder
				for _, s := range steps {
					b.WriteString("\n  " + s.Check + ": " + s.Detail)
				}
				t.Fatalf("got action=%s rule=%q reasons=%v reported=%q enforced=%v; want %s %q %s %q %v\nclient=%+v%s",
					d.Action, d.Rule, d.Reasons(), d.ReportedRule, d.Enforced, tc.action, tc.rule, tc.reason, tc.report, tc.enforce, tc.s.Client, b.String())
			}
		})
	}
}

func TestNewEngineErrors(t *testing.T) {
	cfg := Config{Rules: []Rule{
		{Name: "", Match: Match{DeviceType: []string{"x"}}},
		{Name: "bad-regex", Match: Match{UserAgent: []string{"("}, Regex: true}},
		{Name: "bad-client", Match: Match{Client: []string{"pigeon"}}},
		{Name: "below-without-family", Match: Match{OSVersionBelow: "1.0"}},
		{Name: "empty"},
		{Name: "dup", Match: Match{DeviceType: []string{"a"}}},
		{Name: "dup", Match: Match{DeviceType: []string{"b"}}},
	}, Compliance: ComplianceConfig{RequireFor: []string{"all"}}}
	_, err := NewEngine(cfg, nil)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"a rule needs a name", "invalid regular expression", `unknown client family "pigeon"`,
		"os_version_below needs os_family", "at least one match key", `duplicate rule name "dup"`, "no compliance source"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestDecideZeroAllocs(t *testing.T) {
	src := &fakeSource{states: map[string]State{"COMPLIANT1": StateCompliant}}
	cache, err := NewCache(src, CacheConfig{LookupTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig()
	cfg.Compliance = ComplianceConfig{RequireFor: []string{"all"}, Exclude: []string{"executives"}, OnUnavailable: Quarantine}
	e, err := NewEngine(cfg, cache)
	if err != nil {
		t.Fatal(err)
	}
	s := subject("bob@corp.example.com", "COMPLIANT1", "Android", uaGmail, "SM-M215F", "Android 10") // canonical, as the gateway hands it over
	s.Now = time.Time{}
	ctx := context.Background()
	if d := e.Decide(ctx, s); d.Action != Allow { // warms the cache
		t.Fatalf("warm-up: %v %v", d.Action, d.Reasons())
	}
	allocs := testing.AllocsPerRun(200, func() {
		if d := e.Decide(ctx, s); d.Action != Allow {
			t.Fatal("not allowed")
		}
	})
	if allocs != 0 {
		t.Fatalf("Decide on a cache hit allocates %.1f times, want 0", allocs)
	}
	if src.calls.Load() != 1 {
		t.Fatalf("source called %d times, want 1", src.calls.Load())
	}
}

// cacheHitEngine is an engine that requires compliance for all, over a
// source that knows states.
func cacheHitEngine(b *testing.B, states map[string]State) *Engine {
	src := &fakeSource{states: states}
	cache, _ := NewCache(src, CacheConfig{LookupTimeout: 5 * time.Second})
	cfg := baseConfig()
	cfg.Compliance = ComplianceConfig{RequireFor: []string{"all"}, OnUnavailable: Quarantine}
	e, err := NewEngine(cfg, cache)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func BenchmarkDecideCacheHit(b *testing.B) {
	e := cacheHitEngine(b, map[string]State{"COMPLIANT1": StateCompliant})
	s := subject("bob@corp.example.com", "COMPLIANT1", "Android", uaGmail, "SM-M215F", "Android 10")
	s.Now = time.Time{}
	ctx := context.Background()
	e.Decide(ctx, s)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if d := e.Decide(ctx, s); d.Action != Allow {
			b.Fatal("not allowed")
		}
	}
}
