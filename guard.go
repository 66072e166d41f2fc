package pool

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// This file is the bottom of the pool: the in-flight counter of one
// provider, which limiters share across reloads, and the guards that hold
// its slots. Outlier detection and shared limits keep their per-provider
// state in the counter's extension, so that it follows the counter.

// ConcurrencyGuard holds one slot of a [ConcurrencyLimiter] until it is closed.
//
// Close may be called by multiple goroutines simultaneously; the first call
// releases the slot and every later call does nothing. The slot is released
// into the counter it was taken from, even if that counter has since been
// adopted by a limiter of a newer pool. The zero value holds no slot, and
// closing it does nothing.
//
// A guard is 8 bytes, handed out from a block of 62 that the counter keeps,
// so that taking one does not allocate; a guard still referenced keeps its
// block (512 bytes) alive. A guard is handed out once and never reused.
type ConcurrencyGuard struct {
	done  atomic.Uint32 // 1 once closed
	back  uint16        // bytes from the guard back to its run's header; 0: the zero value
	panic bool          // chosen in outlier detection's panic mode
}

// Close releases the guard's slot exactly once. Later calls, concurrent calls
// and calls on a nil or zero guard do nothing. It always returns nil; it
// returns an error only to satisfy [io.Closer].
func (g *ConcurrencyGuard) Close() error {
	if g != nil && g.done.CompareAndSwap(0, 1) {
		g.release()
	}
	return nil
}

// release gives the slot back, once Close has won the right to; a zero
// guard has none.
func (g *ConcurrencyGuard) release() {
	c := g.counter()
	if c == nil {
		return
	}
	c.release()
	if x := c.ext.Load(); x != nil {
		x.closed(g)
	}
}

// counter returns the counter g holds a slot of, or nil for a nil or zero
// guard.
//
// A guard does not store it: the guards of a block share one pointer, in
// the block's header, which a guard finds from its own address and its
// distance from the header. That keeps a guard to 8 bytes with no pointer
// in it, so the blocks cost the garbage collector little, and handing one
// out writes no pointer.
func (g *ConcurrencyGuard) counter() *counter {
	if g == nil || g.back == 0 {
		return nil
	}
	return (*guardHeader)(unsafe.Add(unsafe.Pointer(g), -int(g.back))).c
}

// guardHeader starts every run of guards: guardBlock and guardSingle.
type guardHeader struct {
	c    *counter
	base uint32 // the ticket of the run's first guard
}

// guardsPerBlock is how many guards one allocation provides: with the
// header, 62 guards of 8 bytes fill a 512-byte size class.
const guardsPerBlock = 62

// guardBlock holds the guards of the tickets base to base+guardsPerBlock-1
// of one counter. Each ticket is drawn once, so each guard is handed out
// once and never reused, and Close keeps its exactly-once promise; a block
// is freed by the garbage collector once none of its guards is referenced.
type guardBlock struct {
	guardHeader
	guards [guardsPerBlock]ConcurrencyGuard
}

// guardSingle is a run of one guard, for a ticket that misses the
// counter's current block.
type guardSingle struct {
	guardHeader
	guard ConcurrencyGuard
}

// guardsOffset is where a run's guards start. The guards' distances back
// to their header are figured from it, for both kinds of run, so it must be
// the same in both; the array below fails to compile otherwise.
const guardsOffset = unsafe.Offsetof(guardBlock{}.guards)

var _ [0]struct{} = [guardsOffset - unsafe.Offsetof(guardSingle{}.guard)]struct{}{}

// guard returns the guard of ticket t, a slot of c just taken. The guard
// comes from c's current block when t falls in it. The holder of the first
// ticket of a block's range makes that block; the few tickets drawn before
// it is in place, or after it has been replaced, get a guard of their own.
// Taking a guard thus needs no lock and, most of the time, neither an
// allocation nor an atomic operation beyond the one that drew t.
func (c *counter) guard(t uint32) *ConcurrencyGuard {
	if g := c.blockGuard(t); g != nil {
		return g
	}
	return c.guardOffBlock(t)
}

