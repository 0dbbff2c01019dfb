package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const kerberosBase = `listen:
  tls:
    certificate: /etc/easgate/gw.pem
    key: /etc/easgate/gw.key
    client_certificates:
      mode: required
      trusted_cas: /etc/easgate/ca.pem
auth:
  mode: certificate
`

// TestKerberosValidation: every problem of upstreams.kerberos is reported
// with its position and a hint, all at once.
func TestKerberosValidation(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"off but used", `upstreams:
  servers:
    - url: https://cas1.example.com
      spn: HTTP/cas1.example.com
  kerberos:
    keytab: /etc/easgate/svc.keytab
`, []string{
			"k.yaml:13:12: upstreams.servers[0].spn: not used while upstreams.kerberos.realm is empty (hint: set upstreams.kerberos, or remove spn)",
			"k.yaml:15:13: upstreams.kerberos.keytab: not used while upstreams.kerberos.realm is empty (hint: set realm, or remove the key)",
		}},
		{"everything wrong", `upstreams:
  servers:
    - url: https://cas1.example.com
      spn: cas1.example.com
    - url: https://cas2.example.com
  kerberos:
    realm: CORP.EXAMPLE.COM
    kdcs: ["dc1:99999", "bad host"]
    service_principal: svc@CORP.EXAMPLE.COM
    ticket_lifetime: 5m
    renew_before: 10m
    use: always
`, []string{
			`k.yaml:13:12: upstreams.servers[0].spn: invalid SPN "cas1.example.com" (hint: such as HTTP/cas.corp.example.com (service/host, no @REALM))`,
			`k.yaml:14:7: upstreams.servers[1].spn: no SPN for this server (hint: set upstreams.kerberos.spn, or spn on every server)`,
			`k.yaml:15:3: upstreams.kerberos.keytab: required (hint: the service account's keytab, such as /etc/easgate/easgate-svc.keytab)`,
			`k.yaml:17:12: upstreams.kerberos.kdcs[0]: invalid port "99999" (hint: the port is a number from 1 to 65535)`,
			`k.yaml:17:25: upstreams.kerberos.kdcs[1]: invalid KDC address "bad host" (hint: write host[:port], such as dc1.corp.example.com:88)`,
			`k.yaml:18:24: upstreams.kerberos.service_principal: invalid principal "svc@CORP.EXAMPLE.COM" (hint: give the account name without @REALM, such as easgate-svc)`,
			`k.yaml:19:22: upstreams.kerberos.ticket_lifetime: must be at least 10m (hint: such as 10h (Active Directory gives at most 10h))`,
			`k.yaml:20:19: upstreams.kerberos.renew_before: must be shorter than ticket_lifetime (hint: such as 5m)`,
			`k.yaml:21:10: upstreams.kerberos.use: invalid value "always" (hint: use one of: certificate_only, certificate)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("k.yaml", []byte(kerberosBase+tc.yaml))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse: %v; want config.Errors", err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestKerberosValid: a complete section parses, KDCs get port 88 and each
// server its SPN.
func TestKerberosValid(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte(kerberosBase+`upstreams:
  servers:
    - url: https://cas1.example.com
    - url: https://cas2.example.com
      spn: HTTP/cas2.corp.example.com
  kerberos:
    realm: CORP.EXAMPLE.COM
    kdcs: ["dc1.corp.example.com", "dc2.corp.example.com:1088"]
    service_principal: easgate-svc
    keytab: /etc/easgate/svc.keytab
    spn: HTTP/mail.corp.example.com
`))
	if err != nil {
		t.Fatal(err)
	}
	k := &cfg.Upstreams.Kerberos
	if got := k.KDCAddrs(); !reflect.DeepEqual(got, []string{"dc1.corp.example.com:88", "dc2.corp.example.com:1088"}) {
		t.Errorf("KDCAddrs %v", got)
	}
	if a, b := k.SPNOf(cfg.Upstreams.Servers[0]), k.SPNOf(cfg.Upstreams.Servers[1]); a != "HTTP/mail.corp.example.com" || b != "HTTP/cas2.corp.example.com" {
		t.Errorf("SPNs %q %q", a, b)
	}
	if !k.Enabled() {
		t.Error("not enabled")
	}
}
