// Package policy decides what happens to an EAS device: allow, block or
// quarantine. It evaluates the administrator's rules in Exchange's order
// (per-user block list, per-user allow list, device discovery, device rules,
// compliance requirement, default access level), consults a cached compliance
// verdict from a pluggable Source, and returns a Decision that explains itself:
// the action, typed reasons, the rule that decided, the verdict with its source
// and age, and whether the decision is enforced or only reported.
//
// policy knows the EAS vocabulary (package eas) but never imports proxy,
// proxy/config, certs, fasthttp or any HTTP server code: the proxy hands it a
// Subject value. A test (imports_test.go) enforces this.
//
// Decide on a cache hit performs no I/O and allocates nothing.
package policy
