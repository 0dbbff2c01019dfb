package eas

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"
)

// realCase is one row of testdata/clients/real.tsv.
type realCase struct {
	line                        int
	ua, deviceType, dOS, dModel string
	family, os, version, source string
}

func (rc realCase) info() *DeviceInfo {
	if rc.dOS == "" && rc.dModel == "" {
		return nil
	}
	return &DeviceInfo{OS: rc.dOS, Model: rc.dModel}
}

// loadRealCases reads testdata/clients/real.tsv: '#' comments, a header
// row, then eight tab-separated columns.
func loadRealCases(tb testing.TB) []realCase {
	tb.Helper()
	f, err := os.Open("testdata/clients/real.tsv")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []realCase
	sc := bufio.NewScanner(f)
	n := 0
	header := false
	for sc.Scan() {
		n++
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		cols := strings.Split(l, "\t")
		if len(cols) != 8 {
			tb.Fatalf("real.tsv:%d: %d columns, want 8", n, len(cols))
		}
		if !header {
			header = true
			continue
		}
		out = append(out, realCase{n, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7]})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestIdentifyRealClients runs the table of real strings, each with its
// public source, through the embedded rules.
func TestIdentifyRealClients(t *testing.T) {
	cases := loadRealCases(t)
	if len(cases) < 150 {
		t.Fatalf("real.tsv has %d cases, want at least 150", len(cases))
	}
	families := map[Family]bool{}
	for _, rc := range cases {
		if rc.source == "" || (rc.ua == "" && rc.deviceType == "" && rc.dOS == "" && rc.dModel == "") {
			t.Errorf("real.tsv:%d: a case needs an input and a source", rc.line)
			continue
		}
		wantFam, ok := ParseFamily(rc.family)
		if !ok {
			t.Errorf("real.tsv:%d: unknown family %q", rc.line, rc.family)
			continue
		}
		c := Identify([]byte(rc.ua), []byte(rc.deviceType), rc.info())
		gotOS := ""
		if c.OS != OSUnknown {
			gotOS = c.OS.String()
		}
		if c.Family != wantFam || gotOS != rc.os || c.OSVersion.String() != rc.version {
			t.Errorf("real.tsv:%d: Identify(%q, %q, os=%q, model=%q) = %s / %q / %q; want %s / %q / %q",
				rc.line, rc.ua, rc.deviceType, rc.dOS, rc.dModel, c.Family.Slug(), gotOS, c.OSVersion, rc.family, rc.os, rc.version)
		}
		families[c.Family] = true
	}
	// The families issue 16 asks to cover, each by at least one real string.
	for _, f := range []Family{FamilyIOSMail, FamilyOutlookMobile, FamilyOutlookDesktop, FamilyGmail, FamilySamsungEmail,
		FamilyAndroidEmail, FamilyLGEmail, FamilyWindowsMail, FamilyWindowsPhone, FamilyWindowsMobile, FamilyBlackBerry,
		FamilyTouchDown, FamilyTbSync, FamilyEvolution, FamilyMacOSMail, FamilyUnknown} {
		if !families[f] {
			t.Errorf("no real string in real.tsv is identified as %s", f)
		}
	}
}

// TestEmbeddedRules checks the embedded file: it parses, every rule has a
// source and examples, every example gives what it says, and every rule
// matches at least one of its own examples (so each example exercises the
// rule it stands under).
func TestEmbeddedRules(t *testing.T) {
	rs, err := compileRules(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.rules) < 40 {
		t.Errorf("%d rules, want at least 40", len(rs.rules))
	}
	seen := map[string]bool{}
	for _, r := range rs.List() {
		if seen[r.Name] {
			t.Errorf("rule %s twice", r.Name)
		}
		seen[r.Name] = true
		if r.Source == "" || len(r.Examples) == 0 {
			t.Errorf("rule %s: no source or no example", r.Name)
		}
		exercised := false
		for i := range r.Examples {
			x := &r.Examples[i]
			if msg := rs.CheckExample(x); msg != "" {
				t.Errorf("clientrules.txt:%d: rule %s: %s", x.Line, r.Name, msg)
			}
			_, trace := rs.Explain([]byte(x.UA), []byte(x.DeviceType), x.Info())
			for _, tr := range trace {
				if tr.Rule == r.Name && tr.Outcome == "matched" {
					exercised = true
				}
			}
		}
		if !exercised {
			t.Errorf("rule %s: none of its examples is matched by it", r.Name)
		}
	}
	// Evidence order: every DeviceInformation rule before every User-Agent
	// rule before every DeviceType rule.
	last := uint8(0)
	for i := range rs.rules {
		if rs.rules[i].ev < last {
			t.Fatalf("rule %s out of evidence order", rs.rules[i].name)
		}
		last = rs.rules[i].ev
	}
}

// TestIssue16Misses are the misses issue 16 reported, now identified.
func TestIssue16Misses(t *testing.T) {
	for _, tt := range []struct {
		ua, dt, dOS     string
		family, os, ver string
	}{
		// BlackBerry: family, OS and version.
		{"RIM-Playbook/2.0", "PlayBook", "", "blackberry", "BlackBerry", "2.0"},
		{"", "BB10", "", "blackberry", "BlackBerry", ""},
		// Windows 10 Mail is Windows Mail on Windows, not Windows Phone.
		{"MSFT-WIN-3/10.0.17134", "WindowsMail", "Windows 10.0.17134", "windows-mail", "Windows", "10.0.17134"},
		{"", "WindowsMail", "Windows 10.0.17134", "windows-mail", "Windows", "10.0.17134"},
		// Outlook for Android and TouchDown get their platform's OS.
		{"Outlook-Android/2.0", "Outlook", "", "outlook-mobile", "Android", ""},
		{"TouchDown(MSRPC)/7.1.0005", "", "", "touchdown", "Android", ""},
		// A bare Android-14/.
		{"Android-14/", "", "", "android-email", "Android", "14.0"},
		// Builds that were missing (iPhone OS 3) and recent ones.
		{"Apple-iPhone/704.11", "", "", "ios-mail", "iOS", "3.1.2"},
		{"iOS/ (23F77) dataaccessd/1.0", "", "", "ios-mail", "iOS", "26.5"},
		{"iOS/ (23E261) dataaccessd/1.0", "", "", "ios-mail", "iOS", "26.4.2"},
		// Unknown is explicit.
		{"NokiaN97/2.09(208)MailforExchange", "", "", "unknown", "Unknown", ""},
	} {
		var info *DeviceInfo
		if tt.dOS != "" {
			info = &DeviceInfo{OS: tt.dOS}
		}
		c := Identify([]byte(tt.ua), []byte(tt.dt), info)
		if c.Family.Slug() != tt.family || c.OS.String() != tt.os || c.OSVersion.String() != tt.ver {
			t.Errorf("Identify(%q, %q, %q) = %s %s %q; want %s %s %q", tt.ua, tt.dt, tt.dOS,
				c.Family.Slug(), c.OS, c.OSVersion, tt.family, tt.os, tt.ver)
		}
	}
	if b, _ := Identify([]byte("NokiaN97/2.09(208)MailforExchange"), nil, nil).MarshalJSON(); string(b) != `{"family":"Unknown"}` {
		t.Errorf("unknown client JSON: %s", b)
	}
}

const adminRules = `# an administrator's file
rule fairemail-like
  source   seen in our own logs, ticket 1234
  ua       FooMail/{app} (Android {version})
  family   android-email
  os-name  Android
  example  ua="FooMail/1.2 (Android 14)" => family=android-email os=Android version=14

# correct an embedded rule: RoadSync counts as Android Email here
rule roadsync-android
  source   local decision
  ua       RoadSync-Android/{app}*
  family   android-email
  os-name  Android
  example  ua="RoadSync-Android/2.503" => family=android-email os=Android

disable nine

ios-build 23G5 26.6
`

func TestNewRulesAdmin(t *testing.T) {
	rs, err := NewRules("site.rules", []byte(adminRules))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ua, family, os, ver, app string
	}{
		{"FooMail/1.2 (Android 14)", "android-email", "Android", "14.0", "1.2"},
		{"RoadSync-Android/2.503", "android-email", "Android", "", "2.503"},
		{"Nine-", "unknown", "Unknown", "", ""},
		{"iOS/ (23G5) dataaccessd/1.0", "ios-mail", "iOS", "26.6", ""},
		{"Apple-iPhone4C1/1002.329", "ios-mail", "iOS", "6.1.3", ""},
	} {
		c := rs.Identify([]byte(tt.ua), nil, nil)
		if c.Family.Slug() != tt.family || c.OS.String() != tt.os || c.OSVersion.String() != tt.ver || c.AppVersion() != tt.app {
			t.Errorf("%q: %s %s %q app %q; want %s %s %q app %q", tt.ua, c.Family.Slug(), c.OS, c.OSVersion, c.AppVersion(),
				tt.family, tt.os, tt.ver, tt.app)
		}
	}
	// The embedded set is untouched.
	if c := Identify([]byte("Nine-"), nil, nil); c.Family != FamilyNine {
		t.Errorf("embedded Nine rule lost: %v", c.Family)
	}
	// Admin rules come first within their evidence; the override keeps the
	// embedded rule's place.
	list := rs.List()
	if list[0].Evidence != "DeviceInformation Model" {
		t.Errorf("first rule %s (%s)", list[0].Name, list[0].Evidence)
	}
	var names []string
	for _, r := range list {
		if r.Evidence == "User-Agent" {
			names = append(names, r.Name)
		}
	}
	if names[0] != "fairemail-like" {
		t.Errorf("admin rule not first among User-Agent rules: %v", names[:3])
	}
	for _, r := range list {
		if r.Name == "roadsync-android" && (r.File != "site.rules" || r.Line != 10) {
			t.Errorf("override at %s:%d", r.File, r.Line)
		}
	}
}

