package pool

import (
	"math"
	"testing"
	"time"

	"github.com/onwardsgo/pool/internal/fakeclock"
	"github.com/stretchr/testify/require"
)

// testAIMD is onwards' test configuration of its controller tests.
func testAIMD() AIMD {
	return AIMD{LatencyBudget: 100 * time.Millisecond, BreachRateTarget: 0.2, RecoveryBreachRate: 0.1,
		WindowSamples: 10, MinSamples: 5, ShareStep: 0.1, ShareDecay: 0.5, ShareFloor: 0.1,
		Dwell: time.Second, IdleRecovery: 10 * time.Second, OverloadStatuses: []int{429, 503, 529}}
}

// controllerAt returns a controller on a fake clock and a function that
// sets the clock to ms milliseconds past its start.
func controllerAt(cfg AIMD) (*shareController, func(ms int64)) {
	clock := fakeclock.New()
	start := clock.Now()
	c := newShareController(cfg, clock)
	return c, func(ms int64) { clock.Advance(start.Add(time.Duration(ms) * time.Millisecond).Sub(clock.Now())) }
}

func sample(c *shareController, o shareOutcome) {
	gen, ok := c.begin()
	if !ok {
		panic("controller does not act")
	}
	c.finish(gen, o)
}

func samples(c *shareController, o shareOutcome, n int) {
	for range n {
		sample(c, o)
	}
}

func requireShare(t *testing.T, c *shareController, want float64) {
	t.Helper()
	require.InDelta(t, want, c.snapshot().Share, 1e-9)
}

func TestAIMDUnknownOutcomesAreExcludedRatherThanVetoing(t *testing.T) {
	c, at := controllerAt(testAIMD())
	at(2000)
	sample(c, shareUnknown)
	samples(c, shareBreach, 4)
	require.Equal(t, 4, c.snapshot().Samples, "the unknown did not count towards min_samples")
	requireShare(t, c, 1)
	sample(c, shareBreach)
	requireShare(t, c, 0.5)
	require.EqualValues(t, 1, c.snapshot().UnknownSeen)
}

func TestAIMDInFlightAttemptsNeverHoldADecisionBack(t *testing.T) {
	c, at := controllerAt(testAIMD())
	for range 20 {
		c.begin()
	}
	at(2000)
	samples(c, shareBreach, 5)
	requireShare(t, c, 0.5)
	require.Equal(t, 20, c.snapshot().InFlight)
}

func TestAIMDWindowIsBoundedAndNeverRefusesASample(t *testing.T) {
	c, at := controllerAt(testAIMD())
	c.begin()
	at(500)
	samples(c, shareHealthy, 25)
	require.Equal(t, 10, c.snapshot().Samples)
	_, ok := c.begin()
	require.True(t, ok)
}

func TestAIMDHysteresisBandHoldsTheShare(t *testing.T) {
	c, at := controllerAt(testAIMD())
	at(2000)
	samples(c, shareBreach, 5)
	requireShare(t, c, 0.5)
	// One breach in five keeps every window of 5 to 10 samples above the
	// recovery rate (10%) and at or below the target (20%): hold.
	for i := range int64(60) {
		at(4000 + i*1000)
		if i%5 == 4 {
			sample(c, shareBreach)
		} else {
			sample(c, shareHealthy)
		}
	}
	requireShare(t, c, 0.5)
}

func TestAIMDDecreaseDiscardsSamplesBegunAtTheOldShare(t *testing.T) {
	c, at := controllerAt(testAIMD())
	old, _ := c.begin()
	at(2000)
	samples(c, shareBreach, 5)
	requireShare(t, c, 0.5)
	at(2100)
	c.finish(old, shareBreach)
	s := c.snapshot()
	require.Zero(t, s.Samples)
	require.Zero(t, s.InFlight)
}

func TestAIMDDecreasesRespectDwellAndTheFloor(t *testing.T) {
	c, at := controllerAt(testAIMD())
	at(2000)
	samples(c, shareBreach, 5)
	requireShare(t, c, 0.5)
	at(2500)
	samples(c, shareBreach, 5)
	requireShare(t, c, 0.5) // within the dwell
	at(3100)
	sample(c, shareBreach)
	requireShare(t, c, 0.25)
	now := int64(3100)
	for range 20 {
		now += 1100
		at(now)
		samples(c, shareBreach, 5)
	}
	requireShare(t, c, 0.1)
	decreases := c.snapshot().Decreases
	at(now + 5000)
	sample(c, shareBreach)
	require.Equal(t, decreases, c.snapshot().Decreases, "no decrease below the floor")
}

func TestAIMDRecoveryKeepsTheWindowSoEachStepNeedsOnlyADwell(t *testing.T) {
	c, at := controllerAt(testAIMD())
	at(2000)
	samples(c, shareBreach, 5)
	at(3000)
	samples(c, shareHealthy, 5) // starts the healthy dwell
	requireShare(t, c, 0.5)
	at(4000)
	sample(c, shareHealthy)
	requireShare(t, c, 0.6)
	require.Equal(t, 6, c.snapshot().Samples, "an increase keeps the window")
	at(5000)
	sample(c, shareHealthy)
	requireShare(t, c, 0.7)
}

func TestAIMDIdleRecoveryCreditsElapsedIntervals(t *testing.T) {
	c, at := controllerAt(testAIMD())
	at(2000)
	samples(c, shareBreach, 5)
	requireShare(t, c, 0.5)
	at(11_999)
	require.InDelta(t, 0.5, c.currentShare(), 1e-9)
	at(12_000)
	require.InDelta(t, 0.6, c.currentShare(), 1e-9)
	at(32_500) // two more whole intervals: two steps, on the cadence
	require.InDelta(t, 0.8, c.currentShare(), 1e-9)
	at(33_000) // with samples enough to judge, the evidence decides
	samples(c, shareBreach, 5)
	requireShare(t, c, 0.4)
	at(33_500)
	samples(c, shareBreach, 5)
	at(90_000)
	require.InDelta(t, 0.4, c.currentShare(), 1e-9)

	off := testAIMD()
	off.IdleRecovery = 0
	c, at = controllerAt(off)
	at(2000)
	samples(c, shareBreach, 5)
	at(10_000_000)
	require.InDelta(t, 0.5, c.currentShare(), 1e-9)
}

