package pool

import (
	"math"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

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

// waitReporter is a rate limiter that knows how long its last refusal
// advised to wait, as the limiters of a SharedState do (sharedRateLimiter).
type waitReporter interface {
	retryAfter() time.Duration
}

// RateLimitDelay returns how long until l allows one more request, for a
// 429's Retry-After. It knows limiters that report their tokens and rate,
// as a [*rate.Limiter] (and so [NewRateLimiter]) does, and the limiters of
// a [SharedState], which tell the wait of their last refusal; for any other
// limiter, and for a nil one, it returns 0, which callers treat as
// "unknown". It takes no token.
func RateLimitDelay(l RateLimiter) time.Duration {
	if w, ok := l.(waitReporter); ok {
		return w.retryAfter()
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
