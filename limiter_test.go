package pool

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

// *rate.Limiter must satisfy RateLimiter without an adapter.
var _ RateLimiter = (*rate.Limiter)(nil)

func TestConcurrencyLimiterUnlimitedNeverRefuses(t *testing.T) {
	t.Parallel()
	for name, l := range map[string]*ConcurrencyLimiter{
		"constructor": NewConcurrencyLimiter(),
		"zero value":  new(ConcurrencyLimiter),
	} {
		t.Run(name, func(t *testing.T) {
			_, limited := l.Limit()
			assert.False(t, limited)
			var guards []*ConcurrencyGuard
			for i := range 1000 {
				g, ok := l.TryAcquire()
				require.True(t, ok)
				require.NotNil(t, g)
				guards = append(guards, g)
				assert.Equal(t, i+1, l.Active())
				assert.False(t, l.AtCapacity())
			}
			for _, g := range guards {
				require.NoError(t, g.Close())
			}
			assert.Equal(t, 0, l.Active())
		})
	}
}

func TestConcurrencyLimiterRefusesAtLimit(t *testing.T) {
	t.Parallel()
	l := NewConcurrencyLimiterWithLimit(2)
	limit, ok := l.Limit()
	require.True(t, ok)
	assert.Equal(t, 2, limit)

	g1, ok := l.TryAcquire()
	require.True(t, ok)
	assert.False(t, l.AtCapacity())
	g2, ok := l.TryAcquire()
	require.True(t, ok)
	assert.True(t, l.AtCapacity())

	g3, ok := l.TryAcquire()
	assert.False(t, ok)
	assert.Nil(t, g3)
	assert.Equal(t, 2, l.Active(), "a refusal takes nothing")

	g1.Close()
	assert.False(t, l.AtCapacity())
	g4, ok := l.TryAcquire()
	require.True(t, ok)
	g2.Close()
	g4.Close()
	assert.Equal(t, 0, l.Active())
}

func TestConcurrencyLimiterZeroAndNegativeLimitRefuseAll(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{0, -1} {
		l := NewConcurrencyLimiterWithLimit(limit)
		assert.True(t, l.AtCapacity())
		g, ok := l.TryAcquire()
		assert.False(t, ok)
		assert.Nil(t, g)
		assert.Equal(t, 0, l.Active())
	}
}

func TestConcurrencyGuardClosesExactlyOnce(t *testing.T) {
	t.Parallel()
	l := NewConcurrencyLimiter()
	keep, _ := l.TryAcquire()
	g, _ := l.TryAcquire()
	require.Equal(t, 2, l.Active())

	require.NoError(t, g.Close())
	require.NoError(t, g.Close())
	require.NoError(t, g.Close())
	assert.Equal(t, 1, l.Active(), "later closes do nothing")

	var nilGuard *ConcurrencyGuard
	assert.NoError(t, nilGuard.Close())
	assert.NoError(t, Selection{}.Close(), "the zero Selection closes safely")
	keep.Close()
	assert.Equal(t, 0, l.Active())
}

func TestConcurrencyGuardConcurrentCloseReleasesOnce(t *testing.T) {
	t.Parallel()
	l := NewConcurrencyLimiter()
	for range 200 {
		keep, _ := l.TryAcquire()
		g, _ := l.TryAcquire()
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				g.Close()
			}()
		}
		close(start)
		wg.Wait()
		require.Equal(t, 1, l.Active())
		keep.Close()
		require.Equal(t, 0, l.Active())
	}
}

func TestConcurrencyLimiterHammer(t *testing.T) {
	t.Parallel()
	const limit, workers, rounds = 3, 32, 2000
	l := NewConcurrencyLimiterWithLimit(limit)
	var inside, peak atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				g, ok := l.TryAcquire()
				if !ok {
					continue
				}
				n := inside.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				assert.LessOrEqual(t, l.Active(), limit)
				inside.Add(-1)
				g.Close()
				g.Close()
			}
		}()
	}
	wg.Wait()
	assert.LessOrEqual(t, peak.Load(), int64(limit))
	assert.Positive(t, peak.Load())
	assert.Equal(t, 0, l.Active())
}

func TestAdoptActiveCounter(t *testing.T) {
	t.Parallel()
	old := NewConcurrencyLimiterWithLimit(10)
	var held []*ConcurrencyGuard
	for range 3 {
		g, ok := old.TryAcquire()
		require.True(t, ok)
		held = append(held, g)
	}

	next := NewConcurrencyLimiterWithLimit(4)
	next.AdoptActiveCounter(old)
	assert.Equal(t, 3, next.Active(), "shares the live count")
	limit, _ := next.Limit()
	assert.Equal(t, 4, limit, "keeps its own limit")

	g, ok := next.TryAcquire()
	require.True(t, ok)
	assert.True(t, next.AtCapacity(), "old guards count against the new limit")
	_, ok = next.TryAcquire()
	assert.False(t, ok)

	held[0].Close()
	assert.Equal(t, 3, next.Active(), "old guards release into the shared counter")
	assert.Equal(t, 3, old.Active())
	g.Close()
	held[1].Close()
	held[2].Close()
	assert.Equal(t, 0, next.Active())

	next.AdoptActiveCounter(nil)
	next.AdoptActiveCounter(next)
	assert.Equal(t, 0, next.Active())
	unused := new(ConcurrencyLimiter)
	next.AdoptActiveCounter(unused)
	g, _ = next.TryAcquire()
	assert.Equal(t, 1, unused.Active(), "adopting a zero-value limiter shares its lazily made counter")
	g.Close()
}

func TestNewRateLimiter(t *testing.T) {
	t.Parallel()
	// A rate this low refills nothing during the test: exactly the burst
	// is allowed.
	l := NewRateLimiter(1e-9, 3)
	for i := range 3 {
		assert.True(t, l.Allow(), "request %d within the burst", i)
	}
	assert.False(t, l.Allow())

	_, isRate := l.(*rate.Limiter)
	assert.True(t, isRate)
	assert.False(t, NewRateLimiter(100, 0).Allow(), "a burst of 0 allows nothing")
}
