package pool

import "math/bits"

// This file is the token_aware strategy: the provider with the fewest
// estimated tokens in flight per unit of weight, compared exactly, ties
// broken at random in proportion to weight.

// selectTokens picks the provider outside ex with the fewest tokens in
// flight per unit of weight, takes its slot, and counts the request's
// tokens on it until the guard closes.
func (p *ProviderPool) selectTokens(ex *bitset, w *walk) (Selection, bool) {
	sel, ok := p.selectBy(ex, func(ex *bitset) int { return p.fewestTokens(ex, w) })
	if ok {
		sel.Guard.counter().extension().holdTokens(sel.Guard, w.requestTokens())
	}
	return sel, ok
}

// fewestTokens returns the provider outside ex, of weight above 0 and with
// room, with the lowest tokens in flight per unit of weight, ties broken
// at random in proportion to weight; or -1. Scores are compared exactly:
// a/w < b/v iff a*v < b*w, in 128 bits.
func (p *ProviderPool) fewestTokens(ex *bitset, w *walk) int {
	best := -1
	var bestLoad, bestW, tieW uint64
	for i := range p.entries {
		e := &p.entries[i]
		if e.weight == 0 || ex.has(i) {
			continue
		}
		c := e.lim.ctr.Load()
		if c.inFlight() >= e.max {
			continue
		}
		load := uint64(max(c.tokensInFlight(), 0))
		switch order := cmp128(load, bestW, bestLoad, e.weight); {
		case best < 0 || order < 0:
			best, bestLoad, bestW, tieW = i, load, e.weight, e.weight
		case order == 0:
			tieW += e.weight
			if w.uint64n(tieW) < e.weight {
				best, bestLoad, bestW = i, load, e.weight
			}
		}
	}
	return best
}

// cmp128 compares a*b with c*d, exactly: -1, 0 or +1.
func cmp128(a, b, c, d uint64) int {
	h1, l1 := bits.Mul64(a, b)
	h2, l2 := bits.Mul64(c, d)
	switch {
	case h1 < h2 || (h1 == h2 && l1 < l2):
		return -1
	case h1 == h2 && l1 == l2:
		return 0
	}
	return 1
}
