package certs

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/easgate/easgate/certs/internal/testpki"
)

func mustReadCert(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	der, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sanValue(c *x509.Certificate) []byte {
	for _, e := range c.Extensions {
		if e.Id.Equal(oidExtSAN) {
			return e.Value
		}
	}
	return nil
}

// otherName builds a SAN with one otherName of the given OID and inner
// value (already DER-encoded, placed inside the [0] EXPLICIT wrapper).
func otherNameSAN(oid asn1.ObjectIdentifier, inner func(*cryptobyte.Builder)) []byte {
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), inner)
		})
	})
	return b.BytesOrPanic()
}

var oidUPN = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}

func TestIdentityFromOpenSSLCertificates(t *testing.T) {
	// Made by Debian's openssl (testdata/gen.sh), the way AD CS encodes UPNs.
	upn, email, cn, err := IdentityFromCertificate(mustReadCert(t, "testdata/client-upn.der"))
	if err != nil || upn != "alice@corp.example.com" || email != "alice@corp.example.com" || cn != "Alice Example" {
		t.Fatalf("client-upn: %q %q %q %v", upn, email, cn, err)
	}
	upn, email, cn, err = IdentityFromCertificate(mustReadCert(t, "testdata/client-cn.der"))
	if err != nil || upn != "" || email != "" || cn != "bob" {
		t.Fatalf("client-cn: %q %q %q %v", upn, email, cn, err)
	}
}

func TestUPNFromSAN(t *testing.T) {
	utf8Val := func(s string) func(*cryptobyte.Builder) {
		return func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
		}
	}
	cases := []struct {
		name    string
		der     []byte
		want    string
		wantErr bool
	}{
		{"upn", testpki.SANExtension("u@corp.example", []string{"e@x"}, []string{"h.example"}, nil).Value, "u@corp.example", false},
		{"upn after dns", func() []byte {
			var b cryptobyte.Builder
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(casn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte("h.example")) })
				b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidUPN)
					b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), utf8Val("second@corp"))
				})
			})
			return b.BytesOrPanic()
		}(), "second@corp", false},
		{"no upn", testpki.SANExtension("", []string{"e@x"}, nil, nil).Value, "", false},
		{"other otherName", otherNameSAN(asn1.ObjectIdentifier{1, 2, 3}, utf8Val("x")), "", false},
		{"unicode upn", otherNameSAN(oidUPN, utf8Val("jürgen@corp.example")), "jürgen@corp.example", false},
		{"upn as IA5String", otherNameSAN(oidUPN, func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.IA5String, func(b *cryptobyte.Builder) { b.AddBytes([]byte("x")) })
		}), "", true},
		{"upn invalid utf8", otherNameSAN(oidUPN, utf8Val("\xff\xfe")), "", true},
		{"upn empty", otherNameSAN(oidUPN, utf8Val("")), "", true},
		{"not a sequence", []byte{0x04, 0x00}, "", true},
		{"truncated", []byte{0x30, 0x05, 0xa0, 0x03}, "", true},
		{"trailing", append(testpki.SANExtension("u@x", nil, nil, nil).Value, 0), "", true},
		{"empty", nil, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := upnFromSAN(tc.der)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %q, %v; want %q, err=%v", got, err, tc.want, tc.wantErr)
			}
			var se *SANError
			if err != nil && !errors.As(err, &se) {
				t.Fatalf("error type %T", err)
			}
		})
	}
}

func TestNoIdentityMessage(t *testing.T) {
	c := mustReadCert(t, "testdata/client-cn.der")
	_, err := newIdentity(c, IdentityUPN)
	if ReasonOf(err) != ReasonNoIdentity {
		t.Fatalf("err = %v", err)
	}
	id, err := newIdentity(c, IdentitySubjectCN)
	if err != nil || id.Name != "bob" || id.Subject != "CN=bob" {
		t.Fatalf("%+v %v", id, err)
	}
}

func TestIdentityAllocs(t *testing.T) {
	c := mustReadCert(t, "testdata/client-upn.der")
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, _, err := IdentityFromCertificate(c); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 { // the UPN string itself
		t.Fatalf("IdentityFromCertificate allocates %v times", allocs)
	}
}

func fuzzSeeds(f *testing.F) [][]byte {
	paths, _ := filepath.Glob("testdata/*.der")
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		f.Fatal("no testdata/*.der seeds")
	}
	return out
}

// FuzzIdentity: arbitrary bytes -> x509.ParseCertificate ->
// IdentityFromCertificate must never panic; a UPN it returns is valid UTF-8
// and bounded.
func FuzzIdentity(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		upn, _, _, err := IdentityFromCertificate(c)
		if err != nil && upn != "" {
			t.Fatalf("UPN %q with error %v", upn, err)
		}
		if len(upn) > maxIdentityLen {
			t.Fatalf("UPN of %d bytes", len(upn))
		}
		_, _ = newIdentity(c, IdentityUPN)
	})
}

// FuzzUPNFromSAN drives the otherName parser directly with arbitrary
// subjectAltName values.
func FuzzUPNFromSAN(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		c, err := x509.ParseCertificate(s)
		if err != nil {
			f.Fatal(err)
		}
		if v := sanValue(c); v != nil {
			f.Add(v)
		}
	}
	f.Add(testpki.SANExtension("u@x", []string{"a@b"}, []string{"h"}, nil).Value)
	f.Fuzz(func(t *testing.T, der []byte) {
		upn, err := upnFromSAN(der)
		var se *SANError
		if err != nil && (!errors.As(err, &se) || se.Offset < 0 || se.Offset > len(der) || upn != "") {
			t.Fatalf("bad error %v (upn %q)", err, upn)
		}
		if len(upn) > len(der) {
			t.Fatal("UPN longer than input")
		}
	})
}