func TestNewRulesErrors(t *testing.T) {
	for _, tt := range []struct {
		name, data string
		want       []string
	}{
		{"unknown keyword", "rule a\n  source s\n  colour blue\n", []string{"x.rules:3:3: unknown keyword \"colour\""}},
		{"outside a rule", "ua Foo*\n", []string{"x.rules:1:1: ua outside a rule"}},
		{"bad family", "rule a\n  source s\n  ua Foo*\n  family gmial\n  example ua=Foo => family=gmail\n",
			[]string{"x.rules:4:10: rule a: unknown family \"gmial\""}},
		{"bad os", "rule a\n  source s\n  ua Foo*\n  os-name Tizen\n  example ua=Foo => family=unknown\n",
			[]string{"x.rules:4:11: rule a: unknown OS \"Tizen\""}},
		{"bad capture", "rule a\n  source s\n  ua Foo/{versoin}\n  family gmail\n  example ua=Foo => family=gmail\n",
			[]string{"x.rules:3:10: rule a: ua: unknown capture {versoin}"}},
		{"unclosed brace", "rule a\n  source s\n  ua Foo/{version\n", []string{"x.rules:3:10: rule a: ua: '{' without '}'"}},
		{"too many stars", "rule a\n  source s\n  ua *a*b*c*d\n", []string{"x.rules:3:12: rule a: ua: at most 3 '*'"}},
		{"no source", "rule a\n  ua Foo*\n  family gmail\n  example ua=Foo => family=gmail\n", []string{"x.rules:1:1: rule a has no source line"}},
		{"no example", "rule a\n  source s\n  ua Foo*\n  family gmail\n", []string{"x.rules:1:1: rule a has no example"}},
		{"no condition", "rule a\n  source s\n  family gmail\n  example ua=Foo => family=gmail\n", []string{"x.rules:1:1: rule a has no condition"}},
		{"yields nothing", "rule a\n  source s\n  ua Foo*\n  example ua=Foo => family=unknown\n", []string{"x.rules:1:1: rule a yields nothing"}},
		{"version without os", "rule a\n  source s\n  ua Foo/{version}\n  family gmail\n  example ua=Foo/1 => family=gmail\n",
			[]string{"x.rules:1:1: rule a reads an OS version but has no os-name"}},
		{"duplicate rule", "rule a\n  source s\n  ua A*\n  family gmail\n  example ua=A => family=gmail\nrule a\n  source s\n  ua B*\n  family gmail\n  example ua=B => family=gmail\n",
			[]string{"x.rules:6:6: rule a is defined twice (first at line 1)"}},
		{"failing example", "rule a\n  source s\n  ua Foo*\n  family gmail\n  os-name Android\n  example ua=Foo => family=nine os=iOS\n",
			[]string{"x.rules:6:3: rule a: example: family gmail, want nine; os \"Android\", want \"iOS\""}},
		{"bad example", "rule a\n  source s\n  ua Foo*\n  family gmail\n  example ua=Foo family=gmail\n",
			[]string{"x.rules:5:18: rule a: example: unexpected key \"family\""}},
		{"example without result", "rule a\n  source s\n  ua Foo*\n  family gmail\n  example ua=Foo\n",
			[]string{"x.rules:5:11: rule a: example: want inputs, \"=>\""}},
		{"disable unknown", "disable no-such-rule\n", []string{"x.rules:1:9: disable no-such-rule: no embedded rule"}},
		{"bad ios-build", "ios-build 23X 26.9\nios-build 23G5 26.x\n", []string{"x.rules:1:11: malformed iOS build", "x.rules:2:16: malformed version"}},
		{"two errors at once", "rule a\n  source s\n  ua Foo*\n  family gmial\n  os-name Tizen\n  example ua=Foo => family=gmail\n",
			[]string{"x.rules:4:10:", "x.rules:5:11:"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRules("x.rules", []byte(tt.data))
			if err == nil {
				t.Fatal("no error")
			}
			var re RuleErrors
			if !errors.As(err, &re) {
				t.Fatalf("error %T, want RuleErrors", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) < len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("error %d:\n got %s\nwant %s…", i, lines[i], w)
				}
			}
		})
	}
	if _, err := NewRules("big.rules", make([]byte, MaxRulesFileSize+1)); err == nil {
		t.Error("oversized file accepted")
	}
}

