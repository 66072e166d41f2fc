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
//	loadbench holdstreams -to http://127.0.0.1:9200 -n 1000 -pid PID -goroutines http://127.0.0.1:9200/debug/pprof/goroutine?debug=1
//	loadbench rate -to http://127.0.0.1:9200/v1/chat/completions -rate 2000 -d 8s
//
// holdstreams measures what a stream in flight costs the proxy at -to: it
// opens n streams that the upstream holds open with an event a second,
// and prints the growth of the proxy's resident memory and of its
// goroutines per stream, the time to each stream's first byte, and the
// streams dropped; then it closes them and, for the gateway, checks that
// nothing is left in flight (hold.go). rate sends chat completions (or
// streams, with -stream) at a fixed rate and prints their latency
// percentiles.
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
	pid := fs.Int("pid", 0, "holdstreams: the proxy's process, whose memory is measured")
	gor := fs.String("goroutines", "", "holdstreams: the proxy's goroutine profile URL (net/http/pprof, debug=1)")
	inflight := fs.String("inflight", "", "holdstreams: the gateway's /inflight URL, checked for 0 after")
	hold := fs.Duration("hold", 4*time.Second, "holdstreams: how long the streams are held, at least 3s")
	fs.Func("H", "rate, holdstreams: a header to send, as \"Name: value\"", func(v string) error {
		name, value, ok := strings.Cut(v, ":")
		if !ok {
			return fmt.Errorf("want Name: value, not %q", v)
		}
		header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
		return nil
	})
	fs.Parse(os.Args[2:])
	if os.Args[1] == "rate" {
		body := fmt.Sprintf(`{"model":"m","stream":%t,"messages":[{"role":"user","content":"Hi"}]}`, *stream)
		if err := rateRun(*to, body, *rate, *conns, *d); err != nil {
			log.Fatal(err)
		}
		return
	}
	if os.Args[1] == "holdstreams" {
		run := holdRun{url: *to + "/v1/chat/completions", n: *n, pid: *pid, goroutines: *gor, inflight: *inflight, hold: *hold}
		if err := run.run(); err != nil {
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
	mux.Handle("GET /debug/pprof/", http.DefaultServeMux) // net/http/pprof, for profiles under load
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// upstream answers a chat completion, or, for "stream": true, an SSE
// stream of 20 events, or, for a message of "hold", one held open.
func upstream(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	// A stream whose message is "hold" gets an event a second until the
	// client goes: the content, for every proxy passes it (Portkey drops
	// fields OpenAI does not define).
	if strings.Contains(string(body), `"content":"hold"`) {
		w.Header().Set("Content-Type", "text/event-stream")
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			io.WriteString(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t\"},\"finish_reason\":null}]}\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
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
