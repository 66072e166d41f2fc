//go:build !race

package gateway

// What a stream in flight costs the gateway, held open by its upstream:
// goroutines, stack and heap. The race detector changes every frame and
// every allocation, so these run without it: go test -run HeldStream
// ./gateway.

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/onwardsgo/pool"
	"github.com/stretchr/testify/require"
)

// heldStreams is how many streams each measurement holds: enough that
// the few goroutines and bytes of the servers' own bookkeeping fall below
// a tenth of a stream's cost.
const heldStreams = 200

// streamCost is what a set of held streams added to the process, per
// stream.
type streamCost struct {
	goroutines float64
	stack      float64 // bytes of goroutine stacks
	heap       float64 // bytes of live heap
}

// processCost is the process's goroutines, stack and live heap, after
// collections that free what can be freed and shrink the stacks that can
// shrink.
func processCost() (goroutines int, stack, heap uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.StackInuse, ms.HeapAlloc
}

// holdStreams opens n streams at url, each to its first event, and
// returns what they cost and the connections, which hold them.
func holdStreams(t *testing.T, url string, n int) (streamCost, []net.Conn) {
	t.Helper()
	g0, s0, h0 := processCost()
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"Hi"}]}`
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		require.NoError(t, err)
		conns = append(conns, c)
		_, err = fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		require.NoError(t, err)
		br := bufio.NewReader(c)
		for { // to the end of the first event: the stream is then held
			line, err := br.ReadString('\n')
			require.NoError(t, err)
			if strings.HasPrefix(line, "data:") {
				break
			}
		}
	}
	g1, s1, h1 := processCost()
	per := func(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(n) }
	return streamCost{float64(g1-g0) / float64(n), per(s0, s1), per(h0, h1)}, conns
}

// TestHeldStreamCost holds streams straight at an upstream and then as
// many through a Handler over Transport, behind a ServeMux, in front of
// it: the difference is the gateway's. A stream waiting for its next
// event keeps 2 goroutines (the server's for the connection and its read
// of it) with the stacks that net/http's server alone gives them, 8 KiB
// and 2 KiB, and no copy buffer: a stack that had grown to 16 KiB, or a
// 4 KiB buffer held while waiting, fails it. (Frame sizes are the
// compiler's: a Go release that grows them may need the stack under
// Handler trimmed again; see the notes on try's helpers in forward.go.)
func TestHeldStreamCost(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"t\"}}]}\n\n"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	cfg, err := pool.ParseConfig([]byte(`{"targets": {"m": {"url": "` + up.URL + `/v1"}}}`))
	require.NoError(t, err)
	reg, err := pool.NewRegistry(cfg)
	require.NoError(t, err)
	mux := http.NewServeMux() // as a gateway mounts it
	mux.Handle("/v1/", &Handler{Registry: reg, Transport: new(Transport)})
	gw := httptest.NewServer(mux)
	defer gw.Close()

	direct, dconns := holdStreams(t, up.URL, heldStreams)
	through, gconns := holdStreams(t, gw.URL, heldStreams)
	close(release)
	for _, c := range append(dconns, gconns...) {
		c.Close()
	}
	gateway := streamCost{through.goroutines - direct.goroutines, through.stack - direct.stack, through.heap - direct.heap}
	t.Logf("per held stream: upstream %.1f goroutines, %.1f KiB stack, %.1f KiB heap; gateway %.1f goroutines, %.1f KiB stack, %.1f KiB heap",
		direct.goroutines, direct.stack/1024, direct.heap/1024, gateway.goroutines, gateway.stack/1024, gateway.heap/1024)
	require.InDelta(t, 2, gateway.goroutines, 0.1, "goroutines per held stream")
	// 10 KiB, and room for the few stacks of the servers' own that grow
	// meanwhile (up to 0.6 KiB a stream over runs), far below the 18 KiB
	// of stacks grown to 16.
	require.LessOrEqual(t, gateway.stack, 12.0*1024, "stack bytes per held stream")
	require.LessOrEqual(t, gateway.heap, 25.0*1024, "heap bytes per held stream")
}
