package pool

// The 30 tests of onwards 0.18.1 src/load_balancer.rs, one Go test each, in
// the seed's order. Where the seed's statistical tolerances were loose they
// are sized here from the distribution (see withinBinomial), and where the
// outcome is determined by least-connections the count is asserted exactly.

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newTestTarget is the seed's create_test_target.
func newTestTarget(t testing.TB, rawURL string) *Target {
	t.Helper()
	target, err := NewTarget(rawURL)
	require.NoError(t, err)
	return target
}

// newTestPool builds a pool and fails the test on error.
func newTestPool(t testing.TB, providers []*Provider, opts ...Option) *ProviderPool {
	t.Helper()
	p, err := NewProviderPool(providers, opts...)
	require.NoError(t, err)
	return p
}

// collect walks a pool's SelectIter to the end, holding every selection, as
// the seed's select_iter().collect() does. The caller closes them.
func collect(p *ProviderPool) []Selection {
	var out []Selection
	it := p.SelectIter()
	for {
		sel, ok := it.Next()
		if !ok {
			return out
		}
		out = append(out, sel)
	}
}

// hold makes n selections of p and returns them, held. The caller closes
// them.
func hold(t testing.TB, p *ProviderPool, n int) []Selection {
	t.Helper()
	held := make([]Selection, 0, n)
	for range n {
		sel, ok := p.Select()
		require.True(t, ok, "selection %d of %d", len(held)+1, n)
		held = append(held, sel)
	}
	return held
}

// selectCounts makes n selections of p, closing each at once, and counts
// them by provider.
func selectCounts(t testing.TB, p *ProviderPool, n int) []int {
	t.Helper()
	counts := make([]int, p.Len())
	for range n {
		sel, ok := p.Select()
		require.True(t, ok)
		counts[sel.Index]++
		sel.Close()
	}
	return counts
}

func closeAll(sels []Selection) {
	for _, s := range sels {
		s.Close()
	}
}

// falseFailure is the probability with which a statistical assertion may fail
// on correct code.
const falseFailure = 1e-9

// withinBinomial asserts that successes out of n trials, each a success with
// probability p, lies within the Hoeffding bound for falseFailure:
// P(|X - np| >= t) <= 2 exp(-2t²/n), so t = sqrt(n ln(2/δ) / 2). The bound
// holds for every p, with no normal approximation.
func withinBinomial(t *testing.T, successes, n int, p float64, what string) {
	t.Helper()
	withinBinomialAmong(t, successes, n, p, 1, what)
}

// withinBinomialAmong is withinBinomial for one of checks assertions made on
// the same run: each gets falseFailure/checks, so that the run as a whole
// still fails falsely less often than falseFailure.
func withinBinomialAmong(t *testing.T, successes, n int, p float64, checks int, what string) {
	t.Helper()
	delta := falseFailure / float64(checks)
	tol := math.Sqrt(float64(n) * math.Log(2/delta) / 2)
	mean := float64(n) * p
	assert.InDeltaf(t, mean, float64(successes), tol,
		"%s: %d of %d, want %.0f ± %.0f (p=%.4f)", what, successes, n, mean, tol, p)
}

func TestSingleProviderPool(t *testing.T) {
	p, err := NewSingleProviderPool(newTestTarget(t, "https://api.example.com"), 1)
	require.NoError(t, err)
	assert.Equal(t, 1, p.Len())
	assert.False(t, p.IsEmpty())

	sel, ok := p.Select()
	require.True(t, ok)
	defer sel.Close()
	assert.Equal(t, "https://api.example.com/", sel.Target.URL.String())
}

func TestEmptyPoolReturnsNone(t *testing.T) {
	p := newTestPool(t, nil)
	assert.True(t, p.IsEmpty())
	_, ok := p.Select()
	assert.False(t, ok)
}

