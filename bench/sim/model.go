package main

import (
	"container/heap"
	"math"
	"time"
)

// serverModel is an LLM server as the simulator sees it: a batch of at
// most concurrency requests; each request's first token after a prefill
// that grows with its prompt and with the batch; then decoding, the
// server's token throughput shared by the requests decoding, each at most
// perRequest tokens a second.
type serverModel struct {
	concurrency int
	throughput  float64       // decode tokens a second, shared
	perRequest  float64       // decode tokens a second, for one request
	ttftBase    time.Duration // time to first token of an empty prompt, idle
	prefill     float64       // prompt tokens a second, for one request, idle
}

// server is one provider's state in a run.
type server struct {
	model   serverModel
	speed   float64 // 1, or less while slowed
	failing bool    // answers every request with an error, after failDelay
	active  int     // requests prefilling or decoding

	decoding jobHeap       // by the progress at which each finishes
	progress float64       // tokens decoded by any one request since the start
	at       time.Duration // when progress was brought up to date
	version  int           // bumped to cancel the scheduled finish
}

// failDelay is how long a failing server takes to answer with its error.
const failDelay = 50 * time.Millisecond

// ttft is how long a request of prompt tokens, starting now, waits for its
// first token: more with a fuller batch and on a slowed server.
func (s *server) ttft(prompt int) time.Duration {
	idle := float64(s.model.ttftBase) + float64(prompt)/s.model.prefill*float64(time.Second)
	load := 1 + float64(s.active)/float64(s.model.concurrency)
	return time.Duration(idle * load / s.speed)
}

// rate is the tokens a second each decoding request gets now.
func (s *server) rate() float64 {
	n := float64(len(s.decoding))
	if n == 0 {
		return s.model.perRequest * s.speed
	}
	return math.Min(s.model.perRequest, s.model.throughput/n) * s.speed
}

// advance brings progress up to now.
func (s *server) advance(now time.Duration) {
	s.progress += s.rate() * (now - s.at).Seconds()
	s.at = now
}

// startDecoding adds j, which decodes tokens, to the batch.
func (s *server) startDecoding(now time.Duration, j *job, tokens int) {
	s.advance(now)
	j.finish = s.progress + float64(tokens)
	heap.Push(&s.decoding, j)
}

// nextFinish returns when the first decoding job finishes at the current
// rate, or false when none decodes.
func (s *server) nextFinish() (time.Duration, bool) {
	if len(s.decoding) == 0 {
		return 0, false
	}
	left := math.Max(s.decoding[0].finish-s.progress, 0)
	return s.at + time.Duration(math.Ceil(left/s.rate()*float64(time.Second))), true
}

// finished pops the jobs done by now.
func (s *server) finished(now time.Duration) []*job {
	s.advance(now)
	var done []*job
	for len(s.decoding) > 0 && s.decoding[0].finish <= s.progress+1e-6 {
		done = append(done, heap.Pop(&s.decoding).(*job))
	}
	return done
}

// jobHeap is a min-heap of jobs by finish.
type jobHeap []*job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, j int) bool { return h[i].finish < h[j].finish }
func (h jobHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *jobHeap) Push(x any)        { *h = append(*h, x.(*job)) }
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	*h = old[:len(old)-1]
	return j
}
