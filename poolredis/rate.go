package poolredis

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/onwardsgo/pool"
	"github.com/redis/go-redis/v9"
)

// gcraScript is the generic cell rate algorithm of go-redis/redis_rate,
// for one request: KEYS[1] holds the theoretical arrival time, ARGV[1] is
// the burst and ARGV[2] the rate per second. It returns 1, or 0 and the
// seconds until a request would be allowed, as a string.
var gcraScript = redis.NewScript(`
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local emission = 1 / rate
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1483228800) + tonumber(t[2]) / 1000000
local tat = redis.call('GET', KEYS[1])
if not tat then tat = now else tat = tonumber(tat) end
tat = math.max(tat, now)
local new_tat = tat + emission
local allow_at = new_tat - emission * burst
local diff = now - allow_at
if diff < 0 then
  return {0, tostring(-diff)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1)
return {1, "0"}
`)

// gcraResult reads what gcraScript and tokensScript return: whether the
// request was allowed, and the wait until it would be. A reply of another
// shape (a server that is not Redis, a script changed under us) is an
// error, treated as Redis being unreachable.
func gcraResult(res []any) (ok bool, wait time.Duration, err error) {
	var allowed int64
	var secs string
	if len(res) == 2 {
		allowed, ok = res[0].(int64)
		if ok {
			secs, ok = res[1].(string)
		}
	}
	if !ok {
		return false, 0, fmt.Errorf("poolredis: unexpected reply %v from the rate script", res)
	}
	if s, perr := strconv.ParseFloat(secs, 64); perr == nil && s > 0 {
		wait = time.Duration(math.Ceil(s * float64(time.Second)))
	}
	return allowed == 1, wait, nil
}

// rate is a token bucket of Redis, as GCRA.
type rate struct {
	s     *Store
	key   string
	rps   float64
	burst int
	local pool.RateLimiter // the share enforced while Redis is down
}

// Rate returns the token bucket of name across replicas.
func (s *Store) Rate(name string, requestsPerSecond float64, burst int) pool.SharedRate {
	share := s.share(burst)
	local := pool.NewRateLimiter(requestsPerSecond/float64(s.opts.Replicas), share)
	return &rate{s: s, key: s.key("rate", name), rps: requestsPerSecond, burst: burst, local: local}
}

// Allow spends one token, and tells how long until one is left when none
// is.
func (r *rate) Allow() (bool, time.Duration) {
	var ok bool
	var wait time.Duration
	err := r.s.call(func(ctx context.Context) error {
		res, err := gcraScript.Run(ctx, r.s.rdb, []string{r.key}, r.burst, strconv.FormatFloat(r.rps, 'g', -1, 64)).Slice()
		if err != nil {
			return err
		}
		ok, wait, err = gcraResult(res)
		return err
	})
	switch {
	case err == nil:
		return ok, wait
	case r.s.opts.FailClosed:
		return false, pool.ConcurrencyRetryAfter
	}
	if r.local.Allow() {
		return true, 0
	}
	return false, pool.RateLimitDelay(r.local)
}
