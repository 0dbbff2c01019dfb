// Package sogo holds easgate's end-to-end tests against a real Exchange
// ActiveSync server: SOGo (with Dovecot, PostgreSQL, memcached and nginx in
// front) started on loopback by setup.sh in this directory. The tests drive a
// phone's life cycle (OPTIONS, Provision, Settings with DeviceInformation,
// FolderSync, Sync of the Inbox, Ping woken by new mail, Basic auth
// failures) directly against SOGo and through a running easgate, for
// protocol 14.1 and 12.1 and both query forms; a quarantined phone and its
// release through a compliance file; and client-certificate authentication
// at easgate with Basic credentials forwarded to SOGo. See README.md.
//
// The tests run only with EASGATE_E2E_SOGO=1; they skip otherwise. The
// package has no code outside its tests and must never be imported. Its
// tests import only the standard library and easgate's eas and eas/wbxml
// packages; easgate itself is built and run as a subprocess.
package sogo
