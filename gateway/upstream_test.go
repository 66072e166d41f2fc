package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
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

// FuzzJoinURL holds JoinURL to joinURLBySplitting, the plain form it
// replaced (which split both paths into slices of segments), on any two
// URLs: the join of paths and of queries must be the same.
func FuzzJoinURL(f *testing.F) {
	for _, seed := range [][2]string{
		{"https://h/v1/", "/v1/chat/completions"}, {"https://h/openai/v1/?key=1", "/v1/x?y=2"},
		{"https://h", "/"}, {"https://h//a//b/", "//b//c//"}, {"https://h/a/%2F/b/", "/b/c/"},
		{"https://h/" + strings.Repeat("s/", 20), "/" + strings.Repeat("s/", 20) + "t"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, rawBase, rawReq string) {
		base, err := url.Parse(rawBase)
		if err != nil {
			t.Skip()
		}
		req, err := url.Parse(rawReq)
		if err != nil {
			t.Skip()
		}
		got, want := JoinURL(base, req), joinURLBySplitting(base, req)
		if *got != *want {
			t.Fatalf("JoinURL(%q, %q) = %#v, want %#v", rawBase, rawReq, got, want)
		}
	})
}

// joinURLBySplitting is JoinURL as it was first written, kept as the
// reference of FuzzJoinURL.
func joinURLBySplitting(base, req *url.URL) *url.URL {
	split := func(p string) []string { return strings.FieldsFunc(p, func(r rune) bool { return r == '/' }) }
	baseSegs, reqSegs := split(base.Path), split(req.Path)
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

// TestJoinURLAllocs: a join allocates its URL and its path, however many
// segments the paths have up to 16.
func TestJoinURLAllocs(t *testing.T) {
	base, _ := url.Parse("https://h/openai/v1/")
	req, _ := url.Parse("/v1/chat/completions?x=1")
	if n := testing.AllocsPerRun(100, func() { JoinURL(base, req) }); n > 2 {
		t.Errorf("JoinURL allocates %v times, want at most 2", n)
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
