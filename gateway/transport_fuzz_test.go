package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// FuzzTransport has an upstream on loopback answer a request through
// Transport with arbitrary bytes, then close, and holds the outcome to
// what RoundTrip promises: an error, or an answer with a final status
// (200-999) whose body reads to an end; the Transport keeps at most the
// one connection, and nothing hangs or panics.
func FuzzTransport(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 418 extra\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok",
		"HTTP/1.0 503 Busy\r\nRetry-After: 1\r\n\r\nbusy",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Skip(err) // the host is out of ports: not the Transport's doing
		}
		defer ln.Close()
		var served sync.WaitGroup
		served.Add(1)
		go func() {
			defer served.Done()
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				io.Copy(io.Discard, req.Body)
				c.Write(answer)
			}
		}()

		tr := &Transport{DialContext: dialNoLinger}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+ln.Addr().String()+"/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tr.RoundTrip(req)
		switch {
		case err != nil && resp != nil:
			t.Fatalf("both an answer and an error: %v", err)
		case err == nil && resp == nil:
			t.Fatal("neither an answer nor an error")
		case err == nil:
			if resp.StatusCode < 200 || resp.StatusCode > 999 {
				t.Fatalf("status %d is not a final one", resp.StatusCode)
			}
			io.Copy(io.Discard, resp.Body) // ends: the upstream closes
			resp.Body.Close()
		}
		if n := tr.idleCount(); n > 1 {
			t.Fatalf("%d idle connections from one request", n)
		}
		tr.CloseIdleConnections()
		served.Wait()
	})
}

// dialNoLinger dials with SO_LINGER 0, so that each execution's connection
// ends with a reset and leaves no TIME_WAIT behind: tens of thousands of
// them would slow the host's next connections.
func dialNoLinger(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := new(net.Dialer).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c.(*net.TCPConn).SetLinger(0)
	return c, nil
}
