package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onwardsgo/pool/internal/fakeclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// checkLeaks checks, after the test and all its cleanups, that no
// goroutine it started is left.
func checkLeaks(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// connServer is an httptest server that counts the connections it was
// given and those still open, and lets a test wait for that count.
type connServer struct {
	*httptest.Server
	mu     sync.Mutex
	cond   *sync.Cond
	opened int
	open   int
}

func newConnServer(t *testing.T, h http.HandlerFunc) *connServer {
	t.Helper()
	s := unstartedConnServer(h)
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// newConnServerTLS is newConnServer over TLS.
func newConnServerTLS(t *testing.T, h http.HandlerFunc) *connServer {
	t.Helper()
	s := unstartedConnServer(h)
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func unstartedConnServer(h http.HandlerFunc) *connServer {
	s := &connServer{Server: httptest.NewUnstartedServer(h)}
	s.cond = sync.NewCond(&s.mu)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch st {
		case http.StateNew:
			s.opened++
			s.open++
		case http.StateClosed, http.StateHijacked:
			s.open--
		}
		s.cond.Broadcast()
	}
	return s
}

// counts returns the connections opened so far and those open now.
func (s *connServer) counts() (opened, open int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened, s.open
}

// awaitOpen waits until exactly n connections are open.
func (s *connServer) awaitOpen(t *testing.T, n int) {
	t.Helper()
	stop := time.AfterFunc(testTimeout, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop.Stop()
	deadline := time.Now().Add(testTimeout)
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.open != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", s.open, n)
		}
		s.cond.Wait()
	}
}

// post sends body to url through rt and returns the response.
func post(t *testing.T, ctx context.Context, rt http.RoundTripper, url, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	return rt.RoundTrip(req)
}

// readAll posts and reads the whole answer.
func readAll(t *testing.T, rt http.RoundTripper, url, body string) (int, string) {
	t.Helper()
	resp, err := post(t, context.Background(), rt, url, body)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode, string(b)
}

// echo answers with the request's method, path, body and Host, and its
// protocol in X-Proto.
func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Proto", r.Proto)
	fmt.Fprintf(w, "%s %s %s %s", r.Method, r.URL.RequestURI(), b, r.Host)
}

func TestTransportReusesConnection(t *testing.T) {
	checkLeaks(t)
	s := newConnServer(t, echo)
	tr := new(Transport)
	defer tr.CloseIdleConnections()
	for i := range 5 {
		code, body := readAll(t, tr, s.URL+"/v1/chat?x=1", fmt.Sprint("body", i))
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, fmt.Sprintf("POST /v1/chat?x=1 body%d %s", i, s.Listener.Addr()), body)
	}
	opened, _ := s.counts()
	assert.Equal(t, 1, opened, "five requests in turn take one connection")
	tr.CloseIdleConnections()
	s.awaitOpen(t, 0)
}

func TestTransportStreamsAsSent(t *testing.T) {
	checkLeaks(t)
	next := make(chan struct{})
	s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		<-next
		io.WriteString(w, "data: 2\n\n")
	})
	tr := new(Transport)
	defer tr.CloseIdleConnections()
	resp, err := post(t, context.Background(), tr, s.URL, "{}")
	require.NoError(t, err)
	assert.Equal(t, []string{"chunked"}, resp.TransferEncoding)
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "data: 1\n", line, "the first event arrives before the upstream sends the second")
	close(next)
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	assert.Equal(t, "\ndata: 2\n\n", string(rest))
	resp.Body.Close()
	code, _ := readAll(t, tr, s.URL, "again")
	assert.Equal(t, http.StatusOK, code)
	opened, _ := s.counts()
	assert.Equal(t, 1, opened, "a stream read to its end gives its connection back")
}

func TestTransportBodyClosedEarly(t *testing.T) {
	checkLeaks(t)
	s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 1<<16))
	})
	tr := new(Transport)
	defer tr.CloseIdleConnections()
	resp, err := post(t, context.Background(), tr, s.URL, "")
	require.NoError(t, err)
	_, err = io.ReadFull(resp.Body, make([]byte, 10))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, resp.Body.Close(), "a second Close does nothing")
	_, err = resp.Body.Read(make([]byte, 1))
	assert.ErrorIs(t, err, errBodyClosed)
	s.awaitOpen(t, 0) // a body left unread closes its connection
	code, _ := readAll(t, tr, s.URL, "")
	assert.Equal(t, http.StatusOK, code)
	opened, _ := s.counts()
	assert.Equal(t, 2, opened)
}

