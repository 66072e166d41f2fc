package gateway

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onwardsgo/pool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// NewClientFor and NewTransportFor read a config's http_pool alike: the
// fields as set, and, the proof, as many connections reopened as the pool
// does not keep.
func TestHTTPPoolBuildsTheIdlePool(t *testing.T) {
	n := func(v int) *int { return &v }
	for _, tc := range []struct {
		name     string
		spec     *pool.HTTPPoolSpec
		perHost  int
		idle     time.Duration
		parallel int // requests at once, then how many connections the next round opens
		reopened int
	}{
		{"defaults", nil, 100, 90 * time.Second, 3, 0},
		{"left out", &pool.HTTPPoolSpec{}, 100, 90 * time.Second, 3, 0},
		{"as given", &pool.HTTPPoolSpec{MaxIdlePerHost: n(2000), IdleTimeoutSecs: n(30)}, 2000, 30 * time.Second, 3, 0},
		{"one per host", &pool.HTTPPoolSpec{MaxIdlePerHost: n(1)}, 1, 90 * time.Second, 3, 2},
		{"none per host", &pool.HTTPPoolSpec{MaxIdlePerHost: n(0)}, -1, 0, 3, 3},
		{"no idle time", &pool.HTTPPoolSpec{IdleTimeoutSecs: n(0)}, -1, 0, 3, 3},
	} {
		for _, build := range []string{"NewClientFor", "NewTransportFor"} {
			t.Run(tc.name+"/"+build, func(t *testing.T) {
				var c *http.Client
				if build == "NewClientFor" {
					c = NewClientFor(tc.spec)
					tr := c.Transport.(*http.Transport)
					assert.Equal(t, tc.perHost, tr.MaxIdleConnsPerHost)
					assert.Equal(t, tc.idle, tr.IdleConnTimeout)
					assert.Equal(t, 0, tr.MaxIdleConns, "no cap over all hosts")
					assert.ErrorIs(t, c.CheckRedirect(nil, nil), http.ErrUseLastResponse, "redirects are not followed")
				} else {
					tr := NewTransportFor(tc.spec)
					assert.Equal(t, tc.perHost, tr.MaxIdleConnsPerHost)
					if tc.perHost > 0 {
						assert.Equal(t, tc.idle, tr.IdleConnTimeout)
					}
					c = &http.Client{Transport: tr, CheckRedirect: noRedirect}
				}
				defer c.CloseIdleConnections()
				idlePoolRounds(t, c, tc.parallel, tc.reopened)
			})
		}
	}
}

// idlePoolRounds sends two rounds of parallel requests with c and checks
// that the second opens reopened connections: those the first did not
// keep idle.
func idlePoolRounds(t *testing.T, c *http.Client, parallel, reopened int) {
	t.Helper()
	block := make(chan struct{})
	arrived := make(chan struct{}, parallel)
	s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-block
	})
	round := func() {
		done := make(chan struct{}, parallel)
		for range parallel {
			go func() {
				defer func() { done <- struct{}{} }()
				resp, err := c.Post(s.URL, "text/plain", nil)
				if assert.NoError(t, err) {
					resp.Body.Close()
				}
			}()
		}
		for range parallel {
			<-arrived
		}
		for range parallel {
			block <- struct{}{}
		}
		for range parallel {
			<-done
		}
	}
	round()
	first, _ := s.counts()
	require.Equal(t, parallel, first)
	s.awaitOpen(t, parallel-reopened) // those not kept are closed
	round()
	opened, _ := s.counts()
	assert.Equal(t, parallel+reopened, opened)
}

// A Client and a RoundTripper called directly send the Handler's requests
// alike: a password in the URL becomes Basic authorization unless the
// request has its own, and a redirect is the answer, not followed.
func TestSendersAgree(t *testing.T) {
	t.Parallel()
	s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(http.StatusTemporaryRedirect)
			return
		}
		io.WriteString(w, r.Header.Get("Authorization"))
	})
	client, netTransport, transport := NewClient(), http.DefaultTransport.(*http.Transport).Clone(), new(Transport)
	t.Cleanup(func() {
		client.CloseIdleConnections()
		netTransport.CloseIdleConnections()
		transport.CloseIdleConnections()
	})
	withPassword := strings.Replace(s.URL, "http://", "http://user:pw-secret@", 1)
	for name, snd := range map[string]sender{
		"NewClient": {client: client}, "gateway.Transport": {rt: transport}, "net/http Transport": {rt: netTransport},
	} {
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct{ url, auth, want string }{
				{withPassword, "", "Basic " + base64.StdEncoding.EncodeToString([]byte("user:pw-secret"))},
				{withPassword, "Bearer sk-up", "Bearer sk-up"},
				{s.URL, "", ""},
			} {
				req, err := http.NewRequest(http.MethodPost, tc.url, strings.NewReader("{}"))
				require.NoError(t, err)
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				resp, err := snd.do(req)
				require.NoError(t, err)
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				assert.Equal(t, tc.want, string(body))
			}
			req, err := http.NewRequest(http.MethodPost, s.URL+"/moved", strings.NewReader("{}"))
			require.NoError(t, err)
			resp, err := snd.do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
			assert.Equal(t, "/elsewhere", resp.Header.Get("Location"))
		})
	}
}

// roundTripFunc is a RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// closeCounter is a response body that counts its closes.
type closeCounter struct {
	io.Reader
	closed atomic.Int32
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }

// A RoundTripper that breaks its contract gives the Handler an error, as
// an http.Client would, and never a response it cannot read.
func TestRoundTripBrokenContract(t *testing.T) {
	t.Parallel()
	req := func() *http.Request {
		r, err := http.NewRequest(http.MethodPost, "http://upstream.test/v1", strings.NewReader("{}"))
		require.NoError(t, err)
		return r
	}
	_, err := roundTrip(roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil }), req())
	assert.ErrorContains(t, err, "neither a response nor an error")

	_, err = roundTrip(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, ContentLength: 5}, nil
	}), req())
	assert.ErrorContains(t, err, "5 bytes with no body")

	resp, err := roundTrip(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusNoContent}, nil
	}), req())
	require.NoError(t, err)
	assert.Equal(t, http.NoBody, resp.Body, "an empty answer gets a body to read")

	body := &closeCounter{Reader: strings.NewReader("late")}
	failed := errors.New("connection reset")
	resp, err = roundTrip(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Body: body}, failed
	}), req())
	assert.Nil(t, resp)
	assert.ErrorIs(t, err, failed)
	assert.Equal(t, int32(1), body.closed.Load(), "the answer that came with the error is closed")
}
