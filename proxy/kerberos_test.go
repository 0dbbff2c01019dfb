package proxy

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// deadKDC accepts TCP connections on loopback and closes them at once: a
// KDC that does not answer. It counts the connections.
func deadKDC(t *testing.T) (addr string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), conns
}

func testKeytabFile(t *testing.T) string {
	t.Helper()
	kt := keytab.New()
	if err := kt.AddEntry("easgate-svc", "CORP.EXAMPLE.COM", "test only", time.Now(), 2, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
		t.Fatal(err)
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "svc.keytab")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKerberosWithoutKDC drives the Kerberos path of the pipeline with no
// KDC answering: a certificate phone gets 503 with Retry-After and the CAS
// sees nothing; a certificate of a domain easgate does not serve is
// refused before any KDC connection; a Basic phone (use:
// certificate_only) goes to the CAS with its own credentials and no KDC
// exchange. check-config's keytab check accepts the keytab and names a
// missing principal.
func TestKerberosWithoutKDC(t *testing.T) {
	p := newTestPKI(t)
	srvCert, srvKey, _ := p.issue(t, "gateway", "", true)
	jdoeCert, jdoeKey, _ := p.issue(t, "jdoe", "jdoe@corp.example.com", false)
	evilCert, evilKey, _ := p.issue(t, "mallory", "mallory@evil.example.com", false)
	kdc, conns := deadKDC(t)
	kt := testKeytabFile(t)

	cas := newFakeCAS(t)
	y := tlsListenYAML(testYAML([]string{cas.url()}, nil), srvCert, srvKey,
		"    client_certificates:\n      mode: optional\n      trusted_cas: "+p.caPath+"\n")
	y = strings.Replace(y, "upstreams:\n", "upstreams:\n  kerberos:\n    realm: CORP.EXAMPLE.COM\n    kdcs: [\""+kdc+
		"\"]\n    service_principal: easgate-svc\n    keytab: "+kt+"\n    spn: HTTP/cas.corp.example.com\n    timeout: 2s\n", 1)
	y += "auth:\n  mode: either\n  certificate_identity: upn\n"
	cfg := mustParse(t, y)
	if errs := CheckKerberosKeytab(cfg); len(errs) != 0 {
		t.Fatalf("keytab check: %v", errs)
	}
	g := startGateway(t, cfg)

	do := func(certPath, keyPath, user, authz string) *http.Response {
		t.Helper()
		c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: p.clientTLS(t, certPath, keyPath)}}
		req, _ := http.NewRequest("POST", "https://"+g.addr+easURI("FolderSync", user, "KRB1"), strings.NewReader(""))
		req.Header.Set("MS-ASProtocolVersion", "14.1")
		req.Header.Set("Content-Type", "application/vnd.ms-sync.wbxml")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	resp := do(jdoeCert, jdoeKey, "jdoe", "")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("KDC not answering: %d Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if conns.Load() == 0 {
		t.Error("no KDC connection was tried")
	}
	before := conns.Load()
	if resp := do(evilCert, evilKey, "mallory", ""); resp.StatusCode != 403 {
		t.Errorf("unserved domain: %d; want 403", resp.StatusCode)
	}
	if resp := do("", "", "jdoe", testBasicAuth); resp.StatusCode != 200 {
		t.Errorf("Basic phone: %d; want 200 from the CAS", resp.StatusCode)
	}
	if n := conns.Load() - before; n != 0 {
		t.Errorf("%d KDC connections for an unserved domain and a Basic phone; want 0", n)
	}
	reqs := cas.requests()
	if len(reqs) != 1 || reqs[0].header["authorization"] != testBasicAuth {
		t.Errorf("the CAS saw %+v; want only the Basic phone's request, credentials unchanged", reqs)
	}
	wantMetrics(t, g.s,
		`easgate_kerberos_failures_total{cause="kdc_unreachable"} 1`,
		`easgate_rejected_requests_total{reason="kerberos_kdc_unreachable"} 1`,
		`easgate_kerberos_s4u_exchanges 1`)

	cfg.Upstreams.Kerberos.ServicePrincipal = "other-svc"
	if errs := CheckKerberosKeytab(cfg); len(errs) != 1 || !strings.Contains(errs[0].Error(), "no AES or RC4 key for other-svc@CORP.EXAMPLE.COM") {
		t.Errorf("keytab check for a principal it lacks: %v", errs)
	}
}

// TestKerberosReload: a reload with the same upstreams.kerberos and keytab
// keeps the Delegator (its ticket cache); a changed setting or a rewritten
// keytab builds a new one; a keytab without the principal's keys is
// refused and the running state kept.
func TestKerberosReload(t *testing.T) {
	cas := newFakeCAS(t)
	kt := testKeytabFile(t)
	yaml := func(spn, keytabPath string) string {
		y := testYAML([]string{cas.url()}, nil)
		return strings.Replace(y, "upstreams:\n", "upstreams:\n  kerberos:\n    realm: CORP.EXAMPLE.COM\n    kdcs: [\"127.0.0.1:1\"]\n"+
			"    service_principal: easgate-svc\n    keytab: "+keytabPath+"\n    spn: "+spn+"\n", 1) + "auth:\n  mode: either\n"
	}
	p := startProxy(t, mustParse(t, yaml("HTTP/cas.corp.example.com", kt)))
	cur := func() *krbAuth { return p.s.cur.Load().authn.krb }
	first := cur()
	if first == nil || first.d == nil || first.primary != "HTTP/cas.corp.example.com" {
		t.Fatalf("kerberos part %+v", first)
	}
	if err := p.s.Reload(mustParse(t, yaml("HTTP/cas.corp.example.com", kt))); err != nil {
		t.Fatal(err)
	}
	if cur().d != first.d {
		t.Error("an unchanged reload built a new Delegator (the ticket cache is lost)")
	}
	if err := p.s.Reload(mustParse(t, yaml("HTTP/mail.corp.example.com", kt))); err != nil {
		t.Fatal(err)
	}
	if cur().d == first.d || cur().primary != "HTTP/mail.corp.example.com" {
		t.Error("a changed SPN kept the old Delegator")
	}
	second := cur().d
	if err := os.WriteFile(kt, []byte{0x05, 0x02}, 0o600); err != nil { // an empty keytab: no keys at all
		t.Fatal(err)
	}
	if err := p.s.Reload(mustParse(t, yaml("HTTP/mail.corp.example.com", kt))); err == nil || !strings.Contains(err.Error(), "keytab") {
		t.Errorf("reload with a keytab without keys: %v; want an error naming the keytab", err)
	}
	if cur().d != second {
		t.Error("a failed reload replaced the running Delegator")
	}
}
