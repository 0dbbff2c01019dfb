package eas

import "bytes"

// This file holds the Authorization identity: Basic credential decoding and
// the user-name comparison that binds the EAS User to the authenticated
// identity.

// parseAuthorization reads the Authorization header value v. Every scheme
// is recorded in AuthScheme; only Basic (RFC 7617: base64 of
// "user:password", standard alphabet, padding optional) is decoded, into
// r.abuf. Errors never quote the header. The user name is kept as sent
// (UTF-8 from phones, ISO-8859-1 from some Outlook versions); easgate does
// not transcode it.
func (r *Request) parseAuthorization(v []byte) error {
	const field = HeaderAuthorization
	sp := 0
	for sp < len(v) && v[sp] != ' ' && v[sp] != '\t' {
		sp++
	}
	r.AuthScheme = v[:sp]
	if !equalFoldASCII(r.AuthScheme, "Basic") {
		// Negotiate and Bearer values can be many kilobytes (a Kerberos
		// ticket with many groups); only their scheme matters here and the
		// header's size is bounded by the server's header limit.
		return nil
	}
	if len(v) > MaxAuthorizationLen {
		return r.fail(ErrOversize, field, MaxAuthorizationLen, "Basic credentials too long")
	}
	start := sp
	for start < len(v) && (v[start] == ' ' || v[start] == '\t') {
		start++
	}
	end := len(v)
	for end > start && (v[end-1] == ' ' || v[end-1] == '\t') {
		end--
	}
	if start == end {
		return r.fail(ErrBadAuthorization, field, start, "Basic without credentials")
	}
	n, bad, ok := reqB64Decode(r.abuf[:], v[start:end], false)
	if !ok {
		return r.fail(ErrBadAuthorization, field, start+bad, "Basic credentials are not valid base64")
	}
	cred := r.abuf[:n:n]
	colon := -1
	for i, c := range cred {
		if c == ':' {
			colon = i
			break
		}
	}
	switch {
	case colon < 0:
		return r.fail(ErrBadAuthorization, field, start, "Basic credentials without ':'")
	case colon == 0:
		return r.fail(ErrBadAuthorization, field, start, "Basic credentials with an empty user name")
	case reqHasControl(cred[:colon]):
		return r.fail(ErrBadAuthorization, field, start, "control character in the Basic user name")
	}
	r.AuthLogin = cred[:colon:colon]
	r.password = cred[colon+1:]
	r.AuthUser, r.AuthDomain = SplitUser(r.AuthLogin)
	return nil
}

// User-name forms told apart by SplitUser.
const (
	reqUserPlain   = iota // "jdoe"
	reqUserNetBIOS        // "CORP\jdoe"
	reqUserUPN            // "jdoe@corp.example.com" (also "CORP\jdoe@corp.example.com")
)

// SplitUser splits a login name into its user and domain parts:
//
//	"CORP\jdoe"                  → "jdoe", "CORP"
//	"jdoe@corp.example.com"      → "jdoe", "corp.example.com" (at the last '@')
//	"CORP\jdoe@corp.example.com" → "jdoe", "corp.example.com" (the UPN domain wins)
//	"jdoe"                       → "jdoe", ""
//
// Both results alias s. It does not allocate.
func SplitUser(s []byte) (user, domain []byte) {
	user, domain, _ = reqSplitUser(s)
	return user, domain
}

func reqSplitUser(s []byte) (user, domain []byte, kind int) {
	kind = reqUserPlain
	for i, c := range s {
		if c == '\\' {
			domain, s, kind = s[:i], s[i+1:], reqUserNetBIOS
			break
		}
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '@' {
			return s[:i], s[i+1:], reqUserUPN
		}
	}
	return s, domain, kind
}

// SameUser reports whether two login names denote the same account. The
// rule, chosen to match how Exchange/AD resolve a login without a
// directory lookup:
//
//   - Both are split with SplitUser and the user parts must be equal,
//     ignoring case (Unicode simple folding). An empty user part never matches.
//   - Domains are compared (ignoring case) only when both names carry
//     a domain of the same kind: two UPN domains ("@corp.example.com" vs
//     "@other.example") or two NetBIOS domains ("CORP\" vs "OTHER\") that
//     differ do not match.
//   - A name without a domain, or a NetBIOS domain against a UPN domain,
//     compares the user part only: "CORP\jdoe" matches "jdoe" and
//     "jdoe@corp.example.com", since a NetBIOS name cannot be mapped to a
//     DNS domain here.
//
// It does not allocate.
func SameUser(a, b []byte) bool {
	ua, da, ka := reqSplitUser(a)
	ub, db, kb := reqSplitUser(b)
	if len(ua) == 0 || len(ub) == 0 || !reqEqualFoldBytes(ua, ub) {
		return false
	}
	if ka == kb && ka != reqUserPlain && !reqEqualFoldBytes(da, db) {
		return false
	}
	return true
}

// reqEqualFoldBytes compares two names ignoring case: ASCII case, and
// Unicode simple case folding for the rest (the canonical names of
// Domains.AppendCanonical fold non-ASCII letters too, so a UPN "Ömer@…"
// from a compliance source matches the canonical "ömer@…").
func reqEqualFoldBytes(a, b []byte) bool { return bytes.EqualFold(a, b) }
