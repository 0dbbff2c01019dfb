package config

import "time"

// Config is one decoded, validated configuration file. Field comments give
// the YAML key; the README's configuration reference documents every key with its default.
//
// Struct tags: `yaml` names the key; `check:"file"` marks a path that must
// name a readable file and `check:"dir"` a path whose directory must exist
// (both checked by [Config.CheckFiles], never by Parse).
type Config struct {
	Listen    Listen    `yaml:"listen" json:"listen"`
	Upstreams Upstreams `yaml:"upstreams" json:"upstreams"`
	Limits    Limits    `yaml:"limits" json:"limits"`
	Auth      Auth      `yaml:"auth" json:"auth"`
	Policy    Policy    `yaml:"policy" json:"policy"`
	State     State     `yaml:"state" json:"state"`
	Admin     Admin     `yaml:"admin" json:"admin"`
	Log       Log       `yaml:"log" json:"log"`
	Identify  Identify  `yaml:"identify" json:"identify"`

	// Source is the file name given to Load or Parse; empty for Default().
	Source string `yaml:"-" json:"-"`

	pos      map[string]keyPos // dotted path -> where its key and value were written
	warnings Errors
}

// Listen is the client-facing listener.
type Listen struct {
	// Slow clients (README "Slow clients"): read timeouts of the phones'
	// connections and the per-address limit on connections that have not
	// sent a complete request header yet.
	Timeouts                     ListenTimeouts `yaml:"timeouts" json:"timeouts"`
	MaxUnauthenticatedPerAddress int            `yaml:"max_unauthenticated_per_address" json:"max_unauthenticated_per_address"` // 0: no limit; not applied with plain_http

	Address   string    `yaml:"address" json:"address"`       // host:port; default ":443"
	PlainHTTP bool      `yaml:"plain_http" json:"plain_http"` // serve HTTP without TLS (behind a TLS-terminating load balancer)
	TLS       ListenTLS `yaml:"tls" json:"tls"`
	// TrustedProxies lists the addresses or CIDR prefixes of load balancers
	// whose X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host and
	// Forwarded headers easgate keeps (and appends to). From any other peer
	// these headers are removed: only easgate may say who the client is.
	TrustedProxies []string `yaml:"trusted_proxies" json:"trusted_proxies"`
}

// ListenTimeouts bound how long a phone may take to send a request, and how
// long an idle keep-alive connection stays open. They are read timeouts
// only: they never cut a held long poll, whose request has been read.
type ListenTimeouts struct {
	// Header: from accept (TLS handshake included), or from the first byte
	// of a keep-alive connection's next request, to a complete header.
	Header Duration `yaml:"header" json:"header"`
	// Body: the longest a read of the request body may wait for data (as
	// nginx's client_body_timeout) ...
	Body Duration `yaml:"body" json:"body"`
	// BodyMinRate: ... and the body must also average at least this many
	// bytes per second after a grace of Body (as Apache's mod_reqtimeout
	// MinRate); 0 leaves only the per-read rule.
	BodyMinRate Size `yaml:"body_min_rate" json:"body_min_rate"`
	// Idle: how long a keep-alive connection may wait for its next request.
	Idle Duration `yaml:"idle" json:"idle"`
}

// ListenTLS is the server certificate and client-certificate policy.
type ListenTLS struct {
	Certificate        string             `yaml:"certificate" json:"certificate" check:"file"`
	Key                string             `yaml:"key" json:"key" check:"file"`
	PFX                string             `yaml:"pfx" json:"pfx" check:"file"`
	PFXPasswordFile    string             `yaml:"pfx_password_file" json:"pfx_password_file" check:"file"`
	MinVersion         string             `yaml:"min_version" json:"min_version"` // "1.2" or "1.3"
	ExtraCertificates  []CertFiles        `yaml:"extra_certificates" json:"extra_certificates"`
	ClientCertificates ClientCertificates `yaml:"client_certificates" json:"client_certificates"`
}

