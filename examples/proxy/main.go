// Command proxy is an OpenAI-compatible reverse proxy: a thin main over
// package gateway (flags, the demo's mock upstreams, the config watcher).
//
// Run with no arguments, it serves on 127.0.0.1:8080 a demo config over two
// mock upstreams that it starts itself on loopback, one of which fails now
// and then with a 503, so that fallback shows in its log. With -config FILE
// it serves a real onwards config file instead, and reloads it when the
// file changes and on SIGHUP, keeping every in-flight count.
//
//	go -C examples run ./proxy
//	go -C examples run ./proxy -config config.json -addr 127.0.0.1:3000
//	go -C examples run ./proxy -config config.json -lenient
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/onwardsgo/pool"
	"github.com/onwardsgo/pool/gateway"
	"github.com/onwardsgo/pool/poolprom"
	"github.com/onwardsgo/pool/poolredis"
	"github.com/onwardsgo/pool/status"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed demo-config.json
var demoConfig string

func main() {
	configPath := flag.String("config", "", "an onwards config file to serve and watch (default: the demo config over mock upstreams)")
	addr := flag.String("addr", "127.0.0.1:8080", "the address to serve on")
	lenient := flag.Bool("lenient", false, "load a config with unknown fields (each logged as a warning) rather than refuse it")
	flag.Parse()
	tuneGC()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*configPath, *addr, pool.ParseOptions{AllowUnknownFields: *lenient}, log); err != nil {
		log.Error("proxy stopped", "error", err)
		os.Exit(1)
	}
}

// gcPercent is the proxy's GOGC unless the environment sets one: its live
// heap is small, so at 100 it collects many times a second, which shows in
// the latency tail (docs/performance.md), for a heap up to 5x the live one.
const gcPercent = 400

// tuneGC applies gcPercent unless GOGC is set, and returns a function that
// puts back the setting it replaced.
func tuneGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(gcPercent)
	return func() { debug.SetGCPercent(old) }
}

func run(configPath, addr string, opts pool.ParseOptions, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	closeMocks := func() {}
	var cfg *pool.Config
	var err error
	if configPath == "" { // the demo: its config over mock upstreams
		cfg, closeMocks, err = startDemo(log)
	} else {
		cfg, err = opts.Load(configPath)
	}
	if err != nil {
		return err
	}
	defer closeMocks()
	reg := new(pool.Registry)
	store, rdb, err := poolredis.FromConfig(cfg.SharedState, log)
	if err != nil {
		return err
	}
	if store != nil { // limits shared with the other replicas on Redis
		defer rdb.Close()
		defer store.Close()
		reg.Shared = store
	}
	if err := reg.Reload(cfg); err != nil {
		return err
	}
	logConfig(log, cfg)
	if configPath != "" {
		if err := watchConfig(ctx, configPath, opts, reg, log, nil); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// The upstream transport's idle pool is set once, as in onwards.
	transport := gateway.NewTransportFor(cfg.HTTPPool)
	defer transport.CloseIdleConnections()
	srv := &http.Server{Handler: newMux(reg, transport, log), ReadHeaderTimeout: 10 * time.Second}
	printUsage(os.Stdout, ln.Addr().String(), reg.Aliases(), configPath == "")
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startDemo starts the two mock upstreams on loopback and returns the demo
// config over them, and a function that stops them.
func startDemo(log *slog.Logger) (*pool.Config, func(), error) {
	var servers []*http.Server
	closeAll := func() {
		for _, s := range servers {
			s.Close()
		}
	}
	var urls []string // "$NAME_URL", url, for each mock
	for _, m := range []*MockUpstream{
		{Name: "flaky", FailEvery: 3, ChunkDelay: 150 * time.Millisecond},
		{Name: "steady", ChunkDelay: 150 * time.Millisecond},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		s := &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, s)
		go s.Serve(ln)
		url := "http://" + ln.Addr().String() + "/v1"
		urls = append(urls, "$"+strings.ToUpper(m.Name)+"_URL", url)
		log.Info("mock upstream", "name", m.Name, "url", url)
	}
	cfg, err := pool.ParseConfig([]byte(strings.NewReplacer(urls...).Replace(demoConfig)))
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("demo config: %w", err)
	}
	return cfg, closeAll, nil
}

