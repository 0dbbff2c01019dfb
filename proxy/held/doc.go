// Package held keeps easgate's held requests: the Ping and Sync long polls
// a CAS holds for up to an hour (Poll), and the quarantined devices' Pings
// and Syncs easgate holds itself (Hold).
//
// The contract, for the proxy package that drives it:
//
//   - One Registry per process lists every held request while it is held.
//     Two goroutines serve all of them: the vanish sweep asks the kernel
//     about each phone's socket every 3 s and frees the request of a phone
//     that left; the re-decision sweep re-runs the access policy for each
//     watched request every recheck interval. Wake (one device) and WakeAll
//     (a reload) re-decide at once. Stop answers every held request at
//     shutdown. While it waits, a held request costs the registry no
//     goroutine, buffer or allocation (a Hold has its timer): the caller
//     embeds a Poll or Hold in what it keeps for the request anyway.
//   - A Poll is cut, never answered, by the registry: the CAS connection
//     its round trip waits on is closed (Attach and Detach are the cut
//     points of upstream.Hooks) and the round trip fails with the cut's
//     error (ErrGone, ErrStopping, ErrRefused). Unwatch hands the refusing
//     decision back.
//   - A Hold ends once, by its timer, a re-decision, Stop or the phone's
//     leaving; its Ender is told, and Outcome says how (Expired, Stopped,
//     Renewed, Released, Blocked, Left) with the new decision.
//   - Conns keeps the books of the connections hijacked for held requests
//     and of those handed back to the HTTP server (resumed), for shutdown;
//     TakeBuffered takes the bytes read past a held request out of the
//     server's reader when its connection is hijacked. Memory remembers the
//     interval each device's last Ping and Sync asked for (an empty Ping
//     reuses it), and Timeout turns an interval into the upstream timeout.
//   - The registry decides nothing itself: a Decider, supplied per request,
//     re-runs the policy. The registry never calls it on the request's own
//     goroutine nor after the request left the registry, and the package
//     writes nothing of the caller's: decisions and outcomes are returned
//     (Unwatch, Outcome), and the caller turns them into answers on the
//     goroutine that owns the request.
//
// All exported methods are safe for concurrent use.
//
// Imports: the standard library, policy, eas (for key lengths) and
// proxy/upstream (the socket probe). It must never import proxy, which
// drives it: it sees neither the Server nor the per-request record, and
// knows no HTTP answer.
package held
