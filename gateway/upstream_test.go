package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/onwardsgo/pool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJoinURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ base, req, want string }{
		{"https://h/v1/", "/v1/chat/completions", "https://h/v1/chat/completions"},
		{"https://h/", "/v1/chat/completions", "https://h/v1/chat/completions"},
		{"https://h/openai/v1/", "/v1/chat/completions", "https://h/openai/v1/chat/completions"},
		{"https://h/openai/", "/v1/models", "https://h/openai/v1/models"},
		{"https://h/v1/?key=1", "/v1/x?y=2", "https://h/v1/x?key=1&y=2"},
		{"https://h/v1/", "/v1/files/", "https://h/v1/files/"},
		{"https://h/v1/", "/v1", "https://h/v1"},
	} {
		base, err := url.Parse(tc.base)
		require.NoError(t, err)
		req, err := url.Parse(tc.req)
		require.NoError(t, err)
		assert.Equal(t, tc.want, JoinURL(base, req).String(), "%s + %s", tc.base, tc.req)
	}
}

func TestCopyHeader(t *testing.T) {
	t.Parallel()
	src := http.Header{
		"Connection":        {"x-listed, Keep-Alive", "X-Also"},
		"X-Listed":          {"connection's"},
		"X-Also":            {"connection's"},
		"Keep-Alive":        {"timeout=5"},
		"Transfer-Encoding": {"chunked"},
		"Authorization":     {"Bearer sk-client"},
		"authorization":     {"Bearer sk-set-by-hand"}, // not canonical: still skipped
		"transfer-encoding": {"chunked"},
		"connection":        {"X-Lower-Listed"}, // listed under a spelling of its own
		"X-Lower-Listed":    {"connection's"},
		"X-Kept":            {"a", "b"},
		"Content-Type":      {"application/json"},
	}
	dst := http.Header{"X-Dst": {"own"}}
	copyHeader(dst, src, func(name string) bool { return name == "Authorization" })
	assert.Equal(t, http.Header{
		"X-Dst":        {"own"},
		"X-Kept":       {"a", "b"},
		"Content-Type": {"application/json"},
	}, dst, "hop-by-hop, Connection-listed and skipped names are left out, however spelt; dst's own stay")

	dst["X-Kept"][0] = "changed"
	dst.Add("X-Kept", "c")
	dst.Add("Content-Type", "text/plain")
	assert.Equal(t, []string{"a", "b"}, src["X-Kept"], "the values are copies")
	assert.Equal(t, []string{"application/json"}, src["Content-Type"], "appending to one value list leaves the next alone")
}

func TestNewUpstreamRequestNeedsATarget(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	for _, tgt := range []*pool.Target{nil, {}} {
		_, err := NewUpstreamRequest(context.Background(), r, tgt, nil)
		assert.ErrorContains(t, err, "pool.NewTarget")
	}
}

func TestSendErrorsHideTheURL(t *testing.T) {
	t.Parallel()
	tgt, err := pool.NewTarget("http://user:hunter2@127.0.0.1:1/v1")
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{}`))
	up, err := NewUpstreamRequest(context.Background(), r, tgt, []byte(`{}`))
	require.NoError(t, err)
	_, err = Send(nil, up, 0)
	require.ErrorIs(t, err, ErrUpstreamUnreachable)
	assert.NotContains(t, err.Error(), "hunter2")
	assert.NotContains(t, err.Error(), "http://")
}
