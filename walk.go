package pool

import (
	"math/bits"
	"math/rand/v2"
)

// walk is what one fallback walk keeps between its selections so that each
// costs less than a lone Select: a random source of its own, seeded once
// from math/rand/v2, and a block of guards sized to the attempts left. The
// zero value is ready; a nil *walk uses the shared sources.
type walk struct {
	rng    uint64             // wyrand state
	seeded bool               // whether rng has been seeded
	guards []ConcurrencyGuard // fresh guards not yet handed out
	want   int                // at most how many more guards the walk needs
}

// uint64n returns a uniform random number in [0, n), n > 0.
func (w *walk) uint64n(n uint64) uint64 {
	if w == nil {
		return rand.Uint64N(n)
	}
	if !w.seeded {
		w.rng, w.seeded = rand.Uint64(), true
	}
	// Lemire's multiply-shift with rejection: exactly uniform.
	for {
		w.rng += 0xa0761d6478bd642f // wyrand (Wang Yi), a 64-bit generator that passes BigCrush
		hi, lo := bits.Mul64(w.rng, w.rng^0xe7037ed1a0b428db)
		hi, lo = bits.Mul64(hi^lo, n)
		if lo >= n || lo >= -n%n {
			return hi
		}
	}
}

// float64 returns a uniform random number in [0, 1).
func (w *walk) float64() float64 {
	return float64(w.uint64n(1<<53)) / (1 << 53)
}

// guard returns a fresh guard holding a slot of c.
func (w *walk) guard(c *counter) *ConcurrencyGuard {
	if w == nil {
		return newGuard(c)
	}
	if len(w.guards) == 0 {
		w.guards = make([]ConcurrencyGuard, min(max(w.want, 1), guardsPerBlock))
	}
	g := &w.guards[0]
	w.guards = w.guards[1:]
	w.want--
	g.c = c
	return g
}
