package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

// stressUpstream answers a chat completion, or a stream of events; for a
// body that asks "break", it cuts the stream after its first event.
func stressUpstream(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	body := string(b)
	if !strings.Contains(body, `"stream":true`) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"c","object":"chat.completion","model":"up","choices":[]}`)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for i := range 5 {
		fmt.Fprintf(w, "data: {\"id\":\"c\",\"n\":%d}\n\n", i)
		w.(http.Flusher).Flush()
		if i == 0 && strings.Contains(body, `"break"`) {
			panic(http.ErrAbortHandler) // the upstream breaks off mid-stream
		}
		if err := r.Context().Err(); err != nil {
			return
		}
	}
	io.WriteString(w, "data: [DONE]\n\n")
}

// TestHandlerStress sends many requests at once through the gateway, over
// two providers with limits: chat completions, streams read to the end,
// streams the client leaves after the first event, and streams the
// upstream breaks off. Every answer must be what its kind promises, and
// in the end every slot is given back (the rig checks) and no goroutine
// is left. Run with -args -lean, it is the same over Transport.
func TestHandlerStress(t *testing.T) {
	checkLeaks(t)
	r := newRig(t, `{"targets": {"m": {"concurrency_limit": {"max_concurrent_requests": 1000},
		"providers": [{"url": "$A", "concurrency_limit": {"max_concurrent_requests": 500}}, {"url": "$B", "weight": 2}]}}}`,
		map[string]http.Handler{"A": http.HandlerFunc(stressUpstream), "B": http.HandlerFunc(stressUpstream)})
	const goroutines, each = 16, 40
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				stressOne(t, r, (g+i)%4)
			}
		}()
	}
	wg.Wait()
}

// stressOne sends one request of the given kind and checks its answer.
func stressOne(t *testing.T, r *rig, kind int) {
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	body := map[int]string{
		0: `{"model":"m","messages":[]}`,
		1: `{"model":"m","stream":true}`,
		2: `{"model":"m","stream":true}`,
		3: `{"model":"m","stream":true,"user":"break"}`,
	}[kind]
	resp, err := r.send(ctx, http.MethodPost, "/v1/chat/completions", body)
	if !assert.NoError(t, err) {
		return
	}
	defer resp.Body.Close()
	if !assert.Equal(t, http.StatusOK, resp.StatusCode) {
		return
	}
	br := bufio.NewReader(resp.Body)
	switch kind {
	case 0:
		b, err := io.ReadAll(br)
		assert.NoError(t, err)
		assert.Contains(t, string(b), `"chat.completion"`)
	case 1:
		b, err := io.ReadAll(br)
		assert.NoError(t, err)
		assert.Equal(t, 6, strings.Count(string(b), "data: "), "five events and [DONE]")
		assert.True(t, strings.HasSuffix(string(b), "data: [DONE]\n\n"))
	case 2: // the client leaves after the first event
		line, err := br.ReadString('\n')
		assert.NoError(t, err)
		assert.Contains(t, line, `"n":0`)
		cancel()
	case 3: // the upstream breaks off: the client sees an error, not an end
		_, err := io.ReadAll(br)
		assert.Error(t, err)
	}
}
