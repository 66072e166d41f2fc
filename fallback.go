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

	// FirstTokenTimeout bounds, for a streamed request, the wait for the
	// response headers and, in strict mode, for the first data frame of
	// the stream (onwards 2.0's first_token_timeout_ms); on expiry the
	// attempt fails over. The forwarding code arms it only for "stream":
	// true, in a pool of more than one provider, and never on the walk's
	// last attempt ([SelectIter.Last]). 0: no deadline.
	FirstTokenTimeout time.Duration `json:"-"`

	// RealtimeOnStatus lists statuses, in OnStatus's patterns, that move
	// a realtime request on, on top of OnStatus: one that does not carry
	// the dispatched (batch) header. See ShouldFallbackOnRealtimeStatus.
	RealtimeOnStatus []int `json:"-"`
}

// ShouldFallbackOnRealtimeStatus reports whether an upstream answer with
// status should move a realtime request on: it matches OnStatus or
// RealtimeOnStatus. It is false unless Enabled.
func (f FallbackConfig) ShouldFallbackOnRealtimeStatus(status int) bool {
	return f.ShouldFallbackOnStatus(status) || f.Enabled && matchStatus(f.RealtimeOnStatus, status)
}

// ShouldFallbackOnStatus reports whether an upstream answer with status
// should move on to the next provider. It is false unless Enabled.
func (f FallbackConfig) ShouldFallbackOnStatus(status int) bool {
	return f.Enabled && matchStatus(f.OnStatus, status)
}

// matchStatus reports whether status matches one of patterns (see
// FallbackConfig.OnStatus).
func matchStatus(patterns []int, status int) bool {
	for _, pattern := range patterns {
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
