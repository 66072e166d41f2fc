package pool

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/onwardsgo/pool/internal/fakeclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tokenConfig has a token limit on an alias of each form and on a key: 600
// tokens a minute is 10 a second.
const tokenConfig = `{
  "auth": {"key_definitions": {
    "metered": {"key": "sk-metered", "rate_limit": {"tokens_per_minute": 600, "token_burst_size": 300}}
  }},
  "targets": {
    "pooled": {
      "keys": ["sk-open", "sk-metered"],
      "rate_limit": {"requests_per_second": 1000, "tokens_per_minute": 600, "token_burst_size": 1000},
      "providers": [{"url": "https://a.example.com"}, {"url": "https://b.example.com"}]
    },
    "single": {"url": "https://c.example.com", "rate_limit": {"tokens_per_minute": 1000}},
    "open": {"url": "https://d.example.com"}
  }
}`

func tokenRegistry(t *testing.T, doc string) (*Registry, *fakeclock.Clock) {
	t.Helper()
	clock := fakeclock.New()
	r := &Registry{Clock: clock}
	require.NoError(t, r.Reload(mustParse(t, doc)))
	return r, clock
}

// admitTokens admits a request for alias with key and reserves estimate.
func admitTokens(t *testing.T, r *Registry, alias, key string, estimate int64) (*Admission, error) {
	t.Helper()
	adm, err := r.Admit(alias, key)
	require.NoError(t, err)
	if err := adm.ReserveTokens(estimate); err != nil {
		adm.Close()
		return nil, err
	}
	return adm, nil
}

func TestReserveTokensRefusesWithRetryAfterAndAdmitsOnRefill(t *testing.T) {
	t.Parallel()
	r, clock := tokenRegistry(t, tokenConfig)
	adm, err := admitTokens(t, r, "pooled", "sk-open", 800)
	require.NoError(t, err)
	assert.True(t, adm.TokenLimited())
	adm.SettleTokens(900) // 100 over the estimate: 100 left of 1000
	adm.Close()

	_, err = admitTokens(t, r, "pooled", "sk-open", 300)
	ae := refusal(t, nil, err, http.StatusTooManyRequests, "rate_limit_exceeded")
	assert.Equal(t, 20*time.Second, ae.RetryAfter, "200 tokens missing at 10 a second")
	assert.Contains(t, ae.Message, `"pooled"`)
	for _, ps := range r.Snapshot().Pools {
		if ps.Alias == "pooled" {
			assert.EqualValues(t, 1, ps.Refused["rate_limit_exceeded"], "counted as a refusal")
		}
	}

	clock.Advance(ae.RetryAfter)
	adm, err = admitTokens(t, r, "pooled", "sk-open", 300)
	require.NoError(t, err, "admitted once the bucket refilled")
	adm.Close() // no settlement: the estimate stands
	_, err = admitTokens(t, r, "pooled", "sk-open", 1)
	refusal(t, nil, err, http.StatusTooManyRequests, "rate_limit_exceeded")
}

func TestReserveTokensOnTheKeyGivesBackThePools(t *testing.T) {
	t.Parallel()
	r, _ := tokenRegistry(t, tokenConfig)
	adm, err := admitTokens(t, r, "pooled", "sk-metered", 200)
	require.NoError(t, err)
	adm.Close() // 800 left in the pool's bucket, 100 in the key's
	_, err = admitTokens(t, r, "pooled", "sk-metered", 200)
	ae := refusal(t, nil, err, http.StatusTooManyRequests, "rate_limit_exceeded")
	assert.Contains(t, ae.Message, "API key", "the key's bucket refused")
	assert.Equal(t, 10*time.Second, ae.RetryAfter, "100 tokens missing at 10 a second")

	adm, err = admitTokens(t, r, "pooled", "sk-open", 800)
	require.NoError(t, err, "the pool's 200 tokens were given back when the key refused")
	adm.Close()
}

func TestReserveTokensSingleTargetAndNoLimit(t *testing.T) {
	t.Parallel()
	r, _ := tokenRegistry(t, tokenConfig)
	adm, err := admitTokens(t, r, "single", "", 1000)
	require.NoError(t, err, "a single target's token limit is its alias's")
	adm.Close()
	_, err = admitTokens(t, r, "single", "", 1)
	refusal(t, nil, err, http.StatusTooManyRequests, "rate_limit_exceeded")

	adm, err = r.Admit("open", "")
	require.NoError(t, err)
	assert.False(t, adm.TokenLimited())
	assert.NoError(t, adm.ReserveTokens(1<<40))
	adm.SettleTokens(5) // nothing to settle
	adm.Close()
}

func TestTokenBucketAcrossAReload(t *testing.T) {
	t.Parallel()
	r, _ := tokenRegistry(t, tokenConfig)
	adm, err := admitTokens(t, r, "single", "", 1000)
	require.NoError(t, err)

	require.NoError(t, r.Reload(mustParse(t, tokenConfig)))
	_, err = admitTokens(t, r, "single", "", 1)
	refusal(t, nil, err, http.StatusTooManyRequests, "rate_limit_exceeded")
	adm.SettleTokens(400) // the old admission settles into the bucket the new config kept
	adm.Close()
	adm, err = admitTokens(t, r, "single", "", 600)
	require.NoError(t, err, "600 unused tokens came back across the reload")
	adm.Close()

	changed := `{"targets": {"single": {"url": "https://c.example.com", "rate_limit": {"tokens_per_minute": 2000}}}}`
	require.NoError(t, r.Reload(mustParse(t, changed)))
	adm, err = admitTokens(t, r, "single", "", 2000)
	require.NoError(t, err, "a changed limit starts a full bucket of its own")
	adm.Close()
}

