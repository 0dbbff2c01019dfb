package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/policy/sources"
)

func runCmd(t *testing.T, stdin []byte, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, bytes.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageAndUnknownCommand(t *testing.T) {
	code, out, _ := runCmd(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "check-config") || !strings.Contains(out, "explain") || !strings.Contains(out, "compliance") {
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

func complianceConfig(t *testing.T, dir, source string) string {
	t.Helper()
	cfg := filepath.Join(dir, "easgate.yaml")
	os.WriteFile(cfg, []byte(`listen:
  address: "127.0.0.1:0"
  plain_http: true
upstreams:
  servers:
    - url: http://127.0.0.1:9
policy:
  compliance:
    require_for: [all]
    source: `+source+`
state:
  path: `+filepath.Join(dir, "state.db")+`
`), 0o600)
	return cfg
}

// TestComplianceAcceptFile: the gateway's file source (here in the test
// process, as it runs in the gateway) holds back a truncated file;
// `compliance status` shows it and exits 3, `compliance accept` prints what
// it accepts and writes the marker that makes the source apply it.
func TestComplianceAcceptFile(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "c.csv")
	var rows strings.Builder
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&rows, "user%d@corp.example.com,DEV%d,compliant\n", i, i)
	}
	os.WriteFile(csv, []byte(rows.String()), 0o600)
	cfg := complianceConfig(t, dir, "{type: file, path: "+csv+"}")
	acc, st := sources.GuardPaths("file", csv, "", "")
	src, err := sources.NewFileGuarded(csv, sources.Guard{AcceptPath: acc, StatusPath: st})
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd(t, nil, "compliance", "status", "--config", cfg); code != 0 || !strings.Contains(out, "in force: 10 entries") ||
		!strings.Contains(out, "no reload held back") || !strings.Contains(out, "(in force)") {
		t.Fatalf("status before: %d\n%s%s", code, out, errOut)
	}
	os.WriteFile(csv, []byte("user0@corp.example.com,DEV0,compliant\nuser1@corp.exa"), 0o600) // cut short
	if _, err := src.Reload(); src.HeldBack() == nil {
		t.Fatalf("not held back: %v", err)
	}
	code, out, errOut := runCmd(t, nil, "compliance", "status", "--config", cfg)
	if code != 3 || !strings.Contains(out, "HELD BACK") || !strings.Contains(out, "drop, 1 entries instead of 10 (90.0% fewer") ||
		!strings.Contains(out, "(the held-back content)") {
		t.Fatalf("status while held back: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, nil, "compliance", "status", "--json", "--config", cfg)
	var js struct {
		Status struct {
			HeldBack struct {
				Old int `json:"old_entries"`
			} `json:"held_back"`
		} `json:"status"`
		FileState string `json:"file_state"`
	}
	if code != 3 || json.Unmarshal([]byte(out), &js) != nil || js.Status.HeldBack.Old != 10 || js.FileState != "held-back" {
		t.Fatalf("status --json: %d %s %s", code, out, errOut)
	}
	sum, _ := sources.InspectFile(csv)
	code, out, errOut = runCmd(t, nil, "compliance", "accept", "--config", cfg)
	if code != 0 || !strings.Contains(out, "accepting "+csv+": 1 entries, sha256 "+sum.SHA256) ||
		!strings.Contains(out, "1 malformed line(s)") || !strings.Contains(out, "10 entries in force, 90.0% fewer") {
		t.Fatalf("accept: %d\n%s%s", code, out, errOut)
	}
	if b, err := os.ReadFile(acc); err != nil || strings.TrimSpace(string(b)) != sum.SHA256 {
		t.Fatalf("marker %q %v", b, err)
	}
	if changed, _ := src.Reload(); !changed || src.Len() != 1 {
		t.Fatalf("the source did not apply the accepted content: %d entries", src.Len())
	}
	code, out, _ = runCmd(t, nil, "compliance", "accept", "--config", cfg)
	if code != 0 || !strings.Contains(out, "nothing to accept: this content is in force") {
		t.Fatalf("second accept: %d %s", code, out)
	}
	if _, err := os.Stat(acc); !os.IsNotExist(err) {
		t.Errorf("a marker was written for content in force: %v", err)
	}
}

// TestComplianceAcceptGraph: for Graph the held-back pull is known only
// to the gateway; accept takes its digest from the status file.
func TestComplianceAcceptGraph(t *testing.T) {
	dir := t.TempDir()
	cfg := complianceConfig(t, dir, `
      type: graph
      tenant_id: corp.example.com
      client_id: 00000000-0000-0000-0000-000000000000
      client_secret_file: `+filepath.Join(dir, "secret"))
	os.WriteFile(filepath.Join(dir, "secret"), []byte("s3cr3t-value"), 0o600)
	acc, stPath := sources.GuardPaths("graph", "", filepath.Join(dir, "state.db"), cfg)
	code, out, errOut := runCmd(t, nil, "compliance", "accept", "--config", cfg)
	if code != 1 || !strings.Contains(errOut, "status file is not readable") {
		t.Fatalf("accept without a status file: %d %s %s", code, out, errOut)
	}
	digest := strings.Repeat("0123456789abcdef", 4)
	st := sources.Status{Source: "graph", Entries: 1000, Updated: time.Now(), HeldBack: &sources.HeldBack{Source: "graph", Reason: sources.HoldDrop,
		Old: 1000, New: 12, DropPercent: 98.8, MaxDrop: 50, SHA256: digest, Since: time.Now()}}
	b, _ := json.Marshal(st)
	os.WriteFile(stPath, b, 0o600)
	code, out, errOut = runCmd(t, nil, "compliance", "accept", "--config", cfg)
	if code != 0 || !strings.Contains(out, "12 entries, 1000 in force (98.8% fewer)") || !strings.Contains(out, digest) {
		t.Fatalf("accept: %d\n%s%s", code, out, errOut)
	}
	if m, err := os.ReadFile(acc); err != nil || strings.TrimSpace(string(m)) != digest {
		t.Fatalf("marker %q %v", m, err)
	}
	if code, out, _ := runCmd(t, nil, "compliance", "status", "--config", cfg); code != 3 || !strings.Contains(out, "accept marker pending") ||
		strings.Contains(out, "s3cr3t") {
		t.Fatalf("status: %d %s", code, out)
	}
	st.HeldBack = nil
	b, _ = json.Marshal(st)
	os.WriteFile(stPath, b, 0o600)
	if code, out, _ := runCmd(t, nil, "compliance", "accept", "--config", cfg); code != 0 || !strings.Contains(out, "nothing to accept") {
		t.Fatalf("accept with nothing held back: %d %s", code, out)
	}
}

func TestComplianceUsageErrors(t *testing.T) {
	dir := t.TempDir()
	httpCfg := complianceConfig(t, dir, "{type: http, url: https://mdm.corp.example.com/verdict}")
	tests := []struct {
		args []string
		code int
		want string // in stdout or stderr
	}{
		{[]string{"compliance"}, 2, "Usage: easgate compliance <accept|status>"},
		{[]string{"compliance", "--help"}, 0, "accept   confirm"},
		{[]string{"compliance", "frob"}, 2, `unknown subcommand "frob"`},
		{[]string{"compliance", "accept"}, 2, "--config is required"},
		{[]string{"compliance", "accept", "--config", httpCfg}, 1, "keeps no table"},
		{[]string{"compliance", "status", "--config", filepath.Join(dir, "missing.yaml")}, 1, "missing.yaml"},
	}
	for _, tc := range tests {
		code, out, errOut := runCmd(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%q: %d\n%s%s\nwant %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
}

// TestComplianceFollower: on a node that uses the table another node read
// from its file (state.url), `compliance status` says so and does not
// compare the local file with the table in force, and `compliance accept`
// refuses without writing a marker: the guard belongs to the leader.
func TestComplianceFollower(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "c.csv")
	os.WriteFile(csv, []byte("user0@corp.example.com,DEV0,noncompliant\n"), 0o600)
	cfg := complianceConfig(t, dir, "{type: file, path: "+csv+"}")
	acc, st := sources.GuardPaths("file", csv, "", "")
	src, err := sources.NewFileGuarded(csv, sources.Guard{AcceptPath: acc, StatusPath: st})
	if err != nil {
		t.Fatal(err)
	}
	src.Share(sources.FileShare{})
	leaderCSV := filepath.Join(dir, "leader.csv")
	os.WriteFile(leaderCSV, []byte("user0@corp.example.com,DEV0,compliant\nuser1@corp.example.com,DEV1,compliant\n"), 0o600)
	leader, _ := sources.NewFile(leaderCSV)
	table, err := leader.Export()
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Import(table); err != nil || src.Len() != 2 {
		t.Fatalf("import: %v, %d entries", err, src.Len())
	}
	code, out, errOut := runCmd(t, nil, "compliance", "status", "--config", cfg)
	if code != 0 || !strings.Contains(out, "in force: 2 entries") || !strings.Contains(out, "another node holds the compliance file lease") ||
		!strings.Contains(out, "from its "+leaderCSV) || !strings.Contains(out, "(not read by this node") {
		t.Fatalf("status on a follower: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, nil, "compliance", "accept", "--config", cfg)
	if code != 1 || !strings.Contains(out+errOut, "nothing to accept on this node") {
		t.Fatalf("accept on a follower: %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(acc); !os.IsNotExist(err) {
		t.Fatalf("accept on a follower wrote a marker: %v", err)
	}
}
