package main

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/onwardsgo/pool/internal/fakeclock"
	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A 1000-tokens-per-minute limit, through the proxy with openai-go: a
// request whose estimate the bucket does not hold is refused with a
// Retry-After, and admitted once that wait has passed.
func TestTokensPerMinuteLimit(t *testing.T) {
	clock := fakeclock.New()
	r := newRigClock(t, `{"targets": {"chat": {"url": "$A", "rate_limit": {"tokens_per_minute": 1000}}}}`,
		map[string]http.Handler{"A": &MockUpstream{Name: "a"}}, clock)
	c := r.openai("")
	params := func(maxTokens int64) openai.ChatCompletionNewParams {
		p := chatParams("chat")
		p.MaxTokens = openai.Int(maxTokens)
		return p
	}

	// 900 tokens and a prompt reserved; the answer reports 4 used, which
	// gives the rest back: 996 left.
	resp, err := c.Chat.Completions.New(ctxT(t), params(900))
	require.NoError(t, err)
	assert.EqualValues(t, 4, resp.Usage.TotalTokens)
	resp, err = c.Chat.Completions.New(ctxT(t), params(900))
	require.NoError(t, err, "the first request's unused tokens came back")

	// 992 left now; 990 and the prompt is over the burst, so it waits for a
	// full bucket.
	_, err = c.Chat.Completions.New(ctxT(t), params(990))
	assertAPIError(t, err, http.StatusTooManyRequests, "rate_limit_exceeded")
	var apiErr *openai.Error
	require.True(t, errors.As(err, &apiErr))
	secs, convErr := strconv.Atoi(apiErr.Response.Header.Get("Retry-After"))
	require.NoError(t, convErr, "a 429 carries Retry-After in seconds")
	assert.Positive(t, secs)

	clock.Advance(time.Duration(secs) * time.Second)
	_, err = c.Chat.Completions.New(ctxT(t), params(990))
	assert.NoError(t, err, "admitted once the bucket refilled for the Retry-After")
}
