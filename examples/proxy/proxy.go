package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/onwardsgo/pool"
)

// maxBodyBytes bounds a request body the proxy reads to find the model.
const maxBodyBytes = 32 << 20

// Proxy is an OpenAI-compatible reverse proxy over a pool.Registry, written
// the way onwards' handler uses its load balancer: find the model, admit the
// request, then walk the pool's providers until one answers with a status
// the pool does not fall back on.
type Proxy struct {
	// Registry holds the pools by alias; Reload it to change the config.
	Registry *pool.Registry
	// Client sends requests upstream. Nil: NewUpstreamClient().
	Client *http.Client
	// Log gets one line per request and one per fallback. Nil: none.
	Log *slog.Logger
}

// NewUpstreamClient returns a client for upstream requests that keeps
// enough idle connections per upstream for a busy proxy.
func NewUpstreamClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1000
	t.MaxIdleConnsPerHost = 100
	return &http.Client{Transport: t}
}

// ServeHTTP serves GET /v1/models and forwards every other request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.TrimSuffix(r.URL.Path, "/") == "/v1/models" {
		p.models(w)
		return
	}
	p.forward(w, r)
}

// models lists the aliases in OpenAI's list shape.
func (p *Proxy) models(w http.ResponseWriter) {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, alias := range p.Registry.Aliases() {
		list.Data = append(list.Data, model{ID: alias, Object: "model", OwnedBy: "pool"})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(list)
}

// apiError writes an OpenAI-style error.
func apiError(w http.ResponseWriter, status int, code, typ, msg string) {
	(&pool.AdmissionError{Status: status, Code: code, Type: typ, Message: msg}).ServeHTTP(w, nil)
}

// failure is why one attempt did not produce the answer, kept so that the
// client gets the last one when every attempt fails.
type failure struct {
	status int
	header http.Header // the upstream's, when it answered
	body   []byte      // the upstream's answer, or nil
	code   string      // an OpenAI error code, when the proxy writes the error
	msg    string
}

func (f *failure) write(w http.ResponseWriter) {
	if f.body != nil {
		copyHeader(w.Header(), f.header)
		w.Header().Del("Content-Length")
		w.WriteHeader(f.status)
		w.Write(f.body)
		return
	}
	apiError(w, f.status, f.code, "server_error", f.msg)
}

var discard = slog.New(slog.DiscardHandler)

func (p *Proxy) logger() *slog.Logger {
	if p.Log == nil {
		return discard
	}
	return p.Log
}

func (p *Proxy) client() *http.Client {
	if p.Client == nil {
		p.Client = NewUpstreamClient()
	}
	return p.Client
}

// forward admits a request and walks its pool's providers.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	log := p.logger().With("method", r.Method, "path", r.URL.Path)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid_body", "invalid_request_error", "The request body could not be read: "+err.Error())
		return
	}
	model := r.Header.Get("Model-Override")
	if model == "" {
		var req struct {
			Model string `json:"model"`
		}
		json.Unmarshal(body, &req)
		model = req.Model
	}
	if model == "" {
		apiError(w, http.StatusBadRequest, "missing_model", "invalid_request_error",
			"The request names no model: set the JSON body's model field or a Model-Override header.")
		return
	}
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")

	adm, err := p.Registry.Admit(model, strings.TrimSpace(token))
	if err != nil {
		var ae *pool.AdmissionError
		errors.As(err, &ae)
		log.Info("refused", "model", model, "status", ae.Status, "code", ae.Code)
		ae.ServeHTTP(w, r)
		return
	}
	// Held until the response, streamed or not, is fully copied or the
	// client has gone away.
	defer adm.Close()
	log = log.With("alias", adm.Alias)
	pl := adm.Pool

	last := &failure{status: http.StatusTooManyRequests, code: "concurrency_limit_exceeded",
		msg: fmt.Sprintf("Every provider of %q is at its concurrency limit; retry when a request finishes.", adm.Alias)}
	for sel := range pl.Attempts() {
		provider := fmt.Sprintf("%d:%s", sel.Index, sel.Target.URL.Redacted())
		f := p.attempt(w, r, pl, sel, body, log.With("provider", provider))
		if f == nil {
			return // answered, or the client has gone
		}
		last = f
		if !p.fallsBack(pl, f) {
			break
		}
		log.Info("fallback", "provider", provider, "status", f.status, "reason", f.msg)
	}
	log.Info("failed", "status", last.status)
	last.write(w)
}

// fallsBack reports whether a failed attempt moves on to the next provider.
func (p *Proxy) fallsBack(pl *pool.ProviderPool, f *failure) bool {
	switch {
	case f.code == "rate_limit_exceeded":
		return pl.ShouldFallbackOnRateLimit()
	case f.body != nil:
		return pl.ShouldFallbackOnStatus(f.status)
	default: // transport error or timeout
		return pl.FallbackEnabled()
	}
}

// errHeaderTimeout is the cause of an upstream request cancelled by the
// provider's request timeout.
var errHeaderTimeout = errors.New("upstream response headers timed out")

