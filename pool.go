package pool

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"
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
	outlier     *OutlierDetection               // set by WithOutlierDetection
	detect      *detector                       // nil: no outlier detection
	budgetCfg   *RetryBudget                    // set by WithRetryBudget
	budget      *retryBudget                    // nil: no retry budget
	stats       *poolStats                      // shared with the pools it replaces
	moves       atomic.Uint64                   // counterMoves when entries' counters were read
	hasShared   bool                            // some provider's limit is shared across replicas
	path        selectPath                      // which of the selections a Select takes
	seed        func() uint64                   // seeds each SelectIter's random numbers; nil: math/rand/v2
	turn        atomic.Uint64                   // round_robin's next turn
	scope       [2]bitset                       // by RequestClass, the providers that must not serve it
	scoped      bool                            // scope[ClassChat] is not empty
	aimd        *AIMD                           // set by WithAIMD
	share       atomic.Pointer[shareController] // nil: no AIMD controller; set again only by AdoptProviderState
	affinity    *Affinity                       // set by WithAffinity
	aff         *affinityTracker                // a priority pool's affinity share; nil: none
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

// selectPath is which of the selections a pool's Select takes, decided
// once when the pool is built, so that a Select dispatches on one byte.
type selectPath uint8

const (
	pathWeighted   selectPath = iota // selectWeighted: the zero value
	pathPriority                     // selectPriority
	pathHealthy                      // selectHealthy: outlier detection, either strategy
	pathShared                       // selectShared: limits shared across replicas
	pathTokens                       // selectTokens: token_aware
	pathP2C                          // selectP2C: p2c_ewma
	pathRoundRobin                   // selectRoundRobin: round_robin
)

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
		f.OnStatus, f.RealtimeOnStatus = slices.Clone(f.OnStatus), slices.Clone(f.RealtimeOnStatus)
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

// WithRandomSource seeds the random numbers of each [SelectIter] and
// [ProviderPool.Attempts] walk from src, so that a simulation or a test
// that walks the pool from one goroutine repeats exactly. src must be safe
// for simultaneous use if the pool is walked by several goroutines at
// once. Select, outside a walk, keeps the shared source of math/rand/v2.
// Nil or absent: math/rand/v2 for everything.
func WithRandomSource(src func() uint64) Option {
	return func(p *ProviderPool) { p.seed = src }
}

// WithRoutingRules sets the rules evaluated, in order, against the labels
// of the caller's API key. The pool keeps its own copy.
func WithRoutingRules(rules ...RoutingRule) Option {
	return func(p *ProviderPool) { p.rules = cloneRules(rules) }
}

// WithAIMD gives a priority pool an AIMD preferred-share controller; see
// [AIMD]. It acts only while the pool is eligible: the Priority strategy,
// fallback enabled, and two providers or more. AdoptProviderState carries
// it across a reload that keeps its settings, the fallback's
// FirstTokenTimeout and the preferred provider; it is parked, keeping its
// share, while a reload leaves the pool ineligible, and resumes when the
// pool is eligible again.
func WithAIMD(a AIMD) Option {
	return func(p *ProviderPool) { p.aimd = &a }
}

// WithAffinity keeps a conversation's requests on one provider; see
// [Affinity].
func WithAffinity(a Affinity) Option {
	return func(p *ProviderPool) { p.affinity = &a }
}

// aimdEligible reports whether the pool's AIMD controller may act.
func (p *ProviderPool) aimdEligible() bool {
	return p.aimd != nil && p.strategy == Priority && p.FallbackEnabled() && len(p.providers) >= 2
}

// initLoadAware sets up the load-aware state of a new pool.
func (p *ProviderPool) initLoadAware(providers []*Provider) {
	p.scope = scopes(providers)
	p.scoped = p.scope[ClassChat].count() > 0
	if p.aimdEligible() {
		p.share.Store(newShareController(*p.aimd, p.clock))
	}
	if p.affinity != nil && p.strategy == Priority {
		p.aff = newAffinityTracker(*p.affinity)
	}
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
	errs = append(errs, p.index(providers)...)
	errs = append(errs, p.checkSettings()...)
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
	p.initLoadAware(providers)
	switch {
	case p.detect != nil:
		p.path = pathHealthy
	case p.hasShared:
		p.path = pathShared
	case p.strategy == Priority:
		p.path = pathPriority
	case p.strategy == TokenAware:
		p.path = pathTokens
	case p.strategy == PeakEWMA:
		p.path = pathP2C
	case p.strategy == RoundRobin:
		p.path = pathRoundRobin
	}
	return p, nil
}