// blockGuard is guard for a ticket in c's current block, and nil for any
// other. It is small enough for the compiler to inline, which is why the
// selections, which take a guard on every request, call it and not guard.
func (c *counter) blockGuard(t uint32) *ConcurrencyGuard {
	if b := c.blk.Load(); b != nil && t-b.base < guardsPerBlock {
		return &b.guards[(t-b.base)%guardsPerBlock]
	}
	return nil
}

// guardOffBlock is guard for a ticket outside c's current block.
func (c *counter) guardOffBlock(t uint32) *ConcurrencyGuard {
	if t%guardsPerBlock != 0 {
		s := &guardSingle{guardHeader: guardHeader{c: c, base: t}}
		s.guard.back = uint16(guardsOffset)
		return &s.guard
	}
	b := c.blk.Load()
	// The guards' distances are copied in here, not written at hand-out:
	// the guards of a block go to every core, and each write to a line
	// another core wrote moves it.
	nb := &guardBlock{guardHeader: guardHeader{c: c, base: t}}
	*(*[guardsPerBlock]guardImage)(unsafe.Pointer(&nb.guards)) = freshGuards
	c.blk.CompareAndSwap(b, nb) // lost: a newer block is in place; keep it
	return &nb.guards[0]
}

// guardImage is a ConcurrencyGuard's layout with no atomic field, so that
// the guards of a new block can be copied in from freshGuards at once (an
// atomic field may not be copied). The array below fails to compile if
// the two sizes part.
type guardImage struct {
	_    uint32 // done: 0, open
	back uint16
	_    bool // panic: false
}

var _ [0]struct{} = [unsafe.Sizeof(guardImage{}) ^ unsafe.Sizeof(ConcurrencyGuard{})]struct{}{}

// freshGuards are the guards of a new block: open, each with its distance
// back to the block's header. Copying them costs a tenth of writing each
// distance in turn.
var freshGuards = func() (gs [guardsPerBlock]guardImage) {
	for i := range gs {
		gs[i].back = uint16(guardsOffset + uintptr(i)*unsafe.Sizeof(ConcurrencyGuard{}))
	}
	return gs
}()

// cacheLinePad is the size each in-flight counter is padded to. Counters of
// neighbouring providers are written from every core on every request; 128
// bytes keeps two of them out of one cache line and out of the adjacent line
// that x86 prefetches in pairs (the figure sync.Pool uses too).
const cacheLinePad = 128

// counter is one in-flight count. It is shared, by pointer, between a
// limiter, the guards it hands out, and any limiter that adopts it.
//
// Its state is one word: the low 32 bits count the slots held now, the high
// 32 bits the slots ever taken (mod 2^32). Taking a slot adds to both, so
// the one atomic add that takes it also draws a ticket that names its
// guard in the counter's current guard block; and the count reads exactly
// in one load, however releases race with it.
type counter struct {
	state atomic.Uint64 // taken<<32 | held
	// blk is the guard block for the tickets of its base onwards.
	blk atomic.Pointer[guardBlock]
	// ext holds what only some pools use (outlier state, shared leases);
	// nil until one needs it. It follows the counter across reloads.
	ext atomic.Pointer[counterExt]
	// attempts counts the outcomes reported on selections of the provider,
	// by Outcome, for snapshots; like the count, it survives reloads.
	attempts [numOutcomes]atomic.Uint64
	_        [cacheLinePad - 24 - 8*numOutcomes]byte
}

const (
	// takeOne is what taking a slot adds to a counter's state: one more
	// held, one more taken.
	takeOne = 1<<32 | 1
	// releaseOne is what releasing a slot adds: one fewer held (-1).
	releaseOne = ^uint64(0)
	// maxHeld is the most slots a counter holds at once, whatever its
	// limit: 2^31, which keeps the count clear of the taken bits and every
	// cross-product of a count and a 32-bit weight within 63 bits.
	maxHeld = 1 << 31
)

