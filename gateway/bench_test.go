package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/onwardsgo/pool"
)

// cannedTransport answers every request with a 200 and body, in memory, so
// that a benchmark measures the gateway's own work and not the network's.
type cannedTransport struct {
	header http.Header
	body   []byte
}

func (c *cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: c.header.Clone(), Body: io.NopCloser(bytes.NewReader(c.body)),
		ContentLength: int64(len(c.body)), Request: r}, nil
}

// benchHandler is a Handler over one alias, "m", of two providers, whose
// upstream answers at once with a completion.
func benchHandler(b *testing.B, contentType, body string) *Handler {
	cfg, err := pool.ParseConfig([]byte(`{"targets": {"m": {"providers": [
		{"url": "http://upstream-a.test/v1", "onwards_key": "sk-a"},
		{"url": "http://upstream-b.test/v1", "onwards_key": "sk-b"}]}}}`))
	if err != nil {
		b.Fatal(err)
	}
	reg, err := pool.NewRegistry(cfg)
	if err != nil {
		b.Fatal(err)
	}
	header := upstreamHeader.Clone()
	header.Set("Content-Type", contentType)
	t := &cannedTransport{header: header, body: []byte(body)}
	return &Handler{Registry: reg, Client: &http.Client{Transport: t}}
}

// clientHeader is what the official OpenAI SDKs send with a request.
var clientHeader = http.Header{
	"Accept":                      {"application/json"},
	"Authorization":               {"Bearer sk-client"},
	"Content-Type":                {"application/json"},
	"User-Agent":                  {"OpenAI/Python 1.54.0"},
	"X-Stainless-Arch":            {"x64"},
	"X-Stainless-Async":           {"false"},
	"X-Stainless-Lang":            {"python"},
	"X-Stainless-Os":              {"Linux"},
	"X-Stainless-Package-Version": {"1.54.0"},
	"X-Stainless-Retry-Count":     {"0"},
	"X-Stainless-Runtime":         {"CPython"},
	"X-Stainless-Runtime-Version": {"3.12.7"},
}

// upstreamHeader is what an OpenAI-compatible upstream answers with, but
// for its Content-Type.
var upstreamHeader = http.Header{
	"Date":                           {"Fri, 27 Nov 2026 04:00:00 GMT"},
	"Openai-Processing-Ms":           {"312"},
	"Openai-Version":                 {"2020-10-01"},
	"X-Request-Id":                   {"req_0123456789abcdef"},
	"X-Ratelimit-Limit-Requests":     {"10000"},
	"X-Ratelimit-Remaining-Requests": {"9999"},
	"Strict-Transport-Security":      {"max-age=31536000; includeSubDomains; preload"},
	"Cache-Control":                  {"no-cache, must-revalidate"},
}

// BenchmarkHandler is one chat completion through Handler, with the
// network left out: the gateway's own work per request (reading and
// admitting it, building the upstream request, copying the answer). The
// requests are short, but for chat-4.6KB, whose eight messages of prose
// are closer to what a gateway forwards. chat-direct is chat with the
// upstream transport set as Handler.Transport rather than in a Client.
func BenchmarkHandler(b *testing.B) {
	short := `{"model":"m","stream":false,"messages":[{"role":"user","content":"Hi"}]}`
	long := strings.Replace(string(chatBody()), `"alias"`, `"m"`, 1)
	for _, tc := range []struct {
		name, contentType, body, reqBody string
		direct                           bool // the transport as Handler.Transport, not in a Client
	}{
		{"chat", "application/json", completion("m", "Hello there"), short, false},
		{"stream", "text/event-stream", strings.Repeat("data: {\"choices\":[{\"delta\":{\"content\":\"t\"}}]}\n\n", 20) + "data: [DONE]\n\n", short, false},
		{"chat-4.6KB", "application/json", completion("m", "Hello there"), long, false},
		{"chat-direct", "application/json", completion("m", "Hello there"), short, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := benchHandler(b, tc.contentType, tc.body)
			if tc.direct {
				h.Transport, h.Client = h.Client.Transport, nil
			}
			reqBody := tc.reqBody
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(reqBody))
				r.Header = clientHeader.Clone()
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

// chatBody is a 4.6 KB chat completion request: eight messages of prose.
func chatBody() []byte {
	msg := `{"role":"user","content":"` + strings.Repeat("lorem ipsum dolor sit amet ", 20) + `"}`
	return []byte(`{"model":"alias","messages":[` + strings.Repeat(msg+",", 7) + msg + `],"temperature":0.7,"stream":false}`)
}

// BenchmarkValidJSON checks a 4.6 KB chat completion request, as Handler
// does every JSON body, against encoding/json's json.Valid.
func BenchmarkValidJSON(b *testing.B) {
	body := chatBody()
	for _, tc := range []struct {
		name  string
		valid func([]byte) bool
	}{{"validJSON", validJSON}, {"json.Valid", json.Valid}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for range b.N {
				if !tc.valid(body) {
					b.Fatal("the body is valid JSON")
				}
			}
		})
	}
}

