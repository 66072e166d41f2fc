package pool

import (
	"iter"
	"time"
)

// SelectIter walks a pool's providers for one request, lazily: each Next
// makes a fresh selection with the counts of that moment, so a fallback sees
// the load as it is when it happens. A SelectIter is single-use and is not
// safe for simultaneous use by multiple goroutines.
//
// It yields at most FallbackConfig.MaxAttempts selections (0: as many as the
// pool has providers). The priority strategy never yields a provider twice;
// weighted_random does not either, unless WithReplacement is set. The walk
// ends early, for good, once no provider is eligible.
type SelectIter struct {
	pool      *ProviderPool
	excluded  bitset
	left      int           // attempts left
	tries     int           // selections made
	replace   bool          // weighted_random may yield a provider again
	multiPass bool          // a tried-out pass starts again
	loadAware bool          // SetLoadAware
	hasConv   bool          // SetConversation was called
	slept     time.Duration // backoff handed out so far
	walk      walk          // the walk's own random numbers
	classSet  bool          // SetClass was called
	ext       *walkExt      // what the setters of the load-aware controls set; nil: none
}

// walkExt is what a walk keeps for the load-aware controls, apart, so
// that a walk without them stays small.
type walkExt struct {
	base *bitset // the pool's providers out of the walk's scope (SetClass); nil: none
	conv uint64  // the conversation's key
}

// extra returns the walk's walkExt, making it at first use.
func (it *SelectIter) extra() *walkExt {
	if it.ext == nil {
		it.ext = new(walkExt)
	}
	return it.ext
}

// scope returns the providers out of the walk's scope, or nil.
func (it *SelectIter) scope() *bitset {
	if it.ext == nil {
		return nil
	}
	return it.ext.base
}

// SelectIter returns a new walk over the pool for one request.
func (p *ProviderPool) SelectIter() *SelectIter {
	it := p.newSelectIter()
	return &it
}

// newSelectIter returns the walk by value, so that Attempts need not allocate
// it.
func (p *ProviderPool) newSelectIter() SelectIter {
	if p == nil {
		return SelectIter{}
	}
	left := len(p.entries)
	if p.hasFallback && p.fallback.MaxAttempts > 0 {
		left = p.fallback.MaxAttempts
	}
	return SelectIter{
		pool:      p,
		left:      left,
		replace:   p.hasFallback && p.fallback.WithReplacement && p.strategy != Priority,
		multiPass: p.hasFallback && p.fallback.MaxAttempts > 0,
		walk:      walk{seed: p.seed},
	}
}

// Next returns the next selection and true, or false when the walk is over.
// The caller owns the selection and must close it, whether or not it asks for
// another.
//
// With a retry budget ([WithRetryBudget]), the first Next counts a request
// and each later one spends a retry; once the budget is spent the walk ends.
func (it *SelectIter) Next() (Selection, bool) {
	if it.left <= 0 {
		return Selection{}, false
	}
	if it.tries == 0 && it.pool.scoped && !it.classSet {
		it.SetClass(ClassChat) // the default scope, set here to keep SelectIter cheap
		if it.left <= 0 {
			return Selection{}, false
		}
	}
	it.left--
	var sel Selection
	var ok bool
	if it.tries == 0 && (it.loadAware || it.hasConv) {
		sel, ok = it.first()
	} else {
		sel, ok = it.pool.selectExcluding(&it.excluded, &it.walk)
	}
	if !ok && it.multiPass && it.passDone() {
		it.excluded = it.scope().copy()
		sel, ok = it.pool.selectExcluding(&it.excluded, &it.walk)
	}
	if ok && it.pool.budget != nil {
		if it.tries == 0 {
			it.pool.budget.deposit()
		} else if !it.pool.budget.withdraw() {
			sel.Close()
			ok = false
		}
	}
	if !ok {
		it.left = 0
		return Selection{}, false
	}
	if it.tries > 0 {
		it.pool.stats.retries.Add(1)
	}
	it.tries++
	if !it.replace {
		it.excluded.add(sel.Index)
	}
	return sel, true
}

// first makes the first selection of a walk whose start a load-aware
// control may decide.
func (it *SelectIter) first() (Selection, bool) {
	c := walkChoice{loadAware: it.loadAware, hasConv: it.hasConv}
	if it.hasConv {
		c.conv = it.ext.conv
	}
	if sel, ok, made := c.first(it.pool, &it.excluded, &it.walk); made {
		return sel, ok
	}
	return it.pool.selectExcluding(&it.excluded, &it.walk)
}

