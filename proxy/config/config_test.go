package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden files")

const examplePath = "../../examples/easgate.yaml"

func TestExampleParses(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("easgate.yaml", data)
	if err != nil {
		t.Fatalf("the shipped example does not parse:\n%v", err)
	}
	if w := cfg.Warnings(); len(w) > 0 {
		t.Errorf("the shipped example has warnings:\n%v", w)
	}
	got, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "example.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("decoded example differs from %s (go test -update rewrites it after review)\n%s", golden, got)
	}
	// Spot checks, so a wrong golden file cannot hide a decoding bug.
	if cfg.Upstreams.Timeouts.LongPollMax.D() != 3660*time.Second || cfg.Limits.MaxRequestBody != 64*MiB ||
		cfg.Policy.Rules[2].Match.UserAgent[0] != "Thunderbird ActiveSync*" || cfg.Policy.Rules[2].Mode != ModeReport ||
		cfg.Policy.Compliance.Cache.LookupTimeout.D() != 200*time.Millisecond ||
		!reflect.DeepEqual(cfg.Policy.Groups["executives"], []string{"ceo@corp.example.com", "cfo@corp.example.com"}) {
		t.Errorf("example decoded wrongly: %+v", cfg)
	}
	// The position of "    request: 120s" under upstreams.timeouts, found
	// in the file itself so that adding keys above it keeps the test true.
	wantLine := 0
	for i, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "    request: ") {
			wantLine = i + 1
			break
		}
	}
	if line, col, ok := cfg.Position("upstreams.timeouts.request"); !ok || wantLine == 0 || line != wantLine || col != 14 {
		t.Errorf("Position(upstreams.timeouts.request) = %d:%d %v, want %d:14", line, col, ok, wantLine)
	}
}

const minimal = `listen:
  tls:
    certificate: /etc/easgate/gw.pem
    key: /etc/easgate/gw.key
upstreams:
  servers:
    - url: https://cas1.example.com
`

