//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keepAliveServer answers each request of a connection with ok and a
// Content-Length, as a keep-alive server does, then does what after says
// with the connection: "close" closes it, "extra" writes an answer nobody
// asked for and keeps it open, "keep" keeps it. It returns its URL and
// the connections it accepted.
func keepAliveServer(t *testing.T, after string) (string, func() int) {
	t.Helper()
	return tcpServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			answer := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
			switch after {
			case "close":
				io.WriteString(c, answer)
				return
			case "extra": // in the same write: it arrives with the answer
				io.WriteString(c, answer+"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n")
			default:
				io.WriteString(c, answer)
			}
		}
	})
}

// awaitReadable waits, without reading, until c has something to read or
// its end.
func awaitReadable(t *testing.T, c net.Conn) {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	require.NoError(t, err)
	var b [1]byte
	require.NoError(t, rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return err != syscall.EAGAIN // false: the runtime waits for the socket
	}))
}

func TestTransportUpstreamClosedIdleConnection(t *testing.T) {
	checkLeaks(t)
	url, accepted := keepAliveServer(t, "close")
	tr := new(Transport)
	defer tr.CloseIdleConnections()
	code, body := readAll(t, tr, url, "{}")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok", body)
	// The upstream closed the connection after its answer, without saying
	// so; the Transport kept it. Wait until the close has arrived.
	tr.mu.Lock()
	var idle *upstreamConn
	for _, l := range tr.idle {
		idle = l[0]
	}
	tr.mu.Unlock()
	require.NotNil(t, idle, "the connection was kept")
	awaitReadable(t, idle.raw)
	assert.False(t, alive(idle.raw))

	code, body = readAll(t, tr, url, "{}")
	assert.Equal(t, http.StatusOK, code, "the closed connection is not used: the request goes on a new one")
	assert.Equal(t, "ok", body)
	assert.Equal(t, 2, accepted())
}

func TestTransportUnaskedBytesDiscardConnection(t *testing.T) {
	checkLeaks(t)
	url, accepted := keepAliveServer(t, "extra")
	tr := new(Transport)
	defer tr.CloseIdleConnections()
	for i := range 3 {
		code, body := readAll(t, tr, url, "{}")
		assert.Equal(t, http.StatusOK, code, "request %d: not the 418 nobody asked for", i)
		assert.Equal(t, "ok", body)
	}
	assert.Equal(t, 3, accepted(), "a connection with bytes nobody asked for is not used again")
}

func TestTransportKeepsOpenConnection(t *testing.T) {
	checkLeaks(t)
	url, accepted := keepAliveServer(t, "keep")
	tr := new(Transport)
	defer tr.CloseIdleConnections()
	for range 3 {
		code, _ := readAll(t, tr, url, "{}")
		assert.Equal(t, http.StatusOK, code)
	}
	assert.Equal(t, 1, accepted(), "the check finds an open connection open")
}
