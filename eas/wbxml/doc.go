// Package wbxml is easgate's WAP Binary XML codec for Exchange ActiveSync
// (MS-ASWBXML): a pull tokenizer (Decoder), an appending encoder (Encoder),
// the 26 ActiveSync code pages as generated Tag constants, and a converter to
// and from textual XML (ToXML, FromXML) used by tools and tests.
//
// The Decoder is built for the proxy's hot path: it walks a byte slice without
// building a tree, starting no goroutine and allocating nothing per token; the
// Data of a Token aliases the input and is valid until the next call. Every
// malformed input yields a *SyntaxError carrying an ErrorCode and the byte
// offset, never a panic, and memory use is bounded by the input and Limits.
//
// ActiveSync uses a small subset of WBXML 1.3: no attributes, no string table
// references, no entities or extension tokens. The Decoder rejects those with
// ErrUnsupportedToken; it does not reject tokens that have no name in the code
// page tables (newer servers may send them), so Tag.Name may return "".
//
// The code pages live in one data file, codepages.txt; `go generate` turns it
// into tables_gen.go (see internal/gen).
//
// This package imports only the Go standard library. It must never import
// fasthttp, any easgate package (eas, proxy, policy, certs) or a third-party
// module: imports_test.go fails if it does.
package wbxml
