// Package poolredis shares the limits of a [pool.Registry] across replicas
// on Redis, so that a pool limited to 50 requests in flight admits 50 across
// all replicas, not 50 on each. A [Store] is a [pool.SharedState]; set it on
// the registry before its first Reload:
//
//	store, rdb, err := poolredis.FromConfig(cfg.SharedState, logger)
//	reg := &pool.Registry{Shared: store}
//	err = reg.Reload(cfg)
//
// Concurrency limits are leases: one sorted set per limit, in which a Lua
// script drops the expired leases and adds one if there is room, on the
// server's clock. A held lease is renewed every third of its TTL, so a
// long stream keeps its slot and a crashed replica's slots come back within
// the TTL. Rate limits are GCRA in one Lua script, which returns the wait
// that a 429's Retry-After carries. Token limits are the same GCRA with a
// cost: a request reserves its estimate, and its settlement gives back or
// takes the difference (a Store is a [pool.SharedTokenState]).
//
// When Redis is down or slower than [Options].CallTimeout, a Store fails
// open by default: each replica enforces its share of every limit,
// limit/Replicas rounded up, until Redis is back. With FailClosed it refuses
// what needs Redis. Either way it logs once when Redis goes and once when it
// comes back, never per request.
//
// Selection stays local and takes no round trip: the pool weighs a provider
// by its slots on this replica plus what the other replicas held when last
// seen, and the lease in Redis has the last word.
package poolredis
