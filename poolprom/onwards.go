package poolprom

import (
	"errors"
	"strconv"

	"github.com/onwardsgo/pool"
	"github.com/onwardsgo/pool/gateway"
	"github.com/prometheus/client_golang/prometheus"
)

// poolLabel is the value of onwards' "pool" label: each alias here has one
// pool, onwards' default one.
const poolLabel = "default"

var (
	shareLabels = []string{"model", "pool"}

	descShare       = prometheus.NewDesc("onwards_provider_share", "The AIMD controller's preferred-first share.", shareLabels, nil)
	descAIMDActive  = prometheus.NewDesc("onwards_aimd_active", "1 while the AIMD controller acts, 0 while parked or retired.", shareLabels, nil)
	descAIMDSamples = prometheus.NewDesc("onwards_aimd_window_samples", "Completed outcomes in the controller's window.", shareLabels, nil)
	descAIMDRate    = prometheus.NewDesc("onwards_aimd_window_breach_rate", "Breaches over the outcomes in the window.", shareLabels, nil)
	descAIMDFlight  = prometheus.NewDesc("onwards_aimd_in_flight", "Observed attempts begun and not finished.", shareLabels, nil)
	descAdjustments = prometheus.NewDesc("onwards_share_adjustments_total", "Adjustments of the share, by direction.", append(shareLabels, "direction"), nil)
	descAIMDUnknown = prometheus.NewDesc("onwards_aimd_unknown_total", "Observed attempts whose outcome was unknown.", shareLabels, nil)

	accountLabels  = []string{"model", "account"}
	descChecks     = prometheus.NewDesc("onwards_inflight_limit_checks_total", "Realtime requests checked against an account's in-flight limit.", accountLabels, nil)
	descRefusals   = prometheus.NewDesc("onwards_inflight_limit_refusals_total", "Realtime requests an account's in-flight limit refused.", accountLabels, nil)
	descAccountCap = prometheus.NewDesc("onwards_inflight_account_limit", "The in-flight limit of an account on the model.", accountLabels, nil)
	descBatchRefus = prometheus.NewDesc("onwards_batch_inflight_refusals_total", "Dispatched requests the batch in-flight cap refused.", []string{"model"}, nil)
)

var onwardsDescs = []*prometheus.Desc{descShare, descAIMDActive, descAIMDSamples, descAIMDRate, descAIMDFlight,
	descAdjustments, descAIMDUnknown, descChecks, descRefusals, descAccountCap, descBatchRefus}

// collectOnwards sends onwards 2.0's metrics of one pool: its AIMD
// controller and its in-flight limits. As in onwards, an account's series
// appear once it has been checked, and a refusal series once it has been
// refused.
func collectOnwards(ch chan<- prometheus.Metric, p pool.PoolSnapshot) {
	if s := p.Share; s != nil {
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, p.Alias, poolLabel)
		}
		gauge(descShare, s.Share)
		gauge(descAIMDActive, flag(s.Active))
		gauge(descAIMDSamples, float64(s.Samples))
		gauge(descAIMDRate, s.BreachRate)
		gauge(descAIMDFlight, float64(s.InFlight))
		ch <- prometheus.MustNewConstMetric(descAdjustments, prometheus.CounterValue, float64(s.Increases), p.Alias, poolLabel, "increase")
		ch <- prometheus.MustNewConstMetric(descAdjustments, prometheus.CounterValue, float64(s.Decreases), p.Alias, poolLabel, "decrease")
		ch <- prometheus.MustNewConstMetric(descAIMDUnknown, prometheus.CounterValue, float64(s.UnknownSeen), p.Alias, poolLabel)
	}
	in := p.Inflight
	if in == nil {
		return
	}
	for _, a := range in.Accounts {
		ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, float64(a.Checks), p.Alias, a.Account)
		if a.Refusals > 0 {
			ch <- prometheus.MustNewConstMetric(descRefusals, prometheus.CounterValue, float64(a.Refusals), p.Alias, a.Account)
		}
		if a.Limit >= 0 {
			ch <- prometheus.MustNewConstMetric(descAccountCap, prometheus.GaugeValue, float64(a.Limit), p.Alias, a.Account)
		}
	}
	if in.BatchRefusals > 0 {
		ch <- prometheus.MustNewConstMetric(descBatchRefus, prometheus.CounterValue, float64(in.BatchRefusals), p.Alias)
	}
}

