package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/onwardsgo/pool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// errorBody is OpenAI's error JSON.
type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    any     `json:"code"`
	} `json:"error"`
}

// openAIError decodes an error answer, failing the test if it is not one.
func openAIError(t *testing.T, a answer) errorBody {
	t.Helper()
	var e errorBody
	require.NoError(t, json.Unmarshal([]byte(a.body), &e), "not an OpenAI error: %s", a.body)
	require.NotEmpty(t, e.Error.Message, "not an OpenAI error: %s", a.body)
	assert.Equal(t, "application/json", a.header.Get("Content-Type"))
	return e
}

func TestModels(t *testing.T) {
	t.Parallel()
	r := newRig(t, `{"targets": {"b": {"url": "https://b.example.com"}, "org/a": {"url": "https://a.example.com"}}}`, nil)

	a := r.do(http.MethodGet, "/v1/models", "")
	require.Equal(t, http.StatusOK, a.status)
	var list struct {
		Object string `json:"object"`
		Data   []struct{ ID, Object string }
	}
	require.NoError(t, json.Unmarshal([]byte(a.body), &list))
	assert.Equal(t, "list", list.Object)
	require.Len(t, list.Data, 2)
	assert.Equal(t, "b", list.Data[0].ID)
	assert.Equal(t, "org/a", list.Data[1].ID)

	a = r.do(http.MethodGet, "/v1/models/org/a", "")
	require.Equal(t, http.StatusOK, a.status, a.body)
	assert.JSONEq(t, `{"id":"org/a","object":"model","created":0,"owned_by":"onwards"}`, a.body)

	a = r.do(http.MethodGet, "/v1/models/nope", "")
	require.Equal(t, http.StatusNotFound, a.status)
	e := openAIError(t, a)
	assert.Equal(t, "model_not_found", e.Error.Code)
}

func TestModelFromBodyOrHeader(t *testing.T) {
	t.Parallel()
	a, b := &recorder{}, &recorder{}
	r := newRig(t, `{"targets": {"a": {"url": "$A"}, "b": {"url": "$B"}}}`, map[string]http.Handler{"A": a, "B": b})

	require.Equal(t, http.StatusOK, r.chat("a").status)
	require.Equal(t, http.StatusOK, r.chat("a", "Model-Override", "b").status)
	// With Model-Override, a body that is not JSON (an audio upload, say)
	// is forwarded as it is.
	require.Equal(t, http.StatusOK, r.post("/v1/audio/transcriptions", "RIFF....", "Model-Override", "b").status)

	assert.Len(t, a.calls(), 1)
	require.Len(t, b.calls(), 2)
	assert.Empty(t, b.calls()[0].header.Get("Model-Override"), "Model-Override is not forwarded")
	assert.Equal(t, "RIFF....", b.calls()[1].body)
}

// With a provider model to rewrite to, a JSON body gets it, with the rest
// of the body as the client sent it, and a body that is not JSON is still
// forwarded as it is.
func TestUpstreamModelRewritesTheBody(t *testing.T) {
	t.Parallel()
	up := &recorder{}
	r := newRig(t, `{"targets": {"a": {"url": "$A", "onwards_model": "provider-model"}}}`, map[string]http.Handler{"A": up})

	require.Equal(t, http.StatusOK, r.post("/v1/chat/completions", `{"model": "a", "messages": [{"role": "user", "content": "Hi"}]}`).status)
	require.Equal(t, http.StatusOK, r.post("/v1/audio/transcriptions", "RIFF....", "Model-Override", "a").status)
	require.Equal(t, http.StatusOK, r.post("/v1/embeddings", `{"input": "x"}`, "Model-Override", "a").status)

	calls := up.calls()
	require.Len(t, calls, 3)
	assert.Equal(t, `{"model": "provider-model", "messages": [{"role": "user", "content": "Hi"}]}`, calls[0].body)
	assert.Equal(t, "RIFF....", calls[1].body)
	assert.Equal(t, `{"model":"provider-model","input": "x"}`, calls[2].body, "a body without a model gets one")
}

