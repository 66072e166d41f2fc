package pool

import (
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const inflightDoc = `{
  "auth": {"key_definitions": {
    "acme_backend": {"key": "sk-acme-1", "labels": {"account": "acme"}},
    "acme_worker": {"key": "sk-acme-2", "labels": {"account": "acme"}},
    "globex_backend": {"key": "sk-globex-1", "labels": {"account": "globex"}},
    "anonymous": {"key": "sk-none"},
    "moved": {"key": "sk-moved", "labels": {"account": "acme", "tier": "moved"}}
  }},
  "targets": {
    "m": {"inflight_limit": 1, "account_inflight_limits": {"globex": 3}, "batch_inflight_limit": 1,
      "routing_rules": [{"match_labels": {"tier": "moved"}, "action": {"type": "redirect", "target": "other"}}],
      "providers": [{"url": "https://upstream.example.com/v1/"}]},
    "other": {"providers": [{"url": "https://other.example.com/v1/"}]}
  }
}`

// holdInflight admits a request for alias with key and takes its in-flight slot.
func holdInflight(t *testing.T, r *Registry, alias, key string, dispatched bool) (*Admission, error) {
	t.Helper()
	adm, err := r.Admit(alias, key)
	require.NoError(t, err)
	if err := adm.HoldInflight(dispatched); err != nil {
		adm.Close()
		return nil, err
	}
	return adm, nil
}

func requireRefusal(t *testing.T, err error, status int, code string) {
	t.Helper()
	var ae *AdmissionError
	require.True(t, errors.As(err, &ae), "%v", err)
	assert.Equal(t, status, ae.Status)
	assert.Equal(t, code, ae.Code)
	assert.Equal(t, InflightRetryAfter, ae.RetryAfter)
}

func TestInflightLimitsCountEachAccount(t *testing.T) {
	r, err := NewRegistry(mustParse(t, inflightDoc))
	require.NoError(t, err)

	held, err := holdInflight(t, r, "m", "sk-acme-1", false)
	require.NoError(t, err)
	_, err = holdInflight(t, r, "m", "sk-acme-2", false)
	requireRefusal(t, err, http.StatusTooManyRequests, "inflight_limit_exceeded")
	_, err = holdInflight(t, r, "m", "sk-moved", false)
	requireRefusal(t, err, http.StatusTooManyRequests, "inflight_limit_exceeded") // redirected, counted on "m"

	var globex []*Admission
	for range 3 {
		a, err := holdInflight(t, r, "m", "sk-globex-1", false)
		require.NoError(t, err, "globex's own limit is 3")
		globex = append(globex, a)
	}
	_, err = holdInflight(t, r, "m", "sk-globex-1", false)
	requireRefusal(t, err, http.StatusTooManyRequests, "inflight_limit_exceeded")

	for range 5 {
		a, err := holdInflight(t, r, "m", "sk-none", false)
		require.NoError(t, err, "a key without an account is not counted")
		defer a.Close()
	}

	batch, err := holdInflight(t, r, "m", "sk-acme-1", true)
	require.NoError(t, err, "dispatched requests have their own count")
	_, err = holdInflight(t, r, "m", "sk-globex-1", true)
	requireRefusal(t, err, 529, "batch_capacity_exceeded")

	assert.EqualValues(t, 1, r.InflightCount("m", "acme"))
	held.Close()
	held.Close() // twice releases once
	assert.EqualValues(t, 0, r.InflightCount("m", "acme"))
	again, err := holdInflight(t, r, "m", "sk-acme-2", false)
	require.NoError(t, err)
	again.Close()
	batch.Close()
	for _, a := range globex {
		a.Close()
	}
	assert.EqualValues(t, 0, r.InflightCount("m", "globex"))
}

func TestInflightCountsSurviveAReload(t *testing.T) {
	r, err := NewRegistry(mustParse(t, inflightDoc))
	require.NoError(t, err)
	held, err := holdInflight(t, r, "m", "sk-acme-1", false)
	require.NoError(t, err)
	require.NoError(t, r.Reload(mustParse(t, inflightDoc)))
	_, err = holdInflight(t, r, "m", "sk-acme-2", false)
	requireRefusal(t, err, http.StatusTooManyRequests, "inflight_limit_exceeded")
	held.Close() // releases into the count the new config uses
	assert.EqualValues(t, 0, r.InflightCount("m", "acme"))
}

func TestInflightStressReturnsToZero(t *testing.T) {
	r, err := NewRegistry(mustParse(t, inflightDoc))
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := int64(0)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				adm, err := r.Admit("m", "sk-globex-1")
				if err != nil {
					t.Error(err)
					return
				}
				if adm.HoldInflight(g%4 == 0) == nil {
					mu.Lock()
					peak = max(peak, r.InflightCount("m", "globex"))
					mu.Unlock()
				}
				adm.Close()
			}
		}()
	}
	wg.Wait()
	assert.LessOrEqual(t, peak, int64(3), "never past globex's limit")
	assert.Positive(t, peak)
	assert.EqualValues(t, 0, r.InflightCount("m", "globex"))
}
