package certs

import (
	"errors"
	"strconv"
)

// Reason classifies why a client certificate was refused. The values are
// short, stable strings meant for log fields and metric labels.
type Reason string

// Reasons returned in [VerifyError.Reason].
const (
	ReasonNoCertificate   Reason = "no_certificate"   // the client presented no certificate
	ReasonDisabled        Reason = "disabled"         // client certificates are off in the configuration
	ReasonMalformed       Reason = "malformed"        // the presented certificate could not be used at all
	ReasonUntrustedChain  Reason = "untrusted_chain"  // no chain to a trusted CA
	ReasonExpired         Reason = "expired"          // the leaf or a CA in the chain is past NotAfter
	ReasonNotYetValid     Reason = "not_yet_valid"    // the leaf or a CA in the chain is before NotBefore
	ReasonWrongEKU        Reason = "wrong_eku"        // no clientAuth (or anyExtendedKeyUsage) usage
	ReasonRevokedCRL      Reason = "revoked_crl"      // listed in a CRL of its issuer
	ReasonRevokedOCSP     Reason = "revoked_ocsp"     // the OCSP responder answered "revoked"
	ReasonOCSPUnavailable Reason = "ocsp_unavailable" // hard mode: no usable OCSP answer
	ReasonCRLExpired      Reason = "crl_expired"      // hard mode: only a stale CRL covers the certificate
	ReasonNoIdentity      Reason = "no_identity"      // the identity chosen by IdentityFrom is missing
)

// VerifyError is the error type of [Verifier.Verify] and
// [Verifier.VerifyChain]. Msg is for humans and never contains key material.
type VerifyError struct {
	Reason Reason
	Msg    string
}

func (e *VerifyError) Error() string {
	if e.Msg == "" {
		return "certs: client certificate refused: " + string(e.Reason)
	}
	return "certs: client certificate refused (" + string(e.Reason) + "): " + e.Msg
}

// Is reports whether target is a *VerifyError with the same Reason, so
// errors.Is(err, ErrNoCertificate) works for any error of that reason.
func (e *VerifyError) Is(target error) bool {
	t, ok := target.(*VerifyError)
	return ok && t.Reason == e.Reason
}

// ErrNoCertificate is returned (matched with errors.Is) when the client did
// not present a certificate.
var ErrNoCertificate error = &VerifyError{Reason: ReasonNoCertificate, Msg: "no client certificate presented"}

// ReasonOf returns the Reason of a *VerifyError in err's chain, or "" when
// err is nil or not a verification error.
func ReasonOf(err error) Reason {
	var ve *VerifyError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	return ""
}

// SANError reports a malformed subjectAltName extension. Offset is the byte
// offset inside the extension value where parsing failed.
type SANError struct {
	Offset int
	Msg    string
}

func (e *SANError) Error() string {
	return "certs: subjectAltName: " + e.Msg + " at byte " + strconv.Itoa(e.Offset)
}
