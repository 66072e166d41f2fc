package pool

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Registry is the live set of pools of a config, by alias, with the API keys
// that may call them. Lookups and admissions read an immutable snapshot
// through an atomic pointer and take no lock; Reload builds a new snapshot,
// adopts the live counters, and swaps it in at once, so a request sees the
// old config or the new one, never a mix.
//
// The zero value is a registry with no config: it admits nothing until the
// first Reload. A Registry is safe for simultaneous use by multiple
// goroutines.
type Registry struct {
	// Clock is the time source of the pools' outlier detection, retry
	// budgets and backoff, and of the gateway's request timeouts. Nil:
	// SystemClock. Set it before the first Reload; pools built before a
	// change keep the clock they had.
	Clock Clock

	// Shared, when set, holds the config's concurrency and rate limits of
	// aliases, keys and providers across replicas (see [SharedState]);
	// nil: each replica has its own. Set it before the first Reload.
	Shared SharedState

	mu   sync.Mutex // serializes Reload; readers never take it
	snap atomic.Pointer[snapshot]

	unknownModel atomic.Uint64 // requests for an alias no config had
}

// NewRegistry returns a registry serving cfg, which it validates as
// ParseConfig does. The registry keeps cfg; do not modify it afterwards.
func NewRegistry(cfg *Config) (*Registry, error) {
	r := new(Registry)
	if err := r.Reload(cfg); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload replaces the registry's config with cfg. Each new pool adopts the
// in-flight counters of the pool it replaces (same alias; providers matched
// by URL, upstream key and upstream model), each key its concurrency
// counter, and a rate limiter whose parameters did not change keeps its
// state, so a reload is neither a free burst nor a reset of any count.
// Admissions and selections already made keep working and release into the
// new counters.
//
// A config that fails validation changes nothing; Reload returns the error.
// Reloads are serialized; lookups never wait for them.
func (r *Registry) Reload(cfg *Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	next, err := buildSnapshot(cfg, r.snap.Load(), r.Clock, r.Shared)
	if err != nil {
		return err
	}
	r.snap.Store(next)
	return nil
}

// Pool returns the pool of alias, as of the current config.
func (r *Registry) Pool(alias string) (*ProviderPool, bool) {
	s := r.snap.Load()
	if s == nil {
		return nil, false
	}
	a, ok := s.pools[alias]
	if !ok {
		return nil, false
	}
	return a.pool, true
}

// Aliases returns the aliases of the current config, sorted.
func (r *Registry) Aliases() []string {
	s := r.snap.Load()
	if s == nil {
		return nil
	}
	return slices.Clone(s.aliases)
}

// Config returns the config the registry serves now, or nil before the
// first successful Reload. Do not modify it.
func (r *Registry) Config() *Config {
	s := r.snap.Load()
	if s == nil {
		return nil
	}
	return s.cfg
}
