package gateway

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestIsEventStream(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]bool{
		"text/event-stream":                true,
		"text/event-stream; charset=utf-8": true,
		"Text/Event-Stream":                true,
		"text/event-stream;charset=UTF-8":  true,
		"application/json":                 false,
		"application/json; charset=utf-8":  false,
		"":                                 false,
		"text/plain":                       false,
		"text/event-streams":               false,
		"not a media type;;":               false,
	} {
		assert.Equal(t, want, isEventStream(http.Header{"Content-Type": {ct}}), "Content-Type %q", ct)
	}
	assert.False(t, isEventStream(http.Header{}), "no Content-Type")
}

func TestHideUpstreamLocation(t *testing.T) {
	t.Parallel()
	up, err := http.NewRequest(http.MethodPost, "http://up.internal:8000/v1/chat/completions", nil)
	if err != nil {
		t.Fatal(err)
	}
	for loc, want := range map[string]string{
		"http://up.internal:8000/v1/x?a=1#f": "/v1/x?a=1#f",
		"https://UP.internal:8000/v1/x":      "/v1/x", // the host, whatever the scheme or case
		"//up.internal:8000/v1/x":            "/v1/x",
		"http://up.internal:8000":            "/",
		"http://up.internal:8000//evil.com/": "/evil.com/", // not a path to another host
		"http://up.internal:8000/%5Cevil":    "/%5Cevil",
		"/v1/relative":                       "/v1/relative",
		"https://login.example.com/start":    "https://login.example.com/start",
		"http://up.internal:9000/other-port": "http://up.internal:9000/other-port",
		"http://[::1":                        "http://[::1", // not a URL: left alone
	} {
		h := http.Header{"Location": {loc}}
		hideUpstreamLocation(h, up)
		assert.Equal(t, want, h.Get("Location"), loc)
	}
	h := http.Header{"Location": {"http://up.internal:8000/x"}}
	hideUpstreamLocation(h, nil)
	assert.Equal(t, "http://up.internal:8000/x", h.Get("Location"), "no upstream request: nothing to compare with")
}
