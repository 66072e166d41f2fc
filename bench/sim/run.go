package main

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/onwardsgo/pool"
	"github.com/onwardsgo/pool/internal/fakeclock"
)

// job is one request in flight in a run.
type job struct {
	req     arrival
	it      *pool.SelectIter
	sel     pool.Selection
	started time.Duration // when the current attempt began
	finish  float64       // the server progress at which it finishes decoding
}

type eventKind int

const (
	arrive eventKind = iota
	prefilled
	decoded
	failed
	faultOn
	faultOff
)

type event struct {
	at      time.Duration
	seq     int // ties in at go in the order pushed: the run repeats
	kind    eventKind
	j       *job
	server  int
	version int
	f       fault
}

// run is one workload under one strategy, through the real pool code on
// a fake clock.
type run struct {
	w        workload
	strategy pool.LoadBalanceStrategy
	clock    *fakeclock.Clock
	rng      *rand.Rand
	now      time.Duration
	pool     *pool.ProviderPool
	servers  []*server
	events   eventHeap
	seq      int
	arrivals []arrival
	next     int // the next arrival to push
	res      result
}

func newRun(w workload, s pool.LoadBalanceStrategy, seed uint64) *run {
	r := &run{w: w, strategy: s, clock: fakeclock.New(), rng: rand.New(rand.NewPCG(seed, 1)), arrivals: w.arrivals(seed)}
	r.res = result{workload: w.name, strategy: s.String(), share: make([]int, len(w.servers))}
	joining := map[int]bool{}
	for _, f := range w.faults {
		if f.joins {
			joining[f.server] = true
		}
		r.push(event{at: r.share(f.from), kind: faultOn, f: f})
		if f.to > 0 {
			r.push(event{at: r.share(f.to), kind: faultOff, f: f})
		}
	}
	for _, m := range w.servers {
		r.servers = append(r.servers, &server{model: m, speed: 1})
	}
	r.pool = r.build(len(w.servers) - len(joining))
	r.pushArrival()
	return r
}

// share is the time at share x of the run.
func (r *run) share(x float64) time.Duration { return time.Duration(x * float64(r.w.length)) }

// build returns a pool of the first n servers, each a new Provider, as a
// reload builds them.
func (r *run) build(n int) *pool.ProviderPool {
	var providers []*pool.Provider
	for i := range n {
		t, err := pool.NewTarget(fmt.Sprintf("http://server-%d.sim/v1", i))
		if err != nil {
			panic(err) // a constant URL
		}
		weight := uint32(1)
		if len(r.w.weights) > i {
			weight = r.w.weights[i]
		}
		providers = append(providers, pool.NewProviderWithConcurrencyLimit(t, weight, r.servers[i].model.concurrency))
	}
	p, err := pool.NewProviderPool(providers, pool.WithStrategy(r.strategy), pool.WithClock(r.clock), pool.WithRandomSource(r.rng.Uint64))
	if err != nil {
		panic(err) // the simulator's own providers
	}
	return p
}

func (r *run) push(e event) {
	e.seq = r.seq
	r.seq++
	heap.Push(&r.events, e)
}

func (r *run) pushArrival() {
	if r.next < len(r.arrivals) {
		a := r.arrivals[r.next]
		r.next++
		r.push(event{at: a.at, kind: arrive, j: &job{req: a}})
	}
}

// execute runs the events to the end and returns the result.
func (r *run) execute() result {
	for r.events.Len() > 0 {
		e := heap.Pop(&r.events).(event)
		r.clock.Advance(e.at - r.now)
		r.now = e.at
		r.handle(e)
	}
	r.res.length = r.w.length
	return r.res
}

func (r *run) handle(e event) {
	switch e.kind {
	case arrive:
		r.pushArrival()
		e.j.it = r.pool.SelectIter()
		e.j.it.SetTokens(int64(e.j.req.prompt + e.j.req.maxTokens))
		r.attempt(e.j)
	case prefilled:
		s := r.servers[e.j.sel.Index]
		e.j.sel.ReportLatency(r.now - e.j.started)
		r.res.ttft = append(r.res.ttft, r.now-e.j.req.at)
		s.startDecoding(r.now, e.j, e.j.req.output)
		r.reschedule(e.j.sel.Index)
	case decoded:
		r.decoded(e.server, e.version)
	case failed:
		e.j.sel.Report(pool.Failure)
		e.j.sel.Close()
		r.attempt(e.j)
	case faultOn, faultOff:
		r.fault(e.f, e.kind == faultOn)
	}
}

// attempt sends j to the next provider of its walk, or counts it refused.
func (r *run) attempt(j *job) {
	sel, ok := j.it.Next()
	if !ok {
		r.res.rejected++
		return
	}
	j.sel, j.started = sel, r.now
	s := r.servers[sel.Index]
	if s.failing {
		r.push(event{at: r.now + failDelay, kind: failed, j: j})
		return
	}
	s.active++
	r.push(event{at: r.now + s.ttft(j.req.prompt), kind: prefilled, j: j})
}

// decoded finishes the jobs of server i done by now, if the event is its
// latest.
func (r *run) decoded(i, version int) {
	s := r.servers[i]
	if version != s.version {
		return
	}
	for _, j := range s.finished(r.now) {
		s.active--
		j.sel.Report(pool.Success)
		j.sel.Close()
		r.res.completion = append(r.res.completion, r.now-j.req.at)
		r.res.share[i]++
	}
	r.reschedule(i)
}

// reschedule schedules server i's next finish, cancelling the last.
func (r *run) reschedule(i int) {
	s := r.servers[i]
	s.version++
	if at, ok := s.nextFinish(); ok {
		r.push(event{at: max(at, r.now), kind: decoded, server: i, version: s.version})
	}
}

// fault starts (on) or ends a fault.
func (r *run) fault(f fault, on bool) {
	s := r.servers[f.server]
	switch {
	case f.joins && on:
		next := r.build(len(r.servers))
		next.AdoptProviderState(r.pool)
		r.pool = next
	case f.slowdown > 0:
		s.advance(r.now)
		s.speed = 1
		if on {
			s.speed = 1 / f.slowdown
		}
		r.reschedule(f.server)
	case f.fail:
		s.failing = on
	}
}

// eventHeap is a min-heap of events by time, then by the order pushed.
type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	return h[i].at < h[j].at || (h[i].at == h[j].at && h[i].seq < h[j].seq)
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
