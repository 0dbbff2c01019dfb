package kerberos

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// testServiceTicket is a ticket for alice@CORP.TEST to HTTP/cas.corp.test,
// encrypted with the key in the returned keytab, as a KDC would issue it.
func testServiceTicket(t *testing.T) (*ticket, *keytab.Keytab) {
	t.Helper()
	kt := keytab.New()
	if err := kt.AddEntry("HTTP/cas.corp.test", "CORP.TEST", "service key", time.Now(), 3, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
		t.Fatal(err)
	}
	alice := userName("alice")
	now := time.Now().UTC()
	tkt, key, err := messages.NewTicket(alice, "CORP.TEST", types.NewPrincipalName(nametype.KRB_NT_SRV_INST, "HTTP/cas.corp.test"), "CORP.TEST",
		types.NewKrbFlags(), kt, etypeID.AES256_CTS_HMAC_SHA1_96, 3, now, now, now.Add(time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	der, err := tkt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return &ticket{ticketDER: der, key: key, cname: alice, crealm: "CORP.TEST", end: now.Add(time.Hour)}, kt
}

// TestNegotiateTokenAccepted: gokrb5's SPNEGO acceptor (an implementation
// independent of token.go) accepts the token as alice@CORP.TEST; two
// tokens for one ticket differ (fresh authenticators).
func TestNegotiateTokenAccepted(t *testing.T) {
	tk, kt := testServiceTicket(t)
	h, err := negotiateToken(tk)
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := strings.CutPrefix(h, "Negotiate ")
	if !ok {
		t.Fatalf("header %.20q", h)
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		t.Fatal(err)
	}
	var tok spnego.SPNEGOToken
	if err := tok.Unmarshal(b); err != nil {
		t.Fatalf("gokrb5 cannot read the token: %v", err)
	}
	if !tok.Init || len(tok.NegTokenInit.MechTypes) != 1 || tok.NegTokenInit.MechTypes[0].String() != "1.2.840.113554.1.2.2" {
		t.Fatalf("NegTokenInit %+v", tok.NegTokenInit.MechTypes)
	}
	s := spnego.SPNEGOService(kt, service.DecodePAC(false), service.KeytabPrincipal("HTTP/cas.corp.test"))
	ok, ctx, st := s.AcceptSecContext(&tok)
	if !ok {
		t.Fatalf("the acceptor refused the token: %v", st)
	}
	// gokrb5's context key for the authenticated client (spnego/http.go).
	id, _ := ctx.Value("github.com/jcmturner/gokrb5/v8/ctxCredentials").(*credentials.Credentials)
	if id == nil || id.UserName() != "alice" || id.Domain() != "CORP.TEST" {
		t.Errorf("accepted as %v; want alice@CORP.TEST", id)
	}
	h2, err := negotiateToken(tk)
	if err != nil || h2 == h {
		t.Errorf("second token: %v, equal to the first: %v", err, h2 == h)
	}
}

// BenchmarkNegotiateToken: the per-request work on a cached ticket.
func BenchmarkNegotiateToken(b *testing.B) {
	tk, _ := testServiceTicket(&testing.T{})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := negotiateToken(tk); err != nil {
			b.Fatal(err)
		}
	}
}
