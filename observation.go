package pool

import (
	"slices"
	"sync/atomic"
	"time"
)

// FirstTokenObservation is one load-aware attempt on a pool's preferred
// provider, watched by the pool's [AIMD] controller; [SelectIter.Observe]
// begins it. Report how the attempt went with Frame, Deadline or Status;
// the first report counts and later ones do nothing. Close ends an
// observation that was not reported as unknown; always close it.
//
// A nil *FirstTokenObservation ignores every call, so a caller need not
// check whether the attempt is observed. It is safe for simultaneous use.
type FirstTokenObservation struct {
	c     *shareController
	gen   uint64
	start time.Time
	done  atomic.Bool
}

// Frame reports the first data frame of the answer, arriving now: healthy
// within the controller's latency budget, a breach after it.
func (o *FirstTokenObservation) Frame() {
	if o == nil {
		return
	}
	if o.c.clock.Now().Sub(o.start) > o.c.cfg.LatencyBudget {
		o.end(shareBreach)
	} else {
		o.end(shareHealthy)
	}
}

// Deadline reports that the first-token deadline expired now. A deadline
// shorter than the latency budget proves nothing of it: unknown.
func (o *FirstTokenObservation) Deadline() {
	if o == nil {
		return
	}
	if o.c.clock.Now().Sub(o.start) >= o.c.cfg.LatencyBudget {
		o.end(shareBreach)
	} else {
		o.end(shareUnknown)
	}
}

// Status reports an error status from the provider, as the HTTP status or
// inside a stream: one of the controller's overload statuses is a breach,
// any other unknown.
func (o *FirstTokenObservation) Status(code int) {
	if o == nil {
		return
	}
	if slices.Contains(o.c.cfg.OverloadStatuses, code) {
		o.end(shareBreach)
	} else {
		o.end(shareUnknown)
	}
}

// Close ends the observation; unreported, it is unknown (a cancelled
// attempt, a network error, an empty stream).
func (o *FirstTokenObservation) Close() {
	if o != nil {
		o.end(shareUnknown)
	}
}

func (o *FirstTokenObservation) end(outcome shareOutcome) {
	if o.done.CompareAndSwap(false, true) {
		o.c.finish(o.gen, outcome)
	}
}
