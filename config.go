package pool

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
)

// Config is an onwards config file (onwards' ConfigFile), as ParseConfig
// reads it. Build a [Registry] from it to serve requests.
//
// StrictMode, SanitizeResponse and Trusted are acted on by package
// gateway, and HTTPPool by gateway.NewTransportFor and NewClientFor;
// OpenResponses is kept for
// the caller. Fields that
// newer onwards versions define are accepted and kept too, and NotActedOn
// lists where they appear.
type Config struct {
	// Auth holds the global keys and the key definitions. Nil: none.
	Auth *AuthSpec `json:"auth,omitempty"`

	// Targets maps each model alias to its pool. It must name at least one
	// alias.
	Targets map[string]TargetConfig `json:"targets"`

	// StrictMode is onwards' strict mode: the gateway package serves only
	// OpenAI's chat completions, embeddings, responses and models, validates
	// requests, sanitizes answers and standardizes errors.
	StrictMode bool `json:"strict_mode,omitempty"`

	// HTTPPool tunes the proxy's upstream connections:
	// gateway.NewTransportFor and gateway.NewClientFor build from it, as
	// onwards builds its client at start.
	HTTPPool *HTTPPoolSpec `json:"http_pool,omitempty"`

	// SharedState is this library's extension for limits shared across
	// replicas on Redis. The pool package keeps it; the poolredis module
	// builds a [SharedState] from it (poolredis.FromConfig). Nil: none.
	SharedState *SharedStateSpec `json:"shared_state,omitempty"`

	// OpenResponses configures onwards' Open Responses adapter, kept as
	// written (not acted on here).
	OpenResponses json.RawMessage `json:"open_responses,omitempty"`

	// NotActedOn lists, by place, the fields of newer onwards versions that
	// the file sets and that this library accepts and keeps but does not
	// act on, such as targets["gpt-4o"].fallback.backoff. ParseConfig fills
	// it in.
	NotActedOn []string `json:"-"`

	// Warnings lists what loads but may not do what the author meant (a
	// pool with no providers, a redirect to no alias, a limit of 0), and,
	// when parsed with AllowUnknownFields, the unknown fields, in file
	// order. ParseConfig fills it in; log each when the config is loaded.
	Warnings []ConfigWarning `json:"-"`
}

// AuthSpec is the config's "auth" object.
type AuthSpec struct {
	// GlobalKeys are added to the keys of every alias; an alias without
	// keys of its own gets them, so once GlobalKeys is set, every alias
	// needs a key.
	GlobalKeys []string `json:"global_keys,omitempty"`

	// KeyDefinitions gives keys labels and per-key limits, by a name that
	// "keys" and "global_keys" may use in place of the key. A definition
	// grants no access by itself.
	KeyDefinitions map[string]KeyDefinition `json:"key_definitions,omitempty"`
}

// KeyDefinition is one entry of auth.key_definitions.
type KeyDefinition struct {
	// Key is the API key the caller sends as a bearer token. Required.
	Key string `json:"key"`
	// Labels are matched by routing rules.
	Labels map[string]string `json:"labels,omitempty"`
	// RateLimit limits this key's requests across all aliases. Nil: none.
	RateLimit *RateLimitSpec `json:"rate_limit,omitempty"`
	// ConcurrencyLimit limits this key's requests in flight across all
	// aliases. Nil: none.
	ConcurrencyLimit *ConcurrencyLimitSpec `json:"concurrency_limit,omitempty"`
}

// RateLimitSpec is a token bucket of requests: requests_per_second,
// refilled continuously, up to burst_size at once; and, in its token
// form, a bucket of LLM tokens: tokens_per_minute, up to token_burst_size
// at once. Either form or both may be set. The token form limits an
// alias (a single target's rate_limit is its alias's for tokens) or a key
// definition, not a provider of a pool; see [Admission.ReserveTokens].
type RateLimitSpec struct {
	// RequestsPerSecond must be a finite number above 0, unless the spec
	// has only its token form, when it is left out.
	RequestsPerSecond float64 `json:"requests_per_second,omitempty"`
	// BurstSize must be at least 1. Nil: RequestsPerSecond rounded up.
	BurstSize *int `json:"burst_size,omitempty"`
	// TokensPerMinute, at least 1, limits the tokens (prompt and
	// completion) of requests. 0: no token limit.
	TokensPerMinute int64 `json:"tokens_per_minute,omitempty"`
	// TokenBurstSize, at least 1, is the most tokens spent at once. Nil:
	// TokensPerMinute.
	TokenBurstSize *int64 `json:"token_burst_size,omitempty"`
}

