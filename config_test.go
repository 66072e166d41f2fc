package pool

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func loadTestConfig(t testing.TB, name string) *Config {
	t.Helper()
	cfg, err := LoadConfig(filepath.Join("testdata", name))
	require.NoError(t, err)
	return cfg
}

func mustParse(t testing.TB, doc string) *Config {
	t.Helper()
	cfg, err := ParseConfig([]byte(doc))
	require.NoError(t, err)
	return cfg
}

func TestParseConfigIssueExample(t *testing.T) {
	t.Parallel()
	cfg := loadTestConfig(t, "issue-example.json")
	assert.Empty(t, cfg.NotActedOn)
	assert.False(t, cfg.StrictMode)
	require.NotNil(t, cfg.HTTPPool)
	assert.Equal(t, 100, *cfg.HTTPPool.MaxIdlePerHost, "fields not acted on are kept")

	r, err := NewRegistry(cfg)
	require.NoError(t, err)
	assert.Equal(t, []string{"gpt-4o", "gpt-4o-mini", "legacy-list"}, r.Aliases())

	// The pool form.
	p, ok := r.Pool("gpt-4o")
	require.True(t, ok)
	assert.Equal(t, WeightedRandom, p.Strategy())
	assert.False(t, p.IsTrusted())
	require.NotNil(t, p.Keys())
	assert.True(t, p.Keys().Contains("sk-team"))
	assert.True(t, p.Keys().Contains("sk-admin"), "global keys are added to every alias")
	assert.False(t, p.Keys().Contains("sk-batch"), "a key definition grants no access by itself")
	limit, _ := p.ConcurrencyLimiter().Limit()
	assert.Equal(t, 50, limit)
	f, ok := p.Fallback()
	require.True(t, ok)
	assert.Equal(t, FallbackConfig{Enabled: true, OnStatus: []int{429, 5}, OnRateLimit: true, MaxAttempts: 3}, f)
	assert.Equal(t, []RoutingRule{{MatchLabels: map[string]string{"purpose": "batch"}, Action: RoutingAction{Type: ActionRedirect, Target: "gpt-4o-mini"}}}, p.RoutingRules())

	require.Equal(t, 1, p.Len())
	pr := p.Providers()[0]
	assert.Equal(t, uint32(3), pr.Weight)
	tg := pr.Target
	assert.Equal(t, "https://api.openai.com/v1/", tg.URL.String())
	assert.Equal(t, "sk-1", tg.UpstreamKey)
	assert.Equal(t, "gpt-4o-2024-08-06", tg.UpstreamModel)
	assert.Equal(t, 60*time.Second, tg.RequestTimeout)
	name, value := tg.AuthHeader()
	assert.Equal(t, "x-api-key", name)
	assert.Equal(t, "sk-1", value)
	assert.Equal(t, map[string]string{"x-pool": "gpt-4o"}, tg.ResponseHeaders, "pool headers reach each provider")
	require.NotNil(t, tg.Trusted)
	assert.True(t, *tg.Trusted)
	require.NotNil(t, tg.RateLimiter)
	for range 20 {
		require.True(t, tg.RateLimiter.Allow(), "burst_size defaults to requests_per_second (20)")
	}
	assert.False(t, tg.RateLimiter.Allow())

	// The single-target form: a one-provider pool with the global keys.
	mini, ok := r.Pool("gpt-4o-mini")
	require.True(t, ok)
	require.Equal(t, 1, mini.Len())
	assert.Equal(t, uint32(1), mini.Providers()[0].Weight, "weight defaults to 1")
	assert.Equal(t, 1, mini.Keys().Len(), "an alias without keys gets the global keys")
	assert.True(t, mini.Keys().Contains("sk-admin"))
	name, value = mini.FirstTarget().AuthHeader()
	assert.Equal(t, "Authorization", name)
	assert.Equal(t, "Bearer sk-2", value)

	// The legacy list.
	list, ok := r.Pool("legacy-list")
	require.True(t, ok)
	require.Equal(t, 2, list.Len())
	assert.Equal(t, uint32(2), list.Providers()[0].Weight)
	assert.Equal(t, uint32(1), list.Providers()[1].Weight)
	assert.Equal(t, "https://b.example.com/", list.Providers()[1].Target.URL.String())
}

