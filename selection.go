package pool

import "time"

// Selection is one provider picked for one request, and the guard that
// counts the request against it until closed.
type Selection struct {
	// Index is the provider's position in Providers().
	Index int
	// Target is where to send the request.
	Target *Target
	// Guard holds the provider's slot; close it when the response is done.
	Guard *ConcurrencyGuard
}

// Close releases the selection's slot; see [ConcurrencyGuard.Close]. It is
// safe to call more than once, and on the zero Selection. A selection that
// probes an ejected provider and is closed without a Report frees the probe
// slot, as a Neutral outcome would.
func (s Selection) Close() error {
	return s.Guard.Close()
}

// Panic reports that the provider was chosen although outlier detection
// holds it back (ejected or cooling down), because every eligible provider
// was held back: the pool serves rather than fails.
func (s Selection) Panic() bool {
	return s.Guard != nil && s.Guard.panic
}

// health returns the outlier state of the selection's provider, and the
// detector it answers to, or nils without outlier detection.
func (s Selection) health() (*health, *detector) {
	h := healthOf(s.Guard.counter())
	if h == nil {
		return nil, nil
	}
	return h, h.det.Load()
}

// Report tells the pool how the attempt on this selection ended: it is
// counted in the provider's snapshot, and outlier detection, when the pool
// has it, acts on it (see [OutlierDetection] and [StatusOutcome]). Report
// once, before Close.
func (s Selection) Report(o Outcome) {
	c := s.Guard.counter()
	if c == nil || !o.valid() {
		return
	}
	c.attempts[o].Add(1)
	if h, d := s.health(); d != nil {
		d.report(h, s.Guard, o)
	}
}

// ReportLatency tells the pool how long the attempt on this selection
// took to its first byte: the upstream's response headers, or a stream's
// first event. A [PeakEWMA] pool weighs its providers by it; other pools
// ignore it. Report it once the answer has begun, not for attempts that
// failed (Report those).
func (s Selection) ReportLatency(d time.Duration) {
	if c := s.Guard.counter(); c != nil && d >= 0 {
		if l := c.latencyOf(nil); l != nil {
			l.observe(d)
		}
	}
}

// CoolDown keeps the provider out of selection for d (capped at
// [MaxRetryAfter]) while another provider is eligible, as an upstream's
// Retry-After on a 429 or 503 asks; a cooldown already running is never
// shortened. It does nothing without outlier detection, or with
// IgnoreRetryAfter.
func (s Selection) CoolDown(d time.Duration) {
	if h, det := s.health(); det != nil {
		det.coolDown(h, d)
	}
}
