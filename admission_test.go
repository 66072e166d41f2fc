package pool

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// admissionConfig exercises every admission step. Rates are so low that no
// token is refilled during a test: exactly the burst is allowed.
const admissionConfig = `{
  "auth": {"key_definitions": {
    "batch":   {"key": "sk-batch", "labels": {"purpose": "batch"}},
    "blocked": {"key": "sk-blocked", "labels": {"tier": "blocked"}},
    "slow":    {"key": "sk-slow", "rate_limit": {"requests_per_second": 0.000001, "burst_size": 2}},
    "narrow":  {"key": "sk-narrow", "concurrency_limit": {"max_concurrent_requests": 1}}
  }},
  "targets": {
    "open": {"url": "https://open.example.com"},
    "main": {
      "keys": ["sk-team", "sk-batch", "sk-blocked", "sk-slow", "sk-narrow"],
      "routing_rules": [
        {"match_labels": {"tier": "blocked"}, "action": {"type": "deny"}},
        {"match_labels": {"purpose": "batch"}, "action": {"type": "redirect", "target": "cheap"}}
      ],
      "providers": [{"url": "https://main.example.com"}]
    },
    "cheap": {"keys": ["sk-other"], "url": "https://cheap.example.com",
              "routing_rules": [{"match_labels": {"purpose": "batch"}, "action": {"type": "deny"}}]},
    "limited-rate": {"rate_limit": {"requests_per_second": 0.000001, "burst_size": 1}, "providers": [{"url": "https://r.example.com"}]},
    "limited-conc": {"concurrency_limit": {"max_concurrent_requests": 1}, "providers": [{"url": "https://c.example.com"}]}
  }
}`

func newAdmissionRegistry(t *testing.T) *Registry {
	t.Helper()
	r, err := NewRegistry(mustParse(t, admissionConfig))
	require.NoError(t, err)
	return r
}

// refusal asserts that err is an *AdmissionError with status and code.
func refusal(t *testing.T, adm *Admission, err error, status int, code string) *AdmissionError {
	t.Helper()
	assert.Nil(t, adm)
	var ae *AdmissionError
	require.True(t, errors.As(err, &ae), "want *AdmissionError, got %v", err)
	assert.Equal(t, status, ae.Status)
	assert.Equal(t, code, ae.Code)
	assert.NotEmpty(t, ae.Message)
	if status == 429 {
		assert.Positive(t, ae.RetryAfter, "every 429 advises a wait")
	}
	return ae
}

func TestAdmitOutcomes(t *testing.T) {
	t.Parallel()
	r := newAdmissionRegistry(t)

	adm, err := r.Admit("nope", "sk-team")
	refusal(t, adm, err, http.StatusNotFound, "model_not_found")
	adm, err = r.Admit("", "sk-team")
	refusal(t, adm, err, http.StatusBadRequest, "missing_model")
	adm, err = r.Admit("main", "")
	refusal(t, adm, err, http.StatusUnauthorized, "invalid_api_key")
	adm, err = r.Admit("main", "sk-wrong")
	refusal(t, adm, err, http.StatusForbidden, "invalid_api_key")
	adm, err = r.Admit("main", "sk-blocked")
	refusal(t, adm, err, http.StatusForbidden, "access_denied")

	adm, err = r.Admit("main", "sk-team")
	require.NoError(t, err)
	assert.Equal(t, "main", adm.Alias)
	assert.Equal(t, "https://main.example.com/", adm.Pool.FirstTarget().URL.String())
	adm.Close()

	// A redirect continues with the other alias's pool; its own keys and
	// rules (which would refuse this key) are not evaluated again.
	adm, err = r.Admit("main", "sk-batch")
	require.NoError(t, err)
	assert.Equal(t, "cheap", adm.Alias)
	assert.Equal(t, "https://cheap.example.com/", adm.Pool.FirstTarget().URL.String())
	assert.Equal(t, map[string]string{"purpose": "batch"}, adm.Labels)
	adm.Close()

	// An alias without keys admits anyone, with or without a token.
	for _, token := range []string{"", "sk-anything", "sk-batch"} {
		adm, err = r.Admit("open", token)
		require.NoError(t, err, token)
		adm.Close()
	}
}

func TestAdmitPoolRateLimit(t *testing.T) {
	t.Parallel()
	r := newAdmissionRegistry(t)
	adm, err := r.Admit("limited-rate", "")
	require.NoError(t, err)
	adm.Close()
	adm, err = r.Admit("limited-rate", "")
	refusal(t, adm, err, http.StatusTooManyRequests, "rate_limit_exceeded")
}

