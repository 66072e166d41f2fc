package gateway

import (
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onwardsgo/pool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testTimeout bounds any one wait in these tests; nothing waits for it to
// pass on correct code.
const testTimeout = 30 * time.Second

// rig is a gateway on loopback in front of upstreams on loopback.
type rig struct {
	t        *testing.T
	reg      *pool.Registry
	h        *Handler
	srv      *httptest.Server
	upstream map[string]*connServer
	client   *http.Client
	secrets  []string // the config's keys, which no answer may show

	mu       sync.Mutex
	attempts []Attempt
}

// leanTransport runs the rig's upstream calls over Transport, set as the
// Handler's Transport, rather than over NewClient's client: go test
// ./gateway -args -lean.
var leanTransport = flag.Bool("lean", false, "send the rig's upstream calls through gateway.Transport, as Handler.Transport")

// keyPattern finds the keys of a config: every "sk-..." string.
var keyPattern = regexp.MustCompile(`"(sk-[^"]*)"`)

// newRig starts the upstreams (name -> handler), builds the config from doc
// with $NAME replaced by each upstream's URL, and starts the gateway. At
// the end of the test it stops everything and checks that every counter is
// back at zero.
func newRig(t *testing.T, doc string, upstreams map[string]http.Handler) *rig {
	t.Helper()
	return newRigClock(t, doc, upstreams, nil)
}

// newRigClock is newRig with the registry on clock (nil: the system's).
func newRigClock(t *testing.T, doc string, upstreams map[string]http.Handler, clock pool.Clock) *rig {
	t.Helper()
	r := &rig{t: t, upstream: map[string]*connServer{}}
	var pairs []string
	for name, h := range upstreams {
		s := newConnServer(t, h.ServeHTTP)
		r.upstream[name] = s
		pairs = append(pairs, "$"+name, s.URL)
	}
	doc = strings.NewReplacer(pairs...).Replace(doc)
	for _, m := range keyPattern.FindAllStringSubmatch(doc, -1) {
		r.secrets = append(r.secrets, m[1])
	}
	cfg, err := pool.ParseConfig([]byte(doc))
	require.NoError(t, err)
	r.reg = &pool.Registry{Clock: clock}
	require.NoError(t, r.reg.Reload(cfg))
	r.h = &Handler{Registry: r.reg, OnAttempt: func(a Attempt) {
		r.mu.Lock()
		r.attempts = append(r.attempts, a)
		r.mu.Unlock()
	}}
	var sendsUpstream interface{ CloseIdleConnections() }
	if *leanTransport {
		lean := new(Transport)
		r.h.Transport, sendsUpstream = lean, lean
	} else {
		c := NewClient()
		r.h.Client, sendsUpstream = c, c
	}
	r.srv = httptest.NewServer(r.h)
	r.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(),
		// Tests see the gateway's answer as it is, a redirect included.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(func() {
		r.client.CloseIdleConnections()
		r.srv.Close() // waits for every handler to return
		sendsUpstream.CloseIdleConnections()
		for _, s := range r.upstream {
			// Every upstream connection was either kept idle, and is now
			// closed, or closed when its exchange ended: none is left.
			s.awaitOpen(r.t, 0)
			s.Close()
		}
		r.assertDrained()
	})
	return r
}

// assertDrained checks that no slot is held in any pool or limiter.
func (r *rig) assertDrained() {
	r.t.Helper()
	for _, alias := range r.reg.Aliases() {
		p, _ := r.reg.Pool(alias)
		for i, pr := range p.Providers() {
			assert.Equal(r.t, 0, pr.ActiveConnections(), "%s provider %d", alias, i)
		}
		if l := p.ConcurrencyLimiter(); l != nil {
			assert.Equal(r.t, 0, l.Active(), "%s pool limiter", alias)
		}
	}
}

// answer is a response read whole.
type answer struct {
	status int
	header http.Header
	body   string
}

// send sends a request to the gateway; header holds name, value pairs.
func (r *rig) send(ctx context.Context, method, path, body string, header ...string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.srv.URL+path, strings.NewReader(body))
	require.NoError(r.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return r.client.Do(req)
}

// do sends a request and reads the whole answer. Every error answer is
// checked: it shows no address, dial error or key, and a 429 carries
// Retry-After.
func (r *rig) do(method, path, body string, header ...string) answer {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	resp, err := r.send(ctx, method, path, body, header...)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(r.t, err)
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	r.checkAnswer(a)
	return a
}

// checkAnswer holds every answer of the suite to the rules on errors.
func (r *rig) checkAnswer(a answer) {
	r.t.Helper()
	if a.status == http.StatusTooManyRequests {
		assert.NotEmpty(r.t, a.header.Get("Retry-After"), "a 429 without Retry-After: %s", a.body)
	}
	if a.status < 400 {
		return
	}
	for _, leak := range append([]string{"127.0.0.1", "dial", "connection refused"}, r.secrets...) {
		assert.NotContains(r.t, a.body, leak, "an error answer shows %q", leak)
	}
}

func (r *rig) post(path, body string, header ...string) answer {
	r.t.Helper()
	return r.do(http.MethodPost, path, body, header...)
}

func (r *rig) chat(model string, header ...string) answer {
	r.t.Helper()
	return r.post("/v1/chat/completions", `{"model":"`+model+`","messages":[{"role":"user","content":"Hi"}]}`, header...)
}

// tries returns the attempts recorded so far.
func (r *rig) tries() []Attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Attempt(nil), r.attempts...)
}

// recorder is an upstream that records what it was sent and answers with
// a fixed status and body.
type recorder struct {
	status int
	header map[string]string
	body   string

	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, path, query string
	header              http.Header
	body                string
}

func (u *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.reqs = append(u.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(b)})
	u.mu.Unlock()
	for k, v := range u.header {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(cmpOr(u.status, http.StatusOK))
	io.WriteString(w, cmpOr(u.body, completion("upstream-model", "Hello")))
}

func (u *recorder) calls() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.reqs...)
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// completion is a chat completion as an upstream writes it, with extra
// provider fields.
func completion(model, text string) string {
	return `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"` + model +
		`","provider":"acme","cost":0.25,"choices":[{"index":0,"message":{"role":"assistant","content":"` + text +
		`","provider_specific":"x"},"finish_reason":"stop","native_finish_reason":"eos"}],` +
		`"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,"cost":1}}`
}

// ctxT is a context that ends with the test (testing.T.Context needs Go
// 1.24; the module asks for 1.23).
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}
