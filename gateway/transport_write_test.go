package gateway

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"strings"
	"testing"

	"github.com/onwardsgo/pool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeCase builds the same request afresh each time it is called, body
// and all, so that two writers can each be given one.
type writeCase struct {
	name  string
	plain bool // written by writeRequest itself, not by Request.Write
	build func() *http.Request
}

// postTo is a request to the URL u with body, as newUpstreamRequest builds
// one, with header h.
func postTo(u, body string, h http.Header) func() *http.Request {
	return func() *http.Request {
		req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		req.Header = h.Clone()
		return req
	}
}

// with is build, then change.
func with(build func() *http.Request, change func(*http.Request)) func() *http.Request {
	return func() *http.Request {
		req := build()
		change(req)
		return req
	}
}

func writeCases() []writeCase {
	chat := postTo("http://127.0.0.1:8080/v1/chat/completions", `{"model":"m"}`, clientHeader)
	odd := http.Header{
		"X-Padded":       {"  a value \t"},
		"X-Many":         {"one", "two", " three"},
		"x-lowercase":    {"kept as it is"},
		"X-None":         {},
		"Content-Length": {"999"},
		"Host":           {"elsewhere.test"},
		"Trailer":        {"X-T"},
		"Bad Name":       {"dropped"},
		"X-Broken":       {"a\r\nInjected: yes"},
	}
	return []writeCase{
		{"chat", true, chat},
		{"host set", true, with(chat, func(r *http.Request) { r.Host = "api.test" })},
		{"odd fields", true, postTo("http://h.test/v1", `{}`, odd)},
		{"no user agent", true, with(chat, func(r *http.Request) { r.Header.Del("User-Agent") })},
		{"empty user agent", true, with(chat, func(r *http.Request) { r.Header["User-Agent"] = []string{""} })},
		{"blank user agent", true, with(chat, func(r *http.Request) { r.Header["User-Agent"] = []string{" \t"} })},
		{"user agents", true, with(chat, func(r *http.Request) { r.Header["User-Agent"] = []string{" a ", "b"} })},
		{"user agent of no value", true, with(chat, func(r *http.Request) { r.Header["User-Agent"] = []string{} })},
		{"query", true, postTo("http://h.test/v1/chat?api-version=2024-10-01&x=%20", `{}`, nil)},
		{"escaped path", true, postTo("http://h.test/a%20b/c%2Fd", `{}`, nil)},
		{"no path", true, postTo("http://h.test", `{}`, nil)},
		{"IPv6", true, postTo("http://[::1]:8080/v1", `{}`, nil)},
		{"POST without body", true, postTo("http://h.test/v1", "", nil)},
		{"GET", true, func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, "http://h.test/v1/models", nil)
			return r
		}},
		{"no method", true, func() *http.Request { r, _ := http.NewRequest("", "http://h.test/", nil); return r }},
		{"GET with body", true, func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, "http://h.test/", strings.NewReader("x"))
			return r
		}},
		{"body short", true, with(chat, func(r *http.Request) { r.ContentLength += 3 })},
		{"body long", true, with(chat, func(r *http.Request) { r.ContentLength -= 3 })},
		{"body unknown", false, with(chat, func(r *http.Request) { r.ContentLength = -1 })},
		{"body of no stated length", false, with(chat, func(r *http.Request) { r.ContentLength = 0 })},
		{"chunked", false, with(chat, func(r *http.Request) { r.TransferEncoding = []string{"chunked"} })},
		{"close", false, with(chat, func(r *http.Request) { r.Close = true })},
		{"trailer", false, with(chat, func(r *http.Request) { r.Trailer = http.Header{"X-T": nil} })},
		{"zone", false, postTo("http://[fe80::1%25en0]:8080/v1", `{}`, nil)},
		{"unicode host", false, with(chat, func(r *http.Request) { r.Host = "bücher.test" })},
		{"host with a space", false, with(chat, func(r *http.Request) { r.Host = "a b" })},
		{"control byte in the query", true, with(chat, func(r *http.Request) { r.URL.RawQuery = "a=\x01" })},
		{"opaque", false, with(chat, func(r *http.Request) { r.URL.Opaque = "//h.test/x" })},
		{"CONNECT", false, func() *http.Request {
			return &http.Request{Method: http.MethodConnect, URL: &url.URL{Host: "h.test:443"}, Header: http.Header{}}
		}},
		{"traced", false, with(chat, func(r *http.Request) {
			*r = *r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{}))
		})},
	}
}

