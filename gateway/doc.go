// Package gateway forwards OpenAI-compatible requests to the providers of a
// [pool.Registry], as onwards' handler does.
//
// # The handler
//
// [Handler] is a [net/http.Handler] over a registry:
//
//	http.ListenAndServe(addr, &gateway.Handler{Registry: reg})
//
// GET /v1/models lists the aliases and GET /v1/models/{id} gives one. Every
// other request is forwarded: the model comes from the Model-Override header
// or the JSON body's "model"; the registry admits the request
// ([pool.Registry.Admit]); then the pool's fallback walk tries providers in
// turn, each attempt with the provider's own rate limit, the URL joined
// without a doubled prefix ([JoinURL]), the body's model rewritten to the
// provider's ([RewriteModel]), the provider's key in its auth header and the
// client's credentials, cookies, browser context and hop-by-hop headers
// left behind. A stream is flushed event by event, and every slot is held
// until the answer's last byte, or until the client leaves.
//
// # Answers and errors
//
// Errors are OpenAI's error JSON and never hold an upstream address, a
// dial error or a key; [Handler].Log gets the detail. An unreachable
// upstream is a 503, a provider that sends no headers within its timeout a
// 504, and every 429 carries Retry-After. An upstream that breaks off a
// stream aborts the client's response, so that the client sees an error,
// not a clean end. With sanitize_response, answers are re-encoded with
// OpenAI's fields only and the model the client asked for; strict_mode
// also serves only the OpenAI endpoints it knows and checks requests
// against their schema before any upstream is called.
//
// # The upstream call
//
// By default the handler calls upstreams with [NewClient]'s client, which
// follows no redirect. [Transport] is an HTTP/1.1 [net/http.RoundTripper]
// that does each exchange on the calling goroutine, with fewer goroutines
// and less memory per stream than net/http's; set it as [Handler].Transport,
// built by [NewTransportFor] from a config's http_pool.
//
// # Load-aware failover
//
// A pool's fallback.first_token_timeout_ms bounds a realtime stream's wait
// for its headers and, in strict mode, its first data frame; on expiry the
// next provider is tried ([ErrFirstTokenTimeout]). [Handler].DispatchedHeader
// tells batch work from realtime, for realtime_on_status, the in-flight
// limits and the AIMD share, which strict realtime streams steer and feed.
// [ConversationKey] names a request's conversation for a pool's affinity.
//
// # Parts for a handler of your own
//
// [NewUpstreamRequest], [Send] and [CopyResponse] are the steps of one
// attempt, for a handler that walks the pool itself; [Handler].OnAttempt
// reports each attempt of the Handler's own walk, for logs and metrics.
//
// The repository's docs/gateway.md lists every behaviour, and how it
// differs from onwards.
package gateway
