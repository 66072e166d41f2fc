package pool

import (
	"fmt"
	"time"
)

// RegistrySnapshot is the state of a registry at one moment: every alias's
// pool, by alias, sorted. Take one with [Registry.Snapshot].
//
// A snapshot is atomic per field, not as a whole: each count is read once,
// while requests go on, so two fields may disagree by the requests that
// moved between their reads. It never holds a key.
type RegistrySnapshot struct {
	// Time is when the snapshot was taken, by the registry's clock.
	Time time.Time
	// Pools are the aliases' pools, sorted by alias.
	Pools []PoolSnapshot
	// UnknownModel counts the requests refused because their model was
	// missing or named no alias, since the registry was made.
	UnknownModel uint64
}

// PoolSnapshot is the state of one pool. Its counts are cumulative since
// the pool's alias first appeared in a config: a reload keeps them.
type PoolSnapshot struct {
	// Alias is the pool's alias; empty for a pool outside a registry.
	Alias string
	// Strategy is "weighted_random" or "priority".
	Strategy string
	// InFlight counts the admitted requests not yet closed.
	InFlight int64
	// Limit is the pool's concurrency limit; Limited is false without one.
	Limit   int
	Limited bool
	// Retries counts the attempts after a request's first.
	Retries uint64
	// Backoff sums the waits between attempts.
	Backoff time.Duration
	// Refused counts refused admissions by OpenAI error code:
	// invalid_api_key, access_denied, service_unavailable, no_providers,
	// rate_limit_exceeded, concurrency_limit_exceeded,
	// inflight_limit_exceeded, batch_capacity_exceeded.
	Refused map[string]uint64
	// Providers are the pool's providers, in order.
	Providers []ProviderSnapshot
	// Share is the AIMD controller's state; nil without one.
	Share *ShareSnapshot
	// Inflight is the alias's in-flight limits; nil without any (and for
	// a pool outside a registry).
	Inflight *InflightSnapshot
}

// Provider states, as ProviderSnapshot.State gives them.
const (
	StateHealthy  = "healthy"   // selected as usual
	StateEjected  = "ejected"   // held back by outlier detection until EjectedUntil
	StateHalfOpen = "half_open" // its ejection is over: the next request probes it
	StateCooling  = "cooling"   // held back until CooldownUntil, as its Retry-After asked
)

// ProviderSnapshot is the state of one provider. Its counts follow the
// provider's identity (URL, key, model) across reloads, as its in-flight
// count does.
type ProviderSnapshot struct {
	// Index is the provider's position in the pool.
	Index int
	// Label is "INDEX:HOST", stable across reloads that keep the order,
	// and free of credentials: a metrics label.
	Label string
	// URL is the provider's base URL without user info or query, which may
	// hold credentials.
	URL string
	// UpstreamModel is the model sent upstream (onwards_model), or empty.
	UpstreamModel string
	// Weight is the provider's weight.
	Weight uint32
	// InFlight counts the requests holding a slot on it.
	InFlight int
	// Limit is its concurrency limit; Limited is false without one.
	Limit   int
	Limited bool
	// State is StateHealthy, StateEjected, StateHalfOpen or StateCooling;
	// always StateHealthy without outlier detection.
	State string
	// EjectedUntil is when its ejection ends; zero when not ejected.
	EjectedUntil time.Time
	// CooldownUntil is when its Retry-After cooldown ends; zero when none
	// is running.
	CooldownUntil time.Time
	// ConsecutiveFailures counts its failures in a row.
	ConsecutiveFailures int
	// Ejections counts its ejections.
	Ejections uint64
	// Attempts counts the outcomes reported on it, by Outcome.String():
	// success, failure, neutral, timeout, rate_limited, cancelled.
	Attempts map[string]uint64
}

// Snapshot returns the state of every pool of the registry's current
// config; see [RegistrySnapshot]. It takes no lock that requests take.
func (r *Registry) Snapshot() RegistrySnapshot {
	now := clockOr(r.Clock).Now()
	snap := RegistrySnapshot{Time: now, UnknownModel: r.unknownModel.Load()}
	s := r.snap.Load()
	if s == nil {
		return snap
	}
	for _, alias := range s.aliases {
		a := s.pools[alias]
		ps := a.pool.snapshotAt(now)
		ps.Alias = alias
		if a.inflight != nil {
			ps.Inflight = a.inflight.snapshot()
		}
		snap.Pools = append(snap.Pools, ps)
	}
	return snap
}

// Snapshot returns the pool's state now; see [PoolSnapshot].
func (p *ProviderPool) Snapshot() PoolSnapshot {
	return p.snapshotAt(p.Clock().Now())
}

func (p *ProviderPool) snapshotAt(now time.Time) PoolSnapshot {
	ps := PoolSnapshot{Strategy: p.strategy.String(), Refused: map[string]uint64{}}
	if p.concurrency != nil {
		ps.Limit, ps.Limited = p.concurrency.Limit()
	}
	if st := p.stats; st != nil {
		ps.InFlight = st.inflight.Load()
		ps.Retries = st.retries.Load()
		ps.Backoff = time.Duration(st.backoff.Load())
		for code, c := range st.refused {
			ps.Refused[code] = c.Load()
		}
	}
	for i, pr := range p.providers {
		ps.Providers = append(ps.Providers, pr.snapshot(i, now))
	}
	if c := p.shareCtl(); c != nil {
		share := c.snapshot()
		ps.Share = &share
	}
	return ps
}

// snapshot returns provider i's state at now.
func (pr *Provider) snapshot(i int, now time.Time) ProviderSnapshot {
	c := pr.limiter.counter()
	u := *pr.Target.URL
	u.User, u.RawQuery, u.ForceQuery, u.Fragment = nil, "", false, ""
	ps := ProviderSnapshot{
		Index: i, Label: fmt.Sprintf("%d:%s", i, pr.Target.URL.Host), URL: u.String(),
		UpstreamModel: pr.Target.UpstreamModel, Weight: pr.Weight,
		InFlight: int(c.inFlight()), State: StateHealthy, Attempts: map[string]uint64{},
	}
	ps.Limit, ps.Limited = pr.limiter.Limit()
	for o := Success; o < numOutcomes; o++ {
		ps.Attempts[o.String()] = c.attempts[o].Load()
	}
	if h := healthOf(c); h != nil {
		h.describe(&ps, now.UnixNano())
	}
	return ps
}

// describe fills in the outlier state of a provider snapshot.
func (h *health) describe(ps *ProviderSnapshot, now int64) {
	h.mu.Lock()
	ps.ConsecutiveFailures = h.consecutive
	h.mu.Unlock()
	ps.Ejections = h.ejectionsTotal.Load()
	if until := h.cooldown.Load(); now < until {
		ps.State, ps.CooldownUntil = StateCooling, time.Unix(0, until).UTC()
	}
	if h.ejected.Load() {
		ps.EjectedUntil = time.Unix(0, h.until.Load()).UTC()
		switch {
		case now < h.until.Load():
			ps.State = StateEjected
		case ps.State == StateHealthy:
			ps.State = StateHalfOpen
		}
	}
}

// ShareSnapshot returns what the pool's AIMD controller holds, and false
// when the pool has none.
func (p *ProviderPool) ShareSnapshot() (ShareSnapshot, bool) {
	c := p.share.Load()
	if c == nil {
		return ShareSnapshot{}, false
	}
	return c.snapshot(), true
}
