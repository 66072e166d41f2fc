package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/onwardsgo/pool"
)

// DefaultMaxBodyBytes is the largest request body a [Handler] reads when
// its MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 32 << 20

// Handler is an OpenAI-compatible gateway over a registry of pools: mount
// it on a server and it serves GET /v1/models, GET /v1/models/{id}, and
// forwards every other request to a provider of the pool the request's
// model names.
//
// For a forwarded request it reads the model from the Model-Override
// header or else the JSON body's "model", admits the request
// ([pool.Registry.Admit]), and walks the pool's providers
// ([pool.ProviderPool.Attempts]) until one gives an answer the pool does
// not fall back on. See [NewUpstreamRequest], [Send] and [CopyResponse]
// for what each try does. Every slot the request takes is held until the
// answer, streamed or not, is fully written or the client has left.
//
// The config's strict_mode and each provider's sanitize_response and
// trusted settings apply as in onwards (see [ResponseOptions]); they are
// read per request, so a reload changes them.
//
// Errors are OpenAI's error JSON and never name an upstream, an address or
// a key: a provider that cannot be reached is a 503, one that does not
// answer in time a 504, and every 429 carries Retry-After.
//
// The zero Handler has no registry and answers 503 to every request. A
// Handler is safe for simultaneous use by multiple goroutines; do not
// change its fields while it serves.
type Handler struct {
	// Registry holds the pools by alias. Reload it to change the config.
	Registry *pool.Registry

	// Client sends the upstream requests unless Transport is set. Nil: a
	// client shared by every Handler, made once by [NewClient].
	// [NewClientFor] makes one with the idle pool of a config's http_pool.
	// (For [Transport], which keeps no goroutine per connection, set the
	// Transport field instead.) A client of your own should, as
	// NewClient's does, follow no redirect (a CheckRedirect that returns
	// [http.ErrUseLastResponse]); one that does sends the request where an
	// upstream's Location says. Its Timeout, if any, bounds each request
	// to the end of its body, streams included: leave it 0 and bound the
	// wait for headers with each provider's request_timeout_secs.
	Client *http.Client

	// Transport, when set, sends the upstream requests in Client's place:
	// the Handler calls its RoundTrip itself, which spares an http.Client's
	// work on each request (about 2 µs and 8 allocations in
	// BenchmarkHandler). No redirect is followed, an upstream's 3xx being
	// the answer; no cookie is kept; and a password in a provider's URL
	// becomes Basic authorization when the request has no other, as a
	// Client does. [Transport] is the one to use here:
	//
	//	h := &gateway.Handler{Registry: reg, Transport: new(gateway.Transport)}
	//
	// Nil: Client sends them.
	Transport http.RoundTripper

	// Log gets a line per attempt and per refusal. Nil: no logging. Lines
	// may name upstream URLs (without passwords), never a key.
	Log *slog.Logger

	// OnAttempt, when set, is called after each try of a provider, from
	// the request's goroutine. It must not block for long.
	OnAttempt func(Attempt)

	// MaxBodyBytes bounds the request body. 0: DefaultMaxBodyBytes.
	MaxBodyBytes int64

	// DispatchedHeader names the header that marks a request as
	// dispatched (batch) work, onwards' first-token-timeout-exempt header:
	// such a request is counted against the alias's batch_inflight_limit
	// instead of its account's inflight_limit, has no first-token deadline,
	// is not steered by the AIMD share, and falls back on on_status only,
	// not realtime_on_status. Empty: every request is realtime.
	DispatchedHeader string
}

// ServeHTTP serves one request; see [Handler].
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := h.admitted(w, r)
	if req == nil {
		return
	}
	defer req.adm.Close()
	h.forward(w, r, req)
}

// admitted reads and admits the request; or else it answers it, and
// returns nil. (Apart from ServeHTTP, so that none of this takes room on
// the stack under forward, where a stream is held for as long as it
// lasts.)
func (h *Handler) admitted(w http.ResponseWriter, r *http.Request) *request {
	if h.Registry == nil || h.Registry.Config() == nil {
		apiError(http.StatusServiceUnavailable, "service_unavailable", "server_error",
			"The gateway has no configuration loaded yet; try again shortly.").ServeHTTP(w, r)
		return nil
	}
	if r.Method == http.MethodGet {
		switch path := strings.TrimSuffix(r.URL.Path, "/"); {
		case path == pathModels:
			h.listModels(w)
			return nil
		case strings.HasPrefix(path, pathModels+"/"):
			h.getModel(w, strings.TrimPrefix(path, pathModels+"/"))
			return nil
		}
	}
	strict := h.Registry.Config().StrictMode
	if strict && (r.Method != http.MethodPost || !strictPath(r.URL.Path)) {
		apiError(http.StatusNotFound, "not_found", "invalid_request_error",
			"This gateway serves only POST /v1/chat/completions, /v1/embeddings, /v1/responses and GET /v1/models.").ServeHTTP(w, r)
		return nil
	}
	req, aerr := h.readRequest(w, r)
	if aerr == nil && strict {
		aerr = validateRequest(r.URL.Path, req.body)
	}
	if aerr == nil {
		req.strict = strict
		aerr = h.admit(r, req)
	}
	if aerr != nil {
		h.refuse(w, r, aerr)
		return nil
	}
	return req
}

