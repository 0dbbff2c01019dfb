// Package quarantine emulates Exchange's device quarantine at the EAS/WBXML
// level, and builds the answers easgate gives to blocked devices.
//
// A quarantined phone sees what Exchange shows a quarantined device
// (PROTOCOL.md §4.3): HTTP 200 everywhere, the real folder hierarchy
// (FolderSync is forwarded to the CAS and the Inbox is learned from its
// answer), and a mailbox that is empty except for one notice message in the
// Inbox, built from the administrator's template. Sync is answered with sync
// keys that easgate issues itself, so when the device is released its next
// Sync reaches Exchange with a key Exchange does not know, Exchange answers
// Status 3, and the phone resyncs everything from SyncKey 0: nothing of the
// real mailbox was acknowledged while it was quarantined. Changes the phone
// makes are never acknowledged as saved, and data commands get the
// per-command denial Exchange gives.
//
// The Emulator keeps one Record per quarantined device (learned Inbox, issued
// sync keys, the rendered notice and whether it was delivered) and persists
// the records to a policy.Store bucket in batches, so a restart neither
// re-delivers the notice nor forgets the keys it issued.
//
// The package is pure EAS logic: it takes a command, protocol version and
// body bytes and returns an Answer (HTTP status, content type, body, and how
// long to hold a long poll). It must never import fasthttp, proxy, certs or
// bench; it imports eas, eas/wbxml, policy (for the Store interface) and the
// standard library only. imports_test.go enforces this.
package quarantine
