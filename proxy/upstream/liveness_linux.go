//go:build linux

package upstream

import (
	"syscall"
	"unsafe"
)

const (
	pollIn    = 0x1
	pollHup   = 0x10
	pollErr   = 0x8
	pollRDHup = 0x2000
)

type pollFD struct {
	fd      int32
	events  int16
	revents int16
}

// fdPeerClosed reports whether the peer of an idle connection has shut down
// its side (FIN or RST received). It asks ppoll for POLLRDHUP with a zero
// timeout, so it never blocks, and it is not fooled by data still pending
// (a TLS close_notify record arrives before the FIN).
func fdPeerClosed(fd uintptr) bool {
	p := pollFD{fd: int32(fd), events: pollRDHup}
	var ts syscall.Timespec
	n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&p)), 1,
		uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	return errno == 0 && n == 1 && p.revents&(pollRDHup|pollHup|pollErr) != 0
}

// fdReadable reports whether a read on the connection would not block
// (data, end of stream or an error is pending). Like fdPeerClosed it never
// blocks.
func fdReadable(fd uintptr) bool {
	p := pollFD{fd: int32(fd), events: pollIn | pollRDHup}
	var ts syscall.Timespec
	n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&p)), 1,
		uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	return errno != 0 || n == 1
}
