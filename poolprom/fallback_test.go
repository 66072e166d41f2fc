package poolprom

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/onwardsgo/pool"
	"github.com/onwardsgo/pool/gateway"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The tests of onwards' fallback_metrics.rs, through the gateway: the
// preferred upstream answers with one status and the alternate with
// another; 502 stands for a refused connection.
func fallbackServer(t *testing.T, preferred, alternate int) (*Attempts, func(dispatched bool) int) {
	t.Helper()
	upstream := func(status int) string {
		if status == http.StatusBadGateway {
			s := httptest.NewServer(nil)
			s.Close() // nothing listens there: the connection is refused
			return s.URL
		}
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			if status == 200 {
				w.Write([]byte(`{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]}`))
			} else {
				w.Write([]byte(`{"error":{"message":"refused"}}`))
			}
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	cfg, err := pool.ParseConfig([]byte(`{"targets": {"m": {"strategy": "priority",
		"fallback": {"enabled": true, "on_status": [400, 529]},
		"providers": [{"url": "` + upstream(preferred) + `"}, {"url": "` + upstream(alternate) + `"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := pool.NewRegistry(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := NewAttempts()
	h := &gateway.Handler{Registry: reg, OnAttempt: m.Record, DispatchedHeader: "X-Batch"}
	return m, func(dispatched bool) int {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
			strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"Hello"}]}`))
		if dispatched {
			req.Header.Set("X-Batch", "true")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
}

func countOf(t *testing.T, m *Attempts, metric, cause, traffic string) float64 {
	t.Helper()
	switch metric {
	case "onwards_failovers_total":
		return testutil.ToFloat64(m.failovers.WithLabelValues("m", cause, traffic))
	default:
		return testutil.ToFloat64(m.rescues.WithLabelValues("m", cause, traffic))
	}
}

func TestARequestAnsweredAfterFailingOverIsARescue(t *testing.T) {
	m, post := fallbackServer(t, 400, 200)
	if code := post(false); code != 200 {
		t.Fatalf("status %d", code)
	}
	if got := countOf(t, m, "onwards_failovers_total", "400", "realtime"); got != 1 {
		t.Errorf("failovers %v, want 1", got)
	}
	if got := countOf(t, m, "onwards_fallback_rescues_total", "400", "realtime"); got != 1 {
		t.Errorf("rescues %v, want 1", got)
	}
}

func TestRescuesCarryTheFirstFailureAndTheTrafficClass(t *testing.T) {
	m, post := fallbackServer(t, 529, 200)
	if code := post(true); code != 200 {
		t.Fatalf("status %d", code)
	}
	if got := countOf(t, m, "onwards_failovers_total", "529", "dispatched"); got != 1 {
		t.Errorf("failovers %v, want 1", got)
	}
	if got := countOf(t, m, "onwards_fallback_rescues_total", "529", "dispatched"); got != 1 {
		t.Errorf("rescues %v, want 1", got)
	}
}

func TestFailingOverWithoutAnAnswerIsNotARescue(t *testing.T) {
	m, post := fallbackServer(t, 529, 529)
	if code := post(false); code == 200 {
		t.Fatal("answered")
	}
	if got := countOf(t, m, "onwards_failovers_total", "529", "realtime"); got != 2 {
		t.Errorf("failovers %v, want 2: the last attempt failed over too, with no one left", got)
	}
	if n := testutil.CollectAndCount(m.rescues); n != 0 {
		t.Errorf("%d rescue series, want none", n)
	}
}

func TestAFirstAttemptSuccessCountsNothing(t *testing.T) {
	m, post := fallbackServer(t, 200, 200)
	if code := post(false); code != 200 {
		t.Fatalf("status %d", code)
	}
	if n := testutil.CollectAndCount(m.failovers) + testutil.CollectAndCount(m.rescues); n != 0 {
		t.Errorf("%d series, want none", n)
	}
}

func TestFailuresWithoutAStatusAreNamed(t *testing.T) {
	m, post := fallbackServer(t, 502, 200)
	if code := post(false); code != 200 {
		t.Fatalf("status %d", code)
	}
	if got := countOf(t, m, "onwards_fallback_rescues_total", "network_error", "realtime"); got != 1 {
		t.Errorf("rescues %v, want 1", got)
	}
}
