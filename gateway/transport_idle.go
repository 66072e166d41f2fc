package gateway

// The idle connections of a Transport: kept per upstream, most recently
// used first, and closed by a sweep once idle for IdleConnTimeout.

import (
	"time"

	"github.com/onwardsgo/pool"
)

// takeIdle returns the most recently used idle connection to key, or nil.
func (t *Transport) takeIdle(key connKey) *upstreamConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.idle[key]
	if len(l) == 0 {
		return nil
	}
	c := l[len(l)-1]
	l[len(l)-1] = nil
	t.idle[key] = l[:len(l)-1]
	return c
}

// putIdle keeps c for the next request to its upstream, or closes it if
// the upstream has enough idle connections.
func (t *Transport) putIdle(c *upstreamConn) {
	clock := t.clock()
	c.idleSince = clock.Now()
	t.mu.Lock()
	l := t.idle[c.key]
	if len(l) >= t.maxIdle() {
		t.mu.Unlock()
		c.close()
		return
	}
	if t.idle == nil {
		t.idle = make(map[connKey][]*upstreamConn)
	}
	t.idle[c.key] = append(l, c)
	if t.stopSweep == nil {
		t.stopSweep = clock.AfterFunc(t.idleTimeout(), t.sweep)
	}
	t.mu.Unlock()
}

// sweep closes the connections idle for IdleConnTimeout or longer, and
// runs again when the oldest of the others will be.
func (t *Transport) sweep() {
	clock := t.clock()
	now := clock.Now()
	timeout := t.idleTimeout()
	var stale []*upstreamConn
	next := time.Duration(-1) // until the next sweep; -1: none is needed
	t.mu.Lock()
	for key, l := range t.idle {
		n := 0
		for n < len(l) && now.Sub(l[n].idleSince) >= timeout {
			n++
		}
		stale = append(stale, l[:n]...)
		if n == len(l) {
			delete(t.idle, key)
			continue
		}
		t.idle[key] = append(l[:0:0], l[n:]...)
		if d := timeout - now.Sub(l[n].idleSince); next < 0 || d < next {
			next = d
		}
	}
	t.stopSweep = nil
	if next >= 0 {
		t.stopSweep = clock.AfterFunc(next, t.sweep)
	}
	t.mu.Unlock()
	for _, c := range stale {
		c.close()
	}
}

// CloseIdleConnections closes every idle connection; those in use are
// closed when their exchange ends, as ever. [http.Client]'s method of the
// same name calls it.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	if t.stopSweep != nil {
		t.stopSweep()
		t.stopSweep = nil
	}
	t.mu.Unlock()
	for _, l := range idle {
		for _, c := range l {
			c.close()
		}
	}
}

func (t *Transport) clock() pool.Clock { return clockOr(t.Clock) }

func (t *Transport) maxIdle() int {
	if t.MaxIdleConnsPerHost == 0 {
		return defaultMaxIdlePerHost
	}
	return t.MaxIdleConnsPerHost
}

func (t *Transport) idleTimeout() time.Duration {
	if t.IdleConnTimeout <= 0 {
		return defaultIdleTimeout
	}
	return t.IdleConnTimeout
}
