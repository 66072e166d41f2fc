package pool

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memShared is a SharedState in memory, shared by registries in one test
// as Redis is shared by replicas.
type memShared struct {
	mu    sync.Mutex
	held  map[string]int
	rates map[string]int // requests allowed so far, by name
	calls []string
}

func newMemShared() *memShared {
	return &memShared{held: map[string]int{}, rates: map[string]int{}}
}

type memConc struct {
	s     *memShared
	name  string
	limit int
}

func (m *memShared) Concurrency(name string, limit int) SharedConcurrency {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "conc "+name)
	return &memConc{m, name, limit}
}

// Others is every slot held, since the test's replicas share one memory
// and hold none of their own apart.
func (c *memConc) Others() int {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.held[c.name]
}

func (c *memConc) TryAcquire() (func(), time.Duration, bool) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.s.held[c.name] >= c.limit {
		return nil, 3 * time.Second, false
	}
	c.s.held[c.name]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.s.mu.Lock()
			c.s.held[c.name]--
			c.s.mu.Unlock()
		})
	}, 0, true
}

type memRate struct {
	s     *memShared
	name  string
	burst int
}

func (m *memShared) Rate(name string, rps float64, burst int) SharedRate {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "rate "+name)
	return &memRate{m, name, burst}
}

func (r *memRate) Allow() (bool, time.Duration) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.rates[r.name] >= r.burst {
		return false, 7 * time.Second
	}
	r.s.rates[r.name]++
	return true, 0
}

const sharedDoc = `{
	"auth": {"key_definitions": {"k": {"key": "sk-k", "concurrency_limit": {"max_concurrent_requests": 3}}}},
	"targets": {"chat": {"keys": ["k"], "concurrency_limit": {"max_concurrent_requests": 2},
		"rate_limit": {"requests_per_second": 1, "burst_size": 100},
		"providers": [{"url": "https://a.example.com", "rate_limit": {"requests_per_second": 1, "burst_size": 1}}]}}}`

func TestSharedLimitsHoldAcrossReplicas(t *testing.T) {
	t.Parallel()
	shared := newMemShared()
	var replicas []*Registry
	for range 2 {
		r := &Registry{Shared: shared}
		require.NoError(t, r.Reload(mustParse(t, sharedDoc)))
		replicas = append(replicas, r)
	}
	a, err := replicas[0].Admit("chat", "sk-k")
	require.NoError(t, err)
	b, err := replicas[1].Admit("chat", "sk-k")
	require.NoError(t, err)
	_, err = replicas[1].Admit("chat", "sk-k")
	e := refusal(t, nil, err, 429, "concurrency_limit_exceeded")
	assert.Equal(t, 3*time.Second, e.RetryAfter, "the shared limiter's advice")
	assert.Equal(t, 2, shared.held["alias/chat"])
	a.Close()
	a.Close()
	assert.Equal(t, 1, shared.held["alias/chat"], "released once")
	c, err := replicas[1].Admit("chat", "sk-k")
	require.NoError(t, err, "a slot freed on one replica is free on the other")
	b.Close()
	c.Close()
	assert.Zero(t, shared.held["alias/chat"])
	assert.Zero(t, shared.held["key/"+sprintDigest("sk-k")])

	// A provider's rate limit is shared too, and tells its wait.
	p0, _ := replicas[0].Pool("chat")
	p1, _ := replicas[1].Pool("chat")
	assert.True(t, p0.FirstTarget().RateLimiter.Allow())
	assert.False(t, p1.FirstTarget().RateLimiter.Allow(), "the other replica spent the burst")
	assert.Equal(t, 7*time.Second, RateLimitDelay(p1.FirstTarget().RateLimiter))
	for _, call := range shared.calls {
		assert.NotContains(t, call, "sk-k", "names never hold a key")
	}
}

func TestSharedKeyLimitRefusalReleasesThePoolSlot(t *testing.T) {
	t.Parallel()
	shared := newMemShared()
	r := &Registry{Shared: shared}
	require.NoError(t, r.Reload(mustParse(t, sharedDoc)))
	shared.held["key/"+sprintDigest("sk-k")] = 3 // the key is full elsewhere
	_, err := r.Admit("chat", "sk-k")
	refusal(t, nil, err, 429, "concurrency_limit_exceeded")
	assert.Zero(t, shared.held["alias/chat"], "the pool slot taken before is given back")
	p, _ := r.Pool("chat")
	assert.Zero(t, p.ConcurrencyLimiter().Active())
}

func TestSharedProviderLimits(t *testing.T) {
	t.Parallel()
	shared := newMemShared()
	doc := `{"targets": {"chat": {"strategy": "priority", "fallback": {"enabled": true}, "providers": [
		{"url": "https://a.example.com", "concurrency_limit": {"max_concurrent_requests": 1}},
		{"url": "https://b.example.com", "concurrency_limit": {"max_concurrent_requests": 5}}]}}}`
	var pools []*ProviderPool
	for range 2 {
		r := &Registry{Shared: shared}
		require.NoError(t, r.Reload(mustParse(t, doc)))
		p, _ := r.Pool("chat")
		pools = append(pools, p)
	}
	a, ok := pools[0].Select()
	require.True(t, ok)
	assert.Equal(t, 0, a.Index)
	b, ok := pools[1].Select()
	require.True(t, ok)
	assert.Equal(t, 1, b.Index, "provider 0's one slot is held on the other replica")
	a.Close()
	a.Close()
	c, ok := pools[1].Select()
	require.True(t, ok)
	assert.Equal(t, 0, c.Index, "released once on close, free for the other replica")
	b.Close()
	c.Close()
	for n, held := range shared.held {
		assert.Zero(t, held, "%s still held", n)
	}
}
