package gateway

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onwardsgo/pool"
	"github.com/onwardsgo/pool/internal/fakeclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestForwardedRequest(t *testing.T) {
	t.Parallel()
	up := &recorder{}
	r := newRig(t, `{"targets": {
		"plain": {"url": "$A/v1", "onwards_key": "sk-up", "onwards_model": "real-model"},
		"custom": {"url": "$A/openai/v1?api-version=2", "onwards_key": "sk-custom",
		           "upstream_auth_header_name": "x-api-key", "upstream_auth_header_prefix": ""}}}`,
		map[string]http.Handler{"A": up})

	a := r.post("/v1/chat/completions?trace=1", `{"model":"plain","messages":[{"role":"user","content":"Hi"}],"temperature":0.5}`,
		"Authorization", "Bearer sk-client", "Proxy-Authorization", "Basic c2VjcmV0",
		"Connection", "X-Conn-Only", "X-Conn-Only", "1", "Te", "trailers", "X-Custom", "kept",
		// What onwards strips besides: other credentials, the browser's
		// context and state, and conditional requests.
		"X-Api-Key", "sk-client-x", "Api-Key", "sk-client-azure", "Cookie", "session=s3cret",
		"Origin", "https://app.example", "Referer", "https://app.example/chat",
		"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty", "Sec-Fetch-User", "?1",
		"Sec-Ch-Ua", `"Chromium";v="131"`, "Sec-Ch-Ua-Mobile", "?0", "Sec-Ch-Ua-Platform", `"Linux"`,
		"If-Modified-Since", "Wed, 25 Nov 2026 10:00:00 GMT", "If-None-Match", `"v1"`, "If-Match", `"v1"`,
		"If-Unmodified-Since", "Wed, 25 Nov 2026 10:00:00 GMT", "If-Range", `"v1"`,
		"Sec-Purpose", "prefetch")
	require.Equal(t, http.StatusOK, a.status, a.body)
	got := up.calls()[0]
	assert.Equal(t, "/v1/chat/completions", got.path, "the shared /v1 is not doubled")
	assert.Equal(t, "trace=1", got.query)
	assert.Equal(t, "Bearer sk-up", got.header.Get("Authorization"), "the provider's key, not the client's")
	for _, h := range []string{"Proxy-Authorization", "X-Conn-Only", "Te",
		"X-Api-Key", "Api-Key", "Cookie", "Origin", "Referer",
		"Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Fetch-User",
		"Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform",
		"If-Modified-Since", "If-None-Match", "If-Match", "If-Unmodified-Since", "If-Range"} {
		assert.Empty(t, got.header.Values(h), "%s is not forwarded", h)
	}
	assert.Equal(t, "prefetch", got.header.Get("Sec-Purpose"), "of the Sec- headers, only those onwards names go")
	assert.Equal(t, "kept", got.header.Get("X-Custom"))
	var body map[string]any
	require.NoError(t, json.Unmarshal([]byte(got.body), &body))
	assert.Equal(t, "real-model", body["model"], "onwards_model rewrites the model")
	assert.Equal(t, 0.5, body["temperature"], "the rest of the body is kept")

	a = r.post("/v1/embeddings", `{"model":"custom","input":"x"}`, "Authorization", "Bearer sk-client", "X-Api-Key", "sk-client")
	require.Equal(t, http.StatusOK, a.status)
	got = up.calls()[1]
	assert.Equal(t, "/openai/v1/embeddings", got.path)
	assert.Equal(t, "api-version=2", got.query)
	assert.Equal(t, "sk-custom", got.header.Get("X-Api-Key"), "the configured header, no prefix, not the client's")
	assert.Empty(t, got.header.Get("Authorization"))
	assert.Contains(t, got.body, `"model":"custom"`, "no onwards_model: the model is sent as named")
}

func TestResponseHeaders(t *testing.T) {
	t.Parallel()
	up := &recorder{header: map[string]string{"X-Upstream": "u", "X-Both": "upstream"}}
	r := newRig(t, `{"targets": {"a": {"response_headers": {"X-Pool": "p", "X-Both": "pool"},
		"providers": [{"url": "$A", "response_headers": {"X-Provider": "v"}}]}}}`, map[string]http.Handler{"A": up})
	a := r.chat("a")
	require.Equal(t, http.StatusOK, a.status)
	assert.Equal(t, "u", a.header.Get("X-Upstream"))
	assert.Equal(t, "p", a.header.Get("X-Pool"))
	assert.Equal(t, "v", a.header.Get("X-Provider"))
	assert.Equal(t, "pool", a.header.Get("X-Both"), "configured headers win over the upstream's")
}

