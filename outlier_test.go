package pool

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onwardsgo/pool/internal/fakeclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// outlierPool is a priority pool of n providers with outlier detection on
// a fake clock.
func outlierPool(t *testing.T, n int, o OutlierDetection, opts ...Option) (*ProviderPool, *fakeclock.Clock) {
	t.Helper()
	clock := fakeclock.New()
	var providers []*Provider
	for i := range n {
		providers = append(providers, NewProvider(newTestTarget(t, fmt.Sprintf("https://p%d.example.com", i)), 1))
	}
	p, err := NewProviderPool(providers, append([]Option{WithStrategy(Priority), WithOutlierDetection(o), WithClock(clock)}, opts...)...)
	require.NoError(t, err)
	return p, clock
}

// attempt selects, reports o on the selection, and closes it; it returns
// the index selected and whether in panic mode.
func attempt(t *testing.T, p *ProviderPool, o Outcome) (int, bool) {
	t.Helper()
	sel, ok := p.Select()
	require.True(t, ok)
	sel.Report(o)
	sel.Close()
	return sel.Index, sel.Panic()
}

func TestOutlierFourFailuresThenASuccessStayHealthy(t *testing.T) {
	t.Parallel()
	p, _ := outlierPool(t, 2, OutlierDetection{})
	for range 4 {
		i, _ := attempt(t, p, Failure)
		require.Equal(t, 0, i)
	}
	attempt(t, p, Success)
	for range 4 {
		i, _ := attempt(t, p, Failure)
		require.Equal(t, 0, i, "the success reset the count")
	}
	i, _ := attempt(t, p, Failure) // the 5th in a row
	require.Equal(t, 0, i)
	i, _ = attempt(t, p, Success)
	assert.Equal(t, 1, i, "ejected after 5 in a row")
}

func TestOutlierEjectsThenProbesAtBaseEjection(t *testing.T) {
	t.Parallel()
	p, clock := outlierPool(t, 2, OutlierDetection{})
	for range 5 {
		attempt(t, p, Failure)
	}
	clock.Advance(30*time.Second - time.Nanosecond)
	i, _ := attempt(t, p, Success)
	assert.Equal(t, 1, i, "still ejected just before 30 s")
	clock.Advance(time.Nanosecond)
	sel, ok := p.Select()
	require.True(t, ok)
	assert.Equal(t, 0, sel.Index, "probed at 30 s")
	assert.Same(t, sel.Guard, p.detect.hs[0].ext.probe.Load(), "it holds the probe slot")
	sel.Report(Success)
	sel.Close()
	i, _ = attempt(t, p, Success)
	assert.Equal(t, 0, i, "a successful probe restores it")
}

func TestOutlierEjectionsGrowToTheMax(t *testing.T) {
	t.Parallel()
	p, clock := outlierPool(t, 2, OutlierDetection{BaseEjection: 30 * time.Second, MaxEjection: 100 * time.Second})
	for range 5 {
		attempt(t, p, Failure)
	}
	for _, want := range []time.Duration{30, 60, 90, 100, 100} {
		want *= time.Second
		h := p.detect.hs[0]
		until := time.Unix(0, h.until.Load())
		assert.Equal(t, want, until.Sub(clock.Now()), "ejection length")
		clock.Advance(want)
		i, _ := attempt(t, p, Failure) // the probe fails: ejected again, for longer
		require.Equal(t, 0, i)
	}
}

func TestOutlierEjectionsDecayWhileHealthy(t *testing.T) {
	t.Parallel()
	p, clock := outlierPool(t, 2, OutlierDetection{ConsecutiveFailures: 1})
	attempt(t, p, Failure) // k = 1
	clock.Advance(30 * time.Second)
	attempt(t, p, Failure) // the probe fails: k = 2, 60 s
	clock.Advance(60 * time.Second)
	attempt(t, p, Success) // restored
	clock.Advance(60 * time.Second)
	attempt(t, p, Success) // two base lengths healthy: k back to 0
	attempt(t, p, Failure)
	h := p.detect.hs[0]
	assert.Equal(t, 30*time.Second, time.Unix(0, h.until.Load()).Sub(clock.Now()), "a first ejection again")
}

