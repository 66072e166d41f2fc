package poolprom

import (
	"sort"

	"github.com/onwardsgo/pool"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector is a prometheus.Collector over a registry: at each scrape it
// takes a [pool.Registry.Snapshot] and turns it into constant metrics, so
// a provider or alias removed by a reload disappears from the next scrape
// and the series are bounded by the config. Register it with
// prometheus.MustRegister(poolprom.New(reg)).
//
// Its metrics, with their labels (provider is "INDEX:HOST", never a key or
// a full URL):
//
//	pool_provider_inflight{alias,provider}                gauge
//	pool_provider_limit{alias,provider}                   gauge, absent when unlimited
//	pool_provider_requests_total{alias,provider,outcome}  counter: success, failure, timeout, rate_limited, cancelled, neutral
//	pool_provider_ejected{alias,provider}                 gauge, 1 while ejected or half-open
//	pool_provider_ejections_total{alias,provider}         counter
//	pool_provider_cooling{alias,provider}                 gauge, 1 while a Retry-After cooldown runs
//	pool_admission_rejections_total{alias,code}           counter
//	pool_retries_total{alias}                             counter
//	pool_backoff_seconds_total{alias}                     counter
//	pool_model_inflight{model}                            gauge (onwards' onwards_model_inflight)
//	pool_unknown_model_requests_total                     counter
//
// and onwards 2.0's, with onwards' names (model is the alias, pool is
// "default"; an account is a key's "account" label, bounded by the
// config):
//
//	onwards_provider_share{model,pool}                    gauge, the AIMD share
//	onwards_aimd_active{model,pool}                       gauge
//	onwards_aimd_window_samples{model,pool}               gauge
//	onwards_aimd_window_breach_rate{model,pool}           gauge
//	onwards_aimd_in_flight{model,pool}                    gauge
//	onwards_share_adjustments_total{model,pool,direction} counter: increase, decrease
//	onwards_aimd_unknown_total{model,pool}                counter
//	onwards_inflight_limit_checks_total{model,account}    counter
//	onwards_inflight_limit_refusals_total{model,account}  counter, from the first refusal
//	onwards_inflight_account_limit{model,account}         gauge
//	onwards_batch_inflight_refusals_total{model}          counter, from the first refusal
//
// The first-token and failover metrics come from the gateway's attempts:
// see [Attempts].
//
// A Collector is safe for simultaneous scrapes. The zero value has no
// registry and collects nothing; use New.
type Collector struct {
	reg *pool.Registry
}

// New returns a collector over reg.
func New(reg *pool.Registry) *Collector { return &Collector{reg: reg} }

var (
	providerLabels = []string{"alias", "provider"}

	descInflight    = prometheus.NewDesc("pool_provider_inflight", "Requests in flight to the provider.", providerLabels, nil)
	descLimit       = prometheus.NewDesc("pool_provider_limit", "The provider's concurrency limit; absent when it has none.", providerLabels, nil)
	descRequests    = prometheus.NewDesc("pool_provider_requests_total", "Attempts on the provider, by how they ended.", append(providerLabels, "outcome"), nil)
	descEjected     = prometheus.NewDesc("pool_provider_ejected", "1 while outlier detection holds the provider ejected (or half-open), else 0.", providerLabels, nil)
	descEjections   = prometheus.NewDesc("pool_provider_ejections_total", "Times outlier detection ejected the provider.", providerLabels, nil)
	descCooling     = prometheus.NewDesc("pool_provider_cooling", "1 while the provider cools down for its Retry-After, else 0.", providerLabels, nil)
	descRejections  = prometheus.NewDesc("pool_admission_rejections_total", "Requests refused at admission, by OpenAI error code.", []string{"alias", "code"}, nil)
	descRetries     = prometheus.NewDesc("pool_retries_total", "Attempts after a request's first.", []string{"alias"}, nil)
	descBackoff     = prometheus.NewDesc("pool_backoff_seconds_total", "Time spent waiting between attempts.", []string{"alias"}, nil)
	descModelFlight = prometheus.NewDesc("pool_model_inflight", "Admitted requests in flight per model alias.", []string{"model"}, nil)
	descUnknown     = prometheus.NewDesc("pool_unknown_model_requests_total", "Requests refused because their model was missing or named no alias.", nil, nil)
)

// Describe sends the descriptions of every metric.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInflight, descLimit, descRequests, descEjected, descEjections,
		descCooling, descRejections, descRetries, descBackoff, descModelFlight, descUnknown} {
		ch <- d
	}
	for _, d := range onwardsDescs {
		ch <- d
	}
}

// Collect sends the metrics of one snapshot.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if c == nil || c.reg == nil {
		return
	}
	s := c.reg.Snapshot()
	ch <- prometheus.MustNewConstMetric(descUnknown, prometheus.CounterValue, float64(s.UnknownModel))
	for _, p := range s.Pools {
		collectPool(ch, p)
	}
}

func collectPool(ch chan<- prometheus.Metric, p pool.PoolSnapshot) {
	ch <- prometheus.MustNewConstMetric(descModelFlight, prometheus.GaugeValue, float64(p.InFlight), p.Alias)
	ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(p.Retries), p.Alias)
	ch <- prometheus.MustNewConstMetric(descBackoff, prometheus.CounterValue, p.Backoff.Seconds(), p.Alias)
	for _, code := range sortedKeys(p.Refused) {
		ch <- prometheus.MustNewConstMetric(descRejections, prometheus.CounterValue, float64(p.Refused[code]), p.Alias, code)
	}
	for _, pr := range p.Providers {
		collectProvider(ch, p.Alias, pr)
	}
	collectOnwards(ch, p)
}

func collectProvider(ch chan<- prometheus.Metric, alias string, pr pool.ProviderSnapshot) {
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, alias, pr.Label)
	}
	gauge(descInflight, float64(pr.InFlight))
	if pr.Limited {
		gauge(descLimit, float64(pr.Limit))
	}
	gauge(descEjected, flag(pr.State == pool.StateEjected || pr.State == pool.StateHalfOpen))
	gauge(descCooling, flag(pr.State == pool.StateCooling))
	ch <- prometheus.MustNewConstMetric(descEjections, prometheus.CounterValue, float64(pr.Ejections), alias, pr.Label)
	for _, outcome := range sortedKeys(pr.Attempts) {
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(pr.Attempts[outcome]), alias, pr.Label, outcome)
	}
}

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
