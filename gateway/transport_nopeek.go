//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package gateway

import "net"

// alive reports whether an idle connection is still open. Here there is no
// non-blocking peek to ask with, so it is taken as open; a connection the
// upstream closed while idle fails the request that takes it.
func alive(net.Conn) bool { return true }
