package poolredis

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/onwardsgo/pool"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{}) // go-redis logs each failed dial; the tests make many on purpose
	goleak.VerifyTestMain(m)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// backend is a Redis for a test: the real redis-server at
// POOLREDIS_TEST_URL when set (.ci/run starts one), else miniredis.
type backend struct {
	url  string
	mini *miniredis.Miniredis
}

func newBackend(t *testing.T, wantReal bool) *backend {
	t.Helper()
	if url := os.Getenv("POOLREDIS_TEST_URL"); url != "" {
		return &backend{url: url}
	}
	if wantReal {
		t.Skip("POOLREDIS_TEST_URL names no real redis-server; .ci/run starts one")
	}
	m := miniredis.RunT(t)
	return &backend{url: "redis://" + m.Addr(), mini: m}
}

// store returns a new client and Store on the backend, each with its own
// connection pool, as a separate replica would have, under prefix.
func (b *backend) store(t *testing.T, prefix string, opts Options) (*Store, *redis.Client) {
	t.Helper()
	ro, err := redis.ParseURL(b.url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ro)
	opts.Prefix = prefix
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := New(rdb, opts)
	t.Cleanup(func() { s.Close(); rdb.Close() })
	return s, rdb
}

// prefix is a key prefix of the test's own, so that tests sharing a real
// Redis do not meet.
func prefix(t *testing.T) string {
	return "pooltest:" + strings.ReplaceAll(t.Name(), "/", ":") + ":" + newMember()[:6] + ":"
}

func TestLeasesHoldTheLimitAcrossReplicas(t *testing.T) {
	b := newBackend(t, false)
	p := prefix(t)
	a, rdb := b.store(t, p, Options{})
	c, _ := b.store(t, p, Options{})
	la, lc := a.Concurrency("alias/chat", 2), c.Concurrency("alias/chat", 2)

	r1, _, ok := la.TryAcquire()
	mustBe(t, ok, "first slot")
	r2, _, ok := lc.TryAcquire()
	mustBe(t, ok, "second slot, on the other replica")
	_, _, ok = la.TryAcquire()
	mustBe(t, !ok, "the limit of 2 holds across replicas")

	r1()
	r1() // release is idempotent
	r3, _, ok := lc.TryAcquire()
	mustBe(t, ok, "a slot freed on one replica is free on the other")
	_, _, ok = la.TryAcquire()
	mustBe(t, !ok, "the double release freed one slot, not two")
	r2()
	r3()
	if n := rdb.ZCard(context.Background(), p+"conc:alias/chat").Val(); n != 0 {
		t.Fatalf("%d leases left", n)
	}
}

func TestACrashedReplicasLeasesExpire(t *testing.T) {
	b := newBackend(t, false)
	if b.mini == nil {
		t.Skip("needs miniredis's clock")
	}
	p := prefix(t)
	crashed, _ := b.store(t, p, Options{LeaseTTL: 3 * time.Second})
	alive, _ := b.store(t, p, Options{LeaseTTL: 3 * time.Second})
	_, _, ok := crashed.Concurrency("alias/chat", 1).TryAcquire()
	mustBe(t, ok, "crashed replica holds the slot")
	crashed.Close() // it stops renewing, as a killed process would

	now := time.Now()
	b.mini.SetTime(now)
	l := alive.Concurrency("alias/chat", 1)
	_, _, ok = l.TryAcquire()
	mustBe(t, !ok, "held until its TTL")
	b.mini.SetTime(now.Add(3*time.Second + time.Millisecond))
	release, _, ok := l.TryAcquire()
	mustBe(t, ok, "back within the lease TTL")
	release()
}

