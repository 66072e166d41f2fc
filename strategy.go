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
)

// strategyNames are the names onwards' config files use.
var strategyNames = [...]string{
	WeightedRandom: "weighted_random",
	Priority:       "priority",
}

// valid reports whether s is one of the defined strategies.
func (s LoadBalanceStrategy) valid() bool {
	return s >= 0 && int(s) < len(strategyNames)
}

// String returns the strategy's config name, "weighted_random" or "priority",
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

// UnmarshalText sets s from a config name, "weighted_random" or "priority".
// Any other text is an error that names it.
func (s *LoadBalanceStrategy) UnmarshalText(text []byte) error {
	for i, name := range strategyNames {
		if string(text) == name {
			*s = LoadBalanceStrategy(i)
			return nil
		}
	}
	return fmt.Errorf("unknown strategy %q; want %q or %q", text, strategyNames[WeightedRandom], strategyNames[Priority])
}