func TestBadRequestBodies(t *testing.T) {
	t.Parallel()
	up := &recorder{}
	r := newRig(t, `{"targets": {"a": {"url": "$A"}}}`, map[string]http.Handler{"A": up})
	for _, tc := range []struct {
		body, code string
		status     int
	}{
		{`{"model": "a", `, "invalid_json", 400},
		{`not json`, "invalid_json", 400},
		{`["a"]`, "invalid_json", 400},
		{`{"model": 7}`, "invalid_type", 400},
		{`{"messages": []}`, "missing_model", 400},
		{``, "missing_model", 400},
		{`{"model": "zzz"}`, "model_not_found", 404},
	} {
		a := r.post("/v1/chat/completions", tc.body)
		assert.Equal(t, tc.status, a.status, "body %q", tc.body)
		assert.Equal(t, tc.code, openAIError(t, a).Error.Code, "body %q", tc.body)
	}
	assert.Empty(t, up.calls(), "no bad request reaches the upstream")

	r.h.MaxBodyBytes = 16
	a := r.post("/v1/chat/completions", `{"model": "a", "messages": []}`)
	assert.Equal(t, http.StatusRequestEntityTooLarge, a.status)
	assert.Equal(t, "request_too_large", openAIError(t, a).Error.Code)
}

func TestAdmissionThroughHandler(t *testing.T) {
	t.Parallel()
	up := &recorder{}
	r := newRig(t, `{
		"auth": {"key_definitions": {"batch": {"key": "sk-batch", "labels": {"tier": "batch"}}}},
		"targets": {
			"a": {"keys": ["sk-team", "batch"], "url": "$A",
			      "routing_rules": [{"match_labels": {"tier": "batch"}, "action": {"type": "deny"}}]},
			"b": {"keys": ["sk-team"], "url": "$A"}}}`, map[string]http.Handler{"A": up})

	assert.Equal(t, http.StatusUnauthorized, r.chat("a").status)
	assert.Equal(t, http.StatusForbidden, r.chat("a", "Authorization", "Bearer sk-wrong").status)
	assert.Equal(t, http.StatusForbidden, r.chat("a", "Authorization", "Bearer sk-batch").status, "the deny rule")
	assert.Equal(t, http.StatusOK, r.chat("a", "Authorization", "Bearer sk-team").status)
	assert.Equal(t, http.StatusOK, r.chat("b", "Authorization", "bearer sk-team").status, "the scheme is case-insensitive")
	assert.Len(t, up.calls(), 2)
}

