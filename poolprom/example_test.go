package poolprom_test

import (
	"fmt"

	"github.com/onwardsgo/pool"
	"github.com/onwardsgo/pool/poolprom"
	"github.com/prometheus/client_golang/prometheus"
)

func ExampleNew() {
	cfg, _ := pool.ParseConfig([]byte(`{"targets": {"chat": {"url": "https://api.example.com/v1"}}}`))
	reg, _ := pool.NewRegistry(cfg)

	metrics := prometheus.NewRegistry()
	metrics.MustRegister(poolprom.New(reg))
	// Serve it with promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}).

	families, _ := metrics.Gather()
	for _, f := range families {
		if f.GetName() == "pool_provider_inflight" {
			for _, m := range f.GetMetric() {
				fmt.Println(f.GetName(), m.GetLabel()[0].GetValue(), m.GetLabel()[1].GetValue(), m.GetGauge().GetValue())
			}
		}
	}
	// Output:
	// pool_provider_inflight chat 0:api.example.com 0
}
