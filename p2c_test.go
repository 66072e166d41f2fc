package pool

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/onwardsgo/pool/internal/fakeclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func p2cPool(t *testing.T, clock Clock, providers ...*Provider) *ProviderPool {
	t.Helper()
	return newTestPool(t, providers, WithStrategy(PeakEWMA), WithClock(clock))
}

// warm reports latency d on provider i of p, by selecting until it is
// picked.
func warm(t *testing.T, p *ProviderPool, i int, d time.Duration) {
	t.Helper()
	for range 1000 {
		s, ok := p.Select()
		require.True(t, ok)
		picked := s.Index == i
		if picked {
			s.ReportLatency(d)
		}
		s.Close()
		if picked {
			return
		}
	}
	t.Fatalf("provider %d never picked", i)
}

func TestPeakEWMAPrefersTheFasterUntilItIsLoaded(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	p := p2cPool(t, clock,
		NewProvider(newTestTarget(t, "https://slow.example.com"), 1),
		NewProvider(newTestTarget(t, "https://fast.example.com"), 1))
	warm(t, p, 0, 100*time.Millisecond)
	warm(t, p, 1, 10*time.Millisecond)
	clock.Advance(SlowStart) // both past slow start

	var held []Selection
	for range 9 { // fast: 10 ms × (k+1) < slow: 100 ms × 1, for k up to 8
		s, ok := p.Select()
		require.True(t, ok)
		assert.Equal(t, 1, s.Index)
		held = append(held, s)
	}
	s, _ := p.Select() // fast 10 × 10 = slow 100 × 1: a tie keeps the first drawn
	held = append(held, s)
	s, _ = p.Select()
	held = append(held, s)
	assert.Contains(t, []int{held[9].Index, held[10].Index}, 0, "loaded, the fast one costs what the slow one does")
	closeAll(held)
	for _, pr := range p.Providers() {
		assert.Equal(t, 0, pr.ActiveConnections())
	}
}

func TestPeakEWMAAverage(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	l := &latency{clock: clock}
	l.observe(100 * time.Millisecond)
	l.observe(10 * time.Millisecond)
	assert.InDelta(t, float64(100*time.Millisecond), l.average(), 1, "a sample at once after another barely moves it")
	l.observe(300 * time.Millisecond)
	assert.InDelta(t, float64(300*time.Millisecond), l.average(), 0, "a slower sample is the new peak")
	clock.Advance(EWMADecay)
	l.observe(10 * time.Millisecond)
	want := 300*math.Exp(-1) + 10*(1-math.Exp(-1))
	assert.InDelta(t, want*float64(time.Millisecond), l.average(), 1, "a decay time later it weighs 1/e")
}

func TestPeakEWMASlowStartForAProviderThatJoins(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	a, b := newTestTarget(t, "https://a.example.com"), newTestTarget(t, "https://b.example.com")
	old := p2cPool(t, clock, NewProvider(a, 1))
	warm(t, old, 0, 50*time.Millisecond) // a's slow start begins with its first selection
	clock.Advance(SlowStart)

	next := p2cPool(t, clock, NewProvider(a, 1), NewProvider(b, 1))
	next.AdoptProviderState(old)
	for range 100 { // b joins at a tenth of its weight: ten times a's cost
		s, ok := next.Select()
		require.True(t, ok)
		assert.Equal(t, 0, s.Index, "the joining provider is held back")
		s.Close()
	}
	clock.Advance(SlowStart / 2)
	s, _ := next.Select()
	s.Close()
	assert.InDelta(t, 0.5, ramp(next.Providers()[1].limiter.counter().latencyOf(nil).since, clock.Now().UnixNano()), 1e-9)

	clock.Advance(SlowStart / 2) // full weight: the two tie, and the first drawn wins, by weight
	const n = 20_000
	picks := 0
	for range n {
		s, _ := next.Select()
		if s.Index == 1 {
			picks++
		}
		s.Close()
	}
	withinBinomial(t, picks, n, 0.5, "the joined provider's share at full weight")
}

func TestPeakEWMAStress(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	p := p2cPool(t, clock,
		NewProviderWithConcurrencyLimit(newTestTarget(t, "https://a.example.com"), 2, 4),
		NewProvider(newTestTarget(t, "https://b.example.com"), 1),
		NewProvider(newTestTarget(t, "https://c.example.com"), 3))
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held []Selection
			for i := range 2000 {
				if s, ok := p.Select(); ok {
					s.ReportLatency(time.Duration(1+(g+i)%50) * time.Millisecond)
					held = append(held, s)
				}
				if len(held) > 3 {
					closeAll(held)
					held = held[:0]
				}
			}
			closeAll(held)
		}()
	}
	wg.Wait()
	for i, pr := range p.Providers() {
		assert.Equal(t, 0, pr.ActiveConnections(), "provider %d", i)
	}
}

func TestReportLatencyElsewhereIsANoOp(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://a.example.com"), 1)})
	s, _ := p.Select()
	s.ReportLatency(time.Second)
	s.Close()
	assert.Nil(t, p.Providers()[0].limiter.counter().ext.Load(), "a weighted_random pool keeps no latency")
	Selection{}.ReportLatency(time.Second)
}

func TestRamp(t *testing.T) {
	t.Parallel()
	start := int64(1e12)
	assert.Equal(t, 0.1, ramp(start, start))
	assert.Equal(t, 0.1, ramp(start, start+int64(SlowStart/20)))
	assert.InDelta(t, 0.5, ramp(start, start+int64(SlowStart/2)), 1e-12)
	assert.Equal(t, 1.0, ramp(start, start+int64(2*SlowStart)))
}

func TestPeakEWMASlowStartAfterAnEjection(t *testing.T) {
	t.Parallel()
	p, clock := outlierPool(t, 2, OutlierDetection{ConsecutiveFailures: 1, BaseEjection: 10 * time.Second, MaxEjectionPercent: 50},
		WithStrategy(PeakEWMA))
	warm(t, p, 0, 10*time.Millisecond)
	warm(t, p, 1, 10*time.Millisecond)
	clock.Advance(SlowStart) // both at full weight
	for {
		s, ok := p.Select()
		require.True(t, ok)
		i := s.Index
		if i == 0 {
			s.Report(Failure) // ejected for 10 s
		}
		s.Close()
		if i == 0 {
			break
		}
	}
	clock.Advance(10 * time.Second) // the ejection ends: slow start from here
	for range 200 {
		s, ok := p.Select()
		require.True(t, ok)
		assert.Equal(t, 1, s.Index, "back from its ejection at a tenth of its weight, provider 0 costs ten times as much")
		s.Report(Success)
		s.Close()
	}
	clock.Advance(SlowStart)
	picked := 0
	for range 200 {
		s, _ := p.Select()
		if s.Index == 0 {
			picked++
			s.Report(Success)
		}
		s.Close()
	}
	assert.Positive(t, picked, "at full weight again, it is picked")
}