func TestDefaultsFillUnsetKeys(t *testing.T) {
	cfg, err := Parse("min.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Source = "min.yaml"
	want.Listen.TLS.Certificate = "/etc/easgate/gw.pem"
	want.Listen.TLS.Key = "/etc/easgate/gw.key"
	want.Upstreams.Servers = []Server{{URL: "https://cas1.example.com"}}
	want.pos, want.warnings = cfg.pos, cfg.warnings
	if !reflect.DeepEqual(cfg, want) {
		g, _ := json.MarshalIndent(cfg, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("minimal config is not Default() plus its keys\n got %s\nwant %s", g, w)
	}
	if len(cfg.Warnings()) != 0 {
		t.Errorf("unexpected warnings: %v", cfg.Warnings())
	}
}

func TestDefaultIsCompleteExceptServersAndCertificate(t *testing.T) {
	_, err := Parse("x.yaml", []byte("log:\n  level: info\n"))
	want := "x.yaml:1:1: listen.tls.certificate: missing: TLS needs a server certificate (hint: set listen.tls.certificate and key, or pfx; or plain_http: true behind a TLS load balancer)\n" +
		"x.yaml:1:1: upstreams.servers: at least one server is required (hint: add a list entry such as \"- url: https://cas1.corp.example.com\")"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestWarnings(t *testing.T) {
	src := `listen:
  plain_http: true
  address: "127.0.0.1:8080"
upstreams:
  servers:
    - url: http://cas1.example.com
    - url: http://127.0.0.1:8081
  tls:
    insecure_skip_verify: true
  identity_header: X-EASGate-User
auth:
  mode: either
policy:
  users:
    alice@corp.example.com: {blocked_devices: [X1]}
  rules:
    - name: samsung
      match: {device_model: "SM-G9.*"}
      access: block
admin:
  address: ":9090"
`
	cfg, err := Parse("w.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"w.yaml:2:15: listen.plain_http: serving plain HTTP: passwords cross the network unencrypted (hint: run easgate like this only behind a load balancer that terminates TLS)",
		"w.yaml:6:12: upstreams.servers[0].url: traffic to this server is not encrypted (hint: use https:// so passwords are not sent in clear to the CAS)",
		"w.yaml:9:27: upstreams.tls.insecure_skip_verify: the CAS certificates are not verified: anyone on the path can read passwords and mail (hint: set upstreams.tls.trusted_cas to the CA of the CAS certificates instead)",
		"w.yaml:12:9: auth.mode: mode either behaves like credentials while client certificates are off (hint: set listen.tls.client_certificates.mode to optional, or auth.mode to credentials)",
		"w.yaml:15:5: policy.users: auth.domains is not set: users compare exactly as written, so CORP\\alice, alice and alice@corp.example.com are three different users for these lists (hint: set auth.domains (e.g. [corp.example.com]) so that every spelling of a user is one name)",
		"w.yaml:18:29: policy.rules[0].match.device_model: looks like a regular expression, but regex is false: it is matched literally (hint: set regex: true in this match, or remove the regular-expression characters)",
		"w.yaml:21:12: admin.address: without a token the admin listener answers loopback clients only (hint: set admin.tokens (or admin.token_file), or listen on 127.0.0.1)",
	}
	var got []string
	for _, w := range cfg.Warnings() {
		got = append(got, w.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings\n got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func TestValidVariants(t *testing.T) {
	tests := []struct{ name, yaml string }{
		{"pfx and sni", `listen:
  tls:
    pfx: /etc/easgate/gw.pfx
    pfx_password_file: /etc/easgate/gw.pass
    min_version: "1.3"
    extra_certificates:
      - {certificate: /etc/easgate/b.pem, key: /etc/easgate/b.key}
      - {pfx: /etc/easgate/c.pfx}
upstreams:
  servers: [{url: "https://cas1.example.com:8443", name: cas1}]
`},
		{"certificate auth", `listen:
  tls:
    certificate: /a.pem
    key: /a.key
    client_certificates:
      mode: required
      trusted_cas: /ca.pem
      revocation: {crl_files: [/a.crl], ocsp: hard, ocsp_timeout: 2s}
upstreams:
  servers: [{url: "https://cas1.example.com"}]
  identity_header: X-EASGate-User
auth: {mode: certificate, certificate_identity: email, device_binding: enforce}
`},
		{"graph with certificate and anchors", `listen: {plain_http: true, address: ":8080"}
upstreams:
  servers: [{url: "http://127.0.0.1:8081"}]
policy:
  groups:
    staff: &staff [a@example.com, 'CORP\bob']
  rules:
    - name: staff-ios
      match: {users: *staff, os_family: ios, auth_method: [certificate, none], os_version_below: "16.0", client: [ios-mail, unknown]}
      access: allow
    - name: regex
      match: {user_agent: "^Apple-iPhone\\d", regex: true}
      access: quarantine
  compliance:
    require_for: [staff, all, carol@example.com]
    exclude: ['CORP\bob']
    source:
      type: graph
      tenant_id: contoso.onmicrosoft.com
      client_id: 00000000-0000-0000-0000-000000000000
      client_certificate: /g.pem
      client_key: /g.key
      max_drop: 12.5 %
state: {path: ""}
admin: {address: ""}
log: {level: debug, format: console, access_log: /var/log/easgate/access.log}
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("v.yaml", []byte(tc.yaml))
			if err != nil || cfg == nil {
				t.Fatalf("Parse: %v", err)
			}
			if src := cfg.Policy.Compliance.Source; src.Type == SourceGraph && src.MaxDrop != 12.5 {
				t.Errorf("max_drop = %v, want 12.5%%", src.MaxDrop)
			}
		})
	}
}

func TestAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("listen: {plain_http: true}\nupstreams: {servers: [{url: \"http://127.0.0.1:1\"}]}\npolicy:\n  groups:\n    g: &l [")
	for i := 0; i < 200; i++ {
		b.WriteString("a@b.c, ")
	}
	b.WriteString("z@b.c]\n  users:\n    u@b.c: &u {allowed_devices: *l, blocked_devices: *l}\n  rules: [\n")
	b.WriteString("    &r {name: r, access: allow, match: {users: *l, device_type: *l, device_model: *l, user_agent: *l}},\n")
	for i := 0; i < 2000; i++ {
		b.WriteString("    *r,\n")
	}
	b.WriteString("  ]\n")
	cfg, err := Parse("bomb.yaml", []byte(b.String()))
	if cfg != nil || err == nil {
		t.Fatal("alias bomb parsed")
	}
	want := "bomb.yaml:5:1391: policy.rules[98].match.device_model[197]: the document expands to too many values (aliases nest too deeply) (hint: write values out instead of repeating large anchors)"
	if errs := err.(Errors); errs[len(errs)-1].Error() != want {
		t.Errorf("got %v\nwant last error %s", err, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "easgate.yaml")
	if err := os.WriteFile(p, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p)
	if err != nil || cfg.Source != p {
		t.Fatalf("Load: %v %v", cfg, err)
	}
	missing := filepath.Join(dir, "nope.yaml")
	_, err = Load(missing)
	if want := missing + ": cannot read the file: no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# x\n"), MaxFileSize/4+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err = Load(big); err == nil || !strings.Contains(err.Error(), "larger than the 4194304-byte limit") {
		t.Errorf("got %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "a.yaml", Line: 12, Column: 7, Path: "upstreams.timeouts.request", Msg: `invalid duration "12 parsecs"`, Hint: "use Go syntax such as 90s, 15m"},
			`a.yaml:12:7: upstreams.timeouts.request: invalid duration "12 parsecs" (hint: use Go syntax such as 90s, 15m)`},
		{Error{File: "a.yaml", Line: 3, Column: 1, Msg: "tab"}, "a.yaml:3:1: tab"},
		{Error{File: "a.yaml", Msg: "cannot read"}, "a.yaml: cannot read"},
		{Error{Path: "x", Msg: "m"}, "x: m"},
		{Error{Line: 2, Msg: "m"}, "2: m"},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	if (Errors{}).Err() != nil || (Errors{{Msg: "x"}}).Err() == nil {
		t.Error("Errors.Err is wrong")
	}
}

func TestErrorAt(t *testing.T) {
	cfg, err := Parse("e.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{"listen.tls.key", "e.yaml:4:10: listen.tls.key: bad key (hint: h)"},
		{"listen.tls.pfx", "e.yaml:2:3: listen.tls.pfx: bad key (hint: h)"},
		{"upstreams.servers[0].url", "e.yaml:7:12: upstreams.servers[0].url: bad key (hint: h)"},
		{"admin.token_file", "e.yaml:1:1: admin.token_file: bad key (hint: h)"},
	}
	for _, tc := range tests {
		if got := cfg.ErrorAt(tc.path, "bad key", "h").Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// TestSecretsNeverEchoed: credentials in URLs, inline secrets under unknown
// keys and the contents of secret files never reach a message.
func TestSecretsNeverEchoed(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "graph.secret")
	if err := os.WriteFile(secret, []byte("hunter2"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `listen: {plain_http: true}
upstreams:
  servers: [{url: "https://admin:hunter2@cas1.example.com/x?y"}, {url: "ftp://u:hunter2@h"}]
policy:
  compliance:
    require_for: [all]
    source:
      type: graph
      tenant_id: t.example.com
      client_id: 00000000-0000-0000-0000-000000000000
      client_secret: hunter2
      client_secret_file: ` + secret + `
  quarantine:
    admin_webhook: "http://x:hunter2@hooks.example.com:99999"
state: {url: "postgres://easgate:hunter2@db/easgate"}
`
	_, err := Parse("s.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a secret leaked into the errors:\n%v", err)
	}
	cfg, err := Parse("s.yaml", []byte(strings.Replace(strings.Replace(src, "client_secret: hunter2\n", "", 1), "admin:hunter2@", "", 1)))
	if err == nil {
		t.Fatalf("expected errors, got %v", cfg)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a secret leaked into the errors:\n%v", err)
	}
	if got := show("https://u:hunter2@h/p"); got != `"https://***@h/p"` {
		t.Errorf("show = %s", got)
	}
}