func TestWeightedSelectionDistribution(t *testing.T) {
	// Guards are closed between selections, so every pick is a full tie and
	// the weighted tie-break decides: api1 should win 3/4 of the time.
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://api1.example.com"), 3),
		NewProvider(newTestTarget(t, "https://api2.example.com"), 1),
	})
	const n = 100_000
	counts := map[string]int{}
	for range n {
		sel, ok := p.Select()
		require.True(t, ok)
		counts[sel.Target.URL.String()]++
		sel.Close()
	}
	assert.Equal(t, n, counts["https://api1.example.com/"]+counts["https://api2.example.com/"])
	withinBinomial(t, counts["https://api1.example.com/"], n, 0.75, "api1 (weight 3 of 4)")
}

func TestLeastConnectionsPrefersLessLoaded(t *testing.T) {
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://api1.example.com"), 1),
		NewProvider(newTestTarget(t, "https://api2.example.com"), 1),
	})
	first, ok := p.Select()
	require.True(t, ok)
	second, ok := p.Select()
	require.True(t, ok)
	defer second.Close()
	assert.NotEqual(t, first.Index, second.Index, "should pick the less loaded provider")

	first.Close()
	third, ok := p.Select()
	require.True(t, ok)
	defer third.Close()
	assert.Equal(t, first.Index, third.Index, "should pick the provider whose guard was closed")
}

func TestWeightedLeastConnectionsRespectsWeights(t *testing.T) {
	// Holding every guard, least-connections keeps heavy/3 and light/1
	// within one step of each other, so after 40 picks the split is exactly
	// 30:10 whatever the tie-breaks were (the seed accepted a ratio of 2-5).
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://heavy.example.com"), 3),
		NewProvider(newTestTarget(t, "https://light.example.com"), 1),
	})
	held := hold(t, p, 40)
	assert.Equal(t, 30, p.Providers()[0].ActiveConnections())
	assert.Equal(t, 10, p.Providers()[1].ActiveConnections())
	closeAll(held)
	assert.Equal(t, 0, p.Providers()[0].ActiveConnections())
	assert.Equal(t, 0, p.Providers()[1].ActiveConnections())
}

func TestConcurrencyLimitSkipsFullProvider(t *testing.T) {
	p := newTestPool(t, []*Provider{
		NewProviderWithConcurrencyLimit(newTestTarget(t, "https://limited.example.com"), 1, 1),
		NewProvider(newTestTarget(t, "https://unlimited.example.com"), 1),
	})
	// Both start at 0, so the tie-break picks either; keep trying until the
	// limited one is picked (each try is 1/2, so 200 misses is 2^-200).
	var onLimited Selection
	for range 200 {
		sel, ok := p.Select()
		require.True(t, ok)
		if sel.Index == 0 {
			onLimited = sel
			break
		}
		sel.Close()
	}
	require.NotNil(t, onLimited.Guard, "should eventually select the limited provider")
	defer onLimited.Close()

	// The limited provider is full (1/1): every selection goes to the other.
	for range 20 {
		sel, ok := p.Select()
		require.True(t, ok)
		assert.Equal(t, 1, sel.Index, "should skip the full provider")
		sel.Close()
	}
}

func TestAllAtCapacityReturnsNone(t *testing.T) {
	p := newTestPool(t, []*Provider{
		NewProviderWithConcurrencyLimit(newTestTarget(t, "https://a.example.com"), 1, 1),
		NewProviderWithConcurrencyLimit(newTestTarget(t, "https://b.example.com"), 1, 1),
	})
	g1, ok := p.Select()
	require.True(t, ok)
	defer g1.Close()
	g2, ok := p.Select()
	require.True(t, ok)
	defer g2.Close()
	assert.NotEqual(t, g1.Index, g2.Index)

	_, ok = p.Select()
	assert.False(t, ok)
}

func TestFirstTarget(t *testing.T) {
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://api1.example.com"), 1),
		NewProvider(newTestTarget(t, "https://api2.example.com"), 2),
	})
	first := p.FirstTarget()
	require.NotNil(t, first)
	assert.Equal(t, "https://api1.example.com/", first.URL.String())
}

