package pool

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of OutlierDetection, for its zero fields.
const (
	DefaultConsecutiveFailures = 5
	DefaultBaseEjection        = 30 * time.Second
	DefaultMaxEjection         = 5 * time.Minute
	DefaultMaxEjectionPercent  = 50
	// MaxRetryAfter caps the cooldown an upstream's Retry-After can ask.
	MaxRetryAfter = 5 * time.Minute
)

// OutlierDetection configures passive outlier detection, opt-in per pool
// with [WithOutlierDetection]. It acts on the outcomes that the forwarding
// code reports with [Selection.Report] and [Selection.CoolDown]; the zero
// value of each field takes its default.
//
// After ConsecutiveFailures failures in a row a provider is ejected: skipped
// by selection for min(BaseEjection*k, MaxEjection), where k counts its
// ejections (one less for each BaseEjection it then stays healthy). Then it
// is half-open: one request at a time probes it; a success restores it, a
// failure ejects it again, for longer.
//
// It never ejects them all: at most MaxEjectionPercent of the pool is
// ejected at once, never the last eligible provider, and a pool of one
// never. If every eligible provider is ejected or cooling down, selection
// uses them anyway (panic mode) and marks the selection [Selection.Panic].
type OutlierDetection struct {
	// ConsecutiveFailures in a row eject a provider. 0: 5.
	ConsecutiveFailures int
	// BaseEjection is the first ejection's length. 0: 30 s.
	BaseEjection time.Duration
	// MaxEjection caps an ejection's length. 0: 5 min.
	MaxEjection time.Duration
	// MaxEjectionPercent of the pool's providers may be ejected at once,
	// 1 to 100. 0: 50.
	MaxEjectionPercent int
	// IgnoreRetryAfter makes CoolDown do nothing. False (the default):
	// an upstream's Retry-After cools its provider down until then.
	IgnoreRetryAfter bool
}

