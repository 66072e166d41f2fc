package pool

import "fmt"

// plannedProvider is a provider spec and the place it was written.
type plannedProvider struct {
	place  string
	spec   *ProviderSpec
	single bool // a single target's: the token form of its rate_limit is the alias's
}

// poolPlan is a target of any of the three forms, reduced to one shape, so
// that validation and building each have one walk.
type poolPlan struct {
	base            string // the place of the pool-level fields
	keys            []string
	strategy        string
	rate            *RateLimitSpec
	tokens          *RateLimitSpec // the alias's token limit, or nil
	conc            *ConcurrencyLimitSpec
	fallback        *FallbackSpec
	outlier         *OutlierDetectionSpec
	budget          *RetryBudgetSpec
	rules           []RoutingRule
	responseHeaders map[string]string
	trusted         bool
	sanitize        bool
	providerTrust   bool // whether providers' own trusted fields apply
	providers       []plannedProvider
	providersPlace  string
	list            []TargetSpec // the legacy list it came from, if any
	inflight        *int64
	accountLimits   map[string]int64
	batchInflight   *int64
	servingClasses  []string
}

// planOf reduces the target of alias to a poolPlan. A target with no form
// set (written in Go, not read from JSON) gives nil.
func planOf(alias string, t TargetConfig) *poolPlan {
	place := fmt.Sprintf("targets[%q]", alias)
	switch {
	case t.Pool != nil:
		p := t.Pool
		plan := &poolPlan{
			keys: p.Keys, strategy: p.Strategy, rate: p.RateLimit, conc: p.ConcurrencyLimit,
			fallback: p.Fallback, rules: p.RoutingRules, responseHeaders: p.ResponseHeaders,
			outlier: p.OutlierDetection, budget: p.RetryBudget,
			trusted: p.Trusted != nil && *p.Trusted, sanitize: p.SanitizeResponse, providerTrust: true,
			base: place, providersPlace: place + ".providers",
			inflight: p.InflightLimit, accountLimits: p.AccountInflightLimits, batchInflight: p.BatchInflightLimit,
			servingClasses: p.ServingClasses,
		}
		if p.RateLimit.hasTokens() {
			plan.tokens = p.RateLimit
		}
		for i := range p.Providers {
			plan.providers = append(plan.providers, plannedProvider{fmt.Sprintf("%s.providers[%d]", place, i), &p.Providers[i], false})
		}
		return plan
	case t.List != nil:
		if len(t.List) == 0 {
			return &poolPlan{base: place, providersPlace: place, list: t.List}
		}
		plan := singlePlan(place+"[0]", &t.List[0])
		plan.providersPlace, plan.list, plan.providers, plan.tokens = place, t.List, nil, nil
		for i := range t.List {
			plan.providers = append(plan.providers, plannedProvider{fmt.Sprintf("%s[%d]", place, i), &t.List[i].ProviderSpec, false})
		}
		return plan
	case t.Single != nil:
		return singlePlan(place, t.Single)
	}
	return nil
}

// singlePlan is the plan of a single target at place: its keys and trusted
// are the pool's, its limits its provider's.
func singlePlan(place string, t *TargetSpec) *poolPlan {
	plan := &poolPlan{
		keys: t.Keys, strategy: t.Strategy, fallback: t.Fallback, rules: t.RoutingRules,
		outlier: t.OutlierDetection, budget: t.RetryBudget,
		trusted:   t.Trusted != nil && *t.Trusted,
		sanitize:  t.SanitizeResponse,
		providers: []plannedProvider{{place, &t.ProviderSpec, true}},
		base:      place, providersPlace: place,
		inflight: t.InflightLimit, accountLimits: t.AccountInflightLimits, batchInflight: t.BatchInflightLimit,
		servingClasses: t.ServingClasses,
	}
	if t.RateLimit.hasTokens() {
		plan.tokens = t.RateLimit
	}
	return plan
}
