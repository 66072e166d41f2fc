package pool

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReloadAdoptsCounters(t *testing.T) {
	t.Parallel()
	r, err := NewRegistry(mustParse(t, `{
		"auth": {"key_definitions": {"u": {"key": "sk-u", "concurrency_limit": {"max_concurrent_requests": 10}}}},
		"targets": {"a": {"concurrency_limit": {"max_concurrent_requests": 10}, "strategy": "priority", "providers": [
			{"url": "https://p1.example.com", "onwards_key": "k1", "concurrency_limit": {"max_concurrent_requests": 3}},
			{"url": "https://p2.example.com"}]}}}`))
	require.NoError(t, err)

	// Two requests in flight on p1, admitted under the key's and the pool's
	// limits.
	var adms []*Admission
	var sels []Selection
	for range 2 {
		adm, err := r.Admit("a", "sk-u")
		require.NoError(t, err)
		sel, ok := adm.Pool.Select()
		require.True(t, ok)
		require.Equal(t, 0, sel.Index)
		adms, sels = append(adms, adm), append(sels, sel)
	}

	// The reload reorders p1, drops p2, adds p3 and lowers the limits.
	require.NoError(t, r.Reload(mustParse(t, `{
		"auth": {"key_definitions": {"u": {"key": "sk-u", "concurrency_limit": {"max_concurrent_requests": 2}}}},
		"targets": {"a": {"concurrency_limit": {"max_concurrent_requests": 3}, "strategy": "priority", "providers": [
			{"url": "https://p3.example.com"},
			{"url": "https://p1.example.com", "onwards_key": "k1", "concurrency_limit": {"max_concurrent_requests": 2}}]}}}`)))
	p, _ := r.Pool("a")
	assert.Equal(t, 0, p.Providers()[0].ActiveConnections(), "a new provider starts at zero")
	assert.Equal(t, 2, p.Providers()[1].ActiveConnections(), "p1 adopted its live count")
	assert.True(t, p.Providers()[1].limiter.AtCapacity(), "the new limit of 2 applies to the adopted count")
	assert.Equal(t, 2, p.ConcurrencyLimiter().Active(), "the pool counter is adopted")

	_, err = r.Admit("a", "sk-u")
	refusal(t, nil, err, 429, "concurrency_limit_exceeded") // the key's adopted count (2) is at its new limit

	for i := range sels {
		sels[i].Close()
		adms[i].Close()
	}
	assert.Equal(t, 0, p.Providers()[1].ActiveConnections(), "old guards release into the new counters")
	assert.Equal(t, 0, p.ConcurrencyLimiter().Active())
	adm, err := r.Admit("a", "sk-u")
	require.NoError(t, err, "the key's slots came back")
	adm.Close()
}

func TestReloadKeepsUnchangedRateLimiters(t *testing.T) {
	t.Parallel()
	const tmpl = `{
		"auth": {"key_definitions": {"u": {"key": "sk-u", "rate_limit": {"requests_per_second": 0.000001, "burst_size": %[1]d}}}},
		"targets": {"a": {"rate_limit": {"requests_per_second": 0.000001, "burst_size": %[1]d},
			"providers": [{"url": "https://p.example.com", "rate_limit": {"requests_per_second": 0.000001, "burst_size": %[1]d}}]}}}`
	r, err := NewRegistry(mustParse(t, fmt.Sprintf(tmpl, 1)))
	require.NoError(t, err)

	adm, err := r.Admit("a", "sk-u")
	require.NoError(t, err)
	adm.Close()
	p, _ := r.Pool("a")
	require.True(t, p.FirstTarget().RateLimiter.Allow())

	require.NoError(t, r.Reload(mustParse(t, fmt.Sprintf(tmpl, 1))))
	_, err = r.Admit("a", "")
	refusal(t, nil, err, 429, "rate_limit_exceeded") // the pool's bucket is still empty
	p, _ = r.Pool("a")
	assert.False(t, p.FirstTarget().RateLimiter.Allow(), "the provider's bucket is still empty")

	// New parameters make new buckets, full.
	require.NoError(t, r.Reload(mustParse(t, fmt.Sprintf(tmpl, 2))))
	adm, err = r.Admit("a", "sk-u")
	require.NoError(t, err, "new pool and key buckets")
	adm.Close()
	p, _ = r.Pool("a")
	assert.True(t, p.FirstTarget().RateLimiter.Allow())
}

func TestReloadFailureChangesNothing(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `{"targets": {"a": {"url": "https://a.example.com"}}}`)
	r, err := NewRegistry(cfg)
	require.NoError(t, err)
	before, _ := r.Pool("a")

	bad := &Config{Targets: map[string]TargetConfig{
		"a": {Single: &TargetSpec{ProviderSpec: ProviderSpec{URL: "https://a.example.com"}}},
		"b": {Single: &TargetSpec{ProviderSpec: ProviderSpec{URL: "not a url"}}},
	}}
	err = r.Reload(bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `targets["b"].url`)
	after, _ := r.Pool("a")
	assert.Same(t, before, after)
	assert.Equal(t, []string{"a"}, r.Aliases())
	assert.Same(t, cfg, r.Config())

	assert.EqualError(t, r.Reload(nil), "pool: config is nil")
	_, err = NewRegistry(&Config{})
	assert.ErrorContains(t, err, "pool: targets: no aliases")
}

func TestReloadIsAtomic(t *testing.T) {
	t.Parallel()
	cfgs := []*Config{
		mustParse(t, `{"targets": {"a": {"url": "https://a.example.com"}, "b": {"url": "https://b.example.com"}}}`),
		mustParse(t, `{"targets": {"c": {"url": "https://c.example.com"}, "d": {"url": "https://d.example.com"}}}`),
	}
	r, err := NewRegistry(cfgs[0])
	require.NoError(t, err)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got := strings.Join(r.Aliases(), ",")
				if got != "a,b" && got != "c,d" {
					t.Errorf("saw a mix of two configs: %s", got)
					return
				}
			}
		}()
	}
	for i := range 2000 {
		require.NoError(t, r.Reload(cfgs[i%2]))
	}
	close(stop)
	wg.Wait()
}

