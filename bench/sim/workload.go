package main

import (
	"math"
	"math/rand/v2"
	"time"
)

// requestClass is a kind of request in a mix, with the lengths it draws:
// prompt and completion tokens uniform in their ranges, and the max_tokens
// the client sets, which the estimate counts.
type requestClass struct {
	share                float64
	promptMin, promptMax int
	outputMin, outputMax int
	maxTokens            int
}

// The mixes. Short chat: a few hundred tokens each way. Long completions:
// long prompts and answers of up to 1500 tokens. chatMix has one long
// completion in twenty requests; chatOnly none.
var (
	shortChat = requestClass{share: 0.95, promptMin: 100, promptMax: 1500, outputMin: 20, outputMax: 300, maxTokens: 512}
	longGen   = requestClass{share: 0.05, promptMin: 1000, promptMax: 4000, outputMin: 500, outputMax: 1500, maxTokens: 2048}
	chatMix   = []requestClass{shortChat, longGen}
	chatOnly  = []requestClass{{share: 1, promptMin: 100, promptMax: 1500, outputMin: 20, outputMax: 300, maxTokens: 512}}
)

// fault is what happens to a server during a run, as shares of its length.
type fault struct {
	server   int
	from, to float64 // shares of the run
	slowdown float64 // the server's speed is divided by it; 0: none
	fail     bool    // the server answers every request with an error
	joins    bool    // the server joins the pool at from (a reload)
}

// workload is one scenario: the servers, the mix, the arrivals and the
// faults.
type workload struct {
	name    string
	about   string
	servers []serverModel
	weights []uint32
	mix     []requestClass
	rate    float64       // arrivals a second, on average
	burst   float64       // > 1: arrivals come burst times faster for a tenth of each minute
	length  time.Duration // of the run
	faults  []fault
}

// standard is the servers of every workload: a vLLM-like server of 1500
// decode tokens a second, 50 for one request, at most 64 at once.
var standard = serverModel{concurrency: 64, throughput: 1500, perRequest: 50, ttftBase: 150 * time.Millisecond, prefill: 8000}

func fourServers() []serverModel { return []serverModel{standard, standard, standard, standard} }

// workloads are the scenarios, in the order the table shows them. At 24
// short chats a second, four servers run at about three quarters of their
// decode throughput.
var workloads = []workload{
	{name: "homogeneous", about: "four equal servers, short chats, steady arrivals",
		servers: fourServers(), mix: chatOnly, rate: 24, length: 10 * time.Minute},
	{name: "heterogeneous", about: "as homogeneous, but server 0 is 5x slower for the middle third",
		servers: fourServers(), mix: chatOnly, rate: 24, length: 10 * time.Minute,
		faults: []fault{{server: 0, from: 1.0 / 3, to: 2.0 / 3, slowdown: 5}}},
	{name: "mixed", about: "as homogeneous, but one request in twenty a long completion",
		servers: fourServers(), mix: chatMix, rate: 20, length: 10 * time.Minute},
	{name: "bursty", about: "the mixed traffic, with arrivals 3x as fast for six seconds a minute",
		servers: fourServers(), mix: chatMix, rate: 20, burst: 3, length: 10 * time.Minute},
	{name: "failing", about: "as homogeneous, but server 1 answers errors for the middle third",
		servers: fourServers(), mix: chatOnly, rate: 24, length: 10 * time.Minute,
		faults: []fault{{server: 1, from: 1.0 / 3, to: 2.0 / 3, fail: true}}},
	{name: "joining", about: "three servers at 18 chats a second; a fourth joins by a reload a third of the way in",
		servers: fourServers(), mix: chatOnly, rate: 18, length: 10 * time.Minute,
		faults: []fault{{server: 3, from: 1.0 / 3, joins: true}}},
}

// arrival is one request of a run.
type arrival struct {
	at             time.Duration
	prompt, output int
	maxTokens      int
}

// arrivals draws the requests of w from a source seeded with seed: Poisson
// arrivals at w.rate (faster in bursts), each of a class drawn by share.
func (w workload) arrivals(seed uint64) []arrival {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var out []arrival
	for at := time.Duration(0); ; {
		rate := w.rate
		if w.burst > 1 { // a tenth of each minute at burst times the rate, the rest slower, the same mean
			if at%time.Minute < 6*time.Second {
				rate = w.rate * w.burst
			} else {
				rate = w.rate * (1 - 0.1*w.burst) / 0.9
			}
		}
		at += time.Duration(rng.ExpFloat64() / rate * float64(time.Second))
		if at >= w.length {
			return out
		}
		c := pick(w.mix, rng.Float64())
		out = append(out, arrival{at: at, maxTokens: c.maxTokens,
			prompt: between(rng, c.promptMin, c.promptMax), output: between(rng, c.outputMin, c.outputMax)})
	}
}

func pick(mix []requestClass, u float64) requestClass {
	for _, c := range mix {
		if u -= c.share; u < 0 {
			return c
		}
	}
	return mix[len(mix)-1]
}

func between(rng *rand.Rand, lo, hi int) int {
	return lo + int(math.Floor(rng.Float64()*float64(hi-lo+1)))
}
