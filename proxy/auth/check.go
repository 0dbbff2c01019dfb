package auth

import (
	"fmt"
	"net/http"
	"strings"
	"unsafe"

	"github.com/easgate/easgate/certs"
	"github.com/easgate/easgate/eas"
	"github.com/easgate/easgate/policy"
	"github.com/easgate/easgate/proxy/config"
)

// Mode is auth.mode: which identities a request must carry.
type Mode uint8

// Authentication modes.
const (
	// ModeCredentials needs Basic credentials (the CAS checks the password).
	ModeCredentials Mode = iota
	// ModeCertificate needs a verified client certificate.
	ModeCertificate
	// ModeEither needs a certificate or Basic credentials; when both are
	// present, both must name the EAS User.
	ModeEither
	// ModeBoth needs a certificate and Basic credentials naming the same user.
	ModeBoth
)

var modeNames = [...]string{
	ModeCredentials: config.AuthCredentials,
	ModeCertificate: config.AuthCertificate,
	ModeEither:      config.AuthEither,
	ModeBoth:        config.AuthBoth,
}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ParseMode reads an auth.mode value; "" means credentials.
func ParseMode(s string) (Mode, error) {
	if s == "" {
		return ModeCredentials, nil
	}
	for i, n := range modeNames {
		if n == s {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("auth: mode %q: want credentials, certificate, either or both", s)
}

// Input is what Check looks at. Byte slices are borrowed for the call only.
type Input struct {
	// AuthScheme is the Authorization scheme as sent ("Basic", "Negotiate",
	// ...); empty when the request had no Authorization header.
	AuthScheme []byte
	// AuthLogin is the Basic user name as sent ("CORP\jdoe",
	// "jdoe@corp.example.com", "jdoe"); empty without Basic credentials.
	AuthLogin []byte
	// User is the EAS User (plain query User= or base64 tag 8); may be
	// empty (OPTIONS, or a base64 query that leaves it out).
	User []byte
	// Cert is the verified client certificate identity, nil when none was
	// presented or it failed verification.
	Cert *certs.Identity
	// CertErr is the verification error (certs.Verifier.Verify). An error
	// matching certs.ErrNoCertificate (or client certificates off) means
	// "no certificate"; any other error refuses the request.
	CertErr error
}

// InputFrom fills an Input from a parsed request and the result of
// certs.Verifier.Verify (id may be nil). It does not allocate.
func InputFrom(r *eas.Request, id *certs.Identity, certErr error) Input {
	in := Input{AuthScheme: r.AuthScheme, AuthLogin: r.AuthLogin, User: r.User, CertErr: certErr}
	if certErr == nil {
		in.Cert = id
	}
	return in
}

// Result is Check's answer.
type Result struct {
	// OK is true when the request may go on (to the lockout shield, the
	// policy and the CAS).
	OK bool
	// Method is how the request is authenticated at the gateway; meaningful
	// when OK.
	Method policy.AuthMethod
	// Identity is the authenticated name: the certificate identity when a
	// certificate was verified, else the Basic user name as sent. It
	// aliases the Input (or the certificate identity's string) and must
	// not be modified or kept after the request.
	Identity []byte
	// Status is 0 when OK, else 401 or 403.
	Status int
	// Reason is empty when OK, else a stable label (see the Reason values).
	Reason Reason
	// WWWAuthenticate is set with Status 401 when a Basic challenge
	// (WWW-Authenticate: Basic realm="...") must accompany the answer, as
	// Exchange/IIS sends it; see AppendChallenge.
	WWWAuthenticate bool
}

// Options tune an Authenticator beyond the configuration file.
type Options struct {
	// Realm is the realm of the Basic challenge. Empty: the request's Host,
	// as IIS does.
	Realm string
}

// Authenticator applies auth.mode. It is immutable and safe for concurrent
// use.
type Authenticator struct {
	mode    Mode
	realm   string
	pass    []string // auth.pass_schemes
	domains *eas.Domains
}

// New builds an Authenticator from the auth section of the configuration.
func New(cfg config.Auth, opts Options) (*Authenticator, error) {
	m, err := ParseMode(cfg.Mode)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(opts.Realm); i++ {
		if !realmByte(opts.Realm[i]) {
			return nil, fmt.Errorf("auth: realm %q: byte %d is not printable ASCII or is a quote or backslash", opts.Realm, i)
		}
	}
	for _, s := range cfg.PassSchemes {
		if s == "" || strings.EqualFold(s, "Basic") {
			return nil, fmt.Errorf("auth: pass_schemes: %q is not a pass-through scheme", s)
		}
	}
	doms, err := eas.NewDomains(cfg.Domains, cfg.NetBIOSDomains)
	if err != nil {
		return nil, fmt.Errorf("auth: domains: %w", err)
	}
	return &Authenticator{mode: m, realm: opts.Realm, pass: cfg.PassSchemes, domains: doms}, nil
}

// Domains is auth.domains: the canonical form of user names
// (eas.Domains.AppendCanonical) that the policy decides on.
func (a *Authenticator) Domains() *eas.Domains { return a.domains }

// passes reports whether scheme is listed in auth.pass_schemes (ASCII case
// ignored). It does not allocate.
func (a *Authenticator) passes(scheme []byte) bool {
	for _, s := range a.pass {
		if len(s) != len(scheme) {
			continue
		}
		same := true
		for i := 0; i < len(s); i++ {
			x, y := s[i]|0x20, scheme[i]|0x20
			if x != y {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	return false
}

// Mode returns the configured mode.
func (a *Authenticator) Mode() Mode { return a.mode }

func realmByte(c byte) bool { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' }

// AppendChallenge appends the WWW-Authenticate value for a 401,
// `Basic realm="<realm>"`, to dst. Without a configured realm the request's
// host is used; bytes that cannot appear in a quoted realm are dropped.
func (a *Authenticator) AppendChallenge(dst, host []byte) []byte {
	dst = append(dst, `Basic realm="`...)
	if a.realm != "" {
		dst = append(dst, a.realm...)
	} else {
		for _, c := range host {
			if realmByte(c) {
				dst = append(dst, c)
			}
		}
	}
	return append(dst, '"')
}

// Check decides whether the identities in in satisfy the mode and are bound
// to the EAS User. It never verifies a password (the CAS does) and does not
// allocate. The rules, in order (the first that applies decides):
//
//  1. A certificate that was presented and failed verification: 403 with
//     its cert_* reason, in every mode (a revoked or untrusted certificate
//     is never ignored, even when the mode does not need one).
//  2. A verified certificate whose identity contains control characters:
//     403 cert_bad_identity (it could not be forwarded safely).
//  3. The mode's requirements: certificate/both without a certificate:
//     403 cert_required (no challenge: a password would not help);
//     credentials/both without Basic, or either with neither: 401 with a
//     Basic challenge, no_credentials (no Authorization) or
//     unsupported_scheme (Negotiate, NTLM, Bearer, ...).
//  4. Basic credentials whose user part is empty ("CORP\"): 401
//     bad_credentials with a challenge (403 in certificate mode, where a
//     challenge would be wrong).
//  5. With auth.domains, each identity is put in canonical form
//     (eas.Domains): a Basic user of an unlisted domain gets 401
//     unknown_domain with a challenge, a certificate 403
//     cert_unknown_domain; the identities present and the EAS User must
//     then be the same canonical user (403 user_mismatch,
//     cert_user_mismatch, identity_mismatch). Without auth.domains:
//     every identity present must name the EAS User (eas.SameUser:
//     DOMAIN\user, user@domain and plain user forms, ASCII case ignored):
//     Basic user otherwise 403 user_mismatch, certificate otherwise 403
//     cert_user_mismatch; with both present they must also name each other,
//     else 403 identity_mismatch. This holds in every mode: an identity the
//     mode does not need is still forwarded or logged, so it must not name
//     someone else. An empty EAS User binds nothing (rule 5 compares only
//     certificate and Basic user then).
//  6. Otherwise OK, Method basic, certificate or certificate+basic.
func (a *Authenticator) Check(in Input) Result {
	var cert []byte
	certOK := false
	if in.CertErr != nil {
		if r, failed := certReason(in.CertErr); failed {
			return refuse(http.StatusForbidden, r, false)
		}
	} else if in.Cert != nil {
		cert = s2b(in.Cert.Name)
		if len(cert) == 0 {
			return refuse(http.StatusForbidden, ReasonCertNoIdentity, false)
		}
		if hasControl(cert) {
			return refuse(http.StatusForbidden, ReasonCertBadIdentity, false)
		}
		certOK = true
	}
	basic := len(in.AuthLogin) > 0
	missing := ReasonNoCredentials
	if !basic && len(in.AuthScheme) > 0 {
		missing = ReasonUnsupportedScheme
		if !certOK && (a.mode == ModeCredentials || a.mode == ModeEither) && a.passes(in.AuthScheme) {
			// auth.pass_schemes: the CAS authenticates this scheme; there
			// is no identity easgate could bind to the EAS User.
			return Result{OK: true, Method: policy.AuthPassthrough}
		}
	}

	switch a.mode {
	case ModeCredentials:
		if !basic {
			return refuse(http.StatusUnauthorized, missing, true)
		}
	case ModeCertificate:
		if !certOK {
			return refuse(http.StatusForbidden, ReasonCertRequired, false)
		}
	case ModeEither:
		if !basic && !certOK {
			return refuse(http.StatusUnauthorized, missing, true)
		}
	case ModeBoth:
		if !certOK {
			return refuse(http.StatusForbidden, ReasonCertRequired, false)
		}
		if !basic {
			return refuse(http.StatusUnauthorized, missing, true)
		}
	}

	if basic {
		if u, _ := eas.SplitUser(in.AuthLogin); len(u) == 0 {
			if a.mode == ModeCertificate {
				return refuse(http.StatusForbidden, ReasonBadCredentials, false)
			}
			return refuse(http.StatusUnauthorized, ReasonBadCredentials, true)
		}
	}
	if a.domains.Enabled() {
		if r := a.checkDomains(in, cert, basic, certOK); !r.OK {
			return r
		}
	} else {
		if basic && len(in.User) > 0 && !eas.SameUser(in.AuthLogin, in.User) {
			return refuse(http.StatusForbidden, ReasonUserMismatch, false)
		}
		if certOK {
			if len(in.User) > 0 && !eas.SameUser(cert, in.User) {
				return refuse(http.StatusForbidden, ReasonCertUserMismatch, false)
			}
			if basic && !eas.SameUser(cert, in.AuthLogin) {
				return refuse(http.StatusForbidden, ReasonIdentityMismatch, false)
			}
		}
	}

	res := Result{OK: true}
	switch {
	case certOK && basic:
		res.Method, res.Identity = policy.AuthBoth, cert
	case certOK:
		res.Method, res.Identity = policy.AuthCertificate, cert
	default:
		res.Method, res.Identity = policy.AuthBasic, in.AuthLogin
	}
	return res
}

// checkDomains is rule 5 with auth.domains: every identity present is put
// in canonical form ("alice@corp.example.com"); a Basic user or
// certificate of a domain not in the list is refused as Exchange refuses
// an unknown user (401 with a challenge; 403 for a certificate), and the
// identities present must be the same canonical user. It does not
// allocate.
func (a *Authenticator) checkDomains(in Input, cert []byte, basic, certOK bool) Result {
	var bb, cb, ub [eas.MaxUserLen]byte
	var bc, cc []byte
	if basic {
		var err error
		if bc, err = a.domains.AppendCanonical(bb[:0], in.AuthLogin); err != nil {
			if a.mode == ModeCertificate {
				return refuse(http.StatusForbidden, ReasonUnknownDomain, false)
			}
			return refuse(http.StatusUnauthorized, ReasonUnknownDomain, true)
		}
	}
	if certOK {
		var err error
		if cc, err = a.domains.AppendCanonical(cb[:0], cert); err != nil {
			return refuse(http.StatusForbidden, ReasonCertUnknownDomain, false)
		}
	}
	if len(in.User) > 0 {
		uc, err := a.domains.AppendCanonical(ub[:0], in.User)
		switch {
		case basic && (err != nil || string(uc) != string(bc)):
			return refuse(http.StatusForbidden, ReasonUserMismatch, false)
		case certOK && (err != nil || string(uc) != string(cc)):
			return refuse(http.StatusForbidden, ReasonCertUserMismatch, false)
		}
	}
	if basic && certOK && string(bc) != string(cc) {
		return refuse(http.StatusForbidden, ReasonIdentityMismatch, false)
	}
	return Result{OK: true}
}

func refuse(status int, r Reason, challenge bool) Result {
	return Result{Status: status, Reason: r, WWWAuthenticate: challenge}
}

// hasControl reports ASCII control characters (which must never reach a
// header or a log line unescaped).
func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// s2b returns the bytes of s without copying. The result must not be
// modified; it is only read (compared, or copied into a header).
func s2b(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
