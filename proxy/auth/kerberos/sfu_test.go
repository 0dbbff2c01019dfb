package kerberos

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hmacMD5Checksum is KERB_CHECKSUM_HMAC_MD5 written from RFC 4757 section 4
// with the standard library only, to check sfu.go's use of gokrb5.
func hmacMD5Checksum(key []byte, usage uint32, data []byte) []byte {
	m := hmac.New(md5.New, key)
	m.Write([]byte("signaturekey\x00"))
	ksign := m.Sum(nil)
	h := md5.New()
	_ = binary.Write(h, binary.LittleEndian, usage)
	h.Write(data)
	m = hmac.New(md5.New, ksign)
	m.Write(h.Sum(nil))
	return m.Sum(nil)
}

// TestPAForUserGolden: PA-FOR-USER for alice@CORP.TEST, byte for byte as
// [MS-SFU] 2.2.1 and RFC 4120's DER encoding give it (the real KDC accepts
// it: TestRealKDCS4U).
func TestPAForUserGolden(t *testing.T) {
	key := types.EncryptionKey{KeyType: etypeID.AES128_CTS_HMAC_SHA1_96, KeyValue: unhex(t, "000102030405060708090a0b0c0d0e0f")}
	user := types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{"alice"}}
	got, err := marshalPAForUser(user, "CORP.TEST", key)
	if err != nil {
		t.Fatal(err)
	}
	// The checksum covers name-type (LE32) || "alice" || "CORP.TEST" || "Kerberos", key usage 17.
	in := append(unhex(t, "01000000"), "aliceCORP.TESTKerberos"...)
	if !bytes.Equal(forUserChecksumInput(user, "CORP.TEST"), in) {
		t.Fatalf("checksum input %x; want %x", forUserChecksumInput(user, "CORP.TEST"), in)
	}
	sum := hmacMD5Checksum(key.KeyValue, 17, in)
	want := unhex(t, `
		30 4b
		   a0 12 30 10 a0 03 02 01 01 a1 09 30 07 1b 05`+hex.EncodeToString([]byte("alice"))+`
		   a1 0b 1b 09`+hex.EncodeToString([]byte("CORP.TEST"))+`
		   a2 1c 30 1a a0 04 02 02 ff 76 a1 12 04 10`+hex.EncodeToString(sum)+`
		   a3 0a 1b 08`+hex.EncodeToString([]byte("Kerberos")))
	if !bytes.Equal(got, want) {
		t.Errorf("PA-FOR-USER\n got %x\nwant %x", got, want)
	}
}

// fakeTicket is a syntactically valid ticket for sname.
func fakeTicket(sname string) messages.Ticket {
	return messages.Ticket{TktVNO: 5, Realm: "CORP.TEST", SName: types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, sname),
		EncPart: types.EncryptedData{EType: etypeID.AES256_CTS_HMAC_SHA1_96, KVNO: 2, Cipher: []byte("opaque to the client")}}
}

func testParams() tgsParams {
	return tgsParams{realm: "CORP.TEST", lifetime: time.Hour, etypes: []int32{etypeID.AES256_CTS_HMAC_SHA1_96}, now: time.Now}
}

// TestS4U2SelfRequest: KDC options forwardable and canonicalize, sname the
// service itself, PA-TGS-REQ then PA-FOR-USER naming the user.
func TestS4U2SelfRequest(t *testing.T) {
	svc := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "easgate-svc")
	key := types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: bytes.Repeat([]byte{7}, 32)}
	req, err := newS4U2SelfReq(testParams(), svc, fakeTicket("krbtgt/CORP.TEST"), key, userName("alice"), "CORP.TEST")
	if err != nil {
		t.Fatal(err)
	}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var back messages.TGSReq
	if err := back.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if got := back.ReqBody.KDCOptions.Bytes[:4]; !bytes.Equal(got, []byte{0x40, 0x01, 0, 0}) {
		t.Errorf("KDC options %x; want 40010000 (forwardable, canonicalize)", got)
	}
	if !back.ReqBody.SName.Equal(svc) || len(back.ReqBody.AdditionalTickets) != 0 {
		t.Errorf("sname %v, %d additional tickets", back.ReqBody.SName, len(back.ReqBody.AdditionalTickets))
	}
	if len(back.PAData) != 2 || back.PAData[0].PADataType != patype.PA_TGS_REQ || back.PAData[1].PADataType != patype.PA_FOR_USER {
		t.Fatalf("padata %+v; want PA-TGS-REQ, PA-FOR-USER", back.PAData)
	}
	var pa paForUser
	if _, err := asn1Unmarshal(back.PAData[1].PADataValue, &pa); err != nil {
		t.Fatal(err)
	}
	if pa.UserName.PrincipalNameString() != "alice" || pa.UserRealm != "CORP.TEST" || pa.AuthPackage != "Kerberos" {
		t.Errorf("PA-FOR-USER %+v", pa)
	}
	checkAuthenticator(t, back, key)
}