// index checks the providers and lays out the views that selection reads
// of them: the entries, the live, capable and open masks, and the running
// weights. It returns the problems of the providers it skipped.
func (p *ProviderPool) index(providers []*Provider) []*FieldError {
	var errs []*FieldError
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
	return errs
}

// checkSettings returns the problems of the pool-level settings that the
// options gave, by the rules of validate.go.
func (p *ProviderPool) checkSettings() []*FieldError {
	var errs []*FieldError
	if !p.strategy.valid() {
		errs = append(errs, fieldErr("strategy", "%v is not defined; want WeightedRandom, Priority, TokenAware, PeakEWMA or RoundRobin", p.strategy))
	}
	if p.hasFallback {
		errs = append(errs, checkFallback("fallback", p.fallback)...)
	}
	if p.aimd != nil {
		errs = append(errs, checkAIMD("aimd", *p.aimd)...)
	}
	if p.affinity != nil {
		errs = append(errs, checkAffinity("affinity", *p.affinity)...)
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
	return errs
}

// NewSingleProviderPool returns a pool of one provider without a
// concurrency limit.
func NewSingleProviderPool(target *Target, weight uint32) (*ProviderPool, error) {
	return NewProviderPool([]*Provider{NewProvider(target, weight)})
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
	f.OnStatus, f.RealtimeOnStatus = slices.Clone(f.OnStatus), slices.Clone(f.RealtimeOnStatus)
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

// ShouldFallbackOnRealtimeStatus is ShouldFallbackOnStatus for a realtime
// request; see [FallbackConfig.ShouldFallbackOnRealtimeStatus].
func (p *ProviderPool) ShouldFallbackOnRealtimeStatus(status int) bool {
	return p.hasFallback && p.fallback.ShouldFallbackOnRealtimeStatus(status)
}

// HasAffinity reports whether the pool was built WithAffinity.
func (p *ProviderPool) HasAffinity() bool { return p.affinity != nil }

// FirstTokenTimeout returns the fallback's FirstTokenTimeout, or 0.
func (p *ProviderPool) FirstTokenTimeout() time.Duration {
	if !p.hasFallback {
		return 0
	}
	return p.fallback.FirstTokenTimeout
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

// EvaluateRoutingRules returns the action of the first rule that matches the
// labels of the caller's API key, and true; or false when no rule matches and
// the request goes ahead unchanged.
func (p *ProviderPool) EvaluateRoutingRules(labels map[string]string) (RoutingAction, bool) {
	return firstMatch(p.rules, labels)
}

// RoutingRules returns a copy of the pool's routing rules, in evaluation
// order.
func (p *ProviderPool) RoutingRules() []RoutingRule {
	return cloneRules(p.rules)
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

// scopes returns, for each class, the providers that must not serve it:
// for ClassChat, those that serve completions only; for ClassCompletions,
// those that serve chat only, but only when some provider serves
// completions only (a pool without one serves completions as it always
// did, from every provider). Both are empty for a pool that scopes none.
func scopes(providers []*Provider) (out [2]bitset) {
	completionsMember := false
	for _, pr := range providers {
		completionsMember = completionsMember || pr != nil && pr.Target != nil && pr.Target.Serves == ServesCompletions
	}
	for i, pr := range providers {
		if pr == nil || pr.Target == nil {
			continue
		}
		switch pr.Target.Serves {
		case ServesCompletions:
			out[ClassChat].add(i)
		case ServesChat:
			if completionsMember {
				out[ClassCompletions].add(i)
			}
		}
	}
	return out
}

func (p *ProviderPool) shareCtl() *shareController {
	if p == nil {
		return nil
	}
	return p.share.Load()
}
