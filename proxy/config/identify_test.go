package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/easgate/easgate/eas"
)

const testRulesFile = `# site rules
rule foomail
  source   our own logs
  ua       FooMail/{app} (Android {version})
  family   android-email
  os-name  Android
  example  ua="FooMail/1.2 (Android 14)" => family=android-email os=Android version=14
`

func identifyConfig(t *testing.T, rulesPath string) *Config {
	t.Helper()
	src := "listen:\n  plain_http: true\nupstreams:\n  servers: [{url: \"https://cas1.example.com\"}]\nidentify:\n  rules_file: " + rulesPath + "\n"
	cfg, err := Parse("f.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestIdentifyRules(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "site.rules")
	if err := os.WriteFile(good, []byte(testRulesFile), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := identifyConfig(t, good)
	if errs := cfg.CheckFiles(); errs != nil {
		t.Fatalf("CheckFiles: %v", errs)
	}
	rs, errs := cfg.IdentifyRules()
	if errs != nil {
		t.Fatal(errs)
	}
	c := rs.Identify([]byte("FooMail/1.2 (Android 14)"), nil, nil)
	if c.Family != eas.FamilyAndroidEmail || c.OS != eas.OSAndroid || c.OSVersion.String() != "14.0" {
		t.Errorf("admin rule not applied: %+v", c)
	}
	// The embedded rules are still there.
	if c := rs.Identify([]byte("Apple-iPhone4C1/1002.329"), nil, nil); c.OSVersion.String() != "6.1.3" {
		t.Errorf("embedded rules lost: %v", c.OSVersion)
	}
	// No rules file: the embedded rule set.
	if rs, errs := Default().IdentifyRules(); errs != nil || rs != eas.DefaultRules() {
		t.Errorf("default: %v %v", rs, errs)
	}
	// The file is read again on every call (reload picks up changes).
	if err := os.WriteFile(good, []byte(strings.Replace(testRulesFile, "android-email", "gmial", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errs := cfg.IdentifyRules(); errs == nil {
		t.Error("changed rules file not re-read")
	}
}

// TestIdentifyRulesErrors: problems in the rules file carry the rules
// file's own line and column; a missing file is reported at the key.
func TestIdentifyRulesErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.rules")
	body := strings.Replace(testRulesFile, "family   android-email", "family   gmial", 1)
	body = strings.Replace(body, "os-name  Android", "os-name  Tizen", 1)
	if err := os.WriteFile(bad, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	errs := identifyConfig(t, bad).CheckFiles()
	want := []string{
		bad + `:5:12: identify.rules_file: rule foomail: unknown family "gmial" (want a slug such as ios-mail, outlook-mobile, unknown) (hint: the format is in the README, section Client identification)`,
		bad + `:6:12: identify.rules_file: rule foomail: unknown OS "Tizen"`,
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d: %v", len(errs), len(want), errs)
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d:\n got %s\nwant %s…", i, errs[i], w)
		}
	}
	missing := filepath.Join(dir, "missing.rules")
	errs = identifyConfig(t, missing).CheckFiles()
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), `f.yaml:6:15: identify.rules_file: cannot read "`+missing+`"`) {
		t.Errorf("missing rules file: %v", errs)
	}
	if _, errs := identifyConfig(t, missing).IdentifyRules(); len(errs) != 1 || errs[0].Line != 6 {
		t.Errorf("IdentifyRules on a missing file: %v", errs)
	}
}
