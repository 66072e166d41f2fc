package poolredis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onwardsgo/pool"
	"github.com/redis/go-redis/v9"
)

// Defaults of Options, for its zero fields.
const (
	DefaultLeaseTTL    = 30 * time.Second
	DefaultCallTimeout = 250 * time.Millisecond
	DefaultPrefix      = "pool:"
)

// Options configure a Store. The zero value of each field takes its
// default.
type Options struct {
	// LeaseTTL is how long a concurrency slot outlives a replica that
	// stopped renewing it: a crashed replica's slots come back within it.
	// Held slots are renewed every LeaseTTL/3. 0: 30 s.
	LeaseTTL time.Duration
	// CallTimeout bounds each Redis call; a slower Redis counts as down.
	// 0: 250 ms.
	CallTimeout time.Duration
	// FailClosed refuses what needs Redis while Redis is down. False (the
	// default) fails open: each replica enforces its share of each limit,
	// limit/Replicas (rounded up), on its own until Redis is back.
	FailClosed bool
	// Replicas is how many replicas share the limits, for the share that
	// failing open enforces. 0: 1.
	Replicas int
	// Prefix starts every key the Store writes. "": "pool:".
	Prefix string
	// Log gets one line each time Redis goes down or comes back, never one
	// per request. Nil: slog.Default().
	Log *slog.Logger
}

// Store is a pool.SharedState on Redis. Set it as a registry's Shared
// before the first Reload; Close it when the registry is done. A Store is
// safe for simultaneous use by multiple goroutines.
type Store struct {
	rdb  redis.UniversalClient
	opts Options
	down atomic.Bool // whether the last call failed

	mu      sync.Mutex
	leases  map[*lease]struct{} // held, to renew
	stop    chan struct{}
	stopped chan struct{}
	closed  bool
}

var _ pool.SharedState = (*Store)(nil)

// New returns a Store on rdb, which it does not close.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Store{rdb: rdb, opts: opts, leases: make(map[*lease]struct{})}
}

// FromConfig returns a Store, and the client it made, for a config's
// shared_state, or nils when the config has none. Close both when done.
func FromConfig(spec *pool.SharedStateSpec, log *slog.Logger) (*Store, *redis.Client, error) {
	if spec == nil {
		return nil, nil, nil
	}
	ro, err := redis.ParseURL(spec.RedisURL)
	if err != nil {
		return nil, nil, errors.New("poolredis: shared_state.redis_url is not a redis:// URL")
	}
	rdb := redis.NewClient(ro)
	s := New(rdb, Options{
		LeaseTTL:   time.Duration(spec.LeaseTTLMs) * time.Millisecond,
		FailClosed: spec.OnRedisError == "fail_closed",
		Replicas:   spec.Replicas,
		Log:        log,
	})
	return s, rdb, nil
}

// Close stops renewing leases; those held then expire within LeaseTTL.
func (s *Store) Close() error {
	s.mu.Lock()
	stop, stopped := s.stop, s.stopped
	s.closed = true
	s.stop = nil
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		<-stopped
	}
	return nil
}

// call runs f with the call timeout and tracks whether Redis is up,
// logging each change.
func (s *Store) call(f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CallTimeout)
	defer cancel()
	err := f(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		if s.down.CompareAndSwap(false, true) {
			mode := "failing open: each replica enforces its share of each limit"
			if s.opts.FailClosed {
				mode = "failing closed: refusing what needs it"
			}
			s.opts.Log.Error("poolredis: redis unreachable; "+mode, "error", err)
		}
		return err
	}
	if s.down.CompareAndSwap(true, false) {
		s.opts.Log.Info("poolredis: redis reachable again; limits are shared")
	}
	return nil
}

// share is a limit's share for one replica, rounded up.
func (s *Store) share(limit int) int {
	return (limit + s.opts.Replicas - 1) / s.opts.Replicas
}

func (s *Store) key(kind, name string) string {
	return fmt.Sprintf("%s%s:%s", s.opts.Prefix, kind, name)
}
