package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Kerberos is upstreams.kerberos: Kerberos constrained delegation to the
// CAS (issue 17). A phone that signs in with a client certificate reaches
// Exchange as its user: easgate gets a service ticket in the user's name
// (S4U2Self, then S4U2Proxy to the CAS's SPN) with its service account's
// keytab and sends "Authorization: Negotiate" to the CAS. Off while realm
// is empty.
type Kerberos struct {
	Realm            string   `yaml:"realm" json:"realm"`
	KDCs             []string `yaml:"kdcs" json:"kdcs"` // host[:port], port 88 by default, tried in order
	ServicePrincipal string   `yaml:"service_principal" json:"service_principal"`
	Keytab           string   `yaml:"keytab" json:"keytab" check:"file"`
	SPN              string   `yaml:"spn" json:"spn"` // HTTP/cas.corp.example.com; per server: upstreams.servers[].spn
	TicketLifetime   Duration `yaml:"ticket_lifetime" json:"ticket_lifetime"`
	RenewBefore      Duration `yaml:"renew_before" json:"renew_before"`
	Timeout          Duration `yaml:"timeout" json:"timeout"`
	// Use says which phones get a Kerberos ticket: certificate_only (the
	// default: certificate phones that sent no Basic credentials; those
	// that did keep them) or certificate (every certificate phone; Basic
	// credentials it also sends are not forwarded).
	Use string `yaml:"use" json:"use"`
}

// Kerberos use values.
const (
	KerberosCertificateOnly = "certificate_only"
	KerberosCertificate     = "certificate"
)

// Enabled reports whether constrained delegation is configured.
func (k *Kerberos) Enabled() bool { return k.Realm != "" }

// KDCAddrs are the KDCs as host:port (port 88 when none is given).
func (k *Kerberos) KDCAddrs() []string {
	out := make([]string, 0, len(k.KDCs))
	for _, a := range k.KDCs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(strings.Trim(a, "[]"), "88")
		}
		out = append(out, a)
	}
	return out
}

// SPNOf is the SPN for server s: its own, else upstreams.kerberos.spn.
func (k *Kerberos) SPNOf(s Server) string {
	if s.SPN != "" {
		return s.SPN
	}
	return k.SPN
}

func (c *checker) validateKerberos(cfg *Config) {
	k := &cfg.Upstreams.Kerberos
	const base = "upstreams.kerberos"
	if !k.Enabled() {
		c.notUsed(base, "while upstreams.kerberos.realm is empty", "set realm, or remove the key",
			"kdcs", "service_principal", "keytab", "spn", "ticket_lifetime", "renew_before", "timeout", "use")
		for i, s := range cfg.Upstreams.Servers {
			if s.SPN != "" {
				c.errf(fmt.Sprintf("upstreams.servers[%d].spn", i), "set upstreams.kerberos, or remove spn",
					"not used while upstreams.kerberos.realm is empty")
			}
		}
		return
	}
	if strings.ContainsAny(k.Realm, " /@\\") {
		c.errf(base+".realm", "such as CORP.EXAMPLE.COM", "invalid realm %s", show(k.Realm))
	} else if k.Realm != strings.ToUpper(k.Realm) {
		c.warnf(base+".realm", "write it as Active Directory does: "+strings.ToUpper(k.Realm),
			"Kerberos realms are case-sensitive; Active Directory's are upper case")
	}
	if len(k.KDCs) == 0 {
		c.errf(base+".kdcs", `such as ["dc1.corp.example.com:88"]`, "at least one KDC is required")
	}
	for i, a := range k.KDCs {
		p := listPath(base+".kdcs", i, len(k.KDCs))
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			host, port = strings.Trim(a, "[]"), "88"
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			c.errf(p, "the port is a number from 1 to 65535", "invalid port %s", show(port))
		} else if host == "" || strings.ContainsAny(host, " /@") {
			c.errf(p, "write host[:port], such as dc1.corp.example.com:88", "invalid KDC address %s", show(a))
		}
	}
	switch {
	case k.ServicePrincipal == "":
		c.errf(base+".service_principal", "the gateway's service account, such as easgate-svc", "required")
	case strings.ContainsAny(k.ServicePrincipal, "@ "):
		c.errf(base+".service_principal", "give the account name without @REALM, such as easgate-svc", "invalid principal %s", show(k.ServicePrincipal))
	}
	if k.Keytab == "" {
		c.errf(base+".keytab", "the service account's keytab, such as /etc/easgate/easgate-svc.keytab", "required")
	}
	c.spn(base+".spn", k.SPN)
	for i, s := range cfg.Upstreams.Servers {
		p := fmt.Sprintf("upstreams.servers[%d].spn", i)
		c.spn(p, s.SPN)
		if s.SPN == "" && k.SPN == "" {
			c.errf(p, "set upstreams.kerberos.spn, or spn on every server", "no SPN for this server")
		}
	}
	if k.TicketLifetime != 0 && k.TicketLifetime.D() < 10*time.Minute {
		c.errf(base+".ticket_lifetime", "such as 10h (Active Directory gives at most 10h)", "must be at least 10m")
	}
	c.notNegative(base+".renew_before", k.RenewBefore)
	if k.TicketLifetime != 0 && k.RenewBefore.D() >= k.TicketLifetime.D() {
		c.errf(base+".renew_before", "such as 5m", "must be shorter than ticket_lifetime")
	}
	c.notNegative(base+".timeout", k.Timeout)
	if k.Use != "" {
		c.enum(base+".use", k.Use, KerberosCertificateOnly, KerberosCertificate)
	}
	if cfg.Auth.Mode == AuthCredentials {
		c.warnf(base, "set auth.mode to certificate, either or both",
			"auth.mode credentials: no phone signs in with a certificate, so Kerberos is never used")
	}
	for i, s := range cfg.Upstreams.Servers {
		if u, err := url.Parse(s.URL); err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
			c.warnf(fmt.Sprintf("upstreams.servers[%d].url", i), "use https:// to the CAS",
				"a Negotiate header sent without TLS can be replayed by anyone who sees it")
		}
	}
}

// spn checks a service principal name such as HTTP/cas.corp.example.com.
func (c *checker) spn(path, s string) {
	if s == "" {
		return
	}
	svc, host, ok := strings.Cut(s, "/")
	if !ok || svc == "" || host == "" || strings.ContainsAny(s, " @\\") || strings.Contains(host, "/") {
		c.errf(path, "such as HTTP/cas.corp.example.com (service/host, no @REALM)", "invalid SPN %s", show(s))
	}
}
