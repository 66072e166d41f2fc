// Package poolprom exports the state of a [pool.Registry] as Prometheus
// metrics. It is a module of its own, so that client_golang never enters
// the root module's build.
//
//	prometheus.MustRegister(poolprom.New(reg))
//
// A [Collector] takes one [pool.Registry.Snapshot] at each scrape and turns
// it into constant metrics: per provider, requests in flight, the limit,
// attempts by outcome, and outlier ejection and cooldown; per alias,
// refusals by code, retries and backoff time; per upstream model, requests
// in flight, as onwards' onwards_model_inflight. Series are bounded by the
// config: a provider or alias that a reload removes is gone from the next
// scrape, and the provider label is "INDEX:HOST", never a key or a URL
// with credentials. The Collector's documentation lists every metric.
package poolprom
