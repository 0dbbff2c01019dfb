// Package eas is easgate's Exchange ActiveSync vocabulary: request parsing
// (both query forms of MS-ASHTTP, headers, Basic identity), client
// identification, body readers that stop as soon as they have what they need,
// and response builders that append to a caller's buffer.
//
// It performs no I/O and imports only the standard library and eas/wbxml. It
// must never import fasthttp, proxy, policy, certs or any third-party module:
// a test (imports_test.go) fails if it does.
package eas
