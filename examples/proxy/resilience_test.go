package main

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// failing is an upstream that answers every request with one status and
// headers, and counts them.
type failing struct {
	status int
	header map[string]string
	calls  atomic.Int64
}

func (f *failing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	drain(r)
	f.calls.Add(1)
	for k, v := range f.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.status)
	w.Write([]byte(`{"error": {"message": "upstream says no", "type": "server_error"}}`))
}

func TestOutlierEjectionThroughProxy(t *testing.T) {
	bad := &failing{status: http.StatusServiceUnavailable}
	r := newRig(t, `{"targets": {"chat": {
		"outlier_detection": {"consecutive_failures": 3},
		"fallback": {"enabled": true, "on_status": [5]},
		"providers": [{"url": "$BAD"}, {"url": "$GOOD"}]}}}`,
		map[string]http.Handler{"BAD": bad, "GOOD": &MockUpstream{Name: "good"}})
	c := r.openai("")
	for range 30 {
		resp, err := c.Chat.Completions.New(ctxT(t), chatParams("chat"))
		require.NoError(t, err)
		assert.Equal(t, "Hello from good", resp.Choices[0].Message.Content)
	}
	assert.LessOrEqual(t, bad.calls.Load(), int64(4), "at most 4 of 30 requests reach the failing provider")
}

func TestRetryAfterThroughProxy(t *testing.T) {
	busy := &failing{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "30"}}
	r := newRig(t, `{"targets": {"chat": {"strategy": "priority",
		"outlier_detection": {},
		"fallback": {"enabled": true, "on_status": [429]},
		"providers": [{"url": "$BUSY"}, {"url": "$GOOD"}]}}}`,
		map[string]http.Handler{"BUSY": busy, "GOOD": &MockUpstream{Name: "good"}})
	c := r.openai("")
	for range 10 {
		_, err := c.Chat.Completions.New(ctxT(t), chatParams("chat"))
		require.NoError(t, err)
	}
	assert.Equal(t, int64(1), busy.calls.Load(), "1 of 10 requests reaches the provider that asked for 30 s")
}

func TestBackoffThroughProxy(t *testing.T) {
	bad := &failing{status: http.StatusServiceUnavailable}
	r := newRig(t, `{"targets": {"chat": {"strategy": "priority",
		"fallback": {"enabled": true, "on_status": [5], "max_attempts": 4,
		             "backoff": {"initial_ms": 200, "factor": 2, "jitter": "none"}},
		"providers": [{"url": "$A"}, {"url": "$B"}]}}}`,
		map[string]http.Handler{"A": bad, "B": bad})
	start := time.Now()
	_, err := r.openai("").Chat.Completions.New(ctxT(t), chatParams("chat"))
	elapsed := time.Since(start)
	assertAPIError(t, err, http.StatusServiceUnavailable, "")
	assert.Equal(t, int64(4), bad.calls.Load(), "4 attempts")
	// 200 + 400 + 800 ms of waits: the lower bound is certain; the upper
	// one is left out, since a loaded machine may take longer.
	assert.GreaterOrEqual(t, elapsed, 1400*time.Millisecond)
	t.Logf("4 attempts with backoff took %v", elapsed)
}