func TestEveryLimit429CarriesRetryAfter(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("data: {}\n\n"))
		w.(http.Flusher).Flush()
		<-hold
	})
	r := newRig(t, `{
		"auth": {"key_definitions": {
			"slowkey": {"key": "sk-rate", "rate_limit": {"requests_per_second": 0.5, "burst_size": 1}}}},
		"targets": {
			"rate": {"url": "$A", "rate_limit": {"requests_per_second": 0.25, "burst_size": 1}},
			"keyed": {"url": "$A", "keys": ["slowkey"]},
			"conc": {"concurrency_limit": {"max_concurrent_requests": 1}, "providers": [{"url": "$SLOW"}]},
			"full": {"providers": [{"url": "$SLOW", "concurrency_limit": {"max_concurrent_requests": 1}}]},
			"prate": {"providers": [{"url": "$A", "rate_limit": {"requests_per_second": 0.1, "burst_size": 1}}]},
			"upstream429": {"url": "$TOO"}}}`,
		map[string]http.Handler{"A": &recorder{}, "SLOW": slow, "TOO": &recorder{status: 429}})

	require.Equal(t, http.StatusOK, r.chat("rate").status)
	a := r.chat("rate")
	require.Equal(t, http.StatusTooManyRequests, a.status)
	assert.Equal(t, "4", a.header.Get("Retry-After"), "the time until the next token at 0.25/s")

	require.Equal(t, http.StatusOK, r.chat("keyed", "Authorization", "Bearer sk-rate").status)
	a = r.chat("keyed", "Authorization", "Bearer sk-rate")
	require.Equal(t, http.StatusTooManyRequests, a.status)
	assert.Equal(t, "2", a.header.Get("Retry-After"))

	require.Equal(t, http.StatusOK, r.chat("prate").status)
	a = r.chat("prate")
	require.Equal(t, http.StatusTooManyRequests, a.status)
	assert.Equal(t, "rate_limit_exceeded", openAIError(t, a).Error.Code)
	assert.Equal(t, "10", a.header.Get("Retry-After"))

	for _, alias := range []string{"conc", "full"} {
		ctx := ctxT(t)
		resp, err := r.send(ctx, http.MethodPost, "/v1/chat/completions", `{"model":"`+alias+`"}`)
		require.NoError(t, err)
		buf := make([]byte, 4)
		_, err = resp.Body.Read(buf) // the stream has started: the slot is held
		require.NoError(t, err)
		a = r.chat(alias)
		require.Equal(t, http.StatusTooManyRequests, a.status, alias)
		assert.Equal(t, "concurrency_limit_exceeded", openAIError(t, a).Error.Code)
		assert.Equal(t, "1", a.header.Get("Retry-After"), alias)
		defer resp.Body.Close()
	}
	close(hold)

	a = r.chat("upstream429")
	require.Equal(t, http.StatusTooManyRequests, a.status)
	assert.Equal(t, "1", a.header.Get("Retry-After"), "an upstream 429 without Retry-After gets one")
}

func TestZeroHandler(t *testing.T) {
	t.Parallel()
	for _, h := range []*Handler{{}, {Registry: new(pool.Registry)}} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"model":"a"}`)))
		assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	}
}

// TestNilClientUnderRace serves concurrent requests with no Client set,
// the path of a real binary: the default client must be made once, with no
// data race.
func TestNilClientUnderRace(t *testing.T) {
	t.Parallel()
	up := &recorder{}
	r := newRig(t, `{"targets": {"a": {"url": "$A"}}}`, map[string]http.Handler{"A": up})
	r.h.Client, r.h.Transport = nil, nil
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.Equal(t, http.StatusOK, r.chat("a").status)
		}()
	}
	wg.Wait()
	assert.Len(t, up.calls(), 16)
	defaultClient().CloseIdleConnections()
}

func TestReadBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		body     io.Reader
		declared int64
		want     string
		err      bool
	}{
		{"as declared", strings.NewReader("hello"), 5, "hello", false},
		{"none declared", strings.NewReader("hello"), -1, "hello", false},
		{"declared 0", strings.NewReader("hello"), 0, "hello", false},
		{"more than declared: read on", strings.NewReader("hello"), 3, "hello", false},
		{"less than declared", strings.NewReader("hello"), 8, "", true},
		{"a byte at a time", iotest.OneByteReader(strings.NewReader("hello")), 5, "hello", false},
		{"data with its EOF", iotest.DataErrReader(strings.NewReader("hello")), 5, "hello", false},
		{"broken", io.MultiReader(strings.NewReader("he"), iotest.ErrReader(errors.New("reset"))), 5, "", true},
	} {
		got, err := readBody(tc.body, tc.declared, 100)
		if tc.err {
			assert.Error(t, err, tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.want, string(got), tc.name)
	}
	// Declared past the limit: the limit's reader says so.
	_, err := readBody(http.MaxBytesReader(nil, io.NopCloser(strings.NewReader("hello")), 3), 5, 3)
	var tooBig *http.MaxBytesError
	assert.ErrorAs(t, err, &tooBig)
}
