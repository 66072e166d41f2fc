package pool

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onwardsgo/pool/internal/fakeclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTokenLimiterReserveRefusesWithTheWait(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	l := NewTokenLimiter(600, 1000, clock) // 10 tokens a second
	r, _, ok := l.Reserve(900)
	require.True(t, ok)
	assert.EqualValues(t, 900, r.Reserved())
	assert.InDelta(t, 100, l.Tokens(), 0)

	_, wait, ok := l.Reserve(300)
	require.False(t, ok, "100 tokens in the bucket, 300 asked")
	assert.Equal(t, 20*time.Second, wait, "200 missing at 10 a second")
	assert.InDelta(t, 100, l.Tokens(), 0, "a refusal takes nothing")

	clock.Advance(wait - time.Millisecond)
	_, _, ok = l.Reserve(300)
	assert.False(t, ok, "a millisecond early")
	clock.Advance(time.Millisecond)
	_, _, ok = l.Reserve(300)
	assert.True(t, ok, "at the wait it said")
}

func TestTokenLimiterRefillStopsAtTheBurst(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	l := NewTokenLimiter(60, 50, clock)
	clock.Advance(time.Hour)
	assert.InDelta(t, 50, l.Tokens(), 0)
	assert.Equal(t, [2]int64{60, 50}, func() [2]int64 { a, b := l.Limits(); return [2]int64{a, b} }())
}

func TestTokenReservationSettle(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	l := NewTokenLimiter(60, 1000, clock) // one token a second

	r, _, _ := l.Reserve(400)
	r.Settle(100)
	assert.InDelta(t, 900, l.Tokens(), 0, "300 unused tokens go back")
	r.Settle(0)
	assert.InDelta(t, 900, l.Tokens(), 0, "only the first settlement counts")

	r, _, _ = l.Reserve(900)
	r.Settle(1500)
	assert.InDelta(t, -600, l.Tokens(), 0, "600 used beyond the estimate are taken: the bucket is in debt")
	_, wait, ok := l.Reserve(10)
	assert.False(t, ok)
	assert.Equal(t, 610*time.Second, wait, "the debt is waited out before the next estimate")

	r, _, _ = NewTokenLimiter(60, 1000, clock).Reserve(200)
	r.Settle(r.Reserved())
	assert.InDelta(t, 800, r.l.Tokens(), 0, "settling the estimate leaves the bucket as it is")

	var nilR *TokenReservation
	nilR.Settle(5)
	assert.Zero(t, nilR.Reserved())
}

func TestTokenLimiterEstimateOverTheBurstWaitsForAFullBucket(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	l := NewTokenLimiter(60, 100, clock)
	r, _, ok := l.Reserve(5000)
	require.True(t, ok, "a full bucket admits an estimate over its burst")
	assert.EqualValues(t, 100, r.Reserved())
	_, wait, ok := l.Reserve(5000)
	assert.False(t, ok)
	assert.Equal(t, 100*time.Second, wait, "until the bucket is full again, not forever")
	_, _, ok = l.Reserve(-3)
	assert.True(t, ok, "a negative estimate counts as 0")
}

// TestTokenLimiterConcurrentSettlesBalance has many goroutines reserve and
// settle, under and over their estimates, on a clock that does not move:
// the bucket ends exactly at what it held less what they reported used.
func TestTokenLimiterConcurrentSettlesBalance(t *testing.T) {
	t.Parallel()
	l := NewTokenLimiter(1, 1_000_000, fakeclock.New())
	var used atomic.Int64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				n := int64(1 + (g*7+i)%50)
				r, _, ok := l.Reserve(n)
				if !ok {
					t.Errorf("goroutine %d: refused %d tokens with %v in the bucket", g, n, l.Tokens())
					return
				}
				u := n + int64(i%7) - 3 // from 3 under the estimate to 3 over
				r.Settle(u)
				r.Settle(1000) // not counted
				used.Add(max(u, 0))
			}
		}()
	}
	wg.Wait()
	assert.InDelta(t, 1_000_000-used.Load(), l.Tokens(), 0)
}