// hasTokens reports whether spec has its token form.
func (spec *RateLimitSpec) hasTokens() bool {
	return spec != nil && (spec.TokensPerMinute != 0 || spec.TokenBurstSize != nil)
}

// hasRequests reports whether spec has its request form.
func (spec *RateLimitSpec) hasRequests() bool {
	return spec != nil && (spec.RequestsPerSecond != 0 || spec.BurstSize != nil || !spec.hasTokens())
}

// ConcurrencyLimitSpec caps the requests in flight.
type ConcurrencyLimitSpec struct {
	// MaxConcurrentRequests must be 0 or more; 0 refuses every request
	// (with a warning at load, as onwards accepts it).
	MaxConcurrentRequests int `json:"max_concurrent_requests"`
}

// SharedStateSpec is the config's "shared_state" object.
type SharedStateSpec struct {
	// RedisURL is where the replicas share their limits:
	// redis://[user:password@]host:port/db or rediss:// for TLS. Required.
	RedisURL string `json:"redis_url"`
	// LeaseTTLMs is how long a concurrency slot outlives a replica that
	// stopped renewing it (crashed), in ms, at least 1000. 0: 30000.
	LeaseTTLMs int64 `json:"lease_ttl_ms,omitempty"`
	// OnRedisError is "fail_open" (the default: each replica enforces its
	// share of each limit, limit/replicas, while Redis is unreachable) or
	// "fail_closed" (refuse what needs Redis).
	OnRedisError string `json:"on_redis_error,omitempty"`
	// Replicas is how many replicas share the limits, for fail_open's
	// share. 0: 1, each replica enforces the whole limit.
	Replicas int `json:"replicas,omitempty"`
}

// HTTPPoolSpec is the config's "http_pool" object: the idle connections of
// the upstream client. The pool package only checks it; gateway's
// NewTransportFor and NewClientFor build from it.
type HTTPPoolSpec struct {
	// MaxIdlePerHost is the idle connections kept per upstream host.
	MaxIdlePerHost *int `json:"max_idle_per_host,omitempty"`
	// IdleTimeoutSecs is how long an idle connection is kept.
	IdleTimeoutSecs *int `json:"idle_timeout_secs,omitempty"`
}

// FallbackSpec is a pool's "fallback" object: [FallbackConfig] as written
// in a file.
type FallbackSpec struct {
	// Enabled, OnStatus, OnRateLimit and WithReplacement are those of
	// FallbackConfig.
	Enabled         bool  `json:"enabled,omitempty"`
	OnStatus        []int `json:"on_status,omitempty"`
	OnRateLimit     bool  `json:"on_rate_limit,omitempty"`
	WithReplacement bool  `json:"with_replacement,omitempty"`
	// MaxAttempts caps the providers tried for one request; 0 or more, as
	// FallbackConfig.MaxAttempts. Nil or 0: one attempt per provider.
	MaxAttempts *int `json:"max_attempts,omitempty"`

	// Backoff is the wait before each retry (onwards 0.29). Nil: none.
	Backoff *BackoffSpec `json:"backoff,omitempty"`
	// MaxTotalBackoffMs caps a request's total wait, 0 or more. Nil: no cap.
	MaxTotalBackoffMs *int64 `json:"max_total_backoff_ms,omitempty"`

	// FirstTokenTimeoutMs is FallbackConfig.FirstTokenTimeout (onwards
	// 2.0), 0 or more. Nil or 0: no deadline.
	FirstTokenTimeoutMs *int64 `json:"first_token_timeout_ms,omitempty"`
	// RealtimeOnStatus is FallbackConfig.RealtimeOnStatus (onwards 2.0).
	RealtimeOnStatus []int `json:"realtime_on_status,omitempty"`
	// AIMD configures a priority pool's preferred-share controller, on by
	// default (onwards 2.0); see [AIMDSpec].
	AIMD *AIMDSpec `json:"aimd,omitempty"`
	// Affinity keeps conversations on a provider (onwards 2.0). Nil: off.
	Affinity *AffinitySpec `json:"affinity,omitempty"`
}

