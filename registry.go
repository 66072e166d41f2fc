package pool

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Registry is the live set of pools of a config, by alias, with the API keys
// that may call them. Lookups and admissions read an immutable snapshot
// through an atomic pointer and take no lock; Reload builds a new snapshot,
// adopts the live counters, and swaps it in at once, so a request sees the
// old config or the new one, never a mix.
//
// The zero value is a registry with no config: it admits nothing until the
// first Reload. A Registry is safe for simultaneous use by multiple
// goroutines.
type Registry struct {
	mu   sync.Mutex // serializes Reload; readers never take it
	snap atomic.Pointer[snapshot]
}

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
	providerRates map[providerIdentity]*rateState // by provider identity
}

// rateState is a rate limiter and the parameters it was made with, so that
// a reload that keeps the parameters keeps the limiter and its tokens.
type rateState struct {
	rps   float64
	burst int
	lim   RateLimiter
}

// keyState is what a key definition gives an API key.
type keyState struct {
	labels map[string]string
	rate   *rateState          // nil: no per-key rate limit
	conc   *ConcurrencyLimiter // nil: no per-key concurrency limit
}

// NewRegistry returns a registry serving cfg, which it validates as
// ParseConfig does. The registry keeps cfg; do not modify it afterwards.
func NewRegistry(cfg *Config) (*Registry, error) {
	r := new(Registry)
	if err := r.Reload(cfg); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload replaces the registry's config with cfg. Each new pool adopts the
// in-flight counters of the pool it replaces (same alias; providers matched
// by URL, upstream key and upstream model), each key its concurrency
// counter, and a rate limiter whose parameters did not change keeps its
// state, so a reload is neither a free burst nor a reset of any count.
// Admissions and selections already made keep working and release into the
// new counters.
//
// A config that fails validation changes nothing; Reload returns the error.
// Reloads are serialized; lookups never wait for them.
func (r *Registry) Reload(cfg *Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	next, err := buildSnapshot(cfg, r.snap.Load())
	if err != nil {
		return err
	}
	r.snap.Store(next)
	return nil
}

// Pool returns the pool of alias, as of the current config.
func (r *Registry) Pool(alias string) (*ProviderPool, bool) {
	s := r.snap.Load()
	if s == nil {
		return nil, false
	}
	a, ok := s.pools[alias]
	if !ok {
		return nil, false
	}
	return a.pool, true
}

// Aliases returns the aliases of the current config, sorted.
func (r *Registry) Aliases() []string {
	s := r.snap.Load()
	if s == nil {
		return nil
	}
	return slices.Clone(s.aliases)
}

// Config returns the config the registry serves now, or nil before the
// first successful Reload. Do not modify it.
func (r *Registry) Config() *Config {
	s := r.snap.Load()
	if s == nil {
		return nil
	}
	return s.cfg
}

// buildSnapshot validates cfg and turns it into pools, carrying state over
// from old (nil: none). It is the one place where a config becomes the Go
// API, and the one home of the config's defaults. Every problem is reported,
// with its place. It changes nothing in old.
func buildSnapshot(cfg *Config, old *snapshot) (*snapshot, error) {
	if cfg == nil {
		return nil, errors.New("pool: config is nil")
	}
	b := &builder{cfg: cfg, old: old}
	s := b.build()
	if len(b.errs) > 0 {
		return nil, prefixErrors(b.errs)
	}
	return s, nil
}

// builder holds the work of one buildSnapshot.
type builder struct {
	cfg     *Config
	old     *snapshot
	errs    []error
	defKeys map[string]string // key-definition name -> key
}

func (b *builder) errorf(place, format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf("%s: "+format, append([]any{place}, args...)...))
}

