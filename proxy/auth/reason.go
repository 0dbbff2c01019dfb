package auth

import "github.com/easgate/easgate/certs"

// Reason says why a request was refused locally. The values are short,
// stable snake_case strings for log fields and metric labels; they never
// contain anything taken from the request.
type Reason string

// Reasons returned by Check (Result.Reason), Shield.Allow and Binder.Check.
// A Result with OK set has an empty Reason.
const (
	// 401 (with a Basic challenge where Basic could help).
	ReasonNoCredentials     Reason = "no_credentials"     // no Authorization header (and no certificate that suffices)
	ReasonUnsupportedScheme Reason = "unsupported_scheme" // Authorization other than Basic (Negotiate, NTLM, Bearer, ...)
	ReasonBadCredentials    Reason = "bad_credentials"    // Basic user name without a user part ("CORP\")
	ReasonUnknownDomain     Reason = "unknown_domain"     // Basic user of a domain not in auth.domains (or a name with no canonical form)

	// 403: an identity is present but not acceptable.
	ReasonCertRequired      Reason = "cert_required"       // the mode needs a client certificate and none was presented
	ReasonUserMismatch      Reason = "user_mismatch"       // the Basic user is not the EAS User
	ReasonCertUserMismatch  Reason = "cert_user_mismatch"  // the certificate identity is not the EAS User
	ReasonIdentityMismatch  Reason = "identity_mismatch"   // certificate and Basic user name different accounts
	ReasonCertBadIdentity   Reason = "cert_bad_identity"   // the certificate identity contains control characters
	ReasonCertUnknownDomain Reason = "cert_unknown_domain" // the certificate identity is of a domain not in auth.domains
	ReasonNoIdentity        Reason = "no_identity"         // a pass-through scheme without the EAS User: nobody to decide for

	// 403: a certificate was presented and failed verification (certs.Reason).
	ReasonCertRevoked           Reason = "cert_revoked"            // revoked_crl, revoked_ocsp
	ReasonCertExpired           Reason = "cert_expired"            // expired
	ReasonCertNotYetValid       Reason = "cert_not_yet_valid"      // not_yet_valid
	ReasonCertUntrusted         Reason = "cert_untrusted"          // untrusted_chain
	ReasonCertWrongEKU          Reason = "cert_wrong_eku"          // wrong_eku
	ReasonCertRevocationUnknown Reason = "cert_revocation_unknown" // ocsp_unavailable, crl_expired (hard mode)
	ReasonCertNoIdentity        Reason = "cert_no_identity"        // no_identity
	ReasonCertMalformed         Reason = "cert_malformed"          // malformed
	ReasonCertInvalid           Reason = "cert_invalid"            // any other verification failure

	// Lockout shield (401, answered without contacting the CAS).
	ReasonLockout       Reason = "lockout"        // too many CAS 401s for this user+device or user+address
	ReasonStalePassword Reason = "stale_password" // the same password already failed at the CAS recently
	ReasonSprayBlock    Reason = "spray_block"    // the client address is blocked for password spraying
	ReasonUserLockout   Reason = "user_lockout"   // too many CAS 401s for this user over all devices and addresses

	// Device binding (403 in enforce mode).
	ReasonDeviceBinding Reason = "device_binding" // the device first used a different certificate
)

// certReason maps a certs verification failure to a Reason. failed is false
// when the error only says that no certificate was presented (or client
// certificates are off), which is not a failure.
func certReason(err error) (r Reason, failed bool) {
	var cr certs.Reason
	if ve, ok := err.(*certs.VerifyError); ok {
		cr = ve.Reason // the common, unwrapped case: no allocation
	} else {
		cr = certs.ReasonOf(err)
	}
	switch cr {
	case certs.ReasonNoCertificate, certs.ReasonDisabled:
		return "", false
	case certs.ReasonRevokedCRL, certs.ReasonRevokedOCSP:
		return ReasonCertRevoked, true
	case certs.ReasonExpired:
		return ReasonCertExpired, true
	case certs.ReasonNotYetValid:
		return ReasonCertNotYetValid, true
	case certs.ReasonUntrustedChain:
		return ReasonCertUntrusted, true
	case certs.ReasonWrongEKU:
		return ReasonCertWrongEKU, true
	case certs.ReasonOCSPUnavailable, certs.ReasonCRLExpired:
		return ReasonCertRevocationUnknown, true
	case certs.ReasonNoIdentity:
		return ReasonCertNoIdentity, true
	case certs.ReasonMalformed:
		return ReasonCertMalformed, true
	}
	return ReasonCertInvalid, true
}

// CertReason maps a client-certificate verification error (certs.Verifier)
// to the Reason Check would give it. failed is false when err only says
// that no certificate was presented (or client certificates are off); the
// gateway uses it to label TLS handshakes that certs refused.
func CertReason(err error) (r Reason, failed bool) { return certReason(err) }
