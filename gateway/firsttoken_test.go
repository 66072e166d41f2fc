package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/onwardsgo/pool/internal/fakeclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const streamBody = `{"model":"m","stream":true,"messages":[{"role":"user","content":"Hi"}]}`

// stalled is an upstream that sends the headers of a stream, and a
// keep-alive comment when comment is set, and then nothing until the
// request ends. arrived gets the time of each request.
type stalled struct {
	comment bool
	mu      sync.Mutex
	arrived []time.Time
}

func (s *stalled) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.arrived = append(s.arrived, time.Now())
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	if s.comment {
		fmt.Fprint(w, ": keep-alive\n\n")
	}
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

// streaming is an upstream that answers a stream at once, noting when.
type streaming struct {
	mu      sync.Mutex
	arrived []time.Time
}

func (s *streaming) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.arrived = append(s.arrived, time.Now())
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprint(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n")
}

func firstTokenDoc(strict bool, deadlineMs int) string {
	return fmt.Sprintf(`{"strict_mode": %v, "targets": {"m": {"strategy": "priority",
		"fallback": {"enabled": true, "on_status": [5], "first_token_timeout_ms": %d, "aimd": {"enabled": false}},
		"providers": [{"url": "$STALL"}, {"url": "$GOOD"}]}}}`, strict, deadlineMs)
}

func TestFirstTokenDeadlineFailsOverAStreamThatSendsOnlyComments(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	stall, good := &stalled{comment: true}, &streaming{}
	r := newRigClock(t, firstTokenDoc(true, 1000), map[string]http.Handler{"STALL": stall, "GOOD": good}, clock)
	done := make(chan answer)
	go func() { done <- r.post("/v1/chat/completions", streamBody) }()
	clock.BlockUntil(1)
	assert.Equal(t, []time.Duration{time.Second}, clock.Pending(), "the deadline, armed on the first attempt")
	clock.Advance(time.Second)
	a := <-done
	assert.Equal(t, http.StatusOK, a.status)
	assert.Contains(t, a.body, `"content":"Hi"`)
	assert.NotContains(t, a.body, "keep-alive", "nothing of the dropped upstream reached the client")
	tries := r.tries()
	require.Len(t, tries, 2)
	assert.True(t, errors.Is(tries[0].Err, ErrFirstTokenTimeout), "%v", tries[0].Err)
	assert.True(t, tries[0].FirstTokenTimedOut)
	assert.True(t, tries[0].FellBack)
	assert.False(t, tries[1].FirstTokenTimedOut)
	require.NotNil(t, tries[1].RescuedFrom, "a 2xx after a failover is a rescue")
	assert.True(t, tries[1].RescuedFrom.FirstTokenTimedOut)
	assert.Nil(t, tries[0].RescuedFrom)
	assert.Zero(t, clock.Timers(), "no deadline on the last attempt")
}

func TestFirstTokenDeadlineBoundsTheHeadersOutsideStrictMode(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	never := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	r := newRigClock(t, firstTokenDoc(false, 500), map[string]http.Handler{"STALL": never, "GOOD": &streaming{}}, clock)
	done := make(chan answer)
	go func() { done <- r.post("/v1/chat/completions", streamBody) }()
	clock.BlockUntil(1)
	clock.Advance(500 * time.Millisecond)
	a := <-done
	assert.Equal(t, http.StatusOK, a.status)
	require.Len(t, r.tries(), 2)
	assert.True(t, r.tries()[0].FirstTokenTimedOut)
}

func TestFirstTokenDeadlineCostsAtMostFiftyMillisecondsOverLoopback(t *testing.T) {
	t.Parallel()
	const deadline = 200 * time.Millisecond
	stall, good := &stalled{}, &streaming{}
	r := newRig(t, firstTokenDoc(true, int(deadline/time.Millisecond)), map[string]http.Handler{"STALL": stall, "GOOD": good})
	a := r.post("/v1/chat/completions", streamBody)
	require.Equal(t, http.StatusOK, a.status)
	require.Len(t, stall.arrived, 1)
	require.Len(t, good.arrived, 1)
	cost := good.arrived[0].Sub(stall.arrived[0])
	t.Logf("the stalled provider cost %v before the next attempt (deadline %v)", cost, deadline)
	assert.GreaterOrEqual(t, cost, deadline)
	assert.LessOrEqual(t, cost, deadline+50*time.Millisecond)
}

