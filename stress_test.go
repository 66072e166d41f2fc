package pool

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hammerWorkers is how many goroutines the stress tests run: well past the
// machine's cores, so that the scheduler interleaves them mid-operation.
func hammerWorkers() int { return max(32, 8*runtime.GOMAXPROCS(0)) }

// inflight counts, independently of the pool, the requests a test holds per
// upstream URL. It is raised after a slot is taken and lowered before it is
// released, so it never exceeds the true count: if it passes a limit, the
// pool let too many through.
type inflight struct {
	count map[string]*atomic.Int64
}

func newInflight(urls ...string) *inflight {
	f := &inflight{count: make(map[string]*atomic.Int64)}
	for _, u := range urls {
		f.count[u] = new(atomic.Int64)
	}
	return f
}

func (f *inflight) enter(sel Selection) int64 { return f.count[sel.Target.URL.String()].Add(1) }
func (f *inflight) leave(sel Selection)       { f.count[sel.Target.URL.String()].Add(-1) }

func TestStressSelectIterateClose(t *testing.T) {
	t.Parallel()
	for _, strategy := range []LoadBalanceStrategy{WeightedRandom, Priority} {
		t.Run(strategy.String(), func(t *testing.T) {
			t.Parallel()
			limits := []int{1, 2, 3, 1, 4, 2, 0, 1}
			urls := make([]string, len(limits))
			providers := make([]*Provider, len(limits))
			limitOf := map[string]int64{}
			for i, limit := range limits {
				urls[i] = fmt.Sprintf("https://p%d.example.com/", i)
				limitOf[urls[i]] = int64(limit)
				providers[i] = NewProviderWithConcurrencyLimit(newTestTarget(t, urls[i]), uint32(i%3), limit)
			}
			poolLimit := NewConcurrencyLimiterWithLimit(5)
			p := newTestPool(t, providers, WithStrategy(strategy), WithConcurrencyLimiter(poolLimit),
				WithFallback(FallbackConfig{Enabled: true, WithReplacement: strategy == WeightedRandom, MaxAttempts: 4}))
			f := newInflight(urls...)

			hold := func(sel Selection) {
				n := f.enter(sel)
				assert.LessOrEqual(t, n, limitOf[sel.Target.URL.String()], "limit of %s exceeded", sel.Target.URL)
				assert.LessOrEqual(t, p.Providers()[sel.Index].ActiveConnections(), int(limitOf[sel.Target.URL.String()]))
				runtime.Gosched()
			}
			release := func(sel Selection) {
				f.leave(sel)
				assert.NoError(t, sel.Close())
				assert.NoError(t, sel.Close(), "closing twice is a no-op")
			}

			var wg sync.WaitGroup
			for w := range hammerWorkers() {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 1500 {
						switch (w + i) % 4 {
						case 0: // one selection
							if sel, ok := p.Select(); ok {
								hold(sel)
								release(sel)
							}
						case 1: // a whole walk, holding every attempt
							var held []Selection
							it := p.SelectIter()
							for sel, ok := it.Next(); ok; sel, ok = it.Next() {
								hold(sel)
								held = append(held, sel)
							}
							for _, sel := range held {
								release(sel)
							}
						case 2: // a fallback loop that fails over, then succeeds
							n := 0
							for sel := range p.Attempts() {
								hold(sel)
								release(sel)
								if n++; n == 2 {
									break
								}
							}
						case 3: // admission-style pool slot around a selection
							g, ok := poolLimit.TryAcquire()
							if !ok {
								continue
							}
							assert.LessOrEqual(t, poolLimit.Active(), 5)
							if sel, ok := p.Select(); ok {
								hold(sel)
								release(sel)
							}
							g.Close()
							g.Close()
						}
					}
				}()
			}
			wg.Wait()

			for i, pr := range p.Providers() {
				assert.Equal(t, 0, pr.ActiveConnections(), "provider %d", i)
			}
			assert.Equal(t, 0, poolLimit.Active())
			for u, c := range f.count {
				assert.Equal(t, int64(0), c.Load(), u)
			}
		})
	}
}

