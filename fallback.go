package pool

import "time"

// FallbackConfig says when a failed request moves on to the next provider and
// how many providers it may try. The zero value never falls back.
type FallbackConfig struct {
	// Enabled turns fallback on. Without it, the other fields have no effect
	// on ShouldFallbackOnStatus and ShouldFallbackOnRateLimit.
	Enabled bool `json:"enabled"`

	// OnStatus lists the upstream statuses that move on to the next provider.
	// A pattern of 1 to 5 matches a whole class (5: 500-599), 10 to 59 a
	// decade (50: 500-509), and 100 to 599 that exact status.
	OnStatus []int `json:"on_status"`

	// OnRateLimit moves on when a provider's own rate limiter refuses.
	OnRateLimit bool `json:"on_rate_limit"`

	// WithReplacement lets the weighted_random walk pick a provider again
	// after it was tried. The priority strategy ignores it and always moves
	// down the list.
	WithReplacement bool `json:"with_replacement"`

	// MaxAttempts caps the attempts for one request. 0: one attempt per
	// provider. Negative values are an error. Above 0, once a walk has
	// tried every eligible provider it starts a new pass over them
	// (onwards 0.33.3): priority, 2 providers, 5 attempts gives p0 p1 p0 p1
	// p0. A pass whose untried providers are all at their concurrency limit
	// ends the walk instead; it does not go back to the one that failed.
	MaxAttempts int `json:"max_attempts,omitempty"`

	// Backoff is the wait before each retry (onwards' fallback.backoff).
	// The zero value waits not at all. The pool computes it (see
	// [SelectIter.Backoff]); the forwarding code waits, after closing the
	// failed attempt's selection.
	Backoff Backoff `json:"-"`

	// MaxTotalBackoff caps the sum of a request's waits
	// (max_total_backoff_ms). 0: no cap.
	MaxTotalBackoff time.Duration `json:"-"`
}

// ShouldFallbackOnStatus reports whether an upstream answer with status
// should move on to the next provider. It is false unless Enabled.
func (f FallbackConfig) ShouldFallbackOnStatus(status int) bool {
	if !f.Enabled {
		return false
	}
	for _, pattern := range f.OnStatus {
		switch {
		case pattern < 10:
			if status/100 == pattern {
				return true
			}
		case pattern < 100:
			if status/10 == pattern {
				return true
			}
		default:
			if status == pattern {
				return true
			}
		}
	}
	return false
}
