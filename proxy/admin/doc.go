// Package admin is easgate's management plane on the admin listener: the
// JSON API under /api/v1 (the device inventory, admin actions on devices,
// the audit trail, the impact report), the bearer-token access control
// that guards every admin endpoint (/metrics included), and the one
// function every admin action goes through (API.Apply): it validates,
// writes the override, records the audit entry and wakes the device's held
// requests. The same reads and actions are Go calls (query.go) for the
// web console (proxy/admin/console), which runs in-process.
//
// The gateway drives it through the small Gateway interface. It imports
// policy, proxy/access, proxy/config, eas, fasthttp and zerolog; it must
// never import proxy (which imports it), certs or bench. A test
// (deps_test.go) enforces this.
package admin
