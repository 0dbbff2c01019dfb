package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClassifyExplain(t *testing.T) {
	code, out, errOut := runCmd(t, nil, "classify", "--explain", "--user-agent", "Outlook-Android/2.0", "--device-type", "Outlook", "--os", "Android 14")
	if code != 0 {
		t.Fatalf("%d %q", code, errOut)
	}
	for _, want := range []string{
		`"family": "Outlook mobile"`,
		`"os_version": "14.0"`,
		"matched   deviceinfo-os-android",
		"gave os Android, os version 14.0",
		"matched   outlook-android",
		"gave family Outlook mobile, app version 2.0",
		`no match  ios-mail `,
		`ua "Outlook-Android/2.0" does not match "iOS/{version} ({build}) dataaccessd/*"`,
		"skipped   type-outlook-mobile",
		"needs DeviceInformation Model; the request has none",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--explain output lacks %q:\n%s", want, out)
		}
	}
}

func TestClassifyRulesFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "site.rules")
	os.WriteFile(good, []byte(`rule foomail
  source   our logs
  ua       FooMail/{app} (Android {version})
  family   android-email
  os-name  Android
  example  ua="FooMail/1.2 (Android 14)" => family=android-email os=Android version=14
`), 0o600)
	code, out, errOut := runCmd(t, nil, "classify", "--rules", good, "--user-agent", "FooMail/1.2 (Android 14)")
	if code != 0 {
		t.Fatalf("%d %q", code, errOut)
	}
	var c map[string]any
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	if c["family"] != "Android Email" || c["os"] != "Android" || c["os_version"] != "14.0" || c["app_version"] != "1.2" {
		t.Errorf("classify --rules: %v", c)
	}
	// Without the rules file the same string is unknown, explicitly.
	_, out, _ = runCmd(t, nil, "classify", "--user-agent", "FooMail/1.2 (Android 14)")
	if !strings.Contains(out, `"family": "Unknown"`) {
		t.Errorf("unknown client: %s", out)
	}
	bad := filepath.Join(dir, "bad.rules")
	os.WriteFile(bad, []byte("rule a\n  source s\n  ua Foo*\n  family gmial\n  example ua=Foo => family=gmail\n"), 0o600)
	code, _, errOut = runCmd(t, nil, "classify", "--rules", bad, "--user-agent", "Foo")
	if code != 1 || !strings.Contains(errOut, bad+`:4:10: rule a: unknown family "gmial"`) {
		t.Errorf("bad rules file: %d %q", code, errOut)
	}
	code, _, errOut = runCmd(t, nil, "classify", "--rules", filepath.Join(dir, "nope"), "--user-agent", "Foo")
	if code == 0 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing rules file: %d %q", code, errOut)
	}
}

// TestCheckConfigRulesFile: check-config reports a broken rules file with
// the rules file's own line numbers.
func TestCheckConfigRulesFile(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "site.rules")
	os.WriteFile(rules, []byte("rule a\n  source s\n  ua Foo/{versoin}\n  family gmail\n  example ua=Foo => family=gmail\n"), 0o600)
	cfg := filepath.Join(dir, "easgate.yaml")
	os.WriteFile(cfg, []byte("listen:\n  plain_http: true\nupstreams:\n  servers: [{url: \"https://cas1.example.com\"}]\nidentify:\n  rules_file: "+rules+"\n"), 0o600)
	code, out, _ := runCmd(t, nil, "check-config", cfg)
	if code != 1 || !strings.Contains(out, rules+":3:10: identify.rules_file: rule a: ua: unknown capture {versoin}") {
		t.Fatalf("check-config: %d %q", code, out)
	}
	os.WriteFile(rules, []byte("ios-build 23G5 26.6\n"), 0o600)
	if code, out, _ := runCmd(t, nil, "check-config", cfg); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("check-config with a good rules file: %d %q", code, out)
	}
}

// TestExplainUsesRulesFile: explain identifies the client as the gateway
// does, with identify.rules_file, so a policy rule on the family applies.
func TestExplainUsesRulesFile(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "site.rules")
	os.WriteFile(rules, []byte(`rule foomail
  source   our logs
  ua       FooMail/{app}*
  family   gmail
  os-name  Android
  example  ua="FooMail/1.2" => family=gmail os=Android
`), 0o600)
	cfg := filepath.Join(dir, "easgate.yaml")
	os.WriteFile(cfg, []byte(`listen:
  address: "127.0.0.1:0"
  plain_http: true
upstreams:
  servers:
    - url: http://127.0.0.1:9
policy:
  default_access: allow
  rules:
    - name: no-gmail
      match: {client: gmail}
      access: block
identify:
  rules_file: `+rules+`
`), 0o600)
	code, out, errOut := runCmd(t, nil, "explain", "--json", "--config", cfg, "--user", "bob@corp.example.com", "--device-id", "D1",
		"--device-type", "Android", "--user-agent", "FooMail/1.2", "--model", "Pixel 8", "--os", "Android 14")
	var res struct {
		Action string `json:"action"`
		Rule   string `json:"rule"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Action != "block" || res.Rule != "no-gmail" {
		t.Fatalf("explain with a rules file: %d %s %s", code, out, errOut)
	}
}
