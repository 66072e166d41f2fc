package pool

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Admission is a request let in by [Registry.Admit]: the pool to select a
// provider from, and the pool-level and per-key concurrency slots the
// request holds until Close.
type Admission struct {
	// Alias is the alias whose pool to use: the one asked for, or the one a
	// routing rule redirected to.
	Alias string
	// Pool is the pool of Alias, from the config that admitted the request.
	Pool *ProviderPool
	// Labels are the labels of the caller's key definition, or nil. The map
	// is the registry's own: read it, do not modify it.
	Labels map[string]string

	guards   [2]*ConcurrencyGuard // pool slot, key slot; nil where none
	releases [2]func()            // the same slots across replicas; nil where none
	tokens   [2]tokenReserver     // pool and key token limits; nil where none
	reserved [2]*TokenReservation // what ReserveTokens took of them
	closed   atomic.Bool

	inflight        *inflightState // the named alias's in-flight limits; nil: none
	inflightHeld    bool           // HoldInflight was called
	inflightRelease func()         // frees what HoldInflight took; nil: nothing
}

// Close releases every slot the admission took, exactly once; later and
// concurrent calls, and calls on a nil Admission, do nothing. Close it when
// the response is done, after closing the provider selection. It always
// returns nil.
func (a *Admission) Close() error {
	if a == nil || !a.closed.CompareAndSwap(false, true) {
		return nil
	}
	a.release()
	if a.Pool != nil && a.Pool.stats != nil {
		a.Pool.stats.inflight.Add(-1)
	}
	return nil
}

// release frees every slot taken.
func (a *Admission) release() {
	if a.inflightRelease != nil {
		a.inflightRelease()
	}
	for i, g := range a.guards {
		g.Close()
		if r := a.releases[i]; r != nil {
			r()
		}
	}
}

// AdmissionError is a refused admission. It carries the HTTP status and an
// OpenAI-style error, and writes itself as the response: it is an
// [http.Handler].
type AdmissionError struct {
	// Status is the HTTP status: 400, 401, 403, 404, 429 or 503.
	Status int
	// Code is OpenAI's error code, such as "model_not_found",
	// "invalid_api_key" or "rate_limit_exceeded".
	Code string
	// Type is OpenAI's error type, such as "invalid_request_error".
	Type string
	// Param names the request field at fault, or is empty.
	Param string
	// Message says what happened and what to do; it never holds a key.
	Message string
	// RetryAfter is how long the client should wait before it retries, sent
	// as a Retry-After header in whole seconds, rounded up. Every 429 that
	// Admit returns sets it: the time until a token is available for a rate
	// limit, [ConcurrencyRetryAfter] for a concurrency limit. Zero: no
	// header.
	RetryAfter time.Duration
}

// Error returns "pool: STATUS CODE: MESSAGE".
func (e *AdmissionError) Error() string {
	return fmt.Sprintf("pool: %d %s: %s", e.Status, e.Code, e.Message)
}

