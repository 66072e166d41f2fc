// Package pool balances requests over pools of upstream LLM providers. It is
// a Go port of the load balancer of the Rust crate onwards (0.18.1,
// src/load_balancer.rs), with the config file, registry and admission of
// onwards' handler above it. Package gateway forwards requests with it; use
// this package directly to balance from a handler of your own.
//
// # Pools and providers
//
// A [ProviderPool] is the set of upstream providers of one model alias. A
// [Provider] is a [Target] (URL, upstream key, upstream model, headers,
// timeout), a weight and, optionally, a concurrency limit. Build a pool with
// [NewProviderPool] and [Option] values. Its providers and settings do not
// change once it serves, so a new config means a new pool (see Reloads).
//
// # Selection
//
// [ProviderPool.Select] picks one provider for one request and takes a slot
// on it. The strategy is [WeightedRandom] (the zero value): among providers
// below their concurrency limit, the lowest in-flight/weight, ties broken at
// random in proportion to weight, so that a cold pool spreads by weight;
// weight 0 drains a provider. [TokenAware] weighs the estimated tokens in
// flight instead of the requests ([SelectIter.SetTokens]); [PeakEWMA]
// draws two providers by weight and takes the one of lower latency times
// load ([Selection.ReportLatency]). [Priority] takes the first provider,
// in the order given, with room; [RoundRobin] takes them in turn. A provider at its limit is skipped; when every one
// is, Select reports false.
//
// # The fallback walk
//
// [ProviderPool.Attempts] (or [ProviderPool.SelectIter], for control over
// the walk) selects lazily, one provider per step: try the first, and on a
// failure that the pool's [FallbackConfig] falls back on
// ([ProviderPool.ShouldFallbackOnStatus]), take the next. Within a pass no
// provider repeats; with MaxAttempts set, a pass that has tried every
// eligible provider starts another, with a [Backoff] wait before each retry.
// The walk ends when nothing is eligible, at MaxAttempts, or when the pool's
// [RetryBudget] is spent.
//
// # Load-aware controls
//
// onwards 2.0's controls decide where a walk starts and what it may take:
// a priority pool's [AIMD] share of load-aware walks
// ([SelectIter.SetLoadAware]) that try the preferred provider first,
// learned from its first-token outcomes ([SelectIter.Observe]);
// conversation [Affinity] ([SelectIter.SetConversation]); the providers a
// request class may use ([Serves], [SelectIter.SetClass]); and an
// account's requests in flight ([Admission.HoldInflight]).
//
// # Guards
//
// Every [Selection] holds a [ConcurrencyGuard]: the request counts against
// its provider until [Selection.Close], which releases the slot exactly once
// from any copy and any goroutine; later calls do nothing. Close it when the
// response, often a stream, is done, and call [Selection.Report] with its
// [Outcome] first, for snapshots and [OutlierDetection].
//
// # Reloads
//
// [ProviderPool.AdoptProviderState] makes a new pool share the live
// counters of the old one, provider by provider (same URL, upstream key and
// model), before the new pool serves. Guards taken from the old pool release
// into the shared counters, so no count drifts across a reload.
//
// # Config, registry and admission
//
// [ParseConfig] and [LoadConfig] read onwards' config file; every problem is
// reported with its place in the file (a [FieldError]), and what loads but
// may surprise is in [Config].Warnings. A [Registry] serves a config: one
// pool per alias, [Registry.Admit] for the checks onwards' handler runs
// before it selects (alias, key, routing rules, rate and concurrency
// limits), and [Registry.Reload], which swaps in a new config atomically and
// changes nothing when the new config fails. [Registry.Snapshot] reports
// every pool's counters and health.
//
// A rate_limit's token form (tokens_per_minute) is a [TokenLimiter]: the
// request reserves an estimate of its tokens with
// [Admission.ReserveTokens], and its answer's usage settles it with
// [Admission.SettleTokens].
//
// # Shared state and time
//
// A [SharedState] on [Registry.Shared] makes rate and concurrency limits
// hold across replicas (the poolredis module implements it on Redis).
// Everything that depends on time reads a [Clock] ([WithClock]), so that
// tests can move it.
//
// # Concurrency
//
// Every type is safe for simultaneous use by multiple goroutines, except one
// [SelectIter], which belongs to one request. Select takes no lock: it scans
// an immutable slice of providers' atomic counters and takes its slot with
// one atomic add, or a compare-and-swap loop on a limited provider. Its one
// allocation is a block of guards for every 62 selections.
//
// The repository's docs/ pages describe each topic at length, with how this
// package differs from onwards.
package pool
