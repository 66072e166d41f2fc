package pool

import "fmt"

// LoadBalanceStrategy is how a pool picks among its providers.
type LoadBalanceStrategy int

const (
	// WeightedRandom picks the provider with the fewest requests in flight
	// per unit of weight, breaking ties at random in proportion to weight.
	// It is the zero value and the default.
	WeightedRandom LoadBalanceStrategy = iota
	// Priority picks the first provider, in the order given, that has room.
	Priority
	// TokenAware picks the provider with the fewest LLM tokens in flight
	// per unit of weight: the estimates of the requests it is serving
	// (see [SelectIter.SetTokens]), so that one long completion weighs
	// what many short ones do. Ties are broken at random in proportion to
	// weight, and weight 0 drains, as under WeightedRandom. A pool with
	// limits shared across replicas weighs requests, not tokens.
	TokenAware
	// PeakEWMA is weighted power of two choices over latency: it draws two
	// providers with room at random in proportion to weight and takes the
	// one with the lower peak EWMA of time to first byte (reported with
	// [Selection.ReportLatency]) times its requests in flight plus one,
	// per unit of weight. A provider that joins the pool, or returns from
	// an outlier ejection, starts at a tenth of its weight and ramps up
	// over [SlowStart]. Config name "p2c_ewma". A pool with limits shared
	// across replicas weighs requests, as weighted_random does.
	PeakEWMA
	// RoundRobin takes the providers in turn, skipping those at their
	// limit and those of weight 0; other weights are not weighed. Config
	// name "round_robin". It is the baseline of the strategy simulator
	// (bench/sim), and what many proxies do by default.
	RoundRobin
)

// strategyNames are the names config files use: onwards' two, and this
// library's token_aware.
var strategyNames = [...]string{
	WeightedRandom: "weighted_random",
	Priority:       "priority",
	TokenAware:     "token_aware",
	PeakEWMA:       "p2c_ewma",
	RoundRobin:     "round_robin",
}

// valid reports whether s is one of the defined strategies.
func (s LoadBalanceStrategy) valid() bool {
	return s >= 0 && int(s) < len(strategyNames)
}

// String returns the strategy's config name, such as "weighted_random",
// or "LoadBalanceStrategy(N)" for an undefined value.
func (s LoadBalanceStrategy) String() string {
	if !s.valid() {
		return fmt.Sprintf("LoadBalanceStrategy(%d)", int(s))
	}
	return strategyNames[s]
}

// MarshalText returns the strategy's config name. An undefined strategy is an
// error.
func (s LoadBalanceStrategy) MarshalText() ([]byte, error) {
	if !s.valid() {
		return nil, fmt.Errorf("pool: cannot marshal undefined %v", s)
	}
	return []byte(strategyNames[s]), nil
}

// UnmarshalText sets s from a config name: "weighted_random", "priority",
// "token_aware", "p2c_ewma" or "round_robin". Any other text is an error
// that names it.
func (s *LoadBalanceStrategy) UnmarshalText(text []byte) error {
	for i, name := range strategyNames {
		if string(text) == name {
			*s = LoadBalanceStrategy(i)
			return nil
		}
	}
	return fmt.Errorf("unknown strategy %q; want %q, %q, %q, %q or %q", text, strategyNames[WeightedRandom],
		strategyNames[Priority], strategyNames[TokenAware], strategyNames[PeakEWMA], strategyNames[RoundRobin])
}
