package gateway

import (
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
	t.MaxIdleConnsPerHost = 100
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: t, CheckRedirect: noRedirect}
}

// noRedirect is NewClient's redirect policy: none is followed.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// defaultClient is the client of every Handler without one, made once.
var defaultClient = sync.OnceValue(NewClient)
