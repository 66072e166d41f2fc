package poolredis

import "testing"

// BenchmarkLeaseRoundTrip is what a shared concurrency slot adds to a
// request: one acquire (a Lua script) and one release (ZREM), two round
// trips to Redis.
func BenchmarkLeaseRoundTrip(b *testing.B) {
	be := benchBackend(b)
	s, _ := be.storeB(b)
	l := s.Concurrency("alias/bench", 1<<30)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		release, _, ok := l.TryAcquire()
		if !ok {
			b.Fatal("refused")
		}
		release()
	}
}

// BenchmarkRateRoundTrip is what a shared rate limit adds: one GCRA script.
func BenchmarkRateRoundTrip(b *testing.B) {
	be := benchBackend(b)
	s, _ := be.storeB(b)
	r := s.Rate("alias/bench", 1e9, 1<<30)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if ok, _ := r.Allow(); !ok {
			b.Fatal("refused")
		}
	}
}
