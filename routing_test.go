package pool

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoutingRuleJSON(t *testing.T) {
	t.Parallel()
	in := `[{"match_labels":{"purpose":"batch"},"action":{"type":"redirect","target":"gpt-4o-mini"}},
	        {"match_labels":{"tier":"free"},"action":{"type":"deny"}}]`
	var rules []RoutingRule
	require.NoError(t, json.Unmarshal([]byte(in), &rules))
	assert.Equal(t, []RoutingRule{
		{MatchLabels: map[string]string{"purpose": "batch"}, Action: RoutingAction{Type: ActionRedirect, Target: "gpt-4o-mini"}},
		{MatchLabels: map[string]string{"tier": "free"}, Action: RoutingAction{Type: ActionDeny}},
	}, rules)
	out, err := json.Marshal(rules)
	require.NoError(t, err)
	assert.JSONEq(t, in, string(out))
}

func TestRoutingRuleWithoutLabelsMatchesEveryRequest(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://api.example.com"), 1)},
		WithRoutingRules(RoutingRule{Action: RoutingAction{Type: ActionDeny}}))
	for _, labels := range []map[string]string{nil, {}, {"purpose": "batch"}} {
		action, ok := p.EvaluateRoutingRules(labels)
		require.True(t, ok, "labels %v", labels)
		assert.Equal(t, ActionDeny, action.Type)
	}
}

func TestRoutingRulesAreCopied(t *testing.T) {
	t.Parallel()
	rules := []RoutingRule{{MatchLabels: map[string]string{"purpose": "batch"}, Action: RoutingAction{Type: ActionDeny}}}
	p := newTestPool(t, []*Provider{NewProvider(newTestTarget(t, "https://api.example.com"), 1)}, WithRoutingRules(rules...))

	rules[0].MatchLabels["purpose"] = "changed"
	got := p.RoutingRules()
	got[0].MatchLabels["purpose"] = "changed too"
	got[0].Action.Type = ActionRedirect

	action, ok := p.EvaluateRoutingRules(map[string]string{"purpose": "batch"})
	require.True(t, ok, "neither the caller's slice nor the returned copy reaches the pool")
	assert.Equal(t, ActionDeny, action.Type)
	assert.Equal(t, rules[0].Action, p.RoutingRules()[0].Action)
}
