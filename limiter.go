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
type counter struct {
	n atomic.Int64
	// ext holds what only some pools use (outlier state, shared leases);
	// nil until one needs it. It follows the counter across reloads.
	ext atomic.Pointer[counterExt]
	// attempts counts the outcomes reported on selections of the provider,
	// by Outcome, for snapshots; like the count, it survives reloads.
	attempts [numOutcomes]atomic.Uint64
	_        [cacheLinePad - 16 - 8*numOutcomes]byte
}

// ConcurrencyLimiter counts work in flight and, when it has a limit, refuses
// work past that limit. It is the Go form of onwards' ConcurrencyLimiter.
//
// The zero value is a valid limiter that counts but never refuses, the same as
// [NewConcurrencyLimiter]. A ConcurrencyLimiter is safe for simultaneous use by
// multiple goroutines and must not be copied after first use.
type ConcurrencyLimiter struct {
	// ctr is installed lazily (so that the zero value works) and replaced by
	// AdoptActiveCounter.
	ctr atomic.Pointer[counter]

	// The following fields are immutable after construction.
	limited bool
	limit   int64 // meaningful only when limited; negative refuses everything
}

// NewConcurrencyLimiter returns a limiter that counts in-flight work and never
// refuses it.
func NewConcurrencyLimiter() *ConcurrencyLimiter {
	l := new(ConcurrencyLimiter)
	l.counter()
	return l
}

// NewConcurrencyLimiterWithLimit returns a limiter that refuses once limit
// guards are held. A limit of 0 refuses everything. A negative limit also
// refuses everything, and [NewProviderPool] reports it as an error.
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

// max returns the limit, or math.MaxInt64 when there is none, so that the
// capacity test is one comparison.
func (l *ConcurrencyLimiter) max() int64 {
	if !l.limited {
		return math.MaxInt64
	}
	return l.limit
}

// TryAcquire takes one slot without blocking. It returns a guard that holds
// the slot and true, or nil and false when the limiter is at its limit.
// Close the guard to release the slot.
func (l *ConcurrencyLimiter) TryAcquire() (*ConcurrencyGuard, bool) {
	return l.tryAcquire(nil)
}

// tryAcquire is TryAcquire with the guard taken from w (nil: the shared
// blocks).
func (l *ConcurrencyLimiter) tryAcquire(w *walk) (*ConcurrencyGuard, bool) {
	c := l.counter()
	if !l.limited {
		c.n.Add(1)
		return w.guard(c), true
	}
	for {
		n := c.n.Load()
		if n >= l.limit {
			return nil, false
		}
		if c.n.CompareAndSwap(n, n+1) {
			return w.guard(c), true
		}
	}
}

// AtCapacity reports whether the limiter would refuse a TryAcquire now. A
// limiter without a limit is never at capacity.
func (l *ConcurrencyLimiter) AtCapacity() bool {
	return l.limited && l.counter().n.Load() >= l.limit
}

// Active returns the number of slots held now.
func (l *ConcurrencyLimiter) Active() int {
	return int(l.counter().n.Load())
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
}

// ConcurrencyGuard holds one slot of a [ConcurrencyLimiter] until it is closed.
//
// Close may be called by multiple goroutines simultaneously; the first call
// releases the slot and every later call does nothing. The slot is released
// into the counter it was taken from, even if that counter has since been
// adopted by a limiter of a newer pool.
//
// Guards are handed out from blocks of 32, so that taking one does not
// allocate; a guard still referenced keeps its block (512 bytes) alive.
type ConcurrencyGuard struct {
	c     *counter
	done  atomic.Bool
	panic bool // chosen in outlier detection's panic mode (fits the padding)
}

// Close releases the guard's slot exactly once. Later calls, concurrent calls
// and calls on a nil guard do nothing. It always returns nil; it returns an
// error only to satisfy [io.Closer].
func (g *ConcurrencyGuard) Close() error {
	if g != nil && g.done.CompareAndSwap(false, true) {
		g.c.n.Add(-1)
		if x := g.c.ext.Load(); x != nil {
			x.closed(g)
		}
	}
	return nil
}

// guardsPerBlock is how many guards one allocation provides.
const guardsPerBlock = 32

// guardBlock is a run of fresh guards not yet handed out. Blocks are kept
// per P by a sync.Pool, so taking a guard needs neither an allocation nor an
// atomic operation most of the time. A guard is handed out once and never
// reused, so Close keeps its exactly-once promise; a block is freed by the
// garbage collector once none of its guards is referenced.
type guardBlock struct {
	free []ConcurrencyGuard
}

var guardBlocks = sync.Pool{New: func() any { return new(guardBlock) }}

// newGuard returns a fresh guard holding a slot of c.
func newGuard(c *counter) *ConcurrencyGuard {
	b := guardBlocks.Get().(*guardBlock)
	if len(b.free) == 0 {
		b.free = make([]ConcurrencyGuard, guardsPerBlock)
	}
	g := &b.free[0]
	b.free = b.free[1:]
	guardBlocks.Put(b)
	g.c = c
	return g
}

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
