package pool

import "math/bits"

// bitset is the set of provider indexes a selection must skip. The first 64
// indexes live in lo, so a pool of up to 64 providers never allocates; larger
// pools spill the rest into hi. The zero value is the empty set.
type bitset struct {
	lo uint64
	hi []uint64 // bit i-64 of the set is bit (i-64)%64 of hi[(i-64)/64]
}

// has reports whether i is in the set. A nil set is empty.
func (s *bitset) has(i int) bool {
	if s == nil {
		return false
	}
	if i < 64 {
		return s.lo&(1<<uint(i)) != 0
	}
	w := (i - 64) / 64
	return w < len(s.hi) && s.hi[w]&(1<<uint((i-64)%64)) != 0
}

// word returns bits 64c to 64c+63 of the set. A nil set is empty.
func (s *bitset) word(c int) uint64 {
	switch {
	case s == nil:
		return 0
	case c == 0:
		return s.lo
	case c-1 < len(s.hi):
		return s.hi[c-1]
	}
	return 0
}

// add puts i in the set.
func (s *bitset) add(i int) {
	if i < 64 {
		s.lo |= 1 << uint(i)
		return
	}
	w := (i - 64) / 64
	for len(s.hi) <= w {
		s.hi = append(s.hi, 0)
	}
	s.hi[w] |= 1 << uint((i-64)%64)
}

// clone returns a copy of s, which may be nil.
func (s *bitset) clone() *bitset {
	c := new(bitset)
	if s != nil {
		c.lo = s.lo
		c.hi = append([]uint64(nil), s.hi...)
	}
	return c
}

// copy returns a copy of s, which may be nil, by value.
func (s *bitset) copy() bitset {
	if s == nil {
		return bitset{}
	}
	return bitset{lo: s.lo, hi: append([]uint64(nil), s.hi...)}
}

// with returns a copy of s (which may be nil) with i added; s is unchanged.
func (s *bitset) with(i int) *bitset {
	c := s.clone()
	c.add(i)
	return c
}

// count returns the number of indexes in s.
func (s *bitset) count() int {
	n := bits.OnesCount64(s.lo)
	for _, w := range s.hi {
		n += bits.OnesCount64(w)
	}
	return n
}
