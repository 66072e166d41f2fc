package pool

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func tokenPool(t *testing.T, providers ...*Provider) *ProviderPool {
	t.Helper()
	return newTestPool(t, providers, WithStrategy(TokenAware))
}

// selectTokens is one token_aware selection of a request of n tokens.
func selectTokens(t *testing.T, p *ProviderPool, n int64) Selection {
	t.Helper()
	it := p.SelectIter()
	it.SetTokens(n)
	sel, ok := it.Next()
	require.True(t, ok)
	return sel
}

func tokensOn(p *ProviderPool, i int) int64 {
	return p.Providers()[i].limiter.counter().tokensInFlight()
}

func TestTokenAwareWeighsTokensNotRequests(t *testing.T) {
	t.Parallel()
	p := tokenPool(t,
		NewProvider(newTestTarget(t, "https://a.example.com"), 1),
		NewProvider(newTestTarget(t, "https://b.example.com"), 1))
	long := selectTokens(t, p, 8000)
	other := 1 - long.Index
	var short []Selection
	for range 5 { // five short requests go where the long one is not
		s := selectTokens(t, p, 100)
		assert.Equal(t, other, s.Index)
		short = append(short, s)
	}
	assert.EqualValues(t, 8000, tokensOn(p, long.Index))
	assert.EqualValues(t, 500, tokensOn(p, other))
	assert.Equal(t, 5, p.Providers()[other].ActiveConnections(), "under weighted_random, the next would go to the long one")

	long.Close()
	long.Close()
	assert.EqualValues(t, 0, tokensOn(p, long.Index), "closing takes the tokens off, once")
	assert.Equal(t, long.Index, selectTokens(t, p, 100).Index)
	closeAll(short)
	assert.EqualValues(t, 0, tokensOn(p, other))
}

func TestTokenAwareByWeightAndLimit(t *testing.T) {
	t.Parallel()
	p := tokenPool(t,
		NewProviderWithConcurrencyLimit(newTestTarget(t, "https://a.example.com"), 3, 2),
		NewProvider(newTestTarget(t, "https://b.example.com"), 1),
		NewProvider(newTestTarget(t, "https://drained.example.com"), 0))
	a := selectTokens(t, p, 300) // a tie at 0: a, 3 times in 4
	for tries := 0; a.Index != 0 && tries < 100; tries++ {
		a.Close()
		a = selectTokens(t, p, 300)
	}
	require.Equal(t, 0, a.Index, "a lost 100 ties of odds 3 to 1")
	b := selectTokens(t, p, 99) // a 300/3 = 100 against b 0
	assert.Equal(t, 1, b.Index)
	c := selectTokens(t, p, 1) // a 100 against b 99/1: b
	assert.Equal(t, 1, c.Index)
	d := selectTokens(t, p, 1) // b 100/1 against a 100: a tie; a has room for one more
	e := selectTokens(t, p, 1)
	assert.ElementsMatch(t, []int{0, 1}, []int{d.Index, e.Index}, "one each: a 101/3 is then lower")
	f := selectTokens(t, p, 1)
	assert.Equal(t, 1, f.Index, "a is at its limit of 2")
	closeAll([]Selection{a, b, c, d, e, f})
	for i := range 3 {
		assert.EqualValues(t, 0, tokensOn(p, i))
	}
}

func TestTokenAwareTieBreakByWeight(t *testing.T) {
	t.Parallel()
	p := tokenPool(t,
		NewProvider(newTestTarget(t, "https://a.example.com"), 3),
		NewProvider(newTestTarget(t, "https://b.example.com"), 1))
	const n = 40_000
	first := 0
	for range n {
		s := selectTokens(t, p, 50) // closed at once: every pick is a tie at 0
		if s.Index == 0 {
			first++
		}
		s.Close()
	}
	withinBinomial(t, first, n, 0.75, "the weight-3 provider's share")
}

func TestTokenAwareAcrossAReload(t *testing.T) {
	t.Parallel()
	a, b := newTestTarget(t, "https://a.example.com"), newTestTarget(t, "https://b.example.com")
	old := tokenPool(t, NewProvider(a, 1), NewProvider(b, 1))
	held := selectTokens(t, old, 5000)
	next := tokenPool(t, NewProvider(a, 1), NewProvider(b, 1))
	next.AdoptProviderState(old)
	assert.EqualValues(t, 5000, tokensOn(next, held.Index), "the new pool sees the old one's tokens")
	s := selectTokens(t, next, 10)
	assert.Equal(t, 1-held.Index, s.Index)
	held.Close()
	s.Close()
	assert.EqualValues(t, 0, tokensOn(next, 0)+tokensOn(next, 1))
}

func TestTokenAwareStress(t *testing.T) {
	t.Parallel()
	p := tokenPool(t,
		NewProviderWithConcurrencyLimit(newTestTarget(t, "https://a.example.com"), 2, 8),
		NewProvider(newTestTarget(t, "https://b.example.com"), 1),
		NewProviderWithConcurrencyLimit(newTestTarget(t, "https://c.example.com"), 1, 3))
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held []Selection
			for range 2000 {
				it := p.SelectIter()
				it.SetTokens(1 + rand.Int64N(4000))
				if s, ok := it.Next(); ok {
					held = append(held, s)
				}
				if len(held) > 3 || rand.IntN(2) == 0 {
					k := rand.IntN(len(held) + 1)
					closeAll(held[:k])
					held = held[k:]
				}
			}
			closeAll(held)
		}()
	}
	wg.Wait()
	for i, pr := range p.Providers() {
		assert.EqualValues(t, 0, tokensOn(p, i), "provider %d tokens", i)
		assert.Equal(t, 0, pr.ActiveConnections(), "provider %d slots", i)
	}
}

func TestTokenAwareConfig(t *testing.T) {
	t.Parallel()
	r, err := NewRegistry(mustParse(t, `{"targets": {"a": {"strategy": "token_aware",
		"providers": [{"url": "https://a.example.com"}, {"url": "https://b.example.com"}]}}}`))
	require.NoError(t, err)
	p, _ := r.Pool("a")
	assert.Equal(t, TokenAware, p.Strategy())
	assert.Equal(t, "token_aware", p.Strategy().String())
}
