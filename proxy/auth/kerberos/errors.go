package kerberos

import (
	"errors"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/messages"
)

// Cause says why a ticket could not be had, in words an administrator can
// act on. Its string is what the access log and the metrics show.
type Cause string

const (
	// CauseKDCUnreachable: no KDC answered (connection refused, timeout).
	// The phone should come back later: the pipeline answers 503.
	CauseKDCUnreachable Cause = "kdc_unreachable"
	// CauseDelegationRefused: the KDC refused S4U2Self or S4U2Proxy for the
	// service account (not trusted for protocol transition, the SPN not in
	// its msDS-AllowedToDelegateTo, or the user cannot be delegated).
	CauseDelegationRefused Cause = "delegation_refused"
	// CauseUnknownUser: the KDC does not know the user (or the account is
	// disabled, locked or expired).
	CauseUnknownUser Cause = "unknown_user"
	// CauseUnknownService: the KDC does not know the target SPN or the
	// service principal.
	CauseUnknownService Cause = "unknown_service"
	// CauseClockSkew: this machine's clock and the KDC's differ too much.
	CauseClockSkew Cause = "clock_skew"
	// CauseServiceCredentials: the service account's keytab was refused
	// (wrong key, wrong kvno, disabled account).
	CauseServiceCredentials Cause = "service_credentials"
	// CauseBadUser: the identity cannot be made a Kerberos principal; no
	// KDC was asked.
	CauseBadUser Cause = "bad_user_name"
	// CauseKDCError: any other KDC error or an invalid reply.
	CauseKDCError Cause = "kdc_error"
)

// Error is a failed ticket request: the cause, the principal it concerns
// (a user, an SPN or the service account: names, never secrets) and the
// KDC's error code when it sent one.
type Error struct {
	Cause     Cause
	Principal string
	Code      int32 // the KRB-ERROR code, 0 when none
	Err       error // the underlying error; its text carries no ticket or key
}

func (e *Error) Error() string {
	s := "kerberos: " + string(e.Cause)
	if e.Principal != "" {
		s += " for " + e.Principal
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// CauseOf is err's Cause, or CauseKDCError for an error from elsewhere.
func CauseOf(err error) Cause {
	var e *Error
	if errors.As(err, &e) {
		return e.Cause
	}
	return CauseKDCError
}

// stage is the exchange an error came from: the KDC's codes mean different
// things in each.
type stage uint8

const (
	stageAS    stage = iota // the service account's TGT
	stageSelf               // S4U2Self
	stageProxy              // S4U2Proxy
)

// classify turns an exchange's failure into an *Error naming principal.
func classify(err error, st stage, principal string) *Error {
	var e *Error
	if errors.As(err, &e) {
		if e.Principal == "" {
			e.Principal = principal
		}
		return e
	}
	out := &Error{Cause: CauseKDCError, Principal: principal, Err: err}
	var ke messages.KRBError
	if !errors.As(err, &ke) {
		if errors.Is(err, errNotForwardable) {
			out.Cause = CauseDelegationRefused
		}
		return out
	}
	out.Code = ke.ErrorCode
	// The KRB-ERROR's own text names the code; the e-text is the KDC's.
	msg := errorcode.Lookup(ke.ErrorCode)
	if ke.EText != "" {
		msg += " (" + ke.EText + ")"
	}
	out.Err = errors.New(msg)
	switch ke.ErrorCode {
	case errorcode.KRB_AP_ERR_SKEW:
		out.Cause = CauseClockSkew
	case errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, errorcode.KDC_ERR_CLIENT_REVOKED, errorcode.KDC_ERR_NAME_EXP, errorcode.KDC_ERR_KEY_EXPIRED:
		out.Cause = CauseUnknownUser
		if st == stageAS {
			out.Cause = CauseServiceCredentials
		}
	case errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN:
		out.Cause = CauseUnknownService
	case errorcode.KDC_ERR_BADOPTION, errorcode.KDC_ERR_POLICY, errorcode.KDC_ERR_PADATA_TYPE_NOSUPP:
		out.Cause = CauseDelegationRefused
		if st == stageAS {
			out.Cause = CauseServiceCredentials
		}
	case errorcode.KDC_ERR_PREAUTH_FAILED, errorcode.KRB_AP_ERR_BAD_INTEGRITY, errorcode.KDC_ERR_PREAUTH_REQUIRED,
		errorcode.KDC_ERR_ETYPE_NOSUPP:
		out.Cause = CauseServiceCredentials
	}
	return out
}
