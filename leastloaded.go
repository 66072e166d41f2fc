package pool

import "math/bits"

// This file is the weighted_random strategy: the provider with the fewest
// requests in flight per unit of weight, compared exactly, ties broken at
// random in proportion to weight.

// selectWeighted picks the least loaded provider outside ex.
func (p *ProviderPool) selectWeighted(ex *bitset, w *walk) (Selection, bool) {
	for {
		var i int
		if len(p.live) == 1 {
			// Up to 64 providers, the common case: one word, so no
			// reservoir across words; done here to save leastLoaded's call.
			mask, weight, _ := scan(p.word(0), p.open[0]&^ex.word(0), noScore)
			i = p.pickTie(0, mask, weight, w)
		} else {
			i = p.leastLoaded(ex, w)
		}
		if i < 0 {
			return Selection{}, false
		}
		// Take the slot from the counter the limiter has now (adoption
		// may have replaced the entry's), by the limiter's limit (e.max,
		// fixed when the limiter was made). The block guard is looked up
		// here, inlined; guardOffBlock makes the rest.
		e := &p.entries[i]
		c := e.lim.ctr.Load()
		if t, ok := c.take(e.max); ok {
			g := c.blockGuard(t)
			if g == nil {
				g = c.guardOffBlock(t)
			}
			return Selection{Index: i, Target: e.target, Guard: g}, true
		}
		// The provider filled up between the scan and the acquire: choose
		// again without it. Rare, so the copy is no burden.
		ex = ex.with(i)
	}
}

// selectBy takes a slot on the provider that pick returns from among
// those outside ex (-1: none), and picks again without a provider that
// filled up since pick looked: the loop of selectWeighted, which writes
// it out for its speed, for the strategies that need not.
func (p *ProviderPool) selectBy(ex *bitset, pick func(ex *bitset) int) (Selection, bool) {
	for {
		i := pick(ex)
		if i < 0 {
			return Selection{}, false
		}
		e := &p.entries[i]
		c := e.lim.ctr.Load()
		if t, ok := c.take(e.max); ok {
			return Selection{Index: i, Target: e.target, Guard: c.guard(t)}, true
		}
		ex = ex.with(i)
	}
}

// leastLoaded returns the index of the provider outside ex with the lowest
// in-flight/weight among those with room and a weight above 0, ties broken
// at random in proportion to weight; or -1 if there is none.
//
// It makes one pass over the eligible providers, 64 at a time: the set bits
// of a word of p.open minus the excluded ones, so excluded providers, and
// those of weight 0 or limit 0, cost nothing. Scores are compared exactly by
// cross-multiplying (a/w < b/v iff a*v < b*w; see scan). The providers tied
// at the best score are kept as a bit mask, so the weighted tie-break takes
// one random number and no slice. Past 64 providers, each word's ties are
// merged into the pick by a weighted reservoir step (keep the new word's
// ties with probability their weight over the total so far), which leaves
// every tied provider picked with probability weight/total. (selectWeighted
// does the one-word case itself, to save the call.)
func (p *ProviderPool) leastLoaded(ex *bitset, w *walk) int {
	var (
		best                 = noScore
		pickBase             int    // index of bit 0 of pickMask
		pickMask, pickWeight uint64 // the ties picked so far, and their weight
		tieWeight            uint64 // the weight of all ties at the best score
	)
	for c, open := range p.open {
		base := c << 6
		mask, weight, s := scan(p.word(c), open&^ex.word(c), best)
		if s != best {
			best, tieWeight = s, 0 // earlier words' ties score worse
		}
		if weight == 0 {
			continue
		}
		tieWeight += weight
		if tieWeight == weight || w.uint64n(tieWeight) < weight {
			pickBase, pickMask, pickWeight = base, mask, weight
		}
	}
	return p.pickTie(pickBase, pickMask, pickWeight, w)
}

