package poolredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onwardsgo/pool"
	"github.com/redis/go-redis/v9"
)

// acquireScript takes a lease in the sorted set KEYS[1], whose scores are
// the leases' expiry times by the server's clock: it drops the expired
// ones, and adds ARGV[1], expiring in ARGV[3] ms, if fewer than ARGV[2]
// remain. It returns 1 and the count, or 0 and the count.
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then
  return {0, n}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return {1, n + 1}
`)

// renewScript extends each lease ARGV[2..] of KEYS[1] still held by
// ARGV[1] ms from now; a lease already expired and dropped stays dropped.
var renewScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', until_ms, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
`)

// concurrency is a concurrency limit as leases in one sorted set.
type concurrency struct {
	s     *Store
	key   string
	limit int
	local *pool.ConcurrencyLimiter // the share enforced while Redis is down

	own    atomic.Int64 // leases this replica holds
	others atomic.Int64 // leases other replicas held at the last acquire
}

var _ pool.SharedLoad = (*concurrency)(nil)

// Others returns the leases other replicas held at this replica's last
// acquire: the count the acquire script returned, less this replica's own.
func (c *concurrency) Others() int { return int(c.others.Load()) }

// Concurrency returns the limit of name across replicas.
func (s *Store) Concurrency(name string, limit int) pool.SharedConcurrency {
	return &concurrency{s: s, key: s.key("conc", name), limit: limit,
		local: pool.NewConcurrencyLimiterWithLimit(s.share(limit))}
}

// lease is one slot held in a sorted set.
type lease struct {
	key, member string
	once        sync.Once
}

// TryAcquire takes a lease: a member of the limiter's sorted set, renewed
// while held, removed by release (at most once).
func (c *concurrency) TryAcquire() (func(), time.Duration, bool) {
	l := &lease{key: c.key, member: newMember()}
	var ok bool
	var held int64
	err := c.s.call(func(ctx context.Context) error {
		res, err := acquireScript.Run(ctx, c.s.rdb, []string{c.key}, l.member, c.limit, c.s.opts.LeaseTTL.Milliseconds()).Int64Slice()
		if err == nil {
			ok, held = res[0] == 1, res[1]
		}
		return err
	})
	if err != nil {
		return c.fallback()
	}
	own := c.own.Load()
	if ok {
		own = c.own.Add(1)
	}
	c.others.Store(max(held-own, 0))
	if !ok {
		return nil, 0, false
	}
	c.s.hold(l)
	return func() {
		l.once.Do(func() {
			c.own.Add(-1)
			c.s.release(l)
		})
	}, 0, true
}

// fallback takes a slot while Redis is down: of the local share when
// failing open, none when failing closed.
func (c *concurrency) fallback() (func(), time.Duration, bool) {
	if c.s.opts.FailClosed {
		return nil, 0, false
	}
	g, ok := c.local.TryAcquire()
	if !ok {
		return nil, 0, false
	}
	return func() { g.Close() }, 0, true
}

// newMember returns a lease's unique name.
func newMember() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// hold records a lease to renew, starting the renewer if it is not running.
func (s *Store) hold(l *lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leases[l] = struct{}{}
	if s.stop == nil && !s.closed {
		s.stop, s.stopped = make(chan struct{}), make(chan struct{})
		go s.renew(s.stop, s.stopped)
	}
}

// release removes a lease from Redis and from the renewal set. If Redis is
// down, the lease expires on its own within LeaseTTL.
func (s *Store) release(l *lease) {
	s.mu.Lock()
	delete(s.leases, l)
	s.mu.Unlock()
	s.call(func(ctx context.Context) error { return s.rdb.ZRem(ctx, l.key, l.member).Err() })
}

// renew extends every held lease every LeaseTTL/3 until stop is closed.
func (s *Store) renew(stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	t := time.NewTicker(s.opts.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.renewAll()
		}
	}
}

// renewAll extends the held leases, one script call per sorted set.
func (s *Store) renewAll() {
	byKey := map[string][]any{}
	s.mu.Lock()
	for l := range s.leases {
		byKey[l.key] = append(byKey[l.key], l.member)
	}
	s.mu.Unlock()
	ttl := strconv.FormatInt(s.opts.LeaseTTL.Milliseconds(), 10)
	for key, members := range byKey {
		s.call(func(ctx context.Context) error {
			return renewScript.Run(ctx, s.rdb, []string{key}, append([]any{ttl}, members...)...).Err()
		})
	}
}
