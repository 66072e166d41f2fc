package pool

// The workloads of shared/bench/WORKLOADS.md, under exactly those names, so
// that every run compares with the Rust reference figures; and a floor of
// what this machine allows, measured in the same run. BENCHMARKS.md has the
// figures and how to take them.

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// benchSizes are the provider counts of every workload.
var benchSizes = []int{2, 4, 16, 64}

// benchPool is the workload pool: n providers, provider i of weight i%4+1,
// distinct URLs, no concurrency limits.
func benchPool(b *testing.B, n int, opts ...Option) *ProviderPool {
	b.Helper()
	providers := make([]*Provider, n)
	for i := range providers {
		providers[i] = NewProvider(newTestTarget(b, fmt.Sprintf("https://p%d.example.com/v1", i)), uint32(i%4+1))
	}
	return newTestPool(b, providers, opts...)
}

// forEachSize runs one sub-benchmark per workload size.
func forEachSize(b *testing.B, run func(b *testing.B, n int)) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) { run(b, n) })
	}
}

// checkDrained fails the benchmark if it left anything in flight.
func checkDrained(b *testing.B, p *ProviderPool) {
	b.Helper()
	for i, pr := range p.Providers() {
		if n := pr.ActiveConnections(); n != 0 {
			b.Fatalf("provider %d has %d in flight after the benchmark", i, n)
		}
	}
}

var sinkIndex int

func BenchmarkSelectClose(b *testing.B) {
	forEachSize(b, func(b *testing.B, n int) { selectCloseLoop(b, benchPool(b, n)) })
}

// selectCloseLoop is one Select and an immediate Close per op.
func selectCloseLoop(b *testing.B, p *ProviderPool) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sel, ok := p.Select()
		if !ok {
			b.Fatal("no selection")
		}
		sinkIndex += sel.Index
		sel.Close()
	}
	b.StopTimer()
	checkDrained(b, p)
}

func BenchmarkSelectInflight(b *testing.B) {
	forEachSize(b, func(b *testing.B, n int) {
		p := benchPool(b, n)
		var ring [256]Selection
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			// As WORKLOADS.md says and the Rust harness does: select, then
			// close the selection of 256 ops ago, then store the new one.
			sel, ok := p.Select()
			if !ok {
				b.Fatal("no selection")
			}
			slot := &ring[i%len(ring)]
			slot.Close()
			*slot = sel
		}
		b.StopTimer()
		for _, sel := range ring {
			sel.Close()
		}
		checkDrained(b, p)
	})
}

func BenchmarkFallbackIter(b *testing.B) {
	forEachSize(b, func(b *testing.B, n int) {
		p := benchPool(b, n, WithFallback(FallbackConfig{Enabled: true, OnStatus: []int{5}}))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			it := p.SelectIter()
			attempts := 0
			for sel, ok := it.Next(); ok; sel, ok = it.Next() {
				attempts++
				sel.Close()
			}
			if attempts != n {
				b.Fatalf("walked %d providers, want %d", attempts, n)
			}
		}
		b.StopTimer()
		checkDrained(b, p)
	})
}

func BenchmarkPrioritySelect(b *testing.B) {
	forEachSize(b, func(b *testing.B, n int) { selectCloseLoop(b, benchPool(b, n, WithStrategy(Priority))) })
}

func BenchmarkParallelInflight(b *testing.B) {
	forEachSize(b, func(b *testing.B, n int) {
		p := benchPool(b, n)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var ring [128]Selection
			for i := 0; pb.Next(); i++ {
				sel, ok := p.Select() // then close the old, as in SelectInflight
				if !ok {
					panic("no selection")
				}
				slot := &ring[i%len(ring)]
				slot.Close()
				*slot = sel
			}
			for _, sel := range ring {
				sel.Close()
			}
		})
		b.StopTimer()
		checkDrained(b, p)
	})
}

// BenchmarkSelectCloseParallel is SelectClose with every goroutine on one
// shared pool, to show how the hot path scales: run it with -cpu 1,2,4.
func BenchmarkSelectCloseParallel(b *testing.B) {
	forEachSize(b, func(b *testing.B, n int) {
		p := benchPool(b, n)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				sel, ok := p.Select()
				if !ok {
					panic("no selection")
				}
				sel.Close()
			}
		})
		b.StopTimer()
		checkDrained(b, p)
	})
}

var (
	sinkU64  uint64
	sinkPtr  *alloc16
	baseline atomic.Int64
)

// alloc16 is 16 bytes holding a pointer, the shape guards had before they
// came in blocks: what allocating one per selection would cost. It takes the
// allocator's path for objects with pointers, not the tiny allocator's.
type alloc16 struct {
	p *uint64
	_ uint64
}

// BenchmarkBaseline measures, on this machine and in this run, the
// operations the hot path is made of: read each workload figure as a
// multiple of these.
func BenchmarkBaseline(b *testing.B) {
	b.Run("AtomicAdd", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			baseline.Add(1)
		}
	})
	b.Run("CAS", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			v := baseline.Load()
			baseline.CompareAndSwap(v, v+1)
		}
	})
	b.Run("RandUint64N", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			sinkU64 += rand.Uint64N(10)
		}
	})
	b.Run("SharedAtomicAdd", func(b *testing.B) {
		// Every goroutine adds to one counter: the cost of moving its cache
		// line between cores, the floor of any shared-counter workload at
		// -cpu 2 and above. It depends on where the host places the vCPUs.
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				baseline.Add(1)
			}
		})
	})
	b.Run("Alloc16", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			sinkPtr = &alloc16{p: &sinkU64}
		}
	})
}
