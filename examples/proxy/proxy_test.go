package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onwardsgo/pool"
	"github.com/onwardsgo/pool/gateway"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// testTimeout bounds any one wait in these tests; nothing waits for it to
// pass on correct code.
const testTimeout = 30 * time.Second

// rig is a proxy on loopback in front of upstreams on loopback, and an
// official OpenAI client pointed at the proxy.
type rig struct {
	t        *testing.T
	reg      *pool.Registry
	proxy    *httptest.Server
	upstream map[string]*httptest.Server
	client   *http.Client
}

// newRig starts the upstreams (name -> handler), builds the config from doc
// with $NAME replaced by each upstream's URL, and starts the proxy. At the
// end of the test it stops everything, waits for every handler to return,
// and checks that every counter is back at zero and no goroutine is left.
func newRig(t *testing.T, doc string, upstreams map[string]http.Handler) *rig {
	t.Helper()
	return newRigClock(t, doc, upstreams, nil)
}

// newRigClock is newRig with the registry on clock (nil: the system's).
func newRigClock(t *testing.T, doc string, upstreams map[string]http.Handler, clock pool.Clock) *rig {
	t.Helper()
	leakOpts := []goleak.Option{goleak.IgnoreCurrent()}
	r := &rig{t: t, upstream: map[string]*httptest.Server{}}
	var pairs []string
	for name, h := range upstreams {
		s := httptest.NewServer(h)
		r.upstream[name] = s
		pairs = append(pairs, "$"+name, s.URL)
	}
	cfg, err := pool.ParseConfig([]byte(strings.NewReplacer(pairs...).Replace(doc)))
	require.NoError(t, err)
	r.reg = &pool.Registry{Clock: clock}
	require.NoError(t, r.reg.Reload(cfg))
	upstreamClient := gateway.NewClient()
	r.proxy = httptest.NewServer(&gateway.Handler{Registry: r.reg, Client: upstreamClient})
	r.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(func() {
		r.client.CloseIdleConnections()
		r.proxy.Close() // waits for every proxy handler to return
		upstreamClient.CloseIdleConnections()
		for _, s := range r.upstream {
			s.Close()
		}
		r.assertDrained()
		goleak.VerifyNone(t, leakOpts...)
	})
	return r
}

// openai returns an official client for the proxy, with key as its API key,
// that never retries (so that each refusal reaches the test as it is).
func (r *rig) openai(key string) *openai.Client {
	c := openai.NewClient(
		option.WithBaseURL(r.proxy.URL+"/v1/"),
		option.WithAPIKey(key),
		option.WithMaxRetries(0),
		option.WithHTTPClient(r.client),
	)
	return &c
}

// assertDrained checks that no slot is held in any pool or limiter.
func (r *rig) assertDrained() {
	r.t.Helper()
	for _, alias := range r.reg.Aliases() {
		p, _ := r.reg.Pool(alias)
		for i, pr := range p.Providers() {
			assert.Equal(r.t, 0, pr.ActiveConnections(), "%s provider %d", alias, i)
		}
		if l := p.ConcurrencyLimiter(); l != nil {
			assert.Equal(r.t, 0, l.Active(), "%s pool limiter", alias)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func chatParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hi")},
	}
}

// streamText reads a whole stream through the client's accumulator.
func streamText(t *testing.T, c *openai.Client, model string) (string, error) {
	stream := c.Chat.Completions.NewStreaming(ctxT(t), chatParams(model))
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		return "", err
	}
	if len(acc.Choices) == 0 {
		return "", errors.New("no choices")
	}
	return acc.Choices[0].Message.Content, nil
}

const basicConfig = `{
  "targets": {
    "chat": {"keys": ["sk-team"], "url": "$A", "onwards_key": "sk-upstream-a", "onwards_model": "a-large-2025",
             "response_headers": {"x-served-by": "a"}},
    "raw":  {"url": "$A", "upstream_auth_header_name": "x-api-key", "upstream_auth_header_prefix": "", "onwards_key": "sk-raw"}
  }
}`