// ServeHTTP writes the error as OpenAI does:
// {"error":{"message":...,"type":...,"param":...,"code":...}}.
func (e *AdmissionError) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	var param any // null when empty, as OpenAI writes it
	if e.Param != "" {
		param = e.Param
	}
	body, _ := json.Marshal(map[string]any{"error": map[string]any{
		"message": e.Message, "type": e.Type, "param": param, "code": e.Code,
	}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", RetryAfterSeconds(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	w.Write(append(body, '\n'))
}

// Admit runs the checks of onwards' handler before it picks a provider, in
// its order, for a request for alias with bearerToken ("" when the request
// has none):
//
//   - the alias is unknown: 404 model_not_found;
//   - the pool has keys and the token is missing: 401; not one of them: 403;
//   - the first routing rule matching the labels of the token's key
//     definition denies (403) or redirects to another alias, whose pool is
//     used from then on (its rules are not evaluated again);
//   - the pool has no providers: 503 (after the routing rules, as onwards
//     0.18.4 and later order them);
//   - the pool's rate limit, then the key's: 429 rate_limit_exceeded;
//   - the pool's concurrency limit, then the key's: 429
//     concurrency_limit_exceeded.
//
// It returns the admission, which holds the concurrency slots it took, or an
// *AdmissionError; a refusal releases whatever it had taken.
func (r *Registry) Admit(alias, bearerToken string) (*Admission, error) {
	s := r.snap.Load()
	if s == nil {
		return nil, &AdmissionError{Status: http.StatusServiceUnavailable, Code: "service_unavailable", Type: "server_error",
			Message: "The proxy has no configuration loaded yet; try again shortly."}
	}
	a, key, err := s.authorize(alias, bearerToken)
	if err != nil {
		if a == nil {
			r.unknownModel.Add(1)
		} else {
			a.pool.stats.refuse(err.Code)
		}
		return nil, err
	}
	var labels map[string]string
	if key != nil {
		labels = key.labels
	}
	asked := a
	if alias, a, err = s.route(alias, a, labels); err != nil {
		asked.pool.stats.refuse(err.Code)
		return nil, err
	}
	if a.pool.IsEmpty() {
		a.pool.stats.refuse("no_providers")
		return nil, &AdmissionError{Status: http.StatusServiceUnavailable, Code: "no_providers", Type: "server_error",
			Message: fmt.Sprintf("The model %q has no providers configured; try again later.", alias)}
	}
	adm := &Admission{Alias: alias, Pool: a.pool, Labels: labels, inflight: asked.inflight}
	if err := adm.takeLimits(a, key); err != nil {
		a.pool.stats.refuse(err.Code)
		return nil, err
	}
	a.pool.stats.inflight.Add(1)
	return adm, nil
}

// authorize finds the alias's pool and checks the token against its keys.
// It returns the token's key definition, if it has one; on an error, the
// alias's pool if the alias exists.
func (s *snapshot) authorize(alias, bearerToken string) (*aliasState, *keyState, *AdmissionError) {
	if alias == "" {
		return nil, nil, &AdmissionError{Status: http.StatusBadRequest, Code: "missing_model", Type: "invalid_request_error", Param: "model",
			Message: "The request names no model; set the model field to one of the aliases listed at /v1/models."}
	}
	a, ok := s.pools[alias]
	if !ok {
		return nil, nil, &AdmissionError{Status: http.StatusNotFound, Code: "model_not_found", Type: "invalid_request_error", Param: "model",
			Message: fmt.Sprintf("The model %q does not exist or you do not have access to it.", alias)}
	}
	var key *keyState
	if bearerToken != "" {
		key = s.keys[sha256.Sum256([]byte(bearerToken))]
	}
	if keys := a.pool.Keys(); keys != nil {
		if bearerToken == "" {
			return a, nil, &AdmissionError{Status: http.StatusUnauthorized, Code: "invalid_api_key", Type: "invalid_request_error",
				Message: "The request has no API key; send one as Authorization: Bearer <key>."}
		}
		if !keys.Contains(bearerToken) {
			return a, nil, &AdmissionError{Status: http.StatusForbidden, Code: "invalid_api_key", Type: "invalid_request_error",
				Message: fmt.Sprintf("The API key is not allowed to use the model %q.", alias)}
		}
	}
	return a, key, nil
}

// route applies the first routing rule of a's pool that matches labels:
// a deny refuses, a redirect gives the alias and pool to use instead (its
// own rules are not evaluated again). A redirect to no alias, which a
// config may hold (with a warning), is a 503.
func (s *snapshot) route(alias string, a *aliasState, labels map[string]string) (string, *aliasState, *AdmissionError) {
	action, ok := a.pool.EvaluateRoutingRules(labels)
	switch {
	case !ok:
		return alias, a, nil
	case action.Type == ActionDeny:
		return "", nil, &AdmissionError{Status: http.StatusForbidden, Code: "access_denied", Type: "permission_error", Param: "model",
			Message: fmt.Sprintf("A routing rule denies this API key the model %q.", alias)}
	}
	target, ok := s.pools[action.Target]
	if !ok {
		return "", nil, &AdmissionError{Status: http.StatusServiceUnavailable, Code: "service_unavailable", Type: "server_error",
			Message: fmt.Sprintf("The model %q is not available now; try again later.", alias)}
	}
	return action.Target, target, nil
}

// takeLimits spends the pool's and the key's rate tokens and takes their
// concurrency slots, in onwards' order, each slot on this replica and, with
// shared state, across replicas; a refusal releases what it took.
func (adm *Admission) takeLimits(a *aliasState, key *keyState) *AdmissionError {
	p := a.pool
	if l := p.RateLimiter(); l != nil && !l.Allow() {
		return rateLimited(fmt.Sprintf("The model %q is receiving too many requests; retry after a short wait.", adm.Alias), l)
	}
	if key != nil && key.rate != nil && !key.rate.lim.Allow() {
		return rateLimited("This API key is sending too many requests; retry after a short wait.", key.rate.lim)
	}
	if wait, ok := adm.takeSlot(0, p.ConcurrencyLimiter(), a.shared); !ok {
		return concurrencyLimited(fmt.Sprintf("The model %q has too many requests in flight; retry when one finishes.", adm.Alias), wait)
	}
	if key != nil {
		if wait, ok := adm.takeSlot(1, key.conc, key.shared); !ok {
			adm.release() // not adm.Close: the request was never counted in flight
			return concurrencyLimited("This API key has too many requests in flight; retry when one finishes.", wait)
		}
	}
	if a.tokens != nil {
		adm.tokens[0] = a.tokens.lim
	}
	if key != nil && key.tokens != nil {
		adm.tokens[1] = key.tokens.lim
	}
	return nil
}

// takeSlot takes slot i of the admission: on the local limiter l, then on
// the shared one, when there are any. When it cannot, it takes nothing and
// returns false, with the wait the shared limit advises, if any.
func (adm *Admission) takeSlot(i int, l *ConcurrencyLimiter, shared SharedConcurrency) (wait time.Duration, ok bool) {
	if l == nil {
		return 0, true
	}
	g, ok := l.TryAcquire()
	if !ok {
		return 0, false
	}
	adm.guards[i] = g
	if shared == nil {
		return 0, true
	}
	release, wait, ok := shared.TryAcquire()
	if !ok {
		g.Close()
		adm.guards[i] = nil
		return wait, false
	}
	adm.releases[i] = release
	return 0, true
}

func rateLimited(msg string, l RateLimiter) *AdmissionError {
	wait := RateLimitDelay(l)
	if wait <= 0 { // a limiter that cannot tell: advise as for concurrency
		wait = ConcurrencyRetryAfter
	}
	return &AdmissionError{Status: http.StatusTooManyRequests, Code: "rate_limit_exceeded", Type: "rate_limit_error", Message: msg,
		RetryAfter: wait}
}

// concurrencyLimited is the refusal for a concurrency limit, advising wait
// (0: ConcurrencyRetryAfter).
func concurrencyLimited(msg string, wait time.Duration) *AdmissionError {
	if wait <= 0 {
		wait = ConcurrencyRetryAfter
	}
	return &AdmissionError{Status: http.StatusTooManyRequests, Code: "concurrency_limit_exceeded", Type: "rate_limit_error", Message: msg,
		RetryAfter: wait}
}

// RetryAfterSeconds formats d as a Retry-After value: whole seconds,
// rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) string {
	secs := (d + time.Second - 1) / time.Second
	return strconv.FormatInt(int64(max(secs, 1)), 10)
}