func TestRenewalKeepsALongLeaseAlive(t *testing.T) {
	b := newBackend(t, false)
	if b.mini == nil {
		t.Skip("needs miniredis's clock")
	}
	p := prefix(t)
	s, _ := b.store(t, p, Options{LeaseTTL: 3 * time.Second})
	now := time.Now()
	b.mini.SetTime(now)
	l := s.Concurrency("alias/chat", 1)
	release, _, ok := l.TryAcquire()
	mustBe(t, ok, "slot")
	for i := 1; i <= 5; i++ { // a stream of 10 s, renewed every 2 s
		b.mini.SetTime(now.Add(time.Duration(i) * 2 * time.Second))
		s.renewAll()
	}
	_, _, ok = l.TryAcquire()
	mustBe(t, !ok, "the renewed lease still holds the slot at 10 s")
	release()
	release2, _, ok := l.TryAcquire()
	mustBe(t, ok, "released")
	release2()
}

func TestRateIsSharedAndTellsItsWait(t *testing.T) {
	b := newBackend(t, false)
	p := prefix(t)
	a, _ := b.store(t, p, Options{})
	c, _ := b.store(t, p, Options{})
	ra, rc := a.Rate("alias/chat", 0.5, 2), c.Rate("alias/chat", 0.5, 2)
	ok, _ := ra.Allow()
	mustBe(t, ok, "first of the burst")
	ok, _ = rc.Allow()
	mustBe(t, ok, "second of the burst, on the other replica")
	ok, wait := ra.Allow()
	mustBe(t, !ok, "the burst of 2 is spent across replicas")
	if wait <= 0 || wait > 2*time.Second+10*time.Millisecond {
		t.Fatalf("retry after %v, want up to 2 s at 0.5/s", wait)
	}
}

// countingHandler counts log records.
type countingHandler struct {
	slog.Handler
	n *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.n.Add(1)
	return nil
}

func TestRedisDownFailsOpenToAShareAndLogsOnce(t *testing.T) {
	m := miniredis.RunT(t)
	b := &backend{url: "redis://" + m.Addr(), mini: m}
	var logs atomic.Int64
	log := slog.New(countingHandler{slog.NewTextHandler(io.Discard, nil), &logs})
	s, _ := b.store(t, prefix(t), Options{Replicas: 2, CallTimeout: 50 * time.Millisecond, Log: log})
	l := s.Concurrency("alias/chat", 3)
	r := s.Rate("alias/chat", 0.001, 4) // no refill during the test
	m.Close()                           // Redis goes away

	var releases []func()
	for range 2 {
		release, _, ok := l.TryAcquire()
		mustBe(t, ok, "this replica's share of 3 across 2 is 2")
		releases = append(releases, release)
	}
	_, _, ok := l.TryAcquire()
	mustBe(t, !ok, "the share is spent")
	for range 2 {
		ok, _ := r.Allow()
		mustBe(t, ok, "half the burst")
	}
	ok, _ = r.Allow()
	mustBe(t, !ok, "the rate share is spent")
	for _, rel := range releases {
		rel()
	}
	if n := logs.Load(); n != 1 {
		t.Fatalf("%d log lines for one outage, want 1", n)
	}
}

func TestRedisDownFailsClosed(t *testing.T) {
	m := miniredis.RunT(t)
	b := &backend{url: "redis://" + m.Addr(), mini: m}
	s, _ := b.store(t, prefix(t), Options{FailClosed: true, CallTimeout: 50 * time.Millisecond})
	m.Close()
	_, _, ok := s.Concurrency("alias/chat", 3).TryAcquire()
	mustBe(t, !ok, "fail closed refuses")
	ok, wait := s.Rate("alias/chat", 1, 1).Allow()
	mustBe(t, !ok && wait > 0, "fail closed refuses, with a wait")
}