func TestChatCompletionThroughProxy(t *testing.T) {
	mock := &MockUpstream{Name: "a"}
	r := newRig(t, basicConfig, map[string]http.Handler{"A": mock})
	c := r.openai("sk-team")

	resp, err := c.Chat.Completions.New(ctxT(t), chatParams("chat"))
	require.NoError(t, err)
	require.Len(t, resp.Choices, 1)
	assert.Equal(t, "Hello from a", resp.Choices[0].Message.Content)

	seen := mock.Seen()
	require.Len(t, seen, 1)
	assert.Equal(t, "a-large-2025", seen[0].Model, "the model is rewritten to onwards_model")
	assert.Equal(t, "Bearer sk-upstream-a", seen[0].Header.Get("Authorization"), "the client's key is replaced by the provider's")
	assert.Equal(t, "/v1/chat/completions", seen[0].Path, "the shared /v1 is not doubled")
}

func TestStreamedChatCompletionThroughProxy(t *testing.T) {
	mock := &MockUpstream{Name: "a"}
	r := newRig(t, basicConfig, map[string]http.Handler{"A": mock})
	text, err := streamText(t, r.openai("sk-team"), "chat")
	require.NoError(t, err)
	assert.Equal(t, "Hello from a", text)
}

func TestCustomUpstreamAuthHeader(t *testing.T) {
	mock := &MockUpstream{Name: "a"}
	r := newRig(t, basicConfig, map[string]http.Handler{"A": mock})
	_, err := r.openai("sk-whatever").Chat.Completions.New(ctxT(t), chatParams("raw"))
	require.NoError(t, err)
	seen := mock.Seen()
	require.Len(t, seen, 1)
	assert.Equal(t, "sk-raw", seen[0].Header.Get("X-Api-Key"))
	assert.Empty(t, seen[0].Header.Get("Authorization"), "the client's key never goes upstream")
	assert.Equal(t, "raw", seen[0].Model, "without onwards_model the model is sent as asked")
}

func TestResponseHeadersAndModelsList(t *testing.T) {
	r := newRig(t, basicConfig, map[string]http.Handler{"A": &MockUpstream{Name: "a"}})
	var raw *http.Response
	_, err := r.openai("sk-team").Chat.Completions.New(ctxT(t), chatParams("chat"), option.WithResponseInto(&raw))
	require.NoError(t, err)
	assert.Equal(t, "a", raw.Header.Get("X-Served-By"))

	page, err := r.openai("").Models.List(ctxT(t))
	require.NoError(t, err)
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	assert.Equal(t, []string{"chat", "raw"}, ids)
}

// assertAPIError asserts that err is the client's typed API error with status.
func assertAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var apiErr *openai.Error
	require.True(t, errors.As(err, &apiErr), "want *openai.Error, got %T: %v", err, err)
	assert.Equal(t, status, apiErr.StatusCode)
	assert.Equal(t, code, apiErr.Code)
}