func (b *builder) build() *snapshot {
	s := &snapshot{
		cfg:   b.cfg,
		pools: make(map[string]*aliasState, len(b.cfg.Targets)),
		keys:  make(map[[sha256.Size]byte]*keyState),
	}
	b.buildKeys(s)
	var globalKeys []string
	if b.cfg.Auth != nil {
		globalKeys = b.resolveKeys("auth.global_keys", b.cfg.Auth.GlobalKeys)
	}
	if len(b.cfg.Targets) == 0 {
		b.errorf("targets", "no aliases; a config needs at least one target")
	}
	s.aliases = sortedKeys(b.cfg.Targets)
	for _, alias := range s.aliases {
		if a := b.buildAlias(alias, b.cfg.Targets[alias], globalKeys); a != nil {
			s.pools[alias] = a
		}
	}
	if len(b.errs) > 0 {
		return nil
	}
	b.adopt(s)
	return s
}

// buildKeys turns the key definitions into per-key state.
func (b *builder) buildKeys(s *snapshot) {
	b.defKeys = make(map[string]string)
	if b.cfg.Auth == nil {
		return
	}
	seen := make(map[[sha256.Size]byte]string)
	for _, name := range sortedKeys(b.cfg.Auth.KeyDefinitions) {
		def, place := b.cfg.Auth.KeyDefinitions[name], fmt.Sprintf("auth.key_definitions[%q]", name)
		if def.Key == "" {
			b.errorf(place+".key", "missing; a key definition needs the key it describes")
			continue
		}
		digest := sha256.Sum256([]byte(def.Key))
		if other, dup := seen[digest]; dup {
			b.errorf(place+".key", "the same key as %s; a key has one definition", other)
			continue
		}
		seen[digest] = place
		b.defKeys[name] = def.Key
		ks := &keyState{labels: def.Labels}
		var oldKey *keyState
		if b.old != nil {
			oldKey = b.old.keys[digest]
		}
		if def.RateLimit != nil {
			var oldRate *rateState
			if oldKey != nil {
				oldRate = oldKey.rate
			}
			ks.rate = b.rateLimiter(place+".rate_limit", def.RateLimit, oldRate)
		}
		if def.ConcurrencyLimit != nil {
			ks.conc = b.concurrencyLimiter(place+".concurrency_limit", def.ConcurrencyLimit)
		}
		s.keys[digest] = ks
	}
}

// resolveKeys turns entries of "keys" or "global_keys", each a key or the
// name of a key definition, into keys.
func (b *builder) resolveKeys(place string, entries []string) []string {
	keys := make([]string, 0, len(entries))
	for i, entry := range entries {
		switch key, isDef := b.defKeys[entry]; {
		case entry == "":
			b.errorf(fmt.Sprintf("%s[%d]", place, i), "empty key")
		case isDef:
			keys = append(keys, key)
		default:
			keys = append(keys, entry)
		}
	}
	return keys
}

// plannedProvider is a provider spec and the place it was written.
type plannedProvider struct {
	place string
	spec  *ProviderSpec
}

// poolPlan is any of the three target forms, reduced to one shape.
type poolPlan struct {
	base            string // the place of the pool-level fields
	keys            []string
	strategy        string
	rate            *RateLimitSpec
	conc            *ConcurrencyLimitSpec
	fallback        *FallbackSpec
	rules           []RoutingRule
	responseHeaders map[string]string
	trusted         bool
	sanitize        bool
	providerTrust   bool // whether providers' own trusted fields apply
	providers       []plannedProvider
	providersPlace  string
}

