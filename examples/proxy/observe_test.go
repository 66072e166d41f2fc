package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onwardsgo/pool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// observed is the proxy's whole mux (gateway, /metrics, /status) over a
// config with some history: successes, an ejected provider (the first by
// priority, so that it is ejected on every run), a refusal.
func observed(t *testing.T) (*httptest.Server, []string) {
	t.Helper()
	good := httptest.NewServer(&MockUpstream{Name: "good"})
	bad := httptest.NewServer(&failing{status: http.StatusBadGateway})
	t.Cleanup(func() { good.Close(); bad.Close() })
	cfg, err := pool.ParseConfig([]byte(`{"targets": {
		"gpt-4o": {"keys": ["sk-team"], "strategy": "priority", "outlier_detection": {"consecutive_failures": 2},
		           "concurrency_limit": {"max_concurrent_requests": 50},
		           "fallback": {"enabled": true, "on_status": [5]},
		           "providers": [{"url": "` + bad.URL + `/v1", "onwards_key": "sk-up-1", "concurrency_limit": {"max_concurrent_requests": 20}},
		                         {"url": "` + good.URL + `/v1", "onwards_key": "sk-up-2", "weight": 3}]},
		"embeddings": {"url": "` + good.URL + `/v1", "onwards_model": "text-embedding-3-small"}}}`))
	require.NoError(t, err)
	reg, err := pool.NewRegistry(cfg)
	require.NoError(t, err)
	proxy := httptest.NewServer(newMux(reg, nil, slog.New(slog.DiscardHandler)))
	t.Cleanup(proxy.Close)
	for range 8 {
		req, _ := http.NewRequest(http.MethodPost, proxy.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}`))
		req.Header.Set("Authorization", "Bearer sk-team")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := http.Post(proxy.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"gpt-4o"}`))
	require.NoError(t, err)
	resp.Body.Close() // refused: no key
	return proxy, []string{"gpt-4o", "embeddings"}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestMetricsEndpoint(t *testing.T) {
	proxy, _ := observed(t)
	out := get(t, proxy.URL+"/metrics")
	for _, want := range []string{
		`pool_provider_ejected{alias="gpt-4o",provider="0:127.0.0.1:`,
		`pool_admission_rejections_total{alias="gpt-4o",code="invalid_api_key"} 1`,
		`pool_model_inflight{model="embeddings"} 0`,
		`pool_provider_limit{alias="gpt-4o",provider="0:`,
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "sk-", "no key in the metrics")

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool (Debian's prometheus package) is not installed; .ci/run installs it")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	msg, err := cmd.CombinedOutput()
	assert.NoError(t, err, "promtool check metrics: %s", msg)
}

func TestStatusPage(t *testing.T) {
	proxy, aliases := observed(t)
	page := get(t, proxy.URL+"/status")
	for _, alias := range aliases {
		assert.Contains(t, page, `id="alias-`+alias+`"`)
	}
	assert.Contains(t, page, `class="state ejected"`)
	assert.NotContains(t, page, "sk-", "no key on the page")
}

// chromium returns the path of a Chromium to drive headless, or skips.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Skip("no Chromium (Debian's chromium package); .ci/run installs it")
	return ""
}

// headless runs Chromium headless on url with extra flags.
func headless(t *testing.T, browser, url string, extra ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}, extra...)
	out, err := exec.CommandContext(ctx, browser, append(args, url)...).Output()
	require.NoError(t, err, "chromium")
	return out
}

// TestStatusPageInABrowser loads /status in a real Chromium and finds
// each alias in the page it rendered. With UPDATE_SCREENSHOT=1 it also
// writes docs/status.png, the screenshot the README shows.
func TestStatusPageInABrowser(t *testing.T) {
	browser := chromium(t)
	proxy, aliases := observed(t)
	dom := string(headless(t, browser, proxy.URL+"/status", "--dump-dom"))
	for _, alias := range aliases {
		assert.Contains(t, dom, "<h2>"+alias+"</h2>", "the browser rendered the alias")
	}
	if os.Getenv("UPDATE_SCREENSHOT") != "" {
		path, err := filepath.Abs(filepath.Join("..", "..", "docs", "status.png"))
		require.NoError(t, err)
		headless(t, browser, proxy.URL+"/status", "--screenshot="+path, "--window-size=1100,560", "--hide-scrollbars")
		t.Logf("wrote %s", path)
	}
}