// An upstream's redirect goes back to the client as it came, as onwards
// (whose client follows none) and nginx pass it: followed, a 301 or 302
// would turn the POST into a GET without its body, and any redirect would
// send the request, and the provider's key with it, where the upstream says.
func TestUpstreamRedirectPassedOn(t *testing.T) {
	t.Parallel()
	var followed atomic.Int32
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code, ok := strings.CutPrefix(r.URL.Path, "/v1/redirect/"); ok {
			n, _ := strconv.Atoi(code)
			w.Header().Set("Location", "/v1/elsewhere")
			w.WriteHeader(n)
			return
		}
		if r.URL.Path == "/v1/absolute" { // to the upstream itself, by its address
			w.Header().Set("Location", "http://"+r.Host+"/v1/elsewhere?x=1")
			w.WriteHeader(http.StatusTemporaryRedirect)
			return
		}
		if r.URL.Path == "/v1/away" {
			w.Header().Set("Location", "https://login.example.com/start")
			w.WriteHeader(http.StatusFound)
			return
		}
		followed.Add(1)
		io.WriteString(w, completion("m", "followed"))
	})
	r := newRig(t, `{"targets": {"m": {"url": "$A/v1", "onwards_key": "sk-up"}}}`, map[string]http.Handler{"A": up})
	for _, code := range []int{301, 302, 303, 307, 308} {
		a := r.post("/v1/redirect/"+strconv.Itoa(code), `{"model":"m"}`)
		assert.Equal(t, code, a.status)
		assert.Equal(t, "/v1/elsewhere", a.header.Get("Location"))
	}
	// A Location on the upstream's own address would show it: it goes
	// out as a path, which the client takes as the gateway's.
	a := r.post("/v1/absolute", `{"model":"m"}`)
	assert.Equal(t, http.StatusTemporaryRedirect, a.status)
	assert.Equal(t, "/v1/elsewhere?x=1", a.header.Get("Location"))
	a = r.post("/v1/away", `{"model":"m"}`)
	assert.Equal(t, "https://login.example.com/start", a.header.Get("Location"), "another host's is left as it is")
	assert.Zero(t, followed.Load(), "the gateway followed a redirect")
}

func TestUnreachableUpstream(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused

	good := &recorder{}
	r := newRig(t, `{"targets": {
		"alone": {"url": "`+dead+`", "onwards_key": "sk-dead"},
		"pair": {"strategy": "priority", "fallback": {"enabled": true},
		         "providers": [{"url": "`+dead+`"}, {"url": "$GOOD"}]}}}`, map[string]http.Handler{"GOOD": good})

	a := r.chat("alone")
	require.Equal(t, http.StatusServiceUnavailable, a.status)
	assert.Equal(t, "service_unavailable", openAIError(t, a).Error.Code)

	require.Equal(t, http.StatusOK, r.chat("pair").status)
	tries := r.tries()
	require.Len(t, tries, 3)
	assert.ErrorIs(t, tries[0].Err, ErrUpstreamUnreachable)
	assert.ErrorIs(t, tries[1].Err, ErrUpstreamUnreachable)
	assert.True(t, tries[1].FellBack)
	assert.Equal(t, 1, tries[2].Provider)
	assert.Equal(t, http.StatusOK, tries[2].Status)
	assert.NoError(t, tries[2].Err)
	assert.Equal(t, dead+"/", tries[1].URL, "an attempt names its provider's URL")
	assert.Equal(t, r.upstream["GOOD"].URL+"/", tries[2].URL)
}

// blocker is an upstream that reports each request it has read, then
// sends no headers until the request is cancelled, and reports that it
// was.
type blocker struct{ started, cancelled chan struct{} }

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The server notices a closed connection only once the body is read.
	io.Copy(io.Discard, r.Body)
	b.started <- struct{}{}
	<-r.Context().Done()
	b.cancelled <- struct{}{}
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	slow := &blocker{started: make(chan struct{}, 2), cancelled: make(chan struct{}, 2)}
	good := &recorder{}
	r := newRigClock(t, `{"targets": {
		"alone": {"url": "$SLOW", "request_timeout_secs": 1},
		"pair": {"strategy": "priority", "fallback": {"enabled": true},
		         "providers": [{"url": "$SLOW", "request_timeout_secs": 1}, {"url": "$GOOD"}]}}}`,
		map[string]http.Handler{"SLOW": slow, "GOOD": good}, clock)

	// chatPastTimeout sends a chat completion to alias, whose first
	// provider never answers, and moves the pool's clock past the wait
	// for its headers once the provider has the request.
	chatPastTimeout := func(alias string) answer {
		done := make(chan answer, 1)
		go func() { done <- r.chat(alias) }()
		<-slow.started // and the timeout was set before the request went
		require.Equal(t, []time.Duration{time.Second}, clock.Pending(), "request_timeout_secs is timed on the pool's clock")
		clock.Advance(time.Second)
		return <-done
	}

	a := chatPastTimeout("alone")
	require.Equal(t, http.StatusGatewayTimeout, a.status)
	assert.Equal(t, "upstream_timeout", openAIError(t, a).Error.Code)
	<-slow.cancelled // the upstream call was cancelled, not left running

	require.Equal(t, http.StatusOK, chatPastTimeout("pair").status)
	<-slow.cancelled
	tries := r.tries()
	require.Len(t, tries, 3)
	assert.ErrorIs(t, tries[1].Err, ErrUpstreamTimeout)
	assert.Equal(t, time.Second, tries[1].Duration, "the attempt took the timeout, on the pool's clock")
	assert.True(t, tries[1].FellBack)
	assert.Len(t, good.calls(), 1)
	assert.Zero(t, clock.Timers(), "an answered request leaves no timer behind")
}

