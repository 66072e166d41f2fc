package gateway

import (
	"net/http"
	"time"

	"github.com/onwardsgo/pool"
)

// apiError is an error the gateway writes itself, as OpenAI's error JSON.
func apiError(status int, code, typ, msg string) *pool.AdmissionError {
	return &pool.AdmissionError{Status: status, Code: code, Type: typ, Message: msg}
}

// The gateway's own errors. Their messages say what happened and what to
// do, and never name an upstream, an address or a key.
func errUnreachable() *pool.AdmissionError {
	return apiError(http.StatusServiceUnavailable, "service_unavailable", "server_error",
		"The model's provider could not be reached; try again later.")
}

func errTimeout() *pool.AdmissionError {
	return apiError(http.StatusGatewayTimeout, "upstream_timeout", "server_error",
		"The model's provider did not respond in time; try again later.")
}

func errMalformed() *pool.AdmissionError {
	return apiError(http.StatusBadGateway, "bad_gateway", "api_error",
		"The model's provider sent a response that could not be read; try again.")
}

func errProviderRate(wait time.Duration) *pool.AdmissionError {
	e := apiError(http.StatusTooManyRequests, "rate_limit_exceeded", "rate_limit_error",
		"The model's provider is receiving too many requests; retry after the time in Retry-After.")
	if wait <= 0 {
		wait = pool.ConcurrencyRetryAfter
	}
	e.RetryAfter = wait
	return e
}

func errAllBusy() *pool.AdmissionError {
	e := apiError(http.StatusTooManyRequests, "concurrency_limit_exceeded", "rate_limit_error",
		"Every provider of the model is at its concurrency limit; retry when a request finishes.")
	e.RetryAfter = pool.ConcurrencyRetryAfter
	return e
}

// standardError is strict mode's error for an upstream status: a fixed
// message and type by status (onwards' table), nothing of the upstream's.
func standardError(status int) *pool.AdmissionError {
	typ, msg := "api_error", "Upstream error"
	switch status {
	case 400:
		typ, msg = "invalid_request_error", "Invalid request"
	case 401:
		typ, msg = "authentication_error", "Authentication failed"
	case 403:
		typ, msg = "permission_error", "Permission denied"
	case 404:
		typ, msg = "not_found_error", "Not found"
	case 413:
		typ, msg = "invalid_request_error", "Request too large"
	case 422:
		typ, msg = "invalid_request_error", "Unprocessable request"
	case 429:
		typ, msg = "rate_limit_error", "Rate limit exceeded"
	case 500:
		msg = "Internal server error"
	case 502:
		msg = "Bad gateway"
	case 503:
		msg = "Service unavailable"
	case 504:
		msg = "Gateway timeout"
	default:
		if status >= 400 && status < 500 {
			typ, msg = "invalid_request_error", "Request failed"
		}
	}
	e := apiError(status, "", typ, msg)
	if status == http.StatusTooManyRequests {
		e.RetryAfter = pool.ConcurrencyRetryAfter
	}
	return e
}

// sanitizedError is sanitize_response's error for an upstream status: a
// generic error of the same status (onwards' docs/src/sanitization.md).
func sanitizedError(status int) *pool.AdmissionError {
	if status >= 400 && status < 500 {
		return apiError(status, "upstream_error", "invalid_request_error", "The upstream provider rejected the request.")
	}
	return apiError(status, "internal_error", "internal_error", "An internal error occurred. Please try again later.")
}

// maskStatus hides, for an untrusted provider in strict mode, the statuses
// that describe the operator's account with the provider rather than the
// caller's request: 401, 402, 403 and 451 become 502, and 408 becomes 504.
func maskStatus(status int) int {
	switch status {
	case 401, 402, 403, 451:
		return http.StatusBadGateway
	case 408:
		return http.StatusGatewayTimeout
	}
	return status
}
