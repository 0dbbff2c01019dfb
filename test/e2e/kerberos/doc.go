// Package kerberos holds easgate's end-to-end tests of Kerberos constrained
// delegation (issue 17) against a real KDC: Samba's Active Directory DC,
// with a service account trusted for protocol transition and allowed to
// delegate to HTTP/cas.corp.test, and a Negotiate-protected CAS stand-in
// (Apache with mod_auth_gssapi) that shows which user it authenticated.
// setup.sh in this directory provisions both on loopback.
//
// Phones with client certificates reach the stand-in through a running
// easgate (built and started as a subprocess); a relay in the test between
// easgate and the KDC counts KDC connections and can stop answering, so the
// tests see when a ticket comes from the cache and what an unreachable KDC
// does.
//
// The tests run only with EASGATE_E2E_KERBEROS=1 and skip otherwise; with
// CI=true a missing set-up fails them. The package has no code outside its
// tests and must never be imported; its tests import only the standard
// library (easgate itself runs as a subprocess).
package kerberos
