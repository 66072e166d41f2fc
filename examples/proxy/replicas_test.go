package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// holdStream is an upstream whose streams send one event and then stay
// open until the test releases them or the proxy hangs up.
type holdStream struct{ release chan struct{} }

func (h *holdStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	drain(r)
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprint(w, `data: {"id":"x","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}`+"\n\n")
	http.NewResponseController(w).Flush()
	select {
	case <-h.release:
		fmt.Fprint(w, "data: [DONE]\n\n")
	case <-r.Context().Done():
	}
}

// replica is the proxy command running as a process of its own.
type replica struct {
	cmd  *exec.Cmd
	addr string
}

// startReplica runs the built proxy with config and waits for its
// "listening" line.
func startReplica(t *testing.T, bin, config string) *replica {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "-config", config, "-addr", addr)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				close(ready)
				break
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case <-ready:
	case <-time.After(testTimeout):
		t.Fatal("the replica did not start")
	}
	return &replica{cmd: cmd, addr: addr}
}

func (r *replica) chat(ctx context.Context, alias string) (*http.Response, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+r.addr+"/v1/chat/completions",
		strings.NewReader(`{"model":"`+alias+`","stream":true,"messages":[{"role":"user","content":"Hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	return http.DefaultClient.Do(req)
}

// openStream starts a stream through r and reads its first event.
func (r *replica) openStream(t *testing.T, alias string) *http.Response {
	t.Helper()
	resp, err := r.chat(ctxT(t), alias)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	return resp
}

// status sends one request through r and returns its status and
// Retry-After, closing the body.
func (r *replica) status(t *testing.T, alias string) (int, string) {
	t.Helper()
	resp, err := r.chat(ctxT(t), alias)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestTwoReplicasShareALimit runs two proxy processes on one Redis with an
// alias limited to one request in flight.
func TestTwoReplicasShareALimit(t *testing.T) {
	redisURL := os.Getenv("POOLREDIS_TEST_URL")
	if redisURL == "" {
		t.Skip("POOLREDIS_TEST_URL names no real redis-server; .ci/run starts one")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "proxy")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	up := &holdStream{release: make(chan struct{})}
	upstream := httptest.NewServer(up)
	defer upstream.Close()
	alias := "chat-" + fmt.Sprint(time.Now().UnixNano()) // keys of its own on a shared Redis
	const ttl = 2 * time.Second
	config := filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(config, []byte(`{
		"shared_state": {"redis_url": "`+redisURL+`", "lease_ttl_ms": `+fmt.Sprint(ttl.Milliseconds())+`},
		"targets": {"`+alias+`": {"concurrency_limit": {"max_concurrent_requests": 1},
		                         "providers": [{"url": "`+upstream.URL+`/v1"}]}}}`), 0o600))
	a, b := startReplica(t, bin, config), startReplica(t, bin, config)

	// A stream held on A: B refuses, with Retry-After.
	stream := a.openStream(t, alias)
	code, retryAfter := b.status(t, alias)
	assert.Equal(t, http.StatusTooManyRequests, code)
	assert.NotEmpty(t, retryAfter)

	// A's stream ends: B admits again.
	up.release <- struct{}{}
	io.Copy(io.Discard, stream.Body)
	stream.Body.Close()
	resp, err := b.chat(ctxT(t), alias)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the slot came back when A's stream ended")
	go func() { up.release <- struct{}{} }()
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	// A is killed mid-stream: its lease is not released, and expires.
	stream = a.openStream(t, alias)
	defer stream.Body.Close()
	killed := time.Now()
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL))
	a.cmd.Wait()
	for {
		code, _ := b.status(t, alias)
		if code == http.StatusOK {
			break
		}
		require.Equal(t, http.StatusTooManyRequests, code)
		require.Less(t, time.Since(killed), ttl+2*time.Second, "B must admit again within the lease TTL (and the polling's slack)")
		time.Sleep(50 * time.Millisecond) // the lease expires in Redis's time, which no event announces
	}
	t.Logf("B admitted again %v after A was killed (lease TTL %v)", time.Since(killed).Round(time.Millisecond), ttl)
}