// Attempts are onwards 2.0's metrics of the gateway's attempts, recorded
// from a [gateway.Handler]'s OnAttempt hook:
//
//	onwards_first_token_seconds{model,pool,role}         histogram
//	onwards_first_token_breaches_total{model,pool,role}  counter
//	onwards_failovers_total{model,cause,traffic}         counter
//	onwards_fallback_rescues_total{model,cause,traffic}  counter: 2xx after a failover, by the first failure's cause
//
// role is "preferred" for a pool's first provider and "alternate" for the
// others; cause is the upstream status that moved the request on, or
// timeout, first_token_timeout, network_error or rate_limited; traffic is
// "dispatched" or "realtime". No label holds a URL or a key. Register it
// with prometheus.MustRegister and set the hook:
//
//	a := poolprom.NewAttempts()
//	prometheus.MustRegister(a)
//	h.OnAttempt = a.Record
//
// The zero value is not usable; use NewAttempts.
type Attempts struct {
	firstToken *prometheus.HistogramVec
	breaches   *prometheus.CounterVec
	failovers  *prometheus.CounterVec
	rescues    *prometheus.CounterVec
}

// FirstTokenBuckets are the buckets of onwards_first_token_seconds.
var FirstTokenBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}

// NewAttempts returns the attempt metrics, empty.
func NewAttempts() *Attempts {
	labels := []string{"model", "pool", "role"}
	return &Attempts{
		firstToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "onwards_first_token_seconds",
			Help: "Time from the start of an attempt to its first data frame.", Buckets: FirstTokenBuckets}, labels),
		breaches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onwards_first_token_breaches_total",
			Help: "First-token deadlines that expired."}, labels),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onwards_failovers_total",
			Help: "Attempts the pool failed over from."}, []string{"model", "cause", "traffic"}),
		rescues: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onwards_fallback_rescues_total",
			Help: "Requests answered with a 2xx after at least one failover."}, []string{"model", "cause", "traffic"}),
	}
}

// Record counts one attempt; it is a gateway.Handler's OnAttempt.
func (m *Attempts) Record(a gateway.Attempt) {
	role := "alternate"
	if a.Provider == 0 {
		role = "preferred"
	}
	if a.FirstToken > 0 {
		m.firstToken.WithLabelValues(a.Alias, poolLabel, role).Observe(a.FirstToken.Seconds())
	}
	if a.FirstTokenTimedOut {
		m.breaches.WithLabelValues(a.Alias, poolLabel, role).Inc()
	}
	traffic := "realtime"
	if a.Dispatched {
		traffic = "dispatched"
	}
	if a.FellBack {
		m.failovers.WithLabelValues(a.Alias, cause(a), traffic).Inc()
	}
	if a.RescuedFrom != nil {
		m.rescues.WithLabelValues(a.Alias, cause(*a.RescuedFrom), traffic).Inc()
	}
}

// cause is why an attempt failed over, as onwards labels it.
func cause(a gateway.Attempt) string {
	switch {
	case errors.Is(a.Err, gateway.ErrFirstTokenTimeout):
		return "first_token_timeout"
	case errors.Is(a.Err, gateway.ErrUpstreamTimeout):
		return "timeout"
	case errors.Is(a.Err, gateway.ErrProviderRateLimited):
		return "rate_limited"
	case a.Status != 0:
		return strconv.Itoa(a.Status)
	}
	return "network_error"
}

// Describe sends the descriptions of the attempt metrics.
func (m *Attempts) Describe(ch chan<- *prometheus.Desc) {
	m.firstToken.Describe(ch)
	m.breaches.Describe(ch)
	m.failovers.Describe(ch)
	m.rescues.Describe(ch)
}

// Collect sends the attempt metrics.
func (m *Attempts) Collect(ch chan<- prometheus.Metric) {
	m.firstToken.Collect(ch)
	m.breaches.Collect(ch)
	m.failovers.Collect(ch)
	m.rescues.Collect(ch)
}
