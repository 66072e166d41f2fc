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
	"github.com/onwardsgo/pool/gateway"
)

// loadClients is how many clients send requests at once in BenchmarkLoad.
const loadClients = 64

// loadTargets starts the mock upstream and a proxy in front of it, and
// returns their chat URLs, a client that keeps a connection per load client,
// and a function that stops everything.
func loadTargets(b *testing.B) (targets []struct{ name, url string }, client *http.Client, stop func()) {
	mock := httptest.NewServer(&MockUpstream{Name: "load"})
	cfg, err := pool.ParseConfig([]byte(`{"targets": {"chat": {"url": "` + mock.URL + `/v1", "onwards_key": "sk-up"}}}`))
	if err != nil {
		b.Fatal(err)
	}
	reg, err := pool.NewRegistry(cfg)
	if err != nil {
		b.Fatal(err)
	}
	upstream := gateway.NewClient()
	proxy := httptest.NewServer(&gateway.Handler{Registry: reg, Client: upstream})
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = loadClients
	client = &http.Client{Transport: transport}
	restoreGC := tuneGC() // as the proxy command runs
	stop = func() {
		restoreGC()
		client.CloseIdleConnections()
		proxy.Close()
		upstream.CloseIdleConnections()
		mock.Close()
	}
	return []struct{ name, url string }{
		{"direct", mock.URL + "/v1/chat/completions"},
		{"proxy", proxy.URL + "/v1/chat/completions"},
	}, client, stop
}

var loadBody = []byte(`{"model": "chat", "messages": [{"role": "user", "content": "Hi"}]}`)

// send makes one request and reports its latency, or false if it failed.
func send(client *http.Client, url string) (time.Duration, bool) {
	t0 := time.Now()
	resp, err := client.Post(url, "application/json", bytes.NewReader(loadBody))
	if err != nil {
		return 0, false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(t0), resp.StatusCode == http.StatusOK
}

// latencies gathers the latencies of a load run's clients, and its failures.
type latencies struct {
	failed atomic.Int64
	mu     sync.Mutex
	all    []time.Duration
}

// add merges one client's latencies.
func (l *latencies) add(local []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, local...)
	l.mu.Unlock()
}

// report fails the run if any request failed, and otherwise reports the p50
// and p99 latency, in microseconds.
func (l *latencies) report(b *testing.B) {
	if n := l.failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed", n, b.N)
	}
	slices.Sort(l.all)
	b.ReportMetric(float64(l.all[len(l.all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(l.all[len(l.all)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkLoad sends chat completions from 64 concurrent clients on
// loopback as fast as they go (a closed loop that saturates both cores), to
// the mock upstream directly and through the proxy, and reports requests per
// second and the p50 and p99 latency of each. Any failed request fails the
// run. Bound it in requests:
//
//	go -C examples test ./proxy -run '^$' -bench Load -benchtime 20000x -count 5
func BenchmarkLoad(b *testing.B) {
	targets, client, stop := loadTargets(b)
	defer stop()
	for _, target := range targets {
		b.Run(target.name, func(b *testing.B) {
			var lat latencies
			b.SetParallelism((loadClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var local []time.Duration
				for pb.Next() {
					d, ok := send(client, target.url)
					if !ok {
						lat.failed.Add(1)
						continue
					}
					local = append(local, d)
				}
				lat.add(local)
			})
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
			lat.report(b)
		})
	}
}

// pacedRate is the total request rate of BenchmarkLoadPaced: about a tenth
// of what the proxy serves at saturation on two cores.
const pacedRate = 2000

// BenchmarkLoadPaced sends the same requests from 64 clients at a fixed
// total rate of 2000 per second (an open loop, each client on its own
// ticker), so that the cores are not saturated and the latency measured is
// the work of each hop rather than the queue in front of it. The proxy's
// added latency is the difference between its figures and direct's.
//
//	go -C examples test ./proxy -run '^$' -bench LoadPaced -benchtime 10000x -count 5
func BenchmarkLoadPaced(b *testing.B) {
	targets, client, stop := loadTargets(b)
	defer stop()
	for _, target := range targets {
		b.Run(target.name, func(b *testing.B) {
			var (
				lat latencies
				wg  sync.WaitGroup
			)
			interval := time.Second * loadClients / pacedRate
			b.ResetTimer()
			for c := range loadClients {
				share := b.N / loadClients
				if c < b.N%loadClients {
					share++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Spread the clients' ticks across the interval.
					<-time.NewTimer(interval * time.Duration(c) / loadClients).C
					tick := time.NewTicker(interval)
					defer tick.Stop()
					local := make([]time.Duration, 0, share)
					for range share {
						d, ok := send(client, target.url)
						if !ok {
							lat.failed.Add(1)
						} else {
							local = append(local, d)
						}
						<-tick.C
					}
					lat.add(local)
				}()
			}
			wg.Wait()
			b.StopTimer()
			lat.report(b)
		})
	}
}
