package pool

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// AIMD is the preferred-share controller of a priority pool, onwards 2.0's
// fallback.aimd: the share of load-aware requests (see
// [SelectIter.SetLoadAware]) that try the preferred provider, the pool's
// first, first. The others start at the next provider; every later attempt
// walks the pool as always, so the preferred provider stays reachable.
//
// The controller watches the preferred provider's first-token outcomes
// ([FirstTokenObservation]). A breach is a first frame later than
// LatencyBudget, a first-token deadline that expired at or past it, or an
// answer with one of OverloadStatuses; other failures are unknown and left
// out. Over a window of completed outcomes, a breach rate above
// BreachRateTarget multiplies the share by ShareDecay (down to ShareFloor);
// a rate at or below RecoveryBreachRate held for Dwell adds ShareStep; a
// rate in between holds it. Adjustments are at least Dwell apart, and a
// decrease discards the outcomes of attempts begun at the old share. A pool
// with too few samples to judge for IdleRecovery steps its share up
// anyway.
//
// The zero AIMD is not valid; start from [DefaultAIMD].
type AIMD struct {
	LatencyBudget      time.Duration // 1 ms to 1 h
	BreachRateTarget   float64       // in [0, 1)
	RecoveryBreachRate float64       // in [0, BreachRateTarget]
	WindowSamples      int           // MinSamples to 100000
	MinSamples         int           // at least 2
	ShareStep          float64       // in (0, 1]
	ShareDecay         float64       // in (0, 1)
	ShareFloor         float64       // in (0, 1]
	Dwell              time.Duration // 1 ms to 24 h
	IdleRecovery       time.Duration // 0 (off) to 24 h
	OverloadStatuses   []int         // at most 32, each 400-599
}

// DefaultAIMD returns onwards 2.0's defaults: a 10 s budget, a breach
// rate held between 3% and 10%, a window of 100 outcomes judged from 20,
// steps of 0.05 up and ×0.8 down to a floor of 0.05, 30 s of dwell, idle
// recovery after 5 minutes, and 429, 503 and 529 as overload.
func DefaultAIMD() AIMD {
	return AIMD{
		LatencyBudget:      10 * time.Second,
		BreachRateTarget:   0.10,
		RecoveryBreachRate: 0.03,
		WindowSamples:      100,
		MinSamples:         20,
		ShareStep:          0.05,
		ShareDecay:         0.8,
		ShareFloor:         0.05,
		Dwell:              30 * time.Second,
		IdleRecovery:       5 * time.Minute,
		OverloadStatuses:   []int{429, 503, 529},
	}
}

// checkAIMD validates an AIMD at place, with onwards' bounds.
func checkAIMD(place string, a AIMD) []*FieldError {
	var errs []*FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldErr(place+"."+field, format, args...))
	}
	if a.LatencyBudget < time.Millisecond || a.LatencyBudget > time.Hour {
		bad("latency_budget_ms", "%v; want 1 ms to 1 h", a.LatencyBudget)
	}
	if a.Dwell < time.Millisecond || a.Dwell > 24*time.Hour {
		bad("dwell_ms", "%v; want 1 ms to 24 h", a.Dwell)
	}
	if a.IdleRecovery < 0 || a.IdleRecovery > 24*time.Hour {
		bad("idle_recovery_ms", "%v; want 0 (off) to 24 h", a.IdleRecovery)
	}
	if a.MinSamples < 2 || a.MinSamples > a.WindowSamples || a.WindowSamples > 100000 {
		bad("min_samples", "%d with window_samples %d; want 2 <= min_samples <= window_samples <= 100000", a.MinSamples, a.WindowSamples)
	}
	if !(a.BreachRateTarget >= 0 && a.BreachRateTarget < 1) {
		bad("breach_rate_target", "%v; want at least 0 and below 1", a.BreachRateTarget)
	}
	if !(a.RecoveryBreachRate >= 0 && a.RecoveryBreachRate <= a.BreachRateTarget) {
		bad("recovery_breach_rate", "%v; want 0 to breach_rate_target (%v)", a.RecoveryBreachRate, a.BreachRateTarget)
	}
	if !(a.ShareDecay > 0 && a.ShareDecay < 1) {
		bad("share_decay", "%v; want above 0 and below 1", a.ShareDecay)
	}
	if !(a.ShareStep > 0 && a.ShareStep <= 1) {
		bad("share_step", "%v; want above 0 and at most 1", a.ShareStep)
	}
	if !(a.ShareFloor > 0 && a.ShareFloor <= 1) {
		bad("share_floor", "%v; want above 0 and at most 1", a.ShareFloor)
	}
	if len(a.OverloadStatuses) > 32 {
		bad("overload_statuses", "%d statuses; want at most 32", len(a.OverloadStatuses))
	}
	for i, s := range a.OverloadStatuses {
		if s < 400 || s > 599 {
			bad(fmt.Sprintf("overload_statuses[%d]", i), "%d; want an error status, 400 to 599", s)
		}
	}
	return errs
}

// Outcome classes of a preferred attempt, as the controller sees them.
type shareOutcome uint8

const (
	shareHealthy shareOutcome = iota
	shareBreach
	shareUnknown // left out of the rate: says nothing of capacity
)

// controllerState is whether a controller acts.
type controllerState uint8

const (
	controllerActive  controllerState = iota
	controllerParked                  // kept across a reload that made its pool ineligible
	controllerRetired                 // its pool's settings or preferred provider changed
)