// plan reduces a target of any form to a poolPlan.
func (b *builder) plan(place string, t TargetConfig) *poolPlan {
	switch {
	case t.Pool != nil:
		p := t.Pool
		plan := &poolPlan{
			keys: p.Keys, strategy: p.Strategy, rate: p.RateLimit, conc: p.ConcurrencyLimit,
			fallback: p.Fallback, rules: p.RoutingRules, responseHeaders: p.ResponseHeaders,
			trusted: p.Trusted != nil && *p.Trusted, sanitize: p.SanitizeResponse, providerTrust: true,
			base: place, providersPlace: place + ".providers",
		}
		for i := range p.Providers {
			plan.providers = append(plan.providers, plannedProvider{fmt.Sprintf("%s.providers[%d]", place, i), &p.Providers[i]})
		}
		return plan
	case t.List != nil:
		if len(t.List) == 0 {
			return &poolPlan{providersPlace: place}
		}
		first := &t.List[0]
		plan := singlePlan(place+"[0]", first)
		plan.providersPlace = place
		plan.providers = nil
		for i := range t.List {
			entry, ep := &t.List[i], fmt.Sprintf("%s[%d]", place, i)
			plan.providers = append(plan.providers, plannedProvider{ep, &entry.ProviderSpec})
			if i == 0 {
				continue
			}
			if (entry.Trusted != nil && *entry.Trusted) != plan.trusted {
				b.errorf(ep+".trusted", "disagrees with %s[0]; every entry of a list must agree on trusted", place)
			}
			b.sameAsFirst(ep+".keys", entry.Keys, first.Keys, place)
			b.sameAsFirst(ep+".strategy", entry.Strategy, first.Strategy, place)
			b.sameAsFirst(ep+".fallback", entry.Fallback, first.Fallback, place)
			b.sameAsFirst(ep+".routing_rules", entry.RoutingRules, first.RoutingRules, place)
		}
		return plan
	case t.Single != nil:
		return singlePlan(place, t.Single)
	}
	b.errorf(place, "empty target; want a url, a providers array or a list of targets")
	return nil
}

// sameAsFirst reports a list entry that sets a pool-level field differently
// from the first entry, where the list takes it from.
func (b *builder) sameAsFirst(place string, v, first any, list string) {
	if reflect.ValueOf(v).IsZero() || reflect.DeepEqual(v, first) {
		return
	}
	b.errorf(place, "differs from %s[0]; a list takes its pool settings from its first entry", list)
}

// singlePlan is the plan of a single target at place.
func singlePlan(place string, t *TargetSpec) *poolPlan {
	plan := &poolPlan{
		keys: t.Keys, strategy: t.Strategy, fallback: t.Fallback, rules: t.RoutingRules,
		trusted:   t.Trusted != nil && *t.Trusted,
		providers: []plannedProvider{{place, &t.ProviderSpec}},
		base:      place, providersPlace: place,
	}
	return plan
}

