package pool

import (
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AccountLabel is the key-definition label that names a key's account, for
// the in-flight limits of onwards 2.0: every key of an account shares one
// count.
const AccountLabel = "account"

// InflightRetryAfter is the Retry-After of a refusal by an in-flight
// limit, as onwards sends it.
const InflightRetryAfter = time.Second

// inflightState is an alias's in-flight limits (inflight_limit,
// account_inflight_limits, batch_inflight_limit) and their counts. The
// counts are shared with the state of the same alias in the snapshot it
// replaces, so that a reload drifts nothing.
type inflightState struct {
	alias    string
	account  int64            // each account's limit; -1: none
	accounts map[string]int64 // per-account overrides
	batch    int64            // the alias's dispatched requests; -1: uncapped
	counts   *inflightCounts
	shared   SharedState       // nil: counted in this process
	limiters sync.Map          // account -> SharedConcurrency, under shared
	batchLim SharedConcurrency // the batch cap under shared
}

// inflightCounts are the local counts of one alias.
type inflightCounts struct {
	accounts      sync.Map // account -> *accountCount
	batch         atomic.Int64
	batchRefusals atomic.Uint64
}

// accountCount is one account's requests in flight on an alias, and how
// many of its requests the limit checked and refused.
type accountCount struct {
	inflight atomic.Int64
	checks   atomic.Uint64
	refusals atomic.Uint64
}

// limitFor returns the limit of account, or -1 for none.
func (s *inflightState) limitFor(account string) int64 {
	if n, ok := s.accounts[account]; ok {
		return n
	}
	return s.account
}

// take takes a slot of the request, realtime or dispatched, of account
// ("" for a key without one). It returns the release, which frees the slot
// once (nil when nothing was counted), and true; or false when the limit
// refuses it.
func (s *inflightState) take(account string, dispatched bool) (func(), bool) {
	if dispatched {
		if s.batch < 0 {
			return nil, true
		}
		rel, ok := acquireInflight(s.batch, &s.counts.batch, s.batchLim)
		if !ok {
			s.counts.batchRefusals.Add(1)
		}
		return rel, ok
	}
	limit := s.limitFor(account)
	if account == "" || limit < 0 {
		return nil, true
	}
	v, _ := s.counts.accounts.LoadOrStore(account, new(accountCount))
	c := v.(*accountCount)
	c.checks.Add(1)
	var lim SharedConcurrency
	if s.shared != nil {
		l, _ := s.limiters.LoadOrStore(account, s.shared.Concurrency(
			"inflight/"+s.alias+"/"+sprintDigest(account), int(min(limit, math.MaxInt32))))
		lim = l.(SharedConcurrency)
	}
	rel, ok := acquireInflight(limit, &c.inflight, lim)
	if !ok {
		c.refusals.Add(1)
	}
	return rel, ok
}

// count returns the realtime requests of account in flight in this
// process.
func (s *inflightState) count(account string) int64 {
	if v, ok := s.counts.accounts.Load(account); ok {
		return v.(*accountCount).inflight.Load()
	}
	return 0
}

// InflightSnapshot is an alias's in-flight limits at one moment: each
// account it has counted, and its dispatched requests.
type InflightSnapshot struct {
	Accounts      []AccountInflight // by account name
	BatchInFlight int64             // dispatched requests in flight
	BatchLimit    int64             // -1: uncapped
	BatchRefusals uint64            // dispatched requests refused
}

// AccountInflight is one account's count on an alias.
type AccountInflight struct {
	Account  string
	Limit    int64  // -1: none
	InFlight int64  // in this process
	Checks   uint64 // realtime requests checked against the limit
	Refusals uint64 // of those, refused
}

func (s *inflightState) snapshot() *InflightSnapshot {
	out := &InflightSnapshot{BatchInFlight: s.counts.batch.Load(), BatchLimit: s.batch, BatchRefusals: s.counts.batchRefusals.Load()}
	s.counts.accounts.Range(func(k, v any) bool {
		c := v.(*accountCount)
		out.Accounts = append(out.Accounts, AccountInflight{Account: k.(string), Limit: s.limitFor(k.(string)),
			InFlight: c.inflight.Load(), Checks: c.checks.Load(), Refusals: c.refusals.Load()})
		return true
	})
	slices.SortFunc(out.Accounts, func(a, b AccountInflight) int { return strings.Compare(a.Account, b.Account) })
	return out
}

// acquireInflight takes a slot of count under limit or, with a shared
// limit, of the shared limit, which has the last word; count then only
// counts this process's slots.
func acquireInflight(limit int64, count *atomic.Int64, shared SharedConcurrency) (func(), bool) {
	for {
		n := count.Load()
		if n >= limit && shared == nil {
			return nil, false
		}
		if count.CompareAndSwap(n, n+1) {
			break
		}
	}
	release := func() { count.Add(-1) }
	if shared != nil {
		rel, _, ok := shared.TryAcquire()
		if !ok {
			release()
			return nil, false
		}
		local := release
		release = func() { rel(); local() }
	}
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			release()
		}
	}, true
}