func TestTransportCancelWhileWaitingForHeaders(t *testing.T) {
	checkLeaks(t)
	arrived, left := make(chan struct{}), make(chan struct{})
	s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // so that the server watches for the client's close
		close(arrived)
		<-r.Context().Done() // the client closed the connection
		close(left)
	})
	tr := new(Transport)
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	_, err := post(t, ctx, tr, s.URL, "{}")
	assert.ErrorIs(t, err, context.Canceled)
	<-left
	s.awaitOpen(t, 0)
}

func TestTransportCancelWhileReadingBody(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tls], func(t *testing.T) {
			checkLeaks(t)
			left := make(chan struct{})
			h := func(w http.ResponseWriter, r *http.Request) {
				io.ReadAll(r.Body)
				io.WriteString(w, "data: 1\n\n")
				w.(http.Flusher).Flush()
				<-r.Context().Done()
				close(left)
			}
			var s *connServer
			tr := new(Transport)
			if tls {
				s = newConnServerTLS(t, h)
				tr.TLSClientConfig = s.Client().Transport.(*http.Transport).TLSClientConfig
			} else {
				s = newConnServer(t, h)
			}
			defer tr.CloseIdleConnections()
			ctx, cancel := context.WithCancel(context.Background())
			resp, err := post(t, ctx, tr, s.URL, "{}")
			require.NoError(t, err)
			b := make([]byte, 64)
			n, err := resp.Body.Read(b)
			require.NoError(t, err)
			assert.Equal(t, "data: 1\n\n", string(b[:n]))
			cancel()
			_, err = io.ReadAll(resp.Body) // blocked on the upstream until the cancel closes it
			assert.ErrorIs(t, err, context.Canceled)
			<-left
			resp.Body.Close()
			s.awaitOpen(t, 0)
		})
	}
}

func TestTransportNoBodyGivesConnectionBack(t *testing.T) {
	checkLeaks(t)
	s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	tr := new(Transport)
	defer tr.CloseIdleConnections()
	for range 3 {
		resp, err := post(t, context.Background(), tr, s.URL, "")
		require.NoError(t, err)
		assert.Equal(t, http.StatusNoContent, resp.StatusCode)
		assert.Equal(t, http.NoBody, resp.Body)
	}
	opened, _ := s.counts()
	assert.Equal(t, 1, opened, "a 204, which has no body, gives its connection back at once")
}

func TestTransportConnectionClose(t *testing.T) {
	checkLeaks(t)
	s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	tr := new(Transport)
	defer tr.CloseIdleConnections()
	for range 2 {
		code, body := readAll(t, tr, s.URL, "")
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "bye", body)
	}
	opened, _ := s.counts()
	assert.Equal(t, 2, opened, "Connection: close is honoured")
	s.awaitOpen(t, 0)
}

func TestTransportMaxIdleConnsPerHost(t *testing.T) {
	checkLeaks(t)
	for _, tc := range []struct{ max, kept int }{{1, 1}, {-1, 0}, {0, 3}} {
		t.Run(fmt.Sprint(tc.max), func(t *testing.T) {
			var arrived sync.WaitGroup
			arrived.Add(3)
			s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
				arrived.Done()
				arrived.Wait() // three in flight at once: three connections
				io.WriteString(w, "ok")
			})
			tr := &Transport{MaxIdleConnsPerHost: tc.max}
			defer tr.CloseIdleConnections()
			var done sync.WaitGroup
			for range 3 {
				done.Add(1)
				go func() {
					defer done.Done()
					code, _ := readAll(t, tr, s.URL, "")
					assert.Equal(t, http.StatusOK, code)
				}()
			}
			done.Wait()
			s.awaitOpen(t, tc.kept)
			tr.CloseIdleConnections()
			s.awaitOpen(t, 0)
		})
	}
}