func TestParseConfigTargetForms(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `{"targets": {
		"single": {"url": "https://s.example.com", "keys": ["k1"], "trusted": true, "strategy": "priority",
		           "rate_limit": {"requests_per_second": 2, "burst_size": 1}, "concurrency_limit": {"max_concurrent_requests": 1},
		           "routing_rules": [{"match_labels": {}, "action": {"type": "deny"}}]},
		"list": [{"url": "https://a.example.com", "keys": ["k2"], "trusted": true},
		         {"url": "https://b.example.com", "trusted": true, "weight": 0}],
		"pool": {"strategy": "priority", "providers": [{"url": "https://p.example.com", "trusted": false}]}
	}}`)
	r, err := NewRegistry(cfg)
	require.NoError(t, err)

	single, _ := r.Pool("single")
	assert.True(t, single.IsTrusted(), "a single target's trusted becomes the pool's")
	assert.Nil(t, single.FirstTarget().Trusted)
	assert.True(t, single.Keys().Contains("k1"))
	assert.Equal(t, Priority, single.Strategy())
	assert.Nil(t, single.RateLimiter(), "a single target's limits are its provider's")
	assert.Nil(t, single.ConcurrencyLimiter())
	assert.NotNil(t, single.FirstTarget().RateLimiter)
	sel, ok := single.Select()
	require.True(t, ok)
	_, ok = single.Select()
	assert.False(t, ok, "the provider's concurrency limit of 1 holds")
	sel.Close()
	_, denied := single.EvaluateRoutingRules(nil)
	assert.True(t, denied)

	list, _ := r.Pool("list")
	assert.True(t, list.IsTrusted())
	assert.True(t, list.Keys().Contains("k2"), "a list takes its keys from its first entry")
	assert.Equal(t, uint32(0), list.Providers()[1].Weight)

	pool, _ := r.Pool("pool")
	assert.False(t, pool.IsTrusted())
	require.NotNil(t, pool.FirstTarget().Trusted)
	assert.False(t, *pool.FirstTarget().Trusted)
	assert.Nil(t, pool.Keys(), "no keys and no global keys: open to all")
}

func TestParseConfigKeyDefinitionNames(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `{
		"auth": {"global_keys": ["ops"], "key_definitions": {
			"premium_user": {"key": "sk-premium"}, "ops": {"key": "sk-ops"}}},
		"targets": {"gpt-4": {"url": "https://api.example.com", "keys": ["premium_user", "sk-literal"]}}}`)
	r, err := NewRegistry(cfg)
	require.NoError(t, err)
	p, _ := r.Pool("gpt-4")
	for _, key := range []string{"sk-premium", "sk-literal", "sk-ops"} {
		assert.True(t, p.Keys().Contains(key), key)
	}
	assert.False(t, p.Keys().Contains("premium_user"), "a definition's name stands for its key, not for itself")
	assert.Equal(t, 3, p.Keys().Len())
}

