package pool

import (
	"crypto/sha256"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"strings"
	"time"
)

// This file checks a whole config as Parse reads it: what the JSON can
// say that the Go API cannot (milliseconds, header names, the forms of a
// target, redirects to other aliases), then, for each setting, the rules
// of validate.go. It builds nothing.

// validator checks a whole config; it builds nothing.
type validator struct {
	cfg     *Config
	errs    []*FieldError
	warns   []ConfigWarning
	defKeys map[string]bool // key-definition names
}

// validateConfig returns every problem of cfg and every warning.
func validateConfig(cfg *Config) ([]*FieldError, []ConfigWarning) {
	v := &validator{cfg: cfg, defKeys: make(map[string]bool)}
	v.keyDefinitions()
	if cfg.Auth != nil {
		v.keyList("auth.global_keys", cfg.Auth.GlobalKeys)
	}
	if len(cfg.Targets) == 0 {
		v.add(fieldErr("targets", "no aliases; a config needs at least one target"))
	}
	if s := cfg.SharedState; s != nil {
		v.sharedState(s)
	}
	if p := cfg.HTTPPool; p != nil {
		v.httpPool(p)
	}
	for _, alias := range sortedKeys(cfg.Targets) {
		v.alias(alias, cfg.Targets[alias])
	}
	return v.errs, v.warns
}

func (v *validator) add(errs ...*FieldError) {
	for _, e := range errs {
		if e != nil {
			v.errs = append(v.errs, e)
		}
	}
}

