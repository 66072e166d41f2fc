package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/onwardsgo/pool"
)

// NewUpstreamRequest builds the request that forwards r to target t with
// body (r's body, already read):
//
//   - the URL is t.URL joined with r's path and query by [JoinURL], so
//     https://host/v1 and /v1/chat/completions give
//     https://host/v1/chat/completions, not /v1/v1/...;
//   - the JSON body's "model" is replaced by t.UpstreamModel when it is set
//     (onwards_model); any other body is sent as it is;
//   - r's headers are copied except, as onwards leaves them out, the
//     client's credentials and state (Authorization, Proxy-Authorization,
//     X-Api-Key, Api-Key, Cookie and t's own auth header), the browser's
//     context (Origin, Referer, Sec-Fetch-Site, -Mode, -Dest and -User,
//     and every Sec-Ch-Ua*), conditional requests (If-Match,
//     If-None-Match, If-Modified-Since, If-Unmodified-Since, If-Range),
//     the hop-by-hop headers (and those Connection names) and
//     Model-Override; and Host, Content-Length and Accept-Encoding,
//     which the transport writes itself (it negotiates compression);
//   - t's key goes in t's auth header ([pool.Target.AuthHeader]).
//
// The request carries ctx; pass the client's request context so that a
// client that leaves cancels the upstream call. [Send] adds t's timeout.
func NewUpstreamRequest(ctx context.Context, r *http.Request, t *pool.Target, body []byte) (*http.Request, error) {
	return newUpstreamRequest(ctx, r, t, body, false)
}

// newUpstreamRequest is NewUpstreamRequest; valid says that body is known
// to be valid JSON, which spares checking it again to rewrite its model.
func newUpstreamRequest(ctx context.Context, r *http.Request, t *pool.Target, body []byte, valid bool) (*http.Request, error) {
	if t == nil || t.URL == nil {
		return nil, errors.New("gateway: target has no URL; build targets with pool.NewTarget")
	}
	switch {
	case t.UpstreamModel == "":
	case valid:
		body = rewriteValid(body, t.UpstreamModel)
	default:
		body = RewriteModel(body, t.UpstreamModel)
	}
	// The URL is joined here and set after: made into a string for
	// NewRequest, it would only be parsed back.
	up, err := http.NewRequestWithContext(ctx, r.Method, "", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("gateway: building the upstream request: %w", err)
	}
	up.URL = JoinURL(t.URL, r.URL)
	up.Host = strings.TrimSuffix(up.URL.Host, ":") // as NewRequest does: no empty port
	up.Header = make(http.Header, len(r.Header))   // sized: no growing as it fills
	copyHeader(up.Header, r.Header, clientOnly)
	if t.UpstreamAuthHeaderName != "" {
		up.Header.Del(t.UpstreamAuthHeaderName)
	}
	if name, value := t.AuthHeader(); name != "" {
		up.Header.Set(name, value)
	}
	return up, nil
}

// JoinURL joins a provider's base URL and a request's path and query
// without doubling the segments they share: https://host/v1 with
// /v1/chat/completions gives https://host/v1/chat/completions, as does
// https://host with it, and https://host/openai/v1 gives
// https://host/openai/v1/chat/completions. Queries of both are kept, the
// base's first.
func JoinURL(base, req *url.URL) *url.URL {
	// The segments are substrings, kept in arrays on the stack for paths
	// of up to 16 segments, so that a join allocates only its result.
	var baseBuf, reqBuf [16]string
	baseSegs := appendSegments(baseBuf[:0], base.Path)
	reqSegs := appendSegments(reqBuf[:0], req.Path)
	overlap := 0
	for k := min(len(baseSegs), len(reqSegs)); k > 0; k-- {
		if slices.Equal(baseSegs[len(baseSegs)-k:], reqSegs[:k]) {
			overlap = k
			break
		}
	}
	u := *base
	u.RawPath = ""
	u.Path = joinSegments(baseSegs, reqSegs[overlap:], strings.HasSuffix(req.Path, "/") && len(reqSegs) > overlap)
	switch {
	case base.RawQuery == "":
		u.RawQuery = req.RawQuery
	case req.RawQuery != "":
		u.RawQuery = base.RawQuery + "&" + req.RawQuery
	}
	return &u
}

// appendSegments appends the non-empty segments of a URL path to segs.
func appendSegments(segs []string, p string) []string {
	for p != "" {
		var seg string
		seg, p, _ = strings.Cut(p, "/")
		if seg != "" {
			segs = append(segs, seg)
		}
	}
	return segs
}

