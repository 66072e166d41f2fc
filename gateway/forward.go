package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/onwardsgo/pool"
)

// maxErrorBodyBytes bounds an upstream error answer kept while the walk
// tries the next provider.
const maxErrorBodyBytes = 1 << 20

// failure is why one try gave no answer for the client: an upstream answer
// the pool falls back on (resp, its body read), or an error of the
// gateway's (own).
type failure struct {
	resp *http.Response
	body []byte
	opts ResponseOptions // how to write resp
	own  *pool.AdmissionError
}

// forward walks the admitted pool's providers until one answers with a
// status the pool does not fall back on, and writes that answer, or else
// the last failure.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, req *request) {
	clock := req.adm.Pool.Clock()
	var last *failure      // nil: no provider had room
	var firstFail *Attempt // the first attempt that fell back, for a rescue
	it := h.walk(r, req)
	for {
		sel, ok := it.Next()
		if !ok {
			break
		}
		at := begin(it, sel, req)
		f, status, err := h.try(w, r, req, at)
		a := h.end(it, req, at, f, status, err, firstFail)
		if a.FellBack && firstFail == nil {
			firstFail = a
		}
		if f == nil {
			if errors.Is(err, ErrUpstreamBrokeOff) && r.Context().Err() == nil {
				panic(http.ErrAbortHandler) // the status is sent: abort the client's response
			}
			return // answered, or the client has left
		}
		last = f
		if !a.FellBack {
			break
		}
		if err := sleep(r.Context(), clock, a.Backoff); errors.Is(err, context.Canceled) {
			return // the client has left
		} else if err != nil {
			break // no time left for another attempt: answer with this one
		}
	}
	h.writeFailure(w, last)
}

// begin starts an attempt of the walk it at sel, with the first-token
// deadline and observation its pool asks for.
func begin(it *pool.SelectIter, sel pool.Selection, req *request) *attempt {
	return &attempt{sel: sel, obs: it.Observe(sel), deadline: firstTokenDeadline(req.adm.Pool, req, it.Last())}
}

// end ends the attempt at, which try gave f, status and err: it frees
// its slot, tells the pool how it went and reports it. firstFail is the
// walk's first attempt that fell back, if any, which an answer rescued.
// (A function of its own, so that none of this takes room on the stack
// under try, where a stream is held for as long as it lasts.)
func (h *Handler) end(it *pool.SelectIter, req *request, at *attempt, f *failure, status int, err error, firstFail *Attempt) *Attempt {
	sel := at.sel
	at.obs.Close()
	fellBack := f != nil && fallsBack(req.adm.Pool, req, f, err)
	sel.Report(outcome(status, err))
	sel.Close() // before any backoff: a waiting request holds no slot
	a := &Attempt{Alias: req.adm.Alias, Provider: sel.Index, Status: status, Err: err,
		Duration: req.adm.Pool.Clock().Now().Sub(at.start), FellBack: fellBack, Panic: sel.Panic(),
		FirstToken: at.firstToken, FirstTokenTimedOut: at.timedOut, Dispatched: req.dispatched}
	if fellBack {
		a.Backoff = it.Backoff()
	}
	if f == nil && err == nil && status/100 == 2 {
		a.RescuedFrom = firstFail
	}
	h.report(*a, sel.Target)
	return a
}

// walk returns the walk of the request's pool, told what the pool's
// strategy and load-aware controls weigh: the request's tokens, its
// class, whether it is a realtime strict stream, and its conversation.
func (h *Handler) walk(r *http.Request, req *request) *pool.SelectIter {
	pl := req.adm.Pool
	it := pl.SelectIter()
	if pl.Strategy() == pool.TokenAware {
		if req.estimate == 0 {
			req.estimate = estimateTokens(r.URL.Path, req.body, req.valid)
		}
		it.SetTokens(req.estimate)
	}
	if strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/v1/completions") {
		it.SetClass(pool.ClassCompletions)
	}
	if req.strict && req.stream && !req.dispatched {
		it.SetLoadAware()
	}
	if pl.HasAffinity() {
		if key, ok := ConversationKey(r.Header, req.body); ok {
			it.SetConversation(key)
		}
	}
	return it
}

// outcome is what an attempt tells outlier detection of its provider.
func outcome(status int, err error) pool.Outcome {
	switch {
	case errors.Is(err, ErrProviderRateLimited):
		return pool.RateLimited
	case errors.Is(err, context.Canceled):
		return pool.Cancelled
	case errors.Is(err, ErrUpstreamTimeout), errors.Is(err, ErrFirstTokenTimeout):
		return pool.Timeout
	case errors.Is(err, ErrUpstreamUnreachable), errors.Is(err, ErrUpstreamBrokeOff), errors.Is(err, ErrMalformedResponse):
		return pool.Failure
	case status == 0:
		return pool.Neutral // the request could not even be built
	}
	return pool.StatusOutcome(status)
}