func TestOutlierNeverEjectsAOneProviderPool(t *testing.T) {
	t.Parallel()
	p, _ := outlierPool(t, 1, OutlierDetection{ConsecutiveFailures: 1, MaxEjectionPercent: 100})
	for range 20 {
		i, panicked := attempt(t, p, Failure)
		require.Equal(t, 0, i)
		require.False(t, panicked)
	}
	assert.False(t, p.detect.hs[0].ejected.Load())
}

func TestOutlierEjectsAtMostItsShare(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ n, pct, want int }{{3, 67, 2}, {3, 50, 1}, {4, 50, 2}, {2, 100, 1}, {10, 10, 1}} {
		p, _ := outlierPool(t, tc.n, OutlierDetection{ConsecutiveFailures: 1, MaxEjectionPercent: tc.pct})
		for range 3 * tc.n {
			sel, ok := p.Select()
			require.True(t, ok)
			sel.Report(Failure)
			sel.Close()
		}
		ejected := 0
		for _, h := range p.detect.hs {
			if h.ejected.Load() {
				ejected++
			}
		}
		assert.Equal(t, tc.want, ejected, "n=%d at %d%%", tc.n, tc.pct)
	}
}

func TestOutlierHalfOpenSendsOneProbe(t *testing.T) {
	t.Parallel()
	p, clock := outlierPool(t, 2, OutlierDetection{ConsecutiveFailures: 1})
	attempt(t, p, Failure)
	clock.Advance(30 * time.Second)
	// Two requests at once: one probes provider 0, the other goes to 1.
	a, ok := p.Select()
	require.True(t, ok)
	b, ok := p.Select()
	require.True(t, ok)
	assert.Equal(t, []int{0, 1}, []int{a.Index, b.Index})
	assert.Same(t, a.Guard, p.detect.hs[0].ext.probe.Load())
	assert.NotSame(t, b.Guard, p.detect.hs[0].ext.probe.Load())

	// A probe that ends without a report (the client cancelled) frees the
	// slot for the next request.
	a.Close()
	b.Close()
	c, ok := p.Select()
	require.True(t, ok)
	assert.Equal(t, 0, c.Index, "the slot is free again")
	c.Report(Neutral)
	c.Close()
	d, _ := p.Select()
	assert.Equal(t, 0, d.Index, "a neutral probe frees the slot too")
	d.Close()
}

func TestOutlierHalfOpenUnderConcurrency(t *testing.T) {
	t.Parallel()
	p, clock := outlierPool(t, 2, OutlierDetection{ConsecutiveFailures: 1})
	attempt(t, p, Failure)
	clock.Advance(30 * time.Second)
	var mu sync.Mutex
	probes := 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	sels := make(chan Selection, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			sel, ok := p.Select()
			if !ok {
				return
			}
			if p.detect.hs[0].ext.probe.Load() == sel.Guard {
				mu.Lock()
				probes++
				mu.Unlock()
			}
			sels <- sel
		}()
	}
	close(start)
	wg.Wait()
	close(sels)
	for sel := range sels {
		sel.Close()
	}
	assert.Equal(t, 1, probes, "one probe among 64 concurrent requests")
	for _, pr := range p.Providers() {
		assert.Zero(t, pr.ActiveConnections())
	}
}

func TestCoolDownNeverShortens(t *testing.T) {
	t.Parallel()
	for _, order := range [][]time.Duration{{time.Second, time.Minute}, {time.Minute, time.Second}} {
		p, clock := outlierPool(t, 2, OutlierDetection{})
		sel, _ := p.Select()
		for _, d := range order {
			sel.CoolDown(d)
		}
		sel.Close()
		clock.Advance(time.Minute - time.Nanosecond)
		i, _ := attempt(t, p, Success)
		assert.Equal(t, 1, i, "cooling until +60 s (order %v)", order)
		clock.Advance(time.Nanosecond)
		i, _ = attempt(t, p, Success)
		assert.Equal(t, 0, i, "back at +60 s")
	}
}

