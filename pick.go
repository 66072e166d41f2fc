package pool

// This file is how a pool picks a provider: Select, and the path it takes,
// decided when the pool is built (selectPath): weighted least-loaded
// (leastloaded.go), priority, outlier-aware, or with limits shared across
// replicas. Each path takes the slot it picks; none takes a lock.

// Select picks a provider for one request and takes a slot on it. It returns
// false when the pool is empty or every eligible provider is at its
// concurrency limit. The caller must close the selection when the response
// is done.
//
// Under WeightedRandom it picks the lowest in-flight/weight, comparing the
// ratios exactly, and breaks ties at random in proportion to weight;
// providers of weight 0 are never picked. Under Priority it picks the first
// provider with room. Select takes no lock.
func (p *ProviderPool) Select() (Selection, bool) {
	return p.selectExcluding(nil, nil)
}

// selectExcluding picks a provider outside ex (nil: none excluded), with the
// random numbers and guards of w (nil: the shared ones), and, with outlier
// detection, outside the providers it holds back.
func (p *ProviderPool) selectExcluding(ex *bitset, w *walk) (Selection, bool) {
	if p == nil {
		return Selection{}, false
	}
	if m := counterMoves.Load(); m != p.moves.Load() {
		p.rereadCounters(m)
	}
	switch p.path {
	case pathWeighted: // the default, first
		return p.selectWeighted(ex, w)
	case pathPriority:
		return p.selectPriority(ex, w)
	case pathHealthy:
		return p.selectHealthy(ex, w)
	case pathShared:
		return p.selectShared(ex, w)
	case pathTokens:
		return p.selectTokens(ex, w)
	case pathP2C:
		return p.selectP2C(ex, w)
	case pathRoundRobin:
		return p.selectRoundRobin(ex)
	}
	return p.selectWeighted(ex, w)
}

// rereadCounters brings the entries' counters up to date after some
// limiter adopted a counter; m is counterMoves, read before them.
func (p *ProviderPool) rereadCounters(m uint64) {
	for i := range p.entries {
		e := &p.entries[i]
		e.ctr.Store(e.lim.counter())
	}
	p.moves.Store(m)
}

// selectAny picks a provider outside ex by the pool's strategy.
func (p *ProviderPool) selectAny(ex *bitset, w *walk) (Selection, bool) {
	if p.hasShared {
		return p.selectShared(ex, w)
	}
	switch p.strategy {
	case Priority:
		return p.selectPriority(ex, w)
	case TokenAware:
		return p.selectTokens(ex, w)
	case PeakEWMA:
		return p.selectP2C(ex, w)
	case RoundRobin:
		return p.selectRoundRobin(ex)
	}
	return p.selectWeighted(ex, w)
}

// selectPriority takes the first provider outside ex that has room.
func (p *ProviderPool) selectPriority(ex *bitset, w *walk) (Selection, bool) {
	for i := range p.entries {
		if ex != nil && ex.has(i) {
			continue
		}
		// Taken as in selectWeighted, written out: this loop is the whole
		// of a priority Select, and a call would be a fifth of it.
		e := &p.entries[i]
		c := e.lim.ctr.Load()
		if t, ok := c.take(e.max); ok {
			g := c.blockGuard(t)
			if g == nil {
				g = c.guardOffBlock(t)
			}
			return Selection{Index: i, Target: e.target, Guard: g}, true
		}
	}
	return Selection{}, false
}

// selectRoundRobin takes, from the pool's next turn on, the first provider
// outside ex with room and a weight above 0.
func (p *ProviderPool) selectRoundRobin(ex *bitset) (Selection, bool) {
	n := uint64(len(p.entries))
	if n == 0 {
		return Selection{}, false
	}
	start := p.turn.Add(1) - 1
	for k := range n {
		i := int((start + k) % n)
		e := &p.entries[i]
		if e.weight == 0 || ex.has(i) {
			continue
		}
		c := e.lim.ctr.Load()
		if t, ok := c.take(e.max); ok {
			return Selection{Index: i, Target: e.target, Guard: c.guard(t)}, true
		}
	}
	return Selection{}, false
}

// selectHealthy picks as selectAny does, but skips the providers outlier
// detection holds back, and lets one request at a time probe a half-open
// one. If it holds back every provider that could serve, it picks among
// them after all (panic mode) and marks the selection.
func (p *ProviderPool) selectHealthy(ex *bitset, w *walk) (Selection, bool) {
	d := p.detect
	now := d.now()
	skip := ex.clone()
	held := false
	for i, h := range d.hs {
		if !skip.has(i) && h.state(now) == blocked {
			skip.add(i)
			held = true
		}
	}
	for {
		sel, ok := p.selectAny(skip, w)
		if !ok {
			break
		}
		h := d.hs[sel.Index]
		if h.state(now) != halfOpen || h.ext.claimProbe(sel.Guard) {
			return sel, true
		}
		sel.Guard.Close() // another request probes it: choose again without it
		skip.add(sel.Index)
		held = true
	}
	if !held {
		return Selection{}, false
	}
	sel, ok := p.selectAny(ex, w)
	if ok {
		sel.Guard.panic = true
	}
	return sel, ok
}

// selectShared picks, by the pool's strategy, among the providers outside
// ex, weighing each by its slots here plus the slots other replicas held
// when last seen; then takes the slot here and, for a provider limited
// across replicas, there too. The shared store has the last word: a
// provider it refuses is left out and the choice made again.
func (p *ProviderPool) selectShared(ex *bitset, w *walk) (Selection, bool) {
	skip := ex.clone()
	for {
		i := p.sharedPick(skip, w)
		if i < 0 {
			return Selection{}, false
		}
		e := &p.entries[i]
		g, ok := e.lim.TryAcquire()
		if !ok {
			skip.add(i)
			continue
		}
		if s := p.providers[i].shared; s != nil {
			release, _, ok := s.TryAcquire()
			if !ok {
				g.Close()
				skip.add(i)
				continue
			}
			g.counter().extension().leases.Store(g, release)
		}
		return Selection{Index: i, Target: e.target, Guard: g}, true
	}
}

// sharedPick returns the provider outside skip with room across replicas
// and the lowest load/weight (priority: the first with room), ties broken
// at random in proportion to weight; or -1.
func (p *ProviderPool) sharedPick(skip *bitset, w *walk) int {
	best, bestW, tieW := -1, uint64(0), uint64(0)
	var bestLoad uint64
	for i := range p.entries {
		e := &p.entries[i]
		if skip.has(i) || (e.weight == 0 && p.strategy != Priority) {
			continue
		}
		load := uint64(e.lim.counter().inFlight())
		if s := p.providers[i].shared; s != nil {
			load += others(s)
		}
		if load >= uint64(e.max) {
			continue
		}
		if p.strategy == Priority {
			return i
		}
		switch l, r := load*bestW, bestLoad*e.weight; {
		case best < 0 || l < r:
			best, bestW, bestLoad, tieW = i, e.weight, load, e.weight
		case l == r:
			tieW += e.weight
			if w.uint64n(tieW) < e.weight {
				best, bestW, bestLoad = i, e.weight, load
			}
		}
	}
	return best
}
