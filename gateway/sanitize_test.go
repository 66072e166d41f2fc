package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/onwardsgo/pool/internal/fakeclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sseUpstream answers with a fixed event stream.
func sseUpstream(events string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.Header().Set("X-Provider-Cost", "0.25")
		w.Write([]byte(events))
	})
}

func TestSanitizeCompletion(t *testing.T) {
	t.Parallel()
	up := &recorder{header: map[string]string{"X-Provider-Cost": "0.25"}}
	r := newRig(t, `{"targets": {
		"clean": {"url": "$A", "onwards_model": "upstream-model", "sanitize_response": true},
		"raw": {"url": "$A"}}}`, map[string]http.Handler{"A": up})

	a := r.chat("clean")
	require.Equal(t, http.StatusOK, a.status)
	assert.JSONEq(t, `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"clean",
		"choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],
		"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`, a.body)
	assert.Equal(t, "0.25", a.header.Get("X-Provider-Cost"), "sanitize_response leaves headers alone (strict mode does not)")
	assert.Equal(t, len(a.body), atoi(t, a.header.Get("Content-Length")))

	a = r.chat("raw")
	assert.Contains(t, a.body, `"provider":"acme"`, "without sanitize_response the answer is as it came")
}

func atoi(t *testing.T, s string) int {
	var n int
	require.NoError(t, json.Unmarshal([]byte(s), &n), "not a number: %q", s)
	return n
}

func TestSanitizeStream(t *testing.T) {
	t.Parallel()
	events := ": comment from the provider\n" +
		chunk("upstream-model", "one") +
		"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\n" + // one event, its JSON split over two data lines
		"data: \"model\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"two\"}}]}\n\n" +
		"data: {\"id\":\"c2\",\"choices\":[],\"error\":{\"code\":429,\"message\":\"upstream of upstream said slow down\",\"metadata\":{\"raw\":\"x\"}}}\n\n" +
		"data: {\"choices\":[], \"error\": null}\n\n" +
		"data: [DONE]\n\n"
	clock := fakeclock.New()
	r := newRigClock(t, `{"targets": {"a": {"url": "$S", "sanitize_response": true}}}`,
		map[string]http.Handler{"S": sseUpstream(events)}, clock)
	a := r.post("/v1/chat/completions", `{"model":"a","stream":true}`)
	require.Equal(t, http.StatusOK, a.status)
	got := strings.Split(strings.TrimSuffix(a.body, "\n\n"), "\n\n")
	require.Len(t, got, 5, a.body)
	assert.Equal(t, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"a","choices":[{"index":0,"delta":{"content":"one"},"finish_reason":null}]}`, got[0])
	assert.Equal(t, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"a","choices":[{"index":0,"delta":{"content":"two"},"finish_reason":null}]}`, got[1],
		"the data lines of one event are one JSON value")
	assert.Equal(t, `data: {"error":{"code":429,"message":"upstream of upstream said slow down","metadata":{"raw":"x"}}}`, got[2],
		"an embedded error is forwarded verbatim, without the chunk around it")
	assert.Contains(t, got[3], `"model":"a"`, "error: null is no error")
	assert.Contains(t, got[3], fmt.Sprintf(`"created":%d,`, clock.Now().Unix()), "a chunk without created is stamped on the pool's clock")
	assert.Equal(t, "data: [DONE]", got[4])
	assert.NotContains(t, a.body, "comment")
}

func TestSanitizeUpstreamErrors(t *testing.T) {
	t.Parallel()
	r := newRig(t, `{"targets": {
		"e4": {"url": "$E4", "sanitize_response": true},
		"e5": {"url": "$E5", "sanitize_response": true},
		"emb": {"url": "$E5", "sanitize_response": true}}}`, map[string]http.Handler{
		"E4": &recorder{status: 422, body: `{"error":{"message":"model vendor-x at 10.1.2.3 rejects"}}`},
		"E5": &recorder{status: 500, body: `Traceback (most recent call last): ...`},
	})
	a := r.chat("e4")
	require.Equal(t, 422, a.status)
	e := openAIError(t, a)
	assert.Equal(t, "upstream_error", e.Error.Code)
	assert.Equal(t, "The upstream provider rejected the request.", e.Error.Message)

	a = r.chat("e5")
	require.Equal(t, 500, a.status)
	assert.Equal(t, "internal_error", openAIError(t, a).Error.Code)
	assert.NotContains(t, a.body, "Traceback")

	a = r.post("/v1/embeddings", `{"model":"emb","input":"x"}`)
	assert.Contains(t, a.body, "Traceback", "sanitize_response covers chat completions only, as in onwards")
}

func TestSanitizeFailsClosed(t *testing.T) {
	t.Parallel()
	r := newRig(t, `{"targets": {
		"body": {"url": "$BAD", "sanitize_response": true},
		"stream": {"url": "$CHUNKS", "sanitize_response": true}}}`, map[string]http.Handler{
		"BAD":    &recorder{body: `{"secret_debug": "db at 10.0.0.9", "choices": "nope"}`},
		"CHUNKS": sseUpstream(chunk("m", "ok") + "data: {not json at 10.0.0.9}\n\n" + chunk("m", "never")),
	})
	a := r.chat("body")
	require.Equal(t, http.StatusBadGateway, a.status)
	assert.NotContains(t, a.body, "10.0.0.9")
	assert.ErrorIs(t, r.tries()[0].Err, ErrMalformedResponse)

	a = r.post("/v1/chat/completions", `{"model":"stream","stream":true}`)
	require.Equal(t, http.StatusOK, a.status, "the stream had started")
	assert.Contains(t, a.body, `"content":"ok"`)
	assert.Contains(t, a.body, `data: {"error":{"message":`)
	assert.NotContains(t, a.body, "10.0.0.9")
	assert.NotContains(t, a.body, "never", "the stream ends at the malformed event")
}

func TestSanitizeBodyUnits(t *testing.T) {
	t.Parallel()
	out, err := sanitizeBody("/v1/chat/completions", []byte(`{"choices":[{"message":{"content":"x"}}]}`), "alias", 1767225600)
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(out, &c))
	assert.Equal(t, "chatcmpl-unknown", c["id"], "onwards' default id")
	assert.Equal(t, "chat.completion", c["object"])
	assert.Equal(t, 1767225600.0, c["created"], "stamped with the time given")

	_, err = sanitizeBody("/v1/chat/completions", []byte(`{"model":"m"}`), "alias", 1)
	assert.ErrorIs(t, err, errNoChoices)

	out, err = sanitizeBody("/v1/embeddings", []byte(`{"data":[{"embedding":[0.5],"index":0,"extra":1}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1,"cost":3}}`), "e", 1)
	require.NoError(t, err)
	assert.JSONEq(t, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":"e","usage":{"prompt_tokens":1,"total_tokens":1}}`, string(out))

	out, err = sanitizeBody("/v1/responses", []byte(`{"id":"resp_1","object":"response","model":"m","output":[],"provider":"x"}`), "r", 1)
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":"resp_1","object":"response","model":"r","output":[]}`, string(out))
}

func TestEmbeddedStatus(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]int{
		`429`: 429, `"429"`: 429, `"rate_limit"`: 429, `"rate_limit_error"`: 429, `"rate_limit_exceeded"`: 429,
		`"overloaded"`: 500, `null`: 500, `42`: 500, `503`: 503,
	} {
		assert.Equal(t, want, embeddedStatus(json.RawMessage(code)), code)
	}
}