// InflightCount returns the realtime requests of account in flight on
// alias in this process, counted by its in-flight limit (0 when the alias
// has none).
func (r *Registry) InflightCount(alias, account string) int64 {
	s := r.snap.Load()
	if s == nil {
		return 0
	}
	a, ok := s.pools[alias]
	if !ok || a.inflight == nil {
		return 0
	}
	return a.inflight.count(account)
}

// HoldInflight takes the request's slot on the in-flight limits of the
// alias it named (its inflight_limit and account_inflight_limits for a
// realtime request, its batch_inflight_limit for a dispatched one), even
// when a routing rule redirected it, as onwards counts it. The slot is
// held until Close, across every attempt. A realtime request's account is
// its key's "account" label; a key without one is not counted.
//
// A refusal is a 429 inflight_limit_exceeded, or for a dispatched request
// a 529 batch_capacity_exceeded, both with a Retry-After of 1 s. Call it
// once, after Admit; later calls take nothing.
func (a *Admission) HoldInflight(dispatched bool) error {
	if a == nil || a.inflight == nil || a.inflightHeld {
		return nil
	}
	a.inflightHeld = true
	account := a.Labels[AccountLabel]
	release, ok := a.inflight.take(account, dispatched)
	if !ok {
		err := a.inflightRefusal(account, dispatched)
		a.Pool.stats.refuse(err.Code)
		return err
	}
	a.inflightRelease = release
	return nil
}

// inflightRefusal is the error of a request that an in-flight limit
// refused.
func (a *Admission) inflightRefusal(account string, dispatched bool) *AdmissionError {
	alias := a.inflight.alias
	if dispatched {
		return &AdmissionError{Status: 529, Code: "batch_capacity_exceeded", Type: "overloaded_error", RetryAfter: InflightRetryAfter,
			Message: fmt.Sprintf("The model %q has its dispatched requests at capacity; retry later.", alias)}
	}
	return &AdmissionError{Status: http.StatusTooManyRequests, Code: "inflight_limit_exceeded", Type: "rate_limit_error", RetryAfter: InflightRetryAfter,
		Message: fmt.Sprintf("Your account has %d requests in flight on the model %q, its limit; retry when one finishes.",
			a.inflight.limitFor(account), alias)}
}

// InflightLimit returns the in-flight limit that applies to the request's
// account on the alias it named, and false when none does.
func (a *Admission) InflightLimit() (int64, bool) {
	if a == nil || a.inflight == nil {
		return 0, false
	}
	account := a.Labels[AccountLabel]
	limit := a.inflight.limitFor(account)
	return limit, account != "" && limit >= 0
}

// Account returns the request's account: its key's "account" label, or "".
func (a *Admission) Account() string {
	if a == nil {
		return ""
	}
	return a.Labels[AccountLabel]
}
