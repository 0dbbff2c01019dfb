package kerberos

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// FuzzUserPrincipal: any identity gives a principal name of one plain
// component, or an error; never a panic. The mapping is idempotent.
func FuzzUserPrincipal(f *testing.F) {
	for _, s := range []string{"alice@corp.test", `CORP\alice`, "a/b@c", "", "@", "\\", "x@y@z", "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, id []byte) {
		u, err := UserPrincipal(id)
		if err != nil {
			return
		}
		if u == "" || bytes.ContainsAny([]byte(u), "/@\\\x00") {
			t.Fatalf("UserPrincipal(%q) = %q", id, u)
		}
		if again, err := UserPrincipal([]byte(u)); err != nil || again != u {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", id, u, again, err)
		}
	})
}

// FuzzKDCReply: whatever a KDC (or something posing as one) answers to a
// TGS-REQ is refused with an error; never a panic.
func FuzzKDCReply(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x6d, 0x03, 0x30, 0x01, 0x00})      // TGS-REP application tag, truncated
	f.Add([]byte{0x7e, 0x81, 0xff, 0x30})            // KRB-ERROR tag, bad length
	f.Add(bytes.Repeat([]byte{0x30, 0x82, 0xff}, 8)) // nested long forms
	// A well-formed TGS-REP whose enc-part was not made with the session key.
	rep := messages.TGSRep{KDCRepFields: messages.KDCRepFields{PVNO: 5, MsgType: 13, CRealm: "CORP.TEST", CName: userName("alice"),
		Ticket: fakeTicket("easgate-svc"), EncPart: types.EncryptedData{EType: etypeID.AES256_CTS_HMAC_SHA1_96, Cipher: bytes.Repeat([]byte{2}, 64)}}}
	if b, err := rep.Marshal(); err == nil {
		f.Add(b)
	} else {
		f.Fatal(err)
	}
	key := types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: bytes.Repeat([]byte{1}, 32)}
	svc := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "easgate-svc")
	req, err := newS4U2SelfReq(testParams(), svc, fakeTicket("krbtgt/CORP.TEST"), key, userName("alice"), "CORP.TEST")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			var hdr [4]byte
			if _, err := server.Read(hdr[:]); err != nil {
				return
			}
			buf := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			_, _ = readFull(server, buf)
			_, _ = server.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(reply))), reply...))
		}()
		d := &Delegator{o: Options{Realm: "CORP.TEST"}, tr: kdcTransport{kdcs: []string{"pipe"},
			dial: func(context.Context, string, string) (net.Conn, error) { return client, nil }}}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := d.tgs(ctx, req, key, userName("alice")); err == nil {
			t.Fatalf("reply %x accepted", reply)
		}
	})
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
