package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(t *testing.T, stdin []byte, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, bytes.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageAndUnknownCommand(t *testing.T) {
	code, out, _ := runCmd(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "check-config") || !strings.Contains(out, "explain") {
		t.Fatalf("help: %d %q", code, out)
	}
	if code, _, errOut := runCmd(t, nil, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %d %q", code, errOut)
	}
}

func TestDecodeEncodeRoundTrip(t *testing.T) {
	// Vector G of PROTOCOL.md: Ping Status 1.
	ping := []byte{0x03, 0x01, 0x6A, 0x00, 0x00, 0x0D, 0x45, 0x47, 0x03, 0x31, 0x00, 0x01, 0x01}
	code, xml, errOut := runCmd(t, ping, "decode", "-")
	if code != 0 || !strings.Contains(xml, "<Status>1</Status>") || !strings.Contains(xml, "Ping") {
		t.Fatalf("decode: %d %q %q", code, xml, errOut)
	}
	code, wb, errOut := runCmd(t, []byte(xml), "encode")
	if code != 0 || !bytes.Equal([]byte(wb), ping) {
		t.Fatalf("encode: %d % x %q", code, wb, errOut)
	}
	// A shipped capture decodes from a file too.
	files, _ := filepath.Glob("../../eas/wbxml/testdata/*.wbxml")
	if len(files) == 0 {
		t.Fatal("no captures in eas/wbxml/testdata")
	}
	if code, out, errOut := runCmd(t, nil, "decode", files[0]); code != 0 || !strings.Contains(out, "<") {
		t.Fatalf("decode %s: %d %q", files[0], code, errOut)
	}
}

func TestDecodeBadInputSaysWhereAndExitsNonZero(t *testing.T) {
	// SWITCH_PAGE to page 200 at byte 4.
	code, _, errOut := runCmd(t, []byte{0x03, 0x01, 0x6A, 0x00, 0x00, 0xC8, 0x45, 0x01}, "decode")
	if code == 0 || !strings.Contains(errOut, "byte") {
		t.Fatalf("want a non-zero exit naming the byte, got %d %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, nil, "decode", "/nonexistent/file.wbxml"); code == 0 || errOut == "" {
		t.Fatalf("missing file: %d %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, []byte("<Ping xmlns=\"Ping\"><Unclosed>"), "encode"); code == 0 || errOut == "" {
		t.Fatalf("bad XML: %d %q", code, errOut)
	}
}

func TestParseRequestBothForms(t *testing.T) {
	code, plain, errOut := runCmd(t, nil, "parse-request",
		"--url", "/Microsoft-Server-ActiveSync?Cmd=Sync&User=rmjones&DeviceId=v140Device&DeviceType=SmartPhone",
		"-H", "MS-ASProtocolVersion: 14.0", "-H", "Authorization: Basic cm1qb25lczpzM2NyZXQ=")
	if code != 0 {
		t.Fatalf("plain: %d %q", code, errOut)
	}
	if strings.Contains(plain, "s3cret") || strings.Contains(plain, "cm1qb25lczpzM2NyZXQ") {
		t.Fatalf("parse-request printed the password: %s", plain)
	}
	code, b64, errOut := runCmd(t, nil, "parse-request", "--url", "/Microsoft-Server-ActiveSync?jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l")
	if code != 0 {
		t.Fatalf("base64: %d %q", code, errOut)
	}
	var p, b map[string]any
	if err := json.Unmarshal([]byte(plain), &p); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b64), &b); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"command", "device_id", "device_type", "version"} {
		if p[k] == nil || p[k] != b[k] {
			t.Errorf("%s: plain %v, base64 %v", k, p[k], b[k])
		}
	}
	code, _, errOut = runCmd(t, nil, "parse-request", "--url", "/Microsoft-Server-ActiveSync?Cmd=Sync&User=x&DeviceType=iPhone")
	if code == 0 || !strings.Contains(errOut, "DeviceId") {
		t.Fatalf("missing DeviceId: %d %q", code, errOut)
	}
}

func TestClassify(t *testing.T) {
	code, out, errOut := runCmd(t, nil, "classify", "--user-agent", "Apple-iPhone4C1/1002.329")
	if code != 0 {
		t.Fatalf("%d %q", code, errOut)
	}
	var c map[string]any
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	if c["family"] != "iOS Mail" || c["os"] != "iOS" || c["os_version"] != "6.1.3" || c["model"] != "iPhone4C1" {
		t.Fatalf("classify: %v", c)
	}
	if code, _, _ := runCmd(t, nil, "classify"); code != 2 {
		t.Fatalf("classify without input exits %d, want 2", code)
	}
}

func TestCheckConfig(t *testing.T) {
	if code, out, errOut := runCmd(t, nil, "check-config", "--no-files", "../../examples/easgate.yaml"); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("example config: %d %q %q", code, out, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("listen:\n  adress: \":443\"\nupstreams:\n  servers: []\n"), 0o600)
	code, out, _ := runCmd(t, nil, "check-config", bad)
	if code != 1 || !strings.Contains(out, "bad.yaml:2:3") || !strings.Contains(out, `did you mean "address"`) {
		t.Fatalf("broken config: %d %q", code, out)
	}
}

func TestExplain(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "c.csv")
	os.WriteFile(csv, []byte("alice@corp.example.com,ApplDMPL69PZF18P,compliant\n"), 0o600)
	cfg := filepath.Join(dir, "easgate.yaml")
	os.WriteFile(cfg, []byte(`listen:
  address: "127.0.0.1:0"
  plain_http: true
upstreams:
  servers:
    - url: http://127.0.0.1:9
policy:
  default_access: quarantine
  rules:
    - name: block-old-ios
      match: {os_family: iOS, os_version_below: "16.0"}
      access: block
  compliance:
    require_for: [all]
    source: {type: file, path: `+csv+`}
state:
  path: `+filepath.Join(dir, "state.db")+`
`), 0o600)
	code, out, errOut := runCmd(t, nil, "explain", "--config", cfg, "--user", `CORP\alice`, "--device-id", "ApplDMPL69PZF18P",
		"--device-type", "iPhone", "--user-agent", "iOS/17.5.1 (21F90) dataaccessd/1.0", "--model", "iPhone15C2", "--os", "iOS 17.5.1 21F90")
	if code != 0 || !strings.Contains(out, "decision: allow") || !strings.Contains(out, "device-compliant") || !strings.Contains(out, "rule block-old-ios") {
		t.Fatalf("compliant iPhone: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, nil, "explain", "--json", "--config", cfg, "--user", "bob@corp.example.com", "--device-id", "ApplC39GQ8NNDTDL",
		"--device-type", "iPhone", "--user-agent", "Apple-iPhone4C1/1002.329", "--model", "iPhone4C1")
	var res struct {
		Action string `json:"action"`
		Rule   string `json:"rule"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Action != "block" || res.Rule != "block-old-ios" {
		t.Fatalf("old iPhone: %d %s %s", code, out, errOut)
	}
}
