package eas

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file holds the one canonical form of a user name that every policy
// purpose uses (the decision, per-user lists, the device table, the
// quarantine state, the lockout shield, device binding): whoever asks
// "is this alice?" asks it of the same bytes.

// Errors of Domains.AppendCanonical. They are sentinels: returning them
// allocates nothing.
var (
	// ErrUserEmpty: no user part ("", "CORP\", "@corp.example.com").
	ErrUserEmpty = errors.New("empty user name")
	// ErrUserForm: a name that can be read two ways: a NetBIOS domain and a
	// UPN suffix at once ("CORP\alice@corp.example.com"), or a user part
	// holding '@' or '\' after the split.
	ErrUserForm = errors.New("ambiguous user name form")
	// ErrUserEncoding: control characters or invalid UTF-8.
	ErrUserEncoding = errors.New("user name is not valid UTF-8 text")
	// ErrUserTooLong: the canonical form is longer than MaxUserLen.
	ErrUserTooLong = errors.New("user name too long")
	// ErrUserDomain: a domain that is not in auth.domains.
	ErrUserDomain = errors.New("user of a domain not in auth.domains")
)

// Domains is auth.domains: the DNS domains whose users easgate accepts, the
// first being the default for a bare "alice" and for "CORP\alice". It turns
// every spelling of a login into one canonical name. A nil or empty Domains
// accepts every domain and compares names exactly as written, case-folded.
// It is immutable and safe for concurrent use.
type Domains struct {
	dns     []string // lower-cased, the first is the default
	netbios []string // upper-cased NetBIOS name, index-aligned with dns ("" none)
}

// NewDomains builds a Domains from DNS domain names (the first is the
// default) and an optional map of NetBIOS names to DNS domains for domains
// whose NetBIOS name is not the first label of the DNS name. A DNS domain's
// first label is always accepted as its NetBIOS name ("CORP" for
// corp.example.com), as Active Directory sets it up by default.
func NewDomains(dns []string, netbios map[string]string) (*Domains, error) {
	d := &Domains{}
	seen := map[string]bool{}
	for _, name := range dns {
		name = strings.ToLower(strings.TrimSpace(name))
		if err := checkDomainName(name); err != nil {
			return nil, err
		}
		if seen[name] {
			return nil, errors.New("domain " + name + " listed twice")
		}
		seen[name] = true
		d.dns = append(d.dns, name)
		d.netbios = append(d.netbios, "")
	}
	// In name order, so that a config with several bad entries always gets
	// the same error (map order is random).
	for _, nb := range slices.Sorted(maps.Keys(netbios)) {
		dnsName := netbios[nb]
		nb = strings.ToUpper(strings.TrimSpace(nb))
		dnsName = strings.ToLower(strings.TrimSpace(dnsName))
		if nb == "" || len(nb) > 15 || strings.ContainsAny(nb, `\/:*?"<>|.@ `) {
			return nil, errors.New("NetBIOS name " + nb + " is not a valid NetBIOS domain name")
		}
		i := d.index(dnsName)
		if i < 0 {
			return nil, errors.New("NetBIOS name " + nb + " maps to " + dnsName + ", which is not in auth.domains")
		}
		if d.netbios[i] != "" {
			return nil, errors.New("domain " + dnsName + " has two NetBIOS names")
		}
		d.netbios[i] = nb
	}
	return d, nil
}

func checkDomainName(name string) error {
	if name == "" || len(name) > 253 {
		return errors.New("domain " + name + " is not a DNS domain name")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("domain " + name + " is not a DNS domain name")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return errors.New("domain " + name + " is not a DNS domain name (letters, digits, '-' and '.')")
			}
		}
	}
	return nil
}

// Enabled reports whether domains are configured.
func (d *Domains) Enabled() bool { return d != nil && len(d.dns) > 0 }

// Default is the default domain ("" when none is configured).
func (d *Domains) Default() string {
	if !d.Enabled() {
		return ""
	}
	return d.dns[0]
}

// List returns the configured DNS domains, the default first.
func (d *Domains) List() []string {
	if d == nil {
		return nil
	}
	return append([]string(nil), d.dns...)
}

func (d *Domains) index(dns string) int {
	for i, n := range d.dns {
		if n == dns {
			return i
		}
	}
	return -1
}