// CertFiles names one additional server certificate, chosen by SNI: either
// Certificate+Key (PEM) or PFX (+PFXPasswordFile).
type CertFiles struct {
	Certificate     string `yaml:"certificate" json:"certificate" check:"file"`
	Key             string `yaml:"key" json:"key" check:"file"`
	PFX             string `yaml:"pfx" json:"pfx" check:"file"`
	PFXPasswordFile string `yaml:"pfx_password_file" json:"pfx_password_file" check:"file"`
}

// Client-certificate modes (listen.tls.client_certificates.mode).
const (
	ClientCertOff      = "off"
	ClientCertOptional = "optional"
	ClientCertRequired = "required"
)

// ClientCertificates says whether phones present certificates and who may issue them.
type ClientCertificates struct {
	Mode       string     `yaml:"mode" json:"mode"` // off | optional | required
	TrustedCAs string     `yaml:"trusted_cas" json:"trusted_cas" check:"file"`
	Revocation Revocation `yaml:"revocation" json:"revocation"`
}

// Revocation configures CRL and OCSP checks of client certificates.
type Revocation struct {
	CRLFiles    []string `yaml:"crl_files" json:"crl_files" check:"file"`
	OCSP        string   `yaml:"ocsp" json:"ocsp"` // off | soft | hard
	OCSPTimeout Duration `yaml:"ocsp_timeout" json:"ocsp_timeout"`
}

// Upstreams are the Exchange Client Access Servers easgate forwards to.
type Upstreams struct {
	Servers               []Server    `yaml:"servers" json:"servers"`
	TLS                   UpstreamTLS `yaml:"tls" json:"tls"`
	HealthCheck           HealthCheck `yaml:"health_check" json:"health_check"`
	Timeouts              Timeouts    `yaml:"timeouts" json:"timeouts"`
	MaxIdleConnsPerServer int         `yaml:"max_idle_conns_per_server" json:"max_idle_conns_per_server"`
	IdentityHeader        string      `yaml:"identity_header" json:"identity_header"`
	Kerberos              Kerberos    `yaml:"kerberos" json:"kerberos"` // constrained delegation (kerberos.go)
}

// Server is one CAS. URL is scheme://host[:port] only (http or https).
type Server struct {
	URL  string `yaml:"url" json:"url"`
	Name string `yaml:"name" json:"name"` // optional label for logs and metrics; default the URL's host[:port]
	SPN  string `yaml:"spn" json:"spn"`   // Kerberos SPN of this CAS; default upstreams.kerberos.spn
}

// UpstreamTLS is how easgate verifies (and optionally authenticates to) the CAS.
type UpstreamTLS struct {
	TrustedCAs         string `yaml:"trusted_cas" json:"trusted_cas" check:"file"`
	ServerName         string `yaml:"server_name" json:"server_name"`
	ClientCertificate  string `yaml:"client_certificate" json:"client_certificate" check:"file"`
	ClientKey          string `yaml:"client_key" json:"client_key" check:"file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" json:"insecure_skip_verify"`
}

// HealthCheck is the active upstream probe.
type HealthCheck struct {
	Path     string   `yaml:"path" json:"path"`
	Interval Duration `yaml:"interval" json:"interval"`
	// Timeout defaults to 5s, or half of Interval when that is shorter.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// ExpectStatus lists the HTTP status codes of a healthy answer
	// (default [200]; [200, 401] for a CAS whose probe needs authentication).
	ExpectStatus   []int `yaml:"expect_status" json:"expect_status"`
	UnhealthyAfter int   `yaml:"unhealthy_after" json:"unhealthy_after"`
	HealthyAfter   int   `yaml:"healthy_after" json:"healthy_after"`
}

// Timeouts bound upstream work.
type Timeouts struct {
	Connect        Duration `yaml:"connect" json:"connect"`
	Request        Duration `yaml:"request" json:"request"`
	LongPollMax    Duration `yaml:"long_poll_max" json:"long_poll_max"`
	LongPollMargin Duration `yaml:"long_poll_margin" json:"long_poll_margin"`
	Drain          Duration `yaml:"drain" json:"drain"`
}

