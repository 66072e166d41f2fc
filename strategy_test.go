package pool

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadBalanceStrategyText(t *testing.T) {
	t.Parallel()
	var zero LoadBalanceStrategy
	assert.Equal(t, WeightedRandom, zero, "the zero value is weighted_random")

	for s, name := range map[LoadBalanceStrategy]string{
		WeightedRandom: "weighted_random", Priority: "priority", TokenAware: "token_aware", PeakEWMA: "p2c_ewma", RoundRobin: "round_robin",
	} {
		assert.Equal(t, name, s.String())
		text, err := s.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, name, string(text))
		var back LoadBalanceStrategy
		require.NoError(t, back.UnmarshalText([]byte(name)))
		assert.Equal(t, s, back)
	}

	assert.Equal(t, "LoadBalanceStrategy(7)", LoadBalanceStrategy(7).String())
	_, err := LoadBalanceStrategy(7).MarshalText()
	assert.Error(t, err)

	for _, bad := range []string{"", "least_busy", "Round_Robin", "Priority", "weighted-random"} {
		s := Priority
		err := s.UnmarshalText([]byte(bad))
		require.Error(t, err, "%q", bad)
		assert.Contains(t, err.Error(), `"`+bad+`"`)
		assert.Equal(t, Priority, s, "a failed unmarshal leaves the value alone")
	}
}

func TestLoadBalanceStrategyJSON(t *testing.T) {
	t.Parallel()
	var cfg struct {
		Strategy LoadBalanceStrategy `json:"strategy"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"strategy":"priority"}`), &cfg))
	assert.Equal(t, Priority, cfg.Strategy)
	out, err := json.Marshal(cfg)
	require.NoError(t, err)
	assert.JSONEq(t, `{"strategy":"priority"}`, string(out))
	assert.ErrorContains(t, json.Unmarshal([]byte(`{"strategy":"random"}`), &cfg), `unknown strategy "random"`)
}
