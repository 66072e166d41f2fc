package pool

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/onwardsgo/pool/internal/fakeclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// priorityPair is a priority pool of two providers with fallback and an
// AIMD controller, on clock.
func priorityPair(t *testing.T, clock Clock, opts ...Option) *ProviderPool {
	return newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://preferred.example.com"), 1),
		NewProvider(newTestTarget(t, "https://alternate.example.com"), 1),
	}, append([]Option{WithStrategy(Priority), WithFallback(FallbackConfig{Enabled: true, OnStatus: []int{5}}),
		WithAIMD(testAIMD()), WithClock(clock), WithRandomSource(rand.New(rand.NewPCG(7, 9)).Uint64)}, opts...)...)
}

// demote drives a pool's share from 1 to 0.5 with five breaches.
func demote(t *testing.T, p *ProviderPool, clock *fakeclock.Clock) {
	clock.Advance(2 * time.Second)
	for range 5 {
		it := p.SelectIter()
		it.SetLoadAware()
		sel, ok := it.Next()
		require.True(t, ok)
		require.Equal(t, 0, sel.Index)
		obs := it.Observe(sel)
		require.NotNil(t, obs)
		obs.Status(529)
		obs.Close()
		sel.Close()
	}
	s, ok := p.ShareSnapshot()
	require.True(t, ok)
	require.InDelta(t, 0.5, s.Share, 1e-9)
}

func TestAIMDShareDecidesTheFirstAttemptOnly(t *testing.T) {
	clock := fakeclock.New()
	p := priorityPair(t, clock)
	demote(t, p, clock)
	const n = 20000
	first := 0
	for range n {
		it := p.SelectIter()
		it.SetLoadAware()
		a, ok := it.Next()
		require.True(t, ok)
		if a.Index == 0 {
			first++
		}
		b, ok := it.Next()
		require.True(t, ok, "the other provider stays reachable")
		require.Equal(t, 1-a.Index, b.Index)
		a.Close()
		b.Close()
	}
	// Binomial(n, 0.5): 6.2 standard deviations leave a false failure rarer
	// than 1 in 10^9.
	require.InDelta(t, n/2, first, 6.2*math.Sqrt(n*0.25))

	it := p.SelectIter() // a walk that is not load-aware keeps the order
	sel, _ := it.Next()
	assert.Equal(t, 0, sel.Index)
	assert.Nil(t, it.Observe(sel), "only load-aware walks are observed")
	sel.Close()
	for _, pr := range p.Providers() {
		assert.Zero(t, pr.ActiveConnections())
	}
}

func TestAIMDIsInertOutsideEligiblePools(t *testing.T) {
	clock := fakeclock.New()
	for name, opts := range map[string][]Option{
		"weighted":    {WithStrategy(WeightedRandom)},
		"no fallback": {WithFallback(FallbackConfig{})},
	} {
		p := priorityPair(t, clock, opts...)
		_, ok := p.ShareSnapshot()
		assert.False(t, ok, name)
	}
	single := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://only.example.com"), 1)},
		WithStrategy(Priority), WithFallback(FallbackConfig{Enabled: true}), WithAIMD(testAIMD()))
	_, ok := single.ShareSnapshot()
	assert.False(t, ok, "one provider")
}

func TestAIMDCarriesOverAReloadThatKeepsIt(t *testing.T) {
	clock := fakeclock.New()
	old := priorityPair(t, clock)
	demote(t, old, clock)

	same := priorityPair(t, clock)
	same.AdoptProviderState(old)
	s, _ := same.ShareSnapshot()
	assert.InDelta(t, 0.5, s.Share, 1e-9, "same settings, same preferred provider")

	cfg := testAIMD()
	cfg.ShareStep = 0.2
	changed := priorityPair(t, clock, WithAIMD(cfg))
	changed.AdoptProviderState(same)
	s, _ = changed.ShareSnapshot()
	assert.Equal(t, 1.0, s.Share, "changed settings start afresh")
	s, _ = same.ShareSnapshot()
	assert.False(t, s.Active, "the replaced controller is retired")

	a := priorityPair(t, clock)
	demote(t, a, clock)
	parked := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://preferred.example.com"), 1)},
		WithStrategy(Priority), WithFallback(FallbackConfig{Enabled: true, OnStatus: []int{5}}), WithAIMD(testAIMD()), WithClock(clock))
	parked.AdoptProviderState(a)
	s, ok := parked.ShareSnapshot()
	require.True(t, ok)
	assert.False(t, s.Active, "one provider left: parked")
	back := priorityPair(t, clock)
	back.AdoptProviderState(parked)
	s, _ = back.ShareSnapshot()
	assert.True(t, s.Active, "two again: resumed")
	assert.InDelta(t, 0.5, s.Share, 1e-9, "with the share it had")
}

func TestServesScopesTheWalk(t *testing.T) {
	target := func(url string, s Serves) *Target {
		tg := newTestTarget(t, url)
		tg.Serves = s
		return tg
	}
	p := newTestPool(t, []*Provider{
		NewProvider(target("https://chat.example.com", ServesChat), 1),
		NewProvider(target("https://completions.example.com", ServesCompletions), 1),
		NewProvider(target("https://both.example.com", ServesBoth), 1),
	}, WithStrategy(Priority), WithFallback(FallbackConfig{Enabled: true}))
	walk := func(class *RequestClass) []int {
		it := p.SelectIter()
		if class != nil {
			it.SetClass(*class)
		}
		var got []int
		for sel := range func(yield func(Selection) bool) {
			for {
				s, ok := it.Next()
				if !ok || !yield(s) {
					return
				}
			}
		} {
			got = append(got, sel.Index)
			sel.Close()
		}
		return got
	}
	assert.Equal(t, []int{0, 2}, walk(nil), "chat by default: no completions-only provider")
	c := ClassCompletions
	assert.Equal(t, []int{1, 2}, walk(&c), "completions: no chat-only provider")

	plain := newTestPool(t, []*Provider{
		NewProvider(target("https://chat.example.com", ServesChat), 1),
		NewProvider(target("https://both.example.com", ServesBoth), 1),
	}, WithStrategy(Priority), WithFallback(FallbackConfig{Enabled: true}))
	it := plain.SelectIter()
	it.SetClass(ClassCompletions)
	sel, ok := it.Next()
	require.True(t, ok)
	assert.Equal(t, 0, sel.Index, "without a completions member, completions go anywhere")
	sel.Close()
}

