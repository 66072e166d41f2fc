package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/onwardsgo/pool"
	"github.com/onwardsgo/pool/internal/fakeclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEstimateTokens(t *testing.T) {
	t.Parallel()
	body := `{"model":"a","max_tokens":100,"messages":[]}` // 44 bytes: 11 tokens of prompt
	assert.EqualValues(t, 11+100, EstimateTokens("/v1/chat/completions", []byte(body)))
	both := `{"max_completion_tokens":7,"max_tokens":100,"model":"a"}`
	assert.EqualValues(t, (len(both)+3)/4+7, EstimateTokens("/v1/chat/completions", []byte(both)), "max_completion_tokens wins")
	none := `{"model":"a"}`
	assert.EqualValues(t, 4+DefaultCompletionEstimate, EstimateTokens("/v1/chat/completions", []byte(none)))
	assert.EqualValues(t, 4, EstimateTokens("/v1/embeddings", []byte(none)), "embeddings have no completion")
	bad := `{"model":"a","max_tokens":-5}`
	assert.EqualValues(t, (len(bad)+3)/4+DefaultCompletionEstimate, EstimateTokens("/v1/completions", []byte(bad)))
	assert.EqualValues(t, 2+DefaultCompletionEstimate, EstimateTokens("/v1/audio", []byte("RIFF....")), "a body that is not JSON")
}

func TestAskUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body, want string
		asked      bool
	}{
		{`{"model":"a"}`, `{"model":"a"}`, false},
		{`{"model":"a","stream":false}`, `{"model":"a","stream":false}`, false},
		{`{"model":"a","stream":true}`, `{"stream_options":{"include_usage":true},"model":"a","stream":true}`, true},
		{`{"stream":true,"stream_options":{"include_usage":true}}`, `{"stream":true,"stream_options":{"include_usage":true}}`, false},
		{`{"stream":true,"stream_options":{"include_usage":false}}`, `{"stream":true,"stream_options":{"include_usage":true}}`, true},
		{`{"stream":true,"stream_options":{"x":1}}`, `{"stream":true,"stream_options":{"include_usage":true,"x":1}}`, true},
		{`{"stream":true,"stream_options":null}`, `{"stream":true,"stream_options":null}`, false},
	} {
		got, asked := askUsage([]byte(tc.body))
		assert.Equal(t, tc.want, string(got), tc.body)
		assert.Equal(t, tc.asked, asked, tc.body)
		assert.True(t, json.Valid(got), tc.body)
	}
}

