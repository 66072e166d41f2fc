package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MockUpstream is a small OpenAI-compatible upstream: chat completions,
// streamed or not, and a model list. It answers "Hello from NAME", word by
// word when streaming, and can fail now and then with a 503.
type MockUpstream struct {
	// Name is put in every answer, to show which upstream served it.
	Name string
	// FailEvery makes every FailEvery-th chat request fail with a 503.
	// 0: never.
	FailEvery int64
	// ChunkDelay spaces the events of a stream, so that a person watching
	// sees them arrive. 0: none.
	ChunkDelay time.Duration

	requests atomic.Int64

	mu   sync.Mutex
	seen []SeenRequest // the chat requests received, in order
}

// SeenRequest is what the mock recorded of one chat request.
type SeenRequest struct {
	Path   string      // the request path, as the upstream saw it
	Model  string      // the body's model
	Header http.Header // every header
}

// Seen returns the chat requests received so far.
func (m *MockUpstream) Seen() []SeenRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]SeenRequest(nil), m.seen...)
}

// ServeHTTP implements the upstream's API.
func (m *MockUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/models"):
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"object":"list","data":[{"id":"mock-%s","object":"model","created":0,"owned_by":"mock"}]}`, m.Name)
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/chat/completions"):
		m.chat(w, r)
	default:
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error","param":null,"code":null}}`, http.StatusNotFound)
	}
}

// chat answers a chat completion, records the request, and fails every
// FailEvery-th one with a 503.
func (m *MockUpstream) chat(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"error":{"message":"bad json","type":"invalid_request_error","param":null,"code":null}}`, http.StatusBadRequest)
		return
	}
	m.mu.Lock()
	m.seen = append(m.seen, SeenRequest{Path: r.URL.Path, Model: req.Model, Header: r.Header.Clone()})
	m.mu.Unlock()

	if n := m.requests.Add(1); m.FailEvery > 0 && n%m.FailEvery == 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, `{"error":{"message":"%s is overloaded","type":"server_error","param":null,"code":"overloaded"}}`, m.Name)
		return
	}
	words := []string{"Hello", " from", " " + m.Name}
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-" + m.Name, "object": "chat.completion", "created": time.Now().Unix(), "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": strings.Join(words, "")}}},
			"usage": map[string]any{"prompt_tokens": 1, "completion_tokens": len(words), "total_tokens": 1 + len(words)},
		})
		return
	}
	m.stream(w, r, req.Model, words)
}

// stream answers with an SSE stream of words, one event each, spaced by
// ChunkDelay, then a finish event and [DONE]; it stops if the client goes.
func (m *MockUpstream) stream(w http.ResponseWriter, r *http.Request, model string, words []string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	send := func(delta map[string]any, finish any) bool {
		chunk, _ := json.Marshal(map[string]any{
			"id": "chatcmpl-" + m.Name, "object": "chat.completion.chunk", "created": time.Now().Unix(), "model": model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
		})
		_, err := fmt.Fprintf(w, "data: %s\n\n", chunk)
		return err == nil && rc.Flush() == nil
	}
	if !send(map[string]any{"role": "assistant", "content": ""}, nil) {
		return
	}
	for _, word := range words {
		if m.ChunkDelay > 0 {
			select {
			case <-time.After(m.ChunkDelay):
			case <-r.Context().Done():
				return
			}
		}
		if !send(map[string]any{"content": word}, nil) {
			return
		}
	}
	if send(map[string]any{}, "stop") {
		fmt.Fprint(w, "data: [DONE]\n\n")
		rc.Flush()
	}
}