func TestFallbackOnStatus(t *testing.T) {
	t.Parallel()
	bad := &recorder{status: 503, body: `{"error":{"message":"overloaded at 10.0.0.7"}}`}
	good := &recorder{}
	r := newRig(t, `{"targets": {
		"walk": {"strategy": "priority", "fallback": {"enabled": true, "on_status": [5]},
		         "providers": [{"url": "$BAD"}, {"url": "$GOOD"}]},
		"stuck": {"strategy": "priority", "fallback": {"enabled": true, "on_status": [5]},
		          "providers": [{"url": "$BAD"}, {"url": "$BAD"}]},
		"no": {"strategy": "priority", "providers": [{"url": "$BAD"}, {"url": "$GOOD"}]}}}`,
		map[string]http.Handler{"BAD": bad, "GOOD": good})

	require.Equal(t, http.StatusOK, r.chat("walk").status)
	a := r.chat("stuck")
	require.Equal(t, http.StatusServiceUnavailable, a.status, "the last upstream answer")
	assert.Contains(t, a.body, "overloaded", "not sanitized: the upstream's own body")
	assert.Equal(t, http.StatusServiceUnavailable, r.chat("no").status, "no fallback: the first answer stands")
	assert.Len(t, good.calls(), 1)
	assert.Len(t, bad.calls(), 4)
}

func TestProviderRateLimit(t *testing.T) {
	t.Parallel()
	good := &recorder{}
	r := newRig(t, `{"targets": {
		"skip": {"strategy": "priority", "fallback": {"enabled": true, "on_rate_limit": true},
		         "providers": [{"url": "$GOOD", "rate_limit": {"requests_per_second": 0.001, "burst_size": 1}}, {"url": "$GOOD"}]},
		"stop": {"strategy": "priority", "fallback": {"enabled": true},
		         "providers": [{"url": "$GOOD", "rate_limit": {"requests_per_second": 0.001, "burst_size": 1}}, {"url": "$GOOD"}]}}}`,
		map[string]http.Handler{"GOOD": good})
	for range 2 {
		require.Equal(t, http.StatusOK, r.chat("skip").status)
	}
	require.Equal(t, http.StatusOK, r.chat("stop").status)
	a := r.chat("stop")
	require.Equal(t, http.StatusTooManyRequests, a.status, "without on_rate_limit the walk stops")
	assert.Equal(t, "1000", a.header.Get("Retry-After"))
	tries := r.tries()
	require.Len(t, tries, 5)
	assert.ErrorIs(t, tries[1].Err, ErrProviderRateLimited)
	assert.True(t, tries[1].FellBack)
	assert.ErrorIs(t, tries[4].Err, ErrProviderRateLimited)
	assert.False(t, tries[4].FellBack)
	assert.Len(t, good.calls(), 3)
}

// streamer is an upstream that sends one event, waits for next, sends a
// second and the end; or, with breakOff, drops the connection instead.
type streamer struct {
	next      chan struct{}
	breakOff  bool
	cancelled chan struct{}
}

func (s *streamer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body) // so that the server notices a client that leaves
	w.Header().Set("Content-Type", "text/event-stream")
	io.WriteString(w, chunk("upstream", "one")+": keep-alive comment\n\n")
	w.(http.Flusher).Flush()
	select {
	case <-s.next:
	case <-r.Context().Done():
		s.cancelled <- struct{}{}
		return
	}
	if s.breakOff {
		panic(http.ErrAbortHandler)
	}
	io.WriteString(w, chunk("upstream", "two")+"data: [DONE]\n\n")
}

func chunk(model, text string) string {
	return `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"` + model +
		`","provider":"acme","choices":[{"index":0,"delta":{"content":"` + text + `"},"finish_reason":null}]}` + "\n\n"
}

func newStreamer() *streamer {
	return &streamer{next: make(chan struct{}), cancelled: make(chan struct{}, 1)}
}

// readEvent reads one event's lines up to the blank line.
func readEvent(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var ev strings.Builder
	for {
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		if line == "\n" {
			return ev.String()
		}
		ev.WriteString(line)
	}
}