// TestS4U2ProxyRequest: cname-in-addl-tkt set, the evidence ticket as the
// one additional ticket, and the PA-TGS-REQ authenticator's checksum over
// the body with the additional ticket in it.
func TestS4U2ProxyRequest(t *testing.T) {
	svc := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "easgate-svc")
	key := types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: bytes.Repeat([]byte{9}, 32)}
	target := types.NewPrincipalName(nametype.KRB_NT_SRV_INST, "HTTP/cas.corp.test")
	req, err := newS4U2ProxyReq(testParams(), svc, fakeTicket("krbtgt/CORP.TEST"), key, fakeTicket("easgate-svc"), target)
	if err != nil {
		t.Fatal(err)
	}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var back messages.TGSReq
	if err := back.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if got := back.ReqBody.KDCOptions.Bytes[:4]; !bytes.Equal(got, []byte{0x40, 0x03, 0, 0}) {
		t.Errorf("KDC options %x; want 40030000 (forwardable, cname-in-addl-tkt, canonicalize)", got)
	}
	if len(back.ReqBody.AdditionalTickets) != 1 || back.ReqBody.AdditionalTickets[0].SName.PrincipalNameString() != "easgate-svc" {
		t.Fatalf("additional tickets %+v", back.ReqBody.AdditionalTickets)
	}
	if back.ReqBody.SName.PrincipalNameString() != "HTTP/cas.corp.test" || back.ReqBody.SName.NameType != nametype.KRB_NT_SRV_INST {
		t.Errorf("sname %+v", back.ReqBody.SName)
	}
	if len(back.PAData) != 1 || back.PAData[0].PADataType != patype.PA_TGS_REQ {
		t.Errorf("padata %+v; want PA-TGS-REQ only", back.PAData)
	}
	checkAuthenticator(t, back, key)
}

// checkAuthenticator decrypts PA-TGS-REQ's authenticator and verifies its
// checksum over the request body as sent (RFC 4120 section 7.5.1: key
// usage 7 for the authenticator, 6 for the checksum).
func checkAuthenticator(t *testing.T, req messages.TGSReq, key types.EncryptionKey) {
	t.Helper()
	var ap messages.APReq
	if err := ap.Unmarshal(req.PAData[0].PADataValue); err != nil {
		t.Fatal(err)
	}
	plain, err := crypto.DecryptEncPart(ap.EncryptedAuthenticator, key, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR)
	if err != nil {
		t.Fatal(err)
	}
	var auth types.Authenticator
	if err := auth.Unmarshal(plain); err != nil {
		t.Fatal(err)
	}
	body, err := req.ReqBody.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	et, _ := crypto.GetEtype(key.KeyType)
	if !et.VerifyChecksum(key.KeyValue, body, auth.Cksum.Checksum, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM) {
		t.Error("the authenticator's checksum does not cover the body as sent")
	}
	if auth.CName.PrincipalNameString() != "easgate-svc" || auth.CRealm != "CORP.TEST" {
		t.Errorf("authenticator for %s@%s", auth.CName.PrincipalNameString(), auth.CRealm)
	}
}

// TestUserPrincipal: the user part of a UPN or of DOMAIN\user; names that
// cannot be one principal component are refused.
func TestUserPrincipal(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"alice@corp.test", "alice"},
		{"Alice.Smith@corp.example.com", "Alice.Smith"},
		{`CORP\alice`, "alice"},
		{"alice", "alice"},
		{"a@b@corp.test", ""}, // '@' left in the user part
		{"svc/host@corp.test", ""},
		{"@corp.test", ""},
		{"", ""},
		{"al\x00ice@corp.test", ""},
		{strings.Repeat("a", 300), ""},
	} {
		got, err := UserPrincipal([]byte(c.in))
		if got != c.want || (c.want == "") != (err != nil) {
			t.Errorf("UserPrincipal(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
		if err != nil && CauseOf(err) != CauseBadUser {
			t.Errorf("UserPrincipal(%q): cause %s", c.in, CauseOf(err))
		}
	}
}

// kdcServer answers every request on a loopback TCP port with reply
// (RFC 4120 section 7.2.2 framing) and counts connections.
func kdcServer(t *testing.T, reply []byte) (addr string, conns func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	n := make(chan struct{}, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n <- struct{}{}
			go func() {
				defer c.Close()
				var hdr [4]byte
				if _, err := c.Read(hdr[:]); err != nil {
					return
				}
				_, _ = c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(reply))), reply...))
			}()
		}
	}()
	return ln.Addr().String(), func() int { return len(n) }
}

