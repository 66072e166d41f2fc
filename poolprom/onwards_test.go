package poolprom

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/onwardsgo/pool/gateway"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The checks and refusals of onwards' inflight_limit_metrics.rs: counted
// per account, a refusal series only once refused, and the account's
// limit beside them.
func TestInflightChecksAndRefusalsAreCountedPerAccount(t *testing.T) {
	reg := newRegistry(t, `{"auth": {"key_definitions": {
		"acme_backend": {"key": "sk-acme-1", "labels": {"account": "acme"}},
		"acme_worker": {"key": "sk-acme-2", "labels": {"account": "acme"}},
		"globex_backend": {"key": "sk-globex-1", "labels": {"account": "globex"}}}},
		"targets": {"m": {"inflight_limit": 1, "account_inflight_limits": {"globex": 3},
			"providers": [{"url": "https://upstream.example.com/v1/"}]}}}`)
	hold := func(key string) error {
		adm, err := reg.Admit("m", key)
		if err != nil {
			t.Fatal(err)
		}
		if err := adm.HoldInflight(false); err != nil {
			adm.Close()
			return err
		}
		t.Cleanup(func() { adm.Close() })
		return nil
	}
	if out := gather(t, reg); strings.Contains(out, "onwards_inflight") {
		t.Fatalf("series before any request:\n%s", out)
	}
	if hold("sk-acme-1") != nil || hold("sk-acme-2") == nil || hold("sk-globex-1") != nil {
		t.Fatal("acme's first is held, its second refused, globex's held")
	}
	for series, want := range map[string]float64{
		`onwards_inflight_limit_checks_total|account="acme",model="m"`:   2,
		`onwards_inflight_limit_refusals_total|account="acme",model="m"`: 1,
		`onwards_inflight_account_limit|account="acme",model="m"`:        1,
		`onwards_inflight_limit_checks_total|account="globex",model="m"`: 1,
		`onwards_inflight_account_limit|account="globex",model="m"`:      3,
	} {
		name, labels, _ := strings.Cut(series, "|")
		if got := testutil.ToFloat64(metric(t, reg, name, labels)); got != want {
			t.Errorf("%s{%s} = %v, want %v", name, labels, got, want)
		}
	}
	if n := testutil.CollectAndCount(New(reg), "onwards_inflight_limit_refusals_total"); n != 1 {
		t.Errorf("%d refusal series, want 1: an account never refused has none", n)
	}
}

func TestAttemptsRecordOnwardsLabels(t *testing.T) {
	m := NewAttempts()
	m.Record(gateway.Attempt{Alias: "m", Provider: 0, FirstTokenTimedOut: true, FellBack: true,
		Err: fmt.Errorf("%w after 1s", gateway.ErrFirstTokenTimeout)})
	m.Record(gateway.Attempt{Alias: "m", Provider: 1, Status: 529, FellBack: true, Dispatched: true})
	m.Record(gateway.Attempt{Alias: "m", Provider: 2, Status: 200, FirstToken: 300 * time.Millisecond,
		RescuedFrom: &gateway.Attempt{Alias: "m", Status: 529, FellBack: true}})
	want := `
# HELP onwards_failovers_total Attempts the pool failed over from.
# TYPE onwards_failovers_total counter
onwards_failovers_total{cause="529",model="m",traffic="dispatched"} 1
onwards_failovers_total{cause="first_token_timeout",model="m",traffic="realtime"} 1
# HELP onwards_fallback_rescues_total Requests answered with a 2xx after at least one failover.
# TYPE onwards_fallback_rescues_total counter
onwards_fallback_rescues_total{cause="529",model="m",traffic="realtime"} 1
# HELP onwards_first_token_breaches_total First-token deadlines that expired.
# TYPE onwards_first_token_breaches_total counter
onwards_first_token_breaches_total{model="m",pool="default",role="preferred"} 1
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "onwards_failovers_total", "onwards_fallback_rescues_total", "onwards_first_token_breaches_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m, "onwards_first_token_seconds"); n != 1 {
		t.Fatalf("%d first-token series, want 1 (the alternate's)", n)
	}
	problems, err := testutil.CollectAndLint(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