func TestAffinityPriorityAdmitsAboutTheTarget(t *testing.T) {
	clock := fakeclock.At(time.UnixMilli(60_000 * 1000))
	cfg := DefaultAffinity(100)
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://preferred.example.com"), 1),
		NewProvider(newTestTarget(t, "https://alternate.example.com"), 1),
	}, WithStrategy(Priority), WithFallback(FallbackConfig{Enabled: true}), WithAffinity(cfg), WithClock(clock))
	first := func(key uint64) int {
		it := p.SelectIter()
		it.SetConversation(key)
		sel, ok := it.Next()
		require.True(t, ok)
		sel.Close()
		return sel.Index
	}
	key := func(i int) uint64 { return mix64(uint64(i) + 1) }
	for i := range 50 {
		assert.Equal(t, 0, first(key(i)), "below the target every conversation is admitted")
	}
	for i := range 400 { // 400 conversations by the next update
		first(key(i))
	}
	clock.Advance(time.Minute)
	first(key(0)) // recomputes the share
	preferred := 0
	for i := range 400 {
		if first(key(i)) == 0 {
			preferred++
		}
	}
	assert.InDelta(t, 100, preferred, float64(cfg.margin()), "about target_conversations stay on the preferred provider")
	for i := range 400 {
		want := first(key(i))
		assert.Equal(t, want, first(key(i)), "a conversation keeps its side")
	}
}

func TestAffinityWeightedKeepsAConversationWithinTheLoadBound(t *testing.T) {
	providers := make([]*Provider, 4)
	for i := range providers {
		providers[i] = NewProvider(newTestTarget(t, fmt.Sprintf("https://p%d.example.com", i)), 1)
	}
	p := newTestPool(t, providers, WithAffinity(DefaultAffinity(1)))
	pick := func(key uint64) Selection {
		it := p.SelectIter()
		it.SetConversation(key)
		sel, ok := it.Next()
		require.True(t, ok)
		return sel
	}
	homes := map[int]int{}
	for k := range uint64(400) {
		sel := pick(k)
		sel.Close()
		homes[sel.Index]++
		for range 3 {
			again := pick(k)
			again.Close()
			require.Equal(t, sel.Index, again.Index, "an idle pool keeps the conversation home")
		}
	}
	assert.Len(t, homes, 4, "conversations spread over every provider")

	// Four in flight on each provider; then conversation 7 stays home while
	// taking the request leaves home within ceil(1.25 × (in flight + 1) / 4).
	var held []Selection
	for range 16 {
		sel, ok := p.Select()
		require.True(t, ok)
		held = append(held, sel)
	}
	home := pick(7)  // 5 of 17: within ceil(5.3125) = 6
	again := pick(7) // 6 of 18: within ceil(5.625) = 6
	moved := pick(7) // 7 of 19 would pass ceil(5.9375) = 6
	assert.Equal(t, home.Index, again.Index)
	assert.NotEqual(t, home.Index, moved.Index, "past the load bound the strategy picks")
	closeAll(append(held, home, again, moved))
	for _, pr := range p.Providers() {
		assert.Zero(t, pr.ActiveConnections())
	}
}

func TestAffinityBoundsAreOnwards(t *testing.T) {
	assert.Empty(t, checkAffinity("a", DefaultAffinity(50)))
	for field, mutate := range map[string]func(*Affinity){
		"a.target_conversations": func(a *Affinity) { a.TargetConversations = 0 },
		"a.active_window_ms":     func(a *Affinity) { a.ActiveWindow = 999 * time.Millisecond },
		"a.update_interval_ms":   func(a *Affinity) { a.UpdateInterval = a.ActiveWindow + time.Second },
		"a.margin":               func(a *Affinity) { a.Margin = 51 },
		"a.max_tracked":          func(a *Affinity) { a.MaxTracked = 10 },
		"a.load_bound":           func(a *Affinity) { a.LoadBound = 0.9 },
	} {
		a := DefaultAffinity(50)
		mutate(&a)
		errs := checkAffinity("a", a)
		require.NotEmpty(t, errs, field)
		assert.Equal(t, field, errs[0].Place)
	}
}

func TestAffinityNeverSendsAConversationToAnEjectedHome(t *testing.T) {
	providers := make([]*Provider, 4)
	for i := range providers {
		providers[i] = NewProvider(newTestTarget(t, fmt.Sprintf("https://p%d.example.com", i)), 1)
	}
	p := newTestPool(t, providers, WithAffinity(DefaultAffinity(1)),
		WithOutlierDetection(OutlierDetection{ConsecutiveFailures: 1}), WithClock(fakeclock.New()))
	pick := func() Selection {
		it := p.SelectIter()
		it.SetConversation(42)
		sel, ok := it.Next()
		require.True(t, ok)
		return sel
	}
	home := pick()
	home.Report(Failure) // ejects it
	home.Close()
	next := pick()
	assert.NotEqual(t, home.Index, next.Index, "the ejected home is skipped")
	assert.False(t, next.Panic())
	next.Close()
}
