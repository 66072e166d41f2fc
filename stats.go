package pool

import (
	"sync/atomic"
	"time"
)

// refusalCodes are the codes of the refusals Admit counts per alias.
var refusalCodes = []string{"invalid_api_key", "access_denied", "service_unavailable", "no_providers",
	"rate_limit_exceeded", "concurrency_limit_exceeded", "inflight_limit_exceeded", "batch_capacity_exceeded"}

// poolStats are the cumulative counts of a pool. A pool built by a reload
// shares the stats of the pool it replaces, so they never go back.
type poolStats struct {
	inflight atomic.Int64  // admitted requests not yet closed
	retries  atomic.Uint64 // attempts after the first
	backoff  atomic.Int64  // backoff handed out, in ns
	refused  map[string]*atomic.Uint64
}

func newPoolStats() *poolStats {
	s := &poolStats{refused: make(map[string]*atomic.Uint64, len(refusalCodes))}
	for _, code := range refusalCodes {
		s.refused[code] = new(atomic.Uint64)
	}
	return s
}

// refuse counts a refusal; a code outside refusalCodes is not counted.
func (s *poolStats) refuse(code string) {
	if c := s.refused[code]; c != nil {
		c.Add(1)
	}
}

func (s *poolStats) addBackoff(d time.Duration) { s.backoff.Add(int64(d)) }