// Limits bound memory and connections.
type Limits struct {
	MaxRequestBody   Size `yaml:"max_request_body" json:"max_request_body"`
	MaxHeaderBytes   Size `yaml:"max_header_bytes" json:"max_header_bytes"`
	MaxHeldLongPolls int  `yaml:"max_held_long_polls" json:"max_held_long_polls"`
	MaxPolicyBody    Size `yaml:"max_policy_body" json:"max_policy_body"`
	StreamThreshold  Size `yaml:"stream_threshold" json:"stream_threshold"`
}

// Authentication modes (auth.mode).
const (
	AuthCredentials = "credentials"
	AuthCertificate = "certificate"
	AuthEither      = "either"
	AuthBoth        = "both"
)

// Auth is how users are identified and shielded from password guessing.
type Auth struct {
	Mode                string `yaml:"mode" json:"mode"`                                 // credentials | certificate | either | both
	CertificateIdentity string `yaml:"certificate_identity" json:"certificate_identity"` // upn | email | subject_cn
	// Domains lists the DNS domains whose users are accepted, the first
	// being the default for a bare "alice" and for "CORP\alice". Every
	// user name (Basic, certificate, EAS User, the policy's lists) is
	// compared as "user@domain"; a user of another domain is refused.
	// Empty: every domain is accepted and names compare exactly as
	// written, case-folded ("alice" and "alice@corp.example.com" differ).
	Domains []string `yaml:"domains" json:"domains"`
	// NetBIOSDomains maps NetBIOS domain names to DNS domains of Domains,
	// for a domain whose NetBIOS name is not its first label
	// (EXAMPLE: corp.example.com). The first label always works.
	NetBIOSDomains map[string]string `yaml:"netbios_domains" json:"netbios_domains"`
	Lockout        Lockout           `yaml:"lockout" json:"lockout"`
	DeviceBinding  string            `yaml:"device_binding" json:"device_binding"` // off | report | enforce
	// PassSchemes lists Authorization schemes other than Basic (Bearer for
	// Outlook with hybrid modern authentication, Negotiate, NTLM) that are
	// forwarded to the CAS unchanged in modes credentials and either; the
	// CAS authenticates them and easgate cannot bind them to the EAS User.
	PassSchemes []string `yaml:"pass_schemes" json:"pass_schemes"`
}

// MaxLockoutFailures is the highest auth.lockout.failures and
// auth.lockout.user_failures (the shield keeps one timestamp per failure).
const MaxLockoutFailures = 1000

// Lockout is the failed-login shield in front of the CAS.
type Lockout struct {
	Failures int `yaml:"failures" json:"failures"` // 0 disables the per-user+device lockout
	// UserFailures caps a user's failures within Window summed over all
	// devices and addresses; 0 disables the cap.
	UserFailures int      `yaml:"user_failures" json:"user_failures"`
	Window       Duration `yaml:"window" json:"window"`
	Backoff      Duration `yaml:"backoff" json:"backoff"`
	SprayUsers   int      `yaml:"spray_users" json:"spray_users"` // 0 disables password-spray detection
	SprayWindow  Duration `yaml:"spray_window" json:"spray_window"`
	SprayBlock   Duration `yaml:"spray_block" json:"spray_block"`
}

// Access levels (policy.default_access, rules[].access, cache.on_unavailable).
const (
	AccessAllow      = "allow"
	AccessBlock      = "block"
	AccessQuarantine = "quarantine"
)

// Policy modes (policy.mode, rules[].mode).
const (
	ModeEnforce = "enforce"
	ModeReport  = "report"
)

// Policy is the access policy.
type Policy struct {
	Mode            string                 `yaml:"mode" json:"mode"`                     // enforce | report
	DefaultAccess   string                 `yaml:"default_access" json:"default_access"` // allow | block | quarantine
	DiscoveryPeriod Duration               `yaml:"discovery_period" json:"discovery_period"`
	Groups          map[string][]string    `yaml:"groups" json:"groups"`
	Users           map[string]UserDevices `yaml:"users" json:"users"`
	Rules           []Rule                 `yaml:"rules" json:"rules"`
	Compliance      Compliance             `yaml:"compliance" json:"compliance"`
	Quarantine      Quarantine             `yaml:"quarantine" json:"quarantine"`
}

