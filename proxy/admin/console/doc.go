// Package console is easgate's web console: server-rendered pages on the
// admin listener (dashboard, devices, quarantine queue, device page with
// its explain trace, audit trail, impact report) for the helpdesk staff
// who approve and block phones.
//
// It is a client of proxy/admin: every read goes through the API's Go
// functions (ListDevices, Device, Audit, Report) and every action through
// API.Apply or API.ApplyAll, so validation, overrides, the audit trail and
// the wake-up of held requests are the API's own. Pages are html/template
// with the templates, stylesheet and the one small script embedded in the
// binary; nothing is fetched at run time, charts are SVG drawn here, and
// the core flows work without JavaScript.
//
// Sign-in takes an admin API token (its role applies) or a verified admin
// client certificate; sessions live in memory, expire when idle and carry a
// CSRF token that every form posts back. Pages are sent with a
// Content-Security-Policy without 'unsafe-inline', X-Frame-Options: DENY
// and a Referrer-Policy.
//
// It imports proxy/admin, proxy/access, proxy/config, policy, eas,
// fasthttp and zerolog. It must never import proxy (which mounts it),
// certs (the gateway maps client certificates for it through Gateway) or
// bench; deps_test.go enforces this.
package console
