package config

import (
	"strings"
	"testing"
)

// TestAdminTokensAndDigest: admin.tokens and admin.digest are checked with
// file:line and a hint; a good section parses.
func TestAdminTokensAndDigest(t *testing.T) {
	good := minimal + `admin:
  address: "0.0.0.0:9090"
  tokens:
    - {name: grafana, file: /etc/easgate/grafana.token, role: read}
    - {name: helpdesk, file: /etc/easgate/helpdesk.token, role: operate}
  digest:
    smtp: relay.corp.example.com:587
    username: easgate
    password_file: /etc/easgate/smtp.password
    from: "easgate <easgate@corp.example.com>"
    to: [it@corp.example.com]
    interval: 30m
`
	cfg, err := Parse("a.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Admin.Tokens) != 2 || cfg.Admin.Tokens[1].Role != RoleOperate || cfg.Admin.Digest.Interval.D().Minutes() != 30 {
		t.Fatalf("admin %+v", cfg.Admin)
	}
	for _, w := range cfg.Warnings() {
		if strings.Contains(w.Error(), "admin.address") {
			t.Errorf("tokens are set, yet: %v", w)
		}
	}
	for _, tc := range []struct{ admin, want string }{
		{"  tokens:\n    - {name: a, file: /x, role: root}\n", "a.yaml:10:33: admin.tokens[0].role: invalid value \"root\""},
		{"  tokens:\n    - {file: /x, role: read}\n", "admin.tokens[0].name: a token needs a name"},
		{"  token_file: /y\n  tokens:\n    - {name: admin, file: /x, role: read}\n", `duplicate token name "admin"`},
		{"  tokens:\n    - {name: a, role: read}\n", "admin.tokens[0].file: a token needs a file"},
		{"  digest:\n    smtp: relay\n    from: a@b.c\n    to: [x@y.z]\n", `admin.digest.smtp: "relay" is not host:port`},
		{"  digest:\n    smtp: relay:25\n    from: nobody\n    to: [x@y.z]\n", `admin.digest.from: from "nobody"`},
		{"  digest:\n    smtp: relay:25\n    from: a@b.c\n", "the digest needs at least one recipient"},
		{"  digest:\n    smtp: relay:25\n    from: a@b.c\n    to: [x@y.z, not an address]\n", "admin.digest.to[1]"},
		{"  digest:\n    smtp: relay:25\n    tls: none\n    username: u\n    password_file: /p\n    from: a@b.c\n    to: [x@y.z]\n", "unencrypted"},
		{"  digest:\n    smtp: relay:25\n    tls: maybe\n    from: a@b.c\n    to: [x@y.z]\n", "admin.digest.tls"},
		{"  digest:\n    smtp: relay:25\n    username: u\n    from: a@b.c\n    to: [x@y.z]\n", "SMTP AUTH needs a user and a password"},
		{"  digest:\n    smtp: relay:25\n    from: a@b.c\n    to: [x@y.z]\n    interval: 10ms\n", "interval 10ms is too short"},
		{"  digest:\n    to: [x@y.z]\n", "the digest has recipients but no SMTP relay"},
	} {
		_, err := Parse("a.yaml", []byte(minimal+"admin:\n"+tc.admin))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.admin, err, tc.want)
		}
	}
}
