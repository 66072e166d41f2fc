// Package pool balances requests over pools of upstream LLM providers, a Go
// port of the load balancer of the Rust crate onwards.
package pool

import (
	"fmt"
	"math/bits"
	"slices"
	"sync/atomic"
)

// ProviderPool is the set of providers behind one model alias, with the
// pool-level settings that onwards attaches to it: keys, limits, fallback,
// strategy, trust and routing rules.
//
// A ProviderPool is immutable once built, except for the in-flight counters
// that AdoptProviderState takes over, and is safe for simultaneous use by
// multiple goroutines. The zero value is an empty pool that selects nothing.
type ProviderPool struct {
	// The following fields are immutable after NewProviderPool.
	providers   []*Provider
	entries     []entry  // the hot-path view of providers, same order
	live        []uint64 // bit i%64 of live[i/64]: provider i has weight > 0
	capable     []uint64 // as live, for the providers whose limit is above 0: the ones that can ever serve
	open        []uint64 // live & capable: the ones scan visits
	cum         []uint64 // cum[i]: the weight of providers i&^63 to i, padded to whole words
	keys        *KeySet
	rateLimiter RateLimiter
	concurrency *ConcurrencyLimiter
	fallback    FallbackConfig
	hasFallback bool
	strategy    LoadBalanceStrategy
	trusted     bool
	rules       []RoutingRule
	clock       Clock
	outlier     *OutlierDetection // set by WithOutlierDetection
	detect      *detector         // nil: no outlier detection
	budgetCfg   *RetryBudget      // set by WithRetryBudget
	budget      *retryBudget      // nil: no retry budget
	stats       *poolStats        // shared with the pools it replaces
	moves       atomic.Uint64     // counterMoves when entries' counters were read
	hasShared   bool              // some provider's limit is shared across replicas
	path        selectPath        // which of the selections a Select takes
}

// entry is what selection reads of a provider, laid out contiguously so that
// the scan touches one slice and the providers' counters.
type entry struct {
	ctr    atomic.Pointer[counter] // lim's counter, as of p.moves
	lim    *ConcurrencyLimiter     // &provider.limiter; its counter may be adopted
	target *Target
	weight uint64
	max    int64 // the most slots the limiter lets be held: ConcurrencyLimiter.max
}

// Option configures a ProviderPool built by NewProviderPool. When an option
// is given more than once, the last one wins.
type Option func(*ProviderPool)

// WithKeys sets the API keys allowed to call the pool. Nil or an empty set:
// the pool has no keys and anyone may call it.
func WithKeys(keys *KeySet) Option {
	return func(p *ProviderPool) { p.keys = keys }
}

// WithRateLimiter sets a rate limit shared by every request to the pool.
// Nil: none.
func WithRateLimiter(l RateLimiter) Option {
	return func(p *ProviderPool) { p.rateLimiter = l }
}

// WithConcurrencyLimiter sets a limit on the requests in flight to the pool
// as a whole. Nil: none. AdoptProviderState carries its counter across
// reloads.
func WithConcurrencyLimiter(l *ConcurrencyLimiter) Option {
	return func(p *ProviderPool) { p.concurrency = l }
}

// WithFallback sets when and how far a failed request falls back to other
// providers. Without it the pool never falls back, and SelectIter yields
// each provider once.
func WithFallback(f FallbackConfig) Option {
	return func(p *ProviderPool) {
		f.OnStatus = slices.Clone(f.OnStatus)
		p.fallback, p.hasFallback = f, true
	}
}

// WithStrategy sets the load-balancing strategy. The default is
// WeightedRandom.
func WithStrategy(s LoadBalanceStrategy) Option {
	return func(p *ProviderPool) { p.strategy = s }
}

// WithTrusted marks the pool as trusted: a proxy in strict mode may then
// pass its error responses through unsanitized. The default is false. The
// pool keeps the setting; package gateway acts on it.
func WithTrusted(trusted bool) Option {
	return func(p *ProviderPool) { p.trusted = trusted }
}

// WithOutlierDetection turns on passive outlier detection for the pool;
// see [OutlierDetection]. Without it the pool ejects nothing and ignores
// Selection.Report and Selection.CoolDown.
func WithOutlierDetection(o OutlierDetection) Option {
	return func(p *ProviderPool) { p.outlier = &o }
}

