package pool

import "math"

// This file is where the load-aware controls of onwards 2.0 decide a
// walk's first attempt: the AIMD preferred share (aimd.go) and
// conversation affinity (affinity.go).

// walkChoice is what a walk knows of its request for the load-aware
// controls that decide where it starts.
type walkChoice struct {
	loadAware bool   // SetLoadAware
	hasConv   bool   // SetConversation was called
	conv      uint64 // the conversation's key
}

// first makes a walk's first selection, outside ex with the random numbers
// of w, when a load-aware control decides where the walk starts; it
// reports whether it made it (false: the strategy picks as usual).
func (it *walkChoice) first(p *ProviderPool, ex *bitset, w *walk) (Selection, bool, bool) {
	if it.hasConv && p.affinity != nil && p.strategy != Priority {
		return p.selectHome(it.conv, ex, w)
	}
	if p.strategy != Priority || len(p.entries) < 2 || ex.has(0) {
		return Selection{}, false, false
	}
	preferred, sticky := true, it.hasConv && p.aff != nil
	if sticky {
		preferred = p.aff.route(it.conv, p.clock.Now())
	}
	if c := p.shareCtl(); c != nil && it.loadAware {
		if share := c.currentShare(); sticky {
			preferred = preferred && conversationPoint(it.conv) < share // the same conversations shed first
		} else {
			preferred = w.float64() < share
		}
	}
	if preferred {
		return Selection{}, false, false // the priority order starts there anyway
	}
	sel, ok := p.selectExcluding(ex.with(0), w)
	return sel, ok, ok
}

// selectHome takes the home provider of conversation key, if it is within
// the load bound, outside ex, and one the pool's usual path would take
// (outlier detection, limits shared across replicas): the path selects
// with every other provider excluded. A home that outlier detection holds
// back is not taken; the strategy picks instead.
func (p *ProviderPool) selectHome(key uint64, ex *bitset, w *walk) (Selection, bool, bool) {
	i := p.rendezvous(key, ex, p.affinity.loadBound())
	if i < 0 {
		return Selection{}, false, false
	}
	only := new(bitset)
	for j := range p.entries {
		if j != i {
			only.add(j)
		}
	}
	sel, ok := p.selectExcluding(only, w)
	if ok && sel.Panic() {
		sel.Close()
		return Selection{}, false, false
	}
	return sel, ok, ok
}

// observe begins the AIMD observation of sel, or returns nil when the pool
// has no active controller or sel is not of the preferred provider.
func (p *ProviderPool) observe(sel Selection) *FirstTokenObservation {
	c := p.shareCtl()
	if c == nil || sel.Index != 0 || sel.Guard == nil {
		return nil
	}
	gen, ok := c.begin()
	if !ok {
		return nil
	}
	return &FirstTokenObservation{c: c, gen: gen, start: c.clock.Now()}
}

// rendezvous returns the provider outside ex that conversation key belongs
// to among those with room and a weight above 0, by weighted rendezvous
// hashing (the highest -weight/ln(u) of a hash u of key and index), if it
// is within the load bound; or -1.
func (p *ProviderPool) rendezvous(key uint64, ex *bitset, bound float64) int {
	best, bestScore := -1, math.Inf(-1)
	var inflight, weight uint64
	for i := range p.entries {
		e := &p.entries[i]
		if e.weight == 0 {
			continue
		}
		n := uint64(e.ctr.Load().inFlight())
		inflight += n
		weight += e.weight
		if ex.has(i) || int64(n) >= e.max {
			continue
		}
		u := (float64(mix64(key^uint64(i)*0x9e3779b97f4a7c15)>>11) + 0.5) / (1 << 53)
		if s := -float64(e.weight) / math.Log(u); s > bestScore {
			best, bestScore = i, s
		}
	}
	if best < 0 {
		return -1
	}
	e := &p.entries[best]
	room := math.Ceil(bound * float64(inflight+1) * float64(e.weight) / float64(weight))
	if float64(e.ctr.Load().inFlight()+1) > room {
		return -1
	}
	return best
}
