package pool

import (
	"sync"
	"time"
)

// Defaults of RetryBudget, for its zero fields.
const (
	DefaultRetryBudgetTTL      = 10 * time.Second
	DefaultMinRetriesPerSecond = 10
	DefaultPercentCanRetry     = 20
)

// RetryBudget caps the retries of a pool across its requests, in the shape
// of Finagle's RetryBudget, opt-in with [WithRetryBudget]: over the last
// TTL, retries may number MinRetriesPerSecond*TTL plus PercentCanRetry of
// the requests. Once it is spent, a walk ([ProviderPool.Attempts]) ends
// after its current attempt, and the caller answers with what that attempt
// got. It keeps a failing upstream from receiving several times its normal
// load from retries. The zero value of each field takes its default.
type RetryBudget struct {
	// TTL is how long a request or a retry counts. 0: 10 s.
	TTL time.Duration
	// MinRetriesPerSecond may always be spent, so that a quiet pool can
	// still retry. 0: 10.
	MinRetriesPerSecond int
	// PercentCanRetry of the requests may be retried on top, 0 to 1000.
	// 0: 20.
	PercentCanRetry int
}

func (b RetryBudget) withDefaults() RetryBudget {
	if b.TTL <= 0 {
		b.TTL = DefaultRetryBudgetTTL
	}
	if b.MinRetriesPerSecond <= 0 {
		b.MinRetriesPerSecond = DefaultMinRetriesPerSecond
	}
	if b.PercentCanRetry <= 0 {
		b.PercentCanRetry = DefaultPercentCanRetry
	}
	return b
}

// budgetSlots is how many slots the TTL window is cut into: a request or a
// retry stops counting between TTL and TTL*(1+1/budgetSlots) after it.
const budgetSlots = 10

// retryBudget counts requests and retries over a sliding window of slots.
type retryBudget struct {
	cfg   RetryBudget
	clock Clock
	mu    sync.Mutex
	slots [budgetSlots]budgetSlot
}

type budgetSlot struct {
	epoch             int64 // which slot-length interval since the Unix epoch it counts
	requests, retries int64
}

func newRetryBudget(cfg RetryBudget, clock Clock) *retryBudget {
	return &retryBudget{cfg: cfg.withDefaults(), clock: clockOr(clock)}
}

// slot returns the slot of now, emptied if it held an older interval, and
// the epoch of now.
func (b *retryBudget) slot() (*budgetSlot, int64) {
	epoch := b.clock.Now().UnixNano() / int64(b.cfg.TTL/budgetSlots)
	s := &b.slots[epoch%budgetSlots]
	if s.epoch != epoch {
		*s = budgetSlot{epoch: epoch}
	}
	return s, epoch
}

// deposit counts one request.
func (b *retryBudget) deposit() {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, _ := b.slot()
	s.requests++
}

// withdraw spends one retry and reports whether the budget allowed it.
func (b *retryBudget) withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, epoch := b.slot()
	var requests, retries int64
	for i := range b.slots {
		if w := &b.slots[i]; epoch-w.epoch < budgetSlots {
			requests += w.requests
			retries += w.retries
		}
	}
	allowed := int64(b.cfg.MinRetriesPerSecond)*int64(b.cfg.TTL/time.Second) + requests*int64(b.cfg.PercentCanRetry)/100
	if retries >= allowed {
		return false
	}
	s.retries++
	return true
}