// watchConfig reloads the config file when it changes and on SIGHUP, until
// ctx is done. It watches the file's directory, since editors often replace
// a file rather than write it in place. Each reload's outcome is sent on
// reloaded, if it is not nil.
func watchConfig(ctx context.Context, path string, opts pool.ParseOptions, reg *pool.Registry, log *slog.Logger, reloaded chan<- error) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := func(why string) {
		cfg, err := opts.Load(path)
		if err == nil {
			err = reg.Reload(cfg)
		}
		if err != nil {
			log.Error("config not reloaded; the previous one stays", "why", why, "error", err)
		} else {
			log.Info("config reloaded", "why", why, "aliases", reg.Aliases())
			logConfig(log, cfg)
		}
		if reloaded != nil {
			reloaded <- err
		}
	}
	go func() {
		defer w.Close()
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload("SIGHUP")
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) == filepath.Clean(path) && ev.Has(fsnotify.Write|fsnotify.Create|fsnotify.Rename) {
					reload("file changed")
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Error("watching the config", "error", err)
			}
		}
	}()
	return nil
}

// newMux serves the gateway, its upstream calls sent by rt (nil: the
// gateway's default client), with /metrics (Prometheus) and /status (a
// page of the pools' state) beside it.
func newMux(reg *pool.Registry, rt http.RoundTripper, log *slog.Logger) *http.ServeMux {
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(poolprom.New(reg))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	mux.Handle("GET /status", status.Handler(reg))
	mux.Handle("/", &gateway.Handler{Registry: reg, Transport: rt, Log: log})
	return mux
}

// logConfig logs what a loaded config holds that may surprise: its
// warnings, and the fields it sets that this proxy keeps but does not act on.
// (A changed shared_state takes effect at the next start, not on reload.)
func logConfig(log *slog.Logger, cfg *pool.Config) {
	for _, w := range cfg.Warnings {
		log.Warn("config warning", "place", w.Place, "warning", w.Message)
	}
	for _, field := range cfg.NotActedOn {
		log.Warn("config field kept but not acted on", "field", field)
	}
}

// printUsage prints how to call the proxy: for the demo, its curl lines,
// keys included (they are the demo's); for a config file, lines for its
// first alias, with no key, since the file's keys are secrets.
func printUsage(w io.Writer, addr string, aliases []string, demo bool) {
	fmt.Fprintf(w, "\npool proxy listening on http://%s (aliases: %s); stop it with Ctrl-C\n\n", addr, strings.Join(aliases, ", "))
	fmt.Fprintf(w, "  curl http://%s/v1/models\n", addr)
	fmt.Fprintf(w, "  open http://%s/status (the pools' state) and http://%s/metrics (Prometheus)\n", addr, addr)
	if len(aliases) == 0 {
		return
	}
	chat := func(flags, fields string) {
		fmt.Fprintf(w, "  curl %shttp://%s/v1/chat/completions -H 'Content-Type: application/json' \\\n"+
			"    -d '{%s, \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}'\n", flags, addr, fields)
	}
	alias := aliases[0]
	if demo {
		alias = "demo"
	}
	chat("", fmt.Sprintf(`"model": %q`, alias))
	chat("-N ", fmt.Sprintf(`"model": %q, "stream": true`, alias))
	if demo {
		chat("-H 'Authorization: Bearer sk-demo' ", `"model": "demo-keyed"`)
	} else {
		fmt.Fprintf(w, "  (add -H 'Authorization: Bearer <key>' if the alias has keys)\n")
	}
	fmt.Fprintln(w)
}