// inFlight returns the slots held now.
func (c *counter) inFlight() int64 {
	return int64(uint32(c.state.Load()))
}

// take takes a slot if fewer than limit (at most maxHeld) are held, and
// returns its ticket. At maxHeld, the limit of limiters without one, it is
// one atomic add, undone if it went past; below, the limit of a limiter
// that has one, a compare-and-swap that succeeds only if no slot was
// taken or released since the count was read, so limit is never exceeded.
func (c *counter) take(limit int64) (ticket uint32, ok bool) {
	if limit == maxHeld {
		s := c.state.Add(takeOne)
		if uint32(s) <= maxHeld {
			return uint32(s>>32) - 1, true
		}
		// Give the slot back but not the ticket: another may hold the next.
		c.state.Add(releaseOne)
		return 0, false
	}
	for {
		s := c.state.Load()
		if int64(uint32(s)) >= limit {
			return 0, false
		}
		if c.state.CompareAndSwap(s, s+takeOne) {
			return uint32(s >> 32), true
		}
	}
}

// release gives back one slot taken by take.
func (c *counter) release() {
	c.state.Add(releaseOne)
}

// counterExt is the part of a counter that only some pools use.
type counterExt struct {
	// probe is the guard of the one selection that may probe the provider
	// while outlier detection holds it half-open, nil when none: guards
	// are never reused, so it names one selection. Closing that guard
	// frees it.
	probe atomic.Pointer[ConcurrencyGuard]
	// health is the provider's outlier state, a *health that a pool with
	// outlier detection sets (see detector.bind). It lives here so that
	// it follows the counter across reloads, and is kept untyped because
	// the counter, below outlier detection, does not know it.
	health atomic.Value
	// leases maps the guards holding a slot across replicas to the
	// functions that release it (see selectShared).
	leases sync.Map
	// tokens is the estimated tokens of the requests in flight that
	// token_aware selected, and holds maps each of their guards to its
	// own estimate, which its closing takes off (see selectTokens).
	tokens atomic.Int64
	holds  sync.Map
	// latency is the provider's time to first byte, a *latency that a
	// p2c_ewma pool sets (see latencyOf); untyped, as health is.
	latency atomic.Value
}

// extension returns c's counterExt, making it if need be.
func (c *counter) extension() *counterExt {
	if x := c.ext.Load(); x != nil {
		return x
	}
	c.ext.CompareAndSwap(nil, new(counterExt))
	return c.ext.Load()
}

// closed does what a guard's closing owes the extension: it frees the
// probe slot, the shared lease and the tokens the guard holds, if any.
func (x *counterExt) closed(g *ConcurrencyGuard) {
	x.endProbe(g)
	if release, ok := x.leases.LoadAndDelete(g); ok {
		release.(func())()
	}
	if n, ok := x.holds.LoadAndDelete(g); ok {
		x.tokens.Add(-n.(int64))
	}
}

// holdTokens counts n tokens in flight until g closes.
func (x *counterExt) holdTokens(g *ConcurrencyGuard, n int64) {
	x.tokens.Add(n)
	x.holds.Store(g, n)
}

// tokensInFlight returns the tokens in flight that token_aware counted
// on c.
func (c *counter) tokensInFlight() int64 {
	if x := c.ext.Load(); x != nil {
		return x.tokens.Load()
	}
	return 0
}

// claimProbe gives the probe slot to the selection holding g, unless
// another selection took it first.
func (x *counterExt) claimProbe(g *ConcurrencyGuard) bool {
	return x.probe.CompareAndSwap(nil, g)
}

// endProbe frees the probe slot if the selection holding g has it, and
// reports whether it did.
func (x *counterExt) endProbe(g *ConcurrencyGuard) bool {
	return x.probe.Load() == g && x.probe.CompareAndSwap(g, nil)
}
