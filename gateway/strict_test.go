package gateway

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const strictDoc = `{"strict_mode": true, "targets": {
	"ok": {"url": "$OK"},
	"sse": {"url": "$SSE"},
	"sse-trusted": {"url": "$SSE", "trusted": true},
	"e401": {"url": "$E401"},
	"e401-trusted": {"trusted": false, "providers": [{"url": "$E401", "trusted": true}]},
	"e402": {"url": "$E402"}, "e403": {"url": "$E403"}, "e451": {"url": "$E451"}, "e408": {"url": "$E408"},
	"e400": {"url": "$E400"}, "e404": {"url": "$E404"}, "e429": {"url": "$E429"}, "e500": {"url": "$E500"}}}`

func strictRig(t *testing.T) (*rig, *recorder) {
	ok := &recorder{header: map[string]string{"X-Provider-Trace": "t-1", "Server": "vendor/1.2"}}
	ups := map[string]http.Handler{"OK": ok, "SSE": sseUpstream(chunk("m", "hi") +
		`data: {"choices":[],"error":{"code":"401","message":"key sk-live-123 revoked for acct 77"}}` + "\n\ndata: [DONE]\n\n")}
	for _, s := range []int{400, 401, 402, 403, 404, 408, 429, 451, 500} {
		ups["E"+strconv.Itoa(s)] = &recorder{status: s, body: `{"error":{"message":"vendor internal: acct 77 at 10.9.9.9"}}`}
	}
	return newRig(t, strictDoc, ups), ok
}

func TestStrictServesOnlyItsPaths(t *testing.T) {
	t.Parallel()
	r, ok := strictRig(t)
	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "/v1/completions"},
		{http.MethodPost, "/v1/audio/speech"},
		{http.MethodGet, "/v1/chat/completions"},
		{http.MethodPost, "/v2/chat/completions"},
	} {
		a := r.do(tc.method, tc.path, `{"model":"ok","prompt":"x"}`)
		assert.Equal(t, http.StatusNotFound, a.status, "%s %s", tc.method, tc.path)
		openAIError(t, a)
	}
	assert.Equal(t, http.StatusOK, r.do(http.MethodGet, "/v1/models", "").status)
	assert.Empty(t, ok.calls())
}

func TestStrictValidatesBeforeAnyUpstream(t *testing.T) {
	t.Parallel()
	r, ok := strictRig(t)
	for _, tc := range []struct{ path, body, param string }{
		{"/v1/chat/completions", `{"model":"ok","messages":"Hi"}`, "messages"},
		{"/v1/chat/completions", `{"model":"ok"}`, "messages"},
		{"/v1/chat/completions", `{"model":"ok","messages":[]}`, "messages"},
		{"/v1/chat/completions", `{"model":"ok","messages":[{"content":"Hi"}]}`, "messages[0].role"},
		{"/v1/chat/completions", `{"model":"ok","messages":[{"role":"user","content":7}]}`, "messages[0].content"},
		{"/v1/chat/completions", `{"model":"ok","messages":[{"role":"user","content":"x"}],"temperature":"hot"}`, "temperature"},
		{"/v1/chat/completions", `{"model":"ok","messages":[{"role":"user","content":"x"}],"n":-1}`, "n"},
		{"/v1/chat/completions", `{"model":"ok","messages":[{"role":"user","content":"x"}],"stop":5}`, "stop"},
		{"/v1/embeddings", `{"model":"ok"}`, "input"},
		{"/v1/embeddings", `{"model":"ok","input":{}}`, "input"},
		{"/v1/responses", `{"model":"ok","input":"x","stream":true}`, "stream"},
		{"/v1/responses", `{"input":"x"}`, "model"},
	} {
		a := r.post(tc.path, tc.body)
		require.Equal(t, http.StatusBadRequest, a.status, tc.body)
		e := openAIError(t, a)
		require.NotNil(t, e.Error.Param, tc.body)
		assert.Equal(t, tc.param, *e.Error.Param, tc.body)
		assert.Equal(t, "invalid_request_error", e.Error.Type)
	}
	assert.Empty(t, ok.calls(), "no invalid request reaches an upstream")

	require.Equal(t, http.StatusOK, r.chat("ok").status)
	require.Equal(t, http.StatusOK, r.post("/v1/chat/completions",
		`{"model":"ok","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"vendor_extra":1}`).status,
		"unknown fields pass, as in onwards")
	assert.Len(t, ok.calls(), 2)
}

func TestStrictSanitizes(t *testing.T) {
	t.Parallel()
	r, _ := strictRig(t)
	a := r.chat("ok")
	require.Equal(t, http.StatusOK, a.status)
	assert.NotContains(t, a.body, "acme")
	assert.Contains(t, a.body, `"model":"ok"`)
	assert.Empty(t, a.header.Get("X-Provider-Trace"), "strict mode drops provider headers")
	assert.Empty(t, a.header.Get("Server"))

	a = r.post("/v1/chat/completions", `{"model":"sse","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, http.StatusOK, a.status)
	assert.Contains(t, a.body, `"content":"hi"`)
	assert.Contains(t, a.body, `data: {"error":{"code":502,"message":"Bad gateway","param":null,"type":"api_error"}}`,
		"an untrusted embedded 401 is masked to 502, its prose replaced")
	assert.NotContains(t, a.body, "sk-live-123")

	a = r.post("/v1/chat/completions", `{"model":"sse-trusted","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	assert.Contains(t, a.body, `data: {"error":{"code":"401","message":"key sk-live-123 revoked for acct 77"}}`,
		"a trusted provider's embedded error passes verbatim")
}

func TestStrictStandardizesErrors(t *testing.T) {
	t.Parallel()
	r, _ := strictRig(t)
	for alias, want := range map[string]struct {
		status int
		typ    string
	}{
		"e400": {400, "invalid_request_error"}, "e404": {404, "not_found_error"}, "e429": {429, "rate_limit_error"},
		"e500": {500, "api_error"},
		"e401": {502, "api_error"}, "e402": {502, "api_error"}, "e403": {502, "api_error"}, "e451": {502, "api_error"},
		"e408": {504, "api_error"},
	} {
		a := r.chat(alias)
		require.Equal(t, want.status, a.status, alias)
		e := openAIError(t, a)
		assert.Equal(t, want.typ, e.Error.Type, alias)
		assert.NotContains(t, a.body, "acct 77", alias)
	}
	a := r.chat("e401-trusted")
	assert.Equal(t, 401, a.status, "the provider's own trusted overrides the pool's")
	assert.Contains(t, a.body, "acct 77", "a trusted provider's errors pass as they came")
}
