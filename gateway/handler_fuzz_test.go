package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/onwardsgo/pool"
)

// FuzzHandler sends arbitrary client requests (method, path, body,
// Model-Override, other headers) through Handler, with and without strict mode, to an
// upstream in memory, and holds each outcome to the gateway's promises:
//
//   - a request forwarded goes to the pool it names, with the provider's
//     key and none of the client's, none of the headers that stay behind
//     (hop-by-hop, named by Connection, or client-only), and its body as
//     the client sent it (byte for byte without onwards_model, still JSON
//     with it);
//   - a request refused gets an error object of the gateway's own, with
//     no key of the config in it;
//   - every slot taken is given back;
//
// and nothing panics.
func FuzzHandler(f *testing.F) {
	for _, seed := range []struct {
		method          uint8
		path, body, hdr string
		strict          bool
		header          string
	}{
		{0, pathChat, `{"model":"m","messages":[{"role":"user","content":"Hi"}]}`, "", false,
			"Connection: x-hop, Keep-Alive\nX-Hop: 1\nkeep-alive: 5\ncookie: s=1\nX-Kept: k\nsec-ch-ua-mobile: ?0"},
		{0, pathChat, `{"model":"r","messages":[{"role":"user","content":"Hi"}],"stream":true}`, "", true, ""},
		{0, pathEmbeddings, `{"model":"r","input":["a","b"]}`, "", true, ""},
		{0, pathResponses, `{"model":"m","input":"Hi"}`, "", true, ""},
		{0, "/v1/audio/transcriptions", "RIFF\x00\x01", "r", false, ""},
		{0, pathChat, `{"model":["m"]}`, "", false, ""},
		{0, pathChat, `{"model":"m"`, "m", false, ""},
		{1, pathModels + "/m", "", "", false, ""},
		{2, "/v1/chat/completions/", `{"model":"nope"}`, "", true, ""},
	} {
		f.Add(seed.method, seed.path, []byte(seed.body), seed.hdr, seed.strict, seed.header)
	}
	plain := fuzzHandler(f, false)
	strict := fuzzHandler(f, true)
	f.Fuzz(func(t *testing.T, method uint8, path string, body []byte, override string, isStrict bool, header string) {
		h := plain
		if isStrict {
			h = strict
		}
		u, err := url.ParseRequestURI(path)
		if err != nil || u.Host != "" {
			t.Skip("net/http's server refuses such a request line")
		}
		r := httptest.NewRequest([]string{http.MethodPost, http.MethodGet, http.MethodPut}[method%3], "/", bytes.NewReader(body))
		r.URL, r.RequestURI = u, path
		r.Header.Set("Authorization", "Bearer sk-client-own")
		r.Header.Set("X-Api-Key", "sk-client-own")
		if override != "" {
			r.Header["Model-Override"] = []string{override}
		}
		for _, line := range strings.Split(header, "\n") {
			// Added under the name as given, not canonicalized, as a
			// caller building its own request may: the gateway must
			// still know the header.
			if name, value, ok := strings.Cut(line, ":"); ok && validToken(name) {
				r.Header[name] = append(r.Header[name], strings.TrimSpace(value))
			}
		}
		w := httptest.NewRecorder()
		h.up.reset()
		h.ServeHTTP(w, r)
		h.check(t, w, r.Header, body)
	})
}

// fuzzedHandler is a Handler over an upstream in memory, and what that
// upstream was sent.
type fuzzedHandler struct {
	*Handler
	up *fuzzUpstream
}

func fuzzHandler(f *testing.F, strict bool) *fuzzedHandler {
	cfg, err := pool.ParseConfig([]byte(`{"strict_mode": ` + map[bool]string{true: "true", false: "false"}[strict] + `,
		"targets": {
			"m": {"url": "http://m.test/v1", "onwards_key": "sk-up-m"},
			"r": {"url": "http://r.test", "onwards_key": "sk-up-r", "onwards_model": "real"}}}`))
	if err != nil {
		f.Fatal(err)
	}
	reg, err := pool.NewRegistry(cfg)
	if err != nil {
		f.Fatal(err)
	}
	up := &fuzzUpstream{}
	return &fuzzedHandler{Handler: &Handler{Registry: reg, Client: &http.Client{Transport: up}}, up: up}
}

// check holds one answer, to a request of header and body, to the
// promises above.
func (h *fuzzedHandler) check(t *testing.T, w *httptest.ResponseRecorder, header http.Header, body []byte) {
	t.Helper()
	answer := w.Body.String()
	for _, key := range []string{"sk-up-m", "sk-up-r", "sk-client-own"} {
		if strings.Contains(answer, key) {
			t.Fatalf("the answer shows a key: %d %q", w.Code, answer)
		}
	}
	if sent := h.up.sent; sent != nil {
		alias := strings.TrimSuffix(sent.URL.Host, ".test")
		if got := sent.Header.Get("Authorization"); got != "Bearer sk-up-"+alias {
			t.Fatalf("sent to %s with Authorization %q", sent.URL.Host, got)
		}
		var conn []string
		for k, vs := range header {
			if strings.EqualFold(k, "Connection") {
				conn = append(conn, vs...)
			}
		}
		for k := range sent.Header {
			ck := http.CanonicalHeaderKey(k)
			if ck != "Authorization" && (clientOnly(ck) || slices.Contains(hopByHop, ck) || listedIn(conn, ck)) {
				t.Fatalf("the client's %s went upstream: %q", k, sent.Header[k])
			}
		}
		switch {
		case alias == "m" && !bytes.Equal(h.up.body, body):
			t.Fatalf("the body went upstream as %q; the client sent %q", h.up.body, body)
		case alias == "r" && json.Valid(body) && !json.Valid(h.up.body):
			t.Fatalf("the model rewrite broke the JSON: %q became %q", body, h.up.body)
		}
		if w.Code != http.StatusOK {
			t.Fatalf("the upstream answered 200; the client got %d %q", w.Code, answer)
		}
	} else if w.Code < 400 && !(w.Code == http.StatusOK && strings.Contains(answer, `"object":"`)) {
		t.Fatalf("no upstream call, yet %d %q", w.Code, answer) // only the model list answers itself
	} else if w.Code >= 400 {
		var e struct{ Error struct{ Message string } }
		if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error.Message == "" {
			t.Fatalf("a refusal that is not an error object: %d %q", w.Code, answer)
		}
	}
	for _, alias := range h.Registry.Aliases() {
		p, _ := h.Registry.Pool(alias)
		for i, pr := range p.Providers() {
			if n := pr.ActiveConnections(); n != 0 {
				t.Fatalf("%s provider %d holds %d slots after the request", alias, i, n)
			}
		}
	}
}

// fuzzUpstream answers every request, in memory, as an OpenAI upstream
// would its path: an embedding list, a response or a completion; and keeps
// the last request and its body.
type fuzzUpstream struct {
	mu   sync.Mutex
	sent *http.Request
	body []byte
}

func (u *fuzzUpstream) reset() {
	u.mu.Lock()
	u.sent, u.body = nil, nil
	u.mu.Unlock()
}

func (u *fuzzUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	u.mu.Lock()
	u.sent, u.body = r, body
	u.mu.Unlock()
	answer := completion("real", "Hi")
	switch {
	case strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/embeddings"):
		answer = `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":"real"}`
	case strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/responses"):
		answer = `{"id":"resp_1","object":"response","model":"real","output":[]}`
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(answer)), Request: r}, nil
}
