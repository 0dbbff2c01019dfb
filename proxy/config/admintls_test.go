package config

import (
	"strings"
	"testing"
	"time"
)

// TestAdminTLSAndConsole: admin.tls takes one certificate source, client
// certificates need TLS and CAs, and the console's session timeout has
// bounds; every problem is positioned.
func TestAdminTLSAndConsole(t *testing.T) {
	for _, tc := range []struct{ name, admin, want string }{
		{"own certificate", "  tls:\n    certificate: /a.pem\n    key: /a.key\n", ""},
		{"gateway certificate with clients", "  tls:\n    use_gateway_certificate: true\n    client_cas: /ca.pem\n    clients:\n      - {name: alice@corp.example.com, role: operate}\n", ""},
		{"console timeout", "  console:\n    session_timeout: 5s\n", ""},
		{"both sources", "  tls:\n    use_gateway_certificate: true\n    certificate: /a.pem\n    key: /a.key\n", "a.yaml:10:30: admin.tls.use_gateway_certificate: two certificates"},
		{"key missing", "  tls:\n    certificate: /a.pem\n", "admin.tls.certificate: the admin listener needs a certificate and its key"},
		{"clients without TLS", "  tls:\n    client_cas: /ca.pem\n", "admin client certificates need TLS"},
		{"clients without CAs", "  tls:\n    use_gateway_certificate: true\n    clients:\n      - {name: a, role: read}\n", "admin.tls.clients need client_cas"},
		{"bad role", "  tls:\n    use_gateway_certificate: true\n    client_cas: /ca.pem\n    clients:\n      - {name: a, role: root}\n", "admin.tls.clients[0].role"},
		{"duplicate client", "  tls:\n    use_gateway_certificate: true\n    client_cas: /ca.pem\n    clients:\n      - {name: A, role: read}\n      - {name: a, role: read}\n", `duplicate client "a"`},
		{"timeout too short", "  console:\n    session_timeout: 1s\n", "admin.console.session_timeout: session_timeout 1s is out of range"},
		{"timeout too long", "  console:\n    session_timeout: 48h\n", "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("a.yaml", []byte(minimal+"admin:\n"+tc.admin))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (%+v), want %q", err, cfg, tc.want)
			}
		})
	}
	cfg, err := Parse("a.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.TLS.Enabled() || cfg.Admin.Console.Disabled || cfg.Admin.Console.SessionTimeout.D() != 30*time.Minute {
		t.Fatalf("admin defaults %+v", cfg.Admin)
	}
	// Tokens on a network address without TLS: a warning, not an error.
	for _, tc := range []struct {
		admin string
		warn  bool
	}{
		{"  address: \"0.0.0.0:9090\"\n  token_file: /t\n", true},
		{"  address: \"0.0.0.0:9090\"\n  token_file: /t\n  tls:\n    use_gateway_certificate: true\n", false},
		{"  address: \"127.0.0.1:9090\"\n  token_file: /t\n", false},
	} {
		cfg, err := Parse("w.yaml", []byte(minimal+"admin:\n"+tc.admin))
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Contains(cfg.Warnings().Error(), "cross the network unencrypted")
		if got != tc.warn {
			t.Errorf("%q: warning %v, want %v (%v)", tc.admin, got, tc.warn, cfg.Warnings())
		}
	}
	plain := strings.Replace(minimal, "  tls:\n    certificate: /etc/easgate/gw.pem\n    key: /etc/easgate/gw.key\n", "  plain_http: true\n", 1)
	if _, err := Parse("p.yaml", []byte(plain+"admin:\n  tls:\n    use_gateway_certificate: true\n")); err == nil || !strings.Contains(err.Error(), "no certificate to share") {
		t.Fatalf("plain_http with the gateway's certificate: %v", err)
	}
}
