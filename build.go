package pool

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
)

// This file turns a validated config into a snapshot of pools: the one
// place where a config becomes the Go API, and the one home of the
// config's defaults.

// snapshot is one config turned into pools. It is immutable once published.
type snapshot struct {
	cfg     *Config
	aliases []string // sorted
	pools   map[string]*aliasState
	keys    map[[sha256.Size]byte]*keyState // by digest of the key
}

// aliasState is one alias's pool and what a reload needs to carry over.
type aliasState struct {
	pool          *ProviderPool
	rate          *rateState                      // the pool's, or nil
	tokens        *tokenState                     // the pool's token limit, or nil
	providerRates map[providerIdentity]*rateState // by provider identity
	shared        SharedConcurrency               // the pool's limit across replicas, or nil
	inflight      *inflightState                  // the alias's in-flight limits, or nil
}

// rateState is a rate limiter and the parameters it was made with, so that
// a reload that keeps the parameters keeps the limiter and its tokens.
type rateState struct {
	rps   float64
	burst int
	name  string // the shared limiter's name, or "" for a local one
	lim   RateLimiter
}

// tokenState is a token limiter and the parameters it was made with, so
// that a reload that keeps them keeps the bucket and what it holds.
type tokenState struct {
	perMinute, burst int64
	name             string // the shared limiter's name, or "" for a local one
	lim              tokenReserver
}

// tokenReserver is a token limit, local (*TokenLimiter) or shared
// (*sharedTokenLimiter).
type tokenReserver interface {
	Reserve(n int64) (*TokenReservation, time.Duration, bool)
}

// keyState is what a key definition gives an API key.
type keyState struct {
	labels map[string]string
	rate   *rateState          // nil: no per-key rate limit
	tokens *tokenState         // nil: no per-key token limit
	conc   *ConcurrencyLimiter // nil: no per-key concurrency limit
	shared SharedConcurrency   // the key's limit across replicas, or nil
}

// buildSnapshot validates cfg and turns it into pools, carrying state over
// from old (nil: none). It changes nothing in old; on an error, it returns
// every problem of cfg.
func buildSnapshot(cfg *Config, old *snapshot, clock Clock, shared SharedState) (*snapshot, error) {
	if cfg == nil {
		return nil, errors.New("pool: config is nil")
	}
	if errs, _ := validateConfig(cfg); len(errs) > 0 {
		return nil, joinFieldErrors(errs)
	}
	b := &builder{clock: clock, shared: shared, cfg: cfg, old: old, defKeys: make(map[string]string)}
	s := &snapshot{
		cfg:     cfg,
		aliases: sortedKeys(cfg.Targets),
		pools:   make(map[string]*aliasState, len(cfg.Targets)),
		keys:    make(map[[sha256.Size]byte]*keyState),
	}
	b.buildKeys(s)
	var globalKeys []string
	if cfg.Auth != nil {
		globalKeys = b.resolveKeys(cfg.Auth.GlobalKeys)
	}
	for _, alias := range s.aliases {
		a, err := b.buildAlias(alias, globalKeys)
		if err != nil { // validation let through what NewProviderPool refuses
			return nil, err
		}
		s.pools[alias] = a
	}
	b.adopt(s)
	return s, nil
}

// builder holds the work of one buildSnapshot.
type builder struct {
	clock   Clock
	shared  SharedState
	cfg     *Config
	old     *snapshot
	defKeys map[string]string // key-definition name -> key
}

// buildKeys turns the key definitions into per-key state.
func (b *builder) buildKeys(s *snapshot) {
	if b.cfg.Auth == nil {
		return
	}
	for _, name := range sortedKeys(b.cfg.Auth.KeyDefinitions) {
		def := b.cfg.Auth.KeyDefinitions[name]
		digest := sha256.Sum256([]byte(def.Key))
		b.defKeys[name] = def.Key
		ks := &keyState{labels: def.Labels}
		var oldKey *keyState
		if b.old != nil {
			oldKey = b.old.keys[digest]
		}
		name := "key/" + sprintDigest(def.Key)
		var oldRate *rateState
		var oldTokens *tokenState
		if oldKey != nil {
			oldRate, oldTokens = oldKey.rate, oldKey.tokens
		}
		ks.rate = b.rateLimiter(name, def.RateLimit, oldRate)
		ks.tokens = b.tokenLimiter(name, def.RateLimit, oldTokens)
		if def.ConcurrencyLimit != nil {
			ks.conc = NewConcurrencyLimiterWithLimit(def.ConcurrencyLimit.MaxConcurrentRequests)
			if b.shared != nil {
				ks.shared = b.shared.Concurrency(name, def.ConcurrencyLimit.MaxConcurrentRequests)
			}
		}
		s.keys[digest] = ks
	}
}

