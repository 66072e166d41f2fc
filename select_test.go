package pool

import (
	"fmt"
	"math/bits"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// widePool is a pool of 65 providers, so that selection spans two words of
// its bit masks: providers 0-63 of weight 1 and provider 64 of weight last.
func widePool(t *testing.T, last uint32) *ProviderPool {
	providers := make([]*Provider, 65)
	for i := range providers {
		w := uint32(1)
		if i == 64 {
			w = last
		}
		providers[i] = NewProvider(newTestTarget(t, fmt.Sprintf("https://p%d.example.com", i)), w)
	}
	return newTestPool(t, providers)
}

func TestTieBreakAcrossWords(t *testing.T) {
	t.Parallel()
	// Provider 64 alone in the second word weighs as much as the 64 of the
	// first: it must win half of the full ties.
	p := widePool(t, 64)
	const n = 100_000
	last, first := 0, 0
	for range n {
		sel, ok := p.Select()
		require.True(t, ok)
		if sel.Index == 64 {
			last++
		} else if sel.Index == 0 {
			first++
		}
		sel.Close()
	}
	withinBinomialAmong(t, last, n, 0.5, 2, "provider 64 (weight 64 of 128)")
	withinBinomialAmong(t, first, n, 1.0/128, 2, "provider 0 (weight 1 of 128)")
}

func TestLeastLoadedAcrossWords(t *testing.T) {
	t.Parallel()
	for _, free := range []int{3, 63, 64} {
		t.Run(fmt.Sprint("only provider ", free, " idle"), func(t *testing.T) {
			p := widePool(t, 1)
			var held []*ConcurrencyGuard
			for i := range p.entries {
				if i != free {
					g, _ := p.entries[i].lim.TryAcquire()
					held = append(held, g)
				}
			}
			for range 50 {
				sel, ok := p.Select()
				require.True(t, ok)
				assert.Equal(t, free, sel.Index)
				sel.Close()
			}
			for _, g := range held {
				g.Close()
			}
		})
	}
}

func TestSelectRetriesWhenChosenProviderFills(t *testing.T) {
	t.Parallel()
	// Provider 0 looks idle to the scan but refuses the acquire, as if a
	// concurrent acquire had filled it between the two: its one slot is
	// held, and the scan reads a stale, idle counter in its place.
	p := newTestPool(t, []*Provider{
		NewProviderWithConcurrencyLimit(newTestTarget(t, "https://racy.example.com"), 100, 1),
		NewProvider(newTestTarget(t, "https://steady.example.com"), 1),
	})
	g, ok := p.entries[0].lim.TryAcquire()
	require.True(t, ok)
	defer g.Close()
	p.entries[0].ctr.Store(new(counter))
	for range 100 {
		sel, ok := p.Select()
		require.True(t, ok)
		assert.Equal(t, 1, sel.Index, "the refused provider is excluded and the choice made again")
		sel.Close()
	}
}

func TestWalkRandomIsUniform(t *testing.T) {
	t.Parallel()
	var w walk
	for _, n := range []uint64{1, 2, 3, 7, 1<<63 + 1, ^uint64(0)} {
		for range 1000 {
			require.Less(t, w.uint64n(n), n)
		}
	}
	// Each of 5 values 200 000 times in 1 000 000 draws.
	const n, draws = 5, 1_000_000
	counts := make([]int, n)
	for range draws {
		counts[w.uint64n(n)]++
	}
	for v, c := range counts {
		withinBinomialAmong(t, c, draws, 1.0/n, n, fmt.Sprintf("value %d", v))
	}
	// A range just past 2^63, where about half the draws are rejected, is
	// still split evenly.
	const big = 1<<63 + 1
	below := 0
	for range 100_000 {
		if w.uint64n(big) < big/2 {
			below++
		}
	}
	withinBinomial(t, below, 100_000, 0.5, "lower half of a range just past 2^63")
}

// Scores compare exactly up to the largest counts and weights: counts up
// to 2^31 (the most a provider holds) and weights up to 2^32-1. Each case
// sets the in-flight counts of three providers of the given weights and
// lists the providers tied at the lowest count/weight.
func TestLeastLoadedWithHugeCounts(t *testing.T) {
	t.Parallel()
	const (
		x = 1 << 31 // maxHeld
		w = 1<<32 - 1
	)
	for _, c := range []struct {
		counts  [3]uint64
		weights [3]uint32
		want    []int
	}{
		{[3]uint64{x - 1, x - 1, x - 1}, [3]uint32{w, w - 1, w}, []int{0, 2}},
		// (x-1)/(2x-1) against (x-2)/(2x-2): 2x²-4x+2 > 2x²-5x+2.
		{[3]uint64{x - 1, x - 2, x - 1}, [3]uint32{w, w - 1, 1}, []int{1}},
		{[3]uint64{3, x - 1, x / 2}, [3]uint32{1, 2, 3}, []int{0}},
		{[3]uint64{x, 0, x - 1}, [3]uint32{w, 1, w}, []int{1}},
		// (x/2-1)/(x-1), a hair below 1/2, against (x-1)/(2x-2), exactly 1/2.
		{[3]uint64{x/2 - 1, x - 1, x/2 - 1}, [3]uint32{w / 2, w - 1, w / 2}, []int{0, 2}},
		{[3]uint64{x / 2, x - 1, x / 2}, [3]uint32{w / 2, w - 1, w / 2}, []int{1}},
	} {
		providers := make([]*Provider, 3)
		for i, wt := range c.weights {
			providers[i] = NewProvider(newTestTarget(t, fmt.Sprintf("https://p%d.example.com", i)), wt)
		}
		p := newTestPool(t, providers)
		for i, n := range c.counts {
			p.entries[i].lim.counter().state.Store(n)
		}
		seen := map[int]bool{}
		for range 200 {
			sel, ok := p.Select()
			require.True(t, ok)
			require.Contains(t, c.want, sel.Index, "counts %v", c.counts)
			seen[sel.Index] = true
			sel.Close()
		}
		// The tied providers have equal weights: missing one in 200 draws
		// has probability 2^-199.
		assert.Len(t, seen, len(c.want), "counts %v: every tied provider is picked", c.counts)
	}
}

// A provider holding 2^31 slots, the most a counter holds, is full even
// without a limit: Select passes it over, and fails when every provider
// is there; a refused take leaves the count as it was.
func TestProviderAtMaxHeldIsFull(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://a.example.com"), 1),
		NewProvider(newTestTarget(t, "https://b.example.com"), 1),
	})
	a, b := p.entries[0].lim.counter(), p.entries[1].lim.counter()
	a.state.Store(maxHeld)
	b.state.Store(maxHeld - 1)
	sel, ok := p.Select()
	require.True(t, ok)
	assert.Equal(t, 1, sel.Index)
	_, ok = p.Select()
	assert.False(t, ok, "both providers hold 2^31")
	assert.True(t, p.Providers()[0].limiter.AtCapacity())

	// The race that take undoes: the add goes past, the count comes back.
	_, ok = a.take(maxHeld)
	assert.False(t, ok)
	assert.Equal(t, int64(maxHeld), a.inFlight())
	sel.Close()
	assert.Equal(t, int64(maxHeld-1), b.inFlight())
}

