package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onwardsgo/pool"
)

// loadClients is how many clients send requests at once in BenchmarkLoad.
const loadClients = 64

// BenchmarkLoad sends chat completions from 64 concurrent clients on
// loopback, to the mock upstream directly and through the proxy, and reports
// requests per second and the p50 and p99 latency of each; the proxy's cost
// is the difference. Any failed request fails the run. Bound it in requests:
//
//	go -C examples test ./proxy -run '^$' -bench Load -benchtime 20000x -count 5
func BenchmarkLoad(b *testing.B) {
	mock := httptest.NewServer(&MockUpstream{Name: "load"})
	defer mock.Close()
	cfg, err := pool.ParseConfig([]byte(`{"targets": {"chat": {"url": "` + mock.URL + `/v1", "onwards_key": "sk-up"}}}`))
	if err != nil {
		b.Fatal(err)
	}
	reg, err := pool.NewRegistry(cfg)
	if err != nil {
		b.Fatal(err)
	}
	upstream := NewUpstreamClient()
	proxy := httptest.NewServer(&Proxy{Registry: reg, Client: upstream})
	defer proxy.Close()
	defer upstream.CloseIdleConnections()

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = loadClients
	client := &http.Client{Transport: transport}
	defer client.CloseIdleConnections()
	body := []byte(`{"model": "chat", "messages": [{"role": "user", "content": "Hi"}]}`)

	for _, target := range []struct{ name, url string }{
		{"direct", mock.URL + "/v1/chat/completions"},
		{"proxy", proxy.URL + "/v1/chat/completions"},
	} {
		b.Run(target.name, func(b *testing.B) {
			var (
				failed atomic.Int64
				mu     sync.Mutex
				all    []time.Duration
			)
			b.SetParallelism((loadClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var local []time.Duration
				for pb.Next() {
					t0 := time.Now()
					resp, err := client.Post(target.url, "application/json", bytes.NewReader(body))
					if err != nil {
						failed.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						failed.Add(1)
						continue
					}
					local = append(local, time.Since(t0))
				}
				mu.Lock()
				all = append(all, local...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d requests failed", n, b.N)
			}
			slices.Sort(all)
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
		})
	}
}