// passDone reports whether the walk has tried every provider that could
// serve: every provider whose limit is above 0 under priority, every one
// of those of weight above 0 under weighted_random. (A provider that is
// full now could serve later, so it still counts.)
func (it *SelectIter) passDone() bool {
	p := it.pool
	if it.excluded.lo == 0 && len(it.excluded.hi) == 0 {
		return false
	}
	eligible := p.open
	if p.strategy == Priority {
		eligible = p.capable
	}
	for c, m := range eligible {
		if m&^it.excluded.word(c) != 0 {
			return false
		}
	}
	return true
}

// Backoff returns how long to wait before the next attempt: the pool's
// fallback Backoff for this retry, trimmed so that the walk's waits stay
// within MaxTotalBackoff, and counted towards it. It returns 0 before the
// first attempt, after the last, and when the pool has no backoff. Call it
// after closing the failed attempt's selection and before Next; wait with
// the request's context, and give up rather than wait past its deadline.
func (it *SelectIter) Backoff() time.Duration {
	p := it.pool
	if p == nil || !p.hasFallback || it.tries == 0 || it.left <= 0 {
		return 0 // no wait before the first attempt, nor after the last
	}
	d := p.fallback.Backoff.Delay(it.tries, it.walk.float64)
	if limit := p.fallback.MaxTotalBackoff; limit > 0 {
		d = min(d, max(limit-it.slept, 0))
	}
	it.slept += d
	p.stats.addBackoff(d)
	return d
}

// Last reports whether the selection Next just returned is the walk's
// last attempt by its budget: a first-token deadline is never armed on it.
func (it *SelectIter) Last() bool { return it.left <= 0 }

// Attempts returns the same lazy walk as SelectIter, for a range loop. Each
// loop over it is a fresh walk for one request. Each selection it yields
// belongs to the loop body, which must close it; a selection kept when the
// loop breaks is still the caller's to close.
func (p *ProviderPool) Attempts() iter.Seq[Selection] {
	return func(yield func(Selection) bool) {
		it := p.newSelectIter()
		for {
			sel, ok := it.Next()
			if !ok || !yield(sel) {
				return
			}
		}
	}
}

// SetTokens sets the estimated tokens, prompt and completion, of the
// walk's request: a TokenAware pool weighs its providers by the estimates
// of the requests they serve, and counts this one on the provider it
// selects until the selection closes. A request without an estimate counts
// as 1. Other strategies ignore it. Call it before the first Next.
func (it *SelectIter) SetTokens(n int64) {
	it.walk.tokens = n
}

// SetLoadAware marks the walk's request as one that the pool's AIMD
// controller steers and learns from: in onwards, a strict-mode request
// with "stream": true that does not carry the dispatched (batch) header.
// Call it before the first Next.
func (it *SelectIter) SetLoadAware() { it.loadAware = true }

// SetConversation names the conversation of the walk's request, a key
// that is the same for each of its turns (see [Affinity]); a pool without
// affinity ignores it. Call it before the first Next.
func (it *SelectIter) SetConversation(key uint64) { it.extra().conv, it.hasConv = key, true }

// SetClass scopes the walk to the providers that serve class (see
// [Serves]); without it, the walk is scoped to ClassChat. Without an explicit
// MaxAttempts, the walk then makes one attempt per provider in scope.
// Call it before the first Next.
func (it *SelectIter) SetClass(c RequestClass) {
	p := it.pool
	if p == nil || c > ClassCompletions || it.tries > 0 {
		return
	}
	base := &p.scope[c]
	it.extra().base, it.classSet = base, true
	it.excluded = base.copy()
	if !it.multiPass {
		it.left = len(p.entries) - base.count()
	}
}

// Observe begins the AIMD observation of sel, an attempt of this walk, and
// returns it; or nil when the pool has no active controller, the walk is
// not load-aware, or sel is not the preferred provider. Report to it how
// the attempt went, and close it.
func (it *SelectIter) Observe(sel Selection) *FirstTokenObservation {
	if !it.loadAware {
		return nil
	}
	return it.pool.observe(sel)
}
