package gateway

import (
	"net/http"
	"testing"
	"time"

	"github.com/onwardsgo/pool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewClientForHTTPPool(t *testing.T) {
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
		t.Run(tc.name, func(t *testing.T) {
			c := NewClientFor(tc.spec)
			defer c.CloseIdleConnections()
			tr := c.Transport.(*http.Transport)
			assert.Equal(t, tc.perHost, tr.MaxIdleConnsPerHost)
			assert.Equal(t, tc.idle, tr.IdleConnTimeout)
			assert.Equal(t, 0, tr.MaxIdleConns, "no cap over all hosts")
			assert.ErrorIs(t, c.CheckRedirect(nil, nil), http.ErrUseLastResponse, "redirects are not followed")

			// Behaviour: three requests at once open three connections;
			// the next three reuse those kept idle and open the rest.
			block := make(chan struct{})
			arrived := make(chan struct{}, tc.parallel)
			s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				<-block
			})
			round := func() {
				done := make(chan struct{}, tc.parallel)
				for range tc.parallel {
					go func() {
						defer func() { done <- struct{}{} }()
						resp, err := c.Post(s.URL, "text/plain", nil)
						if assert.NoError(t, err) {
							resp.Body.Close()
						}
					}()
				}
				for range tc.parallel {
					<-arrived
				}
				for range tc.parallel {
					block <- struct{}{}
				}
				for range tc.parallel {
					<-done
				}
			}
			round()
			first, _ := s.counts()
			require.Equal(t, tc.parallel, first)
			s.awaitOpen(t, tc.parallel-tc.reopened) // those not kept are closed
			round()
			opened, _ := s.counts()
			assert.Equal(t, tc.parallel+tc.reopened, opened)
		})
	}
}
