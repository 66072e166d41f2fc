package gateway

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConfigsOnwardsLoads drives the configs that load with a warning (see
// pool's TestParseConfigLoadsWhatOnwardsLoads) through the gateway: each
// has a defined answer, with no internals in it.
func TestConfigsOnwardsLoads(t *testing.T) {
	t.Parallel()
	up := &recorder{}
	r := newRig(t, `{
		"auth": {"key_definitions": {"free": {"key": "sk-free", "labels": {"tier": "free"}}}},
		"targets": {
			"dangling": {"url": "$A", "routing_rules": [{"match_labels": {}, "action": {"type": "redirect", "target": "deleted-model"}}]},
			"blank": {"url": "$A", "routing_rules": [{"match_labels": {}, "action": {"type": "redirect", "target": ""}}]},
			"empty": {"providers": []},
			"empty-denied": {"keys": ["free"], "providers": [],
			                 "routing_rules": [{"match_labels": {"tier": "free"}, "action": {"type": "deny"}}]},
			"zero-pool": {"concurrency_limit": {"max_concurrent_requests": 0}, "providers": [{"url": "$A"}]},
			"zero-provider": {"providers": [{"url": "$A", "concurrency_limit": {"max_concurrent_requests": 0}}]}}}`,
		map[string]http.Handler{"A": up})

	for _, alias := range []string{"dangling", "blank"} {
		a := r.chat(alias)
		require.Equal(t, http.StatusServiceUnavailable, a.status, alias)
		e := openAIError(t, a)
		assert.Equal(t, "service_unavailable", e.Error.Code)
		assert.NotContains(t, a.body, "deleted-model", "the redirect's target is config, not for clients")
	}
	a := r.chat("empty")
	require.Equal(t, http.StatusServiceUnavailable, a.status)
	assert.Equal(t, "no_providers", openAIError(t, a).Error.Code)

	a = r.chat("empty-denied", "Authorization", "Bearer sk-free")
	assert.Equal(t, http.StatusForbidden, a.status, "routing rules run before the empty-pool check (onwards 0.18.4)")

	for range 3 {
		for _, alias := range []string{"zero-pool", "zero-provider"} {
			a := r.chat(alias)
			require.Equal(t, http.StatusTooManyRequests, a.status, alias)
			assert.Equal(t, "concurrency_limit_exceeded", openAIError(t, a).Error.Code)
			assert.Equal(t, "1", a.header.Get("Retry-After"))
		}
	}
	assert.Empty(t, up.calls(), "none of these reaches an upstream")
}
