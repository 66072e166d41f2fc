// Command loadbench is the Go side of bench/load.sh: a mock upstream, a bare
// httputil.ReverseProxy with round robin (the floor for a Go proxy), and
// gateway.Handler, its upstream calls sent by an http.Client over net/http's
// Transport (gateway) or by gateway.Transport as Handler.Transport
// (gateway-transport), each on an
// address of its own, for wrk to drive; and
// three ceilings: a proxy of this load with no net/http at all, one on
// net/http's server with the upstream exchange written out (ceiling.go),
// and gateway.Handler on a bare HTTP/1.1 loop instead of net/http's server
// (bareserver.go).
//
//	loadbench upstream -addr 127.0.0.1:9001
//	loadbench reverseproxy -addr 127.0.0.1:9100 -to http://127.0.0.1:9001,http://127.0.0.1:9002
//	loadbench gateway -addr 127.0.0.1:9200 -to http://127.0.0.1:9001,http://127.0.0.1:9002
//	loadbench gateway-transport -addr 127.0.0.1:9250 -to http://127.0.0.1:9001,http://127.0.0.1:9002
//	loadbench rawproxy -addr 127.0.0.1:9300 -to http://127.0.0.1:9001,http://127.0.0.1:9002
//	loadbench serverproxy -addr 127.0.0.1:9400 -to http://127.0.0.1:9001,http://127.0.0.1:9002
//	loadbench gateway-bareserver -addr 127.0.0.1:9450 -to http://127.0.0.1:9001,http://127.0.0.1:9002
//	loadbench holdstreams -to http://127.0.0.1:9200 -n 1000
//	loadbench rate -to http://127.0.0.1:9200/v1/chat/completions -rate 2000 -d 8s
//
// holdstreams measures what a stream in flight costs the proxy at -to: it
// opens n streams that the upstream holds open after their first event,
// and prints the growth of the proxy's heap and stacks, and of its
// goroutines, per stream; then it closes them and, for the gateway, checks
// that nothing is left in flight. rate sends chat completions (or streams,
// with -stream) at a fixed rate and prints their latency percentiles.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	_ "net/http/pprof"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/onwardsgo/pool"
	"github.com/onwardsgo/pool/gateway"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: loadbench upstream|reverseproxy|gateway|gateway-transport|rawproxy|serverproxy|gateway-bareserver -addr ADDR [-to URL,URL] | holdstreams|rate -to URL")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to serve on")
	to := fs.String("to", "", "upstream base URLs, comma-separated")
	n := fs.Int("n", 1000, "holdstreams: streams to hold open")
	rate := fs.Int("rate", 2000, "rate: requests per second")
	conns := fs.Int("c", 64, "rate: connections")
	d := fs.Duration("d", 8*time.Second, "rate: how long to send")
	stream := fs.Bool("stream", false, "rate: ask for SSE streams")
	fs.Parse(os.Args[2:])
	if os.Args[1] == "rate" {
		body := fmt.Sprintf(`{"model":"m","stream":%t,"messages":[{"role":"user","content":"Hi"}]}`, *stream)
		if err := rateRun(*to, body, *rate, *conns, *d); err != nil {
			log.Fatal(err)
		}
		return
	}
	if os.Args[1] == "holdstreams" {
		if err := holdStreams(*to, *n); err != nil {
			log.Fatal(err)
		}
		return
	}
	log.Fatal(serve(os.Args[1], *addr, strings.Split(*to, ",")))
}

