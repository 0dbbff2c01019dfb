// Package config reads and validates the administrator's easgate configuration
// file (see examples/easgate.yaml and the README's configuration reference).
//
// Decoding is strict: unknown keys, duplicate keys, wrong types and invalid
// values are all errors, and every problem in a file is reported at once as an
// [Errors] list whose entries carry file:line:column, the dotted key path and
// a hint. Parse never stops at the first problem and never checks the file
// system; [Config.CheckFiles] does that separately, with the same positions.
//
// A *Config is immutable after Parse returns: the proxy swaps whole *Config
// values atomically on reload and never edits one in place.
//
// This package may import only the standard library, gopkg.in/yaml.v3 and
// github.com/easgate/easgate/eas. It must never import the proxy package
// (its parent), policy, certs or fasthttp: the dependency points from proxy
// to config, never back.
package config
