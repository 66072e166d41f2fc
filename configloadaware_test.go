package pool

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOnwards2FieldsLoadInStrictMode(t *testing.T) {
	cfg := loadTestConfig(t, "onwards-2.json")
	assert.Equal(t, []string{`targets["gpt-4"].serving_classes`, `targets["qwen"].providers[2].kind`}, cfg.NotActedOn)
	r, err := NewRegistry(cfg)
	require.NoError(t, err)

	pool := func(alias string) *ProviderPool {
		p, ok := r.Pool(alias)
		require.True(t, ok, alias)
		return p
	}
	qwen := pool("qwen")
	f, _ := qwen.Fallback()
	assert.Equal(t, 10*time.Second, f.FirstTokenTimeout)
	assert.True(t, f.ShouldFallbackOnRealtimeStatus(529))
	assert.False(t, f.ShouldFallbackOnStatus(529), "529 fails over realtime requests only")
	s, ok := qwen.ShareSnapshot()
	require.True(t, ok, "priority with fallback: the controller is on")
	assert.True(t, s.Active)
	assert.Equal(t, DefaultAIMD(), *qwen.aimd, "the defaults, written out")
	assert.Equal(t, 50, qwen.affinity.TargetConversations)
	assert.Equal(t, []Serves{ServesBoth, ServesChat, ServesCompletions},
		[]Serves{qwen.providers[0].Target.Serves, qwen.providers[1].Target.Serves, qwen.providers[2].Target.Serves})

	older := pool("older-aimd")
	assert.Equal(t, []int{429, 503, 529}, older.aimd.OverloadStatuses, "an override without the newer fields")
	assert.Equal(t, 0.03, older.aimd.RecoveryBreachRate)
	_, ok = pool("opted-out").ShareSnapshot()
	assert.False(t, ok, "aimd.enabled false opts out")
	_, ok = pool("gpt-4").ShareSnapshot()
	assert.False(t, ok, "weighted pools have no controller")
}

func TestOnwards2FieldsRefuseTyposAndBadValuesWithTheirPlace(t *testing.T) {
	for _, tc := range []struct {
		doc, place string
	}{
		{`{"targets":{"m":{"strategy":"priority","fallback":{"enabled":true,"aimd":{"dwel_ms":1}},"providers":[{"url":"https://a.example.com"}]}}}`,
			`targets["m"].fallback.aimd: unknown field "dwel_ms"`},
		{`{"targets":{"m":{"fallback":{"first_token_timout_ms":1},"providers":[{"url":"https://a.example.com"}]}}}`,
			`targets["m"].fallback: unknown field "first_token_timout_ms"`},
		{`{"targets":{"m":{"fallback":{"affinity":{"target_conversation":5}},"providers":[{"url":"https://a.example.com"}]}}}`,
			`targets["m"].fallback.affinity: unknown field "target_conversation"`},
		{`{"targets":{"m":{"inflight_limt":1,"providers":[{"url":"https://a.example.com"}]}}}`,
			`targets["m"]: unknown field "inflight_limt"`},
		{`{"targets":{"m":{"providers":[{"url":"https://a.example.com","serve":"chat"}]}}}`,
			`targets["m"].providers[0]: unknown field "serve"`},
		{`{"targets":{"m":{"providers":[{"url":"https://a.example.com","serves":"embeddings"}]}}}`,
			`targets["m"].providers[0].serves`},
		{`{"targets":{"m":{"inflight_limit":-1,"providers":[{"url":"https://a.example.com"}]}}}`,
			`targets["m"].inflight_limit`},
		{`{"targets":{"m":{"account_inflight_limits":{"":3},"providers":[{"url":"https://a.example.com"}]}}}`,
			`targets["m"].account_inflight_limits[""]`},
		{`{"targets":{"m":{"serving_classes":["fast"],"providers":[{"url":"https://a.example.com"}]}}}`,
			`targets["m"].serving_classes[0]`},
		{`{"targets":{"m":{"strategy":"priority","fallback":{"enabled":true,"first_token_timeout_ms":500,"aimd":{"latency_budget_ms":1000}},"providers":[{"url":"https://a.example.com"}]}}}`,
			`targets["m"].fallback.first_token_timeout_ms`},
		{`{"targets":{"m":{"strategy":"priority","fallback":{"enabled":true,"aimd":{"min_samples":1}},"providers":[{"url":"https://a.example.com"}]}}}`,
			`targets["m"].fallback.aimd.min_samples`},
		{`{"targets":{"m":{"fallback":{"affinity":{"target_conversations":0}},"providers":[{"url":"https://a.example.com"}]}}}`,
			`targets["m"].fallback.affinity.target_conversations`},
		{`{"targets":{"m":{"fallback":{"realtime_on_status":[600]},"providers":[{"url":"https://a.example.com"}]}}}`,
			`targets["m"].fallback.realtime_on_status[0]`},
	} {
		_, err := ParseConfig([]byte(tc.doc))
		require.Error(t, err, tc.place)
		assert.True(t, strings.Contains(err.Error(), tc.place), "%s: %v", tc.place, err)
	}
}

func TestAIMDOnAWeightedPoolWarnsThatItIsInert(t *testing.T) {
	cfg := mustParse(t, `{"targets":{"m":{"fallback":{"enabled":true,"aimd":{"dwell_ms":1000}},"providers":[{"url":"https://a.example.com"}]}}}`)
	require.Len(t, cfg.Warnings, 1)
	assert.Contains(t, cfg.Warnings[0].String(), `targets["m"].fallback.aimd`)
	assert.Contains(t, cfg.Warnings[0].String(), "does nothing")
}