func TestCoolDownCapsAndIgnore(t *testing.T) {
	t.Parallel()
	p, clock := outlierPool(t, 2, OutlierDetection{})
	sel, _ := p.Select()
	sel.CoolDown(time.Hour)
	sel.Close()
	clock.Advance(MaxRetryAfter)
	i, _ := attempt(t, p, Success)
	assert.Equal(t, 0, i, "capped at 5 minutes")

	p, _ = outlierPool(t, 2, OutlierDetection{IgnoreRetryAfter: true})
	sel, _ = p.Select()
	sel.CoolDown(time.Hour)
	sel.Close()
	i, _ = attempt(t, p, Success)
	assert.Equal(t, 0, i)
}

func TestPanicModeWhenEveryProviderIsHeldBack(t *testing.T) {
	t.Parallel()
	p, _ := outlierPool(t, 2, OutlierDetection{})
	for range 2 {
		sel, _ := p.Select()
		sel.CoolDown(time.Minute)
		sel.Close()
	}
	i, panicked := attempt(t, p, Failure)
	assert.Equal(t, 0, i)
	assert.True(t, panicked, "both cool down: the pool serves anyway and says so")
}

func TestOutlierStateSurvivesReload(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	doc := `{"targets": {"a": {"strategy": "priority", "outlier_detection": {"consecutive_failures": 1},
		"providers": [{"url": "https://p0.example.com"}, {"url": "https://p1.example.com"}%s]}}}`
	r := &Registry{Clock: clock}
	require.NoError(t, r.Reload(mustParse(t, fmt.Sprintf(doc, ""))))
	p, _ := r.Pool("a")
	attempt(t, p, Failure) // ejects p0

	require.NoError(t, r.Reload(mustParse(t, fmt.Sprintf(doc, `, {"url": "https://p2.example.com"}`))))
	p, _ = r.Pool("a")
	i, _ := attempt(t, p, Failure)
	assert.Equal(t, 1, i, "p0 stays ejected across the reload")
	i, _ = attempt(t, p, Success)
	assert.Equal(t, 1, i, "p1's failure did not eject it: at 50% of 3, one ejection at a time")
	assert.True(t, p.detect.hs[0].ejected.Load())
	assert.False(t, p.detect.hs[2].ejected.Load(), "a new provider starts healthy")
}

// TestOutlierStress runs many goroutines that select, report random
// outcomes and close, while the clock moves: the cap always holds, and
// every slot and probe is released at the end.
func TestOutlierStress(t *testing.T) {
	t.Parallel()
	const n = 5
	p, clock := outlierPool(t, n, OutlierDetection{ConsecutiveFailures: 2, MaxEjectionPercent: 60},
		WithStrategy(WeightedRandom))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var violations atomic.Int64
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				sel, ok := p.Select()
				if !ok {
					continue
				}
				// Under the detector's lock no ejection starts, so the count
				// read is at most the count when the read began.
				p.detect.mu.Lock()
				ejected := 0
				for _, h := range p.detect.hs {
					if h.ejected.Load() {
						ejected++
					}
				}
				p.detect.mu.Unlock()
				if ejected > n*60/100 {
					violations.Add(1)
				}
				sel.Report([]Outcome{Success, Failure, Failure, Neutral}[(g+i)%4])
				sel.Close()
			}
		}()
	}
	for range 200 {
		clock.Advance(7 * time.Second)
		runtime.Gosched()
	}
	close(stop)
	wg.Wait()
	assert.Zero(t, violations.Load(), "more ejected than the cap allows")
	for i, pr := range p.Providers() {
		assert.Zero(t, pr.ActiveConnections(), "provider %d", i)
		assert.Nil(t, p.detect.hs[i].ext.probe.Load(), "provider %d's probe slot", i)
	}
}