// buildAlias builds the pool of one alias.
func (b *builder) buildAlias(alias string, t TargetConfig, globalKeys []string) *aliasState {
	place := fmt.Sprintf("targets[%q]", alias)
	if alias == "" {
		b.errorf(place, "empty alias")
	}
	plan := b.plan(place, t)
	if plan == nil {
		return nil
	}
	if len(plan.providers) == 0 {
		b.errorf(plan.providersPlace, "no providers; an alias needs at least one")
		return nil
	}
	var oldAlias *aliasState
	if b.old != nil {
		oldAlias = b.old.pools[alias]
	}
	a := &aliasState{providerRates: make(map[providerIdentity]*rateState)}

	b.checkHeaders(plan.base+".response_headers", plan.responseHeaders)
	providers := make([]*Provider, 0, len(plan.providers))
	for _, pp := range plan.providers {
		if pr := b.buildProvider(pp, plan, oldAlias, a); pr != nil {
			providers = append(providers, pr)
		}
	}

	var opts []Option
	keys := b.resolveKeys(plan.base+".keys", plan.keys)
	keys = append(keys, globalKeys...)
	if len(keys) > 0 {
		opts = append(opts, WithKeys(NewKeySet(keys...)))
	}
	if plan.strategy != "" {
		var s LoadBalanceStrategy
		if err := s.UnmarshalText([]byte(plan.strategy)); err != nil {
			b.errorf(plan.base+".strategy", "%v", err)
		}
		opts = append(opts, WithStrategy(s))
	}
	if plan.rate != nil {
		var oldRate *rateState
		if oldAlias != nil {
			oldRate = oldAlias.rate
		}
		a.rate = b.rateLimiter(plan.base+".rate_limit", plan.rate, oldRate)
		if a.rate != nil {
			opts = append(opts, WithRateLimiter(a.rate.lim))
		}
	}
	if plan.conc != nil {
		if l := b.concurrencyLimiter(plan.base+".concurrency_limit", plan.conc); l != nil {
			opts = append(opts, WithConcurrencyLimiter(l))
		}
	}
	if f := plan.fallback; f != nil {
		fc := FallbackConfig{Enabled: f.Enabled, OnStatus: f.OnStatus, OnRateLimit: f.OnRateLimit, WithReplacement: f.WithReplacement}
		if f.MaxAttempts != nil && *f.MaxAttempts < 1 {
			b.errorf(plan.base+".fallback.max_attempts", "%d; want at least 1, or leave it out for one attempt per provider", *f.MaxAttempts)
		} else if f.MaxAttempts != nil {
			fc.MaxAttempts = *f.MaxAttempts
		}
		if err := fc.validate(); err != nil {
			b.errs = append(b.errs, fmt.Errorf("%s.fallback.%w", plan.base, err))
		}
		opts = append(opts, WithFallback(fc))
	}
	for i, rule := range plan.rules {
		rp := fmt.Sprintf("%s.routing_rules[%d]", plan.base, i)
		if err := rule.Action.validate(); err != nil {
			b.errs = append(b.errs, fmt.Errorf("%s.%w", rp, err))
			continue
		}
		if rule.Action.Type != ActionRedirect {
			continue
		}
		if rule.Action.Target == alias {
			b.errorf(rp+".action.target", "redirects %q to itself", alias)
		} else if _, ok := b.cfg.Targets[rule.Action.Target]; !ok {
			b.errorf(rp+".action.target", "redirects to %q, which is not an alias of this config", rule.Action.Target)
		}
	}
	opts = append(opts, WithRoutingRules(plan.rules...), WithTrusted(plan.trusted))

	if len(b.errs) > 0 {
		return nil
	}
	p, err := NewProviderPool(providers, opts...)
	if err != nil {
		b.errorf(place, "%v", err)
		return nil
	}
	a.pool = p
	return a
}