// UserDevices are per-user device lists, applied before the rules.
type UserDevices struct {
	AllowedDevices []string `yaml:"allowed_devices" json:"allowed_devices"`
	BlockedDevices []string `yaml:"blocked_devices" json:"blocked_devices"`
}

// Rule is one access rule; the first rule whose Match matches wins.
type Rule struct {
	Name   string `yaml:"name" json:"name"`
	Match  Match  `yaml:"match" json:"match"`
	Access string `yaml:"access" json:"access"` // allow | block | quarantine
	Mode   string `yaml:"mode" json:"mode"`     // "" (policy.mode) | enforce | report
}

// Match is a rule's condition: every key given must match (AND); within one
// key, any listed value may match (OR). Each key accepts a string or a list.
//
// DeviceType, DeviceModel, DeviceOS and UserAgent are patterns: with Regex
// false, an exact case-insensitive string, a prefix ("Apple-*") or a glob
// with '*' anywhere; with Regex true, Go regular expressions (RE2 syntax,
// unanchored). Client holds eas family slugs ("outlook-mobile"), OSFamily one
// eas OS name ("iOS"; at most one per rule), OSVersionBelow one version
// ("16.0", only with OSFamily), AuthMethod "certificate", "basic" or "none".
type Match struct {
	DeviceType     Patterns `yaml:"device_type" json:"device_type"`
	DeviceModel    Patterns `yaml:"device_model" json:"device_model"`
	DeviceOS       Patterns `yaml:"device_os" json:"device_os"`
	UserAgent      Patterns `yaml:"user_agent" json:"user_agent"`
	Client         Patterns `yaml:"client" json:"client"`
	OSFamily       Patterns `yaml:"os_family" json:"os_family"`
	OSVersionBelow string   `yaml:"os_version_below" json:"os_version_below"`
	Users          Patterns `yaml:"users" json:"users"`
	Groups         Patterns `yaml:"groups" json:"groups"`
	AuthMethod     Patterns `yaml:"auth_method" json:"auth_method"`
	Regex          bool     `yaml:"regex" json:"regex"`
}

// IsZero reports whether no match key is set (Regex alone is not a condition).
func (m *Match) IsZero() bool {
	return len(m.DeviceType) == 0 && len(m.DeviceModel) == 0 && len(m.DeviceOS) == 0 &&
		len(m.UserAgent) == 0 && len(m.Client) == 0 && len(m.OSFamily) == 0 &&
		m.OSVersionBelow == "" && len(m.Users) == 0 && len(m.Groups) == 0 && len(m.AuthMethod) == 0
}

// Patterns is a list of strings that may also be written as one string.
type Patterns []string

// GroupAll in require_for, exclude or match.groups means every user.
const GroupAll = "all"

// Compliance makes access depend on an external device-compliance verdict.
type Compliance struct {
	RequireFor []string        `yaml:"require_for" json:"require_for"` // users (with '@' or '\'), groups, or "all"
	Exclude    []string        `yaml:"exclude" json:"exclude"`
	Source     Source          `yaml:"source" json:"source"`
	Cache      ComplianceCache `yaml:"cache" json:"cache"`
}

// Compliance source types (policy.compliance.source.type).
const (
	SourceNone  = ""
	SourceFile  = "file"
	SourceHTTP  = "http"
	SourceGraph = "graph"
)

