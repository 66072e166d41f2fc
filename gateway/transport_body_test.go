package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waitOrFail calls waitReadable on body and fails the test if it does not
// return within testTimeout: a wait past a body's end would never return.
func waitOrFail(t *testing.T, body io.Reader, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		waitReadable(body)
		close(done)
	}()
	select {
	case <-done:
	case <-contextDone(t):
		t.Fatalf("waitReadable did not return %s", what)
	}
}

// contextDone is a channel closed testTimeout after it is asked for.
func contextDone(t *testing.T) <-chan struct{} {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx.Done()
}

// TestTransportBodyWaitReadable: a stream's body waits for the upstream's
// next bytes into its connection's buffer, and never past the body's end,
// where the upstream, keeping the connection, sends nothing more.
func TestTransportBodyWaitReadable(t *testing.T) {
	for _, tc := range []struct {
		name, head, first, second string
	}{
		{"chunked", "Transfer-Encoding: chunked", "9\r\ndata: 1\n\n\r\n", "9\r\ndata: 2\n\n\r\n0\r\n\r\n"},
		{"length", "Content-Length: 18", "data: 1\n\n", "data: 2\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			step, hold := make(chan struct{}), make(chan struct{})
			url, _ := tcpServer(t, func(c net.Conn) {
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"+tc.head+"\r\n\r\n"+tc.first)
				<-step
				io.WriteString(c, tc.second)
				<-hold // the connection stays open, with nothing more on it
			})
			defer close(hold)
			tr := new(Transport)
			defer tr.CloseIdleConnections()
			resp, err := post(t, context.Background(), tr, url, "{}")
			require.NoError(t, err)
			defer resp.Body.Close()
			b := resp.Body.(*transportBody)

			waitOrFail(t, b, "with the first event sent")
			buf := make([]byte, 64)
			n, err := b.Read(buf)
			require.NoError(t, err)
			assert.Equal(t, "data: 1\n\n", string(buf[:n]))

			close(step)
			waitOrFail(t, b, "with the second event sent")
			assert.Positive(t, b.c.br.Buffered(), "the wait reads the next bytes into the connection's buffer")
			got, err := io.ReadAll(b)
			require.NoError(t, err)
			assert.Equal(t, "data: 2\n\n", string(got))
			waitOrFail(t, b, "at the body's end")
		})
	}
}