// BackoffSpec is a fallback's "backoff" object: [Backoff] as written in a
// file.
type BackoffSpec struct {
	// InitialMs is the delay before the first retry, in ms, 0 or more.
	InitialMs int64 `json:"initial_ms"`
	// MaxMs caps a delay. Nil: 5000.
	MaxMs *int64 `json:"max_ms,omitempty"`
	// Factor multiplies the delay per retry, 1 or more. Nil: 2.0.
	Factor *float64 `json:"factor,omitempty"`
	// Jitter is "full" (the default: a wait drawn from [0, delay]) or
	// "none".
	Jitter string `json:"jitter,omitempty"`
}

// OutlierDetectionSpec is a pool's "outlier_detection" object, an extension
// of this library: [OutlierDetection] as written in a file. Zero or absent
// fields take the defaults.
type OutlierDetectionSpec struct {
	// ConsecutiveFailures in a row eject a provider. 0: 5.
	ConsecutiveFailures int `json:"consecutive_failures,omitempty"`
	// BaseEjectionMs is the first ejection's length. 0: 30000.
	BaseEjectionMs int64 `json:"base_ejection_ms,omitempty"`
	// MaxEjectionMs caps an ejection. 0: 300000.
	MaxEjectionMs int64 `json:"max_ejection_ms,omitempty"`
	// MaxEjectionPercent of the pool may be ejected at once. 0: 50.
	MaxEjectionPercent int `json:"max_ejection_percent,omitempty"`
	// RespectRetryAfter cools a provider down for its 429's or 503's
	// Retry-After. Nil: true.
	RespectRetryAfter *bool `json:"respect_retry_after,omitempty"`
}

// RetryBudgetSpec is a pool's "retry_budget" object, an extension of this
// library: [RetryBudget] as written in a file. Zero or absent fields take
// the defaults.
type RetryBudgetSpec struct {
	// TTLMs is the window a request or a retry counts in. 0: 10000.
	TTLMs int64 `json:"ttl_ms,omitempty"`
	// MinRetriesPerSec may always be spent. 0: 10.
	MinRetriesPerSec int `json:"min_retries_per_sec,omitempty"`
	// PercentCanRetry of the requests may be retried on top. 0: 20.
	PercentCanRetry int `json:"percent_can_retry,omitempty"`
}

func (s *OutlierDetectionSpec) config() OutlierDetection {
	return OutlierDetection{
		ConsecutiveFailures: s.ConsecutiveFailures,
		BaseEjection:        ms(s.BaseEjectionMs),
		MaxEjection:         ms(s.MaxEjectionMs),
		MaxEjectionPercent:  s.MaxEjectionPercent,
		IgnoreRetryAfter:    s.RespectRetryAfter != nil && !*s.RespectRetryAfter,
	}
}

func (s *RetryBudgetSpec) config() RetryBudget {
	return RetryBudget{TTL: ms(s.TTLMs), MinRetriesPerSecond: s.MinRetriesPerSec, PercentCanRetry: s.PercentCanRetry}
}

