package pool

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/onwardsgo/pool/internal/fakeclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSnapshotAfterScriptedOutcomes(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	r := &Registry{Clock: clock}
	require.NoError(t, r.Reload(mustParse(t, `{"targets": {"chat": {
		"strategy": "priority", "keys": ["sk-a"],
		"concurrency_limit": {"max_concurrent_requests": 10},
		"outlier_detection": {"consecutive_failures": 2},
		"fallback": {"enabled": true, "on_status": [5], "backoff": {"initial_ms": 100, "jitter": "none"}},
		"providers": [
			{"url": "https://user:secret@a.example.com/v1?key=sk-q", "onwards_key": "sk-up", "onwards_model": "m-a",
			 "concurrency_limit": {"max_concurrent_requests": 3}},
			{"url": "https://b.example.com/v1", "weight": 2}]}}}`)))

	// Request 1: provider 0 fails twice in a row across two requests and is
	// ejected; the walk falls back to provider 1.
	for range 2 {
		adm, err := r.Admit("chat", "sk-a")
		require.NoError(t, err)
		it := adm.Pool.SelectIter()
		sel, _ := it.Next()
		sel.Report(Failure)
		sel.Close()
		it.Backoff()
		sel, _ = it.Next()
		sel.Report(Success)
		sel.CoolDown(time.Minute)
		sel.Close()
		adm.Close()
	}
	_, err := r.Admit("chat", "")
	require.Error(t, err)
	_, err = r.Admit("nope", "sk-a")
	require.Error(t, err)
	held, err := r.Admit("chat", "sk-a") // one request in flight
	require.NoError(t, err)
	defer held.Close()
	clock.Advance(10 * time.Second)

	now := clock.Now()
	want := RegistrySnapshot{
		Time:         now,
		UnknownModel: 1,
		Pools: []PoolSnapshot{{
			Alias: "chat", Strategy: "priority", InFlight: 1, Limit: 10, Limited: true,
			Retries: 2, Backoff: 200 * time.Millisecond,
			Refused: map[string]uint64{"invalid_api_key": 1, "access_denied": 0, "service_unavailable": 0, "no_providers": 0,
				"rate_limit_exceeded": 0, "concurrency_limit_exceeded": 0, "inflight_limit_exceeded": 0, "batch_capacity_exceeded": 0},
			// A priority pool that falls back has onwards 2.0's AIMD
			// controller; no walk here was load-aware, so its share is 1.
			Share: &ShareSnapshot{Share: 1, Active: true},
			Providers: []ProviderSnapshot{{
				Index: 0, Label: "0:a.example.com", URL: "https://a.example.com/v1/", UpstreamModel: "m-a", Weight: 1,
				Limit: 3, Limited: true, State: StateEjected,
				EjectedUntil: now.Add(20 * time.Second), Ejections: 1,
				Attempts: map[string]uint64{"success": 0, "failure": 2, "neutral": 0, "timeout": 0, "rate_limited": 0, "cancelled": 0},
			}, {
				Index: 1, Label: "1:b.example.com", URL: "https://b.example.com/v1/", Weight: 2,
				State: StateCooling, CooldownUntil: now.Add(50 * time.Second),
				Attempts: map[string]uint64{"success": 2, "failure": 0, "neutral": 0, "timeout": 0, "rate_limited": 0, "cancelled": 0},
			}},
		}},
	}
	got := r.Snapshot()
	assert.Equal(t, want, got)
	assert.NotContains(t, fmtAny(got), "secret")
	assert.NotContains(t, fmtAny(got), "sk-")
}

func fmtAny(v any) string { return fmt.Sprintf("%+v", v) }

func TestSnapshotAcrossReload(t *testing.T) {
	t.Parallel()
	r := &Registry{Clock: fakeclock.New()}
	doc := `{"targets": {"chat": {"strategy": "priority", "providers": [%s]}}}`
	require.NoError(t, r.Reload(mustParse(t, fmt.Sprintf(doc, `{"url": "https://a.example.com"}, {"url": "https://b.example.com"}`))))
	p, _ := r.Pool("chat")
	for range 3 {
		attempt(t, p, Success)
	}
	adm, err := r.Admit("chat", "")
	require.NoError(t, err)
	it := adm.Pool.SelectIter()
	sel, _ := it.Next()
	sel.Close()
	sel, _ = it.Next() // a retry, on b
	sel.Report(Failure)
	sel.Close()
	adm.Close()

	require.NoError(t, r.Reload(mustParse(t, fmt.Sprintf(doc, `{"url": "https://a.example.com"}`))))
	got := r.Snapshot().Pools[0]
	require.Len(t, got.Providers, 1, "b is gone with the reload")
	assert.Equal(t, uint64(3), got.Providers[0].Attempts["success"], "a's counts did not go back")
	assert.Equal(t, uint64(1), got.Retries, "the pool's counts did not go back")
}

func TestSnapshotUnderConcurrency(t *testing.T) {
	t.Parallel()
	r := &Registry{}
	require.NoError(t, r.Reload(mustParse(t, `{"targets": {"chat": {"outlier_detection": {},
		"providers": [{"url": "https://a.example.com"}, {"url": "https://b.example.com"}]}}}`)))
	var wg sync.WaitGroup
	for g := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			adm, err := r.Admit("chat", "")
			if err != nil {
				return
			}
			for sel := range adm.Pool.Attempts() {
				sel.Report([]Outcome{Success, Failure, Timeout}[g%3])
				sel.Close()
				break
			}
			adm.Close()
		}()
		if g%100 == 0 {
			r.Snapshot()
		}
	}
	for range 10 {
		r.Snapshot()
	}
	wg.Wait()
	s := r.Snapshot().Pools[0]
	assert.Zero(t, s.InFlight)
	var total uint64
	for _, pr := range s.Providers {
		assert.Zero(t, pr.InFlight)
		for _, n := range pr.Attempts {
			total += n
		}
	}
	assert.Equal(t, uint64(1000), total)
}
