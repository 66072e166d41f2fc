package pool

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

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

// ConcurrencyLimiter counts work in flight and, when it has a limit, refuses
// work past that limit. It is the Go form of onwards' ConcurrencyLimiter.
// Whatever its limit, it holds at most 2^31 slots at once, so that its count
// fits in one atomic word with room to spare.
//
// The zero value is a valid limiter that counts but never refuses (short of
// 2^31 slots held), the same as [NewConcurrencyLimiter]. A
// ConcurrencyLimiter is safe for simultaneous use by multiple goroutines and
// must not be copied after first use.
type ConcurrencyLimiter struct {
	// ctr is installed lazily (so that the zero value works) and replaced by
	// AdoptActiveCounter.
	ctr atomic.Pointer[counter]

	// The following fields are immutable after construction.
	limited bool
	limit   int64 // meaningful only when limited; negative refuses everything
}

// NewConcurrencyLimiter returns a limiter that counts in-flight work and
// does not refuse it, short of 2^31 slots held.
func NewConcurrencyLimiter() *ConcurrencyLimiter {
	l := new(ConcurrencyLimiter)
	l.counter()
	return l
}

// NewConcurrencyLimiterWithLimit returns a limiter that refuses once limit
// guards are held, or 2^31-1 if limit is larger (a limiter's count fits
// in one atomic word with room to spare). A limit of 0 refuses everything.
// A negative limit also refuses everything, and [NewProviderPool] reports
// it as an error.
func NewConcurrencyLimiterWithLimit(limit int) *ConcurrencyLimiter {
	l := &ConcurrencyLimiter{limited: true, limit: int64(limit)}
	l.counter()
	return l
}

// counter returns the live counter, installing one if the limiter is a zero
// value that has not been used yet.
func (l *ConcurrencyLimiter) counter() *counter {
	if c := l.ctr.Load(); c != nil {
		return c
	}
	c := new(counter)
	if l.ctr.CompareAndSwap(nil, c) {
		return c
	}
	return l.ctr.Load()
}

// counterExt is the part of a counter that only some pools use.
type counterExt struct {
	// health is the provider's outlier state, set by a pool with outlier
	// detection.
	health atomic.Pointer[health]
	// leases maps the guards holding a slot across replicas to the
	// functions that release it.
	leases sync.Map
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
// probe slot and the shared lease the guard holds, if any.
func (x *counterExt) closed(g *ConcurrencyGuard) {
	if h := x.health.Load(); h != nil {
		h.endProbe(g)
	}
	if release, ok := x.leases.LoadAndDelete(g); ok {
		release.(func())()
	}
}

// max returns the most slots l lets be held: maxHeld when it has no limit,
// else its limit, capped below maxHeld so that take enforces it with a
// compare-and-swap; so the capacity test is one comparison.
func (l *ConcurrencyLimiter) max() int64 {
	if !l.limited {
		return maxHeld
	}
	return min(l.limit, maxHeld-1)
}

// TryAcquire takes one slot without blocking. It returns a guard that holds
// the slot and true, or nil and false when the limiter is at its limit.
// Close the guard to release the slot.
func (l *ConcurrencyLimiter) TryAcquire() (*ConcurrencyGuard, bool) {
	c := l.counter()
	t, ok := c.take(l.max())
	if !ok {
		return nil, false
	}
	return c.guard(t), true
}

// AtCapacity reports whether the limiter would refuse a TryAcquire now. A
// limiter without a limit is at capacity only while it holds 2^31 slots.
func (l *ConcurrencyLimiter) AtCapacity() bool {
	return l.counter().inFlight() >= l.max()
}

// Active returns the number of slots held now.
func (l *ConcurrencyLimiter) Active() int {
	return int(l.counter().inFlight())
}

// Limit returns the limit and true, or 0 and false for a limiter without one.
func (l *ConcurrencyLimiter) Limit() (limit int, ok bool) {
	if !l.limited {
		return 0, false
	}
	return int(l.limit), true
}

// AdoptActiveCounter makes l share old's in-flight counter, so that guards
// handed out by old release into l, and l counts them against its own limit,
// which it keeps. It is how a pool built from a reloaded config takes over the
// live counts of the pool it replaces. Adopting from nil or from l itself does
// nothing.
//
// Guards already taken from l before the call keep releasing into l's previous
// counter, which l no longer reads; adopt before l is used.
func (l *ConcurrencyLimiter) AdoptActiveCounter(old *ConcurrencyLimiter) {
	if old == nil || old == l {
		return
	}
	l.ctr.Store(old.counter())
	counterMoves.Add(1)
}

// counterMoves counts the adoptions of counters by limiters. A pool keeps
// its providers' counters at hand for the scan, and looks again when this
// has moved: a Provider may belong to several pools, and one of them
// adopting changes what the others must read.
var counterMoves atomic.Uint64

// RateLimiter decides whether one more request may go now. It is the subset of
// [*rate.Limiter] that this package uses, so a *rate.Limiter of
// golang.org/x/time/rate satisfies it without an adapter. Implementations must
// be safe for simultaneous use by multiple goroutines.
type RateLimiter interface {
	// Allow reports whether one request may happen now, and if so counts it.
	Allow() bool
}

// NewRateLimiter returns a token bucket that refills at requestsPerSecond and
// holds at most burst tokens, starting full. It is a [*rate.Limiter].
//
// It does not validate its arguments; [ParseConfig] does, for config files. As
// with rate.NewLimiter, a requestsPerSecond of 0 allows only the first burst
// requests and a burst of 0 allows none.
func NewRateLimiter(requestsPerSecond float64, burst int) RateLimiter {
	return rate.NewLimiter(rate.Limit(requestsPerSecond), burst)
}

// ConcurrencyRetryAfter is the wait that a refusal for a concurrency limit
// advises (as Retry-After). A slot frees when some request finishes, which
// no one can predict, so it is a short fixed value: long enough that a
// client does not spin, short enough that it does not idle.
const ConcurrencyRetryAfter = time.Second

// RateLimitDelay returns how long until l allows one more request, for a
// 429's Retry-After. It knows limiters that report their tokens and rate,
// as a [*rate.Limiter] (and so [NewRateLimiter]) does, and the limiters of
// a [SharedState], which tell the wait of their last refusal; for any other
// limiter, and for a nil one, it returns 0, which callers treat as
// "unknown". It takes no token.
func RateLimitDelay(l RateLimiter) time.Duration {
	if s, ok := l.(*sharedRateLimiter); ok {
		return s.retryAfter()
	}
	tl, ok := l.(interface {
		Tokens() float64
		Limit() rate.Limit
	})
	if !ok {
		return 0
	}
	tokens, limit := tl.Tokens(), float64(tl.Limit())
	switch {
	case tokens >= 1:
		return 0
	case !(limit > 0) || math.IsInf(limit, 0):
		return 0 // never refills, or never limits: no wait helps
	}
	secs := (1 - tokens) / limit
	if secs > float64(math.MaxInt64/int64(time.Second)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(math.Ceil(secs * float64(time.Second)))
}