// attempt sends the request to one provider, whose selection it closes. It
// returns nil when it wrote the response, whatever its status, or when the
// client has gone; else the failure to record.
func (p *Proxy) attempt(w http.ResponseWriter, r *http.Request, pl *pool.ProviderPool, sel pool.Selection, body []byte, log *slog.Logger) *failure {
	defer sel.Close() // after the body is copied, or on a panic that aborts it
	t := sel.Target
	if t.RateLimiter != nil && !t.RateLimiter.Allow() {
		return &failure{status: http.StatusTooManyRequests, code: "rate_limit_exceeded",
			msg: "The provider's rate limit is reached; retry after a short wait."}
	}
	ctx := r.Context() // the client leaving cancels the upstream request
	var timer *time.Timer
	if t.RequestTimeout > 0 {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		timer = time.AfterFunc(t.RequestTimeout, func() { cancel(errHeaderTimeout) })
	}
	up, err := upstreamRequest(ctx, r, t, body)
	if err != nil {
		return &failure{status: http.StatusBadGateway, code: "upstream_error", msg: err.Error()}
	}
	resp, err := p.client().Do(up)
	if timer != nil && !timer.Stop() && err == nil {
		// The headers arrived as the timer fired: the request is cancelled.
		resp.Body.Close()
		err = context.Cause(ctx)
	}
	if err != nil {
		switch {
		case errors.Is(context.Cause(ctx), errHeaderTimeout):
			return &failure{status: http.StatusGatewayTimeout, code: "upstream_timeout",
				msg: fmt.Sprintf("The provider sent no response headers within %v.", t.RequestTimeout)}
		case r.Context().Err() != nil:
			log.Info("client gone before the answer")
			return nil
		}
		return &failure{status: http.StatusBadGateway, code: "upstream_error",
			msg: "The provider could not be reached: " + redactErr(err, up.URL)}
	}
	defer resp.Body.Close()
	if pl.ShouldFallbackOnStatus(resp.StatusCode) {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return &failure{status: resp.StatusCode, header: resp.Header, body: b, msg: http.StatusText(resp.StatusCode)}
	}

	h := w.Header()
	copyHeader(h, resp.Header)
	for k, v := range t.ResponseHeaders {
		h.Set(k, v)
	}
	stream := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	if stream {
		h.Del("Content-Length")
	}
	w.WriteHeader(resp.StatusCode)
	log.Info("answered", "status", resp.StatusCode, "stream", stream)
	if err := copyBody(w, resp.Body, stream); err != nil {
		if r.Context().Err() != nil {
			log.Info("client gone mid-response")
			return nil
		}
		// The upstream broke off mid-response. The status is sent, so the
		// only honest signal left is to abort the client's response too.
		log.Warn("upstream broke off mid-response", "error", redactErr(err, up.URL))
		panic(http.ErrAbortHandler)
	}
	return nil
}

// copyBuffers recycles the buffers of copyBody, which would otherwise be
// the largest allocation of a request.
var copyBuffers = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// copyBody copies an upstream body to the client, flushing after each read
// of a stream so that every event goes out as it arrives.
func copyBody(w http.ResponseWriter, body io.Reader, stream bool) error {
	rc := http.NewResponseController(w)
	bp := copyBuffers.Get().(*[32 << 10]byte)
	defer copyBuffers.Put(bp)
	buf := bp[:]
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if stream {
				if ferr := rc.Flush(); ferr != nil {
					return ferr
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// upstreamRequest builds the request to a provider: its URL joined with the
// request path, its key in place of the client's, and the model rewritten.
func upstreamRequest(ctx context.Context, r *http.Request, t *pool.Target, body []byte) (*http.Request, error) {
	if t.UpstreamModel != "" {
		body = rewriteModel(body, t.UpstreamModel)
	}
	u := joinURL(t.URL, r.URL)
	up, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	copyHeader(up.Header, r.Header)
	for _, h := range []string{"Authorization", "Model-Override", "Accept-Encoding", "Content-Length"} {
		up.Header.Del(h)
	}
	if name, value := t.AuthHeader(); name != "" {
		up.Header.Set(name, value)
	}
	return up, nil
}

// rewriteModel sets the JSON body's model, leaving the rest as it was.
func rewriteModel(body []byte, model string) []byte {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return body
	}
	fields["model"], _ = json.Marshal(model)
	out, err := json.Marshal(fields)
	if err != nil {
		return body
	}
	return out
}

// joinURL joins a provider's base URL and a request path without doubling
// the part they share: https://host/v1 with /v1/chat/completions gives
// https://host/v1/chat/completions, as does https://host with it, and
// https://host/openai/v1 gives https://host/openai/v1/chat/completions.
func joinURL(base, req *url.URL) *url.URL {
	baseSegs := splitPath(base.Path)
	reqSegs := splitPath(req.Path)
	overlap := 0
	for k := min(len(baseSegs), len(reqSegs)); k > 0; k-- {
		if slices.Equal(baseSegs[len(baseSegs)-k:], reqSegs[:k]) {
			overlap = k
			break
		}
	}
	u := *base
	u.RawPath = ""
	u.Path = "/" + strings.Join(append(baseSegs, reqSegs[overlap:]...), "/")
	if strings.HasSuffix(req.Path, "/") && len(reqSegs) > overlap {
		u.Path += "/"
	}
	switch {
	case base.RawQuery == "":
		u.RawQuery = req.RawQuery
	case req.RawQuery != "":
		u.RawQuery = base.RawQuery + "&" + req.RawQuery
	}
	return &u
}

// splitPath returns the non-empty segments of a URL path.
func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
}

// hopByHop are the headers that belong to one connection, not the message.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// copyHeader copies the end-to-end headers of src into dst.
func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
	for _, h := range hopByHop {
		dst.Del(h)
	}
}

// redactErr describes a transport error without the URL's password.
func redactErr(err error, u *url.URL) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return strings.ReplaceAll(err.Error(), u.String(), u.Redacted())
}
