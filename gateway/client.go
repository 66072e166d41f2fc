package gateway

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// NewClient returns an HTTP client for upstream calls, tuned for a proxy:
// http.DefaultTransport's settings, with 1000 idle connections kept in all
// and 100 per upstream host (the default keeps 2 per host, which makes a
// busy proxy dial for most requests). It sets no overall timeout, since a
// stream may run for minutes; [Send] bounds the wait for headers.
//
// It follows no redirect: an upstream's 3xx is the answer, passed to the
// client as onwards and nginx pass it. Followed, a 301, 302 or 303 would
// turn the POST into a GET without its body, and any redirect would send
// the request where the upstream's Location says.
func NewClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1000
	t.MaxIdleConnsPerHost = defaultMaxIdlePerHost
	t.IdleConnTimeout = defaultIdleTimeout
	return &http.Client{Transport: t, CheckRedirect: noRedirect}
}

// The idle pool of NewClient, NewClientFor and Transport when nothing else
// is said: onwards' defaults for http_pool.
const (
	defaultMaxIdlePerHost = 100
	defaultIdleTimeout    = 90 * time.Second
)

// noRedirect is NewClient's redirect policy: none is followed.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// defaultClient is the client of every Handler without one, made once.
var defaultClient = sync.OnceValue(NewClient)

// sender is how a Handler sends its upstream requests: by rt's RoundTrip,
// called directly, when rt is set; else by client (nil: defaultClient).
type sender struct {
	client *http.Client
	rt     http.RoundTripper
}

// do sends req and returns the upstream's response, or an error; a
// RoundTripper's error is returned as it is, a Client's in a *url.Error.
func (s sender) do(req *http.Request) (*http.Response, error) {
	if s.rt != nil {
		return roundTrip(s.rt, req)
	}
	client := s.client
	if client == nil {
		client = defaultClient()
	}
	return client.Do(req)
}

// roundTrip sends req, a request the Handler built, by rt, doing first and
// after what an http.Client would for it: a password in the URL becomes
// Basic authorization when the request has none, and a RoundTripper that
// breaks its contract (no response and no error, or a response with
// content but no body) gives an error, not a panic later.
func roundTrip(rt http.RoundTripper, req *http.Request) (*http.Response, error) {
	if u := req.URL.User; u != nil && req.Header.Get("Authorization") == "" {
		password, _ := u.Password()
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+password)))
	}
	resp, err := rt.RoundTrip(req)
	switch {
	case err != nil:
		if resp != nil && resp.Body != nil {
			resp.Body.Close() // an answer with an error is no answer
		}
		return nil, err
	case resp == nil:
		return nil, fmt.Errorf("gateway: %T returned neither a response nor an error", rt)
	case resp.Body == nil && resp.ContentLength > 0:
		return nil, fmt.Errorf("gateway: %T returned a response of %d bytes with no body", rt, resp.ContentLength)
	case resp.Body == nil:
		resp.Body = http.NoBody
	}
	return resp, nil
}
