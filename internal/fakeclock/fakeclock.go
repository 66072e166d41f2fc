// Package fakeclock is a clock for tests that moves only when told to.
package fakeclock

import (
	"sort"
	"sync"
	"time"
)

// Clock is a fake clock: Now stays put until Advance moves it, which runs
// every AfterFunc whose time has come. It satisfies pool.Clock. The zero
// value starts at the zero time; New starts at a fixed, realistic date.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*timer
	waiting chan struct{} // closed and replaced whenever a timer is added
}

type timer struct {
	at time.Time
	f  func()
}

// New returns a clock at 2026-01-01 00:00 UTC.
func New() *Clock {
	return &Clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// At returns a clock at t.
func At(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f for d from now; see pool.Clock.
func (c *Clock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	t := &timer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	if c.waiting != nil {
		close(c.waiting)
		c.waiting = nil
	}
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.timers {
			if x == t {
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
				return true
			}
		}
		return false
	}
}

// Advance moves the clock forward by d and runs, in time order, every
// timer due by then, each in its own goroutine as time.AfterFunc would.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due, rest []*timer
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t)
		} else {
			rest = append(rest, t)
		}
	}
	c.timers = rest
	c.mu.Unlock()
	sort.SliceStable(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		go t.f()
	}
}

// Timers returns how many timers are pending.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// BlockUntil waits until n timers are pending: a test calls it to know that
// the code under test is asleep, then Advances.
func (c *Clock) BlockUntil(n int) {
	for {
		c.mu.Lock()
		if len(c.timers) >= n {
			c.mu.Unlock()
			return
		}
		if c.waiting == nil {
			c.waiting = make(chan struct{})
		}
		ch := c.waiting
		c.mu.Unlock()
		<-ch
	}
}

// Pending returns the durations from now of the pending timers, sorted.
func (c *Clock) Pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for _, t := range c.timers {
		out = append(out, t.at.Sub(c.now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
