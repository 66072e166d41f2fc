package pool

// This file is the p2c_ewma strategy: weighted power of two choices over a
// peak EWMA of time to first byte, with slow start.

// selectP2C picks between two providers outside ex, drawn by weight, the
// one of lower latency times load, and takes its slot.
func (p *ProviderPool) selectP2C(ex *bitset, w *walk) (Selection, bool) {
	now := p.clock.Now().UnixNano()
	return p.selectBy(ex, func(ex *bitset) int { return p.twoChoices(ex, w, now) })
}

// candidate is a provider that p2c_ewma may pick, as twoChoices sees it.
type candidate struct {
	i      int
	weight float64 // the provider's weight, cut down in slow start
	avg    float64 // its latency average, 0 before the first sample
	load   float64 // its requests in flight
}

// twoChoices returns the index of the provider that selectP2C takes, or -1
// when no provider outside ex has room and a weight above 0. It draws one
// candidate in proportion to weight, then another among the rest, and
// keeps the one of lower cost: latency (the candidates' mean where a
// provider has no sample yet) times requests in flight plus one, over
// weight.
func (p *ProviderPool) twoChoices(ex *bitset, w *walk, now int64) int {
	var buf [16]candidate
	cands, total, mean := p.candidates(buf[:0], ex, now)
	switch len(cands) {
	case 0:
		return -1
	case 1:
		return cands[0].i
	}
	a := drawWeighted(cands, total, -1, w)
	b := drawWeighted(cands, total-cands[a].weight, a, w)
	if cost(cands[b], mean) < cost(cands[a], mean) {
		a = b
	}
	return cands[a].i
}

// candidates appends to cands the providers outside ex with room and a
// weight above 0, and returns them with their total weight and the mean
// of their latency averages (1 when none has a sample).
func (p *ProviderPool) candidates(cands []candidate, ex *bitset, now int64) (_ []candidate, total, mean float64) {
	sum, sampled := 0.0, 0
	for i := range p.entries {
		e := &p.entries[i]
		if e.weight == 0 || ex.has(i) {
			continue
		}
		c := e.lim.ctr.Load()
		held := c.inFlight()
		if held >= e.max {
			continue
		}
		l := c.latencyOf(p.clock)
		start := l.since
		if h := healthOf(c); h != nil {
			start = max(start, min(h.until.Load(), now))
		}
		cd := candidate{i: i, weight: float64(e.weight) * ramp(start, now), avg: l.average(), load: float64(held)}
		if cd.avg > 0 {
			sum, sampled = sum+cd.avg, sampled+1
		}
		total += cd.weight
		cands = append(cands, cd)
	}
	mean = 1
	if sampled > 0 {
		mean = sum / float64(sampled)
	}
	return cands, total, mean
}

// drawWeighted returns the index in cands, other than skip (-1: none), of
// a candidate drawn in proportion to weight; total is the weight of those
// it draws from.
func drawWeighted(cands []candidate, total float64, skip int, w *walk) int {
	r := w.float64() * total
	last := -1
	for k := range cands {
		if k == skip {
			continue
		}
		last = k
		if r -= cands[k].weight; r < 0 {
			return k
		}
	}
	return last // r was at total, by rounding
}

// cost is a candidate's expected wait: its latency (mean if it has none
// yet) times its requests in flight plus one, over its weight.
func cost(c candidate, mean float64) float64 {
	avg := c.avg
	if avg == 0 {
		avg = mean
	}
	return avg * (c.load + 1) / c.weight
}
