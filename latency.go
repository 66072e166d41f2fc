package pool

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// This file is what a p2c_ewma pool knows of a provider's latency: a peak
// EWMA of its time to first byte, and when its slow start began. It lives
// in the counter's extension, so it follows the provider across reloads.

const (
	// EWMADecay is the time constant of [PeakEWMA]'s average: a sample's
	// weight falls by e every EWMADecay, however many samples follow, and a
	// sample slower than the average replaces it at once (the peak).
	EWMADecay = 10 * time.Second
	// SlowStart is how long a provider that joins a [PeakEWMA] pool, or
	// returns from an outlier ejection, takes to reach its full weight,
	// ramping up from a tenth of it.
	SlowStart = 30 * time.Second
)

// latency is one provider's latency state.
type latency struct {
	clock Clock
	since int64         // Unix ns when it joined a p2c_ewma pool
	ewma  atomic.Uint64 // float64 bits of the average, in ns; 0: no sample

	mu   sync.Mutex
	last int64 // Unix ns of the last sample, under mu
}

// latencyOf returns c's latency state, making it on clock if c has none
// and clock is not nil.
func (c *counter) latencyOf(clock Clock) *latency {
	if x := c.ext.Load(); x != nil {
		if l, _ := x.latency.Load().(*latency); l != nil {
			return l
		}
	}
	if clock == nil {
		return nil
	}
	x := c.extension()
	x.latency.CompareAndSwap(nil, &latency{clock: clock, since: clock.Now().UnixNano()})
	return x.latency.Load().(*latency)
}

// observe adds a sample of d.
func (l *latency) observe(d time.Duration) {
	now := l.clock.Now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, x := math.Float64frombits(l.ewma.Load()), math.Max(float64(d), 1)
	if x < cur {
		w := math.Exp(-float64(now-l.last) / float64(EWMADecay))
		x = cur*w + x*(1-w)
	}
	l.last = now
	l.ewma.Store(math.Float64bits(x))
}

// average returns the average in ns, or 0 before the first sample.
func (l *latency) average() float64 {
	return math.Float64frombits(l.ewma.Load())
}

// ramp returns the share of its weight that a provider in slow start has
// at now: from a tenth at start up to all of it SlowStart later.
func ramp(start, now int64) float64 {
	if now <= start {
		return 0.1
	}
	return math.Min(1, math.Max(0.1, float64(now-start)/float64(SlowStart)))
}