func TestProvidersAccessor(t *testing.T) {
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://api1.example.com"), 1),
		NewProvider(newTestTarget(t, "https://api2.example.com"), 2),
	})
	providers := p.Providers()
	require.Len(t, providers, 2)
	assert.Equal(t, uint32(1), providers[0].Weight)
	assert.Equal(t, uint32(2), providers[1].Weight)
}

func TestSelectIterPriorityStrategy(t *testing.T) {
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://primary.example.com"), 1),
		NewProvider(newTestTarget(t, "https://secondary.example.com"), 10),
		NewProvider(newTestTarget(t, "https://tertiary.example.com"), 5),
	}, WithStrategy(Priority))

	order := collect(p)
	defer closeAll(order)
	require.Len(t, order, 3)
	for i, want := range []string{
		"https://primary.example.com/",
		"https://secondary.example.com/",
		"https://tertiary.example.com/",
	} {
		assert.Equal(t, i, order[i].Index)
		assert.Equal(t, want, order[i].Target.URL.String())
	}
}

func TestSelectIterPriorityWithReplacementStillAdvances(t *testing.T) {
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://primary.example.com"), 1),
		NewProvider(newTestTarget(t, "https://secondary.example.com"), 1),
		NewProvider(newTestTarget(t, "https://tertiary.example.com"), 1),
	}, WithStrategy(Priority), WithFallback(FallbackConfig{Enabled: true, WithReplacement: true, MaxAttempts: 3}))

	// WithReplacement is ignored by priority: the walk still advances.
	order := collect(p)
	defer closeAll(order)
	require.Len(t, order, 3)
	assert.Equal(t, "https://primary.example.com/", order[0].Target.URL.String())
	assert.Equal(t, "https://secondary.example.com/", order[1].Target.URL.String())
	assert.Equal(t, "https://tertiary.example.com/", order[2].Target.URL.String())
}

func TestSelectIterWeightedRandomIncludesAll(t *testing.T) {
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://api1.example.com"), 3),
		NewProvider(newTestTarget(t, "https://api2.example.com"), 1),
	}, WithStrategy(WeightedRandom))

	order := collect(p)
	defer closeAll(order)
	require.Len(t, order, 2)
	urls := map[string]bool{}
	for _, sel := range order {
		urls[sel.Target.URL.String()] = true
	}
	assert.True(t, urls["https://api1.example.com/"])
	assert.True(t, urls["https://api2.example.com/"])
}

func TestSelectIterWeightedRandomDistribution(t *testing.T) {
	// Guards are closed between walks, so each walk's first pick is a full
	// tie, broken 9:1.
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://heavy.example.com"), 9),
		NewProvider(newTestTarget(t, "https://light.example.com"), 1),
	}, WithStrategy(WeightedRandom))

	const n = 100_000
	heavyFirst := 0
	for range n {
		order := collect(p)
		require.Len(t, order, 2)
		if order[0].Target.URL.String() == "https://heavy.example.com/" {
			heavyFirst++
		}
		assert.NotEqual(t, order[0].Index, order[1].Index)
		closeAll(order)
	}
	withinBinomial(t, heavyFirst, n, 0.9, "heavy first (weight 9 of 10)")
}

func TestSelectIterEmptyPool(t *testing.T) {
	p := newTestPool(t, nil)
	assert.Empty(t, collect(p))
}

func TestSelectIterSingleProvider(t *testing.T) {
	for _, strategy := range []LoadBalanceStrategy{Priority, WeightedRandom} {
		t.Run(strategy.String(), func(t *testing.T) {
			p := newTestPool(t, []*Provider{
				NewProvider(newTestTarget(t, "https://only.example.com"), 1),
			}, WithStrategy(strategy))
			order := collect(p)
			defer closeAll(order)
			require.Len(t, order, 1)
			assert.Equal(t, "https://only.example.com/", order[0].Target.URL.String())
		})
	}
}

