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
	// Provider 0 looks idle to the scan (its count is 0) but refuses the
	// acquire: a limit of 0 with the capacity check bypassed by a forged
	// entry max, as a concurrent acquire would between scan and CAS.
	p := newTestPool(t, []*Provider{
		NewProviderWithConcurrencyLimit(newTestTarget(t, "https://racy.example.com"), 100, 0),
		NewProvider(newTestTarget(t, "https://steady.example.com"), 1),
	})
	p.entries[0].max = 1 << 62
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

// Counts past 2^32 take the 128-bit comparison; the choice is as exact as
// below it. Each case sets the in-flight counts of providers of weight 1,
// 2 and 3 and lists the providers tied at the lowest count/weight.
func TestLeastLoadedWithHugeCounts(t *testing.T) {
	t.Parallel()
	const g = 1 << 40
	for _, c := range []struct {
		counts [3]int64
		want   []int
	}{
		{[3]int64{g + 1, 2 * g, 3 * g}, []int{1, 2}},        // only provider 0 is past the tie
		{[3]int64{3, 1 << 33, 1 << 34}, []int{0}},           // a small count among wide ones
		{[3]int64{1 << 33, 5, 1 << 34}, []int{1}},           // the wide ones come first
		{[3]int64{1<<62 + 1, 1<<62 + 2, 3 << 61}, []int{2}}, // products past 2^64
		{[3]int64{1 << 61, 1 << 62, 3 << 61}, []int{0, 1, 2}},
	} {
		p := newTestPool(t, []*Provider{
			NewProvider(newTestTarget(t, "https://a.example.com"), 1),
			NewProvider(newTestTarget(t, "https://b.example.com"), 2),
			NewProvider(newTestTarget(t, "https://c.example.com"), 3),
		})
		for i, n := range c.counts {
			p.entries[i].lim.counter().taken.Store(n)
		}
		seen := map[int]bool{}
		for range 200 {
			sel, ok := p.Select()
			require.True(t, ok)
			require.Contains(t, c.want, sel.Index, "counts %v", c.counts)
			seen[sel.Index] = true
			sel.Close()
		}
		// Each tied provider has weight at least 1 of 6: missing one in 200
		// draws has probability below (5/6)^200 < 1e-15.
		assert.Len(t, seen, len(c.want), "counts %v: every tied provider is picked", c.counts)
	}
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
	counts := make([]int, len(weights))
	for range n {
		sel, ok := p.Select()
		require.True(t, ok)
		counts[sel.Index]++
		sel.Close()
	}
	for i, w := range weights {
		if w == 0 {
			assert.Zero(t, counts[i], "provider %d has weight 0", i)
			continue
		}
		withinBinomialAmong(t, counts[i], n, float64(w)/8, 3, fmt.Sprintf("provider %d (weight %d of 8)", i, w))
	}
}

// The tie pick draws in proportion to weight however the ties sit in their
// word: all of it (binary search), half its weight or more (draws from the
// whole word until one is a tie), or less (a walk over the ties).
func TestPickTieFollowsWeights(t *testing.T) {
	t.Parallel()
	weights := []uint32{1, 2, 3, 4, 5, 6, 7, 0, 8}
	providers := make([]*Provider, len(weights))
	for i, w := range weights {
		providers[i] = NewProvider(newTestTarget(t, fmt.Sprintf("https://p%d.example.com", i)), w)
	}
	p := newTestPool(t, providers)
	for name, mask := range map[string]uint64{
		"whole word":          p.live[0],
		"dense, one left out": p.live[0] &^ (1 << 3),
		"sparse":              1<<0 | 1<<2 | 1<<8,
	} {
		var total uint64
		for m := mask; m != 0; m &= m - 1 {
			total += uint64(weights[bits.TrailingZeros64(m)])
		}
		var w walk
		const n = 200_000
		counts := make([]int, len(weights))
		for range n {
			counts[p.pickTie(0, mask, total, &w)]++
		}
		for i, c := range counts {
			if mask&(1<<i) == 0 {
				assert.Zero(t, c, "%s: provider %d is not a tie", name, i)
				continue
			}
			// 3 masks of at most 9 ties each: 27 checks in all.
			withinBinomialAmong(t, c, n, float64(weights[i])/float64(total), 27,
				fmt.Sprintf("%s: provider %d (weight %d of %d)", name, i, weights[i], total))
		}
	}
}