func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	// Limited upstreams stay in every config, reordered and reweighted, so
	// their limits hold across reloads; unlimited ones come and go.
	limits := map[string]int{"https://l1.example.com/": 2, "https://l2.example.com/": 3}
	optional := []string{"https://o1.example.com/", "https://o2.example.com/"}
	const poolLimit, keyLimit = 6, 4
	config := func(rng *rand.Rand) *Config {
		var providers []string
		for u, limit := range limits {
			providers = append(providers, fmt.Sprintf(`{"url": %q, "weight": %d, "concurrency_limit": {"max_concurrent_requests": %d}}`, u, rng.IntN(3)+1, limit))
		}
		for _, u := range optional {
			if rng.IntN(2) == 0 {
				providers = append(providers, fmt.Sprintf(`{"url": %q, "weight": %d}`, u, rng.IntN(3)))
			}
		}
		rng.Shuffle(len(providers), func(i, j int) { providers[i], providers[j] = providers[j], providers[i] })
		extra := ""
		if rng.IntN(2) == 0 {
			extra = `, "extra": {"url": "https://x.example.com"}`
		}
		return mustParse(t, fmt.Sprintf(`{
			"auth": {"key_definitions": {"u": {"key": "sk-u", "concurrency_limit": {"max_concurrent_requests": %d}}}},
			"targets": {"a": {"concurrency_limit": {"max_concurrent_requests": %d}, "providers": [%s]}%s}}`,
			keyLimit, poolLimit, strings.Join(providers, ","), extra))
	}

	r, err := NewRegistry(config(rand.New(rand.NewPCG(1, 1))))
	require.NoError(t, err)
	snapshots := []*snapshot{r.snap.Load()}

	var perURL sync.Map // URL -> *atomic.Int64, requests the test holds
	var keyHeld, poolHeld atomic.Int64
	counter := func(u string) *atomic.Int64 {
		c, _ := perURL.LoadOrStore(u, new(atomic.Int64))
		return c.(*atomic.Int64)
	}

	stop := make(chan struct{})
	var reloads sync.WaitGroup
	reloads.Add(1)
	go func() {
		defer reloads.Done()
		rng := rand.New(rand.NewPCG(2, 2))
		for {
			select {
			case <-stop:
				return
			default:
			}
			assert.NoError(t, r.Reload(config(rng)))
			snapshots = append(snapshots, r.snap.Load()) // only this goroutine appends
			runtime.Gosched()
		}
	}()

	type held struct {
		adm     *Admission
		sel     Selection
		withKey bool
	}
	var workers sync.WaitGroup
	for w := range hammerWorkers() {
		workers.Add(1)
		go func() {
			defer workers.Done()
			var ring [2]*held
			release := func(h *held) {
				counter(h.sel.Target.URL.String()).Add(-1)
				h.sel.Close()
				poolHeld.Add(-1)
				if h.withKey {
					keyHeld.Add(-1)
				}
				h.adm.Close()
				h.adm.Close()
			}
			for i := range 1000 {
				slot := i % len(ring)
				if ring[slot] != nil {
					release(ring[slot])
					ring[slot] = nil
				}
				token := ""
				if (w+i)%2 == 0 {
					token = "sk-u"
				}
				adm, err := r.Admit("a", token)
				if err != nil {
					var ae *AdmissionError
					if !assert.ErrorAs(t, err, &ae) || !assert.Equal(t, 429, ae.Status) {
						return
					}
					continue
				}
				assert.LessOrEqual(t, poolHeld.Add(1), int64(poolLimit), "pool limit exceeded across reloads")
				if token != "" {
					assert.LessOrEqual(t, keyHeld.Add(1), int64(keyLimit), "key limit exceeded across reloads")
				}
				sel, ok := adm.Pool.Select()
				if !ok {
					poolHeld.Add(-1)
					if token != "" {
						keyHeld.Add(-1)
					}
					adm.Close()
					continue
				}
				u := sel.Target.URL.String()
				n := counter(u).Add(1)
				if limit, ok := limits[u]; ok {
					assert.LessOrEqual(t, n, int64(limit), "limit of %s exceeded across reloads", u)
				}
				ring[slot] = &held{adm, sel, token != ""}
			}
			for _, h := range ring {
				if h != nil {
					release(h)
				}
			}
		}()
	}
	workers.Wait()
	close(stop)
	reloads.Wait()

	require.Greater(t, len(snapshots), 2, "the test must have reloaded")
	for i, s := range snapshots {
		for alias, a := range s.pools {
			for j, pr := range a.pool.Providers() {
				assert.Equal(t, 0, pr.ActiveConnections(), "snapshot %d %s provider %d", i, alias, j)
			}
			if l := a.pool.ConcurrencyLimiter(); l != nil {
				assert.Equal(t, 0, l.Active(), "snapshot %d %s pool limiter", i, alias)
			}
		}
		for _, k := range s.keys {
			if k.conc != nil {
				assert.Equal(t, 0, k.conc.Active(), "snapshot %d key limiter", i)
			}
		}
	}
	perURL.Range(func(u, c any) bool {
		assert.Equal(t, int64(0), c.(*atomic.Int64).Load(), u)
		return true
	})
	assert.Equal(t, int64(0), poolHeld.Load())
	assert.Equal(t, int64(0), keyHeld.Load())
	assert.True(t, slices.IsSorted(r.Aliases()))
}
