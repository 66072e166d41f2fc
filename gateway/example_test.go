package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/onwardsgo/pool"
	"github.com/onwardsgo/pool/gateway"
)

// upstream stands in for a provider: it says which model and path it got.
func upstream() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path": %q, "auth": %q, "body": %s}`, r.URL.Path, r.Header.Get("Authorization"), body)
	}))
}

// A whole gateway: load a config, build a registry, mount the handler.
func ExampleHandler() {
	up := upstream()
	defer up.Close()

	cfg, err := pool.ParseConfig([]byte(`{"targets": {"gpt-4o": {
		"url": "` + up.URL + `/v1", "onwards_key": "sk-upstream", "onwards_model": "gpt-4o-2024-08-06"}}}`))
	if err != nil {
		panic(err)
	}
	reg, err := pool.NewRegistry(cfg)
	if err != nil {
		panic(err)
	}
	gw := httptest.NewServer(&gateway.Handler{Registry: reg})
	defer gw.Close()

	resp, err := http.Post(gw.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model": "gpt-4o"}`))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// 200 {"path": "/v1/chat/completions", "auth": "Bearer sk-upstream", "body": {"model": "gpt-4o-2024-08-06"}}
}

// The building blocks, for a handler of your own: admit, walk the pool,
// build each upstream request, send it with the provider's timeout, and
// copy the answer, flushing streams event by event.
func ExampleCopyResponse() {
	up := upstream()
	defer up.Close()
	cfg, _ := pool.ParseConfig([]byte(`{"targets": {"m": {"url": "` + up.URL + `"}}}`))
	reg, _ := pool.NewRegistry(cfg)

	handler := func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		adm, err := reg.Admit("m", "")
		if err != nil {
			err.(*pool.AdmissionError).ServeHTTP(w, r)
			return
		}
		defer adm.Close()
		for sel := range adm.Pool.Attempts() {
			req, err := gateway.NewUpstreamRequest(r.Context(), r, sel.Target, body)
			if err != nil {
				sel.Close()
				continue
			}
			resp, err := gateway.Send(nil, req, sel.Target.RequestTimeout)
			if err != nil {
				sel.Close()
				continue // a real handler asks adm.Pool.FallbackEnabled()
			}
			gateway.CopyResponse(w, resp, gateway.ResponseOptions{Path: r.URL.Path, Model: "m"})
			resp.Body.Close()
			sel.Close() // after the whole body: the slot is held for the stream
			return
		}
		http.Error(w, "no provider answered", http.StatusServiceUnavailable)
	}

	rec := httptest.NewRecorder()
	handler(rec, httptest.NewRequest(http.MethodPost, "/v1/embeddings", strings.NewReader(`{"model":"m"}`)))
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// 200 {"path": "/v1/embeddings", "auth": "", "body": {"model":"m"}}
}

// A Handler whose upstream calls go through Transport, which speaks
// HTTP/1.1 on the handler's own goroutine, rather than net/http's
// Transport. Set as Handler.Transport, it is called without an
// http.Client: redirects are passed on, not followed, as NewClient's are.
func ExampleTransport() {
	up := upstream()
	defer up.Close()
	cfg, _ := pool.ParseConfig([]byte(`{"targets": {"m": {"url": "` + up.URL + `", "onwards_key": "sk-upstream"}}}`))
	reg, _ := pool.NewRegistry(cfg)

	transport := new(gateway.Transport)
	defer transport.CloseIdleConnections()
	gw := httptest.NewServer(&gateway.Handler{Registry: reg, Transport: transport})
	defer gw.Close()

	resp, err := http.Post(gw.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model": "m"}`))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// 200 {"path": "/v1/chat/completions", "auth": "Bearer sk-upstream", "body": {"model": "m"}}
}

// NewTransportFor builds the upstream transport from a config's http_pool:
// here at most 10 idle connections per upstream, each kept 30 s.
func ExampleNewTransportFor() {
	up := upstream()
	defer up.Close()
	cfg, err := pool.ParseConfig([]byte(`{
		"http_pool": {"max_idle_per_host": 10, "idle_timeout_secs": 30},
		"targets": {"m": {"url": "` + up.URL + `"}}
	}`))
	if err != nil {
		panic(err)
	}
	reg, _ := pool.NewRegistry(cfg)

	transport := gateway.NewTransportFor(cfg.HTTPPool)
	defer transport.CloseIdleConnections()
	fmt.Println(transport.MaxIdleConnsPerHost, transport.IdleConnTimeout)

	gw := httptest.NewServer(&gateway.Handler{Registry: reg, Transport: transport})
	defer gw.Close()
	resp, err := http.Post(gw.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model": "m"}`))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// 10 30s
	// 200
}
