package pool

import (
	"math"
	"time"
)

// Defaults of Backoff, for its zero fields.
const (
	DefaultMaxBackoff    = 5 * time.Second
	DefaultBackoffFactor = 2.0
)

// Backoff is the wait between the attempts of a fallback walk (onwards'
// fallback.backoff): before retry n (n = 1 for the second attempt) the
// delay is min(Initial*Factor^(n-1), Max), drawn at random from [0, delay]
// unless NoJitter ("full jitter"). The zero value, Initial 0, waits not at
// all.
type Backoff struct {
	// Initial is the delay before the first retry. 0: no backoff.
	Initial time.Duration
	// Max caps a delay. 0: 5 s.
	Max time.Duration
	// Factor multiplies the delay from one retry to the next, at least 1.
	// 0: 2.
	Factor float64
	// NoJitter waits the delay itself ("jitter": "none"); false draws the
	// wait from [0, delay] ("full", the default), so that the retries of
	// many clients do not arrive together.
	NoJitter bool
}

// Delay returns the wait before retry n (1 for the second attempt), with
// its jitter drawn from rnd, which returns a number in [0, 1). It never
// overflows: a delay past Max is Max.
func (b Backoff) Delay(n int, rnd func() float64) time.Duration {
	if b.Initial <= 0 || n < 1 {
		return 0
	}
	maxDelay, factor := b.Max, b.Factor
	if maxDelay <= 0 {
		maxDelay = DefaultMaxBackoff
	}
	if factor <= 0 {
		factor = DefaultBackoffFactor
	}
	d := float64(b.Initial) * math.Pow(factor, float64(n-1))
	delay := maxDelay
	if d < float64(maxDelay) { // also false for +Inf and NaN
		delay = time.Duration(d)
	}
	if b.NoJitter || rnd == nil {
		return delay
	}
	return time.Duration(rnd() * float64(delay+1))
}
