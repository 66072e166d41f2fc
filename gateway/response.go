package gateway

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/onwardsgo/pool"
)

// ResponseOptions says how [CopyResponse] treats an upstream answer. The
// zero value copies it as it came, flushing a stream event by event.
type ResponseOptions struct {
	// Path is the client's request path; sanitization applies by path.
	Path string
	// Model is the model the client asked for, which a sanitized answer
	// names as its model in place of the upstream's.
	Model string
	// Sanitize is onwards' sanitize_response: a 2xx answer to a chat
	// completion, streamed or not, is re-encoded with OpenAI's fields only,
	// and an error answer to one is replaced by a generic OpenAI error of
	// the same status.
	Sanitize bool
	// Strict is onwards' strict_mode: 2xx answers to chat completions,
	// embeddings and responses are re-encoded as with Sanitize, and every
	// error answer is replaced by a standard error for its status, unless
	// Trusted. For an untrusted provider 401, 402, 403 and 451 become 502,
	// 408 becomes 504, and errors embedded in a stream are masked alike.
	Strict bool
	// Trusted exempts the provider's errors from Strict's standardization:
	// they pass as they came. Answers that succeed are still sanitized.
	Trusted bool
	// Header is set on the response (the target's response_headers), over
	// the upstream's headers of the same name.
	Header map[string]string
	// Clock stamps a sanitized chat completion, or each chunk of a
	// sanitized stream, that gives no created time, with the time the
	// answer began to be copied. Nil: the system clock. [Handler] gives
	// the pool's.
	Clock pool.Clock
}

// strictHeaders are the upstream headers strict mode lets through; the
// others may carry provider metadata (costs, trace ids, internal hosts).
var strictHeaders = []string{"Content-Type", "Cache-Control", "Retry-After"}

// CopyResponse writes the upstream answer resp to w as opts says, flushing
// a text/event-stream body after each event. The caller closes resp.Body.
//
// The upstream's end-to-end headers go out with it (in strict mode only
// Content-Type, Content-Length, Cache-Control and Retry-After), but for a
// Location on the host of resp.Request, which goes out as the path it
// names, so that the upstream's address does not.
//
// A 429 always goes out with a Retry-After header: the upstream's, or
// [pool.ConcurrencyRetryAfter]. An answer that had to be sanitized and
// cannot be parsed is replaced by a standard 502 and the error wraps
// [ErrMalformedResponse]; nothing of it reaches the client. When the body
// fails after the status is sent, the error wraps [ErrUpstreamBrokeOff]
// (the caller should then abort the client's response, as [Handler] does
// with [http.ErrAbortHandler]); a write error means the client left.
func CopyResponse(w http.ResponseWriter, resp *http.Response, opts ResponseOptions) error {
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return copyError(w, resp, opts)
	}
	stream := isEventStream(resp.Header)
	if sanitizes(opts.Path, opts.Sanitize, opts.Strict) {
		return copySanitized(w, resp, opts, stream)
	}
	writeHeader(w, resp, opts, stream)
	return copyFlushing(w, resp.Body, stream)
}

// copySanitized is CopyResponse for an answer to re-encode. It is a
// function of its own so that the stack under a stream copied as it came,
// held for as long as the stream lasts, has no room for its closures.
func copySanitized(w http.ResponseWriter, resp *http.Response, opts ResponseOptions, stream bool) error {
	created := clockOr(opts.Clock).Now().Unix()
	if stream {
		writeHeader(w, resp, opts, true)
		masked := opts.Strict && !opts.Trusted
		transform := func(data []byte) ([]byte, error) { return sanitizeChunk(data, opts.Model, masked, created) }
		var bad error
		onError := func() []byte {
			bad = ErrMalformedResponse
			e := errMalformed()
			out := fmt.Appendf(nil, `{"error":{"message":%q,"type":%q,"param":null,"code":%d}}`, e.Message, e.Type, e.Status)
			return out
		}
		if err := copySSE(w, resp.Body, transform, onError); err != nil {
			return err
		}
		return bad
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSanitizedBytes+1))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUpstreamBrokeOff, err)
	}
	if len(body) > maxSanitizedBytes {
		return malformed(w, opts, fmt.Errorf("body over %d bytes", maxSanitizedBytes))
	}
	out, err := sanitizeBody(opts.Path, body, opts.Model, created)
	if err != nil {
		return malformed(w, opts, err)
	}
	resp.Header.Set("Content-Type", "application/json")
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	writeHeader(w, resp, opts, false)
	_, err = w.Write(out)
	return err
}