func TestParseConfigKeepsNewerFieldsAsNotActedOn(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `{"open_responses": {"enabled": true}, "targets": {
		"a": {"fallback": {"enabled": true, "backoff": {"initial_ms": 100}, "max_total_backoff_ms": 5000},
		      "providers": [{"url": "https://a.example.com", "propagate_trace_context": true, "open_responses": {"adapter": true}},
		                    {"url": "https://b.example.com", "reasoning_translation": {"mode": "x"}}]},
		"b": {"url": "https://b.example.com", "propagate_trace_context": false, "sanitize_response": true}}}`)
	assert.Equal(t, []string{
		`targets["a"].providers[0].propagate_trace_context`,
		`targets["a"].providers[0].open_responses`,
		`targets["a"].providers[1].reasoning_translation`,
		`targets["b"].propagate_trace_context`,
	}, cfg.NotActedOn, "backoff and max_total_backoff_ms are acted on now")
	fc := cfg.Targets["a"].Pool.Fallback.config()
	assert.Equal(t, Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Factor: 2}, fc.Backoff, "onwards' defaults")
	assert.Equal(t, 5*time.Second, fc.MaxTotalBackoff)
	assert.JSONEq(t, `{"enabled": true}`, string(cfg.OpenResponses))
	assert.True(t, cfg.Targets["b"].Single.SanitizeResponse)
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc string
		want      []string // each must appear in the error
	}{
		{"not JSON", `{"targets": {`, []string{"pool: config: not valid JSON: line 1, column 14"}},
		{"not an object", `[1]`, []string{"pool: config: want an object, got an array"}},
		{"no targets", `{}`, []string{`pool: targets: no aliases`}},
		{"unknown top-level field", `{"target": {}}`, []string{`pool: config: unknown field "target"`}},
		{"typo drops a limit", `{"targets": {"a": {"url": "https://a.example.com", "concurency_limit": {"max_concurrent_requests": 1}}}}`,
			[]string{`pool: targets["a"]: unknown field "concurency_limit"`}},
		{"unknown field in a provider", `{"targets": {"a": {"providers": [{"url": "https://a.example.com"}, {"url": "https://b.example.com", "wieght": 2}]}}}`,
			[]string{`pool: targets["a"].providers[1]: unknown field "wieght"`}},
		{"unknown field in a nested object", `{"targets": {"a": {"url": "https://a.example.com", "rate_limit": {"requests_per_second": 1, "burst": 2}}}}`,
			[]string{`pool: targets["a"].rate_limit: unknown field "burst"`}},
		{"unknown field in a list entry", `{"targets": {"a": [{"url": "https://a.example.com", "colour": "red"}]}}`,
			[]string{`pool: targets["a"][0]: unknown field "colour"`}},
		{"keys on a pool provider", `{"targets": {"a": {"providers": [{"url": "https://a.example.com", "keys": ["k"]}]}}}`,
			[]string{`pool: targets["a"].providers[0]: unknown field "keys"`}},
		{"wrong type", `{"targets": {"a": {"url": "https://a.example.com", "weight": "heavy"}}}`,
			[]string{`pool: targets["a"].weight: want an integer, got a string`}},
		{"bad URL", `{"targets": {"a": {"providers": [{"url": "https://a.example.com"}, {"url": "ftp://b.example.com"}]}}}`,
			[]string{`pool: targets["a"].providers[1].url: url "ftp://b.example.com" has scheme "ftp"; want http or https`}},
		{"missing URL", `{"targets": {"a": {"onwards_key": "sk-x"}}}`, []string{`pool: targets["a"].url: url is empty`}},
		{"zero rate", `{"targets": {"a": {"url": "https://a.example.com", "rate_limit": {"requests_per_second": 0}}}}`,
			[]string{`pool: targets["a"].rate_limit.requests_per_second: 0; want a number above 0`}},
		{"negative rate", `{"targets": {"a": {"providers": [{"url": "https://a.example.com"}], "rate_limit": {"requests_per_second": -5}}}}`,
			[]string{`pool: targets["a"].rate_limit.requests_per_second: -5; want a number above 0`}},
		{"zero burst", `{"targets": {"a": {"url": "https://a.example.com", "rate_limit": {"requests_per_second": 1, "burst_size": 0}}}}`,
			[]string{`pool: targets["a"].rate_limit.burst_size: 0; want at least 1`}},
		{"unknown strategy", `{"targets": {"a": {"strategy": "least_busy", "providers": [{"url": "https://a.example.com"}]}}}`,
			[]string{`pool: targets["a"].strategy: unknown strategy "least_busy"; want "weighted_random", "priority", "token_aware", "p2c_ewma" or "round_robin"`}},
		{"redirect to itself", `{"targets": {"a": {"url": "https://a.example.com", "routing_rules": [{"match_labels": {}, "action": {"type": "redirect", "target": "a"}}]}}}`,
			[]string{`pool: targets["a"].routing_rules[0].action.target: redirects "a" to itself`}},
		{"bad routing action", `{"targets": {"a": {"url": "https://a.example.com", "routing_rules": [{"match_labels": {}, "action": {"type": "allow"}}]}}}`,
			[]string{`pool: targets["a"].routing_rules[0].action.type: "allow" is not a routing action`}},
		{"bad status pattern", `{"targets": {"a": {"providers": [{"url": "https://a.example.com"}], "fallback": {"enabled": true, "on_status": [5, 7000]}}}}`,
			[]string{`pool: targets["a"].fallback.on_status[1]: 7000 matches no HTTP status`}},
		{"weight out of range", `{"targets": {"a": {"url": "https://a.example.com", "weight": -1}}}`,
			[]string{`pool: targets["a"].weight: -1 is out of range`}},
		{"zero timeout", `{"targets": {"a": {"url": "https://a.example.com", "request_timeout_secs": 0}}}`,
			[]string{`pool: targets["a"].request_timeout_secs: 0; want at least 1`}},
		{"bad header name", `{"targets": {"a": {"url": "https://a.example.com", "response_headers": {"bad header": "x"}}}}`,
			[]string{`pool: targets["a"].response_headers: "bad header" is not a valid header name`}},
		{"header injection", `{"targets": {"a": {"url": "https://a.example.com", "response_headers": {"x-a": "1\r\nset-cookie: y"}}}}`,
			[]string{`pool: targets["a"].response_headers["x-a"]: value holds a control character`}},
		{"list disagrees on trusted", `{"targets": {"a": [{"url": "https://a.example.com", "trusted": true}, {"url": "https://b.example.com"}]}}`,
			[]string{`pool: targets["a"][1].trusted: disagrees with targets["a"][0]`}},
		{"list entry with other keys", `{"targets": {"a": [{"url": "https://a.example.com", "keys": ["k1"]}, {"url": "https://b.example.com", "keys": ["k2"]}]}}`,
			[]string{`pool: targets["a"][1].keys: differs from targets["a"][0]`}},
		{"empty key", `{"targets": {"a": {"url": "https://a.example.com", "keys": [""]}}}`, []string{`pool: targets["a"].keys[0]: empty key`}},
		{"key definition without key", `{"auth": {"key_definitions": {"u": {"labels": {"a": "b"}}}}, "targets": {"a": {"url": "https://a.example.com"}}}`,
			[]string{`pool: auth.key_definitions["u"].key: missing`}},
		{"two definitions of one key", `{"auth": {"key_definitions": {"u": {"key": "sk-same"}, "v": {"key": "sk-same"}}}, "targets": {"a": {"url": "https://a.example.com"}}}`,
			[]string{`pool: auth.key_definitions["v"].key: the same key as auth.key_definitions["u"]`}},
		{"every problem at once", `{"targets": {"a": {"url": "ftp://a"}, "b": {"providers": [{"url": "https://b", "weight": -2}]}}}`,
			[]string{`pool: targets["a"].url:`, `pool: targets["b"].providers[0].weight: -2 is out of range`}},
		{"negative concurrency", `{"auth": {"key_definitions": {"u": {"key": "sk-u", "concurrency_limit": {"max_concurrent_requests": -1}}}}, "targets": {"a": {"url": "https://a.example.com"}}}`,
			[]string{`pool: auth.key_definitions["u"].concurrency_limit.max_concurrent_requests: -1 is negative; want 0 (refuse every request) or more`}},
		{"negative http_pool", `{"http_pool": {"max_idle_per_host": -1, "idle_timeout_secs": -5}, "targets": {"a": {"url": "https://a.example.com"}}}`,
			[]string{`pool: http_pool.max_idle_per_host: -1 is negative`, `pool: http_pool.idle_timeout_secs: -5 is out of range`}},
		{"negative max attempts", `{"targets": {"a": {"providers": [{"url": "https://a.example.com"}], "fallback": {"max_attempts": -1}}}}`,
			[]string{`pool: targets["a"].fallback.max_attempts: -1 is negative`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(tt.doc))
			assert.Nil(t, cfg)
			require.Error(t, err)
			for _, want := range tt.want {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestConfigErrorsNeverShowKeys(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		`{"targets": {"a": {"url": "https://user:sk-in-url@a.example.com/%zz", "onwards_key": "sk-upstream"}}}`,
		`{"targets": {"a": {"url": "ftp://user:sk-in-url@a.example.com", "onwards_key": "sk-upstream", "keys": ["sk-client"], "weight": -3}}}`,
		`{"auth": {"key_definitions": {"u": {"key": "sk-client"}, "v": {"key": "sk-client"}}}, "targets": {"a": {"url": "https://a", "keys": ["sk-client", ""]}}}`,
		`{"targets": {"a": {"url": "https://a.example.com", "onwards_key": 42}}}`,
		`{"targets": {"a": {"url": "https://a.example.com", "keys": "sk-client"}}}`,
	} {
		_, err := ParseConfig([]byte(doc))
		require.Error(t, err, doc)
		for _, secret := range []string{"sk-in-url", "sk-upstream", "sk-client"} {
			assert.NotContains(t, err.Error(), secret, doc)
		}
	}
}

func TestConfigRoundTrips(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"issue-example.json", "newer-onwards.json"} {
		cfg := loadTestConfig(t, name)
		out, err := json.Marshal(cfg)
		require.NoError(t, err)
		again, err := ParseConfig(out)
		require.NoError(t, err, "%s", out)
		assert.Equal(t, cfg.NotActedOn, again.NotActedOn)
		out2, err := json.Marshal(again)
		require.NoError(t, err)
		assert.JSONEq(t, string(out), string(out2), name)
	}
}

func TestLoadConfigErrorsNameTheFile(t *testing.T) {
	t.Parallel()
	_, err := LoadConfig(filepath.Join("testdata", "missing.json"))
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)

	path := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"targets": {"a": {"url": "nope"}}}`), 0o600))
	_, err = LoadConfig(path)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), path+": pool: targets[\"a\"].url: "), err.Error())
}

// TestParseConfigLoadsWhatOnwardsLoads covers the files that onwards loads
// and that an earlier version of this port refused: each loads, with its
// warning. What each does at request time is tested through the gateway
// (gateway/compat_test.go) and through Admit below.
func TestParseConfigLoadsWhatOnwardsLoads(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc string
		want      []ConfigWarning
	}{
		{"redirect to an undefined alias (onwards' test_routing_rules_deserialized_from_config)",
			`{"targets": {"a": {"url": "https://a.example.com", "routing_rules": [{"match_labels": {"x": "y"}, "action": {"type": "redirect", "target": "b"}}]}}}`,
			[]ConfigWarning{{`targets["a"].routing_rules[0].action.target`, `redirects to "b", which is not an alias of this config; a request this rule matches gets a 503`}}},
		{"redirect to an empty target (dwctl, after a model is deleted)",
			`{"targets": {"a": {"url": "https://a.example.com", "routing_rules": [{"match_labels": {}, "action": {"type": "redirect", "target": ""}}]}}}`,
			[]ConfigWarning{{`targets["a"].routing_rules[0].action.target`, `empty; a request this rule matches gets a 503, as in onwards`}}},
		{"a pool with no providers (dwctl, a composite model with none enabled)",
			`{"targets": {"a": {"providers": []}, "b": []}}`,
			[]ConfigWarning{
				{`targets["a"].providers`, `no providers; every request for "a" gets a 503, as in onwards`},
				{`targets["b"]`, `no providers; every request for "b" gets a 503, as in onwards`}}},
		{"a concurrency limit of 0",
			`{"targets": {"a": {"concurrency_limit": {"max_concurrent_requests": 0}, "providers": [{"url": "https://a.example.com", "concurrency_limit": {"max_concurrent_requests": 0}}]}}}`,
			[]ConfigWarning{
				{`targets["a"].concurrency_limit.max_concurrent_requests`, `0 refuses every request to this alias with a 429, as in onwards`},
				{`targets["a"].providers[0].concurrency_limit.max_concurrent_requests`, `0 refuses every request to this provider with a 429, as in onwards`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(tc.doc))
			require.NoError(t, err)
			assert.Equal(t, tc.want, cfg.Warnings, "in file order")
			_, err = NewRegistry(cfg)
			require.NoError(t, err)
		})
	}
}

func TestAdmitOnConfigsOnwardsLoads(t *testing.T) {
	t.Parallel()
	r, err := NewRegistry(mustParse(t, `{
		"auth": {"key_definitions": {"u": {"key": "sk-u", "labels": {"tier": "free"}}}},
		"targets": {
			"dangling": {"url": "https://a.example.com", "routing_rules": [{"match_labels": {}, "action": {"type": "redirect", "target": "gone"}}]},
			"blank": {"url": "https://a.example.com", "routing_rules": [{"match_labels": {}, "action": {"type": "redirect", "target": ""}}]},
			"empty": {"providers": []},
			"empty-denied": {"keys": ["u"], "providers": [], "routing_rules": [{"match_labels": {"tier": "free"}, "action": {"type": "deny"}}]},
			"zero": {"concurrency_limit": {"max_concurrent_requests": 0}, "providers": [{"url": "https://a.example.com"}]}}}`))
	require.NoError(t, err)
	for _, alias := range []string{"dangling", "blank"} {
		_, err := r.Admit(alias, "")
		e := refusal(t, nil, err, 503, "service_unavailable")
		assert.NotContains(t, e.Message, "gone", "the message names no internals")
	}
	_, err = r.Admit("empty", "")
	refusal(t, nil, err, 503, "no_providers")
	_, err = r.Admit("empty-denied", "sk-u")
	refusal(t, nil, err, 403, "access_denied") // routing rules run before the empty-pool check (onwards 0.18.4)
	for range 3 {
		_, err = r.Admit("zero", "")
		e := refusal(t, nil, err, 429, "concurrency_limit_exceeded")
		assert.Equal(t, ConcurrencyRetryAfter, e.RetryAfter)
	}
}

func TestParseConfigReportsEveryProblemInFileOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc string
		want      []string // the places, in order
	}{
		{"unknown field, bad URL and zero rate in one target",
			`{"targets": {"a": {"providers": [{"url": "https://a.example.com", "wieght": 2},
			                                  {"url": "ftp://b.example.com"}],
			                   "rate_limit": {"requests_per_second": 0}}}}`,
			[]string{`targets["a"].providers[0]`, `targets["a"].providers[1].url`, `targets["a"].rate_limit.requests_per_second`}},
		{"file order, not alias order",
			`{"auth": {"key_definitions": {"u": {"labels": {}}}},
			  "targets": {"z": {"url": "nope"}, "a": {"url": "https://a", "colour": "red", "weight": "heavy"}}}`,
			[]string{`auth.key_definitions["u"].key`, `targets["z"].url`, `targets["a"]`, `targets["a"].weight`}},
		{"a wrong type is reported once, not again as missing",
			`{"targets": {"a": {"url": 7, "request_timeout_secs": 0}}}`,
			[]string{`targets["a"].url`, `targets["a"].request_timeout_secs`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.doc))
			require.Error(t, err)
			var places []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *FieldError
				require.ErrorAs(t, e, &fe)
				places = append(places, fe.Place)
			}
			assert.Equal(t, tc.want, places, err.Error())
		})
	}
}

func TestParseOptionsAllowUnknownFields(t *testing.T) {
	t.Parallel()
	doc := []byte(`{"targets": {"a": {"url": "https://a.example.com", "concurency_limit": {"max_concurrent_requests": 1}}}, "new_thing": 1}`)
	_, err := ParseConfig(doc)
	require.Error(t, err, "strict by default")

	cfg, err := ParseOptions{AllowUnknownFields: true}.Parse(doc)
	require.NoError(t, err)
	assert.Equal(t, []ConfigWarning{
		{`targets["a"]`, `unknown field "concurency_limit"`},
		{`config`, `unknown field "new_thing"`},
	}, cfg.Warnings)

	_, err = ParseOptions{AllowUnknownFields: true}.Parse([]byte(`{"targets": {"a": {"url": "ftp://x", "typo": 1}}}`))
	require.Error(t, err, "lenient about names, not about values")
	assert.Contains(t, err.Error(), `targets["a"].url`)
	assert.NotContains(t, err.Error(), "typo")
}