// buildProvider turns one provider spec into a Provider.
func (b *builder) buildProvider(pp plannedProvider, plan *poolPlan, oldAlias *aliasState, a *aliasState) *Provider {
	spec, place := pp.spec, pp.place
	u, err := parseBaseURL(spec.URL)
	if err != nil {
		b.errorf(place+".url", "%v", err)
		return nil
	}
	weight := uint32(1)
	if spec.Weight != nil {
		if *spec.Weight < 0 || *spec.Weight > math.MaxUint32 {
			b.errorf(place+".weight", "%d is out of range; want 0 to %d", *spec.Weight, uint32(math.MaxUint32))
		}
		weight = uint32(*spec.Weight)
	}
	t := &Target{
		URL:                      u,
		UpstreamKey:              spec.OnwardsKey,
		UpstreamModel:            spec.OnwardsModel,
		UpstreamAuthHeaderName:   "Authorization",
		UpstreamAuthHeaderPrefix: "Bearer ",
		SanitizeResponse:         plan.sanitize || spec.SanitizeResponse,
	}
	if plan.providerTrust {
		t.Trusted = spec.Trusted
	}
	if spec.UpstreamAuthHeaderName != nil {
		if !validHeaderName(*spec.UpstreamAuthHeaderName) {
			b.errorf(place+".upstream_auth_header_name", "%q is not a valid header name", *spec.UpstreamAuthHeaderName)
		}
		t.UpstreamAuthHeaderName = *spec.UpstreamAuthHeaderName
	}
	if spec.UpstreamAuthHeaderPrefix != nil {
		if !validHeaderValue(*spec.UpstreamAuthHeaderPrefix) {
			b.errorf(place+".upstream_auth_header_prefix", "holds a control character")
		}
		t.UpstreamAuthHeaderPrefix = *spec.UpstreamAuthHeaderPrefix
	}
	if spec.RequestTimeoutSecs != nil {
		if *spec.RequestTimeoutSecs < 1 || *spec.RequestTimeoutSecs > math.MaxInt64/int64(time.Second) {
			b.errorf(place+".request_timeout_secs", "%d; want at least 1, or leave it out for no timeout", *spec.RequestTimeoutSecs)
		} else {
			t.RequestTimeout = time.Duration(*spec.RequestTimeoutSecs) * time.Second
		}
	}
	b.checkHeaders(place+".response_headers", spec.ResponseHeaders)
	if len(plan.responseHeaders)+len(spec.ResponseHeaders) > 0 {
		t.ResponseHeaders = make(map[string]string, len(plan.responseHeaders)+len(spec.ResponseHeaders))
		for k, v := range plan.responseHeaders {
			t.ResponseHeaders[k] = v
		}
		for k, v := range spec.ResponseHeaders {
			t.ResponseHeaders[k] = v
		}
	}
	id := identityOf(t)
	if spec.RateLimit != nil {
		var oldRate *rateState
		if oldAlias != nil {
			oldRate = oldAlias.providerRates[id]
		}
		if rs := b.rateLimiter(place+".rate_limit", spec.RateLimit, oldRate); rs != nil {
			t.RateLimiter = rs.lim
			if _, dup := a.providerRates[id]; !dup {
				a.providerRates[id] = rs
			}
		}
	}
	if spec.ConcurrencyLimit != nil {
		if l := b.concurrencyLimiter(place+".concurrency_limit", spec.ConcurrencyLimit); l != nil {
			limit, _ := l.Limit()
			return NewProviderWithConcurrencyLimit(t, weight, limit)
		}
	}
	return NewProvider(t, weight)
}

// rateLimiter validates a rate limit and returns its limiter: old's, if the
// parameters are the same, so that its tokens carry over.
func (b *builder) rateLimiter(place string, spec *RateLimitSpec, old *rateState) *rateState {
	rps := spec.RequestsPerSecond
	if !(rps > 0) || math.IsInf(rps, 0) {
		b.errorf(place+".requests_per_second", "%v; want a number above 0", rps)
		return nil
	}
	burst := int(math.Min(math.Ceil(rps), math.MaxInt32))
	if spec.BurstSize != nil {
		if *spec.BurstSize < 1 {
			b.errorf(place+".burst_size", "%d; want at least 1", *spec.BurstSize)
			return nil
		}
		burst = *spec.BurstSize
	}
	if old != nil && old.rps == rps && old.burst == burst {
		return old
	}
	return &rateState{rps: rps, burst: burst, lim: NewRateLimiter(rps, burst)}
}

// concurrencyLimiter validates a concurrency limit and returns a limiter.
func (b *builder) concurrencyLimiter(place string, spec *ConcurrencyLimitSpec) *ConcurrencyLimiter {
	if spec.MaxConcurrentRequests < 1 {
		b.errorf(place+".max_concurrent_requests", "%d; want at least 1", spec.MaxConcurrentRequests)
		return nil
	}
	return NewConcurrencyLimiterWithLimit(spec.MaxConcurrentRequests)
}

// checkHeaders validates response headers.
func (b *builder) checkHeaders(place string, headers map[string]string) {
	for _, name := range sortedKeys(headers) {
		if !validHeaderName(name) {
			b.errorf(place, "%q is not a valid header name", name)
		} else if !validHeaderValue(headers[name]) {
			b.errorf(fmt.Sprintf("%s[%q]", place, name), "value holds a control character")
		}
	}
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

// validHeaderName reports whether name is an HTTP token (RFC 9110).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v holds no control character but tab.
func validHeaderValue(v string) bool {
	for _, c := range []byte(v) {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