// writeWith is what write writes of req on a buffer, with the error it
// returns, and whether it closed req's body.
func writeWith(write func(*bufio.Writer, *http.Request) error, req *http.Request) (string, error, bool) {
	body := &closeCounter{}
	if req.Body != nil && req.Body != http.NoBody {
		body.Reader = req.Body
		req.Body = body
	}
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	err := write(bw, req)
	bw.Flush()
	return buf.String(), err, req.Body == nil || req.Body == http.NoBody || body.closed.Load() > 0
}

// writeRequest writes what Request.Write does, byte for byte, with the
// same error, and closes the body as it does; the requests a Handler
// sends are written by writeRequest itself, and the rest by Request.Write.
func TestWriteRequestWritesWhatRequestWriteDoes(t *testing.T) {
	t.Parallel()
	for _, tc := range writeCases() {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.plain, plainRequest(tc.build()), "plainRequest")
			want, wantErr, _ := writeWith(func(bw *bufio.Writer, r *http.Request) error { return r.Write(bw) }, tc.build())
			got, err, closed := writeWith(writeRequest, tc.build())
			assert.Equal(t, want, got)
			if wantErr != nil {
				assert.EqualError(t, err, wantErr.Error())
			} else {
				assert.NoError(t, err)
			}
			assert.True(t, closed, "the body is closed")
		})
	}
}

// What writeRequest writes of a Handler's request, net/http's server reads
// back as the request it was.
func TestWriteRequestIsReadBack(t *testing.T) {
	t.Parallel()
	req, err := http.NewRequest(http.MethodPost, "http://api.test/v1/chat/completions?x=1", strings.NewReader(`{"model":"m"}`))
	require.NoError(t, err)
	req.Header = clientHeader.Clone()
	out, err, _ := writeWith(writeRequest, req)
	require.NoError(t, err)

	back, err := http.ReadRequest(bufio.NewReader(strings.NewReader(out)))
	require.NoError(t, err)
	assert.Equal(t, http.MethodPost, back.Method)
	assert.Equal(t, "/v1/chat/completions?x=1", back.RequestURI)
	assert.Equal(t, "api.test", back.Host)
	want := clientHeader.Clone()
	want.Set("Content-Length", "13")
	assert.Equal(t, want, back.Header)
	body, err := io.ReadAll(back.Body)
	require.NoError(t, err)
	assert.Equal(t, `{"model":"m"}`, string(body))
}

// FuzzWriteRequest holds writeRequest to Request.Write's bytes and error
// for a request of any method, host, target, field and body length.
func FuzzWriteRequest(f *testing.F) {
	f.Add("POST", "api.test:8080", "/v1/chat/completions", "api-version=1", "Authorization", "Bearer sk-x", `{"model":"m"}`, 0)
	f.Add("GET", "[::1]", "", "", "User-Agent", " ", "", 0)
	f.Add("PUT", "b\u00fccher.test", "/a b", "", "X-A", "v\r\nX-B: w", "abc", 2)
	f.Add("PATCH", "[fe80::1%en0]", "/%zz", "\x7f", "content-length", "7", "abc", -2)
	f.Fuzz(func(t *testing.T, method, host, path, query, name, value, body string, lengthOff int) {
		build := func() *http.Request {
			req := &http.Request{
				Method: method, URL: &url.URL{Scheme: "http", Host: host, Path: path, RawQuery: query},
				Header: http.Header{name: {value}}, ContentLength: int64(len(body) + lengthOff),
			}
			if body != "" {
				req.Body = io.NopCloser(strings.NewReader(body))
			}
			return req.WithContext(context.Background())
		}
		want, wantErr, _ := writeWith(func(bw *bufio.Writer, r *http.Request) error { return r.Write(bw) }, build())
		got, err, _ := writeWith(writeRequest, build())
		if got != want {
			t.Fatalf("wrote\n%q\nwant\n%q", got, want)
		}
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("error %v, want %v", err, wantErr)
		}
	})
}

// The requests a Handler builds, with a body or without, a key or none,
// are written by writeRequest itself: were one to fall back, Transport
// would lose the saving without a test failing.
func TestHandlerRequestsArePlain(t *testing.T) {
	t.Parallel()
	for _, body := range []string{`{"model":"m"}`, ""} {
		for _, url := range []string{"http://127.0.0.1:8080/v1", "https://api.test:443/openai/v1?api-version=1"} {
			tgt, err := pool.NewTarget(url)
			require.NoError(t, err)
			tgt.UpstreamKey = "sk-up"
			client := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
			client.Header = clientHeader.Clone()
			up, err := newUpstreamRequest(client.Context(), client, tgt, []byte(body), true)
			require.NoError(t, err)
			assert.True(t, plainRequest(up), "body %q to %s", body, url)
		}
	}
}
