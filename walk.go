package pool

import (
	"math/bits"
	"math/rand/v2"
)

// walk is what one fallback walk keeps between its selections so that each
// costs less than a lone Select: a random source of its own, seeded once
// from math/rand/v2. The zero value is ready; a nil *walk uses the shared
// source.
type walk struct {
	rng    uint64 // wyrand state
	seeded bool   // whether rng has been seeded
	tokens int64  // the request's estimated tokens, for token_aware; 0: unset
	// seed seeds rng at its first use (WithRandomSource); nil: math/rand/v2.
	seed func() uint64
}

// requestTokens returns the tokens the walk's request is counted as
// under token_aware: its estimate, or 1 when it has none.
func (w *walk) requestTokens() int64 {
	if w == nil || w.tokens < 1 {
		return 1
	}
	return w.tokens
}

// uint64n returns a uniform random number in [0, n), n > 0.
func (w *walk) uint64n(n uint64) uint64 {
	if w == nil {
		return boundedRand(rand.Uint64, n)
	}
	if !w.seeded {
		w.rng, w.seeded = w.firstSeed(), true
	}
	return boundedRand(w.next, n)
}

// firstSeed is the seed of the walk's random numbers: from its source, if
// it has one, else from math/rand/v2.
func (w *walk) firstSeed() uint64 {
	if w.seed != nil {
		return w.seed()
	}
	return rand.Uint64()
}

// next steps the walk's wyrand (Wang Yi), a 64-bit generator that passes
// BigCrush, and returns its output.
func (w *walk) next() uint64 {
	w.rng += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(w.rng, w.rng^0xe7037ed1a0b428db)
	return hi ^ lo
}

// boundedRand returns a uniform random number in [0, n), n > 0, from the
// uniform 64-bit numbers of src, by Lemire's multiply-shift with
// rejection: exactly uniform, and almost always one number of src (the
// algorithm of math/rand/v2's Uint64N, over any source).
func boundedRand(src func() uint64, n uint64) uint64 {
	hi, lo := bits.Mul64(src(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(src(), n)
		}
	}
	return hi
}

// float64 returns a uniform random number in [0, 1).
func (w *walk) float64() float64 {
	return float64(w.uint64n(1<<53)) / (1 << 53)
}