// WithRetryBudget caps the pool's retries across requests; see
// [RetryBudget]. Without it every walk may take all its attempts.
func WithRetryBudget(b RetryBudget) Option {
	return func(p *ProviderPool) { p.budgetCfg = &b }
}

// WithClock sets the pool's clock (see [Clock]). Nil or absent:
// SystemClock.
func WithClock(c Clock) Option {
	return func(p *ProviderPool) { p.clock = c }
}

// WithRoutingRules sets the rules evaluated, in order, against the labels
// of the caller's API key. The pool keeps its own copy.
func WithRoutingRules(rules ...RoutingRule) Option {
	return func(p *ProviderPool) { p.rules = cloneRules(rules) }
}

// NewProviderPool returns a pool of providers, in the order given, which is
// the order of the priority strategy and of Selection.Index. An empty list
// gives a pool that selects nothing.
//
// Every problem with the providers or options is reported, together, in one
// error that names where each one is: a nil provider or target, a target
// without an http(s) URL, a negative concurrency limit, a negative
// MaxAttempts or an on_status pattern that matches no status, an undefined
// strategy, or a routing action other than a deny or a redirect to an alias.
func NewProviderPool(providers []*Provider, opts ...Option) (*ProviderPool, error) {
	p := new(ProviderPool)
	var errs []*FieldError
	for i, opt := range opts {
		if opt == nil {
			errs = append(errs, fieldErr(fmt.Sprintf("options[%d]", i), "option is nil"))
			continue
		}
		opt(p)
	}
	p.providers = slices.Clone(providers)
	p.moves.Store(counterMoves.Load()) // before the counters are read
	// Room up to a multiple of 64, so that word views each 64 entries.
	p.entries = make([]entry, len(providers), (len(providers)+63)&^63)
	p.live = make([]uint64, (len(providers)+63)/64)
	p.capable = make([]uint64, len(p.live))
	p.open = make([]uint64, len(p.live))
	p.cum = make([]uint64, (len(providers)+63)&^63)
	for i, pr := range providers {
		if err := checkProvider(fmt.Sprintf("providers[%d]", i), pr); err != nil {
			errs = append(errs, err)
			continue
		}
		pr.limiter.counter() // install it now, not on the hot path
		p.hasShared = p.hasShared || pr.shared != nil
		p.entries[i] = entry{lim: &pr.limiter, target: pr.Target, weight: uint64(pr.Weight), max: pr.limiter.max()}
		p.entries[i].ctr.Store(pr.limiter.counter())
		if pr.Weight > 0 {
			p.live[i/64] |= 1 << (i % 64)
		}
		if p.entries[i].max > 0 {
			p.capable[i/64] |= 1 << (i % 64)
		}
		p.cum[i] = uint64(pr.Weight)
		if i%64 != 0 {
			p.cum[i] += p.cum[i-1]
		}
	}
	for i := len(providers); i < len(p.cum); i++ {
		p.cum[i] = p.cum[i-1] // the last word's padding holds its total
	}
	for c := range p.open {
		p.open[c] = p.live[c] & p.capable[c]
	}
	if !p.strategy.valid() {
		errs = append(errs, fieldErr("strategy", "%v is not defined; want WeightedRandom or Priority", p.strategy))
	}
	if p.hasFallback {
		errs = append(errs, checkFallback("fallback", p.fallback)...)
	}
	if p.concurrency != nil && p.concurrency.limited {
		if err := checkLimit("concurrency_limit", p.concurrency.limit); err != nil {
			errs = append(errs, err)
		}
	}
	for i, r := range p.rules {
		if err := checkRoutingAction(fmt.Sprintf("routing_rules[%d]", i), r.Action); err != nil {
			errs = append(errs, err)
		}
	}
	if p.outlier != nil {
		errs = append(errs, checkOutlier("outlier_detection", *p.outlier)...)
	}
	if p.budgetCfg != nil {
		errs = append(errs, checkRetryBudget("retry_budget", *p.budgetCfg)...)
	}
	if len(errs) > 0 {
		return nil, joinFieldErrors(errs)
	}
	p.clock = clockOr(p.clock)
	p.stats = newPoolStats()
	if p.outlier != nil {
		p.detect = newDetector(*p.outlier, p.clock, p.providers, p.strategy)
	}
	if p.budgetCfg != nil {
		p.budget = newRetryBudget(*p.budgetCfg, p.clock)
	}
	switch {
	case p.detect != nil:
		p.path = pathHealthy
	case p.hasShared:
		p.path = pathShared
	case p.strategy == Priority:
		p.path = pathPriority
	}
	return p, nil
}

