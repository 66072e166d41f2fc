package pool

import (
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"time"
)

// SharedState holds limits that several replicas of a gateway share, so
// that a pool limited to 50 requests in flight admits 50 across all of
// them, not 50 each. Set it on [Registry.Shared]; the poolredis module
// implements it on Redis. Without it, every limit is the replica's own.
//
// The registry asks it for one limiter per limit of the config, by a name
// that is the same on every replica with the same config: "alias/NAME" for
// an alias, "key/DIGEST" for a key definition (a prefix of the SHA-256 of
// the key, never the key), "provider/ALIAS/DIGEST" for a provider (of its
// URL, key and model). Selection stays local: it weighs providers by their
// slots here plus the slots other replicas held when last seen (see
// [SharedLoad]), then takes the slot in the shared store, which has the
// last word. Implementations decide what happens when the shared store is
// unreachable (poolredis: fail open to a local share, or fail closed), and
// must be safe for simultaneous use by multiple goroutines.
type SharedState interface {
	// Concurrency returns the shared concurrency limit of name.
	Concurrency(name string, limit int) SharedConcurrency
	// Rate returns the shared token bucket of name.
	Rate(name string, requestsPerSecond float64, burst int) SharedRate
}

// SharedConcurrency is a concurrency limit shared by replicas.
type SharedConcurrency interface {
	// TryAcquire takes one slot without blocking. It returns a release
	// function, which may be called any number of times and frees the slot
	// once, and true; or false and, when it can tell, how long until a
	// slot may free.
	TryAcquire() (release func(), retryAfter time.Duration, ok bool)
}

// SharedTokenState is a [SharedState] that shares token limits (a
// rate_limit's tokens_per_minute) too, by the same names as its rate
// limits. With a SharedState that does not implement it, each replica
// counts its own tokens. poolredis implements it.
type SharedTokenState interface {
	SharedState
	// Tokens returns the shared token limit of name: perMinute tokens a
	// minute, up to burst at once.
	Tokens(name string, perMinute, burst int64) SharedTokens
}

// SharedTokens is a token limit shared by replicas: a bucket that a
// request reserves an estimate from and settles when its answer tells
// what it used (see [TokenLimiter], its local form).
type SharedTokens interface {
	// Reserve takes n tokens, n at most the burst, without blocking. It
	// returns a settle function and true; or false, having taken nothing,
	// and, when it can tell, how long until the limit will hold n. Settle
	// gives back delta tokens or, with delta below 0, takes -delta more,
	// even below zero; it is called at most once.
	Reserve(n int64) (settle func(delta int64), retryAfter time.Duration, ok bool)
}

// sharedTokenLimiter adapts SharedTokens to the Reserve of a TokenLimiter.
type sharedTokenLimiter struct {
	s     SharedTokens
	burst int64
}

func (l *sharedTokenLimiter) Reserve(n int64) (*TokenReservation, time.Duration, bool) {
	n = min(max(n, 0), l.burst)
	settle, wait, ok := l.s.Reserve(n)
	if !ok {
		return nil, wait, false
	}
	return &TokenReservation{settle: settle, reserved: n}, 0, true
}

// SharedRate is a rate limit shared by replicas.
type SharedRate interface {
	// Allow reports whether one more request may go now, and if not, how
	// long until one may.
	Allow() (ok bool, retryAfter time.Duration)
}

// sharedRateLimiter adapts a SharedRate to RateLimiter, keeping the wait
// of its last refusal for RateLimitDelay.
type sharedRateLimiter struct {
	s    SharedRate
	wait atomic.Int64
}

func (l *sharedRateLimiter) Allow() bool {
	ok, wait := l.s.Allow()
	if !ok {
		l.wait.Store(int64(wait))
	}
	return ok
}

func (l *sharedRateLimiter) retryAfter() time.Duration { return time.Duration(l.wait.Load()) }

// sprintDigest is the digest part of a key's shared name.
func sprintDigest(key string) string {
	d := sha256.Sum256([]byte(key))
	return fmt.Sprintf("%x", d[:8])
}

// SharedLoad is what a SharedConcurrency may also tell, so that selection
// can weigh a provider by its load across replicas without a round trip.
type SharedLoad interface {
	// Others returns how many slots other replicas held when this replica
	// last asked the shared store (at its last TryAcquire): a cached view,
	// as fresh as this replica's traffic to the provider.
	Others() int
}

// others returns the cached count of slots other replicas hold on s.
func others(s SharedConcurrency) uint64 {
	if l, ok := s.(SharedLoad); ok {
		return uint64(max(l.Others(), 0))
	}
	return 0
}