func (v *validator) warn(place, format string, args ...any) {
	v.warns = append(v.warns, ConfigWarning{Place: place, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) keyDefinitions() {
	if v.cfg.Auth == nil {
		return
	}
	seen := make(map[[sha256.Size]byte]string)
	for _, name := range sortedKeys(v.cfg.Auth.KeyDefinitions) {
		def, place := v.cfg.Auth.KeyDefinitions[name], fmt.Sprintf("auth.key_definitions[%q]", name)
		v.defKeys[name] = true
		if def.Key == "" {
			v.add(fieldErr(place+".key", "missing; a key definition needs the key it describes"))
		} else if digest := sha256.Sum256([]byte(def.Key)); seen[digest] != "" {
			v.add(fieldErr(place+".key", "the same key as %s; a key has one definition", seen[digest]))
		} else {
			seen[digest] = place
		}
		v.rate(place+".rate_limit", def.RateLimit)
		v.concurrency(place+".concurrency_limit", def.ConcurrencyLimit, "this key")
	}
}

// keyList checks entries of "keys" or "global_keys".
func (v *validator) keyList(place string, entries []string) {
	for i, entry := range entries {
		if entry == "" {
			v.add(fieldErr(fmt.Sprintf("%s[%d]", place, i), "empty key"))
		}
	}
}

// concurrency checks a concurrency limit; 0 loads, with a warning.
func (v *validator) concurrency(place string, spec *ConcurrencyLimitSpec, whose string) {
	if spec == nil {
		return
	}
	place += ".max_concurrent_requests"
	if err := checkLimit(place, int64(spec.MaxConcurrentRequests)); err != nil {
		v.add(err)
	} else if spec.MaxConcurrentRequests == 0 {
		v.warn(place, "0 refuses every request to %s with a 429, as in onwards", whose)
	}
}

// alias checks the target of one alias.
func (v *validator) alias(alias string, t TargetConfig) {
	place := fmt.Sprintf("targets[%q]", alias)
	if alias == "" {
		v.add(fieldErr(place, "empty alias"))
	}
	plan := planOf(alias, t)
	if plan == nil {
		v.add(fieldErr(place, "empty target; want a url, a providers array or a list of targets"))
		return
	}
	v.listAgrees(plan)
	if len(plan.providers) == 0 {
		v.warn(plan.providersPlace, "no providers; every request for %q gets a 503, as in onwards", alias)
	}
	for _, pp := range plan.providers {
		v.provider(pp)
	}
	v.poolFields(plan)
	v.rules(alias, plan)
}

// listAgrees checks that every entry of a legacy list agrees with the
// first on the pool-level fields, which the list takes from its first.
func (v *validator) listAgrees(plan *poolPlan) {
	if len(plan.list) < 2 {
		return
	}
	first := &plan.list[0]
	for i := 1; i < len(plan.list); i++ {
		entry, ep := &plan.list[i], fmt.Sprintf("%s[%d]", plan.providersPlace, i)
		if (entry.Trusted != nil && *entry.Trusted) != plan.trusted {
			v.add(fieldErr(ep+".trusted", "disagrees with %s[0]; every entry of a list must agree on trusted", plan.providersPlace))
		}
		for _, f := range []struct {
			name      string
			got, want any
		}{
			{"keys", entry.Keys, first.Keys}, {"strategy", entry.Strategy, first.Strategy},
			{"fallback", entry.Fallback, first.Fallback}, {"routing_rules", entry.RoutingRules, first.RoutingRules},
		} {
			if !reflect.ValueOf(f.got).IsZero() && !reflect.DeepEqual(f.got, f.want) {
				v.add(fieldErr(ep+"."+f.name, "differs from %s[0]; a list takes its pool settings from its first entry", plan.providersPlace))
			}
		}
	}
}

// provider checks one provider spec.
func (v *validator) provider(pp plannedProvider) {
	spec, place := pp.spec, pp.place
	if _, err := parseBaseURL(spec.URL); err != nil {
		v.add(fieldErr(place+".url", "%v", err))
	}
	if spec.Weight != nil && (*spec.Weight < 0 || *spec.Weight > math.MaxUint32) {
		v.add(fieldErr(place+".weight", "%d is out of range; want 0 to %d", *spec.Weight, uint32(math.MaxUint32)))
	}
	if n := spec.UpstreamAuthHeaderName; n != nil && !validHeaderName(*n) {
		v.add(fieldErr(place+".upstream_auth_header_name", "%q is not a valid header name", *n))
	}
	if p := spec.UpstreamAuthHeaderPrefix; p != nil && !validHeaderValue(*p) {
		v.add(fieldErr(place+".upstream_auth_header_prefix", "holds a control character"))
	}
	if s := spec.RequestTimeoutSecs; s != nil && (*s < 1 || *s > math.MaxInt64/int64(time.Second)) {
		v.add(fieldErr(place+".request_timeout_secs", "%d; want at least 1, or leave it out for no timeout", *s))
	}
	v.add(checkHeaders(place+".response_headers", spec.ResponseHeaders)...)
	v.rate(place+".rate_limit", spec.RateLimit)
	if spec.RateLimit.hasTokens() && !pp.single {
		v.add(fieldErr(place+".rate_limit.tokens_per_minute",
			"a provider of a pool has no token limit; set it on the alias's rate_limit or on a key definition's"))
	}
	v.concurrency(place+".concurrency_limit", spec.ConcurrencyLimit, "this provider")
	if spec.Serves != "" {
		var sv Serves
		if err := sv.UnmarshalText([]byte(spec.Serves)); err != nil {
			v.add(fieldErr(place+".serves", "%v", err))
		}
	}
}

// poolFields checks the pool-level fields of a plan.
func (v *validator) poolFields(plan *poolPlan) {
	v.keyList(plan.base+".keys", plan.keys)
	v.add(checkHeaders(plan.base+".response_headers", plan.responseHeaders)...)
	if plan.strategy != "" {
		var s LoadBalanceStrategy
		if err := s.UnmarshalText([]byte(plan.strategy)); err != nil {
			v.add(fieldErr(plan.base+".strategy", "%v", err))
		}
	}
	v.rate(plan.base+".rate_limit", plan.rate)
	v.concurrency(plan.base+".concurrency_limit", plan.conc, "this alias")
	if f := plan.fallback; f != nil {
		v.fallbackSpec(plan.base+".fallback", f)
		v.loadAware(plan)
	}
	v.inflight(plan)
	if o := plan.outlier; o != nil {
		v.msField(plan.base+".outlier_detection.base_ejection_ms", o.BaseEjectionMs)
		v.msField(plan.base+".outlier_detection.max_ejection_ms", o.MaxEjectionMs)
		v.add(checkOutlier(plan.base+".outlier_detection", o.config())...)
	}
	if b := plan.budget; b != nil {
		v.msField(plan.base+".retry_budget.ttl_ms", b.TTLMs)
		v.add(checkRetryBudget(plan.base+".retry_budget", b.config())...)
	}
}

// fallbackSpec checks a fallback as written: its milliseconds and jitter,
// then the rules of FallbackConfig.
func (v *validator) fallbackSpec(place string, f *FallbackSpec) {
	if b := f.Backoff; b != nil {
		v.msField(place+".backoff.initial_ms", b.InitialMs)
		if b.MaxMs != nil {
			v.msField(place+".backoff.max_ms", *b.MaxMs)
		}
		if b.Jitter != "" && b.Jitter != "full" && b.Jitter != "none" {
			v.add(fieldErr(place+".backoff.jitter", "%q; want \"full\" or \"none\"", b.Jitter))
		}
	}
	if f.MaxTotalBackoffMs != nil {
		v.msField(place+".max_total_backoff_ms", *f.MaxTotalBackoffMs)
	}
	if f.FirstTokenTimeoutMs != nil {
		v.msField(place+".first_token_timeout_ms", *f.FirstTokenTimeoutMs)
	}
	v.add(checkFallback(place, f.config())...)
}

// msField checks that a count of milliseconds fits a time.Duration; its
// sign is checked with the Go value it becomes.
func (v *validator) msField(place string, n int64) {
	if n > maxMs {
		v.add(fieldErr(place, "%d is too large; want at most %d", n, maxMs))
	}
}

// sharedState checks the shared_state object.
func (v *validator) sharedState(s *SharedStateSpec) {
	u, err := url.Parse(s.RedisURL)
	switch {
	case s.RedisURL == "":
		v.add(fieldErr("shared_state.redis_url", "missing; want redis://host:port/db"))
	case err != nil:
		v.add(fieldErr("shared_state.redis_url", "not a valid URL; want redis://host:port/db"))
	case u.Scheme != "redis" && u.Scheme != "rediss" || u.Host == "":
		v.add(fieldErr("shared_state.redis_url", "%q; want redis://host:port/db or rediss://", u.Redacted()))
	}
	if s.LeaseTTLMs != 0 && (s.LeaseTTLMs < 1000 || s.LeaseTTLMs > maxMs) {
		v.add(fieldErr("shared_state.lease_ttl_ms", "%d; want at least 1000, or 0 for 30000", s.LeaseTTLMs))
	}
	if s.OnRedisError != "" && s.OnRedisError != "fail_open" && s.OnRedisError != "fail_closed" {
		v.add(fieldErr("shared_state.on_redis_error", "%q; want \"fail_open\" or \"fail_closed\"", s.OnRedisError))
	}
	if s.Replicas < 0 {
		v.add(fieldErr("shared_state.replicas", "%d is negative", s.Replicas))
	}
}

// httpPool checks the http_pool object. Onwards reads both of its counts
// as unsigned, so a negative one fails there too.
func (v *validator) httpPool(p *HTTPPoolSpec) {
	if n := p.MaxIdlePerHost; n != nil && *n < 0 {
		v.add(fieldErr("http_pool.max_idle_per_host", "%d is negative; want 0 (keep none) or more, or leave it out for 100", *n))
	}
	if s := p.IdleTimeoutSecs; s != nil && (*s < 0 || int64(*s) > math.MaxInt64/int64(time.Second)) {
		v.add(fieldErr("http_pool.idle_timeout_secs", "%d is out of range; want 0 (keep none) or more seconds, or leave it out for 90", *s))
	}
}

// rules checks the routing rules of a plan.
func (v *validator) rules(alias string, plan *poolPlan) {
	for i, rule := range plan.rules {
		rp := fmt.Sprintf("%s.routing_rules[%d]", plan.base, i)
		if err := checkRoutingAction(rp, rule.Action); err != nil {
			v.add(err)
			continue
		}
		if rule.Action.Type != ActionRedirect {
			continue
		}
		switch target := rule.Action.Target; {
		case target == "":
			v.warn(rp+".action.target", "empty; a request this rule matches gets a 503, as in onwards")
		case target == alias:
			v.add(fieldErr(rp+".action.target", "redirects %q to itself", alias))
		default:
			if _, ok := v.cfg.Targets[target]; !ok {
				v.warn(rp+".action.target", "redirects to %q, which is not an alias of this config; a request this rule matches gets a 503", target)
			}
		}
	}
}

// rate checks the rate limit at place, if there is one.
func (v *validator) rate(place string, spec *RateLimitSpec) {
	if spec != nil {
		_, err := checkRate(place, spec)
		v.add(err)
	}
}

// checkRate validates a rate limit at place and returns the burst of its
// request form, or 0 when it has only its token form.
func checkRate(place string, spec *RateLimitSpec) (burst int, err *FieldError) {
	if spec.hasTokens() {
		if _, err := checkTokenRate(place, spec); err != nil {
			return 0, err
		}
	}
	if !spec.hasRequests() {
		return 0, nil
	}
	rps := spec.RequestsPerSecond
	if !(rps > 0) || math.IsInf(rps, 0) {
		return 0, fieldErr(place+".requests_per_second", "%v; want a number above 0", rps)
	}
	burst = int(math.Min(math.Ceil(rps), math.MaxInt32))
	if spec.BurstSize != nil {
		if *spec.BurstSize < 1 {
			return 0, fieldErr(place+".burst_size", "%d; want at least 1", *spec.BurstSize)
		}
		burst = *spec.BurstSize
	}
	return burst, nil
}

// checkTokenRate validates the token form of a rate limit at place and
// returns its burst.
func checkTokenRate(place string, spec *RateLimitSpec) (burst int64, err *FieldError) {
	if spec.TokensPerMinute < 1 {
		return 0, fieldErr(place+".tokens_per_minute", "%d; want at least 1", spec.TokensPerMinute)
	}
	burst = spec.TokensPerMinute
	if b := spec.TokenBurstSize; b != nil {
		if *b < 1 {
			return 0, fieldErr(place+".token_burst_size", "%d; want at least 1", *b)
		}
		burst = *b
	}
	return burst, nil
}

// checkHeaders validates response headers at place.
func checkHeaders(place string, headers map[string]string) []*FieldError {
	var errs []*FieldError
	for _, name := range sortedKeys(headers) {
		if !validHeaderName(name) {
			errs = append(errs, fieldErr(place, "%q is not a valid header name", name))
		} else if !validHeaderValue(headers[name]) {
			errs = append(errs, fieldErr(fmt.Sprintf("%s[%q]", place, name), "value holds a control character"))
		}
	}
	return errs
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

// loadAware checks a fallback's aimd and affinity objects.
func (v *validator) loadAware(plan *poolPlan) {
	f, place := plan.fallback, plan.base+".fallback"
	priority := plan.strategy == Priority.String()
	if f.AIMD != nil && f.AIMD.enabled() {
		a := f.AIMD.config()
		v.add(checkAIMD(place+".aimd", a)...)
		if t := f.FirstTokenTimeoutMs; t != nil && *t > 0 && ms(*t) < a.LatencyBudget {
			v.add(fieldErr(place+".first_token_timeout_ms", "%d ms is below aimd.latency_budget_ms (%v); "+
				"want 0 (no deadline) or at least the budget, which the controller never lengthens", *t, a.LatencyBudget))
		}
		if !priority {
			v.warn(place+".aimd", "acts on priority pools only; this pool's strategy is %q, so it does nothing", strategyName(plan.strategy))
		}
	}
	if f.Affinity != nil && f.Affinity.enabled() {
		v.add(checkAffinity(place+".affinity", f.Affinity.config())...)
	}
}

// strategyName is a plan's strategy as written, or the default's name.
func strategyName(s string) string {
	if s == "" {
		return WeightedRandom.String()
	}
	return s
}

// inflight checks a pool's in-flight limits and serving classes.
func (v *validator) inflight(plan *poolPlan) {
	limit := func(place string, n *int64) {
		switch {
		case n == nil:
		case *n < 0 || *n > math.MaxUint32:
			v.add(fieldErr(place, "%d is out of range; want 0 to %d", *n, uint32(math.MaxUint32)))
		case *n == 0:
			v.warn(place, "is 0: every request it counts is refused")
		}
	}
	limit(plan.base+".inflight_limit", plan.inflight)
	limit(plan.base+".batch_inflight_limit", plan.batchInflight)
	for _, account := range sortedKeys(plan.accountLimits) {
		n, place := plan.accountLimits[account], fmt.Sprintf("%s.account_inflight_limits[%q]", plan.base, account)
		if account == "" {
			v.add(fieldErr(place, "empty account name; name the account as its keys' %q label does", AccountLabel))
		}
		limit(place, &n)
	}
	for i, c := range plan.servingClasses {
		if c != "interactive" && c != "throughput" && c != "standard" {
			v.add(fieldErr(fmt.Sprintf("%s.serving_classes[%d]", plan.base, i),
				"%q is not a serving class; want \"interactive\", \"throughput\" or \"standard\"", c))
		}
	}
}
