package pool

import "maps"

// ActionType is what a matching routing rule does with a request.
type ActionType string

// The routing actions onwards defines.
const (
	// ActionDeny refuses the request (the proxy answers 403).
	ActionDeny ActionType = "deny"
	// ActionRedirect sends the request to the pool of another alias.
	ActionRedirect ActionType = "redirect"
)

// RoutingAction is the action of a routing rule. In JSON it is
// {"type":"deny"} or {"type":"redirect","target":"other-alias"}.
type RoutingAction struct {
	// Type is ActionDeny or ActionRedirect.
	Type ActionType `json:"type"`
	// Target is the alias to redirect to; set for ActionRedirect only.
	Target string `json:"target,omitempty"`
}

// RoutingRule applies Action to requests whose API key carries every label in
// MatchLabels with an equal value. A rule with no labels matches every
// request, as in onwards.
type RoutingRule struct {
	// MatchLabels must all be present, with equal values, on the key.
	MatchLabels map[string]string `json:"match_labels"`
	// Action is what a match does.
	Action RoutingAction `json:"action"`
}

// matches reports whether every label of the rule is present in labels with
// an equal value.
func (r *RoutingRule) matches(labels map[string]string) bool {
	for k, want := range r.MatchLabels {
		if got, ok := labels[k]; !ok || got != want {
			return false
		}
	}
	return true
}

// firstMatch returns the action of the first of rules that matches labels,
// and true; or false when none matches.
func firstMatch(rules []RoutingRule, labels map[string]string) (RoutingAction, bool) {
	for i := range rules {
		if rules[i].matches(labels) {
			return rules[i].Action, true
		}
	}
	return RoutingAction{}, false
}

// cloneRules deep-copies rules so that neither the caller nor the pool can
// change the other's.
func cloneRules(rules []RoutingRule) []RoutingRule {
	if rules == nil {
		return nil
	}
	out := make([]RoutingRule, len(rules))
	for i, r := range rules {
		out[i] = RoutingRule{MatchLabels: maps.Clone(r.MatchLabels), Action: r.Action}
	}
	return out
}
