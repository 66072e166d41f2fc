package pool

import (
	"reflect"
	"slices"
)

// providerIdentity is what makes two providers of two configs the same
// upstream, for AdoptProviderState.
type providerIdentity struct {
	url, key, model string
}

func identityOf(t *Target) providerIdentity {
	return providerIdentity{url: t.URL.String(), key: t.UpstreamKey, model: t.UpstreamModel}
}

// AdoptProviderState makes p, a pool built from a reloaded config, take over
// the live in-flight counters of old, the pool it replaces. Call it before p
// serves requests.
//
// Each provider of p adopts the counter of the first provider of old with
// the same URL, UpstreamKey and UpstreamModel; providers new to p keep
// counting from zero, and providers gone from p are dropped. The pool-level
// concurrency counter is adopted when both pools have one; p's limits apply.
// With outlier detection on in both, each provider keeps its outlier state
// (an ejected provider stays ejected; a new one starts healthy), and a retry
// budget keeps its counts, and an AIMD controller and an affinity tracker
// carry over as WithAIMD and WithAffinity say. The cumulative counts of snapshots carry over
// too, so they never go back.
// Guards handed out by old then release into p's counters, so no count
// drifts across the reload.
func (p *ProviderPool) AdoptProviderState(old *ProviderPool) {
	if old == nil || old == p {
		return
	}
	live := make(map[providerIdentity]*ConcurrencyLimiter, len(old.providers))
	for _, pr := range old.providers {
		id := identityOf(pr.Target)
		if _, dup := live[id]; !dup {
			live[id] = &pr.limiter
		}
	}
	for _, pr := range p.providers {
		if l, ok := live[identityOf(pr.Target)]; ok {
			pr.limiter.AdoptActiveCounter(l)
		}
	}
	if p.concurrency != nil && old.concurrency != nil {
		p.concurrency.AdoptActiveCounter(old.concurrency)
	}
	if p.detect != nil {
		p.detect.bind(p.providers) // the adopted counters carry the old health
	}
	if old.stats != nil {
		p.stats = old.stats
	}
	p.adoptLoadAware(old)
	if p.budget != nil && old.budget != nil {
		old.budget.mu.Lock()
		p.budget.slots = old.budget.slots
		old.budget.mu.Unlock()
	}
}

// adoptLoadAware carries the AIMD controller and the affinity tracker of
// old into p, as WithAIMD and WithAffinity say.
func (p *ProviderPool) adoptLoadAware(old *ProviderPool) {
	if p.aff != nil && old.aff != nil && *p.affinity == *old.affinity {
		p.aff = old.aff
	}
	prev := old.share.Load()
	if prev == nil {
		return
	}
	same := p.aimd != nil && sameAIMD(*p.aimd, *old.aimd) && p.fallback.FirstTokenTimeout == old.fallback.FirstTokenTimeout &&
		len(p.providers) > 0 && identityOf(p.providers[0].Target) == identityOf(old.providers[0].Target)
	switch {
	case !same:
		prev.retire()
	case p.aimdEligible():
		prev.resume()
		p.share.Store(prev)
	default:
		prev.park()
		p.share.Store(prev)
	}
}

func sameAIMD(a, b AIMD) bool {
	same := slices.Equal(a.OverloadStatuses, b.OverloadStatuses)
	a.OverloadStatuses, b.OverloadStatuses = nil, nil
	return same && reflect.DeepEqual(a, b)
}