// sleep waits d on clock, or less if ctx ends first. A wait that would run
// past ctx's deadline is not started: it returns DeadlineExceeded at once.
func sleep(ctx context.Context, clock pool.Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	if deadline, ok := ctx.Deadline(); ok && clock.Now().Add(d).After(deadline) {
		return context.DeadlineExceeded
	}
	done := make(chan struct{})
	stop := clock.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		stop()
		return ctx.Err()
	}
}

// try sends the request to one provider. It returns a nil failure when it
// wrote the answer (the error then says how the copy ended), or else the
// failure to record and why; and the upstream's status, or 0.
func (h *Handler) try(w http.ResponseWriter, r *http.Request, req *request, at *attempt) (*failure, int, error) {
	t := at.sel.Target
	if t.RateLimiter != nil && !t.RateLimiter.Allow() {
		return rateLimited(t), 0, ErrProviderRateLimited
	}
	resp, f, err := h.call(r, req, at)
	if resp == nil {
		return f, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		coolDown(req, at, resp)
	}
	if fallsBackOnStatus(req, resp.StatusCode) {
		return fellBackOn(r, req, t, resp), resp.StatusCode, nil
	}
	if req.tokens {
		return nil, resp.StatusCode, copySettling(w, r, req, t, resp)
	}
	return nil, resp.StatusCode, CopyResponse(w, resp, responseOptions(r, req, t))
}

// The helpers of try below are functions of their own so that try's
// frame, on the stack under a stream for as long as the stream lasts,
// holds nothing of theirs.

// rateLimited is the failure of a provider over its own rate limit.
func rateLimited(t *pool.Target) *failure {
	return &failure{own: errProviderRate(pool.RateLimitDelay(t.RateLimiter))}
}

// coolDown rests the provider of at for as long as resp's Retry-After
// asks, if it does.
func coolDown(req *request, at *attempt, resp *http.Response) {
	if wait, ok := RetryAfter(resp.Header, req.adm.Pool.Clock().Now()); ok {
		at.sel.CoolDown(wait)
	}
}

// fellBackOn returns the failure of an answer the pool falls back on,
// with its body read (up to maxErrorBodyBytes) to write it if it is the
// last.
func fellBackOn(r *http.Request, req *request, t *pool.Target, resp *http.Response) *failure {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	return &failure{resp: resp, body: body, opts: responseOptions(r, req, t)}
}

// copySettling copies the answer as CopyResponse does, and settles the
// request's token reservation with the usage it reports.
func copySettling(w http.ResponseWriter, r *http.Request, req *request, t *pool.Target, resp *http.Response) error {
	tap := newUsageReader(resp.Body, isEventStream(resp.Header), req.stripUsage)
	resp.Body = readCloser{tap, resp.Body}
	err := CopyResponse(w, resp, responseOptions(r, req, t))
	if used, ok := tap.usage(); ok {
		req.adm.SettleTokens(used)
	}
	return err
}

// call sends the request of at and waits for the answer's headers and,
// for a strict-mode stream that is observed or has a first-token
// deadline, its first data frame. It returns the answer, or the failure
// to record and why.
func (h *Handler) call(r *http.Request, req *request, at *attempt) (*http.Response, *failure, error) {
	ctx, cancel := attemptContext(r.Context(), at)
	up, err := newUpstreamRequest(ctx, r, at.sel.Target, req.body, req.valid)
	if err != nil {
		cancel(nil)
		return nil, &failure{own: errUnreachable()}, err
	}
	clock := req.adm.Pool.Clock()
	at.start = clock.Now()
	stop := func() bool { return true }
	if at.deadline > 0 {
		stop = clock.AfterFunc(at.deadline, func() { cancel(errFirstTokenCause) })
	}
	resp, err := send(sender{client: h.Client, rt: h.Transport}, up, cancel, at.sel.Target.RequestTimeout, clock)
	switch {
	case errors.Is(context.Cause(ctx), errFirstTokenCause):
		return nil, at.expired(resp), fmt.Errorf("%w after %v", ErrFirstTokenTimeout, at.deadline)
	case errors.Is(err, ErrUpstreamTimeout):
		stop()
		return nil, &failure{own: errTimeout()}, err
	case errors.Is(err, context.Canceled) || r.Context().Err() != nil:
		stop()
		return nil, nil, context.Canceled
	case err != nil:
		stop()
		return nil, &failure{own: errUnreachable()}, err
	}
	at.sel.ReportLatency(clock.Now().Sub(at.start)) // to the headers: p2c_ewma weighs by it
	if resp.StatusCode >= 400 {
		at.obs.Status(resp.StatusCode)
	} else if req.strict && isEventStream(resp.Header) && (at.deadline > 0 || at.obs != nil) {
		if found, _ := leadFrame(resp); found {
			at.firstToken = clock.Now().Sub(at.start)
			at.obs.Frame()
		}
	}
	if !stop() { // the deadline fired as the headers or the frame arrived
		return nil, at.expired(resp), fmt.Errorf("%w after %v", ErrFirstTokenTimeout, at.deadline)
	}
	return resp, nil, nil
}

