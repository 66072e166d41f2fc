package pool

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShouldFallbackOnStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		enabled bool
		on      []int
		status  int
		want    bool
	}{
		{"disabled ignores patterns", false, []int{503}, 503, false},
		{"no patterns", true, nil, 503, false},
		{"exact match", true, []int{503}, 503, true},
		{"exact miss", true, []int{503}, 502, false},
		{"class 5 low end", true, []int{5}, 500, true},
		{"class 5 high end", true, []int{5}, 599, true},
		{"class 5 excludes 499", true, []int{5}, 499, false},
		{"class 5 excludes 600", true, []int{5}, 600, false},
		{"class 4", true, []int{4}, 429, true},
		{"decade 50 low end", true, []int{50}, 500, true},
		{"decade 50 high end", true, []int{50}, 509, true},
		{"decade 50 excludes 510", true, []int{50}, 510, false},
		{"decade 42 matches 429", true, []int{42}, 429, true},
		{"several patterns, second matches", true, []int{429, 5}, 502, true},
		{"several patterns, none match", true, []int{429, 5}, 404, false},
		{"success never matches class 5", true, []int{5}, 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := FallbackConfig{Enabled: tt.enabled, OnStatus: tt.on}
			assert.Equal(t, tt.want, f.ShouldFallbackOnStatus(tt.status))

			p := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://a.example.com"), 1)}, WithFallback(f))
			assert.Equal(t, tt.want, p.ShouldFallbackOnStatus(tt.status), "the pool agrees with its config")
		})
	}
}

func TestPoolFallbackAccessors(t *testing.T) {
	t.Parallel()
	targets := []*Provider{NewProvider(newTestTarget(t, "https://a.example.com"), 1)}

	none := newTestPool(t, targets)
	_, ok := none.Fallback()
	assert.False(t, ok)
	assert.False(t, none.FallbackEnabled())
	assert.False(t, none.ShouldFallbackOnRateLimit())
	assert.False(t, none.ShouldFallbackOnStatus(503))

	off := newTestPool(t, targets, WithFallback(FallbackConfig{OnStatus: []int{5}, OnRateLimit: true}))
	_, ok = off.Fallback()
	assert.True(t, ok)
	assert.False(t, off.FallbackEnabled())
	assert.False(t, off.ShouldFallbackOnRateLimit(), "on_rate_limit needs enabled")

	onStatus := []int{5}
	on := newTestPool(t, targets, WithFallback(FallbackConfig{Enabled: true, OnStatus: onStatus, OnRateLimit: true}))
	assert.True(t, on.FallbackEnabled())
	assert.True(t, on.ShouldFallbackOnRateLimit())
	onStatus[0] = 4
	assert.True(t, on.ShouldFallbackOnStatus(503), "the pool keeps its own copy of on_status")
	f, _ := on.Fallback()
	f.OnStatus[0] = 4
	assert.True(t, on.ShouldFallbackOnStatus(503), "Fallback returns a copy")
}

func TestFallbackConfigJSON(t *testing.T) {
	t.Parallel()
	in := `{"enabled":true,"on_status":[429,5],"on_rate_limit":true,"with_replacement":true,"max_attempts":3}`
	var f FallbackConfig
	require.NoError(t, json.Unmarshal([]byte(in), &f))
	assert.Equal(t, FallbackConfig{Enabled: true, OnStatus: []int{429, 5}, OnRateLimit: true, WithReplacement: true, MaxAttempts: 3}, f)
	out, err := json.Marshal(f)
	require.NoError(t, err)
	assert.JSONEq(t, in, string(out))

	out, err = json.Marshal(FallbackConfig{Enabled: true})
	require.NoError(t, err)
	assert.JSONEq(t, `{"enabled":true,"on_status":null,"on_rate_limit":false,"with_replacement":false}`, string(out),
		"max_attempts 0 means the default and is left out")
}

func TestSelectIterEndsWhenNothingEligible(t *testing.T) {
	t.Parallel()
	// Three attempts allowed with replacement, but both providers hold one
	// request at most: the walk yields two and then stops for good.
	p := newTestPool(t, []*Provider{
		NewProviderWithConcurrencyLimit(newTestTarget(t, "https://a.example.com"), 1, 1),
		NewProviderWithConcurrencyLimit(newTestTarget(t, "https://b.example.com"), 1, 1),
	}, WithFallback(FallbackConfig{Enabled: true, WithReplacement: true, MaxAttempts: 3}))

	it := p.SelectIter()
	a, ok := it.Next()
	require.True(t, ok)
	b, ok := it.Next()
	require.True(t, ok)
	assert.NotEqual(t, a.Index, b.Index)
	_, ok = it.Next()
	assert.False(t, ok)

	a.Close()
	_, ok = it.Next()
	assert.False(t, ok, "an ended walk stays ended")
	b.Close()
}

func TestSelectIterSkipsFullProviders(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, []*Provider{
		NewProviderWithConcurrencyLimit(newTestTarget(t, "https://a.example.com"), 1, 0),
		NewProvider(newTestTarget(t, "https://b.example.com"), 1),
		NewProviderWithConcurrencyLimit(newTestTarget(t, "https://c.example.com"), 1, 0),
	}, WithStrategy(Priority))
	order := collect(p)
	defer closeAll(order)
	require.Len(t, order, 1)
	assert.Equal(t, 1, order[0].Index)
}