func TestFirstTokenDeadlineIsNotArmedWhereOnwardsDoesNotArmIt(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		body   string
		header []string
	}{
		"not a stream": {body: `{"model":"m","messages":[{"role":"user","content":"Hi"}]}`},
		"dispatched":   {body: streamBody, header: []string{"X-Batch", "1"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			clock := fakeclock.New()
			release := make(chan struct{})
			gate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				<-release
				(&streaming{}).ServeHTTP(w, r)
			})
			r := newRigClock(t, firstTokenDoc(true, 1000), map[string]http.Handler{"STALL": gate, "GOOD": &streaming{}}, clock)
			r.h.DispatchedHeader = "X-Batch"
			done := make(chan answer)
			go func() { done <- r.post("/v1/chat/completions", tc.body, tc.header...) }()
			require.Eventually(t, func() bool { return r.inFlight("m", 0) == 1 }, testTimeout, time.Millisecond)
			assert.Zero(t, clock.Timers(), "no deadline")
			close(release)
			assert.Equal(t, http.StatusOK, (<-done).status)
		})
	}
}

// inFlight returns the requests in flight on provider i of alias.
func (r *rig) inFlight(alias string, i int) int {
	p, _ := r.reg.Pool(alias)
	return p.Providers()[i].ActiveConnections()
}

func TestRealtimeOnStatusReroutesRealtimeButNotDispatchedTraffic(t *testing.T) {
	t.Parallel()
	overloaded := &recorder{status: 529, body: `{"error":{"message":"service over capacity"}}`}
	good := &recorder{status: 200, body: completion("m", "Hi")}
	r := newRig(t, `{"targets": {"m": {"strategy": "priority",
		"fallback": {"enabled": true, "on_status": [500], "realtime_on_status": [529]},
		"providers": [{"url": "$BUSY"}, {"url": "$GOOD"}]}}}`, map[string]http.Handler{"BUSY": overloaded, "GOOD": good})
	r.h.DispatchedHeader = "X-Batch"
	assert.Equal(t, http.StatusOK, r.chat("m").status, "realtime: 529 fails over")
	assert.Equal(t, 529, r.chat("m", "X-Batch", "yes").status, "dispatched: the upstream's answer")
	assert.Len(t, good.calls(), 1)
}

func TestInflightLimitThroughTheGateway(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	gate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, completion("m", "Hi"))
	})
	r := newRig(t, `{"auth": {"key_definitions": {
		"a1": {"key": "sk-acme-1", "labels": {"account": "acme"}},
		"a2": {"key": "sk-acme-2", "labels": {"account": "acme"}}}},
		"targets": {"m": {"inflight_limit": 1, "providers": [{"url": "$UP"}]}}}`, map[string]http.Handler{"UP": gate})
	done := make(chan answer)
	go func() { done <- r.chat("m", "Authorization", "Bearer sk-acme-1") }()
	require.Eventually(t, func() bool { return r.reg.InflightCount("m", "acme") == 1 }, testTimeout, time.Millisecond)
	refused := r.chat("m", "Authorization", "Bearer sk-acme-2")
	assert.Equal(t, http.StatusTooManyRequests, refused.status)
	assert.Contains(t, refused.body, "inflight_limit_exceeded")
	assert.Equal(t, "1", refused.header.Get("Retry-After"))
	close(release)
	assert.Equal(t, http.StatusOK, (<-done).status)
	assert.EqualValues(t, 0, r.reg.InflightCount("m", "acme"), "released at the body's end")
	assert.Equal(t, http.StatusOK, r.chat("m", "Authorization", "Bearer sk-acme-2").status)
}

func TestAIMDLearnsFromThePreferredProvidersStreams(t *testing.T) {
	t.Parallel()
	busy := &recorder{status: 529, body: `{"error":{"message":"over capacity"}}`}
	r := newRig(t, `{"strict_mode": true, "targets": {"m": {"strategy": "priority",
		"fallback": {"enabled": true, "on_status": [529]},
		"providers": [{"url": "$BUSY"}, {"url": "$GOOD"}]}}}`, map[string]http.Handler{"BUSY": busy, "GOOD": &streaming{}})
	for range 3 {
		require.Equal(t, http.StatusOK, r.post("/v1/chat/completions", streamBody).status)
	}
	r.chat("m") // not a stream: not observed
	p, _ := r.reg.Pool("m")
	s, ok := p.ShareSnapshot()
	require.True(t, ok)
	assert.Equal(t, 3, s.Samples, "three streams, each a breach of the preferred provider")
	assert.Equal(t, 1.0, s.BreachRate)
	assert.Zero(t, s.InFlight)
}