// maxSanitizedBytes bounds an answer the gateway buffers to re-encode.
const maxSanitizedBytes = 64 << 20

// malformed answers for an upstream answer that could not be sanitized.
func malformed(w http.ResponseWriter, opts ResponseOptions, cause error) error {
	writeOwnError(w, errMalformed(), opts.Header)
	return fmt.Errorf("%w: %v", ErrMalformedResponse, cause)
}

// copyError writes an upstream error answer: as it came, or replaced by a
// standard error when opts ask for it.
func copyError(w http.ResponseWriter, resp *http.Response, opts ResponseOptions) error {
	var std *pool.AdmissionError
	switch {
	case opts.Strict && !opts.Trusted:
		std = standardError(maskStatus(resp.StatusCode))
	case opts.Sanitize && !opts.Strict && sanitizes(opts.Path, true, false):
		std = sanitizedError(resp.StatusCode)
	}
	if std == nil {
		writeHeader(w, resp, opts, isEventStream(resp.Header))
		return copyFlushing(w, resp.Body, false)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" && std.Status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", ra)
	}
	writeOwnError(w, std, opts.Header)
	return nil
}

// writeOwnError writes an error of the gateway's, with headers added.
func writeOwnError(w http.ResponseWriter, e *pool.AdmissionError, header map[string]string) {
	h := w.Header()
	for k, v := range header {
		h.Set(k, v)
	}
	if e.Status == http.StatusTooManyRequests && e.RetryAfter == 0 && h.Get("Retry-After") == "" {
		e.RetryAfter = pool.ConcurrencyRetryAfter
	}
	e.ServeHTTP(w, nil)
}

// writeHeader writes resp's status and end-to-end headers, with opts'
// headers over them; strict mode passes only strictHeaders.
func writeHeader(w http.ResponseWriter, resp *http.Response, opts ResponseOptions, stream bool) {
	h := w.Header()
	if opts.Strict {
		for _, k := range strictHeaders {
			if v := resp.Header.Values(k); len(v) > 0 {
				h[k] = v
			}
		}
		if v := resp.Header.Get("Content-Length"); v != "" {
			h.Set("Content-Length", v)
		}
	} else {
		copyHeader(h, resp.Header, nil)
		hideUpstreamLocation(h, resp.Request)
	}
	for k, v := range opts.Header {
		h.Set(k, v)
	}
	if stream {
		h.Del("Content-Length")
	}
	if resp.StatusCode == http.StatusTooManyRequests && h.Get("Retry-After") == "" {
		h.Set("Retry-After", pool.RetryAfterSeconds(pool.ConcurrencyRetryAfter))
	}
	w.WriteHeader(resp.StatusCode)
}

// hideUpstreamLocation rewrites a Location header on the host of the
// upstream request up, which would show the client the upstream's
// address, to the path, query and fragment it names, as nginx's
// proxy_redirect does by default; the client then takes it as the
// gateway's. A Location that is relative or on another host is left as
// it is. The path cannot come out as another host's: its leading
// slashes are made one.
func hideUpstreamLocation(h http.Header, up *http.Request) {
	loc := h.Get("Location")
	if loc == "" || up == nil || up.URL == nil {
		return
	}
	u, err := url.Parse(loc)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, up.URL.Host) {
		return
	}
	rel := "/" + strings.TrimLeft(u.EscapedPath(), "/\\")
	if u.RawQuery != "" {
		rel += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		rel += "#" + u.EscapedFragment()
	}
	h.Set("Location", rel)
}

// isEventStream reports whether a response is a server-sent event stream.
func isEventStream(h http.Header) bool {
	switch ct := h.Get("Content-Type"); ct {
	case "text/event-stream":
		return true
	case "application/json", "":
		return false // the answers of most requests, told apart without a parse
	default:
		mt, _, _ := mime.ParseMediaType(ct)
		return mt == "text/event-stream"
	}
}

// clockOr returns c, or pool.SystemClock when c is nil.
func clockOr(c pool.Clock) pool.Clock {
	if c == nil {
		return pool.SystemClock
	}
	return c
}
