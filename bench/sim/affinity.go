package main

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/onwardsgo/pool"
	"github.com/onwardsgo/pool/internal/fakeclock"
)

// affinityWorkload is agentic traffic over four providers of one weighted
// pool: conversations arrive at rate a second, each of turns requests a
// think time apart, each turn resending the conversation so far. A
// provider that served a conversation's last turn has its history cached
// and prefills only the new tokens. One provider may run slow (hot).
type affinityWorkload struct {
	rate        float64
	turns       int
	think       time.Duration
	turnTokens  int           // tokens each turn adds to the history
	prefill     float64       // prompt tokens a second, idle
	decode      time.Duration // the answer's decoding, idle
	concurrency int           // the load at which a provider runs at half speed
	hotSlowdown float64       // provider 0 runs this many times slower; 0: not hot
	length      time.Duration // conversations start until then
}

var homogeneousAgents = affinityWorkload{rate: 1.5, turns: 8, think: 5 * time.Second, turnTokens: 1500,
	prefill: 4000, decode: 4 * time.Second, concurrency: 32, length: time.Hour}

// affinityResult is what an affinity run measured.
type affinityResult struct {
	stickiness float64         // a conversation's turns on its most used provider, averaged
	latencies  []time.Duration // of every turn
}

func (r affinityResult) p99() time.Duration { return quantile(r.latencies, 0.99) }

func (r affinityResult) String() string {
	return fmt.Sprintf("%.1f%% of turns on the conversation's provider, p99 %v over %d turns",
		100*r.stickiness, r.p99().Round(time.Millisecond), len(r.latencies))
}

type convEvent struct {
	at   time.Duration
	seq  int
	conv int
	done bool // the turn's answer ends; else the turn starts
	sel  pool.Selection
	took time.Duration
}

type convEvents []convEvent

func (h convEvents) Len() int { return len(h) }
func (h convEvents) Less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seq < h[j].seq
}
func (h convEvents) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *convEvents) Push(x any)   { *h = append(*h, x.(convEvent)) }
func (h *convEvents) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// conversation is one conversation's state in a run.
type conversation struct {
	turn   int   // turns served
	cached int   // the provider that holds its history; -1: none
	served []int // turns per provider
}

// affinityRun is one run of an affinityWorkload, with or without affinity.
type affinityRun struct {
	w      affinityWorkload
	clock  *fakeclock.Clock
	rng    *rand.Rand
	pool   *pool.ProviderPool
	now    time.Duration
	events convEvents
	seq    int
	active []int
	convs  []*conversation
	res    affinityResult
}

func newAffinityRun(w affinityWorkload, affinity bool, seed uint64) *affinityRun {
	r := &affinityRun{w: w, clock: fakeclock.New(), rng: rand.New(rand.NewPCG(seed, 3)), active: make([]int, 4)}
	var providers []*pool.Provider
	for i := range 4 {
		t, err := pool.NewTarget(fmt.Sprintf("http://server-%d.sim/v1", i))
		if err != nil {
			panic(err) // a constant URL
		}
		providers = append(providers, pool.NewProvider(t, 1))
	}
	opts := []pool.Option{pool.WithClock(r.clock), pool.WithRandomSource(r.rng.Uint64)}
	if affinity {
		opts = append(opts, pool.WithAffinity(pool.DefaultAffinity(1)))
	}
	p, err := pool.NewProviderPool(providers, opts...)
	if err != nil {
		panic(err) // the simulator's own pool
	}
	r.pool = p
	return r
}

func (r *affinityRun) push(e convEvent) {
	e.seq = r.seq
	r.seq++
	heap.Push(&r.events, e)
}

// execute runs the workload and returns what it measured.
func (r *affinityRun) execute() affinityResult {
	for at := time.Duration(0); at < r.w.length; at += time.Duration(r.rng.ExpFloat64() / r.w.rate * float64(time.Second)) {
		r.convs = append(r.convs, &conversation{cached: -1, served: make([]int, 4)})
		r.push(convEvent{at: at, conv: len(r.convs) - 1})
	}
	for r.events.Len() > 0 {
		e := heap.Pop(&r.events).(convEvent)
		r.clock.Advance(e.at - r.now)
		r.now = e.at
		if e.done {
			r.finish(e)
		} else {
			r.start(e.conv)
		}
	}
	sum := 0.0
	for _, c := range r.convs {
		sum += float64(slices.Max(c.served)) / float64(c.turn)
	}
	r.res.stickiness = sum / float64(len(r.convs))
	return r.res
}

// start sends a conversation's next turn.
func (r *affinityRun) start(id int) {
	c := r.convs[id]
	it := r.pool.SelectIter()
	it.SetConversation(mixKey(uint64(id)))
	sel, ok := it.Next()
	if !ok {
		panic("an unlimited pool refused")
	}
	i := sel.Index
	uncached := (c.turn + 1) * r.w.turnTokens
	if c.cached == i {
		uncached = r.w.turnTokens
	}
	slow := 1 + float64(r.active[i])/float64(r.w.concurrency)
	if i == 0 && r.w.hotSlowdown > 0 {
		slow *= r.w.hotSlowdown
	}
	took := time.Duration(slow * (float64(uncached)/r.w.prefill*float64(time.Second) + float64(r.w.decode)))
	r.active[i]++
	c.cached = i
	c.served[i]++
	r.push(convEvent{at: r.now + took, conv: id, done: true, sel: sel, took: took})
}

// finish ends a turn and schedules the conversation's next one.
func (r *affinityRun) finish(e convEvent) {
	r.active[e.sel.Index]--
	e.sel.Close()
	r.res.latencies = append(r.res.latencies, e.took)
	c := r.convs[e.conv]
	c.turn++
	if c.turn < r.w.turns {
		think := time.Duration(r.rng.ExpFloat64() * float64(r.w.think))
		r.push(convEvent{at: r.now + think, conv: e.conv})
	}
}

// mixKey spreads a conversation number over 64 bits, as a hash of its
// opening would.
func mixKey(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