// attemptContext returns the context of the upstream call of at, and its
// cancel function. Only a call that a timer may end, by its first-token
// deadline or its provider's request_timeout, gets a context of its own;
// any other runs in the client's, which ends it when the client leaves,
// and its cancel function does nothing. A context of its own costs each
// request a registration with the client's and half a dozen allocations.
func attemptContext(client context.Context, at *attempt) (context.Context, context.CancelCauseFunc) {
	if at.deadline > 0 || at.sel.Target.RequestTimeout > 0 {
		return context.WithCancelCause(client)
	}
	return client, func(error) {}
}

// expired records that the first-token deadline of at expired, drops the
// upstream's answer if it had begun, and returns the failure.
func (at *attempt) expired(resp *http.Response) *failure {
	if resp != nil {
		resp.Body.Close()
	}
	at.timedOut = true
	at.obs.Deadline()
	return &failure{own: errTimeout()}
}

// fallsBackOnStatus reports whether an upstream status moves the request
// on: by the pool's on_status, and for a realtime request its
// realtime_on_status too.
func fallsBackOnStatus(req *request, status int) bool {
	if req.dispatched {
		return req.adm.Pool.ShouldFallbackOnStatus(status)
	}
	return req.adm.Pool.ShouldFallbackOnRealtimeStatus(status)
}

// readCloser is a body read from one reader and closed by another.
type readCloser struct {
	io.Reader
	io.Closer
}

func (rc readCloser) waitReadable() { waitReadable(rc.Reader) }

// responseOptions are the options of CopyResponse for an answer of t: its
// trust is its own trusted setting, else its pool's.
func responseOptions(r *http.Request, req *request, t *pool.Target) ResponseOptions {
	trusted := req.adm.Pool.IsTrusted()
	if t.Trusted != nil {
		trusted = *t.Trusted
	}
	return ResponseOptions{Path: r.URL.Path, Model: req.model, Sanitize: t.SanitizeResponse,
		Strict: req.strict, Trusted: trusted, Header: t.ResponseHeaders, Clock: req.adm.Pool.Clock()}
}

// fallsBack reports whether the walk moves on after failure f.
func fallsBack(pl *pool.ProviderPool, req *request, f *failure, err error) bool {
	switch {
	case errors.Is(err, ErrProviderRateLimited):
		return pl.ShouldFallbackOnRateLimit()
	case f.resp != nil:
		return fallsBackOnStatus(req, f.resp.StatusCode)
	default: // the upstream could not be reached or did not answer in time
		return pl.FallbackEnabled()
	}
}

// writeFailure writes the failure of the last try: the upstream's answer,
// treated as any answer is, or the gateway's own error; nil, when no
// provider had room, is the error that all are busy.
func (h *Handler) writeFailure(w http.ResponseWriter, f *failure) {
	if f == nil {
		f = &failure{own: errAllBusy()}
	}
	if f.own != nil {
		writeOwnError(w, f.own, nil)
		return
	}
	f.resp.Body = io.NopCloser(bytes.NewReader(f.body))
	f.resp.Header.Del("Content-Length")
	CopyResponse(w, f.resp, f.opts)
}

// report hands an attempt on target t to the hook and the log.
func (h *Handler) report(a Attempt, t *pool.Target) {
	if h.OnAttempt == nil && h.Log == nil {
		return // no one to tell: spare the URL's string
	}
	a.URL = t.URL.Redacted()
	if h.OnAttempt != nil {
		h.OnAttempt(a)
	}
	if h.Log != nil {
		h.Log.Info("attempt", "alias", a.Alias, "provider", a.Provider, "url", a.URL,
			"status", a.Status, "error", a.Err, "duration", a.Duration, "fell_back", a.FellBack)
	}
}