// Source is where compliance verdicts come from. Which keys apply depends on Type.
type Source struct {
	Type              string   `yaml:"type" json:"type"`                                          // file | http | graph
	Path              string   `yaml:"path" json:"path" check:"file"`                             // file
	URL               string   `yaml:"url" json:"url"`                                            // http
	TokenFile         string   `yaml:"token_file" json:"token_file" check:"file"`                 // http: bearer token
	ClientCertificate string   `yaml:"client_certificate" json:"client_certificate" check:"file"` // http: mTLS; graph: app certificate
	ClientKey         string   `yaml:"client_key" json:"client_key" check:"file"`                 // http, graph
	Timeout           Duration `yaml:"timeout" json:"timeout"`                                    // http, graph
	Retries           int      `yaml:"retries" json:"retries"`                                    // http, graph
	TenantID          string   `yaml:"tenant_id" json:"tenant_id"`                                // graph
	ClientID          string   `yaml:"client_id" json:"client_id"`                                // graph
	ClientSecretFile  string   `yaml:"client_secret_file" json:"client_secret_file" check:"file"` // graph
	AuthorityURL      string   `yaml:"authority_url" json:"authority_url"`                        // graph
	GraphURL          string   `yaml:"graph_url" json:"graph_url"`                                // graph
	FullSync          Duration `yaml:"full_sync" json:"full_sync"`                                // graph
	QuickSync         Duration `yaml:"quick_sync" json:"quick_sync"`                              // graph
	MaxDrop           Percent  `yaml:"max_drop" json:"max_drop"`                                  // file, graph: reload guard
}

// ComplianceCache is the verdict cache in front of the Source.
type ComplianceCache struct {
	TTL           Duration `yaml:"ttl" json:"ttl"`
	NegativeTTL   Duration `yaml:"negative_ttl" json:"negative_ttl"`
	StaleIfError  Duration `yaml:"stale_if_error" json:"stale_if_error"`
	LookupTimeout Duration `yaml:"lookup_timeout" json:"lookup_timeout"`
	// RefreshBefore defaults to 1m, or a quarter of TTL when that is shorter.
	RefreshBefore Duration `yaml:"refresh_before" json:"refresh_before"`
	MaxEntries    int      `yaml:"max_entries" json:"max_entries"`
	OnUnavailable string   `yaml:"on_unavailable" json:"on_unavailable"` // allow | block | quarantine
}

// Quarantine configures what a quarantined user is told.
type Quarantine struct {
	Notice       Notice `yaml:"notice" json:"notice"`
	AdminWebhook string `yaml:"admin_webhook" json:"admin_webhook"`
}

// Notice is the message shown in the phone's inbox during quarantine.
type Notice struct {
	From      string `yaml:"from" json:"from"`
	Subject   string `yaml:"subject" json:"subject"`
	Template  string `yaml:"template" json:"template" check:"file"`
	EnrollURL string `yaml:"enroll_url" json:"enroll_url"`
}

// State is where easgate keeps what it learned (devices seen, verdict
// snapshot, overrides, audit trail, quarantine records, lockout counters).
// One node keeps it in the bbolt file at Path; several nodes share a
// PostgreSQL database at URL, and Path is then each node's local snapshot.
type State struct {
	Path string `yaml:"path" json:"path" check:"dir"` // "" keeps state in memory only (or, with url, no local snapshot)
	// URL is a postgres:// URL (or libpq key=value string) of the
	// database several nodes share; its unset parts come from the PG*
	// environment. TLS: sslmode=verify-full&sslrootcert=FILE.
	URL string `yaml:"url" json:"url"`
	// PasswordFile holds the database password (first line), instead of
	// PGPASSWORD, PGPASSFILE or ~/.pgpass.
	PasswordFile string `yaml:"password_file" json:"password_file,omitempty" check:"file"`
	// Schema is "apply" (default: missing migrations are applied at
	// start) or "check" (an older schema stops the start: run `easgate
	// state migrate`).
	Schema string `yaml:"schema" json:"schema,omitempty"`
	// OfflineStart says what a node does when the database is down at
	// start: "refuse" (default) or "snapshot" (serve from the local
	// snapshot in path, catching up when the database is back).
	OfflineStart string `yaml:"offline_start" json:"offline_start,omitempty"`
	// QueueLimit bounds the records waiting for the database (default
	// 200000).
	QueueLimit int `yaml:"queue_limit" json:"queue_limit,omitempty"`
}