func TestAdmitKeyRateLimit(t *testing.T) {
	t.Parallel()
	r := newAdmissionRegistry(t)
	// The key's limit is shared across aliases: burst 2 in all.
	adm, err := r.Admit("main", "sk-slow")
	require.NoError(t, err)
	adm.Close()
	adm, err = r.Admit("open", "sk-slow")
	require.NoError(t, err)
	adm.Close()
	adm, err = r.Admit("main", "sk-slow")
	refusal(t, adm, err, http.StatusTooManyRequests, "rate_limit_exceeded")
	adm, err = r.Admit("main", "sk-team")
	require.NoError(t, err, "other keys are not limited")
	adm.Close()
}

func TestAdmitPoolConcurrencyLimit(t *testing.T) {
	t.Parallel()
	r := newAdmissionRegistry(t)
	p, _ := r.Pool("limited-conc")
	held, err := r.Admit("limited-conc", "")
	require.NoError(t, err)
	assert.Equal(t, 1, p.ConcurrencyLimiter().Active())

	adm, err := r.Admit("limited-conc", "")
	refusal(t, adm, err, http.StatusTooManyRequests, "concurrency_limit_exceeded")

	require.NoError(t, held.Close())
	require.NoError(t, held.Close(), "a second close does nothing")
	assert.Equal(t, 0, p.ConcurrencyLimiter().Active())
	adm, err = r.Admit("limited-conc", "")
	require.NoError(t, err)
	adm.Close()
}

func TestAdmitKeyConcurrencyLimitReleasesPoolSlot(t *testing.T) {
	t.Parallel()
	r, err := NewRegistry(mustParse(t, `{
		"auth": {"key_definitions": {"narrow": {"key": "sk-narrow", "concurrency_limit": {"max_concurrent_requests": 1}}}},
		"targets": {"a": {"concurrency_limit": {"max_concurrent_requests": 5}, "providers": [{"url": "https://a.example.com"}]}}}`))
	require.NoError(t, err)
	p, _ := r.Pool("a")

	held, err := r.Admit("a", "sk-narrow")
	require.NoError(t, err)
	assert.Equal(t, 1, p.ConcurrencyLimiter().Active())

	adm, err := r.Admit("a", "sk-narrow")
	refusal(t, adm, err, http.StatusTooManyRequests, "concurrency_limit_exceeded")
	assert.Equal(t, 1, p.ConcurrencyLimiter().Active(), "the refusal released the pool slot it took")

	other, err := r.Admit("a", "sk-someone-else")
	require.NoError(t, err)
	assert.Equal(t, 2, p.ConcurrencyLimiter().Active())
	other.Close()
	held.Close()
	assert.Equal(t, 0, p.ConcurrencyLimiter().Active())
}

func TestZeroRegistry(t *testing.T) {
	t.Parallel()
	var r Registry
	adm, err := r.Admit("a", "")
	refusal(t, adm, err, http.StatusServiceUnavailable, "service_unavailable")
	_, ok := r.Pool("a")
	assert.False(t, ok)
	assert.Nil(t, r.Aliases())
	assert.Nil(t, r.Config())
	require.NoError(t, r.Reload(mustParse(t, `{"targets": {"a": {"url": "https://a.example.com"}}}`)))
	adm, err = r.Admit("a", "")
	require.NoError(t, err)
	var nilAdm *Admission
	assert.NoError(t, nilAdm.Close())
	adm.Close()
}

func TestAdmissionErrorServeHTTP(t *testing.T) {
	t.Parallel()
	r := newAdmissionRegistry(t)
	_, err := r.Admit("nope", "")
	var ae *AdmissionError
	require.True(t, errors.As(err, &ae))

	rec := httptest.NewRecorder()
	ae.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/chat/completions", nil))
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var body struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    string  `json:"code"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, "model_not_found", body.Error.Code)
	assert.Equal(t, "invalid_request_error", body.Error.Type)
	require.NotNil(t, body.Error.Param)
	assert.Equal(t, "model", *body.Error.Param)
	assert.Contains(t, body.Error.Message, `"nope"`)
	assert.Contains(t, ae.Error(), "404 model_not_found")

	rec = httptest.NewRecorder()
	(&AdmissionError{Status: 429, Code: "rate_limit_exceeded", Message: "slow down"}).ServeHTTP(rec, nil)
	assert.JSONEq(t, `{"error":{"message":"slow down","type":"","param":null,"code":"rate_limit_exceeded"}}`, rec.Body.String())
}

func TestAdmissionErrorsNeverShowKeys(t *testing.T) {
	t.Parallel()
	r := newAdmissionRegistry(t)
	for _, tc := range []struct{ alias, token string }{
		{"main", "sk-secret-wrong"}, {"main", "sk-blocked"}, {"nope", "sk-team"}, {"limited-conc", "sk-narrow"},
	} {
		adm, err := r.Admit(tc.alias, tc.token)
		if err == nil {
			adm.Close()
			continue
		}
		assert.NotContains(t, err.Error(), tc.token)
	}
}
