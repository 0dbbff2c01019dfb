// Command gen reads codepages.txt and writes tables_gen.go for package wbxml.
//
// It is run by `go generate ./eas/wbxml` (see the //go:generate line in
// tag.go). The output is deterministic: running it twice on the same data
// file produces byte-identical files, which a test checks.
//
// Usage: go run ./internal/gen [-in codepages.txt] [-out tables_gen.go]
//
// It checks the data file's invariants (pages 0–25 in order, tokens
// 0x05–0x3F ascending, names unique within a page) and fails instead of
// generating a broken table. It imports only the standard library and must
// never import easgate packages (it runs before package wbxml compiles).
package main
