// Package proxy is easgate's gateway: a fasthttp reverse proxy that stands in
// front of one or more Exchange Client Access Servers (CAS) and carries
// Exchange ActiveSync (EAS) traffic to them.
//
// For each request it routes (only the EAS and Autodiscover paths are served;
// everything else is 404, so it is never an open proxy), refuses ambiguous
// message framing, parses the EAS request, authenticates it, identifies the
// client, decides, and streams the request to a healthy CAS and the answer
// back. The path of one request reads top to bottom in pipeline.go. Ping and
// Sync long polls are held for as long as the phone asked (plus a margin,
// capped), and tens of thousands of them may be held at once. It writes one
// access-log line per request and exports Prometheus metrics on a separate
// admin listener. Its running state (upstream pool, limits, TLS, and the
// per-config parts: authentication and enforcement, parts.go) sits behind an
// atomic pointer: Reload builds a new state and swaps it in without failing
// an in-flight request.
//
// Two sub-packages carry the held requests and the CAS side, and are driven
// through small interfaces: proxy/held (the registry of held requests, its
// sweeps, the cut points of a poll held at a CAS, the quarantine hold, the
// books of hijacked connections) hands back decisions and outcomes that
// this package turns into answers, on the goroutine that owns the request;
// proxy/upstream (the CAS pool, health checks, connections, the held round
// trip) is given values, not the configuration.
//
// The per-request work before the upstream call (parse, identify, decide)
// allocates nothing; tests prove it with testing.AllocsPerRun.
//
// Imports: the standard library, fasthttp, zerolog, prometheus/client_golang,
// and the easgate packages eas, eas/wbxml, certs, policy, proxy/config,
// proxy/access, proxy/auth, proxy/quarantine, proxy/admin, proxy/admin/console,
// proxy/held and proxy/upstream. It must never import cmd/... or bench (they sit above it),
// and none of its sub-packages may import it.
package proxy