func TestTransportIdleConnTimeout(t *testing.T) {
	checkLeaks(t)
	clock := fakeclock.New()
	release := map[string]chan struct{}{"one": make(chan struct{}), "two": make(chan struct{})}
	s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		if ch, ok := release[string(b)]; ok {
			<-ch
		}
		w.Write(b)
	})
	tr := &Transport{IdleConnTimeout: 90 * time.Second, Clock: clock}
	defer tr.CloseIdleConnections()
	// Two connections at once: the first goes idle at 0 s, the second at 30 s.
	one, err := post(t, context.Background(), tr, s.URL, "one")
	require.NoError(t, err)
	two, err := post(t, context.Background(), tr, s.URL, "two")
	require.NoError(t, err)
	close(release["one"])
	_, err = io.ReadAll(one.Body)
	require.NoError(t, err)
	clock.Advance(30 * time.Second)
	close(release["two"])
	_, err = io.ReadAll(two.Body)
	require.NoError(t, err)
	require.Equal(t, 2, tr.idleCount())

	clock.Advance(60*time.Second - time.Nanosecond) // the first is idle 90 s less 1 ns
	assert.Equal(t, 2, tr.idleCount(), "no connection is closed before its time")
	clock.Advance(time.Nanosecond)
	s.awaitOpen(t, 1)
	assert.Equal(t, 1, tr.idleCount(), "the first is closed at 90 s idle; the second is kept")
	clock.Advance(30 * time.Second)
	s.awaitOpen(t, 0)
	assert.Equal(t, 0, tr.idleCount(), "the second is closed at its own 90 s")

	code, body := readAll(t, tr, s.URL, "three")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "three", body)
	opened, _ := s.counts()
	assert.Equal(t, 3, opened, "a request after the sweep dials again")
}

func TestTransportInformationalAnswers(t *testing.T) {
	checkLeaks(t)
	url := rawServer(t, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	tr := new(Transport)
	defer tr.CloseIdleConnections()
	code, body := readAll(t, tr, url, "{}")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok", body)

	url = rawServer(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	_, err := post(t, context.Background(), tr, url, "{}")
	assert.ErrorContains(t, err, "switched protocols")

	five := strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 5)
	url = rawServer(t, five+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	code, _ = readAll(t, tr, url, "{}")
	assert.Equal(t, http.StatusOK, code, "five informational answers are read past")
	url = rawServer(t, five+"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	_, err = post(t, context.Background(), tr, url, "{}")
	assert.ErrorContains(t, err, "more than 5 informational answers")
}

func TestTransportBadAnswer(t *testing.T) {
	checkLeaks(t)
	tr := new(Transport)
	defer tr.CloseIdleConnections()
	for answer, want := range map[string]string{
		"SMTP ready\r\n\r\n":                             "read upstream response",
		"HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n":  "status 099, not an HTTP status",
		"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\nok": "read upstream response",
	} {
		_, err := post(t, context.Background(), tr, rawServer(t, answer), "{}")
		assert.ErrorContains(t, err, want, "%q", answer)
	}
}

// rawServer answers every connection's first request with answer, as
// written, and closes it; it returns its URL.
func rawServer(t *testing.T, answer string) string {
	url, _ := tcpServer(t, func(c net.Conn) {
		if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, answer)
		}
	})
	return url
}

// tcpServer serves each connection it accepts with serve, on a goroutine
// of its own, and closes it when serve returns. It returns its URL and how
// many connections it has accepted. At the end of the test it closes the
// listener and every connection, and waits for its goroutines.
func tcpServer(t *testing.T, serve func(c net.Conn)) (url string, accepted func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}

// closeRecorder is a request body that records that it was closed.
type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error {
	c.closed = true
	return nil
}

func TestTransportRefusesWhatItCannotSend(t *testing.T) {
	checkLeaks(t)
	tr := new(Transport)
	for _, tc := range []struct{ url, want string }{
		{"ftp://example.com/x", `unsupported upstream scheme "ftp"`},
		{"http:///v1/chat", "no host"},
	} {
		body := &closeRecorder{Reader: strings.NewReader("{}")}
		req, err := http.NewRequest(http.MethodPost, tc.url, body)
		require.NoError(t, err)
		_, err = tr.RoundTrip(req)
		assert.ErrorContains(t, err, tc.want, tc.url)
		assert.True(t, body.closed, "%s: the body is closed", tc.url)
	}
	// Headers that net/http's Transport refuses, refused the same way,
	// naming the header and not its value.
	for name, value := range map[string]string{"Bad Name": "x", "X-Key": "sk-secret\r\nX-Injected: 1", "X-Nul": "a\x00b"} {
		body := &closeRecorder{Reader: strings.NewReader("{}")}
		req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/v1", body)
		require.NoError(t, err)
		req.Header[name] = []string{value}
		_, err = tr.RoundTrip(req)
		assert.ErrorContains(t, err, "invalid header field", name)
		assert.ErrorContains(t, err, fmt.Sprintf("%q", name))
		assert.NotContains(t, err.Error(), "secret")
		assert.True(t, body.closed)
	}
	// A method that would break the request line.
	bad, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/v1", nil)
	require.NoError(t, err)
	bad.Method = "GET /admin HTTP/1.1\r\nX:"
	_, err = tr.RoundTrip(bad)
	assert.ErrorContains(t, err, "invalid method")
	// A dial that fails: the body is closed too.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	body := &closeRecorder{Reader: strings.NewReader("{}")}
	req, err := http.NewRequest(http.MethodPost, "http://"+addr, body)
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	assert.ErrorContains(t, err, "dial upstream")
	assert.True(t, body.closed)
}

func TestTransportTLS(t *testing.T) {
	checkLeaks(t)
	s := httptest.NewUnstartedServer(http.HandlerFunc(echo))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	// The server offers h2 only; the Transport asks for HTTP/1.1.
	s.EnableHTTP2 = true
	var dialed atomic.Int32
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			dialed.Add(1)
		}
	}
	s.StartTLS()
	defer s.Close()
	tr := &Transport{TLSClientConfig: s.Client().Transport.(*http.Transport).TLSClientConfig}
	defer tr.CloseIdleConnections()
	for range 3 {
		resp, err := post(t, context.Background(), tr, s.URL+"/v1", "x")
		require.NoError(t, err)
		require.NotNil(t, resp.TLS)
		assert.NotEqual(t, "h2", resp.TLS.NegotiatedProtocol)
		assert.Equal(t, "HTTP/1.1", resp.Header.Get("X-Proto"), "the server was spoken to in HTTP/1.1")
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, "POST /v1 x "+s.Listener.Addr().String(), string(b))
		resp.Body.Close()
	}
	assert.Equal(t, 1, tr.idleCount(), "the TLS connection is kept for reuse")
	assert.Equal(t, int32(1), dialed.Load(), "one TLS connection carried the three requests")

	// A certificate the config does not trust fails the request.
	_, err := post(t, context.Background(), new(Transport), s.URL, "x")
	assert.ErrorContains(t, err, "certificate")
}