func TestAdmissionRefusalsReachTheClient(t *testing.T) {
	const doc = `{
	  "auth": {"key_definitions": {
	    "blocked": {"key": "sk-blocked", "labels": {"tier": "blocked"}},
	    "one-at-a-time": {"key": "sk-one", "concurrency_limit": {"max_concurrent_requests": 1}}}},
	  "targets": {
	    "chat": {"keys": ["sk-team", "sk-blocked", "sk-one"], "url": "$A",
	             "routing_rules": [{"match_labels": {"tier": "blocked"}, "action": {"type": "deny"}}]},
	    "held": {"keys": ["sk-one"], "url": "$B"},
	    "trickle": {"rate_limit": {"requests_per_second": 0.000001, "burst_size": 1}, "providers": [{"url": "$A"}]}
	  }
	}`
	held := newHoldingUpstream()
	r := newRig(t, doc, map[string]http.Handler{"A": &MockUpstream{Name: "a"}, "B": held})

	_, err := r.openai("sk-team").Chat.Completions.New(ctxT(t), chatParams("nope"))
	assertAPIError(t, err, http.StatusNotFound, "model_not_found")
	_, err = r.openai("").Chat.Completions.New(ctxT(t), chatParams("chat"))
	assertAPIError(t, err, http.StatusUnauthorized, "invalid_api_key")
	_, err = r.openai("sk-wrong").Chat.Completions.New(ctxT(t), chatParams("chat"))
	assertAPIError(t, err, http.StatusForbidden, "invalid_api_key")
	_, err = r.openai("sk-blocked").Chat.Completions.New(ctxT(t), chatParams("chat"))
	assertAPIError(t, err, http.StatusForbidden, "access_denied")

	_, err = r.openai("").Chat.Completions.New(ctxT(t), chatParams("trickle"))
	require.NoError(t, err)
	_, err = r.openai("").Chat.Completions.New(ctxT(t), chatParams("trickle"))
	assertAPIError(t, err, http.StatusTooManyRequests, "rate_limit_exceeded")

	// A key allowed one request in flight: hold one, the next is refused,
	// on any alias.
	done := make(chan error, 1)
	go func() {
		_, err := r.openai("sk-one").Chat.Completions.New(ctxT(t), chatParams("held"))
		done <- err
	}()
	<-held.arrived
	_, err = r.openai("sk-one").Chat.Completions.New(ctxT(t), chatParams("chat"))
	assertAPIError(t, err, http.StatusTooManyRequests, "concurrency_limit_exceeded")
	held.release()
	require.NoError(t, <-done)
	_, err = r.openai("sk-one").Chat.Completions.New(ctxT(t), chatParams("chat"))
	require.NoError(t, err, "the key's slot came back")

	// Without a model the proxy answers 400 itself.
	resp, err := r.client.Post(r.proxy.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"messages": []}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

// holdingUpstream answers like MockUpstream once released, and signals each
// request's arrival.
type holdingUpstream struct {
	MockUpstream
	arrived  chan struct{}
	released chan struct{}
}

func newHoldingUpstream() *holdingUpstream {
	return &holdingUpstream{MockUpstream: MockUpstream{Name: "held"}, arrived: make(chan struct{}, 100), released: make(chan struct{})}
}

func (h *holdingUpstream) release() { close(h.released) }

func (h *holdingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	h.arrived <- struct{}{}
	select {
	case <-h.released:
		h.MockUpstream.ServeHTTP(w, r)
	case <-r.Context().Done():
	}
}

const twoProviderConfig = `{
  "targets": {
    "chat": {"strategy": "priority", "fallback": {"enabled": true, "on_status": [5]},
             "providers": [{"url": "$FIRST", "request_timeout_secs": 1}, {"url": "$SECOND"}]},
    "strict": {"strategy": "priority",
             "providers": [{"url": "$FIRST", "request_timeout_secs": 1}, {"url": "$SECOND"}]}
  }
}`

func TestFallbackOn503(t *testing.T) {
	first := &MockUpstream{Name: "first", FailEvery: 1}
	second := &MockUpstream{Name: "second"}
	r := newRig(t, twoProviderConfig, map[string]http.Handler{"FIRST": first, "SECOND": second})

	resp, err := r.openai("").Chat.Completions.New(ctxT(t), chatParams("chat"))
	require.NoError(t, err)
	assert.Equal(t, "Hello from second", resp.Choices[0].Message.Content)
	assert.Len(t, first.Seen(), 1)

	// Without fallback the 503 reaches the client as it was.
	_, err = r.openai("").Chat.Completions.New(ctxT(t), chatParams("strict"))
	assertAPIError(t, err, http.StatusServiceUnavailable, "overloaded")
}

func TestEveryAttemptFailsGivesTheLastError(t *testing.T) {
	r := newRig(t, twoProviderConfig, map[string]http.Handler{
		"FIRST": &MockUpstream{Name: "first", FailEvery: 1}, "SECOND": &MockUpstream{Name: "second", FailEvery: 1}})
	_, err := r.openai("").Chat.Completions.New(ctxT(t), chatParams("chat"))
	assertAPIError(t, err, http.StatusServiceUnavailable, "overloaded")
	var apiErr *openai.Error
	require.True(t, errors.As(err, &apiErr))
	assert.Contains(t, apiErr.Message, "second is overloaded", "the last provider's answer")
}

// brokenStream sends two events of a stream, then drops the connection.
type brokenStream struct{ sent chan struct{} }

func (b brokenStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprint(w, `data: {"id":"x","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}`+"\n\n")
	http.NewResponseController(w).Flush()
	close(b.sent)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestUpstreamDropsMidStream(t *testing.T) {
	broken := brokenStream{sent: make(chan struct{})}
	r := newRig(t, `{"targets": {"chat": {"url": "$A"}}}`, map[string]http.Handler{"A": broken})
	text, err := streamText(t, r.openai(""), "chat")
	assert.Error(t, err, "the client must learn that the stream broke, not get a clean end (got %q)", text)
}

// drain reads the request body to its end. A net/http server notices that
// the client has gone, and cancels the request's context, only once the
// body is consumed.
func drain(r *http.Request) { io.Copy(io.Discard, r.Body) }

// slowUpstream never answers until the request is cancelled.
type slowUpstream struct{ cancelled chan struct{} }

func (s slowUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	drain(r)
	<-r.Context().Done()
	s.cancelled <- struct{}{}
}

func TestUpstreamSlowerThanRequestTimeout(t *testing.T) {
	slow := slowUpstream{cancelled: make(chan struct{}, 10)}
	r := newRig(t, twoProviderConfig, map[string]http.Handler{"FIRST": slow, "SECOND": &MockUpstream{Name: "second"}})

	// With fallback, the next provider answers once the first times out.
	resp, err := r.openai("").Chat.Completions.New(ctxT(t), chatParams("chat"))
	require.NoError(t, err)
	assert.Equal(t, "Hello from second", resp.Choices[0].Message.Content)
	<-slow.cancelled

	// Without it, the client gets a 504.
	_, err = r.openai("").Chat.Completions.New(ctxT(t), chatParams("strict"))
	assertAPIError(t, err, http.StatusGatewayTimeout, "upstream_timeout")
	<-slow.cancelled
}

// openStream sends one event of a stream, then holds the stream open until
// the request is cancelled, and reports the cancellation.
type openStream struct {
	started   chan struct{}
	cancelled chan struct{}
}

func (o openStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	drain(r)
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprint(w, `data: {"id":"x","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"content":"la "},"finish_reason":null}]}`+"\n\n")
	http.NewResponseController(w).Flush()
	close(o.started)
	<-r.Context().Done()
	close(o.cancelled)
}

func TestClientCancelsMidStream(t *testing.T) {
	up := openStream{started: make(chan struct{}), cancelled: make(chan struct{})}
	r := newRig(t, `{"targets": {"chat": {"concurrency_limit": {"max_concurrent_requests": 5}, "providers": [{"url": "$A"}]}}}`,
		map[string]http.Handler{"A": up})
	ctx, cancel := context.WithCancel(ctxT(t))
	stream := r.openai("").Chat.Completions.NewStreaming(ctx, chatParams("chat"))
	require.True(t, stream.Next(), "the first event arrives: %v", stream.Err())
	p, _ := r.reg.Pool("chat")
	assert.Equal(t, 1, p.Providers()[0].ActiveConnections(), "the provider slot is held while the stream runs")
	assert.Equal(t, 1, p.ConcurrencyLimiter().Active(), "so is the admission's")
	cancel()
	for stream.Next() {
	}
	stream.Close()
	select {
	case <-up.cancelled: // the upstream request was cancelled too
	case <-time.After(testTimeout):
		t.Fatal("the upstream request was not cancelled")
	}
}

func TestReloadDuringStream(t *testing.T) {
	up := newHoldingUpstream()
	r := newRig(t, `{"targets": {"chat": {"url": "$A", "concurrency_limit": {"max_concurrent_requests": 3}}}}`,
		map[string]http.Handler{"A": up})
	type result struct {
		text string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		text, err := streamText(t, r.openai(""), "chat")
		done <- result{text, err}
	}()
	<-up.arrived

	// Reload with the same upstream and a new alias: the in-flight request's
	// count moves into the new pool.
	u, _ := url.Parse(r.upstream["A"].URL)
	cfg, err := pool.ParseConfig([]byte(fmt.Sprintf(`{"targets": {
		"chat": {"url": %q, "concurrency_limit": {"max_concurrent_requests": 1}},
		"other": {"url": %q}}}`, u.String(), u.String())))
	require.NoError(t, err)
	require.NoError(t, r.reg.Reload(cfg))
	p, _ := r.reg.Pool("chat")
	assert.Equal(t, 1, p.Providers()[0].ActiveConnections(), "the new pool adopted the live count")
	_, err = r.openai("").Chat.Completions.New(ctxT(t), chatParams("chat"))
	assertAPIError(t, err, http.StatusTooManyRequests, "concurrency_limit_exceeded") // the new limit of 1 counts the old stream

	up.release()
	res := <-done
	require.NoError(t, res.err)
	assert.Equal(t, "Hello from held", res.text)
}

// TestStreamIsFlushedEventByEvent reads the raw stream and checks that the
// first event arrives while the upstream is still holding the rest.
func TestStreamIsFlushedEventByEvent(t *testing.T) {
	gate := make(chan struct{})
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
	r := newRig(t, `{"targets": {"chat": {"url": "$A"}}}`, map[string]http.Handler{"A": up})
	resp, err := r.client.Post(r.proxy.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model": "chat", "stream": true}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "data: first\n", line, "the first event arrived before the upstream finished")
	close(gate)
	rest := new(strings.Builder)
	_, err = bufio.NewReader(br).WriteTo(rest)
	require.NoError(t, err)
	assert.Contains(t, rest.String(), "data: [DONE]")
}

func TestWatchConfigReloadsOnChangeAndSIGHUP(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	write := func(aliases ...string) {
		var targets []string
		for _, a := range aliases {
			targets = append(targets, fmt.Sprintf(`%q: {"url": "https://%s.example.com"}`, a, a))
		}
		// Write a new file and rename it over the old one, as editors do.
		tmp := filepath.Join(dir, "config.json.tmp")
		require.NoError(t, os.WriteFile(tmp, []byte(`{"targets": {`+strings.Join(targets, ",")+`}}`), 0o600))
		require.NoError(t, os.Rename(tmp, path))
	}
	write("a")
	cfg, err := pool.LoadConfig(path)
	require.NoError(t, err)
	reg, err := pool.NewRegistry(cfg)
	require.NoError(t, err)

	leakOpts := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	reloaded := make(chan error, 10)
	require.NoError(t, watchConfig(ctx, path, pool.ParseOptions{}, reg, slog.New(slog.DiscardHandler), reloaded))
	await := func() error {
		select {
		case err := <-reloaded:
			return err
		case <-time.After(testTimeout):
			t.Fatal("no reload")
			return nil
		}
	}

	write("a", "b")
	for err := await(); len(reg.Aliases()) != 2; err = await() {
		require.NoError(t, err) // a rename can signal more than once
	}
	assert.Equal(t, []string{"a", "b"}, reg.Aliases())

	// A broken file leaves the live config alone.
	require.NoError(t, os.WriteFile(path, []byte(`{"targets": {"a": {"url": "nope"}}}`), 0o600))
	assert.Error(t, await())
	assert.Equal(t, []string{"a", "b"}, reg.Aliases())
	for len(reloaded) > 0 { // one write can come as several events
		<-reloaded
	}

	// Fix the file, then ask for a reload with SIGHUP alone: with the file
	// events drained, the reload that follows the signal is the signal's.
	require.NoError(t, os.WriteFile(path, []byte(`{"targets": {"c": {"url": "https://c.example.com"}}}`), 0o600))
	for err := await(); !slices.Equal(reg.Aliases(), []string{"c"}); err = await() {
		require.Error(t, err, "only a half-written file may fail")
	}
	for len(reloaded) > 0 {
		<-reloaded
	}
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.NoError(t, await(), "SIGHUP reloads the file")
	assert.Equal(t, []string{"c"}, reg.Aliases())

	cancel()
	goleak.VerifyNone(t, leakOpts)
}

func TestModelOverrideHeader(t *testing.T) {
	mock := &MockUpstream{Name: "a"}
	r := newRig(t, basicConfig, map[string]http.Handler{"A": mock})
	req, err := http.NewRequest("POST", r.proxy.URL+"/v1/chat/completions", strings.NewReader(`{"model": "nope", "messages": []}`))
	require.NoError(t, err)
	req.Header.Set("Model-Override", "raw")
	resp, err := r.client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the header names the alias, over the body's model")
	seen := mock.Seen()
	require.Len(t, seen, 1)
	assert.Empty(t, seen[0].Header.Get("Model-Override"), "the header is not sent upstream")
}

func TestUnreachableUpstream(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // nothing listens there now: every connection is refused
	doc := strings.ReplaceAll(`{"targets": {
	  "chat":   {"strategy": "priority", "fallback": {"enabled": true, "on_status": [5]},
	             "providers": [{"url": "$DEAD"}, {"url": "$B"}]},
	  "strict": {"url": "$DEAD"}}}`, "$DEAD", deadURL)
	r := newRig(t, doc, map[string]http.Handler{"B": &MockUpstream{Name: "b"}})

	resp, err := r.openai("").Chat.Completions.New(ctxT(t), chatParams("chat"))
	require.NoError(t, err)
	assert.Equal(t, "Hello from b", resp.Choices[0].Message.Content, "a transport error moves on to the next provider")

	_, err = r.openai("").Chat.Completions.New(ctxT(t), chatParams("strict"))
	assertAPIError(t, err, http.StatusServiceUnavailable, "service_unavailable") // as onwards 0.18.3 and later
}

func TestProviderRateLimit(t *testing.T) {
	const doc = `{"targets": {
	  "chat":   {"strategy": "priority", "fallback": {"enabled": true, "on_rate_limit": true},
	             "providers": [{"url": "$A", "rate_limit": {"requests_per_second": 0.000001, "burst_size": 1}}, {"url": "$B"}]},
	  "strict": {"strategy": "priority", "fallback": {"enabled": true, "on_status": [5]},
	             "providers": [{"url": "$A", "onwards_key": "other", "rate_limit": {"requests_per_second": 0.000001, "burst_size": 1}}, {"url": "$B"}]}}}`
	r := newRig(t, doc, map[string]http.Handler{"A": &MockUpstream{Name: "a"}, "B": &MockUpstream{Name: "b"}})
	c := r.openai("")
	for _, want := range []string{"Hello from a", "Hello from b"} {
		resp, err := c.Chat.Completions.New(ctxT(t), chatParams("chat"))
		require.NoError(t, err)
		assert.Equal(t, want, resp.Choices[0].Message.Content, "the rate-limited provider is skipped once its burst is spent")
	}
	_, err := c.Chat.Completions.New(ctxT(t), chatParams("strict"))
	require.NoError(t, err)
	_, err = c.Chat.Completions.New(ctxT(t), chatParams("strict"))
	assertAPIError(t, err, http.StatusTooManyRequests, "rate_limit_exceeded") // no on_rate_limit: 429
}

// TestNilClientUnderRace serves concurrent requests through a Handler with
// no Client, as the proxy command runs it: the shared default client must be
// made once, with no data race.
func TestNilClientUnderRace(t *testing.T) {
	up := httptest.NewServer(&MockUpstream{Name: "up"})
	defer up.Close()
	cfg, err := pool.ParseConfig([]byte(`{"targets": {"chat": {"url": "` + up.URL + `/v1"}}}`))
	require.NoError(t, err)
	reg, err := pool.NewRegistry(cfg)
	require.NoError(t, err)
	proxy := httptest.NewServer(&gateway.Handler{Registry: reg})
	defer proxy.Close()
	c := openai.NewClient(option.WithBaseURL(proxy.URL+"/v1/"), option.WithMaxRetries(0))
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Chat.Completions.New(ctxT(t), chatParams("chat"))
			if assert.NoError(t, err) {
				assert.Equal(t, "Hello from up", resp.Choices[0].Message.Content)
			}
		}()
	}
	wg.Wait()
}

func TestUsageLines(t *testing.T) {
	var out strings.Builder
	printUsage(&out, "127.0.0.1:3000", []string{"gpt-4o", "mini"}, false)
	assert.Contains(t, out.String(), `"model": "gpt-4o"`, "the config's first alias")
	assert.NotContains(t, out.String(), "demo")
	assert.NotContains(t, out.String(), "sk-")
	assert.Contains(t, out.String(), "Ctrl-C")

	out.Reset()
	printUsage(&out, "127.0.0.1:8080", []string{"demo", "demo-keyed"}, true)
	assert.Contains(t, out.String(), "Bearer sk-demo", "the demo's own key")
}

// syncBuffer is a log sink safe for the watcher's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLenientReloadLogsWarnings(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"targets": {"a": {"url": "https://a.example.com"}}}`), 0o600))
	lenient := pool.ParseOptions{AllowUnknownFields: true}
	cfg, err := lenient.Load(path)
	require.NoError(t, err)
	reg, err := pool.NewRegistry(cfg)
	require.NoError(t, err)

	leakOpts := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); goleak.VerifyNone(t, leakOpts) }()
	var logs syncBuffer
	reloaded := make(chan error, 10)
	require.NoError(t, watchConfig(ctx, path, lenient, reg, slog.New(slog.NewTextHandler(&logs, nil)), reloaded))

	tmp := filepath.Join(dir, "next.json")
	require.NoError(t, os.WriteFile(tmp, []byte(`{"targets": {"a": {"url": "https://a.example.com", "colour": "red"}, "b": {"providers": []}}}`), 0o600))
	require.NoError(t, os.Rename(tmp, path))
	// Each reload logs before it reports, so once a report shows the new
	// aliases, that reload's warnings are in the log.
	for done := false; !done; {
		select {
		case err := <-reloaded:
			require.NoError(t, err)
			done = len(reg.Aliases()) == 2
		case <-time.After(testTimeout):
			t.Fatal("no reload")
		}
	}
	for _, want := range []string{`unknown field \"colour\"`, `place="targets[\"b\"].providers"`, `no providers`} {
		assert.Contains(t, logs.String(), want)
	}
}
