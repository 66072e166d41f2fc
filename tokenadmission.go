package pool

import (
	"fmt"
	"net/http"
	"time"
)

// TokenLimited reports whether the admission's pool or its key has a token
// limit (a rate_limit's tokens_per_minute), so that a caller can skip
// estimating a request's tokens when neither has one.
func (a *Admission) TokenLimited() bool {
	return a != nil && (a.tokens[0] != nil || a.tokens[1] != nil)
}

// ReserveTokens reserves estimate tokens for the request on the token
// limits of its pool and of its key, when they have them. If either bucket
// does not hold the estimate, it reserves nothing and returns a 429
// *AdmissionError, rate_limit_exceeded, whose RetryAfter is the time until
// that bucket will. An estimate over a bucket's burst counts as the burst.
//
// Call it at most once per admission, after [Registry.Admit] and before
// the request is sent, and settle with [Admission.SettleTokens] when the
// answer's count is known. An admission closed without a settlement
// settles its estimate. With no token limit it does nothing and returns
// nil.
func (a *Admission) ReserveTokens(estimate int64) error {
	if !a.TokenLimited() {
		return nil
	}
	for i, l := range a.tokens {
		if l == nil {
			continue
		}
		r, wait, ok := l.Reserve(estimate)
		if !ok {
			a.SettleTokens(0) // give back the pool's, if it was taken
			a.reserved = [2]*TokenReservation{}
			a.Pool.stats.refuse("rate_limit_exceeded")
			return tokenLimited(i, a.Alias, wait)
		}
		a.reserved[i] = r
	}
	return nil
}

// SettleTokens replaces the reserved estimate with used, the tokens the
// answer reported (its usage.total_tokens), on each limit that
// ReserveTokens reserved on: the unused part goes back, and what was used
// beyond the estimate is taken. Only the first call counts. For an answer
// that reports no usage, do not call it: Close settles the estimate.
func (a *Admission) SettleTokens(used int64) {
	if a == nil {
		return
	}
	for _, r := range a.reserved {
		r.Settle(used)
	}
}

// tokenLimited is the refusal for the token limit of the pool (i 0) or of
// the key (i 1).
func tokenLimited(i int, alias string, wait time.Duration) *AdmissionError {
	msg := fmt.Sprintf("The model %q has used its tokens per minute; retry after the wait.", alias)
	if i == 1 {
		msg = "This API key has used its tokens per minute; retry after the wait."
	}
	return &AdmissionError{Status: http.StatusTooManyRequests, Code: "rate_limit_exceeded", Type: "tokens", Message: msg,
		RetryAfter: max(wait, time.Millisecond)}
}
