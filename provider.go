package pool

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Target is one upstream endpoint and how to call it: plain data that the
// pool hands back on selection and never changes. Build one with [NewTarget]
// and set the other fields as needed; do not modify a Target once a pool
// holds it.
type Target struct {
	// URL is the upstream's base URL. It always ends in "/" when built by
	// NewTarget; request paths are joined onto it.
	URL *url.URL

	// UpstreamKey is the API key sent upstream (onwards_key). Empty: none.
	UpstreamKey string

	// UpstreamModel replaces the request's model name upstream
	// (onwards_model). Empty: the model is sent as the client named it.
	UpstreamModel string

	// RateLimiter limits requests to this provider. Nil: no limit.
	RateLimiter RateLimiter

	// UpstreamAuthHeaderName is the header that carries UpstreamKey.
	// Empty: "Authorization". See AuthHeader.
	UpstreamAuthHeaderName string

	// UpstreamAuthHeaderPrefix is written before UpstreamKey in that header.
	// Empty, when UpstreamAuthHeaderName is empty too: "Bearer ". With a
	// header name set, empty means no prefix (as for "x-api-key").
	UpstreamAuthHeaderPrefix string

	// ResponseHeaders are added to every response from this provider.
	ResponseHeaders map[string]string

	// SanitizeResponse asks the proxy to strip non-standard fields from
	// chat completion responses (onwards' sanitize_response). The pool
	// keeps the setting; package gateway acts on it.
	SanitizeResponse bool

	// RequestTimeout bounds the wait for the upstream's response headers.
	// Zero: no timeout.
	RequestTimeout time.Duration

	// Trusted overrides the pool's trusted setting for this provider.
	// Nil: inherit the pool's.
	Trusted *bool

	// Serves is which requests the provider takes (onwards' serves); see
	// [SelectIter.SetClass]. The zero value takes every request.
	Serves Serves
}

// AuthHeader returns the header to send upstream and its value, such as
// "Authorization" and "Bearer sk-...", or two empty strings when the target
// has no UpstreamKey.
func (t *Target) AuthHeader() (name, value string) {
	if t.UpstreamKey == "" {
		return "", ""
	}
	name, prefix := t.UpstreamAuthHeaderName, t.UpstreamAuthHeaderPrefix
	if name == "" {
		name = "Authorization"
		if prefix == "" {
			prefix = "Bearer "
		}
	}
	return name, prefix + t.UpstreamKey
}

// NewTarget returns a Target for rawURL, which must be an absolute http or
// https URL with a host. A trailing "/" is added to the path if it lacks one,
// so that request paths join onto it the way onwards joins them. Errors never
// repeat a password given in the URL.
func NewTarget(rawURL string) (*Target, error) {
	u, err := parseBaseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("pool: %w", err)
	}
	return &Target{URL: u}, nil
}

// parseBaseURL validates and normalises an upstream base URL. Its errors
// start with "url" so that callers can prefix the place.
func parseBaseURL(rawURL string) (*url.URL, error) {
	if strings.TrimSpace(rawURL) == "" {
		return nil, errors.New("url is empty; want an absolute http(s) URL such as https://api.openai.com/v1")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse repeats the whole input, which may hold a password.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("url is not valid: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		if u.Scheme == "" {
			return nil, fmt.Errorf("url %q has no scheme; want an absolute http(s) URL", u.Redacted())
		}
		return nil, fmt.Errorf("url %q has scheme %q; want http or https", u.Redacted(), u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("url %q has no host", u.Redacted())
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u, nil
}

// Provider is one member of a pool: a target, its share of the traffic, and
// the counter of requests in flight to it.
//
// A Provider written as a struct literal, without a constructor, is valid and
// has no concurrency limit. A Provider may belong to several pools, which then
// share its counter. Do not modify Target or Weight once a pool holds it; the
// pool reads them when it is built.
type Provider struct {
	// Target is where requests go. It must not be nil.
	Target *Target

	// Weight is the provider's share of traffic under the weighted_random
	// strategy. A weight of 0 drains the provider: weighted_random never
	// picks it, while priority still does.
	Weight uint32

	limiter ConcurrencyLimiter
	shared  SharedConcurrency // the limit across replicas, or nil
}

// NewProvider returns a provider with no concurrency limit.
func NewProvider(target *Target, weight uint32) *Provider {
	return &Provider{Target: target, Weight: weight}
}

// NewProviderWithConcurrencyLimit returns a provider that holds at most limit
// requests in flight; the pool skips it while it is full. A limit of 0 takes
// the provider out of rotation. A negative limit is reported as an error by
// [NewProviderPool].
func NewProviderWithConcurrencyLimit(target *Target, weight uint32, limit int) *Provider {
	return &Provider{
		Target:  target,
		Weight:  weight,
		limiter: ConcurrencyLimiter{limited: true, limit: int64(limit)},
	}
}

// ActiveConnections returns the number of requests in flight to the provider:
// the guards taken from it, or from a provider it adopted the counter of, that
// are not yet closed.
func (p *Provider) ActiveConnections() int {
	return p.limiter.Active()
}
