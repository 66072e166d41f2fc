package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// rateRun drives url at a fixed rate of requests per second for d, over at
// most conns connections, and prints the latency percentiles of the
// requests, in µs, as "count seconds p50 p90 p99 p99.9 failed".
//
// Unlike wrk, which sends as fast as the proxy answers, it keeps to its
// rate; at a rate below the proxy's capacity, the latency is the path's
// own and not a queue's. Each request's latency runs from when it is sent
// to the end of its body. A request starts at its scheduled time, or as
// soon as a connection is free; seconds, the time the run took, is d when
// every request kept its schedule.
func rateRun(url, body string, rate, conns int, d time.Duration) error {
	if rate <= 0 || conns <= 0 {
		return fmt.Errorf("rate: -rate and -c must be above 0")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
	total := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	var (
		next   atomic.Int64 // the next request to send
		failed atomic.Int64
		first  sync.Once // the first failure is printed to standard error
		mu     sync.Mutex
		lat    = make([]time.Duration, 0, total)
		wg     sync.WaitGroup
	)
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, total/conns+1)
			for {
				i := next.Add(1) - 1
				if i >= int64(total) {
					break
				}
				time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
				t0 := time.Now()
				if err := send(client, url, body); err != nil {
					failed.Add(1)
					first.Do(func() { log.Printf("rate: first failure: %v", err) })
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(lat) == 0 {
		return fmt.Errorf("rate: every one of %d requests to %s failed", total, url)
	}
	slices.Sort(lat)
	at := func(q float64) int64 { return lat[int(q*float64(len(lat)-1))].Microseconds() }
	fmt.Printf("%d %.2f %d %d %d %d %d\n", len(lat), time.Since(start).Seconds(),
		at(0.50), at(0.90), at(0.99), at(0.999), failed.Load())
	return nil
}

// send posts body to url and reads the answer to its end; an answer other
// than 200 is an error.
func send(client *http.Client, url, body string) error {
	resp, err := post(client, url, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// header is sent with every request of rate and holdstreams, beside the
// content type: the -H flag's, Portkey's config for one.
var header = http.Header{}

// post posts the JSON body to url, with header.
func post(client *http.Client, url, body string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	return client.Do(req)
}
