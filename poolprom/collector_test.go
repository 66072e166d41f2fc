package poolprom

import (
	"os"
	"strings"
	"testing"

	"github.com/onwardsgo/pool"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const config = `{"targets": {
	"chat": {"strategy": "priority", "keys": ["sk-client"],
	         "outlier_detection": {"consecutive_failures": 1},
	         "fallback": {"enabled": true, "backoff": {"initial_ms": 250, "jitter": "none"}},
	         "providers": [
	           {"url": "https://user:secret@a.example.com/v1", "onwards_key": "sk-upstream", "concurrency_limit": {"max_concurrent_requests": 4}},
	           {"url": "https://b.example.com/v1"}]},
	"embed": {"url": "https://c.example.com/v1"}}}`

func newRegistry(t *testing.T, doc string) *pool.Registry {
	t.Helper()
	cfg, err := pool.ParseConfig([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := pool.NewRegistry(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// script drives a registry through known outcomes: two requests to chat,
// whose first provider fails once (ejected) and whose second succeeds; one
// refused for its key; one for an unknown model; one left in flight.
func script(t *testing.T, reg *pool.Registry) (inFlight *pool.Admission) {
	t.Helper()
	for range 2 {
		adm, err := reg.Admit("chat", "sk-client")
		if err != nil {
			t.Fatal(err)
		}
		it := adm.Pool.SelectIter()
		for sel, ok := it.Next(); ok; sel, ok = it.Next() {
			if sel.Index == 0 {
				sel.Report(pool.Failure)
				sel.Close()
				it.Backoff()
				continue
			}
			sel.Report(pool.Success)
			sel.Close()
			break
		}
		adm.Close()
	}
	reg.Admit("chat", "sk-wrong")
	reg.Admit("gpt-5", "")
	adm, err := reg.Admit("embed", "")
	if err != nil {
		t.Fatal(err)
	}
	return adm
}

func TestCollectorGolden(t *testing.T) {
	reg := newRegistry(t, config)
	defer script(t, reg).Close()
	golden, err := os.Open("testdata/metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer golden.Close()
	if err := testutil.CollectAndCompare(New(reg), golden); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.CollectAndLint(New(reg))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	out := gather(t, reg)
	for _, secret := range []string{"secret", "sk-", "user"} {
		if strings.Contains(out, secret) {
			t.Errorf("the metrics show %q", secret)
		}
	}
}

// gather returns the text exposition of reg's collector.
func gather(t *testing.T, reg *pool.Registry) string {
	t.Helper()
	r := prometheusRegistry(New(reg))
	mfs, err := r.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		b.WriteString(mf.String())
	}
	return b.String()
}

func TestReloadRemovesSeriesAndKeepsCounts(t *testing.T) {
	reg := newRegistry(t, config)
	script(t, reg).Close()
	before := testutil.ToFloat64(metric(t, reg, "pool_provider_requests_total", `alias="chat",outcome="success",provider="1:b.example.com"`))

	cfg, err := pool.ParseConfig([]byte(`{"targets": {"chat": {"strategy": "priority", "keys": ["sk-client"],
		"providers": [{"url": "https://b.example.com/v1"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	out := gather(t, reg)
	for _, gone := range []string{"a.example.com", `"embed"`} {
		if strings.Contains(out, gone) {
			t.Errorf("%s is still exported after the reload removed it", gone)
		}
	}
	// b moved from index 1 to 0: its label changes, its count does not.
	after := testutil.ToFloat64(metric(t, reg, "pool_provider_requests_total", `alias="chat",outcome="success",provider="0:b.example.com"`))
	if after != before || before != 2 {
		t.Errorf("b's successes: %v before the reload, %v after; want 2 and 2", before, after)
	}
	if n := testutil.ToFloat64(metric(t, reg, "pool_retries_total", `alias="chat"`)); n != 1 {
		t.Errorf("retries after the reload: %v, want 1 (the second request skipped the ejected provider)", n)
	}
}

func TestBackoffIsInSeconds(t *testing.T) {
	reg := newRegistry(t, config)
	script(t, reg).Close()
	if got := testutil.ToFloat64(metric(t, reg, "pool_backoff_seconds_total", `alias="chat"`)); got != 0.25 {
		t.Errorf("backoff: %v s, want 0.25 (one wait of 250 ms: the second request skips the ejected provider)", got)
	}
}
