// Package auth is easgate's authentication step: it decides, for one EAS
// request, whether the identity the phone presented (Basic credentials, a
// verified client certificate, or both) is acceptable under auth.mode and is
// bound to the EAS User the request names; it shields the Exchange Client
// Access Servers (CAS) and Active Directory from password guessing and
// stale-password storms (auth.lockout); it binds a device to the client
// certificate it first used (auth.device_binding); and it says which identity
// headers go upstream.
//
// The package does not verify passwords: the CAS does, and its 401 passes
// through to the phone unchanged. easgate only checks that the identities it
// can see agree with each other and with the EAS User, and refuses locally
// what it already knows will fail.
//
// # Pieces
//
//   - [Authenticator.Check] is a pure decision function over an [Input]
//     (Basic identity, EAS User, certificate identity or verification error)
//     returning a [Result] (method, identity, status, stable [Reason]).
//     Every case is listed in the table test in check_test.go.
//   - [Shield] counts the CAS's 401 answers per user+device, per
//     user+client address, per user over all devices and addresses, and per
//     client address (distinct users: password spraying), refuses locally
//     while a lock runs, and remembers keyed digests of recently failed
//     passwords so the same stale password is not sent again after its
//     second failure. Only a 2xx (or 449) answer to an ActiveSync command
//     is a success that resets. Its counters live in a [policy.Store] bucket
//     ("lockout") so a restart does not reset them.
//   - [Binder] remembers the certificate fingerprint first used by each
//     user+device and refuses (or reports) a different one later.
//   - [UpstreamIdentity.Plan] decides which Authorization and identity
//     headers the proxy sends to the CAS.
//
// Kerberos constrained delegation (KCD) lives in the subpackage kerberos,
// driven by the proxy (proxy/kerberos.go): auth only reports the method a
// request was authenticated with. Negotiate, NTLM and Bearer
// Authorization headers are refused with a Basic challenge unless
// auth.pass_schemes lists them; listed schemes are forwarded unchanged and
// the CAS authenticates them (easgate cannot bind them to the EAS User).
// Certificate-only users reach the CAS through easgate's own client
// certificate plus a configured identity header, which the Exchange side
// must be set up to trust.
//
// # Hot path
//
// Check allocates nothing. Shield.Allow allocates nothing when the user,
// device and address have no failure on record (the common case) and only
// computes a password digest when the user has failed recently. Tests prove
// both with testing.AllocsPerRun.
//
// # Imports
//
// auth imports the standard library, golang.org/x/crypto, and the easgate
// packages eas, certs, policy and proxy/config. It must never import proxy
// (its parent), fasthttp, bench or cmd/...; imports_test.go enforces this.
package auth