func TestExplain(t *testing.T) {
	c, trace := DefaultRules().Explain([]byte("Outlook-iOS-Android/1.0"), []byte("Outlook"),
		&DeviceInfo{OS: "iOS 17.5", Model: "Outlook for iOS and Android"})
	if c.Family != FamilyOutlookMobile || c.OS != OSiOS || c.OSVersion.String() != "17.5" {
		t.Fatalf("explain result %+v", c)
	}
	got := map[string]RuleTrace{}
	for _, tr := range trace {
		got[tr.Rule] = tr
	}
	if len(trace) != len(DefaultRules().List()) {
		t.Errorf("%d traces for %d rules", len(trace), len(DefaultRules().List()))
	}
	for name, want := range map[string]string{
		"deviceinfo-outlook-model": "matched: gave family Outlook mobile",
		"deviceinfo-model":         "matched: gave model Outlook for iOS and Android",
		"deviceinfo-os-ios":        "matched: gave os iOS, os version 17.5",
		"deviceinfo-os-android":    "no match: device-os \"iOS 17.5\" does not match \"Android {version}*\" or \"Android\"",
		"outlook-ios-android":      "matched: gave app version 1.0",
		"ios-mail":                 "no match: ua \"Outlook-iOS-Android/1.0\" does not match",
		"type-outlook-mobile":      "skipped: matches, but everything it yields is already settled",
		"type-apple":               "no match: type \"Outlook\" does not match \"iPhone\" or \"iPad\" or \"iPod\"",
	} {
		tr := got[name]
		if s := tr.Outcome + ": " + tr.Reason; !strings.HasPrefix(s, want) {
			t.Errorf("%s: %q, want prefix %q", name, s, want)
		}
	}
	_, trace = DefaultRules().Explain([]byte("Apple-iPhone4C1/1002.329"), nil, nil)
	for _, tr := range trace {
		if tr.Rule == "deviceinfo-os-ios" && tr.Reason != "needs DeviceInformation OS; the request has none" {
			t.Errorf("deviceinfo-os-ios: %q", tr.Reason)
		}
	}
	// Explain and Identify agree on every real string.
	for _, rc := range loadRealCases(t) {
		a := Identify([]byte(rc.ua), []byte(rc.deviceType), rc.info())
		b, _ := DefaultRules().Explain([]byte(rc.ua), []byte(rc.deviceType), rc.info())
		ja, _ := a.MarshalJSON()
		jb, _ := b.MarshalJSON()
		if string(ja) != string(jb) {
			t.Errorf("real.tsv:%d: Identify %s, Explain %s", rc.line, ja, jb)
		}
	}
}

