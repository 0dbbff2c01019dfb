// Package upstream is easgate's side of the Exchange Client Access Servers
// (CAS): the pool of backends a request may go to, their health, the
// connections to them, and the round trips of ordinary requests and held
// long polls.
//
// The contract, for the proxy package that drives it:
//
//   - A Pool holds the Backends of one configuration. Pick chooses one for a
//     request (least in flight, health first; every CAS when all are marked
//     down, "panic mode"), never one already tried, without allocating.
//     Begin and End count a request on a backend.
//   - Backend.Do is an ordinary request: an answer body of known length up
//     to SmallBody is read whole into the caller's response (the connection
//     is pooled again before Do returns), any other body streams.
//     Backend.DoHeld is the request of a held long poll, whose Hooks let the
//     caller release the request once it is written and cut the wait by
//     closing the CAS connection. While the CAS holds such a request it
//     costs no read buffer, no response and few, small stack frames (the
//     held-Ping memory budget depends on it). Both do the round trip
//     themselves on the backend's fasthttp connection pools, and a deadline
//     set on an ordinary connection may stand for the next request's
//     (KeepDeadline).
//   - A request may go to another CAS only when NothingSent(err): the
//     connection could not be opened (*DialError) or a pooled one turned out
//     closed before the first byte (ErrStaleConn). Bytes the CAS sent never
//     appear in an error (BodyReadError, and DoHeld's errors), since errors
//     reach the access log.
//   - Health: CheckHealth probes each backend (Probe: GET a path, an
//     expected status) and reports changes through a callback; Eject takes a
//     backend out after a connect failure (passive health). Cut fails the
//     requests still waiting for an answer (drain, shutdown); CloseIdle
//     closes pooled connections.
//   - PeerProbe asks the kernel, without reading or blocking, whether a TCP
//     peer has closed its side: stale keep-alive connections to a CAS, and
//     the phone sockets of held requests.
//
// Everything is safe for concurrent use unless its doc says otherwise.
//
// Imports: the standard library and fasthttp. It must never import proxy
// (which drives it), nor proxy/held, policy, eas or the config file
// packages: it is given values, not the configuration, and knows nothing of
// EAS.
package upstream