// config returns the FallbackConfig that f writes.
func (f *FallbackSpec) config() FallbackConfig {
	fc := FallbackConfig{Enabled: f.Enabled, OnStatus: f.OnStatus, OnRateLimit: f.OnRateLimit, WithReplacement: f.WithReplacement}
	if f.MaxAttempts != nil {
		fc.MaxAttempts = *f.MaxAttempts
	}
	if f.MaxTotalBackoffMs != nil {
		fc.MaxTotalBackoff = ms(*f.MaxTotalBackoffMs)
	}
	if f.FirstTokenTimeoutMs != nil {
		fc.FirstTokenTimeout = ms(*f.FirstTokenTimeoutMs)
	}
	fc.RealtimeOnStatus = f.RealtimeOnStatus
	if b := f.Backoff; b != nil {
		fc.Backoff = Backoff{Initial: ms(b.InitialMs), Max: DefaultMaxBackoff, Factor: DefaultBackoffFactor, NoJitter: b.Jitter == "none"}
		if b.MaxMs != nil {
			fc.Backoff.Max = ms(*b.MaxMs)
		}
		if b.Factor != nil {
			fc.Backoff.Factor = *b.Factor
		}
	}
	return fc
}

// ProviderSpec is one upstream: an entry of a pool's "providers", and the
// fields a single target shares with it.
type ProviderSpec struct {
	// URL is the upstream's absolute http(s) base URL. Required.
	URL string `json:"url"`
	// OnwardsKey is the API key sent upstream.
	OnwardsKey string `json:"onwards_key,omitempty"`
	// OnwardsModel replaces the request's model name upstream.
	OnwardsModel string `json:"onwards_model,omitempty"`
	// Weight is the share of traffic, 0 to 4294967295. Nil: 1. 0 drains
	// the provider under weighted_random.
	Weight *int64 `json:"weight,omitempty"`
	// RateLimit limits requests to this provider. Nil: none.
	RateLimit *RateLimitSpec `json:"rate_limit,omitempty"`
	// ConcurrencyLimit caps requests in flight to this provider. Nil: none.
	ConcurrencyLimit *ConcurrencyLimitSpec `json:"concurrency_limit,omitempty"`
	// RequestTimeoutSecs bounds the wait for response headers; at least 1.
	// Nil: none.
	RequestTimeoutSecs *int64 `json:"request_timeout_secs,omitempty"`
	// UpstreamAuthHeaderName carries OnwardsKey. Nil: "Authorization".
	UpstreamAuthHeaderName *string `json:"upstream_auth_header_name,omitempty"`
	// UpstreamAuthHeaderPrefix precedes OnwardsKey. Nil: "Bearer ".
	UpstreamAuthHeaderPrefix *string `json:"upstream_auth_header_prefix,omitempty"`
	// ResponseHeaders are added to responses from this provider, over the
	// pool's.
	ResponseHeaders map[string]string `json:"response_headers,omitempty"`
	// SanitizeResponse re-encodes chat completions with OpenAI's fields
	// only (acted on by the gateway package).
	SanitizeResponse bool `json:"sanitize_response,omitempty"`
	// Trusted overrides the pool's trusted setting. Nil: inherit.
	Trusted *bool `json:"trusted,omitempty"`
	// Serves is "both" (the default), "chat" or "completions": which
	// requests the provider takes (onwards 2.0); see [Serves].
	Serves string `json:"serves,omitempty"`

	// Kind is a field of onwards 2.0 kept as written and not acted on
	// here; NotActedOn lists where it is set.
	Kind json.RawMessage `json:"kind,omitempty"`

	// PropagateTraceContext, ReasoningTranslation and OpenResponses are
	// defined by newer onwards versions; they are kept but not acted on.
	PropagateTraceContext *bool           `json:"propagate_trace_context,omitempty"`
	ReasoningTranslation  json.RawMessage `json:"reasoning_translation,omitempty"`
	OpenResponses         json.RawMessage `json:"open_responses,omitempty"`
}