const usageChunk = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}` + "\n\n"

func TestUsageReaderStream(t *testing.T) {
	t.Parallel()
	content := chunk("m", "one") + ": comment\r\n\r\n" + chunk("m", "two")
	stream := content + usageChunk + "data: [DONE]\n\n"
	for _, tc := range []struct {
		name  string
		strip bool
		want  string
	}{
		{"kept", false, stream},
		{"stripped", true, content + "data: [DONE]\n\n"},
	} {
		for _, read := range []func(io.Reader) io.Reader{
			func(r io.Reader) io.Reader { return r }, iotest.OneByteReader, iotest.HalfReader,
		} {
			u := newUsageReader(read(strings.NewReader(stream)), true, tc.strip)
			out, err := io.ReadAll(u)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(out), tc.name)
			total, ok := u.usage()
			assert.True(t, ok, tc.name)
			assert.EqualValues(t, 7, total, tc.name)
		}
	}
	unclosed := strings.TrimSuffix(usageChunk, "\n\n")
	u := newUsageReader(strings.NewReader(chunk("m", "x")+unclosed), true, false)
	out, _ := io.ReadAll(u)
	assert.Equal(t, chunk("m", "x")+unclosed, string(out), "an event the stream does not close still counts")
	total, ok := u.usage()
	assert.True(t, ok && total == 7)

	u = newUsageReader(strings.NewReader(chunk("m", "x")), true, true)
	io.ReadAll(u)
	_, ok = u.usage()
	assert.False(t, ok, "a stream without usage")
}

func TestUsageReaderJSON(t *testing.T) {
	t.Parallel()
	body := completion("m", "Hello")
	u := newUsageReader(iotest.OneByteReader(strings.NewReader(body)), false, true)
	out, err := io.ReadAll(u)
	require.NoError(t, err)
	assert.Equal(t, body, string(out))
	total, ok := u.usage()
	assert.True(t, ok)
	assert.EqualValues(t, 4, total)

	for _, noUsage := range []string{`{"id":"x"}`, `{"usage":null}`, `{"usage":{"total_tokens":-1}}`, `not json`} {
		u := newUsageReader(strings.NewReader(noUsage), false, false)
		io.ReadAll(u)
		_, ok := u.usage()
		assert.False(t, ok, noUsage)
	}
}

// tokenBalance returns the tokens that alias's bucket holds now, found by
// reserving and giving back (settling 0 returns a reservation whole), so
// that it changes nothing. It reads up to the bucket's burst, limit.
func tokenBalance(t *testing.T, reg *pool.Registry, alias string, limit int64) int64 {
	t.Helper()
	fits := func(n int64) bool {
		adm, err := reg.Admit(alias, "")
		require.NoError(t, err)
		defer adm.Close()
		if adm.ReserveTokens(n) != nil {
			return false
		}
		adm.SettleTokens(0)
		return true
	}
	lo, hi := int64(-1), limit // fits(lo) is taken as true, fits(hi+1) as false
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if mid == 0 || fits(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

const tokenDoc = `{"targets": {"a": {"url": "$A", "rate_limit": {"tokens_per_minute": 1000}}}}`

func TestTokenLimitSettlesFromUsage(t *testing.T) {
	t.Parallel()
	up := &recorder{} // answers with usage.total_tokens 4
	r := newRigClock(t, tokenDoc, map[string]http.Handler{"A": up}, fakeclock.New())
	for range 6 { // each estimates 274 tokens: six would not fit unsettled
		require.Equal(t, http.StatusOK, r.chat("a").status)
	}
	assert.EqualValues(t, 1000-6*4, tokenBalance(t, r.reg, "a", 1000))
}

func TestTokenLimitRefusesThenAdmitsOnRefill(t *testing.T) {
	t.Parallel()
	up := &recorder{body: `{"id":"x","object":"chat.completion","choices":[]}`} // no usage: estimates stand
	clock := fakeclock.New()
	r := newRigClock(t, tokenDoc, map[string]http.Handler{"A": up}, clock)
	est := EstimateTokens("/v1/chat/completions", []byte(`{"model":"a","messages":[{"role":"user","content":"Hi"}]}`))
	for range 1000 / est {
		require.Equal(t, http.StatusOK, r.chat("a").status)
	}
	left := 1000 % est
	assert.EqualValues(t, left, tokenBalance(t, r.reg, "a", 1000))

	a := r.chat("a")
	require.Equal(t, http.StatusTooManyRequests, a.status)
	assert.Contains(t, a.body, "rate_limit_exceeded")
	wait := time.Duration(est-left) * time.Minute / 1000
	assert.Equal(t, pool.RetryAfterSeconds(wait), a.header.Get("Retry-After"))
	assert.Len(t, up.calls(), int(1000/est), "the refused request reached no upstream")

	clock.Advance(wait)
	assert.Equal(t, http.StatusOK, r.chat("a").status, "admitted once the bucket refilled")
}

// usageStreamer streams two chunks and, when the request asks for usage,
// the usage-only chunk, then [DONE]; it records the bodies it was sent.
type usageStreamer struct{ bodies chan string }

func (s *usageStreamer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.bodies <- string(b)
	w.Header().Set("Content-Type", "text/event-stream")
	io.WriteString(w, chunk("m", "one")+chunk("m", "two"))
	if strings.Contains(string(b), `"include_usage":true`) {
		io.WriteString(w, usageChunk)
	}
	io.WriteString(w, "data: [DONE]\n\n")
}

func TestTokenLimitStreams(t *testing.T) {
	t.Parallel()
	s := &usageStreamer{bodies: make(chan string, 4)}
	r := newRigClock(t, tokenDoc, map[string]http.Handler{"A": s}, fakeclock.New())

	a := r.post("/v1/chat/completions", `{"model":"a","stream":true}`)
	require.Equal(t, http.StatusOK, a.status)
	assert.Contains(t, <-s.bodies, `"stream_options":{"include_usage":true}`, "the gateway asked for usage")
	assert.NotContains(t, a.body, `"usage"`, "which the client, not having asked, does not see")
	assert.Contains(t, a.body, `"two"`)
	assert.True(t, strings.HasSuffix(a.body, "data: [DONE]\n\n"))
	assert.EqualValues(t, 1000-7, tokenBalance(t, r.reg, "a", 1000), "settled to the usage")

	asked := `{"model":"a","stream":true,"stream_options":{"include_usage":true}}`
	a = r.post("/v1/chat/completions", asked)
	require.Equal(t, http.StatusOK, a.status)
	assert.Equal(t, asked, <-s.bodies, "a client's own request for usage goes as it is")
	assert.Contains(t, a.body, `"total_tokens":7`, "and it gets the usage")
	assert.EqualValues(t, 1000-14, tokenBalance(t, r.reg, "a", 1000))
}

func TestTokenLimitCancelledStreamKeepsTheEstimate(t *testing.T) {
	t.Parallel()
	s := newStreamer()
	r := newRigClock(t, tokenDoc, map[string]http.Handler{"A": s}, fakeclock.New())
	body := `{"model":"a","stream":true}`
	ctx, cancel := context.WithCancel(ctxT(t))
	resp, err := r.send(ctx, http.MethodPost, "/v1/chat/completions", body)
	require.NoError(t, err)
	readEvent(t, bufio.NewReader(resp.Body))
	cancel()
	resp.Body.Close()
	<-s.cancelled
	r.srv.Close() // wait for the handler to finish
	assert.EqualValues(t, 1000-EstimateTokens("/v1/chat/completions", []byte(body)), tokenBalance(t, r.reg, "a", 1000),
		"no usage came: the estimate stands")
}

// holdLong is an upstream that holds a long request (max_tokens 8000) open
// until release closes, and answers any other at once, counting them.
type holdLong struct {
	release chan struct{}
	held    chan struct{}
	short   atomic.Int64
}

func (h *holdLong) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if !strings.Contains(string(b), `"max_tokens":8000`) {
		h.short.Add(1)
		io.WriteString(w, completion("m", "short"))
		return
	}
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	h.held <- struct{}{}
	select {
	case <-h.release:
	case <-r.Context().Done():
	}
	io.WriteString(w, completion("m", "long"))
}

// Under token_aware, the gateway counts each request's estimate on the
// provider serving it: while a long request is held on one provider, the
// short ones after it go to the other, which weighted_random would share.
func TestTokenAwareThroughTheGateway(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	ups := []*holdLong{{release: release, held: make(chan struct{}, 1)}, {release: release, held: make(chan struct{}, 1)}}
	r := newRig(t, `{"targets": {"a": {"strategy": "token_aware", "providers": [{"url": "$A"}, {"url": "$B"}]}}}`,
		map[string]http.Handler{"A": ups[0], "B": ups[1]})
	done := make(chan answer, 1)
	go func() { done <- r.post("/v1/chat/completions", `{"model":"a","max_tokens":8000}`) }()
	var free *holdLong
	select {
	case <-ups[0].held:
		free = ups[1]
	case <-ups[1].held:
		free = ups[0]
	}
	for range 4 {
		require.Equal(t, http.StatusOK, r.chat("a").status)
	}
	assert.EqualValues(t, 4, free.short.Load(), "every short request went to the provider without the long one")
	close(release)
	assert.Equal(t, http.StatusOK, (<-done).status)
}

// slowHeaders is an upstream that moves a fake clock on by delay before it
// sends its headers, so that the gateway measures that time to first byte.
type slowHeaders struct {
	clock *fakeclock.Clock
	delay time.Duration
	calls atomic.Int64
}

func (s *slowHeaders) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	s.calls.Add(1)
	s.clock.Advance(s.delay)
	io.WriteString(w, completion("m", "hi"))
}

// Under p2c_ewma, the gateway reports each attempt's time to its headers:
// once both providers have answered, the requests go to the faster one.
func TestPeakEWMAThroughTheGateway(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	slow, fast := &slowHeaders{clock: clock, delay: 200 * time.Millisecond}, &slowHeaders{clock: clock, delay: time.Millisecond}
	r := newRigClock(t, `{"targets": {"a": {"strategy": "p2c_ewma", "providers": [{"url": "$S"}, {"url": "$F"}]}}}`,
		map[string]http.Handler{"S": slow, "F": fast}, clock)
	for i := 0; slow.calls.Load() == 0 || fast.calls.Load() == 0; i++ {
		require.Less(t, i, 100, "both providers answer within 100 requests")
		require.Equal(t, http.StatusOK, r.chat("a").status)
	}
	before := fast.calls.Load()
	for range 10 {
		require.Equal(t, http.StatusOK, r.chat("a").status)
	}
	assert.EqualValues(t, before+10, fast.calls.Load(), "every request after went to the faster provider")
}
