package pool_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/onwardsgo/pool"
)

// mustTarget is NewTarget for URLs known to be good.
func mustTarget(rawURL string) *pool.Target {
	t, err := pool.NewTarget(rawURL)
	if err != nil {
		log.Fatal(err)
	}
	return t
}

func ExampleNewProviderPool() {
	primary := mustTarget("https://primary.example.com/v1")
	primary.UpstreamKey = "sk-primary" // sent upstream, never printed in errors
	backup := mustTarget("https://backup.example.com/v1")

	p, err := pool.NewProviderPool([]*pool.Provider{
		pool.NewProviderWithConcurrencyLimit(primary, 3, 100),
		pool.NewProvider(backup, 1),
	},
		pool.WithStrategy(pool.Priority),
		pool.WithFallback(pool.FallbackConfig{Enabled: true, OnStatus: []int{429, 5}}),
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Len(), p.Strategy(), p.ShouldFallbackOnStatus(503), p.ShouldFallbackOnStatus(400))

	// Bad input is an error that names its place.
	_, err = pool.NewProviderPool([]*pool.Provider{pool.NewProvider(backup, 1), nil})
	fmt.Println(err)
	// Output:
	// 2 priority true false
	// pool: providers[1]: provider is nil
}

func ExampleProviderPool_Select() {
	p, err := pool.NewProviderPool([]*pool.Provider{
		pool.NewProvider(mustTarget("https://a.example.com"), 1),
		pool.NewProvider(mustTarget("https://b.example.com"), 1),
	})
	if err != nil {
		log.Fatal(err)
	}

	// Each request takes a slot on the provider with the fewest in flight
	// per unit of weight, so a second request, while the first is still
	// held, goes to the other provider.
	first, ok := p.Select()
	if !ok {
		log.Fatal("no provider has room")
	}
	defer first.Close() // release the slot when the response is done
	second, _ := p.Select()
	defer second.Close()

	fmt.Println(first.Index != second.Index)
	for _, pr := range p.Providers() {
		fmt.Println(pr.Target.URL, pr.ActiveConnections())
	}
	// Output:
	// true
	// https://a.example.com/ 1
	// https://b.example.com/ 1
}

