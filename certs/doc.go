// Package certs owns everything X.509 in easgate: the gateway's own server
// certificates, verification of the certificates phones present, revocation
// checking, the identity (UPN, e-mail or common name) read from a client
// certificate, and the TLS client configuration used towards Exchange.
//
// Server side: a [Store] loads one or more certificates from PEM (chain with
// the leaf first, plus key) or from PKCS#12/PFX files, chooses one per
// connection by SNI (falling back to the first), and reloads them when the
// files change; a broken replacement keeps the old certificate and reports
// the error. [Store.TLSConfig] gives TLS 1.2+ with ECDHE+AEAD suites only.
//
// PFX files are decoded with software.sslmate.com/src/go-pkcs12, not
// golang.org/x/crypto/pkcs12: the latter only understands the legacy
// RC2/3DES encryption, while current Windows and OpenSSL 3 exports use
// PBES2 with AES (and PBMAC1). go-pkcs12 reads both, so a .pfx exported from
// the Windows certificate manager in either "TripleDES-SHA1" or
// "AES256-SHA256" mode loads.
//
// Client side: a [Verifier] checks the presented chain against the trusted
// CA bundle (intermediates may come from the client), the clientAuth
// extended key usage, validity dates, revocation by CRL files and by OCSP
// (responder from the certificate's AIA, responses cached until NextUpdate),
// and extracts an [Identity]. Failures are [*VerifyError] values whose
// [Reason] is a short stable string for logs and metrics.
//
// Import rules: certs imports only the standard library, golang.org/x/crypto
// and software.sslmate.com/src/go-pkcs12. It must never import any other
// easgate package (eas, policy, proxy, ...) nor fasthttp; imports_test.go
// enforces this with `go list -deps`.
package certs