func TestSelectIterWithReplacementAllowsDuplicates(t *testing.T) {
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://api1.example.com"), 9),
		NewProvider(newTestTarget(t, "https://api2.example.com"), 1),
	}, WithFallback(FallbackConfig{Enabled: true, WithReplacement: true, MaxAttempts: 5}))

	// Five attempts over two providers must repeat one; the walk holds its
	// guards, so least-connections spreads them 4:1 by weight 9:1 (a/9 stays
	// below b/1 until a reaches 9 once b is 1).
	for range 100 {
		order := collect(p)
		require.Len(t, order, 5)
		seen := map[int]int{}
		for _, sel := range order {
			seen[sel.Index]++
		}
		assert.Equal(t, map[int]int{0: 4, 1: 1}, seen)
		closeAll(order)
	}
}

func TestSelectIterMaxAttemptsControlsLength(t *testing.T) {
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://api1.example.com"), 1),
		NewProvider(newTestTarget(t, "https://api2.example.com"), 1),
		NewProvider(newTestTarget(t, "https://api3.example.com"), 1),
	}, WithFallback(FallbackConfig{Enabled: true, MaxAttempts: 2}))

	order := collect(p)
	defer closeAll(order)
	require.Len(t, order, 2, "max_attempts should cap the walk")
	assert.NotEqual(t, order[0].Index, order[1].Index, "without replacement, entries are unique")
}

func TestSelectIterMaxAttemptsWithPriority(t *testing.T) {
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://primary.example.com"), 1),
		NewProvider(newTestTarget(t, "https://secondary.example.com"), 1),
		NewProvider(newTestTarget(t, "https://tertiary.example.com"), 1),
	}, WithStrategy(Priority), WithFallback(FallbackConfig{Enabled: true, MaxAttempts: 2}))

	order := collect(p)
	defer closeAll(order)
	require.Len(t, order, 2)
	assert.Equal(t, "https://primary.example.com/", order[0].Target.URL.String())
	assert.Equal(t, "https://secondary.example.com/", order[1].Target.URL.String())
}

func TestSelectIterDefaultsPreserveBehavior(t *testing.T) {
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://api1.example.com"), 3),
		NewProvider(newTestTarget(t, "https://api2.example.com"), 1),
	})
	_, hasFallback := p.Fallback()
	require.False(t, hasFallback)

	order := collect(p)
	defer closeAll(order)
	require.Len(t, order, 2)
	assert.ElementsMatch(t,
		[]string{"https://api1.example.com/", "https://api2.example.com/"},
		[]string{order[0].Target.URL.String(), order[1].Target.URL.String()})
}

func TestSelectIterWithReplacementSingleProvider(t *testing.T) {
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://only.example.com"), 1),
	}, WithFallback(FallbackConfig{Enabled: true, WithReplacement: true, MaxAttempts: 3}))

	order := collect(p)
	defer closeAll(order)
	require.Len(t, order, 3, "a single provider with replacement should repeat")
	for _, sel := range order {
		assert.Equal(t, 0, sel.Index)
		assert.Equal(t, "https://only.example.com/", sel.Target.URL.String())
	}
	assert.Equal(t, 3, p.Providers()[0].ActiveConnections())
}

func TestSelectIterWithReplacementRespectsWeights(t *testing.T) {
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://heavy.example.com"), 99),
		NewProvider(newTestTarget(t, "https://light.example.com"), 1),
	}, WithFallback(FallbackConfig{Enabled: true, WithReplacement: true, MaxAttempts: 10}))

	// The walk holds its guards, so after the first pick least-connections
	// decides: light is picked exactly once (at 0 in flight it scores below
	// any heavy count under 99) and heavy the other nine times. The seed
	// accepted anything over 85%; the exact figure is 90%. The first pick is
	// the weighted tie-break, 99:1.
	const n = 20_000
	heavy, heavyFirst := 0, 0
	for range n {
		order := collect(p)
		require.Len(t, order, 10)
		for _, sel := range order {
			if sel.Target.URL.String() == "https://heavy.example.com/" {
				heavy++
			}
		}
		if order[0].Index == 0 {
			heavyFirst++
		}
		closeAll(order)
	}
	assert.Equal(t, 9*n, heavy)
	withinBinomial(t, heavyFirst, n, 0.99, "heavy first (weight 99 of 100)")
}

