package pool

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewTarget(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://api.example.com":            "https://api.example.com/",
		"https://api.example.com/":           "https://api.example.com/",
		"https://api.openai.com/v1":          "https://api.openai.com/v1/",
		"http://127.0.0.1:8000/v1/":          "http://127.0.0.1:8000/v1/",
		"HTTPS://Host.example.com/a%2Fb":     "https://Host.example.com/a%2Fb/",
		"https://x.example.com/v1?api-ver=1": "https://x.example.com/v1/?api-ver=1",
	} {
		target, err := NewTarget(raw)
		require.NoError(t, err, raw)
		assert.Equal(t, want, target.URL.String(), raw)
	}
}

func TestNewTargetErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ raw, want string }{
		{"", "url is empty"},
		{"   ", "url is empty"},
		{"api.example.com/v1", "has no scheme"},
		{"/v1/chat", "has no scheme"},
		{"ftp://files.example.com", `has scheme "ftp"`},
		{"https://", "has no host"},
		{"https:///v1", "has no host"},
		{"https://api.example.com/%zz", "url is not valid"},
		{"https://user:hunter2@api.example.com/%zz", "url is not valid"},
		{"ftp://user:hunter2@api.example.com", `has scheme "ftp"`},
	}
	for _, tt := range tests {
		target, err := NewTarget(tt.raw)
		assert.Nil(t, target, tt.raw)
		require.Error(t, err, tt.raw)
		assert.Contains(t, err.Error(), tt.want, tt.raw)
		assert.Contains(t, err.Error(), "pool: ", "errors name the package")
		assert.NotContains(t, err.Error(), "hunter2", "errors never repeat a password")
	}
}

func TestProviderStructLiteral(t *testing.T) {
	t.Parallel()
	// A Provider without a constructor has no concurrency limit and works.
	pr := &Provider{Target: newTestTarget(t, "https://api.example.com"), Weight: 2}
	p := newTestPool(t, []*Provider{pr})
	held := hold(t, p, 100)
	assert.Equal(t, 100, pr.ActiveConnections())
	closeAll(held)
	assert.Equal(t, 0, pr.ActiveConnections())
}

func TestProviderSharedByTwoPools(t *testing.T) {
	t.Parallel()
	pr := NewProviderWithConcurrencyLimit(newTestTarget(t, "https://api.example.com"), 1, 1)
	a := newTestPool(t, []*Provider{pr})
	b := newTestPool(t, []*Provider{pr}, WithStrategy(Priority))
	sel, ok := a.Select()
	require.True(t, ok)
	_, ok = b.Select()
	assert.False(t, ok, "the pools share the provider's counter and limit")
	sel.Close()
	sel, ok = b.Select()
	require.True(t, ok)
	sel.Close()
}

func TestTargetAuthHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, name, prefix string
		wantName, wantVal string
	}{
		{"", "", "", "", ""},
		{"", "x-api-key", "", "", ""},
		{"sk-1", "", "", "Authorization", "Bearer sk-1"},
		{"sk-1", "", "Token ", "Authorization", "Token sk-1"},
		{"sk-1", "x-api-key", "", "x-api-key", "sk-1"},
		{"sk-1", "api-key", "Key ", "api-key", "Key sk-1"},
	}
	for _, tt := range tests {
		target := &Target{UpstreamKey: tt.key, UpstreamAuthHeaderName: tt.name, UpstreamAuthHeaderPrefix: tt.prefix}
		name, value := target.AuthHeader()
		assert.Equal(t, tt.wantName, name, "%+v", tt)
		assert.Equal(t, tt.wantVal, value, "%+v", tt)
	}
}
