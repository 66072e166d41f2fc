package gateway

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/onwardsgo/pool/internal/fakeclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRetryAfterCoolsAProviderDown(t *testing.T) {
	t.Parallel()
	busy := &recorder{status: 429, header: map[string]string{"Retry-After": "30"}}
	good := &recorder{}
	clock := fakeclock.New()
	r := newRigClock(t, `{"targets": {"a": {"strategy": "priority", "outlier_detection": {},
		"fallback": {"enabled": true, "on_status": [429]},
		"providers": [{"url": "$BUSY"}, {"url": "$GOOD"}]}}}`, map[string]http.Handler{"BUSY": busy, "GOOD": good}, clock)
	for range 10 {
		require.Equal(t, http.StatusOK, r.chat("a").status)
	}
	assert.Len(t, busy.calls(), 1, "cooling for 30 s after its 429")
	assert.Len(t, good.calls(), 10)
	clock.Advance(30 * time.Second)
	r.chat("a")
	assert.Len(t, busy.calls(), 2, "back after 30 s")
}

func TestOutlierEjectionThroughTheGateway(t *testing.T) {
	t.Parallel()
	bad := &recorder{status: 503}
	good := &recorder{}
	clock := fakeclock.New()
	// Priority puts the failing provider first, so that it fails three
	// times in a row on every run.
	r := newRigClock(t, `{"targets": {"a": {"strategy": "priority", "outlier_detection": {"consecutive_failures": 3},
		"fallback": {"enabled": true, "on_status": [5]},
		"providers": [{"url": "$BAD"}, {"url": "$GOOD"}]}}}`, map[string]http.Handler{"BAD": bad, "GOOD": good}, clock)
	for range 30 {
		require.Equal(t, http.StatusOK, r.chat("a").status)
	}
	assert.LessOrEqual(t, len(bad.calls()), 3, "ejected after its third failure in a row")

	clock.Advance(30 * time.Second) // half-open: one probe, which fails
	before := len(bad.calls())
	for range 10 {
		require.Equal(t, http.StatusOK, r.chat("a").status)
	}
	assert.Equal(t, before+1, len(bad.calls()), "one probe, then ejected again")
}

func TestPanicModeIsRecorded(t *testing.T) {
	t.Parallel()
	busy := &recorder{status: 503, header: map[string]string{"Retry-After": "60"}}
	r := newRigClock(t, `{"targets": {"a": {"outlier_detection": {}, "providers": [{"url": "$BUSY"}]}}}`,
		map[string]http.Handler{"BUSY": busy}, fakeclock.New())
	r.chat("a")
	a := r.chat("a")
	assert.Equal(t, http.StatusServiceUnavailable, a.status)
	tries := r.tries()
	require.Len(t, tries, 2)
	assert.False(t, tries[0].Panic)
	assert.True(t, tries[1].Panic, "its only provider cools down: used anyway, and said so")
}

func TestBackoffBetweenAttempts(t *testing.T) {
	t.Parallel()
	bad := &recorder{status: 503}
	clock := fakeclock.New()
	r := newRigClock(t, `{"targets": {"a": {"strategy": "priority",
		"fallback": {"enabled": true, "on_status": [5], "max_attempts": 4,
		             "backoff": {"initial_ms": 200, "factor": 2, "jitter": "none"}},
		"providers": [{"url": "$BAD"}, {"url": "$BAD"}]}}}`, map[string]http.Handler{"BAD": bad}, clock)
	done := make(chan answer)
	go func() { done <- r.chat("a") }()
	for i, want := range []time.Duration{200, 400, 800} {
		clock.BlockUntil(1)
		assert.Equal(t, []time.Duration{want * time.Millisecond}, clock.Pending(), "wait %d", i+1)
		assert.Len(t, bad.calls(), i+1, "the wait comes after the attempt")
		p, _ := r.reg.Pool("a")
		for _, pr := range p.Providers() {
			assert.Zero(t, pr.ActiveConnections(), "no slot is held while waiting")
		}
		clock.Advance(want * time.Millisecond)
	}
	a := <-done
	assert.Equal(t, http.StatusServiceUnavailable, a.status)
	assert.Len(t, bad.calls(), 4)
	assert.Zero(t, clock.Timers(), "no wait after the last attempt")
	tries := r.tries()
	require.Len(t, tries, 4)
	assert.Equal(t, 800*time.Millisecond, tries[2].Backoff)
	assert.Zero(t, tries[3].Backoff)
}

func TestBackoffNeverWaitsPastTheDeadline(t *testing.T) {
	t.Parallel()
	bad := &recorder{status: 503}
	clock := fakeclock.At(time.Now())
	r := newRigClock(t, `{"targets": {"a": {"strategy": "priority",
		"fallback": {"enabled": true, "on_status": [5], "max_attempts": 3,
		             "backoff": {"initial_ms": 600000, "max_ms": 600000, "jitter": "none"}},
		"providers": [{"url": "$BAD"}, {"url": "$BAD"}]}}}`, map[string]http.Handler{"BAD": bad}, clock)
	// A server that gives each request 10 minutes less than the backoff.
	r.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), 5*time.Minute)
		defer cancel()
		r.h.ServeHTTP(w, req.WithContext(ctx))
	})
	a := r.chat("a")
	assert.Equal(t, http.StatusServiceUnavailable, a.status, "the last answer, at once")
	assert.Len(t, bad.calls(), 1)
	assert.Zero(t, clock.Timers())
}

func TestRetryAfterParsing(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		header, value string
		want          time.Duration
		ok            bool
	}{
		{"Retry-After", "30", 30 * time.Second, true},
		{"Retry-After", "Thu, 01 Jan 2026 00:01:00 GMT", time.Minute, true},
		{"Retry-After", "Wed, 31 Dec 2025 23:00:00 GMT", 0, false},
		{"Retry-After", "0", 0, false},
		{"Retry-After", "-5", 0, false},
		{"Retry-After", "soon", 0, false},
		{"Retry-After-Ms", "1500", 1500 * time.Millisecond, true},
		{"Retry-After-Ms", "2.5", 2500 * time.Microsecond, true},
	} {
		h := http.Header{}
		h.Set(tc.header, tc.value)
		got, ok := RetryAfter(h, now)
		assert.Equal(t, tc.ok, ok, "%s: %s", tc.header, tc.value)
		assert.Equal(t, tc.want, got, "%s: %s", tc.header, tc.value)
	}
}