// idleCount returns the idle connections t keeps, over every upstream.
func (t *Transport) idleCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, l := range t.idle {
		n += len(l)
	}
	return n
}

// TestTransportStress runs many goroutines through one Transport, each
// answer read to its end, closed early or cancelled midway, and checks
// that every answer is its own request's and that every connection is
// closed in the end.
func TestTransportStress(t *testing.T) {
	checkLeaks(t)
	s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		id, _ := io.ReadAll(r.Body)
		for range 4 {
			fmt.Fprintf(w, "%s;", id)
			w.(http.Flusher).Flush()
		}
	})
	tr := &Transport{MaxIdleConnsPerHost: 8}
	const goroutines, each = 16, 60
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("%d-%d", g, i)
				ctx, cancel := context.WithCancel(context.Background())
				resp, err := post(t, ctx, tr, s.URL, id)
				if !assert.NoError(t, err) {
					cancel()
					return
				}
				switch i % 3 {
				case 0: // read to the end
					b, err := io.ReadAll(resp.Body)
					assert.NoError(t, err)
					assert.Equal(t, strings.Repeat(id+";", 4), string(b))
				case 1: // closed after the first piece
					b := make([]byte, len(id)+1)
					_, err := io.ReadFull(resp.Body, b)
					assert.NoError(t, err)
					assert.Equal(t, id+";", string(b))
				case 2: // cancelled after the first piece
					b := make([]byte, len(id)+1)
					_, err := io.ReadFull(resp.Body, b)
					assert.NoError(t, err)
					assert.Equal(t, id+";", string(b))
					cancel()
					_, err = io.ReadAll(resp.Body)
					if err != nil { // the rest may have been read before the cancel
						assert.ErrorIs(t, err, context.Canceled)
					}
				}
				resp.Body.Close()
				cancel()
			}
		}()
	}
	wg.Wait()
	assert.LessOrEqual(t, tr.idleCount(), 8)
	tr.CloseIdleConnections()
	s.awaitOpen(t, 0)
	opened, _ := s.counts()
	assert.Less(t, opened, goroutines*each, "some connections were reused")
}

func TestDialAddr(t *testing.T) {
	for raw, want := range map[string]string{
		"http://h.example/v1":    "h.example:80",
		"https://h.example/v1":   "h.example:443",
		"https://h.example:8443": "h.example:8443",
		"http://[::1]/":          "[::1]:80",
		"https://[::1]:9000/":    "[::1]:9000",
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		assert.Equal(t, want, dialAddr(u), raw)
	}
}