// resolveKeys turns entries of "keys" or "global_keys", each a key or the
// name of a key definition, into keys.
func (b *builder) resolveKeys(entries []string) []string {
	keys := make([]string, 0, len(entries))
	for _, entry := range entries {
		if key, isDef := b.defKeys[entry]; isDef {
			entry = key
		}
		keys = append(keys, entry)
	}
	return keys
}

// buildAlias builds the pool of one alias.
func (b *builder) buildAlias(alias string, globalKeys []string) (*aliasState, error) {
	plan := planOf(alias, b.cfg.Targets[alias])
	var oldAlias *aliasState
	if b.old != nil {
		oldAlias = b.old.pools[alias]
	}
	a := &aliasState{providerRates: make(map[providerIdentity]*rateState)}
	providers := make([]*Provider, 0, len(plan.providers))
	for _, pp := range plan.providers {
		providers = append(providers, b.buildProvider(alias, pp.spec, plan, oldAlias, a))
	}
	opts := []Option{WithRoutingRules(plan.rules...), WithTrusted(plan.trusted)}
	if keys := append(b.resolveKeys(plan.keys), globalKeys...); len(keys) > 0 {
		opts = append(opts, WithKeys(NewKeySet(keys...)))
	}
	if plan.strategy != "" {
		var s LoadBalanceStrategy
		s.UnmarshalText([]byte(plan.strategy)) // validated
		opts = append(opts, WithStrategy(s))
	}
	var oldRate *rateState
	var oldTokens *tokenState
	if oldAlias != nil {
		oldRate, oldTokens = oldAlias.rate, oldAlias.tokens
	}
	if a.rate = b.rateLimiter("alias/"+alias, plan.rate, oldRate); a.rate != nil {
		opts = append(opts, WithRateLimiter(a.rate.lim))
	}
	a.tokens = b.tokenLimiter("alias/"+alias, plan.tokens, oldTokens)
	if plan.conc != nil {
		opts = append(opts, WithConcurrencyLimiter(NewConcurrencyLimiterWithLimit(plan.conc.MaxConcurrentRequests)))
		if b.shared != nil {
			a.shared = b.shared.Concurrency("alias/"+alias, plan.conc.MaxConcurrentRequests)
		}
	}
	if f := plan.fallback; f != nil {
		opts = append(opts, WithFallback(f.config()))
		if f.AIMD.enabled() && plan.strategy == Priority.String() {
			opts = append(opts, WithAIMD(f.AIMD.config()))
		}
		if f.Affinity.enabled() {
			opts = append(opts, WithAffinity(f.Affinity.config()))
		}
	}
	a.inflight = b.inflightState(alias, plan, oldAlias)
	if plan.outlier != nil {
		opts = append(opts, WithOutlierDetection(plan.outlier.config()))
	}
	if plan.budget != nil {
		opts = append(opts, WithRetryBudget(plan.budget.config()))
	}
	opts = append(opts, WithClock(b.clock))
	p, err := NewProviderPool(providers, opts...)
	if err != nil {
		return nil, fmt.Errorf("pool: targets[%q]: %w", alias, err)
	}
	a.pool = p
	return a, nil
}

// buildProvider turns one validated provider spec into a Provider.
func (b *builder) buildProvider(alias string, spec *ProviderSpec, plan *poolPlan, oldAlias, a *aliasState) *Provider {
	u, _ := parseBaseURL(spec.URL) // validated
	t := &Target{
		URL:                      u,
		UpstreamKey:              spec.OnwardsKey,
		UpstreamModel:            spec.OnwardsModel,
		UpstreamAuthHeaderName:   "Authorization",
		UpstreamAuthHeaderPrefix: "Bearer ",
		SanitizeResponse:         plan.sanitize || spec.SanitizeResponse,
		ResponseHeaders:          mergeHeaders(plan.responseHeaders, spec.ResponseHeaders),
	}
	if plan.providerTrust {
		t.Trusted = spec.Trusted
	}
	if spec.UpstreamAuthHeaderName != nil {
		t.UpstreamAuthHeaderName = *spec.UpstreamAuthHeaderName
	}
	if spec.UpstreamAuthHeaderPrefix != nil {
		t.UpstreamAuthHeaderPrefix = *spec.UpstreamAuthHeaderPrefix
	}
	if spec.RequestTimeoutSecs != nil {
		t.RequestTimeout = time.Duration(*spec.RequestTimeoutSecs) * time.Second
	}
	t.Serves.UnmarshalText([]byte(cmp.Or(spec.Serves, "both"))) // validated
	id := identityOf(t)
	name := fmt.Sprintf("provider/%s/%s", alias, sprintDigest(id.url+"\x00"+id.key+"\x00"+id.model))
	if spec.RateLimit.hasRequests() {
		var oldRate *rateState
		if oldAlias != nil {
			oldRate = oldAlias.providerRates[id]
		}
		rs := b.rateLimiter(name, spec.RateLimit, oldRate)
		t.RateLimiter = rs.lim
		if _, dup := a.providerRates[id]; !dup {
			a.providerRates[id] = rs
		}
	}
	weight := uint32(1)
	if spec.Weight != nil {
		weight = uint32(*spec.Weight) // validated: 0 to MaxUint32
	}
	if spec.ConcurrencyLimit != nil {
		pr := NewProviderWithConcurrencyLimit(t, weight, spec.ConcurrencyLimit.MaxConcurrentRequests)
		if b.shared != nil {
			pr.shared = b.shared.Concurrency(name, spec.ConcurrencyLimit.MaxConcurrentRequests)
		}
		return pr
	}
	return NewProvider(t, weight)
}