// TargetSpec is a single target: one provider plus the settings of the
// pool it makes. Its keys and trusted become the pool's; its rate and
// concurrency limits are the provider's.
type TargetSpec struct {
	ProviderSpec
	// Keys may call the alias, by key or by key-definition name.
	Keys []string `json:"keys,omitempty"`
	// Strategy, Fallback and RoutingRules are those of PoolSpec.
	Strategy     string        `json:"strategy,omitempty"`
	Fallback     *FallbackSpec `json:"fallback,omitempty"`
	RoutingRules []RoutingRule `json:"routing_rules,omitempty"`
	// OutlierDetection and RetryBudget are those of PoolSpec.
	OutlierDetection *OutlierDetectionSpec `json:"outlier_detection,omitempty"`
	RetryBudget      *RetryBudgetSpec      `json:"retry_budget,omitempty"`
	// InflightLimit caps each account's realtime requests in flight on the
	// alias, 0 to 4294967295 (onwards 2.0); an account is a key's
	// "account" label. Nil: no limit but AccountInflightLimits'.
	InflightLimit *int64 `json:"inflight_limit,omitempty"`
	// AccountInflightLimits overrides InflightLimit for named accounts.
	AccountInflightLimits map[string]int64 `json:"account_inflight_limits,omitempty"`
	// BatchInflightLimit caps the alias's dispatched (batch) requests in
	// flight, 0 to 4294967295. Nil: uncapped.
	BatchInflightLimit *int64 `json:"batch_inflight_limit,omitempty"`
	// ServingClasses lists the elevated serving classes the model has
	// activated ("interactive", "throughput"; onwards 2.0), kept and not
	// acted on here; NotActedOn lists where it is set.
	ServingClasses []string `json:"serving_classes,omitempty"`
}

// PoolSpec is a pool of providers behind one alias.
type PoolSpec struct {
	// Keys may call the alias, by key or by key-definition name.
	Keys []string `json:"keys,omitempty"`
	// Strategy is "weighted_random" (the default), "priority", or one of
	// this library's: "token_aware" ([TokenAware]), "p2c_ewma"
	// ([PeakEWMA]) or "round_robin" ([RoundRobin]).
	Strategy string `json:"strategy,omitempty"`
	// RateLimit limits requests to the alias as a whole. Nil: none.
	RateLimit *RateLimitSpec `json:"rate_limit,omitempty"`
	// ConcurrencyLimit caps requests in flight to the alias. Nil: none.
	ConcurrencyLimit *ConcurrencyLimitSpec `json:"concurrency_limit,omitempty"`
	// Fallback says when a failed request moves on. Nil: never.
	Fallback *FallbackSpec `json:"fallback,omitempty"`
	// RoutingRules are evaluated in order against the key's labels.
	RoutingRules []RoutingRule `json:"routing_rules,omitempty"`
	// OutlierDetection ejects failing providers for a while. Nil: off.
	OutlierDetection *OutlierDetectionSpec `json:"outlier_detection,omitempty"`
	// RetryBudget caps the pool's retries across requests. Nil: off.
	RetryBudget *RetryBudgetSpec `json:"retry_budget,omitempty"`
	// ResponseHeaders are added to every response from the pool; a
	// provider's own headers win over them.
	ResponseHeaders map[string]string `json:"response_headers,omitempty"`
	// Trusted marks the pool trusted. Nil: false.
	Trusted *bool `json:"trusted,omitempty"`
	// SanitizeResponse reaches every provider.
	SanitizeResponse bool `json:"sanitize_response,omitempty"`
	// OpenResponses is kept as written (not acted on here).
	OpenResponses json.RawMessage `json:"open_responses,omitempty"`
	// InflightLimit caps each account's realtime requests in flight on the
	// alias, 0 to 4294967295 (onwards 2.0); an account is a key's
	// "account" label. Nil: no limit but AccountInflightLimits'.
	InflightLimit *int64 `json:"inflight_limit,omitempty"`
	// AccountInflightLimits overrides InflightLimit for named accounts.
	AccountInflightLimits map[string]int64 `json:"account_inflight_limits,omitempty"`
	// BatchInflightLimit caps the alias's dispatched (batch) requests in
	// flight, 0 to 4294967295. Nil: uncapped.
	BatchInflightLimit *int64 `json:"batch_inflight_limit,omitempty"`
	// ServingClasses lists the elevated serving classes the model has
	// activated ("interactive", "throughput"; onwards 2.0), kept and not
	// acted on here; NotActedOn lists where it is set.
	ServingClasses []string `json:"serving_classes,omitempty"`
	// Kind is a field of onwards 2.0 kept as written and not acted on
	// here; NotActedOn lists where it is set.
	Kind json.RawMessage `json:"kind,omitempty"`
	// Providers may be empty: every request then gets a 503 (with a
	// warning at load), as in onwards.
	Providers []ProviderSpec `json:"providers"`
}