// A fallback loop as an HTTP handler writes it: try providers in turn until
// one answers with a status the pool does not fall back on.
func ExampleProviderPool_Attempts() {
	overloaded := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	defer overloaded.Close()
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from healthy")
	}))
	defer healthy.Close()

	p, err := pool.NewProviderPool([]*pool.Provider{
		pool.NewProvider(mustTarget(overloaded.URL), 1),
		pool.NewProvider(mustTarget(healthy.URL), 1),
	},
		pool.WithStrategy(pool.Priority),
		pool.WithFallback(pool.FallbackConfig{Enabled: true, OnStatus: []int{5}}),
	)
	if err != nil {
		log.Fatal(err)
	}

	handler := func(w http.ResponseWriter, r *http.Request) {
		status, body := http.StatusServiceUnavailable, "no provider available"
		for sel := range p.Attempts() {
			resp, err := http.Get(sel.Target.URL.JoinPath("chat/completions").String())
			if err != nil {
				sel.Close()
				if p.FallbackEnabled() {
					continue
				}
				status, body = http.StatusBadGateway, "upstream unreachable"
				break
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			sel.Close() // a streaming proxy closes after copying the body
			status, body = resp.StatusCode, strings.TrimSpace(string(b))
			fmt.Printf("provider %d answered %d\n", sel.Index, status)
			if !p.ShouldFallbackOnStatus(status) {
				break
			}
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}

	rec := httptest.NewRecorder()
	handler(rec, httptest.NewRequest("POST", "/v1/chat/completions", nil))
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// provider 0 answered 503
	// provider 1 answered 200
	// 200 hello from healthy
}

func ExampleProviderPool_AdoptProviderState() {
	old, _ := pool.NewProviderPool([]*pool.Provider{
		pool.NewProvider(mustTarget("https://a.example.com"), 1),
		pool.NewProvider(mustTarget("https://b.example.com"), 1),
	}, pool.WithStrategy(pool.Priority))
	inFlight, _ := old.Select() // a streaming request on a

	// The config is reloaded: a stays, b goes, c is new.
	next, _ := pool.NewProviderPool([]*pool.Provider{
		pool.NewProvider(mustTarget("https://c.example.com"), 1),
		pool.NewProvider(mustTarget("https://a.example.com"), 1),
	}, pool.WithStrategy(pool.Priority))
	next.AdoptProviderState(old) // before next serves anything

	for _, pr := range next.Providers() {
		fmt.Println(pr.Target.URL, pr.ActiveConnections())
	}
	inFlight.Close() // the old guard releases into the new pool's counter
	fmt.Println("after close:", next.Providers()[1].ActiveConnections())
	// Output:
	// https://c.example.com/ 0
	// https://a.example.com/ 1
	// after close: 0
}

func ExampleConcurrencyLimiter_TryAcquire() {
	l := pool.NewConcurrencyLimiterWithLimit(1)
	g, ok := l.TryAcquire()
	fmt.Println(ok, l.Active(), l.AtCapacity())

	_, ok = l.TryAcquire()
	fmt.Println(ok)

	g.Close()
	g.Close() // a second close does nothing
	fmt.Println(l.Active())
	// Output:
	// true 1 true
	// false
	// 0
}

func ExampleRegistry_Admit() {
	cfg, err := pool.ParseConfig([]byte(`{
	  "auth": {"key_definitions": {"batch_user": {"key": "sk-batch", "labels": {"purpose": "batch"}}}},
	  "targets": {
	    "gpt-4o": {"keys": ["sk-team", "batch_user"],
	               "routing_rules": [{"match_labels": {"purpose": "batch"}, "action": {"type": "redirect", "target": "gpt-4o-mini"}}],
	               "providers": [{"url": "https://api.openai.com/v1", "onwards_key": "sk-upstream"}]},
	    "gpt-4o-mini": {"url": "https://api.openai.com/v1", "onwards_model": "gpt-4o-mini-2024-07-18"}
	  }}`))
	if err != nil {
		log.Fatal(err)
	}
	reg, err := pool.NewRegistry(cfg)
	if err != nil {
		log.Fatal(err)
	}

	for _, token := range []string{"sk-team", "sk-batch", "sk-wrong", ""} {
		adm, err := reg.Admit("gpt-4o", token)
		if err != nil {
			fmt.Printf("%-9q refused: %v\n", token, err)
			continue
		}
		sel, _ := adm.Pool.Select()
		fmt.Printf("%-9q admitted to %s via %s\n", token, adm.Alias, sel.Target.URL)
		sel.Close()
		adm.Close()
	}
	// Output:
	// "sk-team" admitted to gpt-4o via https://api.openai.com/v1/
	// "sk-batch" admitted to gpt-4o-mini via https://api.openai.com/v1/
	// "sk-wrong" refused: pool: 403 invalid_api_key: The API key is not allowed to use the model "gpt-4o".
	// ""        refused: pool: 401 invalid_api_key: The request has no API key; send one as Authorization: Bearer <key>.
}

// A snapshot shows each alias and provider as they are now, for a status
// page or logs; it never holds a key.
func ExampleRegistry_Snapshot() {
	cfg, err := pool.ParseConfig([]byte(`{"targets": {"chat": {
		"concurrency_limit": {"max_concurrent_requests": 10},
		"providers": [{"url": "https://api.example.com/v1", "onwards_key": "sk-secret"}]}}}`))
	if err != nil {
		panic(err)
	}
	reg, _ := pool.NewRegistry(cfg)
	adm, _ := reg.Admit("chat", "")
	sel, _ := adm.Pool.Select()
	sel.Report(pool.Success)

	for _, p := range reg.Snapshot().Pools {
		fmt.Printf("%s: %d/%d in flight\n", p.Alias, p.InFlight, p.Limit)
		for _, pr := range p.Providers {
			fmt.Printf("  %s %s in flight %d, %d successes\n", pr.Label, pr.State, pr.InFlight, pr.Attempts["success"])
		}
	}
	sel.Close()
	adm.Close()
	// Output:
	// chat: 1/10 in flight
	//   0:api.example.com healthy in flight 1, 1 successes
}

// With outlier detection, a provider that fails in a row is left out for
// a while, and its selections say so through Report.
func ExampleWithOutlierDetection() {
	a, _ := pool.NewTarget("https://a.example.com")
	b, _ := pool.NewTarget("https://b.example.com")
	p, err := pool.NewProviderPool([]*pool.Provider{pool.NewProvider(a, 1), pool.NewProvider(b, 1)},
		pool.WithStrategy(pool.Priority),
		pool.WithOutlierDetection(pool.OutlierDetection{ConsecutiveFailures: 2}))
	if err != nil {
		panic(err)
	}
	for i := range 4 {
		sel, _ := p.Select()
		fmt.Println("request", i, "->", sel.Target.URL.Host)
		sel.Report(pool.StatusOutcome(503)) // a.example.com answers 503
		sel.Close()
	}
	// Output:
	// request 0 -> a.example.com
	// request 1 -> a.example.com
	// request 2 -> b.example.com
	// request 3 -> b.example.com
}

// A token limit: a request reserves its estimate, its answer's usage
// settles it, and a request the bucket does not hold is refused with the
// wait until it will.
func ExampleAdmission_ReserveTokens() {
	cfg, err := pool.ParseConfig([]byte(`{"targets": {"chat": {"url": "https://api.example.com/v1",
	  "rate_limit": {"tokens_per_minute": 1000}}}}`))
	if err != nil {
		log.Fatal(err)
	}
	reg, err := pool.NewRegistry(cfg)
	if err != nil {
		log.Fatal(err)
	}
	for _, used := range []int64{120, 0} {
		adm, err := reg.Admit("chat", "")
		if err != nil {
			log.Fatal(err)
		}
		if err := adm.ReserveTokens(900); err != nil { // e.g. gateway.EstimateTokens of the body
			ae := err.(*pool.AdmissionError)
			fmt.Printf("refused: %d %s, Retry-After: %s\n", ae.Status, ae.Code, pool.RetryAfterSeconds(ae.RetryAfter))
			adm.Close()
			continue
		}
		fmt.Println("admitted; the answer used", used)
		adm.SettleTokens(used) // the answer's usage.total_tokens
		adm.Close()
	}
	// Output:
	// admitted; the answer used 120
	// refused: 429 rate_limit_exceeded, Retry-After: 2
}

// An account's in-flight limit (onwards 2.0's inflight_limit), held from
// admission to the end of the answer, across every attempt.
func ExampleAdmission_HoldInflight() {
	cfg, err := pool.ParseConfig([]byte(`{
		"auth": {"key_definitions": {"acme": {"key": "sk-acme", "labels": {"account": "acme"}}}},
		"targets": {"gpt-4o": {"inflight_limit": 1, "providers": [{"url": "https://api.example.com/v1"}]}}}`))
	if err != nil {
		log.Fatal(err)
	}
	reg, err := pool.NewRegistry(cfg)
	if err != nil {
		log.Fatal(err)
	}
	first, _ := reg.Admit("gpt-4o", "sk-acme")
	fmt.Println("first:", first.HoldInflight(false))
	second, _ := reg.Admit("gpt-4o", "sk-acme")
	fmt.Println("second:", second.HoldInflight(false))
	second.Close()
	first.Close() // the answer is done: the slot is free again
	fmt.Println("in flight:", reg.InflightCount("gpt-4o", "acme"))
	// Output:
	// first: <nil>
	// second: pool: 429 inflight_limit_exceeded: Your account has 1 requests in flight on the model "gpt-4o", its limit; retry when one finishes.
	// in flight: 0
}

// A priority pool that learns how often to try its preferred provider
// first (onwards 2.0's AIMD share): a load-aware walk reports the
// preferred provider's first-token outcomes.
func ExampleSelectIter_SetLoadAware() {
	preferred, _ := pool.NewTarget("https://self-hosted.example.com/v1")
	backup, _ := pool.NewTarget("https://api.example.com/v1")
	p, err := pool.NewProviderPool(
		[]*pool.Provider{pool.NewProvider(preferred, 1), pool.NewProvider(backup, 1)},
		pool.WithStrategy(pool.Priority),
		pool.WithFallback(pool.FallbackConfig{Enabled: true, OnStatus: []int{529}}),
		pool.WithAIMD(pool.DefaultAIMD()))
	if err != nil {
		log.Fatal(err)
	}
	it := p.SelectIter()
	it.SetLoadAware() // a realtime strict-mode stream
	sel, _ := it.Next()
	obs := it.Observe(sel) // nil unless sel is the preferred provider
	obs.Status(529)        // it was over capacity: a breach
	obs.Close()
	sel.Close()
	s, _ := p.ShareSnapshot()
	fmt.Printf("first provider %d; share %.2f, %d breach in the window\n", sel.Index, s.Share, s.Samples)
	// Output: first provider 0; share 1.00, 1 breach in the window
}