// dnsFor returns the DNS domain a UPN suffix names, matched case-insensitively.
func (d *Domains) dnsFor(suffix []byte) (string, bool) {
	for _, n := range d.dns {
		if len(n) == len(suffix) && equalFoldASCII(suffix, n) {
			return n, true
		}
	}
	return "", false
}

// netbiosFor returns the DNS domain of a NetBIOS name: the configured
// NetBIOS name, else the DNS name's first label.
func (d *Domains) netbiosFor(nb []byte) (string, bool) {
	for i, n := range d.dns {
		if d.netbios[i] != "" && len(d.netbios[i]) == len(nb) && equalFoldASCII(nb, d.netbios[i]) {
			return n, true
		}
		label := n
		if dot := strings.IndexByte(n, '.'); dot >= 0 {
			label = n[:dot]
		}
		if len(label) == len(nb) && equalFoldASCII(nb, label) {
			return n, true
		}
	}
	return "", false
}

// AppendCanonical appends the canonical form of login to dst and returns
// it. login is any spelling of an account: a Basic user name, a certificate
// identity or the EAS User parameter.
//
// Without domains the canonical form is login case-folded, domain part and
// all ("CORP\Alice" → "corp\alice"; "alice" and "alice@corp.example.com"
// are then two different names).
//
// With domains it is "user@domain", case-folded:
//
//	alice                  → alice@<default domain>
//	alice@corp.example.com → alice@corp.example.com (a listed domain)
//	CORP\alice             → alice@corp.example.com (CORP: the NetBIOS name of a listed domain)
//	alice@evil.example     → ErrUserDomain
//	EVIL\alice             → ErrUserDomain
//	CORP\alice@corp.example.com, a\b\c, a@b@c → ErrUserForm
//
// Case folding is ASCII for ASCII and Unicode simple folding (lower of
// upper) for the rest, so "ÄLICE" and "älice" are one name, as Active
// Directory compares them. Control characters and invalid UTF-8 are
// ErrUserEncoding. It allocates nothing when dst has room.
func (d *Domains) AppendCanonical(dst, login []byte) ([]byte, error) {
	start := len(dst)
	if len(login) == 0 {
		return dst, ErrUserEmpty
	}
	if err := checkUserText(login); err != nil {
		return dst, err
	}
	if !d.Enabled() {
		dst = appendFolded(dst, login)
		if len(dst)-start > MaxUserLen {
			return dst[:start], ErrUserTooLong
		}
		return dst, nil
	}
	user, domain, kind := reqSplitUser(login)
	if len(user) == 0 {
		return dst, ErrUserEmpty
	}
	for _, c := range user {
		if c == '@' || c == '\\' {
			return dst, ErrUserForm
		}
	}
	var dns string
	switch kind {
	case reqUserPlain:
		dns = d.dns[0]
	case reqUserNetBIOS:
		var ok bool
		if dns, ok = d.netbiosFor(domain); !ok {
			return dst, ErrUserDomain
		}
	case reqUserUPN:
		if len(login) != len(user)+1+len(domain) {
			return dst, ErrUserForm // a NetBIOS prefix and a UPN suffix at once
		}
		var ok bool
		if dns, ok = d.dnsFor(domain); !ok {
			return dst, ErrUserDomain
		}
	}
	dst = appendFolded(dst, user)
	dst = append(dst, '@')
	dst = append(dst, dns...)
	if len(dst)-start > MaxUserLen {
		return dst[:start], ErrUserTooLong
	}
	return dst, nil
}

// Canonical is AppendCanonical for strings (configuration and tools).
func (d *Domains) Canonical(login string) (string, error) {
	b, err := d.AppendCanonical(nil, []byte(login))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func checkUserText(s []byte) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return ErrUserEncoding
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError || unicode.IsControl(r) {
			return ErrUserEncoding
		}
		i += n
	}
	return nil
}

// appendFolded appends s case-folded (s is valid UTF-8: checkUserText).
func appendFolded(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			dst = append(dst, reqLower(c))
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		dst = utf8.AppendRune(dst, unicode.ToLower(unicode.ToUpper(r)))
		i += n
	}
	return dst
}

// AppendDeviceIDFold appends the device id ASCII-lower-cased: device ids
// compare case-insensitively for every policy purpose, so a phone that
// changes the case of its id never escapes a decision.
func AppendDeviceIDFold(dst, id []byte) []byte {
	for _, c := range id {
		dst = append(dst, reqLower(c))
	}
	return dst
}
