package gateway

import (
	"net/http"
	"time"

	"github.com/onwardsgo/pool"
)

// NewClientFor is NewClient with the connection pool that an onwards
// config's http_pool asks for, as onwards sets up its client when it
// starts: at most max_idle_per_host idle connections per upstream host
// (left out: 100) and each closed once idle for idle_timeout_secs (left
// out: 90); either at 0 keeps no connection idle. There is no cap over all
// hosts, as onwards' client has none. A nil spec gives the defaults. As in
// onwards, a reload does not rebuild the client: build it from the config
// the process starts with.
func NewClientFor(spec *pool.HTTPPoolSpec) *http.Client {
	c := NewClient()
	t := c.Transport.(*http.Transport)
	t.MaxIdleConns = 0
	t.MaxIdleConnsPerHost, t.IdleConnTimeout = idlePool(spec)
	if t.MaxIdleConnsPerHost < 0 {
		// net/http reads a timeout of 0 as none; with no connection
		// kept there is nothing to time.
		t.IdleConnTimeout = 0
	}
	return c
}

// NewTransportFor is a [Transport] with the connection pool of an onwards
// config's http_pool, read as [NewClientFor] reads it: max_idle_per_host
// idle connections per upstream (left out: 100), each closed once idle for
// idle_timeout_secs (left out: 90), none kept when either is 0. A nil spec
// gives the defaults, those of the zero Transport. Set it as a [Handler]'s
// Transport, and build it once, from the config the process starts with:
//
//	h := &gateway.Handler{Registry: reg, Transport: gateway.NewTransportFor(cfg.HTTPPool)}
func NewTransportFor(spec *pool.HTTPPoolSpec) *Transport {
	t := new(Transport)
	t.MaxIdleConnsPerHost, t.IdleConnTimeout = idlePool(spec)
	return t
}

// idlePool is the idle pool that spec asks for: connections kept per host
// (-1: none, the value that keeps none in both transports) and for how
// long.
func idlePool(spec *pool.HTTPPoolSpec) (perHost int, timeout time.Duration) {
	perHost, timeout = defaultMaxIdlePerHost, defaultIdleTimeout
	if spec != nil && spec.MaxIdlePerHost != nil {
		perHost = *spec.MaxIdlePerHost
	}
	if spec != nil && spec.IdleTimeoutSecs != nil {
		timeout = time.Duration(*spec.IdleTimeoutSecs) * time.Second
	}
	if perHost <= 0 || timeout <= 0 {
		// Keep none. net/http reads a per-host 0 as its default of 2,
		// and Transport as its default of 100; both keep none below 0.
		return -1, timeout
	}
	return perHost, timeout
}
