package pool

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// TokenLimiter limits the LLM tokens (prompt and completion) that a pool or
// an API key spends: a bucket of burst tokens, refilled continuously at
// perMinute a minute, starting full. A request reserves an estimate of its
// tokens before it is sent ([TokenLimiter.Reserve]) and settles the count
// its answer reports once that is known ([TokenReservation.Settle]): the
// difference goes back to the bucket, or is taken from it.
//
// An answer that used more than its estimate can leave the bucket below
// zero; later requests then wait until it refills past their estimate, so
// over time the limit holds to what was used, not to what was guessed.
//
// A TokenLimiter reads time from its [Clock]. It is safe for simultaneous
// use by multiple goroutines. The zero value is not usable; build one with
// [NewTokenLimiter].
type TokenLimiter struct {
	clock     Clock
	perMinute int64
	burst     int64

	mu     sync.Mutex
	tokens float64   // may be negative: spent beyond the estimates
	last   time.Time // when tokens was last brought up to date
}

// NewTokenLimiter returns a full bucket of burst tokens that refills at
// perMinute tokens a minute, on clock (nil: [SystemClock]). A perMinute or
// burst below 1 is taken as 1; [ParseConfig] refuses them in config files.
func NewTokenLimiter(perMinute, burst int64, clock Clock) *TokenLimiter {
	clock = clockOr(clock)
	perMinute, burst = max(perMinute, 1), max(burst, 1)
	return &TokenLimiter{clock: clock, perMinute: perMinute, burst: burst, tokens: float64(burst), last: clock.Now()}
}

// Limits returns the limiter's tokens per minute and its burst.
func (l *TokenLimiter) Limits() (perMinute, burst int64) { return l.perMinute, l.burst }

// Tokens returns the tokens in the bucket now; below zero when answers
// used more than was reserved for them.
func (l *TokenLimiter) Tokens() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill()
	return l.tokens
}

// Reserve takes n tokens, if the bucket holds them, and returns the
// reservation to settle when the answer's count is known. If it does not
// hold them, Reserve takes nothing and returns false with how long until
// it will. An n over the burst is taken as the burst: such a request waits
// for a full bucket, not forever, and settles its real count. An n below 0
// is taken as 0.
func (l *TokenLimiter) Reserve(n int64) (r *TokenReservation, wait time.Duration, ok bool) {
	n = min(max(n, 0), l.burst)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill()
	if missing := float64(n) - l.tokens; missing > 0 {
		return nil, l.timeFor(missing), false
	}
	l.tokens -= float64(n)
	return &TokenReservation{l: l, reserved: n}, 0, true
}

// refill brings tokens up to now. Callers hold mu.
func (l *TokenLimiter) refill() {
	now := l.clock.Now()
	if elapsed := now.Sub(l.last); elapsed > 0 {
		l.tokens = math.Min(float64(l.burst), l.tokens+elapsed.Minutes()*float64(l.perMinute))
	}
	l.last = now
}

// timeFor is how long the bucket takes to gain missing tokens, rounded up
// to the nanosecond.
func (l *TokenLimiter) timeFor(missing float64) time.Duration {
	d := math.Ceil(missing / float64(l.perMinute) * float64(time.Minute))
	if d >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}

// settle puts delta tokens back (or, below zero, takes them), never above
// the burst.
func (l *TokenLimiter) settle(delta int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill()
	l.tokens = math.Min(float64(l.burst), l.tokens+float64(delta))
}

// TokenReservation is the tokens one request holds on a [TokenLimiter]
// until its answer's count is known. A nil *TokenReservation settles as a
// no-op, so callers need not check for one.
type TokenReservation struct {
	l        *TokenLimiter     // the local bucket, or nil
	settle   func(delta int64) // a shared bucket's settlement, or nil
	reserved int64
	settled  atomic.Bool
}

// Reserved returns the tokens reserved; 0 for a nil reservation.
func (r *TokenReservation) Reserved() int64 {
	if r == nil {
		return 0
	}
	return r.reserved
}

// Settle replaces the reservation with used, the tokens the answer
// reported: the unused part goes back to the bucket, and what was used
// beyond it is taken from the bucket. Only the first call counts; later
// and concurrent calls, and calls on nil, do nothing. A request whose
// answer reports no count should settle its estimate, Reserved(), which
// leaves the bucket as it is. A used below 0 is taken as 0.
func (r *TokenReservation) Settle(used int64) {
	if r == nil || !r.settled.CompareAndSwap(false, true) {
		return
	}
	delta := r.reserved - max(used, 0)
	switch {
	case r.settle != nil:
		r.settle(delta)
	case delta != 0:
		r.l.settle(delta)
	}
}