func TestSelectIterOverSixtyFourProviders(t *testing.T) {
	t.Parallel()
	// Exclusions past index 63 spill out of the inline word of the bitset.
	for _, strategy := range []LoadBalanceStrategy{WeightedRandom, Priority} {
		t.Run(strategy.String(), func(t *testing.T) {
			const n = 200
			providers := make([]*Provider, n)
			for i := range providers {
				providers[i] = NewProvider(newTestTarget(t, fmt.Sprintf("https://p%d.example.com", i)), uint32(i%4+1))
			}
			p := newTestPool(t, providers, WithStrategy(strategy))
			order := collect(p)
			require.Len(t, order, n)
			seen := make(map[int]bool, n)
			for i, sel := range order {
				assert.False(t, seen[sel.Index], "provider %d yielded twice", sel.Index)
				seen[sel.Index] = true
				if strategy == Priority {
					assert.Equal(t, i, sel.Index)
				}
			}
			closeAll(order)
			for i, pr := range p.Providers() {
				assert.Equal(t, 0, pr.ActiveConnections(), "provider %d", i)
			}
		})
	}
}

func TestAttemptsRangeLoop(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://a.example.com"), 1),
		NewProvider(newTestTarget(t, "https://b.example.com"), 1),
		NewProvider(newTestTarget(t, "https://c.example.com"), 1),
	}, WithStrategy(Priority))

	var got []int
	for sel := range p.Attempts() {
		got = append(got, sel.Index)
		assert.Equal(t, 1, p.Providers()[sel.Index].ActiveConnections())
		sel.Close()
	}
	assert.Equal(t, []int{0, 1, 2}, got)

	// Breaking out leaves nothing held but the selection in hand; a second
	// loop is a fresh walk.
	var kept Selection
	for sel := range p.Attempts() {
		kept = sel
		break
	}
	assert.Equal(t, 0, kept.Index)
	assert.Equal(t, 1, p.Providers()[0].ActiveConnections())
	kept.Close()
	for i, pr := range p.Providers() {
		assert.Equal(t, 0, pr.ActiveConnections(), "provider %d", i)
	}
}

func TestWeightZeroDrainsUnderWeightedRandomOnly(t *testing.T) {
	t.Parallel()
	providers := func() []*Provider {
		return []*Provider{
			NewProvider(newTestTarget(t, "https://drained.example.com"), 0),
			NewProvider(newTestTarget(t, "https://live.example.com"), 1),
		}
	}
	weighted := newTestPool(t, providers())
	for range 1000 {
		sel, ok := weighted.Select()
		require.True(t, ok)
		assert.Equal(t, 1, sel.Index, "weighted_random never picks weight 0")
		sel.Close()
	}
	order := collect(weighted)
	require.Len(t, order, 1, "the walk ends once only weight-0 providers are left")
	closeAll(order)

	onlyZero := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://drained.example.com"), 0)})
	_, ok := onlyZero.Select()
	assert.False(t, ok)

	priority := newTestPool(t, providers(), WithStrategy(Priority))
	sel, ok := priority.Select()
	require.True(t, ok)
	assert.Equal(t, 0, sel.Index, "priority picks weight 0 normally")
	sel.Close()
}

func TestLeastLoadedComparesExactly(t *testing.T) {
	t.Parallel()
	// Weight 3 holding 1 and weight 6 holding 2 score exactly alike
	// (1*6 == 2*3), so they tie and share the picks 3:6.
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://a.example.com"), 3),
		NewProvider(newTestTarget(t, "https://b.example.com"), 6),
	})
	ga, _ := p.entries[0].lim.TryAcquire()
	gb1, _ := p.entries[1].lim.TryAcquire()
	gb2, _ := p.entries[1].lim.TryAcquire()
	defer ga.Close()
	defer gb1.Close()
	defer gb2.Close()

	const n = 60_000
	picksA := 0
	for range n {
		sel, ok := p.Select()
		require.True(t, ok)
		if sel.Index == 0 {
			picksA++
		}
		sel.Close()
	}
	withinBinomial(t, picksA, n, 3.0/9.0, "tied provider a (weight 3 of 9)")

	// One more request on a makes b strictly better: b every time.
	ga2, _ := p.entries[0].lim.TryAcquire()
	defer ga2.Close()
	for range 100 {
		sel, ok := p.Select()
		require.True(t, ok)
		assert.Equal(t, 1, sel.Index)
		sel.Close()
	}
}

func TestTieBreakFollowsWeightsAcrossManyProviders(t *testing.T) {
	t.Parallel()
	// The reservoir tie-break over 16 providers of weights 1..4: each
	// provider's share must match weight/total.
	const providers, n = 16, 200_000
	ps := make([]*Provider, providers)
	total := 0
	for i := range ps {
		w := i%4 + 1
		total += w
		ps[i] = NewProvider(newTestTarget(t, fmt.Sprintf("https://p%d.example.com", i)), uint32(w))
	}
	p := newTestPool(t, ps)
	counts := selectCounts(t, p, n)
	for i, c := range counts {
		withinBinomialAmong(t, c, n, float64(i%4+1)/float64(total), providers, fmt.Sprintf("provider %d", i))
	}
}