func TestPatterns(t *testing.T) {
	for _, tt := range []struct {
		pat, in string
		ok      bool
		caps    map[uint8]string
	}{
		{"Apple-{model}/{ioslegacy}*", "apple-iPhone4C1/1002.329", true, map[uint8]string{capModel: "iPhone4C1", capIOSLegacy: "1002.329"}},
		{"Apple-{model}/{ioslegacy}*", "Apple-iPhone4C1/1000.329", false, nil},
		{"iOS/{version} ({build})*", "iOS/16.5.1 (20F75) dataaccessd/1.0", true, map[uint8]string{capVersion: "16.5.1", capBuild: "20F75"}},
		{"MSFT-WIN-3/{version}*", "MSFT-WIN-3/10.0.22621.1", true, map[uint8]string{capVersion: "10.0.22621.1"}},
		{"MSFT-WIN-3/{version}", "MSFT-WIN-3/99999.1", false, nil},
		{"*Evolution*", "GNOME Evolution/3.44", true, nil},
		{"a\\*b", "a*b", true, nil},
		{"a\\*b", "axb", false, nil},
		{"{model}", "Outlook for iOS and Android", true, map[uint8]string{capModel: "Outlook for iOS and Android"}},
		{"SAMSUNG-{model}/{app}*", "SAMSUNG-SM-N900V/101.403", true, map[uint8]string{capModel: "SM-N900V", capApp: "101.403"}},
		{"Foo", "foo ", false, nil},
		{"*a*a*a", strings.Repeat("a", 40) + "b", false, nil},
		{"*a*a*b", strings.Repeat("a", ruleMaxInput-1) + "b", true, nil},
		{"*a*a*c", strings.Repeat("a", ruleMaxInput), false, nil},
		{"x*{version}*y", "x-abc-10.2.3-z-y", true, map[uint8]string{capVersion: "10.2.3"}},
		{"*({build})*", "iOS/16.5.1 (20F75) dataaccessd/1.0", true, map[uint8]string{capBuild: "20F75"}},
		{"Moto-{model}/{app}", "Moto-DROID BIONIC/5.5.1", false, nil},
	} {
		p, _, msg := compilePattern(tt.pat)
		if msg != "" {
			t.Fatalf("%q: %s", tt.pat, msg)
		}
		var cs capSet
		ok := p.match([]byte(tt.in), &cs, evUA)
		if ok != tt.ok {
			t.Errorf("%q ~ %q = %v, want %v", tt.pat, tt.in, ok, tt.ok)
			continue
		}
		for k, want := range tt.caps {
			s := cs.at[k]
			if cs.set&(1<<k) == 0 || tt.in[s.start:s.end] != want {
				t.Errorf("%q ~ %q: {%s} = %q, want %q", tt.pat, tt.in, capNames[k], tt.in[s.start:s.end], want)
			}
		}
	}
}