// closedAddr is a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func testKeytab(t testing.TB) *keytab.Keytab {
	kt := keytab.New()
	if err := kt.AddEntry("easgate-svc", "CORP.TEST", "not a real password", time.Now(), 2, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
		t.Fatal(err)
	}
	return kt
}

// TestKDCUnreachable: every KDC is tried in order; when none answers the
// cause is kdc_unreachable, and it is not remembered: the next call asks
// again.
func TestKDCUnreachable(t *testing.T) {
	var d net.Dialer
	var dialed []string
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = append(dialed, addr)
		return d.DialContext(ctx, network, addr)
	}
	a, b := closedAddr(t), closedAddr(t)
	del, err := New(Options{Realm: "CORP.TEST", KDCs: []string{a, b}, ServicePrincipal: "easgate-svc", Keytab: testKeytab(t), Dial: dial, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		_, err = del.Authorization(context.Background(), "alice", "HTTP/cas.corp.test")
		var e *Error
		if !errors.As(err, &e) || e.Cause != CauseKDCUnreachable || e.Principal != "easgate-svc@CORP.TEST" {
			t.Fatalf("call %d: %v; want kdc_unreachable for easgate-svc@CORP.TEST", i, err)
		}
	}
	if len(dialed) != 4 || dialed[0] != a || dialed[1] != b {
		t.Errorf("dialed %v; want %s then %s, twice", dialed, a, b)
	}
}

// TestKDCRefusalRemembered: a KRB-ERROR is classified (here the service
// account's pre-authentication failing) and remembered for FailureTTL, so a
// refusing KDC is not asked on every request.
func TestKDCRefusalRemembered(t *testing.T) {
	ke := messages.NewKRBError(types.NewPrincipalName(nametype.KRB_NT_SRV_INST, "krbtgt/CORP.TEST"), "CORP.TEST", errorcode.KDC_ERR_PREAUTH_FAILED, "no")
	kb, err := ke.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	addr, conns := kdcServer(t, kb)
	now := time.Now()
	del, err := New(Options{Realm: "CORP.TEST", KDCs: []string{addr}, ServicePrincipal: "easgate-svc", Keytab: testKeytab(t),
		FailureTTL: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		_, err := del.Authorization(context.Background(), "alice", "HTTP/cas.corp.test")
		var e *Error
		if !errors.As(err, &e) || e.Cause != CauseServiceCredentials || e.Code != errorcode.KDC_ERR_PREAUTH_FAILED {
			t.Fatalf("call %d: %v; want service_credentials (KDC_ERR_PREAUTH_FAILED)", i, err)
		}
	}
	if conns() != 1 {
		t.Errorf("%d KDC connections for 3 calls within the failure TTL; want 1", conns())
	}
	now = now.Add(2 * time.Minute)
	_, _ = del.Authorization(context.Background(), "alice", "HTTP/cas.corp.test")
	if conns() != 2 {
		t.Errorf("%d KDC connections after the failure TTL; want 2", conns())
	}
}

// TestCheckKeytab: a keytab without a key of the principal, or with only
// DES keys, is refused with what it holds.
func TestCheckKeytab(t *testing.T) {
	if err := CheckKeytab(testKeytab(t), "easgate-svc", "CORP.TEST"); err != nil {
		t.Errorf("good keytab: %v", err)
	}
	if err := CheckKeytab(testKeytab(t), "other", "CORP.TEST"); err == nil || !strings.Contains(err.Error(), "easgate-svc@CORP.TEST (enctype 18)") {
		t.Errorf("other principal: %v", err)
	}
	des := keytab.New()
	des.Entries = append(des.Entries, testKeytab(t).Entries...)
	des.Entries[0].Key.KeyType = etypeID.DES_CBC_MD5
	if err := CheckKeytab(des, "easgate-svc", "CORP.TEST"); err == nil {
		t.Error("a DES-only keytab was accepted")
	}
	if err := CheckKeytab(keytab.New(), "easgate-svc", "CORP.TEST"); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty keytab: %v", err)
	}
	if _, err := New(Options{Realm: "CORP.TEST", KDCs: []string{"127.0.0.1:88"}, ServicePrincipal: "svc@CORP.TEST", Keytab: testKeytab(t)}); err == nil {
		t.Error("a service principal with @REALM was accepted")
	}
}

var asn1Unmarshal = asn1.Unmarshal