// TargetConfig is one alias of the config, in one of onwards' three forms;
// exactly one field is set. In JSON it is a pool (an object with
// "providers"), a legacy list of single targets (an array), or a single
// target (any other object).
type TargetConfig struct {
	Pool   *PoolSpec    // an object with "providers"
	List   []TargetSpec // an array: the legacy list of single targets
	Single *TargetSpec  // any other object
}

// UnmarshalJSON reads whichever of the three forms data holds.
func (t *TargetConfig) UnmarshalJSON(data []byte) error {
	*t = TargetConfig{}
	switch form := targetForm(data); form {
	case formList:
		return json.Unmarshal(data, &t.List)
	case formPool:
		return json.Unmarshal(data, &t.Pool)
	default:
		return json.Unmarshal(data, &t.Single)
	}
}

// MarshalJSON writes the form that is set.
func (t TargetConfig) MarshalJSON() ([]byte, error) {
	switch {
	case t.Pool != nil:
		return json.Marshal(t.Pool)
	case t.List != nil:
		return json.Marshal(t.List)
	default:
		return json.Marshal(t.Single)
	}
}

type targetFormKind int

const (
	formSingle targetFormKind = iota
	formPool
	formList
)

// targetForm tells the three forms of a target apart.
func targetForm(data []byte) targetFormKind {
	b := bytes.TrimSpace(data)
	if len(b) > 0 && b[0] == '[' {
		return formList
	}
	var probe map[string]json.RawMessage
	if json.Unmarshal(b, &probe) == nil {
		if _, ok := probe["providers"]; ok {
			return formPool
		}
	}
	return formSingle
}

var (
	targetConfigType = reflect.TypeFor[TargetConfig]()
	poolSpecType     = reflect.TypeFor[PoolSpec]()
	targetSpecType   = reflect.TypeFor[TargetSpec]()
)

// checkTargetForm walks a target as the form its JSON has.
func checkTargetForm(place string, raw json.RawMessage, t reflect.Type, errs *[]*FieldError) bool {
	if t != targetConfigType {
		return false
	}
	switch targetForm(raw) {
	case formList:
		checkJSON(place, raw, reflect.SliceOf(targetSpecType), errs, checkTargetForm)
	case formPool:
		checkJSON(place, raw, poolSpecType, errs, checkTargetForm)
	default:
		checkJSON(place, raw, targetSpecType, errs, checkTargetForm)
	}
	return true
}

// notActedOn lists the places of the fields of newer onwards versions that
// the config sets.
func (c *Config) notActedOn() []string {
	var out []string
	provider := func(place string, p *ProviderSpec) {
		if p.PropagateTraceContext != nil {
			out = append(out, place+".propagate_trace_context")
		}
		if p.ReasoningTranslation != nil {
			out = append(out, place+".reasoning_translation")
		}
		if p.OpenResponses != nil {
			out = append(out, place+".open_responses")
		}
		if p.Kind != nil {
			out = append(out, place+".kind")
		}
	}
	pool := func(place string, kind json.RawMessage, classes []string) {
		if kind != nil {
			out = append(out, place+".kind")
		}
		if classes != nil {
			out = append(out, place+".serving_classes")
		}
	}
	for _, alias := range sortedKeys(c.Targets) {
		t, place := c.Targets[alias], fmt.Sprintf("targets[%q]", alias)
		switch {
		case t.Pool != nil:
			pool(place, t.Pool.Kind, t.Pool.ServingClasses)
			for i := range t.Pool.Providers {
				provider(fmt.Sprintf("%s.providers[%d]", place, i), &t.Pool.Providers[i])
			}
		case t.List != nil:
			for i := range t.List {
				p := fmt.Sprintf("%s[%d]", place, i)
				provider(p, &t.List[i].ProviderSpec)
			}
		case t.Single != nil:
			pool(place, nil, t.Single.ServingClasses)
			provider(place, &t.Single.ProviderSpec)
		}
	}
	return slices.Clip(out)
}