func TestEvaluateRoutingRulesNoRules(t *testing.T) {
	p := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://api.example.com"), 1)})
	_, ok := p.EvaluateRoutingRules(map[string]string{"purpose": "batch"})
	assert.False(t, ok)
}

func TestEvaluateRoutingRulesDeny(t *testing.T) {
	p := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://api.example.com"), 1)},
		WithRoutingRules(RoutingRule{
			MatchLabels: map[string]string{"purpose": "playground"},
			Action:      RoutingAction{Type: ActionDeny},
		}))

	action, ok := p.EvaluateRoutingRules(map[string]string{"purpose": "playground"})
	require.True(t, ok)
	assert.Equal(t, ActionDeny, action.Type)

	_, ok = p.EvaluateRoutingRules(map[string]string{"purpose": "batch"})
	assert.False(t, ok)
	_, ok = p.EvaluateRoutingRules(map[string]string{})
	assert.False(t, ok)
	_, ok = p.EvaluateRoutingRules(nil)
	assert.False(t, ok)
}

func TestEvaluateRoutingRulesRedirect(t *testing.T) {
	p := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://api.example.com"), 1)},
		WithRoutingRules(RoutingRule{
			MatchLabels: map[string]string{"purpose": "batch"},
			Action:      RoutingAction{Type: ActionRedirect, Target: "gpt-4o-mini"},
		}))

	action, ok := p.EvaluateRoutingRules(map[string]string{"purpose": "batch"})
	require.True(t, ok)
	assert.Equal(t, RoutingAction{Type: ActionRedirect, Target: "gpt-4o-mini"}, action)
}

func TestEvaluateRoutingRulesFirstMatchWins(t *testing.T) {
	p := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://api.example.com"), 1)},
		WithRoutingRules(
			RoutingRule{MatchLabels: map[string]string{"purpose": "batch"}, Action: RoutingAction{Type: ActionDeny}},
			RoutingRule{MatchLabels: map[string]string{"purpose": "batch"}, Action: RoutingAction{Type: ActionRedirect, Target: "other"}},
		))

	action, ok := p.EvaluateRoutingRules(map[string]string{"purpose": "batch"})
	require.True(t, ok)
	assert.Equal(t, ActionDeny, action.Type)
}

func TestEvaluateRoutingRulesMultipleLabelConditions(t *testing.T) {
	p := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://api.example.com"), 1)},
		WithRoutingRules(RoutingRule{
			MatchLabels: map[string]string{"purpose": "batch", "tier": "free"},
			Action:      RoutingAction{Type: ActionDeny},
		}))

	action, ok := p.EvaluateRoutingRules(map[string]string{"purpose": "batch", "tier": "free"})
	require.True(t, ok)
	assert.Equal(t, ActionDeny, action.Type)

	_, ok = p.EvaluateRoutingRules(map[string]string{"purpose": "batch"})
	assert.False(t, ok, "every label must match")

	action, ok = p.EvaluateRoutingRules(map[string]string{"purpose": "batch", "tier": "free", "org": "acme"})
	require.True(t, ok, "extra labels on the key do not prevent a match")
	assert.Equal(t, ActionDeny, action.Type)
}

func TestAdoptProviderStatePreservesActiveCounts(t *testing.T) {
	old := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://api1.example.com"), 3),
		NewProvider(newTestTarget(t, "https://api2.example.com"), 1),
	})
	held := hold(t, old, 8)
	// 8 picks at weights 3:1 with guards held split exactly 6:2.
	old0, old1 := old.Providers()[0].ActiveConnections(), old.Providers()[1].ActiveConnections()
	assert.Equal(t, 6, old0)
	assert.Equal(t, 2, old1)

	// A reloaded config builds new providers for the same upstreams.
	next := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://api1.example.com"), 3),
		NewProvider(newTestTarget(t, "https://api2.example.com"), 1),
	})
	assert.Equal(t, 0, next.Providers()[0].ActiveConnections())
	assert.Equal(t, 0, next.Providers()[1].ActiveConnections())

	next.AdoptProviderState(old)
	assert.Equal(t, old0, next.Providers()[0].ActiveConnections())
	assert.Equal(t, old1, next.Providers()[1].ActiveConnections())

	// Closing a guard of the old pool shows in the new one.
	held[len(held)-1].Close()
	held = held[:len(held)-1]
	assert.Equal(t, old0+old1-1,
		next.Providers()[0].ActiveConnections()+next.Providers()[1].ActiveConnections())

	closeAll(held)
	assert.Equal(t, 0, next.Providers()[0].ActiveConnections())
	assert.Equal(t, 0, next.Providers()[1].ActiveConnections())
}

