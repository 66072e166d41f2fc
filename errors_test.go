package pool

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewProviderPoolRejectsBadInput(t *testing.T) {
	t.Parallel()
	good := func() *Provider { return NewProvider(newTestTarget(t, "https://api.example.com"), 1) }
	tests := []struct {
		name      string
		providers []*Provider
		opts      []Option
		want      string
	}{
		{"nil provider", []*Provider{good(), nil}, nil, "pool: providers[1]: provider is nil"},
		{"nil target", []*Provider{{Weight: 1}}, nil, "pool: providers[0].target: target is nil"},
		{"target without URL", []*Provider{{Target: &Target{}, Weight: 1}}, nil, "pool: providers[0].target.url: target has no URL"},
		{"relative URL", []*Provider{{Target: &Target{URL: &url.URL{Path: "/v1"}}}}, nil, `pool: providers[0].target.url: "/v1" is not an absolute http(s) URL`},
		{"negative provider limit", []*Provider{NewProviderWithConcurrencyLimit(good().Target, 1, -2)}, nil, "pool: providers[0].concurrency_limit: -2 is negative"},
		{"negative max attempts", []*Provider{good()}, []Option{WithFallback(FallbackConfig{Enabled: true, MaxAttempts: -1})}, "pool: fallback.max_attempts: -1 is negative"},
		{"status pattern matching nothing", []*Provider{good()}, []Option{WithFallback(FallbackConfig{OnStatus: []int{503, 7}})}, "pool: fallback.on_status[1]: 7 matches no HTTP status"},
		{"status pattern zero", []*Provider{good()}, []Option{WithFallback(FallbackConfig{OnStatus: []int{0}})}, "pool: fallback.on_status[0]: 0 matches no HTTP status"},
		{"status pattern too large", []*Provider{good()}, []Option{WithFallback(FallbackConfig{OnStatus: []int{5003}})}, "pool: fallback.on_status[0]: 5003 matches no HTTP status"},
		{"unknown strategy", []*Provider{good()}, []Option{WithStrategy(LoadBalanceStrategy(9))}, "pool: strategy: LoadBalanceStrategy(9) is not defined"},
		{"negative pool limit", []*Provider{good()}, []Option{WithConcurrencyLimiter(NewConcurrencyLimiterWithLimit(-1))}, "pool: concurrency_limit: -1 is negative"},
		{"unknown routing action", []*Provider{good()}, []Option{WithRoutingRules(RoutingRule{Action: RoutingAction{Type: "allow"}})}, `pool: routing_rules[0].action.type: "allow" is not a routing action`},
		{"empty routing action", []*Provider{good()}, []Option{WithRoutingRules(RoutingRule{})}, `pool: routing_rules[0].action.type: "" is not a routing action`},
		{"deny with target", []*Provider{good()}, []Option{WithRoutingRules(RoutingRule{Action: RoutingAction{Type: ActionDeny, Target: "x"}})}, `pool: routing_rules[0].action.target: "x" is set on a deny action`},
		{"nil option", []*Provider{good()}, []Option{WithTrusted(true), nil}, "pool: options[1]: option is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewProviderPool(tt.providers, tt.opts...)
			assert.Nil(t, p)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			var fe *FieldError
			require.ErrorAs(t, err, &fe, "every problem is a *FieldError")
			assert.Equal(t, tt.want, fe.Error()[:min(len(tt.want), len(fe.Error()))])
		})
	}
}

// TestNewProviderPoolAcceptsWhatFilesMay holds the Go API to the bounds of
// config files: a redirect without a target (a 503 at request time) and a
// limit of 0 (refuses every request) are accepted by both.
func TestNewProviderPoolAcceptsWhatFilesMay(t *testing.T) {
	t.Parallel()
	p, err := NewProviderPool([]*Provider{NewProviderWithConcurrencyLimit(newTestTarget(t, "https://a.example.com"), 1, 0)},
		WithRoutingRules(RoutingRule{Action: RoutingAction{Type: ActionRedirect}}),
		WithConcurrencyLimiter(NewConcurrencyLimiterWithLimit(0)),
		WithFallback(FallbackConfig{Enabled: true, MaxAttempts: 0}))
	require.NoError(t, err)
	_, ok := p.Select()
	assert.False(t, ok, "a provider limited to 0 is never selected")
}

func TestNewProviderPoolReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := NewProviderPool([]*Provider{nil, {Target: &Target{}}},
		WithStrategy(LoadBalanceStrategy(-1)),
		WithFallback(FallbackConfig{MaxAttempts: -3}))
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	assert.Equal(t, []string{
		"pool: providers[0]: provider is nil",
		"pool: providers[1].target.url: target has no URL; build targets with NewTarget",
		"pool: strategy: LoadBalanceStrategy(-1) is not defined; want WeightedRandom, Priority, TokenAware, PeakEWMA or RoundRobin",
		"pool: fallback.max_attempts: -3 is negative; want 0 (one attempt per provider) or more",
	}, lines)
}

func TestErrorsNeverShowKeys(t *testing.T) {
	t.Parallel()
	target := newTestTarget(t, "https://api.example.com")
	target.UpstreamKey = "sk-upstream-secret"
	target.URL.User = url.UserPassword("user", "pw-secret")
	target.URL.Scheme = "ftp"
	_, err := NewProviderPool([]*Provider{NewProviderWithConcurrencyLimit(target, 1, -1)})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "sk-upstream-secret")
	assert.NotContains(t, err.Error(), "pw-secret")
}

func TestNilAndZeroPools(t *testing.T) {
	t.Parallel()
	var nilPool *ProviderPool
	_, ok := nilPool.Select()
	assert.False(t, ok)
	_, ok = nilPool.SelectIter().Next()
	assert.False(t, ok)
	for range nilPool.Attempts() {
		t.Fatal("a nil pool yields nothing")
	}

	var zero ProviderPool
	_, ok = zero.Select()
	assert.False(t, ok)
	assert.True(t, zero.IsEmpty())
	assert.Nil(t, zero.FirstTarget())
	assert.Equal(t, WeightedRandom, zero.Strategy())
}