// BenchmarkRewriteModel rewrites the model of a 4.6 KB chat completion
// request, as a target with onwards_model does on every request. splice is
// RewriteModel; checked is the same without checking that the body is
// JSON, which Handler has done once already; map is the rewrite through a
// map that they replaced.
func BenchmarkRewriteModel(b *testing.B) {
	body := chatBody()
	for _, tc := range []struct {
		name    string
		rewrite func([]byte, string) []byte
	}{{"splice", RewriteModel}, {"checked", rewriteValid}, {"map", mapRewrite}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for range b.N {
				tc.rewrite(body, "gpt-4o-2024-08-06")
			}
		})
	}
}

// BenchmarkUpstreamClient is one upstream exchange over loopback (a
// chat-sized request, a chat-sized answer, read to its end), through
// net/http's Transport as NewClient sets it up and through Transport, in
// turn: go test -run '^$' -bench UpstreamClient -benchmem -cpu 1 ./gateway.
// The upstream's own work is in both. Read it at -cpu 1, where an exchange
// is all CPU: with more, the upstream in the same process makes each
// exchange a handoff between goroutines on several processors, and the
// figure mostly the scheduler's (BENCHMARKS.md).
func BenchmarkUpstreamClient(b *testing.B) {
	answer := []byte(`{"id":"c","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}]}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	}))
	defer up.Close()
	request := `{"model":"m","messages":[{"role":"user","content":"Hi"}]}`
	for _, rt := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"net-http", NewClient().Transport},
		{"Transport", new(Transport)},
	} {
		b.Run(rt.name, func(b *testing.B) {
			defer rt.rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
			b.ReportAllocs()
			for range b.N {
				req, _ := http.NewRequest(http.MethodPost, up.URL+"/v1/chat/completions", strings.NewReader(request))
				resp, err := rt.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				if n, _ := io.Copy(io.Discard, resp.Body); n != int64(len(answer)) {
					b.Fatalf("read %d bytes of %d", n, len(answer))
				}
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkWriteRequest writes a Handler's upstream request, the SDK's
// fields and a short chat body, as Transport does and as Request.Write
// does: go test -run '^$' -bench WriteRequest -benchmem ./gateway.
func BenchmarkWriteRequest(b *testing.B) {
	body := `{"model":"m","stream":false,"messages":[{"role":"user","content":"Hi"}]}`
	for _, w := range []struct {
		name  string
		write func(*bufio.Writer, *http.Request) error
	}{
		{"Transport", writeRequest},
		{"Request.Write", func(bw *bufio.Writer, r *http.Request) error { return r.Write(bw) }},
	} {
		b.Run(w.name, func(b *testing.B) {
			bw := bufio.NewWriter(io.Discard)
			content := strings.NewReader(body)
			req, _ := http.NewRequest(http.MethodPost, "http://upstream.test/v1/chat/completions", content)
			req.Header = clientHeader
			b.ReportAllocs()
			for range b.N {
				content.Reset(body) // the same request, its body unread
				if err := w.write(bw, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadResponse reads an upstream's chat answer, as net/http's
// server writes it, and its body, as Transport does and as ReadResponse
// does: go test -run '^$' -bench ReadResponse -benchmem ./gateway.
func BenchmarkReadResponse(b *testing.B) {
	body := `{"id":"c","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`
	answer := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 07 Dec 2026 02:00:00 GMT\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	for _, r := range []struct {
		name string
		read func(*bufio.Reader, *http.Request) (*http.Response, error)
	}{
		{"Transport", readResponse},
		{"ReadResponse", http.ReadResponse},
	} {
		b.Run(r.name, func(b *testing.B) {
			src := strings.NewReader(answer)
			br := bufio.NewReaderSize(src, 4096)
			req, _ := http.NewRequest(http.MethodPost, "http://upstream.test/v1/chat/completions", nil)
			buf := make([]byte, 4096)
			b.ReportAllocs()
			for range b.N {
				src.Reset(answer)
				br.Reset(src)
				resp, err := r.read(br, req)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.ReadFull(resp.Body, buf[:len(body)]); n != len(body) || err != nil {
					b.Fatal(n, err)
				}
			}
		})
	}
}
