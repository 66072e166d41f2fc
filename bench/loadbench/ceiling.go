package main

// Two of the three ceilings of bench/load.sh: how fast a Go proxy of this
// load can be at all (rawproxy: no net/http), and how fast one can be as
// an http.Handler on a net/http server, as gateway.Handler is
// (serverproxy: net/http's server, the upstream exchange written out by
// hand). With the third (bareserver.go), they answer where the gateway's
// distance from nginx comes from.
//
// Neither is a proxy to use. They speak only the HTTP/1.1 that wrk and the
// mock upstreams speak (keep-alive, a Content-Length or chunked response,
// a Content-Length request), check nothing, balance round robin, and drop
// a connection at the first thing they do not expect.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// rawUpstreams are the upstreams of a ceiling proxy, taken in turn.
type rawUpstreams struct {
	next atomic.Uint64
	ups  []*rawUpstream
}

// rawUpstream is one upstream and its idle connections.
type rawUpstream struct {
	addr string
	mu   sync.Mutex
	idle []*rawConn
}

// rawConn is a connection with its buffers.
type rawConn struct {
	net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func newRawConn(c net.Conn) *rawConn {
	return &rawConn{Conn: c, r: bufio.NewReaderSize(c, 4096), w: bufio.NewWriterSize(c, 4096)}
}

// newRawUpstreams takes base URLs such as http://127.0.0.1:9001.
func newRawUpstreams(targets []string) *rawUpstreams {
	u := new(rawUpstreams)
	for _, t := range targets {
		u.ups = append(u.ups, &rawUpstream{addr: strings.TrimPrefix(t, "http://")})
	}
	return u
}

// pick returns the next upstream and one of its connections.
func (u *rawUpstreams) pick() (*rawUpstream, *rawConn, error) {
	up := u.ups[u.next.Add(1)%uint64(len(u.ups))]
	up.mu.Lock()
	if n := len(up.idle); n > 0 {
		c := up.idle[n-1]
		up.idle = up.idle[:n-1]
		up.mu.Unlock()
		return up, c, nil
	}
	up.mu.Unlock()
	c, err := net.Dial("tcp", up.addr)
	if err != nil {
		return nil, nil, err
	}
	return up, newRawConn(c), nil
}

// put keeps c for the next request to up.
func (up *rawUpstream) put(c *rawConn) {
	up.mu.Lock()
	up.idle = append(up.idle, c)
	up.mu.Unlock()
}

// framing is how a message's body is delimited.
type framing struct {
	length  int64 // -1: none given
	chunked bool
}

// readHead appends a message's head, up to and with its blank line, to
// head, and returns its framing.
func readHead(r *bufio.Reader, head *bytes.Buffer) (framing, error) {
	f := framing{length: -1}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return f, err
		}
		head.Write(line)
		if len(line) <= 2 {
			return f, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue // the status or request line
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if f.length, err = strconv.ParseInt(string(value), 10, 64); err != nil {
				return f, err
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			f.chunked = bytes.EqualFold(value, []byte("chunked"))
		}
	}
}

var errNoLength = errors.New("a body with neither a length nor chunks")

