//go:build !linux

package upstream

// fdPeerClosed cannot ask the kernel on this platform without extra
// dependencies; stale keep-alive connections then surface as upstream
// errors (and are never retried for requests whose bytes were written).
func fdPeerClosed(uintptr) bool { return false }

// fdReadable cannot ask the kernel on this platform: a held request then
// waits for its answer inside fasthttp's reader, as an ordinary one does.
func fdReadable(uintptr) bool { return true }