// serve serves mode (a proxy, or the mock upstream) on addr, in front of
// the upstreams at targets, until it fails.
func serve(mode, addr string, targets []string) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400) // as the example proxy runs, unless GOGC says otherwise
	}
	if mode == "rawproxy" || mode == "gateway-bareserver" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		if mode == "rawproxy" {
			return serveRaw(ln, newRawUpstreams(targets))
		}
		return serveBare(ln, gatewayOver(targets, &gateway.Handler{Transport: &gateway.Transport{MaxIdleConnsPerHost: 200}}))
	}
	var h http.Handler
	switch mode {
	case "upstream":
		m := http.NewServeMux()
		m.HandleFunc("POST /", upstream) // anything else is refused
		h = m
	case "reverseproxy":
		h = roundRobin(targets)
	case "gateway":
		h = gatewayOver(targets, &gateway.Handler{Client: &http.Client{Transport: transport()}})
	case "gateway-transport":
		h = gatewayOver(targets, &gateway.Handler{Transport: &gateway.Transport{MaxIdleConnsPerHost: 200}})
	case "serverproxy":
		h = newRawUpstreams(targets)
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET /memstats", serveMemstats)
	mux.Handle("GET /debug/pprof/", http.DefaultServeMux) // net/http/pprof, for profiles under load
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// upstream answers a chat completion, or, for "stream": true, an SSE
// stream of 20 events.
func upstream(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if strings.Contains(string(body), `"hold":true`) { // one event, then wait for the client to go
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t\"},\"finish_reason\":null}]}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	if strings.Contains(string(body), `"stream":true`) || strings.Contains(string(body), `"stream": true`) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 20 {
			fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d \"},\"finish_reason\":null}]}\n\n", i)
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, "data: [DONE]\n\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"id":"c","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`)
}

// transport keeps enough idle connections for 64 clients.
func transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 1000, 200
	return t
}

// roundRobin is the floor: httputil.ReverseProxy, round robin, no limits.
func roundRobin(targets []string) http.Handler {
	var urls []*url.URL
	for _, s := range targets {
		u, err := url.Parse(s)
		if err != nil {
			log.Fatal(err)
		}
		urls = append(urls, u)
	}
	var next atomic.Uint64
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(urls[next.Add(1)%uint64(len(urls))])
		},
		Transport:     transport(),
		FlushInterval: -1,                         // flush each write, as a proxy of streams must
		ErrorLog:      log.New(io.Discard, "", 0), // wrk hangs up at the end of a run
	}
}

// gatewayOver is h, which says how its upstream calls are sent, over one
// alias, "m", of the targets.
func gatewayOver(targets []string, h *gateway.Handler) http.Handler {
	var providers []string
	for _, t := range targets {
		providers = append(providers, fmt.Sprintf(`{"url": %q}`, t))
	}
	cfg, err := pool.ParseConfig([]byte(`{"targets": {"m": {"providers": [` + strings.Join(providers, ",") + `]}}}`))
	if err != nil {
		log.Fatal(err)
	}
	reg, err := pool.NewRegistry(cfg)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Registry = reg
	mux.Handle("/", h)
	mux.HandleFunc("GET /inflight", func(w http.ResponseWriter, r *http.Request) {
		var n int64
		for _, p := range reg.Snapshot().Pools {
			n += p.InFlight
			for _, pr := range p.Providers {
				n += int64(pr.InFlight)
			}
		}
		fmt.Fprintln(w, n)
	})
	return mux
}

// serveMemstats answers with the heap and stacks in use, after a
// collection, and the number of goroutines.
func serveMemstats(w http.ResponseWriter, r *http.Request) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Fprintln(w, m.HeapInuse+m.StackInuse, runtime.NumGoroutine())
}

// holdStreams opens n streams through the proxy at gw, each held open by
// the upstream after its first event, and prints what they cost the proxy
// per stream.
func holdStreams(gw string, n int) error {
	before, err := memstats(gw)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	bodies := make(chan io.ReadCloser, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			resp, err := client.Post(gw+"/v1/chat/completions", "application/json",
				strings.NewReader(`{"model":"m","stream":true,"hold":true,"messages":[{"role":"user","content":"Hi"}]}`))
			if err != nil {
				errs <- err
				return
			}
			buf := make([]byte, 1) // the first byte of the first event: the stream is up
			if _, err := io.ReadFull(resp.Body, buf); err != nil {
				errs <- fmt.Errorf("status %d: %v", resp.StatusCode, err)
				return
			}
			bodies <- resp.Body
		}()
	}
	held := make([]io.ReadCloser, 0, n)
	for range n {
		select {
		case b := <-bodies:
			held = append(held, b)
		case err := <-errs:
			return err
		}
	}
	during, err := memstats(gw)
	if err != nil {
		return err
	}
	for _, b := range held {
		b.Close()
	}
	fmt.Printf("%d streams held: %.1f KiB of heap and stacks and %.1f goroutines per stream in the proxy\n",
		n, float64(during[0]-before[0])/float64(n)/1024, float64(during[1]-before[1])/float64(n))
	if err := waitDrained(gw); err != nil {
		return err
	}
	var after [2]int64
	for range 100 { // connections wind down after their streams
		if after, err = memstats(gw); err != nil || after[1] <= before[1] {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	fmt.Printf("goroutines in the proxy: %d before the streams, %d after\n", before[1], after[1])
	return nil
}

// waitDrained waits until the gateway at gw has nothing in flight; a proxy
// without /inflight has nothing to check.
func waitDrained(gw string) error {
	for range 100 { // the gateway notices the hang-ups as it reads on
		resp, err := http.Get(gw + "/inflight")
		if err != nil {
			return err
		}
		left, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil
		}
		if strings.TrimSpace(string(left)) == "0" {
			fmt.Println("after closing them: nothing in flight")
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("streams still in flight in the gateway 5 s after closing them")
}

// memstats returns the gateway's heap and stacks in use, and its
// goroutines.
func memstats(gw string) ([2]int64, error) {
	var v [2]int64
	resp, err := http.Get(gw + "/memstats")
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	_, err = fmt.Fscan(resp.Body, &v[0], &v[1])
	return v, err
}
