package pool

// AIMDSpec is a fallback's "aimd" object: [AIMD] as written in a file.
// Every member may be left out for DefaultAIMD's value. A priority pool
// whose fallback is enabled has the controller unless Enabled is false,
// as in onwards 2.0.
type AIMDSpec struct {
	Enabled            *bool    `json:"enabled,omitempty"` // nil: true
	LatencyBudgetMs    *int64   `json:"latency_budget_ms,omitempty"`
	BreachRateTarget   *float64 `json:"breach_rate_target,omitempty"`
	RecoveryBreachRate *float64 `json:"recovery_breach_rate,omitempty"`
	WindowSamples      *int     `json:"window_samples,omitempty"`
	MinSamples         *int     `json:"min_samples,omitempty"`
	ShareStep          *float64 `json:"share_step,omitempty"`
	ShareDecay         *float64 `json:"share_decay,omitempty"`
	ShareFloor         *float64 `json:"share_floor,omitempty"`
	DwellMs            *int64   `json:"dwell_ms,omitempty"`
	IdleRecoveryMs     *int64   `json:"idle_recovery_ms,omitempty"`
	OverloadStatuses   []int    `json:"overload_statuses,omitempty"`
}

// enabled reports whether the spec leaves the controller on.
func (s *AIMDSpec) enabled() bool {
	return s == nil || s.Enabled == nil || *s.Enabled
}

// config returns the AIMD the spec writes over DefaultAIMD.
func (s *AIMDSpec) config() AIMD {
	a := DefaultAIMD()
	if s == nil {
		return a
	}
	setMs(&a.LatencyBudget, s.LatencyBudgetMs)
	setMs(&a.Dwell, s.DwellMs)
	setMs(&a.IdleRecovery, s.IdleRecoveryMs)
	for _, f := range []struct {
		dst *float64
		src *float64
	}{{&a.BreachRateTarget, s.BreachRateTarget}, {&a.RecoveryBreachRate, s.RecoveryBreachRate},
		{&a.ShareStep, s.ShareStep}, {&a.ShareDecay, s.ShareDecay}, {&a.ShareFloor, s.ShareFloor}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if s.WindowSamples != nil {
		a.WindowSamples = *s.WindowSamples
	}
	if s.MinSamples != nil {
		a.MinSamples = *s.MinSamples
	}
	if s.OverloadStatuses != nil {
		a.OverloadStatuses = s.OverloadStatuses
	}
	return a
}

// AffinitySpec is a fallback's "affinity" object: [Affinity] as written
// in a file. TargetConversations is required; the rest may be left out
// for DefaultAffinity's values.
type AffinitySpec struct {
	Enabled             *bool    `json:"enabled,omitempty"` // nil: true
	TargetConversations int      `json:"target_conversations"`
	Margin              *int     `json:"margin,omitempty"`
	ActiveWindowMs      *int64   `json:"active_window_ms,omitempty"`
	UpdateIntervalMs    *int64   `json:"update_interval_ms,omitempty"`
	MaxTracked          *int     `json:"max_tracked,omitempty"`
	LoadBound           *float64 `json:"load_bound,omitempty"` // this library's; nil or 0: 1.25
}

func (s *AffinitySpec) enabled() bool {
	return s != nil && (s.Enabled == nil || *s.Enabled)
}

// config returns the Affinity the spec writes over DefaultAffinity.
func (s *AffinitySpec) config() Affinity {
	a := DefaultAffinity(s.TargetConversations)
	setMs(&a.ActiveWindow, s.ActiveWindowMs)
	setMs(&a.UpdateInterval, s.UpdateIntervalMs)
	if s.Margin != nil {
		a.Margin = max(*s.Margin, 1) // onwards reads a margin of 0 as 1
		if *s.Margin < 0 {
			a.Margin = *s.Margin
		}
	}
	if s.MaxTracked != nil {
		a.MaxTracked = *s.MaxTracked
	}
	if s.LoadBound != nil {
		a.LoadBound = *s.LoadBound
	}
	return a
}