func TestRecoversByItself(t *testing.T) {
	m := miniredis.RunT(t)
	addr := m.Addr()
	b := &backend{url: "redis://" + addr, mini: m}
	var logs atomic.Int64
	log := slog.New(countingHandler{slog.NewTextHandler(io.Discard, nil), &logs})
	s, rdb := b.store(t, prefix(t), Options{CallTimeout: 50 * time.Millisecond, Log: log})
	l := s.Concurrency("alias/chat", 1)
	m.Close()
	release, _, _ := l.TryAcquire() // down: the local share
	release()
	if err := m.StartAddr(addr); err != nil {
		t.Skipf("cannot restart miniredis on %s: %v", addr, err)
	}
	rdb.Ping(context.Background()) // the pool reconnects
	release, _, ok := l.TryAcquire()
	mustBe(t, ok, "back on Redis")
	release()
	mustBe(t, !s.down.Load(), "marked up again")
	if n := logs.Load(); n != 2 {
		t.Fatalf("%d log lines, want 2: down, then up", n)
	}
}

// TestStressFourReplicas runs 32 goroutines over 4 replicas, each with its
// own client, against one limit: an independent counter never sees more
// than the limit in flight, and no lease is left at the end.
func TestStressFourReplicas(t *testing.T) {
	b := newBackend(t, false)
	p := prefix(t)
	const limit = 5
	var stores []*Store
	var rdb *redis.Client
	for range 4 {
		s, c := b.store(t, p, Options{})
		stores, rdb = append(stores, s), c
	}
	var inFlight, peak, admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := stores[g%4].Concurrency("alias/chat", limit)
			for range 40 {
				release, _, ok := l.TryAcquire()
				if !ok {
					refused.Add(1)
					continue
				}
				admitted.Add(1)
				n := inFlight.Add(1)
				for {
					old := peak.Load()
					if n <= old || peak.CompareAndSwap(old, n) {
						break
					}
				}
				stores[g%4].rdb.Ping(context.Background()) // hold the slot for a round trip of work
				inFlight.Add(-1)
				release()
			}
		}()
	}
	wg.Wait()
	if peak.Load() > limit {
		t.Fatalf("%d in flight at once across replicas; the limit is %d", peak.Load(), limit)
	}
	if admitted.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("%d admitted, %d refused: the test did not press on the limit", admitted.Load(), refused.Load())
	}
	if n := rdb.ZCard(context.Background(), p+"conc:alias/chat").Val(); n != 0 {
		t.Fatalf("%d leases left", n)
	}
	t.Logf("%d admitted, %d refused, peak %d in flight", admitted.Load(), refused.Load(), peak.Load())
}

func mustBe(t *testing.T, cond bool, what string) {
	t.Helper()
	if !cond {
		t.Fatal(what)
	}
}

func benchBackend(b *testing.B) *backend {
	url := os.Getenv("POOLREDIS_TEST_URL")
	if url == "" {
		b.Skip("set POOLREDIS_TEST_URL to a real redis-server to measure round trips")
	}
	return &backend{url: url}
}

func (be *backend) storeB(b *testing.B) (*Store, *redis.Client) {
	ro, err := redis.ParseURL(be.url)
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(ro)
	s := New(rdb, Options{Prefix: "poolbench:" + newMember()[:6] + ":", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b.Cleanup(func() { s.Close(); rdb.Close() })
	return s, rdb
}

func TestOthersIsTheOtherReplicasLoad(t *testing.T) {
	b := newBackend(t, false)
	p := prefix(t)
	a, _ := b.store(t, p, Options{})
	c, _ := b.store(t, p, Options{})
	la, lc := a.Concurrency("provider/chat/x", 10), c.Concurrency("provider/chat/x", 10)
	var releases []func()
	for range 3 {
		r, _, ok := la.TryAcquire()
		mustBe(t, ok, "A takes a slot")
		releases = append(releases, r)
	}
	r, _, ok := lc.TryAcquire()
	mustBe(t, ok, "B takes a slot")
	if got := lc.(pool.SharedLoad).Others(); got != 3 {
		t.Fatalf("B sees %d held elsewhere, want A's 3", got)
	}
	if got := la.(pool.SharedLoad).Others(); got != 0 {
		t.Fatalf("A saw %d elsewhere at its last acquire, want 0", got)
	}
	r()
	for _, r := range releases {
		r()
	}
}
