package poolredis

import (
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/onwardsgo/pool"
)

// One token a minute: no refill to speak of during a test, so counts are
// exact and a wait for k tokens is within a second of k minutes.
const slowTokens = 1

// assertWait checks that wait is the time for missing tokens at one a
// minute, give or take the second the test may have taken.
func assertWait(t *testing.T, wait time.Duration, missing int64) {
	t.Helper()
	want := time.Duration(missing) * time.Minute
	if wait > want || wait < want-time.Second {
		t.Fatalf("retry after %v, want about %v for %d tokens at one a minute", wait, want, missing)
	}
}

func TestTokensAreSharedAndSettle(t *testing.T) {
	b := newBackend(t, false)
	p := prefix(t)
	a, _ := b.store(t, p, Options{})
	c, _ := b.store(t, p, Options{})
	ta, tc := a.Tokens("alias/chat", slowTokens, 100), c.Tokens("alias/chat", slowTokens, 100)

	settleA, _, ok := ta.Reserve(70)
	mustBe(t, ok, "70 of 100")
	_, wait, ok := tc.Reserve(40)
	mustBe(t, !ok, "40 more is over the burst, across replicas")
	assertWait(t, wait, 10)

	settleA(50) // used 20 of 70
	settleC, _, ok := tc.Reserve(40)
	mustBe(t, ok, "the 50 given back are seen by the other replica")
	settleC(-30) // used 70, 30 over its estimate
	settleC(-1000)
	_, wait, ok = ta.Reserve(20)
	mustBe(t, !ok, "90 spent: 10 left")
	assertWait(t, wait, 10)
	_, _, ok = ta.Reserve(10)
	mustBe(t, ok, "the last 10")
	_, wait, ok = ta.Reserve(100)
	mustBe(t, !ok, "empty")
	assertWait(t, wait, 100)
}

func TestTokensGivenBackStopAtAFullBucket(t *testing.T) {
	b := newBackend(t, false)
	s, _ := b.store(t, prefix(t), Options{})
	l := s.Tokens("key/abc", slowTokens, 100)
	settle, _, ok := l.Reserve(10)
	mustBe(t, ok, "10 of 100")
	settle(500) // gives back more than it took
	_, _, ok = l.Reserve(100)
	mustBe(t, ok, "a full bucket, not more")
	_, _, ok = l.Reserve(1)
	mustBe(t, !ok, "and it is spent")
}

func TestTokensRedisDown(t *testing.T) {
	m := miniredis.RunT(t)
	b := &backend{url: "redis://" + m.Addr(), mini: m}
	open, _ := b.store(t, prefix(t), Options{Replicas: 2, CallTimeout: 50 * time.Millisecond})
	closed, _ := b.store(t, prefix(t), Options{FailClosed: true, CallTimeout: 50 * time.Millisecond})
	lo, lc := open.Tokens("alias/chat", slowTokens, 100), closed.Tokens("alias/chat", slowTokens, 100)
	m.Close()

	settle, _, ok := lo.Reserve(50)
	mustBe(t, ok, "this replica's share of 100 across 2 is 50")
	_, _, ok = lo.Reserve(1)
	mustBe(t, !ok, "the share is spent")
	settle(20)
	_, _, ok = lo.Reserve(20)
	mustBe(t, ok, "settled into the local share")

	_, wait, ok := lc.Reserve(1)
	mustBe(t, !ok && wait == pool.ConcurrencyRetryAfter, "fail closed refuses, with a wait")
}

// Two registries on one Redis, as two replicas: a token limit in the
// config is one bucket across them.
func TestRegistriesShareTokenLimits(t *testing.T) {
	b := newBackend(t, false)
	p := prefix(t)
	cfg, err := pool.ParseConfig([]byte(`{"targets": {"chat": {"url": "https://a.example.com",
		"rate_limit": {"tokens_per_minute": 1, "token_burst_size": 500}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var replicas []*pool.Registry
	for range 2 {
		s, _ := b.store(t, p, Options{})
		r := &pool.Registry{Shared: s}
		if err := r.Reload(cfg); err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, r)
	}
	admit := func(r *pool.Registry, n int64) (*pool.Admission, error) {
		adm, err := r.Admit("chat", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := adm.ReserveTokens(n); err != nil {
			adm.Close()
			return nil, err
		}
		return adm, nil
	}
	adm, err := admit(replicas[0], 400)
	mustBe(t, err == nil, "400 of 500")
	_, err = admit(replicas[1], 200)
	mustBe(t, err != nil, "200 more is over the limit, on the other replica")
	adm.SettleTokens(100)
	adm.Close()
	adm, err = admit(replicas[1], 400)
	mustBe(t, err == nil, "300 came back when the first settled")
	adm.Close()
}