// Admin is the metrics/health/admin listener.
type Admin struct {
	Address   string `yaml:"address" json:"address"` // "" disables the admin listener
	TokenFile string `yaml:"token_file" json:"token_file" check:"file"`
	// Tokens are named bearer tokens with a role each (read, operate,
	// admin); token_file is one more token, named "admin", of role admin.
	Tokens []AdminToken `yaml:"tokens" json:"tokens,omitempty"`
	// Digest mails the administrators, at an interval, the devices that
	// entered quarantine or were blocked (off while smtp is empty).
	Digest Digest `yaml:"digest" json:"digest,omitzero"`
	// TLS serves the admin listener (API, console, metrics) over HTTPS,
	// with its own certificate or the gateway's, and can accept admin
	// client certificates for the console.
	TLS AdminTLS `yaml:"tls" json:"tls,omitzero"`
	// Console is the web console served at / on the admin listener.
	Console AdminConsole `yaml:"console" json:"console,omitzero"`
}

// AdminTLS is the admin listener's TLS. Off while neither certificate nor
// use_gateway_certificate is set.
type AdminTLS struct {
	Certificate string `yaml:"certificate" json:"certificate" check:"file"` // PEM chain
	Key         string `yaml:"key" json:"key" check:"file"`                 // PEM key
	// UseGatewayCertificate serves the certificates of listen.tls (and
	// follows their reloads) instead of certificate and key.
	UseGatewayCertificate bool `yaml:"use_gateway_certificate" json:"use_gateway_certificate"`
	// ClientCAs are the PEM CAs that sign admin client certificates; with
	// them the listener asks for a client certificate (optional: tokens
	// keep working) and the console signs in the ones listed in clients.
	ClientCAs string `yaml:"client_cas" json:"client_cas" check:"file"`
	// Clients map a verified client certificate (its UPN, e-mail or
	// common name) to an admin name and role.
	Clients []AdminClient `yaml:"clients" json:"clients,omitempty"`
}

// Enabled reports whether the admin listener serves TLS.
func (t *AdminTLS) Enabled() bool { return t.Certificate != "" || t.UseGatewayCertificate }

// AdminClient is one admin client certificate identity.
type AdminClient struct {
	Name string `yaml:"name" json:"name"` // UPN, e-mail or common name of the certificate
	Role string `yaml:"role" json:"role"` // read | operate | admin
}

// AdminConsole configures the web console.
type AdminConsole struct {
	// Disabled turns the console off; the API and /metrics stay.
	Disabled bool `yaml:"disabled" json:"disabled"`
	// SessionTimeout ends a console session left idle this long (default
	// 30m); every page served extends it.
	SessionTimeout Duration `yaml:"session_timeout" json:"session_timeout"`
}

// Identify configures client identification.
type Identify struct {
	// RulesFile names an administrator's rules file (the format of
	// eas/clientrules.txt) that adds to or overrides the embedded rules;
	// "" uses the embedded rules only. It is read and checked by
	// Config.IdentifyRules (check-config, serve and every reload).
	RulesFile string `yaml:"rules_file" json:"rules_file" check:"file"`
}

// Digest is the admin mail digest: one mail per interval listing the
// devices that entered quarantine or were blocked, sent through the
// organisation's SMTP relay. Nothing is sent for an interval without such
// devices.
type Digest struct {
	SMTP         string   `yaml:"smtp" json:"smtp"`                                // relay host:port; "" disables the digest
	TLS          string   `yaml:"tls" json:"tls"`                                  // starttls (default) | tls | none
	TrustedCAs   string   `yaml:"trusted_cas" json:"trusted_cas" check:"file"`     // CAs of the relay's certificate; "" = system roots
	Username     string   `yaml:"username" json:"username"`                        // SMTP AUTH user; "" = no authentication
	PasswordFile string   `yaml:"password_file" json:"password_file" check:"file"` // SMTP AUTH password
	From         string   `yaml:"from" json:"from"`
	To           []string `yaml:"to" json:"to"`
	Interval     Duration `yaml:"interval" json:"interval"` // default 1h
}

// Digest TLS modes.
const (
	DigestSTARTTLS = "starttls"
	DigestTLS      = "tls"
	DigestNoTLS    = "none"
)

// AdminToken is one named admin API token. The token itself is read from
// File (never written in the config); Name is what the audit trail and the
// logs show.
type AdminToken struct {
	Name string `yaml:"name" json:"name"`
	File string `yaml:"file" json:"file" check:"file"`
	Role string `yaml:"role" json:"role"` // read | operate | admin
}

