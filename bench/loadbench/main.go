// Command loadbench is the Go side of bench/load.sh: a mock upstream, a bare
// httputil.ReverseProxy with round robin (the floor for a Go proxy), and
// gateway.Handler, each on an address of its own, for wrk to drive.
//
//	loadbench upstream -addr 127.0.0.1:9001
//	loadbench reverseproxy -addr 127.0.0.1:9100 -to http://127.0.0.1:9001,http://127.0.0.1:9002
//	loadbench gateway -addr 127.0.0.1:9200 -to http://127.0.0.1:9001,http://127.0.0.1:9002
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
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
		log.Fatal("usage: loadbench upstream|reverseproxy|gateway -addr ADDR [-to URL,URL]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to serve on")
	to := fs.String("to", "", "upstream base URLs, comma-separated")
	fs.Parse(os.Args[2:])
	debug.SetGCPercent(400) // as the example proxy runs
	var h http.Handler
	switch os.Args[1] {
	case "upstream":
		h = http.HandlerFunc(upstream)
	case "reverseproxy":
		h = roundRobin(strings.Split(*to, ","))
	case "gateway":
		h = gatewayOver(strings.Split(*to, ","))
	default:
		log.Fatalf("unknown mode %q", os.Args[1])
	}
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// upstream answers a chat completion, or, for "stream": true, an SSE
// stream of 20 events.
func upstream(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
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

// gatewayOver is gateway.Handler over one alias, "m", of the targets.
func gatewayOver(targets []string) http.Handler {
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
	mux.Handle("/", &gateway.Handler{Registry: reg, Client: &http.Client{Transport: transport()}})
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