// NewSingleProviderPool returns a pool of one provider without a
// concurrency limit.
func NewSingleProviderPool(target *Target, weight uint32) (*ProviderPool, error) {
	return NewProviderPool([]*Provider{NewProvider(target, weight)})
}

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
	case pathPriority:
		return p.selectPriority(ex, w)
	case pathHealthy:
		return p.selectHealthy(ex, w)
	case pathShared:
		return p.selectShared(ex, w)
	}
	return p.selectWeighted(ex, w)
}

// selectPath is which of the selections a pool's Select takes, decided
// once when the pool is built, so that a Select dispatches on one byte.
type selectPath uint8

const (
	pathWeighted selectPath = iota // selectWeighted: the zero value
	pathPriority                   // selectPriority
	pathHealthy                    // selectHealthy: outlier detection, either strategy
	pathShared                     // selectShared: limits shared across replicas
)

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
	if p.strategy == Priority {
		return p.selectPriority(ex, w)
	}
	return p.selectWeighted(ex, w)
}

// selectWeighted picks the least loaded provider outside ex.
func (p *ProviderPool) selectWeighted(ex *bitset, w *walk) (Selection, bool) {
	for {
		var i int
		if len(p.live) == 1 {
			// Up to 64 providers, the common case: one word, so no
			// reservoir across words; done here to save leastLoaded's call.
			mask, weight, _ := scan(p.word(0), p.open[0]&^ex.word(0), noScore)
			i = p.pickTie(0, mask, weight, w)
		} else {
			i = p.leastLoaded(ex, w)
		}
		if i < 0 {
			return Selection{}, false
		}
		// Take the slot from the counter the limiter has now (adoption
		// may have replaced the entry's), by the limiter's limit (e.max,
		// fixed when the limiter was made). The block guard is looked up
		// here, inlined; guardOffBlock makes the rest.
		e := &p.entries[i]
		c := e.lim.ctr.Load()
		if t, ok := c.take(e.max); ok {
			g := c.blockGuard(t)
			if g == nil {
				g = c.guardOffBlock(t)
			}
			return Selection{Index: i, Target: e.target, Guard: g}, true
		}
		// The provider filled up between the scan and the acquire: choose
		// again without it. Rare, so the copy is no burden.
		ex = ex.with(i)
	}
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

// leastLoaded returns the index of the provider outside ex with the lowest
// in-flight/weight among those with room and a weight above 0, ties broken
// at random in proportion to weight; or -1 if there is none.
//
// It makes one pass over the eligible providers, 64 at a time: the set bits
// of a word of p.open minus the excluded ones, so excluded providers, and
// those of weight 0 or limit 0, cost nothing. Scores are compared exactly by
// cross-multiplying (a/w < b/v iff a*v < b*w; see scan). The providers tied
// at the best score are kept as a bit mask, so the weighted tie-break takes
// one random number and no slice. Past 64 providers, each word's ties are
// merged into the pick by a weighted reservoir step (keep the new word's
// ties with probability their weight over the total so far), which leaves
// every tied provider picked with probability weight/total. (selectWeighted
// does the one-word case itself, to save the call.)
func (p *ProviderPool) leastLoaded(ex *bitset, w *walk) int {
	var (
		best                 = noScore
		pickBase             int    // index of bit 0 of pickMask
		pickMask, pickWeight uint64 // the ties picked so far, and their weight
		tieWeight            uint64 // the weight of all ties at the best score
	)
	for c, open := range p.open {
		base := c << 6
		mask, weight, s := scan(p.word(c), open&^ex.word(c), best)
		if s != best {
			best, tieWeight = s, 0 // earlier words' ties score worse
		}
		if weight == 0 {
			continue
		}
		tieWeight += weight
		if tieWeight == weight || w.uint64n(tieWeight) < weight {
			pickBase, pickMask, pickWeight = base, mask, weight
		}
	}
	return p.pickTie(pickBase, pickMask, pickWeight, w)
}

// pickTie returns one of the providers base+j for the bits j of mask, at
// random in proportion to weight, their total; or -1 if mask is empty.
func (p *ProviderPool) pickTie(base int, mask, weight uint64, w *walk) int {
	if mask == 0 {
		return -1
	}
	rest := mask & (mask - 1) // mask without its first tie
	if rest == 0 {
		return base + bits.TrailingZeros64(mask)
	}
	if rest&(rest-1) == 0 {
		// Two ties, as in every pool of two: one draw, one comparison.
		j := bits.TrailingZeros64(mask) & 63
		if w.uint64n(weight) < p.word(base >> 6)[j].weight {
			return base + j
		}
		return base + bits.TrailingZeros64(rest)
	}
	if mask == p.live[base>>6] {
		// Every provider of the word ties, as in an idle pool: the draw
		// below would hit at once; this is it without the loop (the
		// hottest case, so the dozen instructions count).
		return base + p.searchWord(base, w.uint64n(weight))
	}
	if total := p.cum[base+63]; bits.OnesCount64(mask) > 48 && weight >= total/2 {
		// Many ties, holding half the word's weight or more: draw from
		// the whole word until the draw is a tie, two draws on average.
		// Fewer ties are walked below: a step of the walk is cheaper than
		// a draw and a search, and its branches predict better than the
		// rejections (measured: FallbackIter/64 ran 15% faster walking
		// up to 48 ties than up to the half-weight mark).
		for {
			j := p.searchWord(base, w.uint64n(total))
			if mask&(1<<j) != 0 {
				return base + j
			}
		}
	}
	r, es := w.uint64n(weight), p.word(base>>6)
	for m := mask; ; m &= m - 1 {
		j := bits.TrailingZeros64(m) & 63
		if r < es[j].weight {
			return base + j
		}
		r -= es[j].weight
	}
}

// searchWord returns the j for which provider base+j holds the point r of
// the weights of the providers base to base+63, laid end to end: the
// least j with cum[base+j] > r, for r below the word's total. Providers
// of weight 0 hold no point, so it is never one of them. It places
// pickTie's draws over dense ties: a search, where a walk over the ties
// would take a step per provider.
func (p *ProviderPool) searchWord(base int, r uint64) int {
	cum := (*[64]uint64)(p.cum[base : base+64])
	// Halvings of the power of two that covers the word's providers, each
	// a conditional add rather than a branch: which way each goes is a
	// coin toss no predictor learns.
	n := min(len(p.entries)-base, 64)
	lo := 0
	for step := 1 << (bits.Len(uint(n-1)|1) - 1); step > 0; step >>= 1 {
		if cum[(lo+step-1)&63] <= r {
			lo += step
		}
	}
	return lo
}

// score is the best in-flight/weight seen so far, as the fraction
// active/weight. Its zero value is not a score; start from noScore.
type score struct {
	active, weight uint64
}

// noScore scores worse than any provider: 1/0, an infinite load, which
// cross-multiplying ranks above every a/w with w > 0.
var noScore = score{active: 1}

// word returns the entries of providers 64c to 64c+63; those past the last
// provider are zero, and no mask has their bits.
func (p *ProviderPool) word(c int) *[64]entry {
	return (*[64]entry)(p.entries[c<<6 : c<<6+64])
}

// scan visits the providers of es whose bits are set in m, skipping full
// ones, and returns the best score among them and best, and the mask and
// total weight of the visited providers tied at it. The bits of m must be
// providers with a limit above 0 (p.open), so that an idle one has room.
//
// Scores compare exactly by cross-multiplying: a/w < b/v iff a*v < b*w.
// Counts stay below 2^31 (maxHeld) and weights below 2^32, so the products
// fit in 64 bits. It is a leaf function with few values live, so that the
// loops keep them all in registers.
func scan(es *[64]entry, m uint64, best score) (mask, weight uint64, _ score) {
	_ = es[0].weight // es is not nil: checked here, not in the loops
	for ; m != 0; m &= m - 1 {
		j := bits.TrailingZeros64(m) & 63
		e := &es[j]
		n := e.ctr.Load().inFlight()
		if n == 0 { // idle: ties the best at 0, or beats any other
			if best.active != 0 {
				best, mask, weight = score{0, e.weight}, 0, 0
			}
			mask |= 1 << j
			weight += e.weight
			break
		}
		if n >= e.max {
			continue // full
		}
		active := uint64(n)
		l, r := active*best.weight, best.active*e.weight // active/e.weight against best
		if l <= r {
			if l < r {
				best, mask, weight = score{active, e.weight}, 0, 0
			}
			mask |= 1 << j
			weight += e.weight
		}
	}
	// Once one is idle, only the idle ones tie: a lighter loop, as most
	// pools have an idle provider most of the time.
	for m &= m - 1; m != 0; m &= m - 1 {
		j := bits.TrailingZeros64(m) & 63
		e := &es[j]
		if e.ctr.Load().inFlight() == 0 {
			mask |= 1 << j
			weight += e.weight
		}
	}
	return mask, weight, best
}

// Providers returns the pool's providers in order. The slice is a copy; the
// providers are the pool's own.
func (p *ProviderPool) Providers() []*Provider {
	return slices.Clone(p.providers)
}

// Len returns the number of providers.
func (p *ProviderPool) Len() int { return len(p.providers) }

// IsEmpty reports whether the pool has no providers.
func (p *ProviderPool) IsEmpty() bool { return len(p.providers) == 0 }

// FirstTarget returns the first provider's target, or nil for an empty pool.
func (p *ProviderPool) FirstTarget() *Target {
	if len(p.providers) == 0 {
		return nil
	}
	return p.providers[0].Target
}

// Keys returns the API keys allowed to call the pool, or nil if it has none.
func (p *ProviderPool) Keys() *KeySet {
	if p.keys.Len() == 0 {
		return nil
	}
	return p.keys
}

// RateLimiter returns the pool-level rate limiter, or nil.
func (p *ProviderPool) RateLimiter() RateLimiter { return p.rateLimiter }

// ConcurrencyLimiter returns the pool-level concurrency limiter, or nil.
func (p *ProviderPool) ConcurrencyLimiter() *ConcurrencyLimiter { return p.concurrency }

// Fallback returns the fallback config and true, or false if the pool was
// built without WithFallback.
func (p *ProviderPool) Fallback() (FallbackConfig, bool) {
	f := p.fallback
	f.OnStatus = slices.Clone(f.OnStatus)
	return f, p.hasFallback
}

// FallbackEnabled reports whether the pool has a fallback config that is
// enabled.
func (p *ProviderPool) FallbackEnabled() bool { return p.hasFallback && p.fallback.Enabled }

// ShouldFallbackOnStatus reports whether an upstream answer with status
// should move on to the next provider; see
// [FallbackConfig.ShouldFallbackOnStatus].
func (p *ProviderPool) ShouldFallbackOnStatus(status int) bool {
	return p.hasFallback && p.fallback.ShouldFallbackOnStatus(status)
}

// ShouldFallbackOnRateLimit reports whether a provider whose rate limiter
// refuses should be skipped for the next one, rather than failing the
// request with 429.
func (p *ProviderPool) ShouldFallbackOnRateLimit() bool {
	return p.hasFallback && p.fallback.Enabled && p.fallback.OnRateLimit
}

// Strategy returns the load-balancing strategy.
func (p *ProviderPool) Strategy() LoadBalanceStrategy { return p.strategy }

// IsTrusted reports whether the pool is marked trusted.
func (p *ProviderPool) IsTrusted() bool { return p.trusted }

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
// budget keeps its counts. The cumulative counts of snapshots carry over
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
	if p.budget != nil && old.budget != nil {
		old.budget.mu.Lock()
		p.budget.slots = old.budget.slots
		old.budget.mu.Unlock()
	}
}

// Clock returns the pool's clock: the one given with WithClock, or
// SystemClock. Forwarding code times its backoff waits and its upstream
// request timeouts with it.
func (p *ProviderPool) Clock() Clock {
	if p == nil {
		return SystemClock
	}
	return clockOr(p.clock)
}