// TestRulesIdentifyAllocs: a compiled administrator's rule set identifies
// without allocating, like the embedded one.
func TestRulesIdentifyAllocs(t *testing.T) {
	rs, err := NewRules("site.rules", []byte(adminRules))
	if err != nil {
		t.Fatal(err)
	}
	ua, dt := []byte("FooMail/1.2 (Android 14)"), []byte("Android")
	info := &DeviceInfo{OS: "Android 14", Model: "Pixel 8", FriendlyName: "work phone"}
	n := testing.AllocsPerRun(200, func() {
		if c := rs.Identify(ua, dt, info); c.Family != FamilyAndroidEmail {
			t.Fatal("not identified")
		}
	})
	if n != 0 {
		t.Errorf("Rules.Identify allocates %v times per call, want 0", n)
	}
	var nilRules *Rules
	if c := nilRules.Identify([]byte("Apple-iPhone4C1/1002.329"), nil, nil); c.OSVersion.String() != "6.1.3" {
		t.Errorf("nil *Rules: %v", c.OSVersion)
	}
}

// friendlyNineRule is an admin rule on the DeviceInformation FriendlyName.
const friendlyNineRule = `rule friendly-nine
  source   a site whose Nine installs name the device "Nine …"
  friendly-name Nine *
  family   nine
  os-name  Android
  example  friendly-name="Nine on Pixel" ua="Android/4.4.2-EAS-1.3" => family=nine os=Android version=4.4.2
`

// TestEvidenceOrder: a DeviceInformation rule settles the family before any
// User-Agent rule; the User-Agent still gives what DeviceInformation left
// open (the version, on the same OS); the DeviceType only fills the rest.
func TestEvidenceOrder(t *testing.T) {
	rs, err := NewRules("site.rules", []byte(friendlyNineRule))
	if err != nil {
		t.Fatal(err)
	}
	c := rs.Identify([]byte("Android/4.4.2-EAS-1.3"), []byte("SAMSUNGSMN900V"), &DeviceInfo{FriendlyName: "Nine on Pixel"})
	if c.Family != FamilyNine || c.OS != OSAndroid || c.OSVersion.String() != "4.4.2" || c.AppVersion() != "1.3" {
		t.Errorf("friendly name first: %s %s %q app %q", c.Family.Slug(), c.OS, c.OSVersion, c.AppVersion())
	}
	// DeviceInformation OS wins over the User-Agent's OS and version.
	c = Identify([]byte("iOS/16.5.1 (20F75) dataaccessd/1.0"), []byte("iPhone"), &DeviceInfo{OS: "Android 13"})
	if c.Family != FamilyIOSMail || c.OS != OSAndroid || c.OSVersion.String() != "13.0" || c.BuildLen != 0 {
		t.Errorf("DeviceInformation OS: %s %s %q %q", c.Family.Slug(), c.OS, c.OSVersion, c.BuildString())
	}
	// The DeviceType fills only what nothing else said.
	c = Identify([]byte("Outlook-iOS-Android/1.0"), []byte("iPhone"), nil)
	if c.Family != FamilyOutlookMobile || c.OS != OSiOS {
		t.Errorf("DeviceType fills the OS: %s %s", c.Family.Slug(), c.OS)
	}
}