// An idle pool's tie-break is a binary search over the word's running
// weights; providers of weight 0 in it, at either end or inside, are
// never chosen, and the others are chosen in proportion to weight.
func TestIdleTieBreakSkipsWeightZero(t *testing.T) {
	t.Parallel()
	weights := []uint32{0, 3, 0, 0, 1, 0, 4, 0}
	providers := make([]*Provider, len(weights))
	for i, w := range weights {
		providers[i] = NewProvider(newTestTarget(t, fmt.Sprintf("https://p%d.example.com", i)), w)
	}
	p := newTestPool(t, providers)
	const n = 80_000
	counts := selectCounts(t, p, n)
	for i, w := range weights {
		if w == 0 {
			assert.Zero(t, counts[i], "provider %d has weight 0", i)
			continue
		}
		withinBinomialAmong(t, counts[i], n, float64(w)/8, 3, fmt.Sprintf("provider %d (weight %d of 8)", i, w))
	}
}

// The tie pick draws in proportion to weight however the ties sit in their
// word: two of them (one comparison), all of it (binary search), many of them holding half its weight or
// more (draws from the whole word until one is a tie), or fewer (a walk
// over the ties).
func TestPickTieFollowsWeights(t *testing.T) {
	t.Parallel()
	weights := make([]uint32, 60) // 0 to 8, zeros among them
	for i := range weights {
		weights[i] = uint32(i * 7 % 9)
	}
	providers := make([]*Provider, len(weights))
	for i, w := range weights {
		providers[i] = NewProvider(newTestTarget(t, fmt.Sprintf("https://p%d.example.com", i)), w)
	}
	p := newTestPool(t, providers)
	masks := map[string]uint64{
		"whole word":          p.live[0],
		"dense, one left out": p.live[0] &^ (1 << 3),
		"half":                p.live[0] & 0x5555_5555_5555_5555,
		"sparse":              1<<1 | 1<<2 | 1<<8,
		"two":                 1<<2 | 1<<5,
	}
	require.Greater(t, bits.OnesCount64(masks["dense, one left out"]), 48, "the dense mask takes the draws")
	checks := 0
	for _, mask := range masks {
		checks += bits.OnesCount64(mask)
	}
	for name, mask := range masks {
		var total uint64
		for m := mask; m != 0; m &= m - 1 {
			total += uint64(weights[bits.TrailingZeros64(m)])
		}
		var w walk
		const n = 300_000
		counts := make([]int, len(weights))
		for range n {
			counts[p.pickTie(0, mask, total, &w)]++
		}
		for i, c := range counts {
			if mask&(1<<i) == 0 {
				assert.Zero(t, c, "%s: provider %d is not a tie", name, i)
				continue
			}
			withinBinomialAmong(t, c, n, float64(weights[i])/float64(total), checks,
				fmt.Sprintf("%s: provider %d (weight %d of %d)", name, i, weights[i], total))
		}
	}
}

// A provider whose limit is 0 never serves, idle as it looks: the scan
// does not visit it, and the tie-break among the idle never lands on it,
// however much of the word's weight it holds.
func TestProviderWithLimitZeroIsNeverPicked(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, []*Provider{
		NewProviderWithConcurrencyLimit(newTestTarget(t, "https://closed.example.com"), 100, 0),
		NewProvider(newTestTarget(t, "https://a.example.com"), 1),
		NewProvider(newTestTarget(t, "https://b.example.com"), 1),
	})
	seen := selectCounts(t, p, 1000)
	assert.Zero(t, seen[0], "the provider with limit 0 was picked")
	// Each open provider has probability 1/2: missing one in 1000 draws
	// has probability 2^-999.
	assert.NotZero(t, seen[1])
	assert.NotZero(t, seen[2])
}