// admit admits the request, holds its in-flight slot and reserves its
// tokens; on a refusal it has released whatever it took.
func (h *Handler) admit(r *http.Request, req *request) *pool.AdmissionError {
	adm, err := h.Registry.Admit(req.route, bearerToken(r))
	if err != nil {
		return asAdmissionError(err)
	}
	req.adm = adm
	if h.DispatchedHeader != "" {
		_, req.dispatched = r.Header[http.CanonicalHeaderKey(h.DispatchedHeader)]
	}
	req.stream = isStream(req.body, req.valid)
	if err := adm.HoldInflight(req.dispatched); err != nil {
		adm.Close()
		return asAdmissionError(err)
	}
	if adm.TokenLimited() {
		if err := h.reserveTokens(r, req); err != nil {
			adm.Close()
			return err
		}
	}
	return nil
}

// asAdmissionError returns the *pool.AdmissionError that err is, or a
// 500 that says nothing more if it is another error.
func asAdmissionError(err error) *pool.AdmissionError {
	var ae *pool.AdmissionError
	if !errors.As(err, &ae) {
		ae = apiError(http.StatusInternalServerError, "internal_error", "server_error", "The request could not be admitted.")
	}
	return ae
}

// reserveTokens reserves the request's estimated tokens on its token
// limits and, for a stream, asks the upstream for the usage to settle
// them with, which the client then does not see unless it asked too.
func (h *Handler) reserveTokens(r *http.Request, req *request) *pool.AdmissionError {
	req.estimate = estimateTokens(r.URL.Path, req.body, req.valid)
	if err := req.adm.ReserveTokens(req.estimate); err != nil {
		return asAdmissionError(err)
	}
	req.tokens = true
	if req.valid {
		req.body, req.stripUsage = askUsage(req.body)
	}
	return nil
}

// request is what the gateway has read of a client's request.
type request struct {
	body   []byte
	valid  bool   // body is valid JSON: readRequest checked it
	route  string // the model that selects the pool: Model-Override, else the body's
	model  string // the model the client named, written into sanitized answers
	strict bool
	adm    *pool.Admission
	// tokens is set when the request holds a token reservation, which the
	// answer's usage settles; stripUsage when the gateway asked a stream
	// for the usage that the client did not.
	tokens, stripUsage bool
	estimate           int64 // EstimateTokens of the body, once needed; 0 before
	stream             bool  // the body asks for a stream
	dispatched         bool  // the request carries the DispatchedHeader
}

// readRequest reads the body and the model of a request to forward.
func (h *Handler) readRequest(w http.ResponseWriter, r *http.Request) (*request, *pool.AdmissionError) {
	limit := h.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, limit), r.ContentLength, limit)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, apiError(http.StatusRequestEntityTooLarge, "request_too_large", "invalid_request_error",
				fmt.Sprintf("The request body is over %d bytes; send a smaller one.", tooBig.Limit))
		}
		return nil, apiError(http.StatusBadRequest, "invalid_body", "invalid_request_error", "The request body could not be read.")
	}
	req := &request{body: body, route: r.Header.Get("Model-Override")}
	if len(bytes.TrimSpace(body)) > 0 {
		// With Model-Override, a body that is not JSON is passed on as it is.
		if valid := validJSON(body); valid || req.route == "" {
			var e *pool.AdmissionError
			if req.model, e = bodyModel(body, valid); e != nil {
				return nil, e
			}
			req.valid = true
		}
	}
	if req.route == "" {
		req.route = req.model
	}
	if req.model == "" {
		req.model = req.route
	}
	return req, nil
}

// readBody reads body whole. With a declared length within limit, as
// clients send, it reads into one buffer of that length: one allocation,
// not the dozen of growing a buffer from 512 bytes. A body that holds more
// than it declared (net/http's server ends it at the declared length) is
// read on; one that holds less is an error.
func readBody(body io.Reader, declared, limit int64) ([]byte, error) {
	if declared <= 0 || declared > limit {
		return io.ReadAll(body)
	}
	buf := make([]byte, declared, declared+1) // and room to see the end
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	switch n, err := body.Read(buf[declared : declared+1]); {
	case n == 0 && err == io.EOF:
		return buf, nil
	case err != nil && err != io.EOF:
		return nil, err
	default:
		rest, err := io.ReadAll(body)
		return append(buf[:declared+int64(n)], rest...), err
	}
}

// bearerToken returns the token of an "Authorization: Bearer" header, or "".
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// refuse writes an error of the gateway's for a request it did not forward.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, e *pool.AdmissionError) {
	if h.Log != nil {
		h.Log.Info("refused", "method", r.Method, "path", r.URL.Path, "status", e.Status, "code", e.Code)
	}
	e.ServeHTTP(w, r)
}

// model is an entry of /v1/models, in OpenAI's shape.
type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func newModel(alias string) model {
	return model{ID: alias, Object: "model", OwnedBy: "onwards"}
}

// listModels writes every alias in OpenAI's list shape.
func (h *Handler) listModels(w http.ResponseWriter) {
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, alias := range h.Registry.Aliases() {
		list.Data = append(list.Data, newModel(alias))
	}
	writeJSON(w, list)
}

// getModel writes one alias, or a 404 for an unknown one.
func (h *Handler) getModel(w http.ResponseWriter, id string) {
	if _, ok := h.Registry.Pool(id); !ok {
		e := apiError(http.StatusNotFound, "model_not_found", "invalid_request_error",
			fmt.Sprintf("The model %q does not exist; list the models at /v1/models.", id))
		e.Param = "model"
		e.ServeHTTP(w, nil)
		return
	}
	writeJSON(w, newModel(id))
}

func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		apiError(http.StatusInternalServerError, "internal_error", "server_error", "The answer could not be encoded.").ServeHTTP(w, nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(body, '\n'))
}
