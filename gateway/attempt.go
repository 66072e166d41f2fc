package gateway

import (
	"errors"
	"time"
)

// The errors an [Attempt] reports when a provider gave no answer. Test for
// them with errors.Is; the errors that wrap them add detail for logs.
var (
	// ErrProviderRateLimited is reported when the provider's own rate limit
	// (its rate_limit in the config) refused the request before any call.
	ErrProviderRateLimited = errors.New("gateway: provider rate limit reached")

	// ErrUpstreamTimeout is reported when the provider sent no response
	// headers within its request timeout.
	ErrUpstreamTimeout = errors.New("gateway: upstream sent no response headers in time")

	// ErrUpstreamUnreachable is reported when the provider could not be
	// reached: a refused connection, a DNS failure, a reset before the
	// headers.
	ErrUpstreamUnreachable = errors.New("gateway: upstream unreachable")

	// ErrUpstreamBrokeOff is reported when the provider's body ended with
	// an error after the status was sent to the client; the gateway then
	// aborts the client's response, the only honest signal left.
	ErrUpstreamBrokeOff = errors.New("gateway: upstream broke off mid-response")

	// ErrFirstTokenTimeout is reported when a streamed answer gave no
	// headers or, in strict mode, no first data frame within the pool's
	// first-token deadline (fallback.first_token_timeout_ms); the upstream
	// is dropped and the next provider tried.
	ErrFirstTokenTimeout = errors.New("gateway: no first token within the deadline")

	// ErrMalformedResponse is reported when a response that had to be
	// sanitized could not be parsed; the client gets a standard 502
	// instead of the upstream's bytes.
	ErrMalformedResponse = errors.New("gateway: upstream response could not be parsed for sanitization")
)

// Attempt records one try of one provider for one request. [Handler]
// hands one to its OnAttempt hook after each try, once the try is over: for
// an answer the gateway streams to the client, when the stream has ended.
//
// An Attempt never holds a key: URL is the provider's base URL without
// credentials.
type Attempt struct {
	// Alias is the alias whose pool served the request, after any
	// routing-rule redirect.
	Alias string
	// Provider is the provider's index in the pool's Providers.
	Provider int
	// URL is the provider's base URL, with any password redacted.
	URL string
	// Status is the upstream's HTTP status, or 0 when it gave none.
	Status int
	// Err is why the provider gave no usable answer: it wraps one of the
	// Err* values of this package, or is [context.Canceled] when the client
	// left. Nil when the upstream answered, whatever the status. It may
	// hold transport detail (for logs), never a key.
	Err error
	// Duration is the time from the start of the try to its end.
	Duration time.Duration
	// FellBack reports whether the request moved on to another provider
	// after this try (unless the retry budget or the request's deadline
	// then stopped it).
	FellBack bool
	// Backoff is the wait before the next try (fallback.backoff).
	Backoff time.Duration
	// Panic reports that outlier detection held this provider back, and
	// it was tried because every eligible provider was held back.
	Panic bool
	// FirstToken is the time from the start of the try to the first data
	// frame of a strict-mode stream, when the gateway watched for it (a
	// first-token deadline or an AIMD observation); 0 otherwise.
	FirstToken time.Duration
	// FirstTokenTimedOut reports that the first-token deadline expired.
	FirstTokenTimedOut bool
	// Dispatched reports that the request carried the Handler's
	// DispatchedHeader: batch work, which onwards calls dispatched.
	Dispatched bool
	// RescuedFrom is, for a 2xx answer after the request failed over, the
	// request's first attempt that fell back (onwards' rescue); nil
	// otherwise.
	RescuedFrom *Attempt
}
