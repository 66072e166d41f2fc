//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package gateway

import (
	"net"
	"syscall"
)

// alive reports whether an idle connection is still open: a peek at its
// socket, which does not wait, finds nothing to read. An end of stream
// (the upstream closed it), bytes the upstream sent unasked, or any error
// mean that it is not to be used. A connection that is not a socket is
// taken as open.
func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		// The runtime keeps the socket non-blocking: with nothing to
		// read, the peek fails with EAGAIN rather than waiting.
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		open = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true // done, whatever it found: never wait for data
	})
	return err == nil && open
}
