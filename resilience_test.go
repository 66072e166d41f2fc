package pool

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/onwardsgo/pool/internal/fakeclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func priorityPool(t *testing.T, providers []*Provider, opts ...Option) *ProviderPool {
	t.Helper()
	p, err := NewProviderPool(providers, append([]Option{WithStrategy(Priority)}, opts...)...)
	require.NoError(t, err)
	return p
}

func providersN(t *testing.T, n int) []*Provider {
	var out []*Provider
	for i := range n {
		out = append(out, NewProvider(newTestTarget(t, fmt.Sprintf("https://p%d.example.com", i)), 1))
	}
	return out
}

// walkOrder walks the pool, closing each selection, and returns the order.
func walkOrder(p *ProviderPool) []int {
	var order []int
	for sel := range p.Attempts() {
		order = append(order, sel.Index)
		sel.Close()
	}
	return order
}

func TestMaxAttemptsAboveProvidersStartsNewPasses(t *testing.T) {
	t.Parallel()
	p := priorityPool(t, providersN(t, 2), WithFallback(FallbackConfig{Enabled: true, MaxAttempts: 5}))
	assert.Equal(t, []int{0, 1, 0, 1, 0}, walkOrder(p))

	p = priorityPool(t, providersN(t, 2), WithFallback(FallbackConfig{Enabled: true}))
	assert.Equal(t, []int{0, 1}, walkOrder(p), "0: one attempt per provider")

	w, err := NewProviderPool(providersN(t, 3), WithFallback(FallbackConfig{Enabled: true, MaxAttempts: 7}))
	require.NoError(t, err)
	order := walkOrder(w)
	require.Len(t, order, 7)
	for pass := 0; pass < 2; pass++ {
		assert.ElementsMatch(t, []int{0, 1, 2}, order[pass*3:pass*3+3], "each pass tries every provider once")
	}
}

func TestPassDoesNotRestartOnAFullProvider(t *testing.T) {
	t.Parallel()
	// p1 is full: after p0 fails, the pass has an untried provider, so it
	// must not start over and send the request back to p0.
	full := NewProviderWithConcurrencyLimit(newTestTarget(t, "https://p1.example.com"), 1, 1)
	hold, ok := full.limiter.TryAcquire()
	require.True(t, ok)
	defer hold.Close()
	p := priorityPool(t, []*Provider{NewProvider(newTestTarget(t, "https://p0.example.com"), 1), full},
		WithFallback(FallbackConfig{Enabled: true, MaxAttempts: 4}))
	assert.Equal(t, []int{0}, walkOrder(p))

	// Drained providers (weight 0) are not eligible under weighted_random,
	// so a pass over the others restarts.
	w, err := NewProviderPool([]*Provider{NewProvider(newTestTarget(t, "https://p0.example.com"), 1),
		NewProvider(newTestTarget(t, "https://p1.example.com"), 0)}, WithFallback(FallbackConfig{Enabled: true, MaxAttempts: 3}))
	require.NoError(t, err)
	assert.Equal(t, []int{0, 0, 0}, walkOrder(w))

	// Nor is a provider whose limit is 0, under either strategy: it can
	// never serve, so a pass over the others restarts too.
	for _, s := range []LoadBalanceStrategy{WeightedRandom, Priority} {
		z, err := NewProviderPool([]*Provider{
			NewProviderWithConcurrencyLimit(newTestTarget(t, "https://closed.example.com"), 1, 0),
			NewProvider(newTestTarget(t, "https://p1.example.com"), 1)},
			WithStrategy(s), WithFallback(FallbackConfig{Enabled: true, MaxAttempts: 3}))
		require.NoError(t, err)
		assert.Equal(t, []int{1, 1, 1}, walkOrder(z), "%v", s)
	}
}

func TestBackoffSequence(t *testing.T) {
	t.Parallel()
	b := Backoff{Initial: 200 * time.Millisecond, NoJitter: true}
	var got []time.Duration
	for n := 1; n <= 8; n++ {
		got = append(got, b.Delay(n, nil))
	}
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5000 * ms, 5000 * ms, 5000 * ms}, got,
		"doubling, capped at the default max of 5 s")
	assert.Equal(t, 5*time.Second, b.Delay(math.MaxInt, nil), "no overflow")
	assert.Equal(t, time.Duration(math.MaxInt64), Backoff{Initial: time.Hour, Max: math.MaxInt64, Factor: 1e300, NoJitter: true}.Delay(5, nil))
	assert.Zero(t, Backoff{}.Delay(3, nil), "zero value: no backoff")

	// Full jitter draws from [0, delay].
	assert.Zero(t, b.withJitter().Delay(3, func() float64 { return 0 }))
	assert.Equal(t, 800*ms, b.withJitter().Delay(3, func() float64 { return math.Nextafter(1, 0) }))
}

func (b Backoff) withJitter() Backoff { b.NoJitter = false; return b }

func TestWalkBackoffAndItsCap(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	f := FallbackConfig{Enabled: true, MaxAttempts: 5, Backoff: Backoff{Initial: 200 * ms, NoJitter: true}, MaxTotalBackoff: 1000 * ms}
	p := priorityPool(t, providersN(t, 2), WithFallback(f))
	it := p.SelectIter()
	assert.Zero(t, it.Backoff(), "no wait before the first attempt")
	var waits []time.Duration
	for {
		sel, ok := it.Next()
		if !ok {
			break
		}
		sel.Close()
		waits = append(waits, it.Backoff())
	}
	assert.Equal(t, []time.Duration{200 * ms, 400 * ms, 400 * ms, 0, 0}, waits, "200, 400, then what is left of the 1 s cap")
}

func TestFullJitterIsUniform(t *testing.T) {
	t.Parallel()
	// The walk's jitter must be uniform on [0, delay]: n draws, the share
	// below delay/2 within a Hoeffding bound for a false failure below 1e-9.
	f := FallbackConfig{Enabled: true, MaxAttempts: 2, Backoff: Backoff{Initial: time.Second}}
	p := priorityPool(t, providersN(t, 1), WithFallback(f))
	const n = 20000
	below := 0
	for range n {
		it := p.SelectIter()
		sel, _ := it.Next()
		sel.Close()
		d := it.Backoff()
		require.True(t, d >= 0 && d <= time.Second, "%v", d)
		if d < 500*time.Millisecond {
			below++
		}
	}
	eps := math.Sqrt(math.Log(2/1e-9) / (2 * n))
	assert.InDelta(t, 0.5, float64(below)/n, eps)
}

func TestRetryBudget(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	// 1 retry per second over 10 s: 10 retries; plus 20% of the requests.
	p := priorityPool(t, providersN(t, 2), WithFallback(FallbackConfig{Enabled: true}),
		WithRetryBudget(RetryBudget{TTL: 10 * time.Second, MinRetriesPerSecond: 1, PercentCanRetry: 20}), WithClock(clock))
	attempts := 0
	for range 20 { // 20 requests that each want a retry
		attempts += len(walkOrder(p))
	}
	// 20 first attempts; retries: 10 + 20% of 20 = 14.
	assert.Equal(t, 20+14, attempts)

	clock.Advance(11 * time.Second) // every count has expired
	assert.Len(t, walkOrder(p), 2, "the budget refills")
}