func TestAIMDParkedControllerKeepsItsShareAndResumesFresh(t *testing.T) {
	c, at := controllerAt(testAIMD())
	at(2000)
	samples(c, shareBreach, 5)
	gen, _ := c.begin()
	c.park()
	_, ok := c.begin()
	require.False(t, ok, "a parked controller takes no observation")
	require.InDelta(t, 1, c.currentShare(), 0, "a parked controller steers nothing")
	c.resume()
	requireShare(t, c, 0.5)
	at(3000)
	c.finish(gen, shareBreach)
	require.Zero(t, c.snapshot().Samples, "an attempt begun before the park no longer counts")
	c.retire()
	c.resume()
	require.False(t, c.snapshot().Active, "a retired controller never resumes")
}

func TestAIMDDefaultsIgnoreNoiseAndActOnOverload(t *testing.T) {
	for _, tc := range []struct {
		every    int64
		decrease bool
	}{{20, false}, {5, true}} {
		c, at := controllerAt(DefaultAIMD())
		for i := range int64(300) {
			at((i + 1) * 1000)
			if i%tc.every == 0 {
				sample(c, shareBreach)
			} else {
				sample(c, shareHealthy)
			}
		}
		require.Equal(t, tc.decrease, c.snapshot().Share < 1, "a breach in every %d", tc.every)
	}
}

func TestAIMDLoadDependentLatencyConvergesAndRecovers(t *testing.T) {
	c, at := controllerAt(testAIMD())
	now := int64(0)
	for range 400 {
		now += 200
		at(now)
		// A provider with room for 60% of the load within the budget.
		if c.snapshot().Share > 0.6 {
			sample(c, shareBreach)
		} else {
			sample(c, shareHealthy)
		}
	}
	require.GreaterOrEqual(t, c.snapshot().Share, 0.25)
	require.LessOrEqual(t, c.snapshot().Share, 0.7)
	for range 200 {
		now += 200
		at(now)
		sample(c, shareHealthy)
	}
	requireShare(t, c, 1)
	for range 200 {
		now += 200
		at(now)
		sample(c, shareBreach)
	}
	requireShare(t, c, 0.1)
}

func TestFirstTokenObservationShortDeadlineIsUnknownAndReportsOnce(t *testing.T) {
	clock := fakeclock.New()
	c := newShareController(DefaultAIMD(), clock)
	observe := func() *FirstTokenObservation {
		gen, _ := c.begin()
		return &FirstTokenObservation{c: c, gen: gen, start: clock.Now()}
	}
	early := observe()
	clock.Advance(5 * time.Second)
	early.Deadline()
	require.Zero(t, c.snapshot().Samples, "a deadline below the budget proves nothing")
	late := observe()
	clock.Advance(10 * time.Second)
	late.Deadline()
	late.Frame()
	late.Status(529)
	late.Close()
	early.Close()
	s := c.snapshot()
	require.Equal(t, 1, s.Samples)
	require.Equal(t, 1.0, s.BreachRate)
	require.Zero(t, s.InFlight)
	var none *FirstTokenObservation
	none.Frame()
	none.Deadline()
	none.Status(500)
	none.Close()
}

func TestFirstTokenObservationOverloadStatusesAreBreaches(t *testing.T) {
	clock := fakeclock.New()
	c := newShareController(testAIMD(), clock)
	for _, status := range []int{529, 429, 503, 500, 404} {
		gen, _ := c.begin()
		(&FirstTokenObservation{c: c, gen: gen, start: clock.Now()}).Status(status)
	}
	s := c.snapshot()
	require.Equal(t, 3, s.Samples)
	require.Equal(t, 1.0, s.BreachRate)
}

func TestAIMDBoundsAreOnwards(t *testing.T) {
	require.Empty(t, checkAIMD("aimd", testAIMD()))
	require.Empty(t, checkAIMD("aimd", DefaultAIMD()))
	for field, mutate := range map[string]func(*AIMD){
		"aimd.min_samples":          func(a *AIMD) { a.MinSamples = 1 },
		"aimd.share_decay":          func(a *AIMD) { a.ShareDecay = math.NaN() },
		"aimd.share_floor":          func(a *AIMD) { a.ShareFloor = 0 },
		"aimd.recovery_breach_rate": func(a *AIMD) { a.RecoveryBreachRate = a.BreachRateTarget + 0.01 },
		"aimd.overload_statuses[0]": func(a *AIMD) { a.OverloadStatuses = []int{200} },
		"aimd.idle_recovery_ms":     func(a *AIMD) { a.IdleRecovery = 24*time.Hour + time.Millisecond },
		"aimd.latency_budget_ms":    func(a *AIMD) { a.LatencyBudget = 0 },
		"aimd.dwell_ms":             func(a *AIMD) { a.Dwell = 25 * time.Hour },
		"aimd.breach_rate_target":   func(a *AIMD) { a.BreachRateTarget = 1 },
		"aimd.share_step":           func(a *AIMD) { a.ShareStep = 1.5 },
	} {
		a := testAIMD()
		mutate(&a)
		errs := checkAIMD("aimd", a)
		require.NotEmpty(t, errs, field)
		require.Equal(t, field, errs[0].Place, field)
	}
}