// relayBody copies a body framed by f from src to dst, flushing after each
// chunk that src has nothing more behind, as nginx does. With framed, chunks keep their framing (dst speaks HTTP/1.1
// itself); without, only their data is copied (dst frames it again).
func relayBody(dst io.Writer, flush func() error, src *bufio.Reader, f framing, framed bool) error {
	if !f.chunked {
		if f.length < 0 {
			return errNoLength
		}
		return copyN(dst, src, f.length)
	}
	for {
		line, err := src.ReadSlice('\n')
		if err != nil {
			return err
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil {
			return err
		}
		if framed {
			dst.Write(line)
		}
		if n == 0 { // the last chunk, and the blank line after it
			line, err = src.ReadSlice('\n')
			if framed {
				dst.Write(line)
			}
			return err
		}
		if err := copyN(dst, src, n); err != nil {
			return err
		}
		crlf, err := src.ReadSlice('\n') // the chunk's CRLF
		if err != nil {
			return err
		}
		if framed {
			dst.Write(crlf)
		}
		if src.Buffered() > 0 {
			continue // more has come: send it with this chunk
		}
		if err := flush(); err != nil {
			return err
		}
	}
}

// copyN copies n bytes from src's buffer to dst. (io.CopyN would hand a
// ResponseWriter a reader to read from, and net/http's copy from it costs
// more than the copy.)
func copyN(dst io.Writer, src *bufio.Reader, n int64) error {
	for n > 0 {
		p, err := src.Peek(int(min(n, int64(src.Size()))))
		if len(p) == 0 {
			return err
		}
		if _, err := dst.Write(p); err != nil {
			return err
		}
		src.Discard(len(p))
		n -= int64(len(p))
	}
	return nil
}

// serveRaw serves the rawproxy ceiling on ln, no net/http at all, until
// ln is closed.
func serveRaw(ln net.Listener, ups *rawUpstreams) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go ups.relayConn(newRawConn(c))
	}
}

// relayConn relays the requests of one client connection until it ends.
func (u *rawUpstreams) relayConn(c *rawConn) {
	defer c.Close()
	var head bytes.Buffer
	for u.relayOne(c, &head) {
	}
}

// relayOne relays one request of c and its response, and reports whether
// c may carry another.
func (u *rawUpstreams) relayOne(c *rawConn, head *bytes.Buffer) bool {
	head.Reset()
	f, err := readHead(c.r, head)
	if err != nil || f.chunked {
		return false
	}
	up, uc, err := u.pick()
	if err != nil {
		return false
	}
	uc.w.Write(head.Bytes())
	if f.length > 0 && relayBody(uc.w, uc.w.Flush, c.r, f, true) != nil || uc.w.Flush() != nil {
		uc.Close()
		return false
	}
	head.Reset()
	if f, err = readHead(uc.r, head); err != nil {
		uc.Close()
		return false
	}
	c.w.Write(head.Bytes())
	if relayBody(c.w, c.w.Flush, uc.r, f, true) != nil {
		uc.Close()
		return false
	}
	up.put(uc)
	return c.w.Flush() == nil
}

// ServeHTTP is the serverproxy ceiling: net/http's server in front, the
// upstream exchange written out.
func (u *rawUpstreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	up, uc, err := u.pick()
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	if !u.exchange(w, r, uc, body) {
		uc.Close()
		return
	}
	up.put(uc)
}

// exchange sends r, with body, on uc and relays the response to w, and
// reports whether uc may carry another request.
func (u *rawUpstreams) exchange(w http.ResponseWriter, r *http.Request, uc *rawConn, body []byte) bool {
	uc.w.WriteString(r.Method + " " + r.URL.RequestURI() + " HTTP/1.1\r\nHost: " + r.Host + "\r\n")
	r.Header.Write(uc.w)
	uc.w.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	uc.w.Write(body)
	if uc.w.Flush() != nil {
		w.WriteHeader(http.StatusBadGateway)
		return false
	}
	var head bytes.Buffer
	f, err := readHead(uc.r, &head)
	status, ok := headerInto(w.Header(), head.Bytes())
	if err != nil || !ok || (!f.chunked && f.length < 0) {
		w.WriteHeader(http.StatusBadGateway)
		return false
	}
	w.WriteHeader(status)
	flush := func() error { return http.NewResponseController(w).Flush() }
	return relayBody(w, flush, uc.r, f, false) == nil
}

// headerInto parses a response head into h, leaving out the framing
// headers that net/http's server writes itself, and returns its status.
func headerInto(h http.Header, head []byte) (int, bool) {
	status, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if len(status) < 12 {
		return 0, false
	}
	code, err := strconv.Atoi(string(status[9:12]))
	for _, line := range bytes.Split(rest, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		key := http.CanonicalHeaderKey(string(name))
		if key != "Transfer-Encoding" && key != "Connection" {
			h[key] = append(h[key], string(bytes.TrimSpace(value)))
		}
	}
	return code, err == nil
}
