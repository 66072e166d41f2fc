package poolredis

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/onwardsgo/pool"
	"github.com/redis/go-redis/v9"
)

// tokensScript is the GCRA of gcraScript with a cost: KEYS[1] holds the
// theoretical arrival time, ARGV[1] is the burst, ARGV[2] the tokens a
// second and ARGV[3] the cost. A cost that the bucket does not hold is
// refused: it returns 0 and the seconds until it would be allowed, as a
// string; else 1. With ARGV[4] "settle" it never refuses: a negative cost
// gives tokens back, down to a full bucket, and a positive one takes them,
// even into debt.
var tokensScript = redis.NewScript(`
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local emission = 1 / rate
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1483228800) + tonumber(t[2]) / 1000000
local tat = redis.call('GET', KEYS[1])
if not tat then tat = now else tat = tonumber(tat) end
tat = math.max(tat, now)
local new_tat = tat + emission * cost
if ARGV[4] ~= "settle" then
  local diff = now - (new_tat - emission * burst)
  if diff < 0 then
    return {0, tostring(-diff)}
  end
end
if new_tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1)
end
return {1, "0"}
`)

// tokens is a token limit of Redis, as GCRA with a cost.
type tokens struct {
	s     *Store
	key   string
	rate  string // tokens a second, formatted for the script
	burst int64
	local *pool.TokenLimiter // the share enforced while Redis is down
}

// Tokens returns the token limit of name across replicas: perMinute
// tokens a minute, up to burst at once. While Redis is down it enforces
// this replica's share, as Rate does, or refuses with FailClosed.
func (s *Store) Tokens(name string, perMinute, burst int64) pool.SharedTokens {
	replicas := int64(s.opts.Replicas)
	local := pool.NewTokenLimiter(max(perMinute/replicas, 1), (burst+replicas-1)/replicas, nil)
	perSecond := strconv.FormatFloat(float64(perMinute)/60, 'g', -1, 64)
	return &tokens{s: s, key: s.key("tokens", name), rate: perSecond, burst: burst, local: local}
}

// Reserve takes n tokens on Redis, or on the local share while Redis is
// down; the settlement goes where the tokens were taken.
func (l *tokens) Reserve(n int64) (func(delta int64), time.Duration, bool) {
	ok, wait, err := l.run(n, false)
	switch {
	case err == nil && !ok:
		return nil, wait, false
	case err == nil:
		var once sync.Once
		return func(delta int64) { once.Do(func() { l.run(-delta, true) }) }, 0, true
	case l.s.opts.FailClosed:
		return nil, pool.ConcurrencyRetryAfter, false
	}
	r, wait, ok := l.local.Reserve(n)
	if !ok {
		return nil, wait, false
	}
	return func(delta int64) { r.Settle(r.Reserved() - delta) }, 0, true
}

// run runs the script for cost; settle never refuses.
func (l *tokens) run(cost int64, settle bool) (ok bool, wait time.Duration, err error) {
	mode := "reserve"
	if settle {
		mode = "settle"
	}
	err = l.s.call(func(ctx context.Context) error {
		res, err := tokensScript.Run(ctx, l.s.rdb, []string{l.key}, l.burst, l.rate, cost, mode).Slice()
		if err != nil {
			return err
		}
		ok, wait, err = gcraResult(res)
		return err
	})
	return ok, wait, err
}

var _ pool.SharedTokenState = (*Store)(nil)
