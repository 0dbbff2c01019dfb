// Package kerberos gets Kerberos service tickets to a CAS in a user's name,
// so that a phone that signed in with only a client certificate reaches
// Exchange as its user (easgate issue 17).
//
// It does Kerberos protocol transition and constrained delegation [MS-SFU]:
// with the gateway service account's TGT (an AS exchange with its keytab,
// RFC 4120 section 3.1), S4U2Self ([MS-SFU] 3.1.5.1) gets a ticket for the
// user to the service account itself, and S4U2Proxy ([MS-SFU] 3.1.5.2)
// exchanges it for a service ticket to the CAS's SPN. Each request to the
// CAS then carries "Authorization: Negotiate" with a fresh SPNEGO token
// (RFC 4178, RFC 4121 section 4.1) built from the cached ticket.
//
// The S4U messages are built here on the types of
// github.com/jcmturner/gokrb5/v8, which has the ASN.1 messages, the crypto
// and SPNEGO but no S4U (sfu.go). They are kept in one small file with the
// section references so that the file can be dropped when a released
// library gains S4U.
//
// A Delegator caches one service ticket per user and SPN, renews it before
// it expires, runs at most one KDC exchange per user and SPN at a time and
// keeps the service account's TGT fresh from the keytab. Errors are *Error
// values with a Cause (KDC unreachable, delegation refused, unknown user,
// clock skew, ...) and the principal concerned, for the caller's log line.
// Nothing here logs; no error text carries a ticket, a key or a token.
//
// This package must never import easgate's proxy, policy, eas or certs
// packages, fasthttp or a logger: the pipeline drives it through
// Delegator.Authorization and Delegator.Invalidate (imports_test.go).
package kerberos