// withDefaults fills in the zero fields.
func (o OutlierDetection) withDefaults() OutlierDetection {
	if o.ConsecutiveFailures <= 0 {
		o.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if o.BaseEjection <= 0 {
		o.BaseEjection = DefaultBaseEjection
	}
	if o.MaxEjection <= 0 {
		o.MaxEjection = DefaultMaxEjection
	}
	if o.MaxEjectionPercent <= 0 {
		o.MaxEjectionPercent = DefaultMaxEjectionPercent
	}
	return o
}

// health is the outlier state of one provider. It is shared, by pointer,
// with the provider of the same identity in a reloaded pool. Selection
// reads only its atomics; reports take its lock.
type health struct {
	ejected  atomic.Bool
	until    atomic.Int64 // when the ejection ends, in Unix ns
	cooldown atomic.Int64 // when the Retry-After cooldown ends, in Unix ns
	// ext is the extension of the provider's counter, which holds h and
	// the probe slot of a half-open provider.
	ext *counterExt
	// det is the detector of the newest pool that holds the provider.
	det atomic.Pointer[detector]
	// ejectionsTotal counts every ejection, for snapshots.
	ejectionsTotal atomic.Uint64

	mu           sync.Mutex
	consecutive  int   // failures in a row
	ejections    int   // k: the ejections that count towards the next one's length
	healthySince int64 // Unix ns since when k decays
}

// healthOf returns the outlier state of c's provider, or nil when no pool
// with outlier detection has set one.
func healthOf(c *counter) *health {
	if c == nil {
		return nil
	}
	if x := c.ext.Load(); x != nil {
		h, _ := x.health.Load().(*health)
		return h
	}
	return nil
}

// state is what selection may do with a provider now.
type state int

const (
	available state = iota
	halfOpen        // may be probed: one request at a time
	blocked         // ejected, cooling down, or probed already
)

func (h *health) state(now int64) state {
	if now < h.cooldown.Load() {
		return blocked
	}
	if !h.ejected.Load() {
		return available
	}
	if now < h.until.Load() || h.ext.probe.Load() != nil {
		return blocked
	}
	return halfOpen
}

// detector is the outlier detection of one pool.
type detector struct {
	cfg      OutlierDetection // defaults filled in
	clock    Clock
	hs       []*health // by provider index
	eligible []bool    // whether a provider counts as one that can serve
	mu       sync.Mutex
}

func newDetector(cfg OutlierDetection, clock Clock, providers []*Provider, strategy LoadBalanceStrategy) *detector {
	d := &detector{cfg: cfg.withDefaults(), clock: clockOr(clock)}
	for _, pr := range providers {
		d.eligible = append(d.eligible, pr.Weight > 0 || strategy == Priority)
	}
	d.bind(providers)
	return d
}

// bind takes the health of each provider from its counter, where it lives
// so that it follows the counter across reloads, installing a new one
// where there is none, and makes d the detector each answers to.
func (d *detector) bind(providers []*Provider) {
	d.hs = d.hs[:0]
	for _, pr := range providers {
		x := pr.limiter.counter().extension()
		x.health.CompareAndSwap(nil, &health{ext: x})
		h := x.health.Load().(*health)
		h.det.Store(d)
		d.hs = append(d.hs, h)
	}
}

func (d *detector) now() int64 { return d.clock.Now().UnixNano() }

// ejection is the length of the k-th ejection: min(base*k, max).
func (d *detector) ejection(k int) time.Duration {
	if k <= 0 {
		k = 1
	}
	if int64(k) > int64(d.cfg.MaxEjection/d.cfg.BaseEjection) {
		return d.cfg.MaxEjection
	}
	return min(d.cfg.BaseEjection*time.Duration(k), d.cfg.MaxEjection)
}

// report records the outcome of an attempt on h's provider by the
// selection holding g.
func (d *detector) report(h *health, g *ConcurrencyGuard, o Outcome) {
	now := d.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.ext.endProbe(g):
		switch {
		case o == Success:
			h.ejected.Store(false)
			h.consecutive, h.healthySince = 0, now
		case o.failed():
			h.ejections++
			h.ejectionsTotal.Add(1)
			h.until.Store(now + int64(d.ejection(h.ejections)))
		}
	case g.panic || h.ejected.Load():
		// Chosen while ejected, or ejected since it was chosen: its
		// outcome neither ejects it again nor restores it; a probe does.
	case o == Success:
		h.consecutive = 0
		d.decay(h, now)
	case o.failed():
		h.consecutive++
		if h.consecutive >= d.cfg.ConsecutiveFailures {
			d.tryEject(h, now)
		}
	}
}

// decay takes one ejection off k for each BaseEjection spent healthy.
func (d *detector) decay(h *health, now int64) {
	if h.ejections == 0 {
		h.healthySince = now
		return
	}
	base := int64(d.cfg.BaseEjection)
	if steps := (now - h.healthySince) / base; steps > 0 {
		h.ejections = max(0, h.ejections-int(min(steps, math.MaxInt32)))
		h.healthySince += steps * base
	}
}

// tryEject ejects h's provider (h's lock held) unless that would break
// the cap: at most MaxEjectionPercent of the pool, and never the last
// eligible provider. A provider the cap spares stays at its failure count,
// so that its next failure tries again.
func (d *detector) tryEject(h *health, now int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ejected, eligibleLeft := 0, 0
	for j, other := range d.hs {
		switch {
		case other.ejected.Load():
			ejected++
		case d.eligible[j] && other != h:
			eligibleLeft++
		}
	}
	if (ejected+1)*100 > d.cfg.MaxEjectionPercent*len(d.hs) || eligibleLeft == 0 {
		return
	}
	h.ejections++
	h.ejectionsTotal.Add(1)
	h.consecutive = 0
	h.until.Store(now + int64(d.ejection(h.ejections)))
	h.ejected.Store(true)
}

// coolDown keeps h's provider out of selection for wait, capped at
// MaxRetryAfter, never shortening a cooldown already running.
func (d *detector) coolDown(h *health, wait time.Duration) {
	if d.cfg.IgnoreRetryAfter || wait <= 0 {
		return
	}
	until := d.now() + int64(min(wait, MaxRetryAfter))
	for {
		cur := h.cooldown.Load()
		if cur >= until || h.cooldown.CompareAndSwap(cur, until) {
			return
		}
	}
}
