package eas

import (
	"errors"
	"testing"
	"unicode/utf8"
)

func TestDomainsCanonical(t *testing.T) {
	doms, err := NewDomains([]string{"Corp.Example.com", "partner.example.org"}, map[string]string{"EXAMPLE": "corp.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var none *Domains
	tests := []struct {
		d    *Domains
		in   string
		want string
		err  error
	}{
		{doms, "alice", "alice@corp.example.com", nil},
		{doms, "Alice", "alice@corp.example.com", nil},
		{doms, "alice@corp.example.com", "alice@corp.example.com", nil},
		{doms, "ALICE@CORP.EXAMPLE.COM", "alice@corp.example.com", nil},
		{doms, `CORP\alice`, "alice@corp.example.com", nil},
		{doms, `corp\ALICE`, "alice@corp.example.com", nil},
		{doms, `EXAMPLE\alice`, "alice@corp.example.com", nil},
		{doms, `PARTNER\bob`, "bob@partner.example.org", nil},
		{doms, "bob@Partner.Example.org", "bob@partner.example.org", nil},
		{doms, "alice@evil.example.com", "", ErrUserDomain},
		{doms, `EVIL\alice`, "", ErrUserDomain},
		{doms, "alice@corp.example.com.evil", "", ErrUserDomain},
		{doms, `CORP\alice@corp.example.com`, "", ErrUserForm},
		{doms, `a\b\c`, "", ErrUserForm},
		{doms, "a@b@corp.example.com", "", ErrUserForm},
		{doms, `CORP\`, "", ErrUserEmpty},
		{doms, "@corp.example.com", "", ErrUserEmpty},
		{doms, "", "", ErrUserEmpty},
		{doms, "al\x00ice", "", ErrUserEncoding},
		{doms, "al\xc0\xafice", "", ErrUserEncoding},
		{doms, "ÄLICE", "älice@corp.example.com", nil},
		{doms, "älice@corp.example.com", "älice@corp.example.com", nil},
		{none, `CORP\Alice`, `corp\alice`, nil},
		{none, "Alice@Corp.Example.com", "alice@corp.example.com", nil},
		{none, "alice", "alice", nil},
		{none, "alice@anything.example", "alice@anything.example", nil},
	}
	for _, tt := range tests {
		got, err := tt.d.AppendCanonical(nil, []byte(tt.in))
		if !errors.Is(err, tt.err) || (err == nil && string(got) != tt.want) {
			t.Errorf("%q (domains %v): got %q, %v; want %q, %v", tt.in, tt.d.List(), got, err, tt.want, tt.err)
		}
	}
}

func TestNewDomainsErrors(t *testing.T) {
	for _, tt := range []struct {
		dns     []string
		netbios map[string]string
	}{
		{[]string{"corp.example.com", "CORP.example.com"}, nil},
		{[]string{"corp..example.com"}, nil},
		{[]string{"corp example.com"}, nil},
		{[]string{""}, nil},
		{[]string{"corp.example.com"}, map[string]string{"EX": "other.example.com"}},
		{[]string{"corp.example.com"}, map[string]string{"A.B": "corp.example.com"}},
		{[]string{"corp.example.com"}, map[string]string{"EX": "corp.example.com", "EY": "corp.example.com"}},
	} {
		if _, err := NewDomains(tt.dns, tt.netbios); err == nil {
			t.Errorf("NewDomains(%v, %v): no error", tt.dns, tt.netbios)
		}
	}
}

func TestCanonicalDoesNotAllocate(t *testing.T) {
	doms, _ := NewDomains([]string{"corp.example.com"}, nil)
	in := []byte(`CORP\Alice`)
	var buf [MaxUserLen]byte
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := doms.AppendCanonical(buf[:0], in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("AppendCanonical allocates %.1f times", allocs)
	}
}

func TestAppendDeviceIDFold(t *testing.T) {
	if got := string(AppendDeviceIDFold(nil, []byte("AliceBlocked1_-X"))); got != "aliceblocked1_-x" {
		t.Fatalf("got %q", got)
	}
}

// FuzzCanonical: the canonical form is idempotent, within bounds, and two
// spellings with the same canonical form are one user for SameUser too.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"alice", `CORP\alice`, "alice@corp.example.com", "ALICE@Corp.Example.COM",
		`EXAMPLE\bob`, "älice", "a@b@c", `x\y\z`, "\xc0\xaf", "bob@partner.example.org"} {
		f.Add(s)
	}
	doms, _ := NewDomains([]string{"corp.example.com", "partner.example.org"}, map[string]string{"EXAMPLE": "corp.example.com"})
	f.Fuzz(func(t *testing.T, s string) {
		for _, d := range []*Domains{nil, doms} {
			c, err := d.AppendCanonical(nil, []byte(s))
			if err != nil {
				continue
			}
			if len(c) == 0 || len(c) > MaxUserLen || !utf8.Valid(c) {
				t.Fatalf("%q → %q: empty, too long or not UTF-8", s, c)
			}
			c2, err := d.AppendCanonical(nil, c)
			if err != nil || string(c2) != string(c) {
				t.Fatalf("not idempotent: %q → %q → %q, %v", s, c, c2, err)
			}
			if d != nil && isASCII(s) && !SameUser([]byte(s), c) {
				t.Fatalf("%q and its canonical form %q are not the same user", s, c)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