func TestStreamFlushedAndSlotsHeld(t *testing.T) {
	t.Parallel()
	s := newStreamer()
	r := newRig(t, `{"targets": {"a": {"concurrency_limit": {"max_concurrent_requests": 5},
		"providers": [{"url": "$S"}]}}}`, map[string]http.Handler{"S": s})
	resp, err := r.send(ctxT(t), http.MethodPost, "/v1/chat/completions", `{"model":"a","stream":true}`)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	assert.Empty(t, resp.Header.Get("Content-Length"))
	br := bufio.NewReader(resp.Body)

	// The first event arrives while the upstream still holds the second:
	// it was flushed, not buffered.
	assert.Contains(t, readEvent(t, br), `"one"`)
	p, _ := r.reg.Pool("a")
	assert.Equal(t, 1, p.Providers()[0].ActiveConnections(), "the provider slot is held mid-stream")
	assert.Equal(t, 1, p.ConcurrencyLimiter().Active(), "the pool slot is held mid-stream")

	close(s.next)
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	assert.Contains(t, string(rest), `"two"`)
	assert.Contains(t, string(rest), "data: [DONE]")
}

func TestClientCancelReachesUpstream(t *testing.T) {
	t.Parallel()
	s := newStreamer()
	r := newRig(t, `{"targets": {"a": {"url": "$S"}}}`, map[string]http.Handler{"S": s})
	ctx, cancel := context.WithCancel(ctxT(t))
	resp, err := r.send(ctx, http.MethodPost, "/v1/chat/completions", `{"model":"a","stream":true}`)
	require.NoError(t, err)
	defer resp.Body.Close()
	readEvent(t, bufio.NewReader(resp.Body))
	cancel()
	<-s.cancelled // the upstream saw the cancel
}

func TestUpstreamBreaksOffMidStream(t *testing.T) {
	t.Parallel()
	s := newStreamer()
	s.breakOff = true
	r := newRig(t, `{"targets": {"a": {"url": "$S"}}}`, map[string]http.Handler{"S": s})
	resp, err := r.send(ctxT(t), http.MethodPost, "/v1/chat/completions", `{"model":"a","stream":true}`)
	require.NoError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	readEvent(t, br)
	close(s.next)
	_, err = io.ReadAll(br)
	require.Error(t, err, "the client sees the break, not a clean end")
	assert.False(t, errors.Is(err, io.EOF))
	r.srv.Close() // wait for the handler, which reports after the abort
	tries := r.tries()
	require.Len(t, tries, 1)
	assert.ErrorIs(t, tries[0].Err, ErrUpstreamBrokeOff)
}

// A password in a provider's URL reaches the upstream as Basic
// authorization when the provider has no key of its own, as onwards'
// client sends it; the key wins when there is one. (go test -args -lean
// runs this over Handler.Transport.)
func TestURLPasswordIsBasicAuth(t *testing.T) {
	t.Parallel()
	up := &recorder{}
	r := newRig(t, `{"targets": {"a": {"url": "$A"}}}`, map[string]http.Handler{"A": up})
	withPassword := strings.Replace(r.upstream["A"].URL, "http://", "http://user:pw-secret@", 1)
	for _, tc := range []struct{ key, want string }{
		{"", "Basic " + base64.StdEncoding.EncodeToString([]byte("user:pw-secret"))},
		{`, "onwards_key": "sk-up"`, "Bearer sk-up"},
	} {
		cfg, err := pool.ParseConfig([]byte(`{"targets": {"a": {"url": "` + withPassword + `"` + tc.key + `}}}`))
		require.NoError(t, err)
		require.NoError(t, r.reg.Reload(cfg))
		require.Equal(t, http.StatusOK, r.chat("a").status)
		calls := up.calls()
		assert.Equal(t, tc.want, calls[len(calls)-1].header.Get("Authorization"))
	}
}

// An attempt's URL never shows a password the provider's URL holds.
func TestAttemptURLHidesThePassword(t *testing.T) {
	t.Parallel()
	up := &recorder{}
	r := newRig(t, `{"targets": {"a": {"url": "$A"}}}`, map[string]http.Handler{"A": up})
	withPassword := strings.Replace(r.upstream["A"].URL, "http://", "http://user:pw-secret@", 1)
	cfg, err := pool.ParseConfig([]byte(`{"targets": {"a": {"url": "` + withPassword + `"}}}`))
	require.NoError(t, err)
	require.NoError(t, r.reg.Reload(cfg))

	require.Equal(t, http.StatusOK, r.chat("a").status)
	tries := r.tries()
	require.Len(t, tries, 1)
	assert.NotContains(t, tries[0].URL, "pw-secret")
	assert.Contains(t, tries[0].URL, "user:xxxxx@")
}
