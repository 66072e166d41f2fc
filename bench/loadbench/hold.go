package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// holdRun is holdstreams' measure: n SSE streams opened through the proxy
// at url and held open for hold by the upstream, which sends an event a
// second, then closed. It prints one line,
//
//	n held dropped rss_KiB_per_stream goroutines_per_stream ttfb_p50_ms ttfb_p99_ms left_in_flight
//
// with "-" for what the proxy does not tell: the growth of the resident
// memory of process pid and its children (nginx's workers), and of the
// goroutines that goroutines (a net/http/pprof goroutine profile URL)
// counts, from before the streams to the end of the hold, per stream; the
// time from sending a request to the first byte of its stream; and what
// inflight (the gateway's count of requests and slots in flight) says once
// they are closed. A stream dropped is one that did not open, or that saw
// no event in the last two seconds of the hold.
type holdRun struct {
	url, goroutines, inflight string
	pid, n                    int
	hold                      time.Duration
}

// heldStream is one stream through the proxy: its body, its time to first
// byte, and the events seen on it.
type heldStream struct {
	body   io.ReadCloser
	ttfb   time.Duration
	events atomic.Int64
}

func (h holdRun) run() error {
	if h.hold < 3*time.Second {
		return fmt.Errorf("holdstreams: -hold %v is too short; want 3s or more, to see the events of the last 2 s", h.hold)
	}
	rssBefore, gBefore := rss(h.pid), goroutines(h.goroutines)
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: h.n, DisableCompression: true,
		DialContext:           (&net.Dialer{Timeout: openTimeout}).DialContext,
		ResponseHeaderTimeout: openTimeout,
	}}
	held, failed := h.open(client)
	// The streams run; every one must see the upstream's ticks meanwhile.
	time.Sleep(h.hold - 2*time.Second)
	seen := make([]int64, len(held))
	for i, s := range held {
		seen[i] = s.events.Load()
	}
	time.Sleep(2 * time.Second)
	dropped := failed
	for i, s := range held {
		if s.events.Load() == seen[i] {
			dropped++
		}
	}
	rssDuring, gDuring := rss(h.pid), goroutines(h.goroutines)
	for _, s := range held {
		s.body.Close()
	}
	client.CloseIdleConnections()
	ttfb := make([]time.Duration, len(held))
	for i, s := range held {
		ttfb[i] = s.ttfb
	}
	slices.Sort(ttfb)
	fmt.Println(h.n, len(held), dropped, perStream(rssBefore, rssDuring, h.n), perStream(gBefore, gDuring, h.n),
		quantileMillis(ttfb, 0.5), quantileMillis(ttfb, 0.99), drained(h.inflight))
	return nil
}

// open opens h.n streams, at most 16 at once, so that a stream's time to
// its first byte is the proxy's and not a queue's of streams opening, and
// returns those that came up, and how many did not. After a first failure
// it opens no more, and counts those as failed too: a proxy that gives up
// must not hold the run for openTimeout a stream.
func (h holdRun) open(client *http.Client) (held []*heldStream, failed int) {
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		gate   = make(chan struct{}, 16)
		gaveUp atomic.Bool
	)
	started := 0
	for ; started < h.n; started++ {
		gate <- struct{}{}
		if gaveUp.Load() {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := openStream(client, h.url)
			<-gate
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if !gaveUp.Swap(true) {
					log.Printf("holdstreams: first failure, no more opened: %v", err)
				}
				failed++
				return
			}
			held = append(held, s)
		}()
	}
	wg.Wait()
	return held, failed + h.n - started
}

// openTimeout bounds each step of a stream's opening (dial, headers, first
// byte), so that a proxy that stops answering fails its streams rather
// than holding the run.
const openTimeout = 30 * time.Second

// openStream opens one held stream at url and, once its first byte has
// come, counts its events on a goroutine of its own until it ends.
func openStream(client *http.Client, url string) (*heldStream, error) {
	t0 := time.Now()
	resp, err := post(client, url, `{"model":"m","stream":true,"messages":[{"role":"user","content":"hold"}]}`)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(resp.Body)
	late := time.AfterFunc(openTimeout, func() { resp.Body.Close() })
	_, err = br.Peek(1)
	if !late.Stop() {
		err = fmt.Errorf("no first byte in %v", openTimeout)
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("status %d: %v", resp.StatusCode, err)
	}
	s := &heldStream{body: resp.Body, ttfb: time.Since(t0)}
	go func() {
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if bytes.HasPrefix(line, []byte("data:")) {
				s.events.Add(1)
			}
		}
	}()
	return s, nil
}

// rss is the resident memory, in KiB, of process pid and its children;
// -1 when pid is 0 or cannot be read.
func rss(pid int) int64 {
	if pid == 0 {
		return -1
	}
	total := int64(-1)
	for _, p := range append([]int{pid}, children(pid)...) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kib, _ := strconv.ParseInt(f[1], 10, 64)
				total = max(total, 0) + kib
			}
		}
	}
	return total
}

// children are the processes whose parent is pid.
func children(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var kids []int
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces; read after ")".
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			p, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			kids = append(kids, p)
		}
	}
	return kids
}

// goroutines is the total that a net/http/pprof goroutine profile at url
// (debug=1) gives in its first line; -1 without url, or when it fails.
func goroutines(url string) int64 {
	if url == "" {
		return -1
	}
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var n int64
	if _, err := fmt.Fscanf(resp.Body, "goroutine profile: total %d", &n); err != nil {
		return -1
	}
	return n
}

// perStream is the growth from before to during over n streams, to one
// decimal, or "-" when either is unknown.
func perStream(before, during int64, n int) string {
	if before < 0 || during < 0 || n == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(during-before)/float64(n), 'f', 1, 64)
}

// quantileMillis is the q-quantile of sorted, in ms, or "-" if empty.
func quantileMillis(sorted []time.Duration, q float64) string {
	if len(sorted) == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(sorted[int(q*float64(len(sorted)-1))].Microseconds())/1000, 'f', 1, 64)
}

// drained waits until the gateway's count at url says nothing is in flight,
// for at most 10 s, and returns what it last said; "-" without url.
func drained(url string) string {
	if url == "" {
		return "-"
	}
	left := "?"
	for range 200 { // the gateway notices the hang-ups as it reads on
		resp, err := http.Get(url)
		if err != nil {
			return "?"
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if left = strings.TrimSpace(string(b)); left == "0" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return left
}
