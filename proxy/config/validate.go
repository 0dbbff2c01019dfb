package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/easgate/easgate/eas"
)

// isBad reports whether path or one of its parents failed to decode, in
// which case validating it again would only repeat the problem.
func (c *checker) isBad(path string) bool {
	for p := path; ; p = parentPath(p) {
		if c.bad[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

func (c *checker) has(path string) bool { _, ok := c.pos[path]; return ok }

// errf reports a problem with the value at path.
func (c *checker) errf(path, hint, format string, args ...any) {
	if c.isBad(path) {
		return
	}
	line, col := lookupPos(c.pos, path)
	c.addAt(line, col, path, hint, format, args...)
}

// warnf records a warning for the value at path.
func (c *checker) warnf(path, hint, format string, args ...any) {
	line, col := lookupPos(c.pos, path)
	c.warns = append(c.warns, &Error{File: c.file, Line: line, Column: col, Path: path,
		Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// enum checks that v is one of allowed.
func (c *checker) enum(path, v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	hint := "use one of: " + strings.Join(allowed, ", ")
	if s := suggest(v, allowed); s != "" {
		hint = `did you mean "` + s + `"?`
	}
	c.errf(path, hint, "invalid value %s", show(v))
	return false
}

func (c *checker) positive(path string, d Duration) {
	if d <= 0 {
		c.errf(path, "give a duration greater than zero, such as 30s", "must be positive, got %s", d)
	}
}

func (c *checker) notNegative(path string, d Duration) {
	if d < 0 {
		c.errf(path, "use 0 or a positive duration", "must not be negative, got %s", d)
	}
}

func (c *checker) atLeast(path string, v, lowest int) {
	if v < lowest {
		c.errf(path, "", "must be at least %d, got %d", lowest, v)
	}
}

func (c *checker) atMost(path string, v, highest int) {
	if v > highest {
		c.errf(path, "", "must be at most %d, got %d", highest, v)
	}
}

// pair checks that two keys that only work together are both set.
func (c *checker) pair(pathA, a, pathB, b string) {
	nameA, nameB := pathA[strings.LastIndexByte(pathA, '.')+1:], pathB[strings.LastIndexByte(pathB, '.')+1:]
	if a != "" && b == "" {
		c.errf(pathB, "set "+nameB+" next to "+nameA, "missing: required because %s is set", nameA)
	}
	if b != "" && a == "" {
		c.errf(pathA, "set "+nameA+" next to "+nameB, "missing: required because %s is set", nameB)
	}
}

// notUsed reports keys written in the file that have no effect in this context.
func (c *checker) notUsed(parent, why, hint string, keys ...string) {
	for _, k := range keys {
		if p := join(parent, k); c.has(p) {
			c.errf(p, hint, "not used %s", why)
		}
	}
}

func (c *checker) validate(cfg *Config) {
	c.validateListen(cfg)
	c.validateUpstreams(cfg)
	c.validateKerberos(cfg) // kerberos.go
	c.validateLimits(&cfg.Limits)
	c.validateAuth(cfg)
	c.validatePolicy(&cfg.Policy)
	c.validateState(&cfg.State) // state.go
	c.validateAdmin(&cfg.Admin)
	c.validateAdminTLS(&cfg.Admin, cfg.Listen.PlainHTTP)
	c.enum("log.level", cfg.Log.Level, "debug", "info", "warn", "error")
	c.enum("log.format", cfg.Log.Format, "json", "console")
	if cfg.Log.AccessLog == "" {
		c.errf("log.access_log", "use stdout, stderr, off or a file path", "must not be empty")
	}
}

// address checks host:port and returns the host.
func (c *checker) address(path, s string) (string, bool) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		hint := `write host:port, such as ":443" or "127.0.0.1:9090"`
		if _, perr := strconv.Atoi(s); perr == nil {
			hint = `write ":` + s + `" to listen on every address`
		}
		c.errf(path, hint, "invalid address %s", show(s))
		return "", false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		c.errf(path, "the port is a number from 1 to 65535", "invalid port %s", show(port))
		return "", false
	}
	if strings.ContainsAny(host, " /") {
		c.errf(path, `write host:port, such as ":443"`, "invalid host %s", show(host))
		return "", false
	}
	return host, true
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// certPair checks one certificate source: PEM certificate+key or PFX (+password file).
func (c *checker) certPair(path, cert, key, pfx, pfxPass string, required bool) {
	pem := cert != "" || key != ""
	switch {
	case pem && pfx != "":
		c.errf(join(path, "pfx"), "remove pfx, or remove certificate and key",
			"give either certificate and key, or pfx, not both")
	case pem:
		c.pair(join(path, "certificate"), cert, join(path, "key"), key)
	case pfx == "" && required:
		c.errf(join(path, "certificate"), "set certificate and key (PEM), or pfx (PKCS#12)",
			"missing: a certificate is required")
	}
	if pfxPass != "" && pfx == "" {
		c.errf(join(path, "pfx_password_file"), "remove it, or set pfx", "only used with pfx")
	}
}

func (c *checker) validateListen(cfg *Config) {
	l := &cfg.Listen
	for i, tp := range l.TrustedProxies {
		if _, err := ParseTrustedProxy(tp); err != nil {
			c.errf(listPath("listen.trusted_proxies", i, len(l.TrustedProxies)),
				"write an address (10.0.0.5) or a prefix (10.0.0.0/24)", "invalid trusted proxy %s", show(tp))
		}
	}
	c.address("listen.address", l.Address)
	t := &l.TLS
	cc := &t.ClientCertificates
	if l.PlainHTTP {
		if t.Certificate != "" || t.Key != "" || t.PFX != "" || len(t.ExtraCertificates) > 0 {
			c.errf("listen.plain_http", "remove plain_http to serve TLS, or remove the listen.tls certificates",
				"plain_http is true but listen.tls has a certificate")
		}
		if cc.Mode != ClientCertOff && cc.Mode != "" {
			c.errf("listen.tls.client_certificates.mode", "client certificates need TLS: set mode: off, or remove plain_http",
				"client certificates cannot be used with plain_http")
		}
		c.warnf("listen.plain_http", "run easgate like this only behind a load balancer that terminates TLS",
			"serving plain HTTP: passwords cross the network unencrypted")
	} else if !c.isBad("listen.plain_http") {
		if t.Certificate == "" && t.Key == "" && t.PFX == "" {
			c.errf("listen.tls.certificate",
				"set listen.tls.certificate and key, or pfx; or plain_http: true behind a TLS load balancer",
				"missing: TLS needs a server certificate")
		}
		c.certPair("listen.tls", t.Certificate, t.Key, t.PFX, t.PFXPasswordFile, false)
	}
	for i, e := range t.ExtraCertificates {
		c.certPair(fmt.Sprintf("listen.tls.extra_certificates[%d]", i), e.Certificate, e.Key, e.PFX, e.PFXPasswordFile, true)
	}
	c.enum("listen.tls.min_version", t.MinVersion, "1.2", "1.3")
	if c.enum("listen.tls.client_certificates.mode", cc.Mode, ClientCertOff, ClientCertOptional, ClientCertRequired) &&
		cc.Mode != ClientCertOff && cc.TrustedCAs == "" {
		c.errf("listen.tls.client_certificates.trusted_cas", "name the PEM file of the CAs that issue device certificates",
			"missing: required when mode is %s", cc.Mode)
	}
	r := &cc.Revocation
	c.enum("listen.tls.client_certificates.revocation.ocsp", r.OCSP, "off", "soft", "hard")
	c.positive("listen.tls.client_certificates.revocation.ocsp_timeout", r.OCSPTimeout)
	for i, f := range r.CRLFiles {
		if f == "" {
			c.errf(fmt.Sprintf("listen.tls.client_certificates.revocation.crl_files[%d]", i), "", "must not be empty")
		}
	}
	if cc.Mode == ClientCertOff && (len(r.CRLFiles) > 0 || (r.OCSP != "off" && r.OCSP != "")) {
		c.warnf("listen.tls.client_certificates.revocation", "set client_certificates.mode to optional or required",
			"revocation checks have no effect while client certificates are off")
	}
	c.validateSlowClients(l)
}

// maxClientTimeout bounds listen.timeouts.*: a phone that sends nothing for
// longer is not coming back (a held long poll is not a read: its request
// has been read).
const maxClientTimeout = Duration(time.Hour)

// validateSlowClients checks listen.timeouts and
// listen.max_unauthenticated_per_address.
func (c *checker) validateSlowClients(l *Listen) {
	to := &l.Timeouts
	for _, t := range []struct {
		key  string
		d    Duration
		hint string
	}{
		{"listen.timeouts.header", to.Header, "nginx's client_header_timeout is 60s"},
		{"listen.timeouts.body", to.Body, "nginx's client_body_timeout is 60s"},
		{"listen.timeouts.idle", to.Idle, "nginx's keepalive_timeout is 75s"},
	} {
		if t.d <= 0 || t.d > maxClientTimeout {
			c.errf(t.key, t.hint, "must be greater than 0s and at most %s, got %s", maxClientTimeout, t.d)
		}
	}
	switch {
	case to.BodyMinRate < 0:
		c.errf("listen.timeouts.body_min_rate", "bytes per second such as 500; 0 turns the rate rule off",
			"must not be negative, got %s", to.BodyMinRate)
	case to.BodyMinRate > 64*KiB:
		c.warnf("listen.timeouts.body_min_rate", "phones on a weak mobile link upload at a few KiB/s; 500 is a safe value",
			"a minimum body rate of %s per second cuts slow but live uploads", to.BodyMinRate)
	}
	n := l.MaxUnauthenticatedPerAddress
	switch {
	case n < 0:
		c.errf("listen.max_unauthenticated_per_address", "use 0 to turn the limit off, or a number such as 128",
			"must not be negative, got %d", n)
	case l.PlainHTTP && n > 0 && c.has("listen.max_unauthenticated_per_address"):
		c.warnf("listen.max_unauthenticated_per_address",
			"remove it, or set it to 0; limit connections per client address at the load balancer",
			"not applied with plain_http: every connection comes from the load balancer's address")
	}
}

// checkURL validates an absolute http(s) URL. With bare set, it must be
// scheme://host[:port] only.
func (c *checker) checkURL(path, s string, bare bool) (*url.URL, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		c.errf(path, "write a URL such as https://host.example.com", "invalid URL %s", show(s))
		return nil, false
	}
	if u.User != nil {
		c.errf(path, "remove user:password@ from the URL; credentials never go in URLs",
			"the URL must not contain credentials")
		return nil, false
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		c.errf(path, "write a URL such as https://host.example.com", "the URL must start with https:// or http://, got %s", show(s))
		return nil, false
	}
	if u.Hostname() == "" {
		c.errf(path, "write a URL such as https://host.example.com", "the URL %s has no host", show(s))
		return nil, false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			c.errf(path, "the port is a number from 1 to 65535", "invalid port %s in URL", show(p))
			return nil, false
		}
	}
	if bare && ((u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "") {
		c.errf(path, "give only scheme://host[:port]; easgate forwards the request's own path",
			"the URL must not have a path, query or fragment")
		return nil, false
	}
	return u, true
}

var hostnameRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)

var headerTokenRe = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// reservedHeaders must not be used as identity_header: the proxy or the CAS rely on them.
var reservedHeaders = []string{"authorization", "host", "content-length", "content-type", "transfer-encoding",
	"connection", "keep-alive", "te", "trailer", "upgrade", "cookie", "x-forwarded-for", "x-forwarded-proto",
	"x-forwarded-host", "ms-asprotocolversion", "x-ms-policykey", "user-agent", "proxy-authorization"}

func (c *checker) validateUpstreams(cfg *Config) {
	u := &cfg.Upstreams
	if len(u.Servers) == 0 {
		c.errf("upstreams.servers", "add a list entry such as \"- url: https://cas1.corp.example.com\"",
			"at least one server is required")
	}
	urls := map[string]int{}
	names := map[string]int{}
	for i, s := range u.Servers {
		p := fmt.Sprintf("upstreams.servers[%d]", i)
		if s.URL == "" {
			c.errf(p+".url", "add url: https://cas.example.com", "missing: every server needs a url")
		} else if pu, ok := c.checkURL(p+".url", s.URL, true); ok {
			port := pu.Port()
			if port == "" {
				port = map[string]string{"http": "80", "https": "443"}[pu.Scheme]
			}
			key := pu.Scheme + "://" + net.JoinHostPort(strings.ToLower(pu.Hostname()), port)
			if j, dup := urls[key]; dup {
				c.errf(p+".url", "remove one of them", "same server as upstreams.servers[%d]", j)
			} else {
				urls[key] = i
			}
			if pu.Scheme == "http" && !isLoopback(pu.Hostname()) {
				c.warnf(p+".url", "use https:// so passwords are not sent in clear to the CAS",
					"traffic to this server is not encrypted")
			}
		}
		if s.Name != "" {
			if j, dup := names[s.Name]; dup {
				c.errf(p+".name", "give every server its own name", "name %s is already used by upstreams.servers[%d]", show(s.Name), j)
			} else {
				names[s.Name] = i
			}
		}
	}
	t := &u.TLS
	c.pair("upstreams.tls.client_certificate", t.ClientCertificate, "upstreams.tls.client_key", t.ClientKey)
	if t.ServerName != "" && !hostnameRe.MatchString(t.ServerName) {
		c.errf("upstreams.tls.server_name", "a DNS name such as mail.corp.example.com, without scheme or port",
			"invalid server name %s", show(t.ServerName))
	}
	if t.InsecureSkipVerify {
		c.warnf("upstreams.tls.insecure_skip_verify", "set upstreams.tls.trusted_cas to the CA of the CAS certificates instead",
			"the CAS certificates are not verified: anyone on the path can read passwords and mail")
	}
	h := &u.HealthCheck
	if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, " \t\r\n#") {
		c.errf("upstreams.health_check.path", "an absolute path such as /Microsoft-Server-ActiveSync/healthcheck.htm",
			"invalid path %s", show(h.Path))
	}
	c.positive("upstreams.health_check.interval", h.Interval)
	c.positive("upstreams.health_check.timeout", h.Timeout)
	if h.Interval > 0 && h.Timeout > h.Interval {
		c.errf("upstreams.health_check.timeout", "make the timeout shorter than the interval",
			"timeout %s%s is longer than interval %s%s", h.Timeout, c.origin("upstreams.health_check.timeout"),
			h.Interval, c.origin("upstreams.health_check.interval"))
	}
	if len(h.ExpectStatus) == 0 && c.has("upstreams.health_check.expect_status") {
		c.errf("upstreams.health_check.expect_status", "list the status codes of a healthy CAS, such as [200] or [200, 401]",
			"must list at least one status code")
	}
	for i, code := range h.ExpectStatus {
		if code < 100 || code > 599 {
			c.errf(fmt.Sprintf("upstreams.health_check.expect_status[%d]", i), "an HTTP status code between 100 and 599, such as 200 or 401",
				"invalid status code %d", code)
		}
	}
	c.atLeast("upstreams.health_check.unhealthy_after", h.UnhealthyAfter, 1)
	c.atLeast("upstreams.health_check.healthy_after", h.HealthyAfter, 1)
	to := &u.Timeouts
	c.positive("upstreams.timeouts.connect", to.Connect)
	c.positive("upstreams.timeouts.request", to.Request)
	if to.LongPollMax < Duration(time.Minute) || to.LongPollMax > Duration(2*time.Hour) {
		c.errf("upstreams.timeouts.long_poll_max",
			"Exchange holds Ping for up to 3540s; use about 3660s (between 60s and 2h)",
			"must be between 1m0s and 2h0m0s, got %s", to.LongPollMax)
	}
	c.notNegative("upstreams.timeouts.long_poll_margin", to.LongPollMargin)
	c.notNegative("upstreams.timeouts.drain", to.Drain)
	c.atLeast("upstreams.max_idle_conns_per_server", u.MaxIdleConnsPerServer, 1)
	if hdr := u.IdentityHeader; hdr != "" {
		switch {
		case !headerTokenRe.MatchString(hdr):
			c.errf("upstreams.identity_header", "a header name such as X-EASGate-User", "invalid header name %s", show(hdr))
		case containsFold(reservedHeaders, hdr):
			c.errf("upstreams.identity_header", "choose your own name such as X-EASGate-User",
				"%s is a header the proxy or Exchange already uses", show(hdr))
		case cfg.Auth.Mode == AuthCredentials:
			c.warnf("upstreams.identity_header", "set auth.mode to certificate, either or both",
				"the identity header is only sent for certificate-authenticated users, and auth.mode is credentials")
		}
	}
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func (c *checker) validateLimits(l *Limits) {
	if l.MaxRequestBody <= 0 {
		c.errf("limits.max_request_body", "such as 64MiB", "must be positive")
	}
	if l.MaxHeaderBytes < 4*KiB || l.MaxHeaderBytes > MiB {
		c.errf("limits.max_header_bytes", "phones send Negotiate headers of several KiB; 16KiB is a good value",
			"must be between 4KiB and 1MiB, got %s", l.MaxHeaderBytes)
	}
	c.atLeast("limits.max_held_long_polls", l.MaxHeldLongPolls, 1)
	if l.MaxPolicyBody <= 0 {
		c.errf("limits.max_policy_body", "such as 1MiB", "must be positive")
	} else if l.MaxRequestBody > 0 && l.MaxPolicyBody > l.MaxRequestBody {
		c.errf("limits.max_policy_body", "make it at most limits.max_request_body",
			"%s is larger than max_request_body %s", l.MaxPolicyBody, l.MaxRequestBody)
	}
	if l.StreamThreshold <= 0 {
		c.errf("limits.stream_threshold", "such as 64KiB", "must be positive")
	}
}

func (c *checker) validateAuth(cfg *Config) {
	a := &cfg.Auth
	if c.enum("auth.mode", a.Mode, AuthCredentials, AuthCertificate, AuthEither, AuthBoth) {
		off := cfg.Listen.TLS.ClientCertificates.Mode == ClientCertOff
		switch {
		case off && (a.Mode == AuthCertificate || a.Mode == AuthBoth):
			c.errf("auth.mode", "set listen.tls.client_certificates.mode to optional or required",
				"mode %s needs client certificates, but they are off", a.Mode)
		case off && a.Mode == AuthEither:
			c.warnf("auth.mode", "set listen.tls.client_certificates.mode to optional, or auth.mode to credentials",
				"mode either behaves like credentials while client certificates are off")
		}
	}
	c.enum("auth.certificate_identity", a.CertificateIdentity, "upn", "email", "subject_cn")
	c.validateDomains(cfg)
	c.enum("auth.device_binding", a.DeviceBinding, "off", "report", "enforce")
	for i, s := range a.PassSchemes {
		p := listPath("auth.pass_schemes", i, len(a.PassSchemes))
		if strings.EqualFold(s, "Basic") {
			c.errf(p, "Basic is always accepted; list only other schemes such as Bearer or Negotiate", "Basic is not a pass-through scheme")
		} else {
			c.enum(p, s, "Bearer", "Negotiate", "NTLM")
		}
	}
	lo := &a.Lockout
	c.atLeast("auth.lockout.failures", lo.Failures, 0)
	c.atMost("auth.lockout.failures", lo.Failures, MaxLockoutFailures)
	c.atLeast("auth.lockout.user_failures", lo.UserFailures, 0)
	c.atMost("auth.lockout.user_failures", lo.UserFailures, MaxLockoutFailures)
	if lo.Failures > 0 || lo.UserFailures > 0 {
		c.positive("auth.lockout.window", lo.Window)
		c.positive("auth.lockout.backoff", lo.Backoff)
	}
	c.atLeast("auth.lockout.spray_users", lo.SprayUsers, 0)
	if lo.SprayUsers > 0 {
		c.positive("auth.lockout.spray_window", lo.SprayWindow)
		c.positive("auth.lockout.spray_block", lo.SprayBlock)
	}
}

// validateDomains checks auth.domains and auth.netbios_domains, and that
// every user the policy names is one of those domains (a name of another
// domain could never match anyone: easgate refuses such users).
func (c *checker) validateDomains(cfg *Config) {
	a := &cfg.Auth
	bad := false
	for i, d := range a.Domains {
		if _, err := eas.NewDomains([]string{d}, nil); err != nil {
			c.errf(listPath("auth.domains", i, len(a.Domains)), "write a DNS domain such as corp.example.com", "%v", err)
			bad = true
		}
	}
	if bad {
		return
	}
	doms, err := eas.NewDomains(a.Domains, a.NetBIOSDomains)
	if err != nil {
		path := "auth.netbios_domains"
		if len(a.NetBIOSDomains) == 0 {
			path = "auth.domains"
		}
		c.errf(path, "list each DNS domain once; map each NetBIOS name to a domain of auth.domains", "%v", err)
		return
	}
	p := &cfg.Policy
	if !doms.Enabled() {
		if len(p.Users) > 0 {
			c.warnf("policy.users", "set auth.domains (e.g. [corp.example.com]) so that every spelling of a user is one name",
				"auth.domains is not set: users compare exactly as written, so CORP\\alice, alice and alice@corp.example.com are three different users for these lists")
		}
		return
	}
	user := func(path, name string) {
		name = strings.TrimSpace(name)
		if name == "" || name == GroupAll || strings.Contains(name, "*") {
			return
		}
		if _, ok := p.Groups[name]; ok {
			return
		}
		if _, err := doms.Canonical(name); err != nil {
			c.errf(path, "write the user as user@domain with a domain of auth.domains, or add the domain there",
				"user %s: %v", show(name), err)
		}
	}
	for name := range p.Users {
		user(mapPath("policy.users", name), name)
	}
	for g, members := range p.Groups {
		for i, m := range members {
			user(fmt.Sprintf("%s[%d]", mapPath("policy.groups", g), i), m)
		}
	}
	for i, u := range p.Compliance.RequireFor {
		user(listPath("policy.compliance.require_for", i, len(p.Compliance.RequireFor)), u)
	}
	for i, u := range p.Compliance.Exclude {
		user(listPath("policy.compliance.exclude", i, len(p.Compliance.Exclude)), u)
	}
	for ri := range p.Rules {
		us := p.Rules[ri].Match.Users
		for i, u := range us {
			user(listPath(fmt.Sprintf("policy.rules[%d].match.users", ri), i, len(us)), u)
		}
	}
}

// ParseTrustedProxy reads one listen.trusted_proxies entry: an address
// (a one-address prefix) or a CIDR prefix.
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// regexLike finds patterns that were probably meant as regular expressions.
const regexMeta = `^$\()[]{}|+`

func (c *checker) validatePolicy(p *Policy) {
	c.enum("policy.mode", p.Mode, ModeEnforce, ModeReport)
	c.enum("policy.default_access", p.DefaultAccess, AccessAllow, AccessBlock, AccessQuarantine)
	c.notNegative("policy.discovery_period", p.DiscoveryPeriod)
	groupNames := make([]string, 0, len(p.Groups))
	for name, members := range p.Groups {
		gp := mapPath("policy.groups", name)
		groupNames = append(groupNames, name)
		if name == GroupAll {
			c.errf(gp, "choose another name", `"all" is reserved: it means every user`)
		}
		for i, m := range members {
			if strings.TrimSpace(m) == "" {
				c.errf(fmt.Sprintf("%s[%d]", gp, i), "", "must not be empty")
			}
		}
	}
	for user, d := range p.Users {
		up := mapPath("policy.users", user)
		allowed := map[string]bool{}
		for i, id := range d.AllowedDevices {
			c.deviceID(fmt.Sprintf("%s.allowed_devices[%d]", up, i), id)
			allowed[id] = true
		}
		for i, id := range d.BlockedDevices {
			ip := fmt.Sprintf("%s.blocked_devices[%d]", up, i)
			c.deviceID(ip, id)
			if allowed[id] {
				c.errf(ip, "remove it from one of the lists", "device %s is both allowed and blocked", show(id))
			}
		}
	}
	ruleNames := map[string]int{}
	for i := range p.Rules {
		c.validateRule(p, i, ruleNames, groupNames)
	}
	c.validateCompliance(p, groupNames)
	q := &p.Quarantine
	if q.Notice.From != "" {
		if _, err := mail.ParseAddress(q.Notice.From); err != nil {
			c.errf("policy.quarantine.notice.from", `write an address such as "IT Service Desk <it@corp.example.com>"`,
				"invalid mail address %s", show(q.Notice.From))
		}
	}
	if strings.TrimSpace(q.Notice.Subject) == "" {
		c.errf("policy.quarantine.notice.subject", "write the subject line users see, or remove the key for the default",
			"must not be empty")
	}
	if q.Notice.EnrollURL != "" {
		c.checkURL("policy.quarantine.notice.enroll_url", q.Notice.EnrollURL, false)
	}
	if q.AdminWebhook != "" {
		if u, ok := c.checkURL("policy.quarantine.admin_webhook", q.AdminWebhook, false); ok && u.Scheme == "http" {
			c.warnf("policy.quarantine.admin_webhook", "use https://", "webhook calls are not encrypted")
		}
	}
}

// deviceID checks an EAS DeviceId as listed in policy.users (MS-ASHTTP: no
// commas or special characters).
func (c *checker) deviceID(path, id string) {
	if id == "" {
		c.errf(path, "", "must not be empty")
		return
	}
	for _, r := range id {
		if r <= ' ' || r == ',' || r == 0x7f {
			c.errf(path, "copy the DeviceId from the request log; it has letters and digits only",
				"invalid DeviceId %s", show(id))
			return
		}
	}
}

func (c *checker) validateRule(p *Policy, i int, names map[string]int, groups []string) {
	r := &p.Rules[i]
	rp := fmt.Sprintf("policy.rules[%d]", i)
	if r.Name == "" {
		c.errf(rp+".name", "every rule needs a name for logs, such as block-old-ios", "missing: a rule needs a name")
	} else if j, dup := names[r.Name]; dup {
		c.errf(rp+".name", "rename one of them", "rule name %s is already used by policy.rules[%d]", show(r.Name), j)
	} else {
		names[r.Name] = i
	}
	if r.Access == "" {
		c.errf(rp+".access", "add access: allow, block or quarantine", "missing: a rule needs access")
	} else {
		c.enum(rp+".access", r.Access, AccessAllow, AccessBlock, AccessQuarantine)
	}
	if r.Mode != "" {
		c.enum(rp+".mode", r.Mode, ModeEnforce, ModeReport)
	}
	m := &r.Match
	mp := rp + ".match"
	if m.IsZero() {
		c.errf(mp, "add a condition such as match: {client: outlook-mobile}", "missing: a rule needs at least one match key")
		return
	}
	for _, pf := range []struct {
		key  string
		vals Patterns
	}{{"device_type", m.DeviceType}, {"device_model", m.DeviceModel}, {"device_os", m.DeviceOS}, {"user_agent", m.UserAgent}} {
		for j, v := range pf.vals {
			vp := listPath(mp+"."+pf.key, j, len(pf.vals))
			if v == "" {
				c.errf(vp, "", "must not be empty")
				continue
			}
			if m.Regex {
				if _, err := regexp.Compile(v); err != nil {
					c.errf(vp, "use Go (RE2) syntax", "invalid regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
				}
			} else if strings.ContainsAny(v, regexMeta) || strings.Contains(v, ".*") {
				c.warnf(vp, "set regex: true in this match, or remove the regular-expression characters",
					"looks like a regular expression, but regex is false: it is matched literally")
			}
		}
	}
	for j, v := range m.Client {
		if !validClient(v) {
			hint := "use a client slug such as ios-mail, outlook-mobile, gmail, samsung-email"
			if s := suggest(v, clientSlugs()); s != "" {
				hint = `did you mean "` + s + `"?`
			}
			c.errf(listPath(mp+".client", j, len(m.Client)), hint, "unknown client %s", show(v))
		}
	}
	for j, v := range m.OSFamily {
		if !validOSFamily(v) {
			hint := "use an OS name such as iOS, Android, Windows"
			if s := suggest(v, osFamilyNames()); s != "" {
				hint = `did you mean "` + s + `"?`
			}
			c.errf(listPath(mp+".os_family", j, len(m.OSFamily)), hint, "unknown OS family %s", show(v))
		}
	}
	if len(m.OSFamily) > 1 {
		c.errf(mp+".os_family", "write one rule per OS family", "a rule matches one OS family, got %d", len(m.OSFamily))
	}
	if m.OSVersionBelow != "" {
		if !validOSVersion(m.OSVersionBelow) {
			c.errf(mp+".os_version_below", `write a version such as "16.0" or "6.1.3", quoted`, "invalid version %s", show(m.OSVersionBelow))
		} else if len(m.OSFamily) == 0 {
			c.errf(mp+".os_version_below", "add os_family, such as {os_family: iOS, os_version_below: \"16.0\"}",
				"os_version_below needs os_family: versions of different systems do not compare")
		}
	}
	for j, v := range m.AuthMethod {
		c.enum(listPath(mp+".auth_method", j, len(m.AuthMethod)), v, "certificate", "basic", "passthrough", "none")
	}
	for j, v := range m.Users {
		if strings.TrimSpace(v) == "" {
			c.errf(listPath(mp+".users", j, len(m.Users)), "", "must not be empty")
		}
	}
	for j, g := range m.Groups {
		c.groupRef(listPath(mp+".groups", j, len(m.Groups)), g, p.Groups, groups, false)
	}
}

// listPath names element j of a Patterns value, which may have been written as one string.
func listPath(path string, j, n int) string {
	if n == 1 {
		return path
	}
	return fmt.Sprintf("%s[%d]", path, j)
}

// groupRef checks a group name; with users true, names containing '@' or '\' are users.
func (c *checker) groupRef(path, name string, defined map[string][]string, names []string, users bool) {
	if name == GroupAll {
		return
	}
	if users && strings.ContainsAny(name, `@\`) {
		return
	}
	if _, ok := defined[name]; ok {
		return
	}
	hint := "define it under policy.groups"
	if users {
		hint += `, or write a user with its domain (user@corp.example.com)`
	}
	if s := suggest(name, names); s != "" {
		hint = `did you mean "` + s + `"?`
	}
	if name == "" {
		c.errf(path, "", "must not be empty")
		return
	}
	c.errf(path, hint, "unknown group %s", show(name))
}

var guidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (c *checker) validateCompliance(p *Policy, groups []string) {
	cp := &p.Compliance
	for i, v := range cp.RequireFor {
		c.groupRef(fmt.Sprintf("policy.compliance.require_for[%d]", i), v, p.Groups, groups, true)
	}
	for i, v := range cp.Exclude {
		c.groupRef(fmt.Sprintf("policy.compliance.exclude[%d]", i), v, p.Groups, groups, true)
	}
	s := &cp.Source
	const sp = "policy.compliance.source"
	switch {
	case s.Type == "" && len(cp.RequireFor) > 0:
		c.errf(sp+".type", "set type: file, http or graph", "missing: require_for is set, so a compliance source is required")
	case s.Type == "":
	case !c.enum(sp+".type", s.Type, SourceFile, SourceHTTP, SourceGraph):
	default:
		if len(cp.RequireFor) == 0 {
			c.warnf(sp, "list users or groups under policy.compliance.require_for, or [all]",
				"no one is required to be compliant, so the source is never asked")
		}
		why := fmt.Sprintf("with type %s", s.Type)
		switch s.Type {
		case SourceFile:
			if s.Path == "" {
				c.errf(sp+".path", "name the CSV file: user,device_id,state[,expires]", "missing: required with type file")
			}
			c.notUsed(sp, why, "remove it, or change type", "url", "token_file", "client_certificate", "client_key",
				"timeout", "retries", "tenant_id", "client_id", "client_secret_file", "authority_url", "graph_url",
				"full_sync", "quick_sync")
		case SourceHTTP:
			if s.URL == "" {
				c.errf(sp+".url", "the verdict endpoint, such as https://mdm.corp.example.com/api/eas-verdict", "missing: required with type http")
			} else if u, ok := c.checkURL(sp+".url", s.URL, false); ok && u.Scheme == "http" && !isLoopback(u.Hostname()) {
				c.warnf(sp+".url", "use https://", "compliance lookups are not encrypted")
			}
			c.pair(sp+".client_certificate", s.ClientCertificate, sp+".client_key", s.ClientKey)
			c.notUsed(sp, why, "remove it, or change type", "path", "tenant_id", "client_id", "client_secret_file",
				"authority_url", "graph_url", "full_sync", "quick_sync", "max_drop")
		case SourceGraph:
			if s.TenantID == "" {
				c.errf(sp+".tenant_id", "the Entra ID tenant GUID or its primary domain", "missing: required with type graph")
			} else if !guidRe.MatchString(s.TenantID) && !hostnameRe.MatchString(s.TenantID) {
				c.errf(sp+".tenant_id", "the Entra ID tenant GUID or its primary domain", "invalid tenant id %s", show(s.TenantID))
			}
			if s.ClientID == "" {
				c.errf(sp+".client_id", "the application (client) id GUID of the app registration", "missing: required with type graph")
			} else if !guidRe.MatchString(s.ClientID) {
				c.errf(sp+".client_id", "the application (client) id is a GUID such as 00000000-0000-0000-0000-000000000000",
					"invalid client id %s", show(s.ClientID))
			}
			switch {
			case s.ClientSecretFile == "" && s.ClientCertificate == "":
				c.errf(sp+".client_secret_file", "set client_secret_file, or client_certificate and client_key",
					"missing: graph needs a client secret or a client certificate")
			case s.ClientSecretFile != "" && s.ClientCertificate != "":
				c.errf(sp+".client_certificate", "remove client_certificate or client_secret_file",
					"give either client_secret_file or client_certificate, not both")
			default:
				c.pair(sp+".client_certificate", s.ClientCertificate, sp+".client_key", s.ClientKey)
			}
			for _, k := range []struct{ key, v string }{{"authority_url", s.AuthorityURL}, {"graph_url", s.GraphURL}} {
				if u, ok := c.checkURL(sp+"."+k.key, k.v, false); ok && u.Scheme != "https" {
					c.errf(sp+"."+k.key, "use https://", "must be an https URL")
				}
			}
			c.positive(sp+".full_sync", s.FullSync)
			c.positive(sp+".quick_sync", s.QuickSync)
			c.notUsed(sp, why, "remove it, or change type", "path", "url", "token_file")
		}
		if s.Type != SourceHTTP && (s.MaxDrop <= 0 || s.MaxDrop > 100) {
			c.errf(sp+".max_drop", "give a share above 0% and at most 100%, such as 50%; 100% holds back only empty or unparsable content",
				"must be above 0%% and at most 100%%, got %s", s.MaxDrop)
		}
		if s.Type != SourceFile {
			c.positive(sp+".timeout", s.Timeout)
			if s.Retries < 0 || s.Retries > 10 {
				c.errf(sp+".retries", "", "must be between 0 and 10, got %d", s.Retries)
			}
		}
	}
	ca := &cp.Cache
	const cpth = "policy.compliance.cache"
	c.positive(cpth+".ttl", ca.TTL)
	c.positive(cpth+".negative_ttl", ca.NegativeTTL)
	c.notNegative(cpth+".stale_if_error", ca.StaleIfError)
	c.positive(cpth+".lookup_timeout", ca.LookupTimeout)
	c.notNegative(cpth+".refresh_before", ca.RefreshBefore)
	if ca.TTL > 0 && ca.RefreshBefore >= ca.TTL {
		c.errf(cpth+".refresh_before", "make it shorter than ttl", "refresh_before %s%s is not shorter than ttl %s%s",
			ca.RefreshBefore, c.origin(cpth+".refresh_before"), ca.TTL, c.origin(cpth+".ttl"))
	}
	c.atLeast(cpth+".max_entries", ca.MaxEntries, 1)
	c.enum(cpth+".on_unavailable", ca.OnUnavailable, AccessAllow, AccessBlock, AccessQuarantine)
}

// validateAdmin checks the admin listener and its tokens. Without any
// token the listener accepts loopback clients only, so a non-loopback
// address without one is a warning, not an error: nothing is exposed.
func (c *checker) validateAdmin(a *Admin) {
	if a.Address != "" {
		if host, ok := c.address("admin.address", a.Address); ok && a.TokenFile == "" && len(a.Tokens) == 0 && !isLoopback(host) {
			c.warnf("admin.address", "set admin.tokens (or admin.token_file), or listen on 127.0.0.1",
				"without a token the admin listener answers loopback clients only")
		}
	}
	names := map[string]bool{}
	if a.TokenFile != "" {
		names["admin"] = true
	}
	for i, t := range a.Tokens {
		p := fmt.Sprintf("admin.tokens[%d]", i)
		switch {
		case t.Name == "":
			c.errf(p+".name", "name each token: the audit trail records who acted by this name", "a token needs a name")
		case names[t.Name]:
			c.errf(p+".name", "give each token its own name (admin.token_file is named \"admin\")", "duplicate token name %q", t.Name)
		}
		names[t.Name] = true
		if t.File == "" {
			c.errf(p+".file", "put the token in a file readable only by easgate", "a token needs a file")
		}
		c.enum(p+".role", t.Role, RoleRead, RoleOperate, RoleAdmin)
	}
	c.validateDigest(&a.Digest)
	if st := a.Console.SessionTimeout.D(); st < 5*time.Second || st > 24*time.Hour {
		c.errf("admin.console.session_timeout", "use 5s to 24h (30m is the default)", "session_timeout %s is out of range", st)
	}
}

// validateAdminTLS checks admin.tls: one source of certificate, and
// client certificates only over TLS, each mapped to a known role.
func (c *checker) validateAdminTLS(a *Admin, plainHTTP bool) {
	const p = "admin.tls"
	t := &a.TLS
	if t.UseGatewayCertificate && (t.Certificate != "" || t.Key != "") {
		c.errf(p+".use_gateway_certificate", "set either certificate and key, or use_gateway_certificate", "two certificates for the admin listener")
	}
	if (t.Certificate == "") != (t.Key == "") && !t.UseGatewayCertificate {
		c.errf(p+".certificate", "set both certificate and key (PEM)", "the admin listener needs a certificate and its key")
	}
	if t.UseGatewayCertificate && plainHTTP {
		c.errf(p+".use_gateway_certificate", "set certificate and key for the admin listener", "listen.plain_http is set: the gateway has no certificate to share")
	}
	if !t.Enabled() && (t.ClientCAs != "" || len(t.Clients) > 0) {
		c.errf(p+".client_cas", "set certificate and key, or use_gateway_certificate", "admin client certificates need TLS on the admin listener")
	}
	if len(t.Clients) > 0 && t.ClientCAs == "" {
		c.errf(p+".client_cas", "name the PEM CAs that sign the admin certificates", "admin.tls.clients need client_cas")
	}
	seen := map[string]bool{}
	for i, cl := range t.Clients {
		q := fmt.Sprintf("%s.clients[%d]", p, i)
		switch {
		case cl.Name == "":
			c.errf(q+".name", "write the certificate's UPN, e-mail or common name", "a client needs a name")
		case seen[strings.ToLower(cl.Name)]:
			c.errf(q+".name", "list each certificate once", "duplicate client %q", cl.Name)
		}
		seen[strings.ToLower(cl.Name)] = true
		c.enum(q+".role", cl.Role, RoleRead, RoleOperate, RoleAdmin)
	}
	if t.Enabled() && a.Address == "" {
		c.warnf(p, "set admin.address", "admin.tls is set but the admin listener is off")
	}
	if host, _, err := net.SplitHostPort(a.Address); err == nil && !t.Enabled() && !isLoopback(host) && (a.TokenFile != "" || len(a.Tokens) > 0) {
		c.warnf(p, "set admin.tls (certificate and key, or use_gateway_certificate), or keep the admin listener behind a TLS proxy",
			"admin tokens and console sessions cross the network unencrypted")
	}
}

// validateDigest checks admin.digest when it is on (smtp set).
func (c *checker) validateDigest(d *Digest) {
	const p = "admin.digest"
	if d.SMTP == "" {
		if d.From != "" || len(d.To) > 0 || d.Username != "" {
			c.errf(p+".smtp", "set smtp to the relay's host:port, or remove admin.digest", "the digest has recipients but no SMTP relay")
		}
		return
	}
	if host, port, err := net.SplitHostPort(d.SMTP); err != nil || host == "" || port == "" {
		c.errf(p+".smtp", "write host:port, e.g. relay.corp.example.com:587", "%q is not host:port", d.SMTP)
	}
	if d.TLS != "" {
		c.enum(p+".tls", d.TLS, DigestSTARTTLS, DigestTLS, DigestNoTLS)
	}
	if d.TLS == DigestNoTLS && d.Username != "" {
		c.errf(p+".tls", "use starttls or tls with SMTP AUTH", "the SMTP password would cross the network unencrypted")
	}
	if _, err := mail.ParseAddress(d.From); err != nil {
		c.errf(p+".from", `write an address such as "easgate <easgate@corp.example.com>"`, "from %q: %v", d.From, err)
	}
	if len(d.To) == 0 {
		c.errf(p+".to", "list the administrators' addresses", "the digest needs at least one recipient")
	}
	for i, a := range d.To {
		if _, err := mail.ParseAddress(a); err != nil {
			c.errf(fmt.Sprintf("%s.to[%d]", p, i), "write one address per entry", "%q: %v", a, err)
		}
	}
	if (d.Username == "") != (d.PasswordFile == "") {
		c.errf(p+".username", "set both username and password_file, or neither", "SMTP AUTH needs a user and a password")
	}
	if d.Interval != 0 && d.Interval.D() < time.Second {
		c.errf(p+".interval", "use at least 1s (1h is the default)", "interval %s is too short", d.Interval.D())
	}
}
