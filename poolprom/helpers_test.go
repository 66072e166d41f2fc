package poolprom

import (
	"strings"
	"testing"

	"github.com/onwardsgo/pool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func prometheusRegistry(c prometheus.Collector) *prometheus.Registry {
	r := prometheus.NewPedanticRegistry()
	r.MustRegister(c)
	return r
}

// one is a collector of a single metric, for testutil.ToFloat64.
type one struct{ m prometheus.Metric }

func (o one) Describe(ch chan<- *prometheus.Desc) { ch <- o.m.Desc() }
func (o one) Collect(ch chan<- prometheus.Metric) { ch <- o.m }

// metric finds the metric of the named family whose labels, written as
// in the exposition format and sorted, are labels.
func metric(t *testing.T, reg *pool.Registry, name, labels string) prometheus.Collector {
	t.Helper()
	ch := make(chan prometheus.Metric, 1024)
	New(reg).Collect(ch)
	close(ch)
	for m := range ch {
		if !strings.Contains(m.Desc().String(), `"`+name+`"`) {
			continue
		}
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, lp := range pb.GetLabel() {
			parts = append(parts, lp.GetName()+`="`+lp.GetValue()+`"`)
		}
		if strings.Join(parts, ",") == labels {
			return one{m}
		}
	}
	t.Fatalf("no %s{%s}", name, labels)
	return nil
}