func TestStressAdoptWhileGuardsInFlight(t *testing.T) {
	t.Parallel()
	// Upstreams with limits stay in every config (reordered, reweighted), so
	// their limit holds across reloads; unlimited ones come and go.
	limited := map[string]int{
		"https://a.example.com/": 2,
		"https://b.example.com/": 3,
		"https://c.example.com/": 1,
	}
	optional := []string{"https://d.example.com/", "https://e.example.com/", "https://f.example.com/"}
	all := append([]string{"https://a.example.com/", "https://b.example.com/", "https://c.example.com/"}, optional...)
	f := newInflight(all...)

	build := func(r *rand.Rand) *ProviderPool {
		var providers []*Provider
		for u, limit := range limited {
			providers = append(providers, NewProviderWithConcurrencyLimit(newTestTarget(t, u), uint32(r.IntN(4)+1), limit))
		}
		for _, u := range optional {
			if r.IntN(2) == 0 {
				providers = append(providers, NewProvider(newTestTarget(t, u), uint32(r.IntN(4))))
			}
		}
		r.Shuffle(len(providers), func(i, j int) { providers[i], providers[j] = providers[j], providers[i] })
		strategy := WeightedRandom
		if r.IntN(3) == 0 {
			strategy = Priority
		}
		return newTestPool(t, providers, WithStrategy(strategy), WithConcurrencyLimiter(NewConcurrencyLimiterWithLimit(16)))
	}

	var (
		current atomic.Pointer[ProviderPool]
		mu      sync.Mutex
		built   []*ProviderPool // every pool ever published
		stop    = make(chan struct{})
	)
	first := build(rand.New(rand.NewPCG(1, 2)))
	current.Store(first)
	built = append(built, first)

	var reloads sync.WaitGroup
	reloads.Add(1)
	go func() {
		defer reloads.Done()
		r := rand.New(rand.NewPCG(3, 4))
		for {
			select {
			case <-stop:
				return
			default:
			}
			next := build(r)
			next.AdoptProviderState(current.Load()) // only this goroutine stores
			mu.Lock()
			built = append(built, next)
			mu.Unlock()
			current.Store(next)
			runtime.Gosched()
		}
	}()

	var workers sync.WaitGroup
	for w := range hammerWorkers() {
		workers.Add(1)
		go func() {
			defer workers.Done()
			// Each worker keeps a few selections in flight across reloads,
			// releasing the oldest as it takes a new one.
			var ring [3]Selection
			var poolGuards [3]*ConcurrencyGuard
			for i := range 1500 {
				slot := (w + i) % len(ring)
				if ring[slot].Guard != nil {
					f.leave(ring[slot])
					ring[slot].Close()
					ring[slot] = Selection{}
				}
				poolGuards[slot].Close()
				poolGuards[slot] = nil

				p := current.Load()
				g, ok := p.ConcurrencyLimiter().TryAcquire()
				if !ok {
					continue
				}
				poolGuards[slot] = g
				sel, ok := p.Select()
				if !ok {
					continue
				}
				n := f.enter(sel)
				if limit, ok := limited[sel.Target.URL.String()]; ok {
					assert.LessOrEqual(t, n, int64(limit), "limit of %s exceeded across reloads", sel.Target.URL)
				}
				ring[slot] = sel
			}
			for slot := range ring {
				if ring[slot].Guard != nil {
					f.leave(ring[slot])
					ring[slot].Close()
				}
				poolGuards[slot].Close()
			}
		}()
	}
	workers.Wait()
	close(stop)
	reloads.Wait()

	mu.Lock()
	defer mu.Unlock()
	require.Greater(t, len(built), 1, "the test must have reloaded")
	for i, p := range built {
		for j, pr := range p.Providers() {
			assert.Equal(t, 0, pr.ActiveConnections(), "pool %d provider %d (%s)", i, j, pr.Target.URL)
		}
		assert.Equal(t, 0, p.ConcurrencyLimiter().Active(), "pool %d concurrency limiter", i)
	}
	for u, c := range f.count {
		assert.Equal(t, int64(0), c.Load(), u)
	}
}
