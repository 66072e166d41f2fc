package pool

import (
	"fmt"
	"math"
	"time"
)

// This file is the one home of the rules that a pool's settings must
// follow. NewProviderPool applies them to Go values, and the config's
// validator (configcheck.go) to a config file, with the same bounds; a
// file's places are longer, that is all. It knows the Go API only, not
// the config file.

// checkProvider validates one provider of NewProviderPool at place.
func checkProvider(place string, pr *Provider) *FieldError {
	switch {
	case pr == nil:
		return fieldErr(place, "provider is nil")
	case pr.Target == nil:
		return fieldErr(place+".target", "target is nil; build one with NewTarget")
	case pr.Target.URL == nil:
		return fieldErr(place+".target.url", "target has no URL; build targets with NewTarget")
	case pr.Target.URL.Scheme != "http" && pr.Target.URL.Scheme != "https" || pr.Target.URL.Host == "":
		return fieldErr(place+".target.url", "%q is not an absolute http(s) URL", pr.Target.URL.Redacted())
	case pr.limiter.limited:
		return checkLimit(place+".concurrency_limit", pr.limiter.limit)
	}
	return nil
}

// checkLimit validates a concurrency limit: 0 refuses everything, and a
// negative limit is an error.
func checkLimit(place string, limit int64) *FieldError {
	if limit < 0 {
		return fieldErr(place, "%d is negative; want 0 (refuse every request) or more", limit)
	}
	return nil
}

// checkFallback validates a fallback config at place.
func checkFallback(place string, f FallbackConfig) []*FieldError {
	errs := checkBackoff(place+".backoff", f.Backoff)
	if f.MaxTotalBackoff < 0 {
		errs = append(errs, fieldErr(place+".max_total_backoff_ms", "%v is negative", f.MaxTotalBackoff))
	}
	if f.MaxAttempts < 0 {
		errs = append(errs, fieldErr(place+".max_attempts", "%d is negative; want 0 (one attempt per provider) or more", f.MaxAttempts))
	}
	if f.FirstTokenTimeout < 0 {
		errs = append(errs, fieldErr(place+".first_token_timeout_ms", "%v is negative; want 0 (no deadline) or more", f.FirstTokenTimeout))
	}
	errs = append(errs, checkPatterns(place+".on_status", f.OnStatus)...)
	return append(errs, checkPatterns(place+".realtime_on_status", f.RealtimeOnStatus)...)
}

// checkPatterns validates a list of status patterns at place.
func checkPatterns(place string, patterns []int) []*FieldError {
	var errs []*FieldError
	for i, pattern := range patterns {
		if !(pattern >= 1 && pattern <= 5 || pattern >= 10 && pattern <= 59 || pattern >= 100 && pattern <= 599) {
			errs = append(errs, fieldErr(fmt.Sprintf("%s[%d]", place, i),
				"%d matches no HTTP status; want a class 1-5, a decade 10-59 or a status 100-599", pattern))
		}
	}
	return errs
}

// checkRoutingAction validates the action of the rule at place. A redirect
// with no target is allowed: as in onwards, a request it matches is refused
// with a 503 (config generators write one for a deleted model).
func checkRoutingAction(place string, a RoutingAction) *FieldError {
	switch a.Type {
	case ActionDeny:
		if a.Target != "" {
			return fieldErr(place+".action.target", "%q is set on a deny action; remove it or use type %q", a.Target, ActionRedirect)
		}
	case ActionRedirect:
	default:
		return fieldErr(place+".action.type", "%q is not a routing action; want %q or %q", a.Type, ActionDeny, ActionRedirect)
	}
	return nil
}

// checkOutlier validates an outlier detection config at place; zero
// fields take their defaults.
func checkOutlier(place string, o OutlierDetection) []*FieldError {
	var errs []*FieldError
	if o.ConsecutiveFailures < 0 {
		errs = append(errs, fieldErr(place+".consecutive_failures", "%d is negative; want 1 or more, or 0 for %d", o.ConsecutiveFailures, DefaultConsecutiveFailures))
	}
	if o.BaseEjection < 0 {
		errs = append(errs, fieldErr(place+".base_ejection_ms", "%v is negative", o.BaseEjection))
	}
	if o.MaxEjection < 0 {
		errs = append(errs, fieldErr(place+".max_ejection_ms", "%v is negative", o.MaxEjection))
	}
	if o.BaseEjection > 0 && o.MaxEjection > 0 && o.MaxEjection < o.BaseEjection {
		errs = append(errs, fieldErr(place+".max_ejection_ms", "%v is below base_ejection_ms (%v)", o.MaxEjection, o.BaseEjection))
	}
	if o.MaxEjectionPercent < 0 || o.MaxEjectionPercent > 100 {
		errs = append(errs, fieldErr(place+".max_ejection_percent", "%d; want 1 to 100, or 0 for %d", o.MaxEjectionPercent, DefaultMaxEjectionPercent))
	}
	return errs
}

// checkRetryBudget validates a retry budget at place; zero fields take
// their defaults.
func checkRetryBudget(place string, b RetryBudget) []*FieldError {
	var errs []*FieldError
	if b.TTL < 0 || b.TTL > 0 && b.TTL < time.Second {
		errs = append(errs, fieldErr(place+".ttl_ms", "%v; want at least 1 s, or 0 for %v", b.TTL, DefaultRetryBudgetTTL))
	}
	if b.MinRetriesPerSecond < 0 {
		errs = append(errs, fieldErr(place+".min_retries_per_sec", "%d is negative", b.MinRetriesPerSecond))
	}
	if b.PercentCanRetry < 0 || b.PercentCanRetry > 1000 {
		errs = append(errs, fieldErr(place+".percent_can_retry", "%d; want 0 to 1000", b.PercentCanRetry))
	}
	return errs
}

// checkBackoff validates a backoff at place.
func checkBackoff(place string, b Backoff) []*FieldError {
	var errs []*FieldError
	if b.Initial < 0 {
		errs = append(errs, fieldErr(place+".initial_ms", "%v is negative", b.Initial))
	}
	if b.Max < 0 {
		errs = append(errs, fieldErr(place+".max_ms", "%v is negative", b.Max))
	}
	if b.Factor != 0 && !(b.Factor >= 1) || math.IsInf(b.Factor, 0) {
		errs = append(errs, fieldErr(place+".factor", "%v; want a finite number of 1 or more", b.Factor))
	}
	return errs
}