// Admin token roles.
const (
	RoleRead    = "read"
	RoleOperate = "operate"
	RoleAdmin   = "admin"
)

// Log configures logging.
type Log struct {
	Level     string `yaml:"level" json:"level"`                       // debug | info | warn | error
	Format    string `yaml:"format" json:"format"`                     // json | console
	AccessLog string `yaml:"access_log" json:"access_log" check:"dir"` // stdout | stderr | off | file path
}

// Default returns a Config with every default filled in. It has no upstream
// server and no certificate, so it does not validate on its own: callers
// (demo, tests) add those.
func Default() *Config {
	return &Config{
		Listen: Listen{
			Address: ":443",
			Timeouts: ListenTimeouts{
				Header:      Duration(60 * time.Second),
				Body:        Duration(60 * time.Second),
				BodyMinRate: 500,
				Idle:        Duration(75 * time.Second),
			},
			MaxUnauthenticatedPerAddress: 128,
			TLS: ListenTLS{
				MinVersion: "1.2",
				ClientCertificates: ClientCertificates{
					Mode:       ClientCertOff,
					Revocation: Revocation{OCSP: "off", OCSPTimeout: Duration(5 * time.Second)},
				},
			},
		},
		Upstreams: Upstreams{
			HealthCheck: HealthCheck{
				Path:           "/Microsoft-Server-ActiveSync/healthcheck.htm",
				Interval:       Duration(10 * time.Second),
				Timeout:        Duration(5 * time.Second),
				ExpectStatus:   []int{200},
				UnhealthyAfter: 2,
				HealthyAfter:   2,
			},
			Timeouts: Timeouts{
				Connect:        Duration(5 * time.Second),
				Request:        Duration(120 * time.Second),
				LongPollMax:    Duration(3660 * time.Second),
				LongPollMargin: Duration(60 * time.Second),
				Drain:          Duration(60 * time.Second),
			},
			MaxIdleConnsPerServer: 256,
		},
		Limits: Limits{
			MaxRequestBody:   64 * MiB,
			MaxHeaderBytes:   16 * KiB,
			MaxHeldLongPolls: 10000,
			MaxPolicyBody:    1 * MiB,
			StreamThreshold:  64 * KiB,
		},
		Auth: Auth{
			Mode:                AuthCredentials,
			CertificateIdentity: "upn",
			Lockout: Lockout{
				Failures:     5,
				UserFailures: 20,
				Window:       Duration(15 * time.Minute),
				Backoff:      Duration(30 * time.Minute),
				SprayUsers:   10,
				SprayWindow:  Duration(10 * time.Minute),
				SprayBlock:   Duration(30 * time.Minute),
			},
			DeviceBinding: "off",
		},
		Policy: Policy{
			Mode:            ModeEnforce,
			DefaultAccess:   AccessAllow,
			DiscoveryPeriod: Duration(14 * time.Minute),
			Compliance: Compliance{
				Source: Source{
					Timeout:      Duration(5 * time.Second),
					Retries:      2,
					AuthorityURL: "https://login.microsoftonline.com",
					GraphURL:     "https://graph.microsoft.com",
					FullSync:     Duration(24 * time.Hour),
					QuickSync:    Duration(5 * time.Minute),
					MaxDrop:      50,
				},
				Cache: ComplianceCache{
					TTL:           Duration(15 * time.Minute),
					NegativeTTL:   Duration(2 * time.Minute),
					StaleIfError:  Duration(24 * time.Hour),
					LookupTimeout: Duration(200 * time.Millisecond),
					RefreshBefore: Duration(1 * time.Minute),
					MaxEntries:    100000,
					OnUnavailable: AccessQuarantine,
				},
			},
			Quarantine: Quarantine{
				Notice: Notice{Subject: "Your device must be approved before it can sync mail"},
			},
		},
		Admin: Admin{Address: "127.0.0.1:9090", Console: AdminConsole{SessionTimeout: Duration(30 * time.Minute)}},
		Log:   Log{Level: "info", Format: "json", AccessLog: "stdout"},
	}
}