func TestTokenRateLimitConfig(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, tokenConfig)
	assert.Empty(t, cfg.Warnings)
	rl := cfg.Targets["pooled"].Pool.RateLimit
	assert.Equal(t, &RateLimitSpec{RequestsPerSecond: 1000, TokensPerMinute: 600, TokenBurstSize: rl.TokenBurstSize}, rl)

	for _, tc := range []struct{ doc, place string }{
		{`{"targets": {"a": {"url": "https://a.example.com", "rate_limit": {"tokens_per_minute": -1}}}}`,
			`targets["a"].rate_limit.tokens_per_minute`},
		{`{"targets": {"a": {"url": "https://a.example.com", "rate_limit": {"token_burst_size": 5}}}}`,
			`targets["a"].rate_limit.tokens_per_minute`},
		{`{"targets": {"a": {"url": "https://a.example.com", "rate_limit": {"tokens_per_minute": 5, "token_burst_size": 0}}}}`,
			`targets["a"].rate_limit.token_burst_size`},
		{`{"targets": {"a": {"url": "https://a.example.com", "rate_limit": {"tokens_per_minute": 5, "burst_size": 2}}}}`,
			`targets["a"].rate_limit.requests_per_second`},
		{`{"targets": {"a": {"url": "https://a.example.com", "rate_limit": {}}}}`,
			`targets["a"].rate_limit.requests_per_second`},
		{`{"targets": {"a": {"providers": [{"url": "https://a.example.com", "rate_limit": {"tokens_per_minute": 5}}]}}}`,
			`targets["a"].providers[0].rate_limit.tokens_per_minute`},
		{`{"targets": {"a": [{"url": "https://a.example.com", "rate_limit": {"tokens_per_minute": 5}}]}}`,
			`targets["a"][0].rate_limit.tokens_per_minute`},
		{`{"auth": {"key_definitions": {"k": {"key": "sk-k", "rate_limit": {"tokens_per_minute": 0.5}}}}, "targets": {}}`,
			`auth.key_definitions["k"].rate_limit.tokens_per_minute`},
		{`{"targets": {"a": {"url": "https://a.example.com", "rate_limit": {"token_per_minute": 5}}}}`,
			`targets["a"].rate_limit`},
	} {
		_, err := ParseConfig([]byte(tc.doc))
		require.Error(t, err, tc.doc)
		var places []string
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var fe *FieldError
			require.True(t, errors.As(e, &fe), "%v", e)
			places = append(places, fe.Place)
		}
		assert.Contains(t, places, tc.place, "%s: %v", tc.doc, err)
	}
}

// memTokens is a SharedTokenState in memory: a memShared whose token
// limits are counters of what is spent, shared by the registries of a test.
type memTokens struct {
	*memShared
	spent map[string]int64
}

type memTokenLimit struct {
	s     *memTokens
	name  string
	burst int64
}

func (m *memTokens) Tokens(name string, perMinute, burst int64) SharedTokens {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "tokens "+name)
	return &memTokenLimit{m, name, burst}
}

func (l *memTokenLimit) Reserve(n int64) (func(int64), time.Duration, bool) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.s.spent[l.name]+n > l.burst {
		return nil, 9 * time.Second, false
	}
	l.s.spent[l.name] += n
	return func(delta int64) {
		l.s.mu.Lock()
		defer l.s.mu.Unlock()
		l.s.spent[l.name] -= delta
	}, 0, true
}

func TestTokenLimitsSharedAcrossReplicas(t *testing.T) {
	t.Parallel()
	shared := &memTokens{memShared: newMemShared(), spent: map[string]int64{}}
	replicas := make([]*Registry, 2)
	for i := range replicas {
		replicas[i] = &Registry{Shared: shared, Clock: fakeclock.New()}
		require.NoError(t, replicas[i].Reload(mustParse(t, tokenConfig)))
	}
	assert.Contains(t, shared.calls, "tokens alias/single")
	assert.Contains(t, shared.calls, "tokens key/"+sprintDigest("sk-metered"))

	adm, err := admitTokens(t, replicas[0], "single", "", 700)
	require.NoError(t, err)
	_, err = admitTokens(t, replicas[1], "single", "", 700)
	ae := refusal(t, nil, err, http.StatusTooManyRequests, "rate_limit_exceeded")
	assert.Equal(t, 9*time.Second, ae.RetryAfter, "the shared limit's wait")
	adm.SettleTokens(100) // 600 given back, to the shared bucket
	adm.Close()
	assert.EqualValues(t, 100, shared.spent["alias/single"])
	adm, err = admitTokens(t, replicas[1], "single", "", 900)
	require.NoError(t, err, "the other replica sees the tokens given back")
	adm.SettleTokens(950) // 50 over its estimate
	adm.Close()
	assert.EqualValues(t, 1050, shared.spent["alias/single"], "into debt")

	n := len(shared.calls)
	require.NoError(t, replicas[0].Reload(mustParse(t, tokenConfig)))
	assert.Len(t, shared.calls, n, "a reload that keeps the limits asks for none again")
}

func TestSharedStateWithoutTokensCountsTokensLocally(t *testing.T) {
	t.Parallel()
	shared := newMemShared()
	r := &Registry{Shared: shared, Clock: fakeclock.New()}
	require.NoError(t, r.Reload(mustParse(t, tokenConfig)))
	adm, err := admitTokens(t, r, "single", "", 1000)
	require.NoError(t, err)
	adm.Close()
	_, err = admitTokens(t, r, "single", "", 1)
	refusal(t, nil, err, http.StatusTooManyRequests, "rate_limit_exceeded")
}
