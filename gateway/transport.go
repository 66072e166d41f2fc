package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/onwardsgo/pool"
)

// Transport is an [http.RoundTripper] for upstream calls that speaks
// HTTP/1.1 only, over TCP or TLS, and does each exchange on the caller's
// goroutine. Use it as a [Handler]'s Transport:
//
//	h := &gateway.Handler{Registry: reg, Transport: new(gateway.Transport)}
//
// (In an http.Client it works too; give the client a CheckRedirect that
// returns [http.ErrUseLastResponse], so that no redirect is followed.)
//
// net/http's Transport keeps two goroutines on every connection, one to
// write and one to read, and hands each request and response between them
// and the caller. This one keeps none: it writes the request and reads the
// response where RoundTrip is called, and the response body reads straight
// from the connection. Behind a [Handler], on bench/load.sh's loads, that
// served 1.1-1.4x the chat completions a second, and a held stream 2
// goroutines and 37 KiB of resident memory rather than 4 and 59 KiB
// (BENCHMARKS.md has the figures).
//
// What it leaves out, so that it stays small enough to trust: HTTP/2 (an
// https upstream is offered HTTP/1.1 only), proxies (HTTP_PROXY and the
// like are not read; it dials the upstream itself), protocol upgrades (a
// 101 is an error), and transparent gzip (the request's Accept-Encoding
// goes as it is, and the body comes back as the upstream encoded it). For
// those, use [NewClient]'s net/http Transport.
//
// A request goes out as [http.Request.Write] writes it, byte for byte.
// One as Handler sends them (a body of known length, no trailer) is
// written by Transport itself, at half of Request.Write's cost; any other,
// by Request.Write. An answer is read as [http.ReadResponse] reads it:
// a plain one (HTTP/1.1, one Content-Length, no Connection or
// Transfer-Encoding field) by Transport itself, any other by ReadResponse.
//
// What net/http's Transport refuses, it refuses too, before any
// connection: a scheme other than http and https, a method or header name
// that is not a token, a header value with a control character. It reads
// past up to 5 informational answers (100-199 but 101) before the answer,
// as net/http's does. It writes the whole request before it reads the
// answer, so an upstream that answers before reading the body and closes
// (a 413 for a body too large, say) may show as a failed write rather
// than as its answer.
//
// An idle connection is reused for the next request to the same URL
// scheme and host, the most recently used first, after a check that the
// upstream has not closed it, or sent anything unasked, meanwhile. The
// check is one non-blocking peek at the socket on Linux, the BSDs and
// macOS; elsewhere there is none, and a connection the upstream closed
// while idle fails the request that takes it. A request is never sent
// twice: once written, a failure is the caller's to handle, as the
// gateway's fallback does. A connection is kept only after its response
// body was read to the end; a body closed early, a read that failed or a
// request cancelled through its context closes it.
//
// The zero value is ready to use. A Transport must not be copied after
// first use, and is safe for simultaneous use by multiple goroutines.
type Transport struct {
	// DialContext dials the TCP connection to an upstream. Nil: a
	// net.Dialer with a 30 s timeout and 30 s keep-alive, as
	// http.DefaultTransport's.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSClientConfig is the TLS configuration for https upstreams; it is
	// cloned, ServerName set from the URL when empty and NextProtos set to
	// HTTP/1.1. Nil: the default configuration.
	TLSClientConfig *tls.Config
	// MaxIdleConnsPerHost is how many idle connections are kept per
	// upstream (URL scheme and host); one more is closed. Zero: 100. A
	// negative value keeps none.
	MaxIdleConnsPerHost int
	// IdleConnTimeout is how long an idle connection is kept; past it, it
	// is closed. Zero or less: 90 s.
	IdleConnTimeout time.Duration
	// Clock times IdleConnTimeout. Nil: the system's clock.
	Clock pool.Clock

	mu        sync.Mutex
	idle      map[connKey][]*upstreamConn // oldest first
	stopSweep func() bool                 // the pending sweep's, or nil
}

var defaultDialer = &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}

// upstreamConn is one connection to an upstream, with its buffers.
type upstreamConn struct {
	conn      net.Conn // the TLS connection for https, else raw
	raw       net.Conn // the TCP connection: checked, and closed
	br        *bufio.Reader
	key       connKey // where it goes back when idle
	tls       *tls.ConnectionState
	idleSince time.Time
}

// close closes c's TCP connection. For TLS it sends no close_notify
// alert first: that write could wait on an upstream that reads nothing,
// and the connection is dropped either way.
func (c *upstreamConn) close() { c.raw.Close() }

// RoundTrip sends req and returns the upstream's response, once its
// headers have arrived. It closes req's body, whatever the outcome.
// Cancelling req's context closes the connection: RoundTrip, or a read of
// the response body, then returns the context's error.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	key, err := upstreamKey(req)
	switch {
	case err != nil:
	case req.Method != "" && !validToken(req.Method):
		// Request.Write writes it as it is, into the request line.
		err = fmt.Errorf("gateway: invalid method %q", req.Method)
	default:
		err = checkHeader(req.Header)
	}
	if err != nil {
		closeBody(req)
		return nil, err
	}
	ctx := req.Context()
	c, err := t.conn(ctx, req, key)
	if err != nil {
		closeBody(req)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("gateway: dial upstream: %w", err)
	}
	stop := context.AfterFunc(ctx, c.close)
	resp, err := c.exchange(req)
	if err != nil {
		stop()
		c.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	reuse := !resp.Close && !req.Close
	if resp.Body == http.NoBody {
		t.done(c, reuse, stop)
		return resp, nil
	}
	resp.Body = &transportBody{body: resp.Body, t: t, c: c, ctx: ctx, stop: stop, reuse: reuse}
	return resp, nil
}