// shareController is one pool's AIMD state, shared by the pools a reload
// carries it to. It is safe for simultaneous use.
type shareController struct {
	mu        sync.Mutex
	cfg       AIMD
	clock     Clock
	state     controllerState
	share     float64
	gen       uint64    // bumped by each decrease and each resume
	window    []bool    // ring of completed outcomes of this generation; true: a breach
	head, n   int       // the ring's oldest slot and length
	breaches  int       // breaches in the window
	inFlight  int       // observations begun and not finished, all generations
	last      time.Time // the last adjustment
	healthy   time.Time // start of the healthy dwell; zero: none
	increases uint64
	decreases uint64
	unknowns  uint64
}

func newShareController(cfg AIMD, clock Clock) *shareController {
	return &shareController{cfg: cfg, clock: clock, share: 1, window: make([]bool, cfg.WindowSamples), last: clock.Now()}
}

// currentShare returns the share after any idle recovery due now, or 1 for
// a controller that does not act.
func (c *shareController) currentShare() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != controllerActive {
		return 1
	}
	c.tick(c.clock.Now())
	return c.share
}

// tick steps the share up for each IdleRecovery elapsed since the last
// adjustment while the window has too few samples to judge.
func (c *shareController) tick(now time.Time) {
	if c.cfg.IdleRecovery <= 0 || c.share >= 1 || c.n >= c.cfg.MinSamples {
		return
	}
	steps := now.Sub(c.last) / c.cfg.IdleRecovery
	if steps <= 0 {
		return
	}
	c.share = math.Min(1, c.share+c.cfg.ShareStep*float64(steps))
	c.last = c.last.Add(c.cfg.IdleRecovery * steps)
	c.healthy = time.Time{}
	c.increases++
}

// begin starts an observation and returns its generation, or false when
// the controller does not act.
func (c *shareController) begin() (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != controllerActive {
		return 0, false
	}
	c.inFlight++
	return c.gen, true
}

// finish records the outcome of an observation of generation gen.
func (c *shareController) finish(gen uint64, o shareOutcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight--
	if c.state != controllerActive || gen != c.gen {
		return
	}
	if o == shareUnknown {
		c.unknowns++
		return
	}
	c.push(o == shareBreach)
	c.decide(c.clock.Now())
}

// push adds an outcome to the window, dropping the oldest past its size.
func (c *shareController) push(breach bool) {
	if c.n == len(c.window) {
		if c.window[c.head] {
			c.breaches--
		}
		c.head = (c.head + 1) % len(c.window)
		c.n--
	}
	c.window[(c.head+c.n)%len(c.window)] = breach
	c.n++
	if breach {
		c.breaches++
	}
}

// clear empties the window.
func (c *shareController) clear() {
	c.head, c.n, c.breaches = 0, 0, 0
}

// decide moves the share if the window calls for it.
func (c *shareController) decide(now time.Time) {
	if c.n < c.cfg.MinSamples {
		return
	}
	rate := float64(c.breaches) / float64(c.n)
	settled := now.Sub(c.last) >= c.cfg.Dwell
	switch {
	case rate > c.cfg.BreachRateTarget:
		c.healthy = time.Time{}
		next := math.Max(c.share*c.cfg.ShareDecay, c.cfg.ShareFloor)
		if !settled || next >= c.share {
			return
		}
		c.share, c.last = next, now
		c.gen++ // outcomes begun at the old share say nothing of the new one
		c.clear()
		c.decreases++
	case rate > c.cfg.RecoveryBreachRate:
		c.healthy = time.Time{} // the band between the rates holds
	default:
		if c.healthy.IsZero() {
			c.healthy = now
		}
		if c.share >= 1 || !settled || now.Sub(c.healthy) < c.cfg.Dwell {
			return
		}
		// The window is kept: still healthy, it is evidence for the next step.
		c.share = math.Min(1, c.share+c.cfg.ShareStep)
		c.last, c.healthy = now, now
		c.increases++
	}
}

// park stops an active controller and keeps what it learned.
func (c *shareController) park() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == controllerActive {
		c.state = controllerParked
	}
}

// resume restarts a parked controller with its share and a fresh window;
// attempts begun before no longer count.
func (c *shareController) resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != controllerParked {
		return
	}
	c.state = controllerActive
	c.gen++
	c.clear()
	c.healthy = time.Time{}
}

// retire stops a controller for good.
func (c *shareController) retire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = controllerRetired
}

// ShareSnapshot is what a pool's AIMD controller holds at one moment.
type ShareSnapshot struct {
	Share       float64 // the preferred-first share, 0 to 1
	Active      bool    // false: parked or retired, the share is not used
	Samples     int     // completed outcomes in the window
	BreachRate  float64 // breaches over Samples; 0 with no samples
	InFlight    int     // observations begun and not finished
	Increases   uint64  // adjustments up, idle recovery included
	Decreases   uint64  // adjustments down
	UnknownSeen uint64  // observations that ended unknown
}

func (c *shareController) snapshot() ShareSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := ShareSnapshot{Share: c.share, Active: c.state == controllerActive, Samples: c.n, InFlight: c.inFlight,
		Increases: c.increases, Decreases: c.decreases, UnknownSeen: c.unknowns}
	if c.n > 0 {
		s.BreachRate = float64(c.breaches) / float64(c.n)
	}
	return s
}