// mergeHeaders returns the pool's response headers with the provider's
// over them, or nil when neither sets any.
func mergeHeaders(pool, provider map[string]string) map[string]string {
	if len(pool)+len(provider) == 0 {
		return nil
	}
	out := make(map[string]string, len(pool)+len(provider))
	for k, v := range pool {
		out[k] = v
	}
	for k, v := range provider {
		out[k] = v
	}
	return out
}

// rateLimiter returns the limiter of a validated rate limit's request form:
// old's, if the parameters are the same, so that its tokens carry over; a
// shared one, under name, when the registry has shared state. It returns
// nil when spec has no request form.
func (b *builder) rateLimiter(name string, spec *RateLimitSpec, old *rateState) *rateState {
	if !spec.hasRequests() {
		return nil
	}
	burst, _ := checkRate("", spec)
	if b.shared == nil {
		name = ""
	}
	if old != nil && old.rps == spec.RequestsPerSecond && old.burst == burst && old.name == name {
		return old
	}
	rs := &rateState{rps: spec.RequestsPerSecond, burst: burst, name: name}
	if name != "" {
		rs.lim = &sharedRateLimiter{s: b.shared.Rate(name, spec.RequestsPerSecond, burst)}
	} else {
		rs.lim = NewRateLimiter(spec.RequestsPerSecond, burst)
	}
	return rs
}

// tokenLimiter returns the token limiter of a validated rate limit's token
// form: old's, if the parameters are the same, so that the bucket carries
// over a reload; a shared one, under name, when the registry's shared
// state shares tokens; nil when spec has no token form.
func (b *builder) tokenLimiter(name string, spec *RateLimitSpec, old *tokenState) *tokenState {
	if !spec.hasTokens() {
		return nil
	}
	burst, _ := checkTokenRate("", spec)
	st, shared := b.shared.(SharedTokenState)
	if !shared {
		name = ""
	}
	if old != nil && old.perMinute == spec.TokensPerMinute && old.burst == burst && old.name == name {
		return old
	}
	ts := &tokenState{perMinute: spec.TokensPerMinute, burst: burst, name: name}
	if shared {
		ts.lim = &sharedTokenLimiter{s: st.Tokens(name, spec.TokensPerMinute, burst), burst: burst}
	} else {
		ts.lim = NewTokenLimiter(spec.TokensPerMinute, burst, b.clock)
	}
	return ts
}

// adopt carries the live counters of the old snapshot into s.
func (b *builder) adopt(s *snapshot) {
	if b.old == nil {
		return
	}
	for alias, a := range s.pools {
		if old, ok := b.old.pools[alias]; ok {
			a.pool.AdoptProviderState(old.pool)
		}
	}
	for digest, k := range s.keys {
		if old, ok := b.old.keys[digest]; ok && k.conc != nil && old.conc != nil {
			k.conc.AdoptActiveCounter(old.conc)
		}
	}
}

// inflightState builds an alias's in-flight limits, keeping the counts of
// the alias in old (nil: none) so that a reload drifts nothing. It returns
// nil when the alias sets none.
func (b *builder) inflightState(alias string, plan *poolPlan, old *aliasState) *inflightState {
	if plan.inflight == nil && len(plan.accountLimits) == 0 && plan.batchInflight == nil {
		return nil
	}
	s := &inflightState{alias: alias, account: -1, batch: -1, accounts: plan.accountLimits, shared: b.shared}
	if plan.inflight != nil {
		s.account = *plan.inflight
	}
	if plan.batchInflight != nil {
		s.batch = *plan.batchInflight
		if b.shared != nil {
			s.batchLim = b.shared.Concurrency("inflight/"+alias+"/__batch__", int(s.batch))
		}
	}
	if old != nil && old.inflight != nil {
		s.counts = old.inflight.counts
	} else {
		s.counts = new(inflightCounts)
	}
	return s
}
