package pool

import "time"

// Clock is the source of time for what a pool does over time: outlier
// ejections and their expiry, Retry-After cooldowns, retry budgets and
// fallback backoff. Tests give a fake one, so that nothing waits on real
// time. Implementations must be safe for simultaneous use by multiple
// goroutines.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f, in its own goroutine, once d has passed. The
	// returned stop cancels the call and reports whether it did so before
	// f started, as [time.Timer.Stop] does.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock is the Clock of the time package: the clock of a pool or a
// registry that is given none.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// clockOr returns c, or SystemClock when c is nil.
func clockOr(c Clock) Clock {
	if c == nil {
		return SystemClock
	}
	return c
}
