package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// brokenConfigs maps each file in testdata/broken to the exact messages
// Parse must report for it, in order. Several files hold many problems at
// once to prove that every problem is reported, not only the first.
var brokenConfigs = []struct {
	file string
	want []string
}{
	{"auth-limits.yaml", []string{
		"auth-limits.yaml:8:20: upstreams.identity_header: \"Authorization\" is a header the proxy or Exchange already uses (hint: choose your own name such as X-EASGate-User)",
		"auth-limits.yaml:10:19: auth.device_binding: invalid value \"strict\" (hint: use one of: off, report, enforce)",
		"auth-limits.yaml:11:18: auth.pass_schemes[0]: Basic is not a pass-through scheme (hint: Basic is always accepted; list only other schemes such as Bearer or Negotiate)",
		"auth-limits.yaml:11:25: auth.pass_schemes[1]: invalid value \"Kerberos\" (hint: use one of: Bearer, Negotiate, NTLM)",
		"auth-limits.yaml:13:15: auth.lockout.failures: must be at least 0, got -1",
		"auth-limits.yaml:15:19: auth.lockout.spray_window: must be positive, got 0s (hint: give a duration greater than zero, such as 30s)",
		"auth-limits.yaml:16:20: auth.lockout.user_failures: must be at most 1000, got 5000",
		"auth-limits.yaml:18:12: admin.address: invalid address \"localhost\" (hint: write host:port, such as \":443\" or \"127.0.0.1:9090\")",
		"auth-limits.yaml:20:11: log.format: invalid value \"text\" (hint: use one of: json, console)",
		"auth-limits.yaml:21:15: log.access_log: must not be empty (hint: use stdout, stderr, off or a file path)",
	}},
	{"domains.yaml", []string{
		`domains.yaml:2:34: listen.trusted_proxies[1]: invalid trusted proxy "not-an-address" (hint: write an address (10.0.0.5) or a prefix (10.0.0.0/24))`,
		`domains.yaml:2:50: listen.trusted_proxies[2]: invalid trusted proxy "10.0.0.300" (hint: write an address (10.0.0.5) or a prefix (10.0.0.0/24))`,
		`domains.yaml:10:31: auth.domains[1]: domain bad domain is not a DNS domain name (letters, digits, '-' and '.') (hint: write a DNS domain such as corp.example.com)`,
	}},
	{"domains-users.yaml", []string{
		`domains-users.yaml:13:16: policy.groups.partners[0]: user "bob@partner.example.org": user of a domain not in auth.domains (hint: write the user as user@domain with a domain of auth.domains, or add the domain there)`,
		`domains-users.yaml:13:58: policy.groups.partners[2]: user "EVIL\\dave": user of a domain not in auth.domains (hint: write the user as user@domain with a domain of auth.domains, or add the domain there)`,
		`domains-users.yaml:16:7: policy.users["alice@evil.example.com"]: user "alice@evil.example.com": user of a domain not in auth.domains (hint: write the user as user@domain with a domain of auth.domains, or add the domain there)`,
		`domains-users.yaml:21:51: policy.rules[0].match.users[1]: user "mallory@other.example.com": user of a domain not in auth.domains (hint: write the user as user@domain with a domain of auth.domains, or add the domain there)`,
	}},
	{"lockout-user.yaml", []string{
		"lockout-user.yaml:12:13: auth.lockout.window: must be positive, got 0s (hint: give a duration greater than zero, such as 30s)",
		"lockout-user.yaml:13:14: auth.lockout.backoff: must be positive, got 0s (hint: give a duration greater than zero, such as 30s)",
	}},
	{"client-certs-no-ca.yaml", []string{
		"client-certs-no-ca.yaml:5:5: listen.tls.client_certificates.trusted_cas: missing: required when mode is required (hint: name the PEM file of the CAs that issue device certificates)",
	}},
	{"client-certs.yaml", []string{
		"client-certs.yaml:6:13: listen.tls.client_certificates.mode: invalid value \"optinal\" (hint: did you mean \"optional\"?)",
		"client-certs.yaml:8:15: listen.tls.client_certificates.revocation.ocsp: invalid value \"maybe\" (hint: use one of: off, soft, hard)",
		"client-certs.yaml:9:23: listen.tls.client_certificates.revocation.ocsp_timeout: must be positive, got 0s (hint: give a duration greater than zero, such as 30s)",
		"client-certs.yaml:15:25: auth.certificate_identity: invalid value \"cn\" (hint: use one of: upn, email, subject_cn)",
	}},
	{"comments-only.yaml", []string{
		"comments-only.yaml:1:1: the file is empty (hint: start from examples/easgate.yaml)",
	}},
	{"compliance-graph.yaml", []string{
		"compliance-graph.yaml:11:5: policy.compliance.source.tenant_id: missing: required with type graph (hint: the Entra ID tenant GUID or its primary domain)",
		"compliance-graph.yaml:11:5: policy.compliance.source.client_secret_file: missing: graph needs a client secret or a client certificate (hint: set client_secret_file, or client_certificate and client_key)",
		"compliance-graph.yaml:13:18: policy.compliance.source.client_id: invalid client id \"not-a-guid\" (hint: the application (client) id is a GUID such as 00000000-0000-0000-0000-000000000000)",
		"compliance-graph.yaml:14:13: policy.compliance.source.path: not used with type graph (hint: remove it, or change type)",
		"compliance-graph.yaml:15:18: policy.compliance.source.graph_url: must be an https URL (hint: use https://)",
		"compliance-graph.yaml:16:16: policy.compliance.source.retries: must be between 0 and 10, got 20",
		"compliance-graph.yaml:19:21: policy.compliance.cache.negative_ttl: must be positive, got -1m0s (hint: give a duration greater than zero, such as 30s)",
		"compliance-graph.yaml:20:23: policy.compliance.cache.refresh_before: refresh_before 5m0s is not shorter than ttl 1m0s (hint: make it shorter than ttl)",
		"compliance-graph.yaml:21:20: policy.compliance.cache.max_entries: must be at least 1, got 0",
		"compliance-graph.yaml:22:23: policy.compliance.cache.on_unavailable: invalid value \"deny\" (hint: use one of: allow, block, quarantine)",
	}},
	{"compliance-http.yaml", []string{
		"compliance-http.yaml:11:5: policy.compliance.source.url: missing: required with type http (hint: the verdict endpoint, such as https://mdm.corp.example.com/api/eas-verdict)",
		"compliance-http.yaml:11:5: policy.compliance.source.client_key: missing: required because client_certificate is set (hint: set client_key next to client_certificate)",
		"compliance-http.yaml:13:18: policy.compliance.source.tenant_id: not used with type http (hint: remove it, or change type)",
		"compliance-http.yaml:15:16: policy.compliance.source.timeout: must be positive, got 0s (hint: give a duration greater than zero, such as 30s)",
	}},
	{"compliance-max-drop-http.yaml", []string{
		"compliance-max-drop-http.yaml:14:17: policy.compliance.source.max_drop: not used with type http (hint: remove it, or change type)",
	}},
	{"compliance-max-drop-range.yaml", []string{
		"compliance-max-drop-range.yaml:16:17: policy.compliance.source.max_drop: must be above 0% and at most 100%, got 150% (hint: give a share above 0% and at most 100%, such as 50%; 100% holds back only empty or unparsable content)",
	}},
	{"compliance-max-drop.yaml", []string{
		"compliance-max-drop.yaml:14:17: policy.compliance.source.max_drop: percentage \"0.5\" has no % sign (hint: write 50% for a share of 0.5)",
	}},
	{"compliance-missing.yaml", []string{
		"compliance-missing.yaml:9:3: policy.compliance.source.type: missing: require_for is set, so a compliance source is required (hint: set type: file, http or graph)",
		"compliance-missing.yaml:13:13: policy.quarantine.notice.from: invalid mail address \"IT Service Desk\" (hint: write an address such as \"IT Service Desk <it@corp.example.com>\")",
		"compliance-missing.yaml:14:19: policy.quarantine.notice.enroll_url: the URL must start with https:// or http://, got \"portal.example.com\" (hint: write a URL such as https://host.example.com)",
		"compliance-missing.yaml:15:20: policy.quarantine.admin_webhook: the URL must not contain credentials (hint: remove user:password@ from the URL; credentials never go in URLs)",
		"compliance-missing.yaml:17:8: state.url: the URL contains a password (hint: put the password in state.password_file (or PGPASSWORD / ~/.pgpass) and remove it from the URL)",
	}},
	{"duplicate-key.yaml", []string{
		"duplicate-key.yaml:6:3: listen.address: duplicate key (first on line 2) (hint: remove one of them)",
		"duplicate-key.yaml:13:5: policy.groups.staff: duplicate key \"staff\" (first on line 12) (hint: remove one of them)",
	}},
	{"durations.yaml", []string{
		"durations.yaml:9:15: upstreams.health_check.interval: duration \"30\" has no unit (hint: add a unit, for example 30s)",
		"durations.yaml:10:14: upstreams.health_check.timeout: must be positive, got -5s (hint: give a duration greater than zero, such as 30s)",
		"durations.yaml:12:14: upstreams.timeouts.connect: must be positive, got 0s (hint: give a duration greater than zero, such as 30s)",
		"durations.yaml:13:20: upstreams.timeouts.long_poll_max: must be between 1m0s and 2h0m0s, got 3h0m0s (hint: Exchange holds Ping for up to 3540s; use about 3660s (between 60s and 2h))",
		"durations.yaml:14:12: upstreams.timeouts.drain: invalid duration \"1d\" (hint: write days in hours, for example 24h)",
		"durations.yaml:16:20: policy.discovery_period: missing value, expected a duration (hint: give a value or remove the key)",
	}},
	{"empty.yaml", []string{
		"empty.yaml:1:1: the file is empty (hint: start from examples/easgate.yaml)",
	}},
	{"groups.yaml", []string{
		"groups.yaml:11:10: policy.groups.all: \"all\" is reserved: it means every user (hint: choose another name)",
		"groups.yaml:14:43: policy.users[\"alice@example.com\"].allowed_devices[1]: invalid DeviceId \"bad,id\" (hint: copy the DeviceId from the request log; it has letters and digits only)",
		"groups.yaml:15:25: policy.users[\"alice@example.com\"].blocked_devices[0]: device \"ApplDMPL69PZF18P\" is both allowed and blocked (hint: remove it from one of the lists)",
		"groups.yaml:18:24: policy.rules[0].match.groups[0]: unknown group \"executive\" (hint: did you mean \"executives\"?)",
		"groups.yaml:18:35: policy.rules[0].match.groups[1]: unknown group \"board\" (hint: define it under policy.groups)",
		"groups.yaml:21:24: policy.compliance.require_for[1]: unknown group \"contractors\" (hint: define it under policy.groups, or write a user with its domain (user@corp.example.com))",
		"groups.yaml:22:15: policy.compliance.exclude[0]: unknown group \"executivs\" (hint: did you mean \"executives\"?)",
	}},
	{"many-errors.yaml", []string{
		"many-errors.yaml:6:18: listen.tls.min_version: invalid value \"1.1\" (hint: did you mean \"1.2\"?)",
		"many-errors.yaml:11:14: upstreams.timeouts.request: invalid duration \"12 parsecs\" (hint: use Go syntax such as 90s, 15m)",
		"many-errors.yaml:12:5: upstreams.timeouts.longpoll_max: unknown key (hint: did you mean \"long_poll_max\"?)",
		"many-errors.yaml:14:21: limits.max_request_body: ambiguous size unit in \"64M\" (hint: write KiB/MiB/GiB (1024-based) or KB/MB/GB (1000-based))",
		"many-errors.yaml:16:9: auth.mode: invalid value \"certficate\" (hint: did you mean \"certificate\"?)",
		"many-errors.yaml:18:10: log.level: invalid value \"verbose\" (hint: use one of: debug, info, warn, error)",
	}},
	{"merge-key.yaml", []string{
		"merge-key.yaml:1:1: defaults: unknown key (hint: known keys here: admin, auth, identify, limits, listen, log, policy, state, upstreams)",
		"merge-key.yaml:5:5: listen.tls: YAML merge keys (<<) are not supported (hint: write the keys out instead of merging an anchor)",
	}},
	{"misplaced-keys.yaml", []string{
		"misplaced-keys.yaml:5:5: listen.tls.plain_http: unknown key (hint: \"plain_http\" belongs under \"listen\" (listen.plain_http))",
		"misplaced-keys.yaml:9:3: upstreams.Health-Check: unknown key (hint: did you mean \"health_check\"?)",
		"misplaced-keys.yaml:13:5: policy.compliance.source.client_secret_file: missing: graph needs a client secret or a client certificate (hint: set client_secret_file, or client_certificate and client_key)",
		"misplaced-keys.yaml:17:7: policy.compliance.source.client_secret: unknown key (hint: did you mean \"client_secret_file\"? secrets are read from a file, never written in the config)",
		"misplaced-keys.yaml:19:3: policy.listen: unknown key (hint: \"listen\" is a top-level section, not part of \"policy\")",
	}},
	{"multi-doc.yaml", []string{
		"multi-doc.yaml:3:1: only one YAML document is allowed (hint: remove the \"---\" line and everything after it)",
	}},
	{"no-servers.yaml", []string{
		"no-servers.yaml:5:1: upstreams.servers: at least one server is required (hint: add a list entry such as \"- url: https://cas1.corp.example.com\")",
		"no-servers.yaml:7:11: upstreams.health_check.path: invalid path \"healthcheck.htm\" (hint: an absolute path such as /Microsoft-Server-ActiveSync/healthcheck.htm)",
	}},
	{"plain-http.yaml", []string{
		"plain-http.yaml:3:15: listen.plain_http: plain_http is true but listen.tls has a certificate (hint: remove plain_http to serve TLS, or remove the listen.tls certificates)",
		"plain-http.yaml:8:13: listen.tls.client_certificates.mode: client certificates cannot be used with plain_http (hint: client certificates need TLS: set mode: off, or remove plain_http)",
	}},
	{"root-list.yaml", []string{
		"root-list.yaml:1:1: the file must be a mapping of sections, not a list (hint: the top level holds sections such as listen:, upstreams:, policy:)",
	}},
	{"rules.yaml", []string{
		"rules.yaml:11:26: policy.rules[0].match.os_family: unknown OS family \"iOSS\" (hint: did you mean \"iOS\"?)",
		"rules.yaml:11:50: policy.rules[0].match.os_version_below: invalid version \"sixteen\" (hint: write a version such as \"16.0\" or \"6.1.3\", quoted)",
		"rules.yaml:13:13: policy.rules[1].name: rule name \"old-ios\" is already used by policy.rules[0] (hint: rename one of them)",
		"rules.yaml:14:23: policy.rules[1].match.client: unknown client \"outlook-mobil\" (hint: did you mean \"outlook-mobile\"?)",
		"rules.yaml:16:7: policy.rules[2].name: missing: a rule needs a name (hint: every rule needs a name for logs, such as block-old-ios)",
		"rules.yaml:17:15: policy.rules[2].access: invalid value \"deny\" (hint: use one of: allow, block, quarantine)",
		"rules.yaml:18:7: policy.rules[3].match: missing: a rule needs at least one match key (hint: add a condition such as match: {client: outlook-mobile})",
		"rules.yaml:20:7: policy.rules[4].access: missing: a rule needs access (hint: add access: allow, block or quarantine)",
		"rules.yaml:22:24: policy.rules[4].match.device_model[0]: invalid regular expression: missing closing ]: `[0-` (hint: use Go (RE2) syntax)",
		"rules.yaml:24:13: policy.rules[4].mode: invalid value \"audit\" (hint: use one of: enforce, report)",
		"rules.yaml:26:36: policy.rules[5].match.auth_method[1]: invalid value \"kerberos\" (hint: use one of: certificate, basic, passthrough, none)",
		"rules.yaml:26:82: policy.rules[5].match.os_family: a rule matches one OS family, got 2 (hint: write one rule per OS family)",
		"rules.yaml:29:33: policy.rules[6].match.os_version_below: os_version_below needs os_family: versions of different systems do not compare (hint: add os_family, such as {os_family: iOS, os_version_below: \"16.0\"})",
	}},
	{"sizes.yaml", []string{
		"sizes.yaml:9:21: limits.max_request_body: invalid size \"lots\" (hint: use bytes or a unit such as 512KiB, 64MiB, 1GiB)",
		"sizes.yaml:10:21: limits.max_header_bytes: must be between 4KiB and 1MiB, got 1KiB (hint: phones send Negotiate headers of several KiB; 16KiB is a good value)",
		"sizes.yaml:11:20: limits.max_policy_body: 128MiB is larger than max_request_body 64MiB (hint: make it at most limits.max_request_body)",
		"sizes.yaml:12:21: limits.stream_threshold: size \"99999999999999999999\" is too large",
	}},
	{"syntax-flow.yaml", []string{
		"syntax-flow.yaml:2:3: YAML syntax error: did not find expected ',' or '}' (hint: the list or mapping that starts here is not closed or not indented consistently; check the lines below it)",
	}},
	{"syntax-indent.yaml", []string{
		"syntax-indent.yaml:2:3: YAML syntax error: did not find expected key (hint: the list or mapping that starts here is not closed or not indented consistently; check the lines below it)",
	}},
	{"syntax.yaml", []string{
		"syntax.yaml:2:3: YAML syntax error: found unexpected end of stream (hint: check indentation, colons and quotes on this line)",
	}},
	{"tabs.yaml", []string{
		"tabs.yaml:2:1: tab character in indentation (hint: YAML indents with spaces only; replace the tab with spaces)",
		"tabs.yaml:5:1: tab character in indentation (hint: YAML indents with spaces only; replace the tab with spaces)",
	}},
	{"tls-conflicts.yaml", []string{
		"tls-conflicts.yaml:4:10: listen.tls.pfx: give either certificate and key, or pfx, not both (hint: remove pfx, or remove certificate and key)",
		"tls-conflicts.yaml:6:9: listen.tls.extra_certificates[0].certificate: missing: required because key is set (hint: set certificate next to key)",
		"tls-conflicts.yaml:7:9: listen.tls.extra_certificates[1].certificate: missing: a certificate is required (hint: set certificate and key (PEM), or pfx (PKCS#12))",
		"tls-conflicts.yaml:7:28: listen.tls.extra_certificates[1].pfx_password_file: only used with pfx (hint: remove it, or set pfx)",
	}},
	{"tls-missing.yaml", []string{
		"tls-missing.yaml:1:1: listen.tls.certificate: missing: TLS needs a server certificate (hint: set listen.tls.certificate and key, or pfx; or plain_http: true behind a TLS load balancer)",
		"tls-missing.yaml:2:12: listen.address: invalid address \"443\" (hint: write \":443\" to listen on every address)",
	}},
	{"unknown-anchor.yaml", []string{
		"unknown-anchor.yaml:7:12: YAML syntax error: unknown anchor 'cas' referenced (hint: define the anchor with &cas before using it)",
	}},
	{"unknown-key.yaml", []string{
		"unknown-key.yaml:3:3: listen.adress: unknown key (hint: did you mean \"address\"?)",
	}},
	{"upstream-urls.yaml", []string{
		"upstream-urls.yaml:7:12: upstreams.servers[0].url: the URL must not have a path, query or fragment (hint: give only scheme://host[:port]; easgate forwards the request's own path)",
		"upstream-urls.yaml:8:12: upstreams.servers[1].url: the URL must start with https:// or http://, got \"ftp://cas2.example.com\" (hint: write a URL such as https://host.example.com)",
		"upstream-urls.yaml:9:12: upstreams.servers[2].url: the URL must not contain credentials (hint: remove user:password@ from the URL; credentials never go in URLs)",
		"upstream-urls.yaml:11:12: upstreams.servers[4].url: same server as upstreams.servers[3] (hint: remove one of them)",
		"upstream-urls.yaml:12:7: upstreams.servers[5].url: missing: every server needs a url (hint: add url: https://cas.example.com)",
		"upstream-urls.yaml:13:3: upstreams.tls.client_key: missing: required because client_certificate is set (hint: set client_key next to client_certificate)",
		"upstream-urls.yaml:14:18: upstreams.tls.server_name: invalid server name \"https://mail.example.com\" (hint: a DNS name such as mail.corp.example.com, without scheme or port)",
	}},
	{"slow-clients.yaml", []string{
		"slow-clients.yaml:6:13: listen.timeouts.header: must be greater than 0s and at most 1h0m0s, got 0s (hint: nginx's client_header_timeout is 60s)",
		"slow-clients.yaml:7:11: listen.timeouts.body: must be greater than 0s and at most 1h0m0s, got 2h0m0s (hint: nginx's client_body_timeout is 60s)",
		"slow-clients.yaml:8:20: listen.timeouts.body_min_rate: invalid size \"-1\" (hint: use bytes or a unit such as 512KiB, 64MiB, 1GiB)",
		"slow-clients.yaml:9:11: listen.timeouts.idle: duration \"45\" has no unit (hint: add a unit, for example 45s)",
		"slow-clients.yaml:10:36: listen.max_unauthenticated_per_address: must not be negative, got -3 (hint: use 0 to turn the limit off, or a number such as 128)",
	}},
	{"wrong-types.yaml", []string{
		"wrong-types.yaml:2:12: listen.address: expected a string, got a list",
		"wrong-types.yaml:3:15: listen.plain_http: expected true or false, got the string \"yes\" (hint: YAML booleans are true and false, without quotes)",
		"wrong-types.yaml:5:12: upstreams.servers: expected a list, got the string \"https://cas1.example.com\" (hint: write a list, one \"- key: value\" item per entry)",
		"wrong-types.yaml:6:30: upstreams.max_idle_conns_per_server: expected a whole number, got the string \"64\" (hint: remove the quotes)",
		"wrong-types.yaml:7:17: upstreams.health_check: expected a mapping, got the string \"10s\" (hint: write \"key: value\" lines indented under it)",
		"wrong-types.yaml:9:24: limits.max_held_long_polls: expected a whole number, got the number 1.5",
	}},
}

func TestBrokenConfigs(t *testing.T) {
	if len(brokenConfigs) < 20 {
		t.Fatalf("only %d broken configs; the table needs at least 20", len(brokenConfigs))
	}
	files, err := filepath.Glob("testdata/broken/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(brokenConfigs) {
		t.Errorf("testdata/broken has %d files, the table %d entries: keep them in step", len(files), len(brokenConfigs))
	}
	for _, tc := range brokenConfigs {
		t.Run(strings.TrimSuffix(tc.file, ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/broken", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse(tc.file, data)
			if cfg != nil {
				t.Errorf("Parse returned a config for a broken file")
			}
			errs, ok := err.(Errors)
			if !ok {
				t.Fatalf("Parse error is %T (%v), want Errors", err, err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
				if e.File != tc.file || e.Line < 1 || e.Column < 1 {
					t.Errorf("error without a full position: %+v", e)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("messages differ\n got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(tc.want, "\n\t"))
			}
			if err.Error() != strings.Join(tc.want, "\n") {
				t.Errorf("Errors.Error() is not one message per line:\n%s", err.Error())
			}
		})
	}
}
