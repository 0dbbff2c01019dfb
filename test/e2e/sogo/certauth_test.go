package sogo_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/easgate/easgate/eas"
)

// The certificate gateway: TLS with a server certificate from a PKI made
// for the run, client certificates required (listen.tls.client_certificates
// mode required), auth.mode both with the identity read from the UPN in the
// certificate's subjectAltName, and device binding enforced. The phone
// presents its certificate and Basic credentials; easgate checks that both
// name the EAS User and forwards the Basic credentials, which SOGo checks.

var (
	pki    *testPKI // the run's CA, made by certSetup
	pkiErr error
)

var certVariants = []struct {
	name    string
	version eas.Version
	base64  bool
	user    string
}{
	{"14.1-plain", eas.V141, false, "heidi"},
	{"12.1-base64", eas.V121, true, "ivan"},
}

func certSetup(e *sogoEnv) gwSetup {
	pki, pkiErr = newTestPKI()
	s := gwSetup{name: "certificate", scheme: "https"}
	if pkiErr == nil {
		s.tls = pki.phoneTLS()
	}
	var ready tls.Certificate // the readiness probe's client certificate
	user := certVariants[0].user
	s.config = func(dir string, listenPort, adminPort int) (string, error) {
		if pkiErr != nil {
			return "", pkiErr
		}
		ca, crt, key, err := pki.writeServer(dir)
		if err != nil {
			return "", err
		}
		if ready, err = pki.issue("readiness probe", user+"@"+e.MailDomain); err != nil {
			return "", err
		}
		listen := fmt.Sprintf(`  tls:
    certificate: %s
    key: %s
    client_certificates:
      mode: required
      trusted_cas: %s
`, crt, key, ca)
		return baseConfig(dir, e.Upstream, listenPort, adminPort, listen, `auth:
  mode: both
  certificate_identity: upn
  device_binding: enforce
policy:
  mode: enforce
  default_access: allow
`), nil
	}
	s.readyClient = func(url string) *easClient {
		return newClient(url, user, e.Passwords[user], eas.V141, false, "GC").withTLS(s.tls, &ready)
	}
	return s
}

// clientCert issues a client certificate with upn in its subjectAltName.
func clientCert(t *testing.T, upn string) *tls.Certificate {
	t.Helper()
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	c, err := pki.issue("phone of "+upn, upn)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// TestCertificateAuth runs the phone's life cycle through the certificate
// gateway (client certificate with the user's UPN plus Basic credentials,
// forwarded to SOGo), then checks what easgate refuses itself, without
// asking SOGo: a certificate of another user, Basic credentials or an EAS
// User that the certificate does not name, a missing password, a second
// certificate on a bound device, and a connection without a certificate.
func TestCertificateAuth(t *testing.T) {
	e := requireSOGo(t)
	g := needGateway(t, cgw, cgwErr)
	t.Parallel()
	for _, v := range certVariants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			upn := v.user + "@" + e.MailDomain
			c := g.client(v.user, e.Passwords[v.user], v.version, v.base64, "C"+v.name[:2], clientCert(t, upn))
			defer c.close()
			m := setUp(t, ctx, e, c)
			shortPing(t, ctx, e, c, m)

			// Device binding: the same device with another certificate of
			// the same user is refused (a copied device id).
			other := g.client(v.user, e.Passwords[v.user], v.version, v.base64, "CB", clientCert(t, upn))
			defer other.close()
			other.deviceID = c.deviceID
			resp, err := other.post(ctx, eas.CmdFolderSync, folderSyncBody("0"))
			if err != nil {
				t.Fatal(err)
			}
			if resp.code != http.StatusForbidden {
				t.Errorf("a second certificate on device %s: want HTTP 403, got %s", c.deviceID, resp.dump())
			}
		})
	}

	cases := []struct {
		name     string
		certUser string // UPN user part in the client certificate ("": none)
		basic    string // Basic user ("": no Authorization)
		pass     string // "": the Basic user's password
		easUser  string // EAS User ("": the Basic user)
		want     int    // 0: the TLS handshake must fail
		upstream bool   // the request must reach SOGo
	}{
		{"certificate of another user", "ivan", "heidi", "", "", http.StatusForbidden, false},
		{"certificate of an unknown user", "mallory", "heidi", "", "", http.StatusForbidden, false},
		{"password of another user", "heidi", "ivan", "", "", http.StatusForbidden, false},
		{"EAS User of another user", "heidi", "heidi", "", "ivan", http.StatusForbidden, false},
		{"no password", "heidi", "", "", "heidi", http.StatusUnauthorized, false},
		{"wrong password reaches SOGo", "heidi", "heidi", "not-heidi's", "", http.StatusUnauthorized, true},
		{"no client certificate", "", "heidi", "", "", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			defer cancel()
			basic, pass := tc.basic, tc.pass
			if pass == "" {
				pass = e.Passwords[basic]
			}
			var cert *tls.Certificate
			if tc.certUser != "" {
				cert = clientCert(t, tc.certUser+"@"+e.MailDomain)
			}
			c := g.client(basic, pass, eas.V141, false, "CR", cert)
			defer c.close()
			c.noAuth = basic == ""
			c.easUser = tc.easUser
			resp, err := c.post(ctx, eas.CmdFolderSync, folderSyncBody("0"))
			if tc.want == 0 {
				if err == nil {
					t.Fatalf("without a client certificate: want the TLS handshake refused, got %s", resp.dump())
				}
				t.Logf("refused: %v", err)
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if resp.code != tc.want {
					t.Fatalf("want HTTP %d, got %s", tc.want, resp.dump())
				}
				challenge := strings.ToLower(resp.header.Get("WWW-Authenticate"))
				switch {
				case tc.want == http.StatusUnauthorized && !strings.HasPrefix(challenge, "basic"):
					t.Errorf("HTTP 401 without a Basic challenge: %s", resp.dump())
				case tc.upstream && !strings.Contains(challenge, `realm="sogo"`):
					t.Errorf("want SOGo's own challenge (realm \"SOGo\"), got %q", resp.header.Get("WWW-Authenticate"))
				case !tc.upstream && strings.Contains(challenge, `realm="sogo"`):
					t.Errorf("SOGo's challenge %q: the request reached SOGo", resp.header.Get("WWW-Authenticate"))
				}
			}
			want := 0
			if tc.upstream {
				want = 1
			}
			cmds, err := e.upstreamCommandsAfter(ctx, c.deviceID, want)
			if err != nil {
				t.Fatal(err)
			}
			if reached := len(cmds) > 0; reached != tc.upstream {
				t.Errorf("reached SOGo: %v (requests: %v), want %v", reached, cmds, tc.upstream)
			}
		})
	}
}