func TestAdoptProviderStateNewProviderStartsAtZero(t *testing.T) {
	old := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://api1.example.com"), 1)})
	held := hold(t, old, 5)
	defer closeAll(held)

	next := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://api1.example.com"), 1),
		NewProvider(newTestTarget(t, "https://api2.example.com"), 1),
	})
	next.AdoptProviderState(old)
	assert.Equal(t, 5, next.Providers()[0].ActiveConnections())
	assert.Equal(t, 0, next.Providers()[1].ActiveConnections())
}

func TestAdoptProviderStateRemovedProviderIgnored(t *testing.T) {
	old := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://api1.example.com"), 1),
		NewProvider(newTestTarget(t, "https://api2.example.com"), 1),
	})
	held := hold(t, old, 4)
	defer closeAll(held)

	next := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://api1.example.com"), 1)})
	next.AdoptProviderState(old)
	// Equal weights with guards held split 4 picks 2:2.
	assert.Equal(t, 2, next.Providers()[0].ActiveConnections())
	assert.Equal(t, 1, next.Len())
}

func TestAdoptProviderStatePreservesPoolConcurrencyLimiter(t *testing.T) {
	old := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://api1.example.com"), 1)},
		WithConcurrencyLimiter(NewConcurrencyLimiterWithLimit(100)))
	g1, ok := old.ConcurrencyLimiter().TryAcquire()
	require.True(t, ok)
	defer g1.Close()
	g2, ok := old.ConcurrencyLimiter().TryAcquire()
	require.True(t, ok)
	defer g2.Close()
	assert.Equal(t, 2, old.ConcurrencyLimiter().Active())

	next := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://api1.example.com"), 1)},
		WithConcurrencyLimiter(NewConcurrencyLimiterWithLimit(200)))
	next.AdoptProviderState(old)

	assert.Equal(t, 2, next.ConcurrencyLimiter().Active(), "adopts the active count")
	limit, ok := next.ConcurrencyLimiter().Limit()
	assert.True(t, ok)
	assert.Equal(t, 200, limit, "the new limit applies")
}

// A provider in two pools, one of which adopts the counters of a pool it
// replaces: the other pool selects by the adopted count too, at once.
func TestAdoptionReachesEveryPoolOfAProvider(t *testing.T) {
	old := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://shared.example.com"), 1)})
	held := hold(t, old, 3)
	shared := NewProvider(newTestTarget(t, "https://shared.example.com"), 1)
	other := NewProvider(newTestTarget(t, "https://other.example.com"), 1)
	next := newTestPool(t, []*Provider{shared})
	neighbour := newTestPool(t, []*Provider{shared, other}) // built before the adoption
	next.AdoptProviderState(old)
	require.Equal(t, 3, shared.ActiveConnections())

	// shared has 3 in flight, other none: the neighbour's next three go to
	// other, then the two tie.
	var picks []Selection
	for range 3 {
		sel, ok := neighbour.Select()
		require.True(t, ok)
		assert.Equal(t, 1, sel.Index, "the neighbour sees the adopted count")
		picks = append(picks, sel)
	}
	closeAll(held)
	closeAll(picks)
	assert.Equal(t, 0, shared.ActiveConnections())
	assert.Equal(t, 0, other.ActiveConnections())
}