// joinSegments returns the path "/a/b/c" of the segments of a, then of b,
// with a "/" after the last when slash is set.
func joinSegments(a, b []string, slash bool) string {
	n := 1
	for _, s := range a {
		n += len(s) + 1
	}
	for _, s := range b {
		n += len(s) + 1
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, segs := range [2][]string{a, b} {
		for _, s := range segs {
			sb.WriteByte('/')
			sb.WriteString(s)
		}
	}
	if slash || sb.Len() == 0 {
		sb.WriteByte('/')
	}
	return sb.String()
}

// hopByHop are the headers that belong to one connection, not the message
// (RFC 9110, section 7.6.1).
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// clientOnly reports whether the client's header of canonical name stays
// behind: the client's credentials and cookies, the browser's context,
// conditional requests, the gateway's own header, and those the transport
// writes itself. The list is onwards' (filter_headers_for_upstream), with
// Host, Content-Length and Accept-Encoding added.
func clientOnly(name string) bool {
	switch name {
	case "Authorization", "Proxy-Authorization", "X-Api-Key", "Api-Key", "Cookie",
		"Origin", "Referer", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Fetch-User",
		"If-Modified-Since", "If-None-Match", "If-Match", "If-Unmodified-Since", "If-Range",
		"Model-Override", "Host", "Content-Length", "Accept-Encoding":
		return true
	}
	return strings.HasPrefix(name, "Sec-Ch-Ua") // the browser's client hints, all of them
}

// copyHeader copies the end-to-end headers of src into dst, except those
// skip (nil: none) reports true for. Names are canonicalized before they
// are checked, so a header set in the map under another spelling is still
// found, Connection and the names it lists included. The values are
// copied, into one array as [http.Header.Clone] does.
func copyHeader(dst, src http.Header, skip func(name string) bool) {
	n := 0
	var conn []string // the names Connection lists, under any spelling of it
	for k, vs := range src {
		n += len(vs)
		if strings.EqualFold(k, "Connection") {
			conn = append(slices.Clip(conn), vs...)
		}
	}
	values := make([]string, n)
	for k, vs := range src {
		ck := http.CanonicalHeaderKey(k)
		if slices.Contains(hopByHop, ck) || (skip != nil && skip(ck)) || listedIn(conn, ck) {
			continue
		}
		n := copy(values, vs)
		dst[k] = values[:n:n]
		values = values[n:]
	}
}

// listedIn reports whether a Connection header, of values conn, names the
// header name: such a header belongs to the connection too.
func listedIn(conn []string, name string) bool {
	for _, v := range conn {
		for _, listed := range strings.Split(v, ",") {
			if http.CanonicalHeaderKey(strings.TrimSpace(listed)) == name {
				return true
			}
		}
	}
	return false
}

// Send sends req with client and waits at most timeout (0: no limit, timed
// on the system clock) for the response headers; the body may then take as
// long as it takes, since a stream runs for minutes. Close the response
// body to release the request. ([Handler] times a provider's
// request_timeout on its pool's clock, [pool.Registry.Clock].)
//
// Its error wraps [ErrUpstreamTimeout] when the timeout fired,
// [context.Canceled] when req's context ended first (the client left), or
// [ErrUpstreamUnreachable] for any other transport failure. The error
// holds neither the URL nor a key; it may hold a dial error, which is for
// logs, not clients.
func Send(client *http.Client, req *http.Request, timeout time.Duration) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	return send(sender{client: client}, req.WithContext(ctx), cancel, timeout, pool.SystemClock)
}

// send is Send by s, for a request whose context is its own, made by
// context.WithCancelCause from the client's request context, with cancel
// its cancel function, and with the timeout timed on clock. The Handler
// builds the upstream request with that context, which spares Send's copy
// of the request, and times it on the pool's clock; for a call that no
// timer ends, it passes the client's context and a cancel that does
// nothing (attemptContext).
func send(s sender, req *http.Request, cancel context.CancelCauseFunc, timeout time.Duration, clock pool.Clock) (*http.Response, error) {
	ctx := req.Context()
	var stop func() bool
	if timeout > 0 {
		stop = clock.AfterFunc(timeout, func() { cancel(errTimeoutCause) })
	}
	resp, err := s.do(req)
	if stop != nil && !stop() && err == nil {
		// The headers arrived as the timer fired: the request is cancelled.
		resp.Body.Close()
		err = context.Cause(ctx)
	}
	if err != nil {
		// Read before cancel(nil) ends ctx: ended by now and not by the
		// timeout, ctx was ended by the client's context, with its error.
		cause, ended := context.Cause(ctx), ctx.Err()
		cancel(nil)
		switch {
		case errors.Is(cause, errTimeoutCause):
			return nil, fmt.Errorf("%w after %v", ErrUpstreamTimeout, timeout)
		case ended != nil:
			return nil, ended
		}
		return nil, fmt.Errorf("%w: %v", ErrUpstreamUnreachable, transportCause(err))
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// errTimeoutCause marks an upstream call cancelled by its timeout.
var errTimeoutCause = errors.New("upstream timeout")

// transportCause strips the *url.Error wrapper, which repeats the URL.
func transportCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// cancelOnClose releases a request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (c *cancelOnClose) waitReadable() { waitReadable(c.ReadCloser) }

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel(nil)
	return err
}