// pickTie returns one of the providers base+j for the bits j of mask, at
// random in proportion to weight, their total; or -1 if mask is empty.
func (p *ProviderPool) pickTie(base int, mask, weight uint64, w *walk) int {
	if mask == 0 {
		return -1
	}
	rest := mask & (mask - 1) // mask without its first tie
	if rest == 0 {
		return base + bits.TrailingZeros64(mask)
	}
	if rest&(rest-1) == 0 {
		// Two ties, as in every pool of two: one draw, one comparison.
		j := bits.TrailingZeros64(mask) & 63
		if w.uint64n(weight) < p.word(base >> 6)[j].weight {
			return base + j
		}
		return base + bits.TrailingZeros64(rest)
	}
	if mask == p.live[base>>6] {
		// Every provider of the word ties, as in an idle pool: the draw
		// below would hit at once; this is it without the loop (the
		// hottest case, so the dozen instructions count).
		return base + p.searchWord(base, w.uint64n(weight))
	}
	if total := p.cum[base+63]; bits.OnesCount64(mask) > 48 && weight >= total/2 {
		// Many ties, holding half the word's weight or more: draw from
		// the whole word until the draw is a tie, two draws on average.
		// Fewer ties are walked below: a step of the walk is cheaper than
		// a draw and a search, and its branches predict better than the
		// rejections (measured: FallbackIter/64 ran 15% faster walking
		// up to 48 ties than up to the half-weight mark).
		for {
			j := p.searchWord(base, w.uint64n(total))
			if mask&(1<<j) != 0 {
				return base + j
			}
		}
	}
	r, es := w.uint64n(weight), p.word(base>>6)
	for m := mask; ; m &= m - 1 {
		j := bits.TrailingZeros64(m) & 63
		if r < es[j].weight {
			return base + j
		}
		r -= es[j].weight
	}
}

// searchWord returns the j for which provider base+j holds the point r of
// the weights of the providers base to base+63, laid end to end: the
// least j with cum[base+j] > r, for r below the word's total. Providers
// of weight 0 hold no point, so it is never one of them. It places
// pickTie's draws over dense ties: a search, where a walk over the ties
// would take a step per provider.
func (p *ProviderPool) searchWord(base int, r uint64) int {
	cum := (*[64]uint64)(p.cum[base : base+64])
	// Halvings of the power of two that covers the word's providers, each
	// a conditional add rather than a branch: which way each goes is a
	// coin toss no predictor learns.
	n := min(len(p.entries)-base, 64)
	lo := 0
	for step := 1 << (bits.Len(uint(n-1)|1) - 1); step > 0; step >>= 1 {
		if cum[(lo+step-1)&63] <= r {
			lo += step
		}
	}
	return lo
}

// score is the best in-flight/weight seen so far, as the fraction
// active/weight. Its zero value is not a score; start from noScore.
type score struct {
	active, weight uint64
}

// noScore scores worse than any provider: 1/0, an infinite load, which
// cross-multiplying ranks above every a/w with w > 0.
var noScore = score{active: 1}

// word returns the entries of providers 64c to 64c+63; those past the last
// provider are zero, and no mask has their bits.
func (p *ProviderPool) word(c int) *[64]entry {
	return (*[64]entry)(p.entries[c<<6 : c<<6+64])
}

// scan visits the providers of es whose bits are set in m, skipping full
// ones, and returns the best score among them and best, and the mask and
// total weight of the visited providers tied at it. The bits of m must be
// providers with a limit above 0 (p.open), so that an idle one has room.
//
// Scores compare exactly by cross-multiplying: a/w < b/v iff a*v < b*w.
// Counts stay below 2^31 (maxHeld) and weights below 2^32, so the products
// fit in 64 bits. It is a leaf function with few values live, so that the
// loops keep them all in registers.
func scan(es *[64]entry, m uint64, best score) (mask, weight uint64, _ score) {
	_ = es[0].weight // es is not nil: checked here, not in the loops
	for ; m != 0; m &= m - 1 {
		j := bits.TrailingZeros64(m) & 63
		e := &es[j]
		n := e.ctr.Load().inFlight()
		if n == 0 { // idle: ties the best at 0, or beats any other
			if best.active != 0 {
				best, mask, weight = score{0, e.weight}, 0, 0
			}
			mask |= 1 << j
			weight += e.weight
			break
		}
		if n >= e.max {
			continue // full
		}
		active := uint64(n)
		l, r := active*best.weight, best.active*e.weight // active/e.weight against best
		if l <= r {
			if l < r {
				best, mask, weight = score{active, e.weight}, 0, 0
			}
			mask |= 1 << j
			weight += e.weight
		}
	}
	// Once one is idle, only the idle ones tie: a lighter loop, as most
	// pools have an idle provider most of the time.
	for m &= m - 1; m != 0; m &= m - 1 {
		j := bits.TrailingZeros64(m) & 63
		e := &es[j]
		if e.ctr.Load().inFlight() == 0 {
			mask |= 1 << j
			weight += e.weight
		}
	}
	return mask, weight, best
}