// connKey is where a connection goes: the scheme and the host (and port)
// of its URL, as written, so "host" and "host:80" keep connections apart.
// Being two strings already in the URL, it costs a request no allocation.
type connKey struct{ scheme, host string }

// upstreamKey returns where req goes. Only http and https URLs with a host
// are accepted.
func upstreamKey(req *http.Request) (connKey, error) {
	u := req.URL
	if u == nil {
		return connKey{}, errors.New("gateway: request has no URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return connKey{}, fmt.Errorf("gateway: unsupported upstream scheme %q; want http or https", u.Scheme)
	}
	if u.Hostname() == "" {
		return connKey{}, errors.New("gateway: upstream URL has no host")
	}
	return connKey{u.Scheme, u.Host}, nil
}

// dialAddr is the address to dial for u: its host and port, the scheme's
// port when it gives none.
func dialAddr(u *url.URL) string {
	port := u.Port()
	switch {
	case port != "":
	case u.Scheme == "https":
		port = "443"
	default:
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// checkHeader refuses, as net/http's Transport does, a header that
// Request.Write would otherwise drop (a name that is not a token) or
// change (a value with a line break or another control character). The
// error names the header, never its value, which may be a key.
func checkHeader(h http.Header) error {
	for name, values := range h {
		if !validToken(name) {
			return fmt.Errorf("gateway: invalid header field name %q", name)
		}
		for _, v := range values {
			if !validValue(v) {
				return fmt.Errorf("gateway: invalid header field value for %q", name)
			}
		}
	}
	return nil
}

// validToken reports whether s is an HTTP token (RFC 9110), as a method
// and a header name must be.
func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !tokenByte[s[i]] {
			return false
		}
	}
	return s != ""
}

// tokenByte tells the bytes a token may hold.
var tokenByte = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
	}
	return t
}()

// closeBody closes req's body, as a RoundTripper must even when it fails.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// requestWriters buffer the writes of a request. A connection borrows one
// only while it writes, so that a stream in flight, which may last
// minutes, holds no write buffer.
var requestWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}

// exchange writes req on c and reads the response's headers, past any
// informational answer.
func (c *upstreamConn) exchange(req *http.Request) (*http.Response, error) {
	bw := requestWriters.Get().(*bufio.Writer)
	bw.Reset(c.conn)
	err := writeRequest(bw, req)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil) // keep no connection alive from the pool
	requestWriters.Put(bw)
	if err != nil {
		return nil, fmt.Errorf("gateway: write upstream request: %w", err)
	}
	for informational := 0; ; informational++ {
		resp, err := readResponse(c.br, req)
		if err != nil {
			return nil, fmt.Errorf("gateway: read upstream response: %w", err)
		}
		switch {
		case resp.StatusCode < 100:
			return nil, fmt.Errorf("gateway: upstream answered with status %03d, not an HTTP status", resp.StatusCode)
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("gateway: upstream switched protocols, which Transport does not support")
		case resp.StatusCode < 200 && informational == maxInformational:
			return nil, fmt.Errorf("gateway: upstream sent more than %d informational answers", maxInformational)
		case resp.StatusCode < 200:
			continue // the answer follows
		}
		resp.TLS = c.tls
		return resp, nil
	}
}

// maxInformational is how many 1xx answers may precede the answer, as in
// net/http's Transport.
const maxInformational = 5

// conn returns an idle connection to key that is still open, or dials one.
func (t *Transport) conn(ctx context.Context, req *http.Request, key connKey) (*upstreamConn, error) {
	for {
		c := t.takeIdle(key)
		if c == nil {
			return t.dial(ctx, req, key)
		}
		// Bytes the upstream sent after its answer, buffered or not, or
		// its close: either way, the connection is done with.
		if c.br.Buffered() == 0 && alive(c.raw) {
			return c, nil
		}
		c.close()
	}
}

// dial opens a connection to req's upstream, with TLS for https, on a
// goroutine of its own, which it waits for. Dialing and the TLS handshake
// go deep into the stack, twice as deep as the rest of a request's way
// through Handler: run on the caller's goroutine, they would double its
// stack for as long as it lives, which for a stream held open is minutes.
func (t *Transport) dial(ctx context.Context, req *http.Request, key connKey) (*upstreamConn, error) {
	type dialed struct {
		c   *upstreamConn
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		c, err := t.dialHere(ctx, req, key)
		done <- dialed{c, err}
	}()
	d := <-done
	return d.c, d.err
}

// dialHere is dial, on the caller's goroutine.
func (t *Transport) dialHere(ctx context.Context, req *http.Request, key connKey) (*upstreamConn, error) {
	dial := t.DialContext
	if dial == nil {
		dial = defaultDialer.DialContext
	}
	raw, err := dial(ctx, "tcp", dialAddr(req.URL))
	if err != nil {
		return nil, err
	}
	c := &upstreamConn{conn: raw, raw: raw, key: key}
	if req.URL.Scheme == "https" {
		cfg := t.TLSClientConfig.Clone()
		if cfg == nil {
			cfg = new(tls.Config)
		}
		if cfg.ServerName == "" {
			cfg.ServerName = req.URL.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		state := tc.ConnectionState()
		c.conn, c.tls = tc, &state
	}
	c.br = bufio.NewReaderSize(c.conn, 4096)
	return c, nil
}

// done ends c's exchange: it goes back to the idle ones if it may be
// reused and its context's hook is stopped before it closed c, and is
// closed otherwise.
func (t *Transport) done(c *upstreamConn, reuse bool, stop func() bool) {
	if stop() && reuse {
		t.putIdle(c)
		return
	}
	c.close()
}
