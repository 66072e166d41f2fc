package pool

import (
	"container/heap"
	"math"
	"slices"
	"sync"
	"time"
)

// Affinity keeps a conversation's requests on one provider, so that the
// provider's prefix cache serves its turns (onwards 2.0's
// fallback.affinity). A walk names its conversation with
// [SelectIter.SetConversation]; the key maps to a point in [0, 1).
//
// In a priority pool, as in onwards, the preferred provider is tried first
// for the conversations whose point is below the pool's affinity share,
// and the alternates first for the others. The share admits about
// TargetConversations of the conversations seen in the last ActiveWindow
// and is recomputed at multiples of UpdateInterval of the clock's time, so
// replicas that see the same conversations agree without sharing state; it
// moves only when the admitted count leaves TargetConversations ± Margin.
// An AIMD controller's share, when lower, caps it.
//
// In a pool of any other strategy (this library's extension) each
// conversation has a provider of its own, by weighted rendezvous hashing,
// and keeps it while that provider is within LoadBound of the pool's load:
// taking the request leaves it at most ceil(LoadBound × (in flight + 1) ×
// its weight / total weight) requests. Past the bound, or when the
// provider is full or excluded, the strategy picks as usual, so affinity
// never piles requests on a hot provider.
//
// The zero Affinity is not valid; start from [DefaultAffinity].
type Affinity struct {
	TargetConversations int           // 1 to 1000000
	Margin              int           // 0: a tenth of the target, at least 1; at most the target
	ActiveWindow        time.Duration // 1 s to 24 h
	UpdateInterval      time.Duration // 1 s to ActiveWindow
	MaxTracked          int           // TargetConversations+Margin to 10000000
	LoadBound           float64       // above 1; 0: 1.25
}

// DefaultAffinity returns onwards' defaults for a target of conversations:
// a 10-minute window, an update each minute, 100000 tracked, and this
// library's load bound of 1.25.
func DefaultAffinity(targetConversations int) Affinity {
	return Affinity{TargetConversations: targetConversations, ActiveWindow: 10 * time.Minute,
		UpdateInterval: time.Minute, MaxTracked: 100000, LoadBound: DefaultLoadBound}
}

// DefaultLoadBound is Affinity's LoadBound when it is 0.
const DefaultLoadBound = 1.25

func (a Affinity) margin() int {
	if a.Margin > 0 {
		return a.Margin
	}
	return max(1, (a.TargetConversations+9)/10)
}

func (a Affinity) loadBound() float64 {
	if a.LoadBound == 0 {
		return DefaultLoadBound
	}
	return a.LoadBound
}

// checkAffinity validates an Affinity at place, with onwards' bounds.
func checkAffinity(place string, a Affinity) []*FieldError {
	var errs []*FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldErr(place+"."+field, format, args...))
	}
	if a.TargetConversations < 1 || a.TargetConversations > 1_000_000 {
		bad("target_conversations", "%d; want 1 to 1000000", a.TargetConversations)
	}
	if a.Margin < 0 || a.Margin > a.TargetConversations {
		bad("margin", "%d; want 1 to target_conversations (%d), or leave it out", a.Margin, a.TargetConversations)
	}
	if a.ActiveWindow < time.Second || a.ActiveWindow > 24*time.Hour {
		bad("active_window_ms", "%v; want 1 s to 24 h", a.ActiveWindow)
	}
	if a.UpdateInterval < time.Second || a.UpdateInterval > a.ActiveWindow {
		bad("update_interval_ms", "%v; want 1 s to active_window_ms (%v)", a.UpdateInterval, a.ActiveWindow)
	}
	if a.MaxTracked < a.TargetConversations+a.margin() || a.MaxTracked > 10_000_000 {
		bad("max_tracked", "%d; want target_conversations + margin (%d) to 10000000", a.MaxTracked, a.TargetConversations+a.margin())
	}
	if a.LoadBound != 0 && !(a.LoadBound > 1 && !math.IsInf(a.LoadBound, 0)) {
		bad("load_bound", "%v; want a finite number above 1, or 0 for %v", a.LoadBound, DefaultLoadBound)
	}
	return errs
}

// conversationPoint is a conversation key's point in [0, 1).
func conversationPoint(key uint64) float64 {
	return float64(key>>11) / (1 << 53)
}

// affinityTracker is one priority pool's view of its active conversations
// and its affinity share. It is safe for simultaneous use.
type affinityTracker struct {
	mu    sync.Mutex
	cfg   Affinity
	seen  map[uint64]time.Time // conversation key -> last request
	top   keyHeap              // the tracked keys, largest first, for eviction
	share float64
	epoch int64 // the update interval last computed; -1: none
}

func newAffinityTracker(cfg Affinity) *affinityTracker {
	return &affinityTracker{cfg: cfg, seen: make(map[uint64]time.Time), share: 1, epoch: -1}
}

// route records a request of conversation key at now and reports whether
// it belongs on the preferred provider.
func (t *affinityTracker) route(key uint64, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record(key, now)
	if epoch := now.UnixMilli() / t.cfg.UpdateInterval.Milliseconds(); epoch != t.epoch {
		t.epoch = epoch
		t.update(now)
	}
	return conversationPoint(key) < t.share
}

// record tracks key. A full tracker keeps the conversations of the smallest
// points, the only ones that decide the share.
func (t *affinityTracker) record(key uint64, now time.Time) {
	if _, ok := t.seen[key]; ok {
		t.seen[key] = now
		return
	}
	if len(t.seen) >= t.cfg.MaxTracked {
		if len(t.top) == 0 || t.top[0] <= key {
			return
		}
		delete(t.seen, heap.Pop(&t.top).(uint64))
	}
	t.seen[key] = now
	heap.Push(&t.top, key)
}

// update forgets the conversations idle past the window and moves the share
// if the admitted count left the target's margin.
func (t *affinityTracker) update(now time.Time) {
	cutoff := now.Add(-t.cfg.ActiveWindow)
	points := make([]float64, 0, len(t.seen))
	t.top = t.top[:0]
	for k, last := range t.seen {
		if last.Before(cutoff) {
			delete(t.seen, k)
			continue
		}
		points = append(points, conversationPoint(k))
		t.top = append(t.top, k)
	}
	heap.Init(&t.top)
	slices.Sort(points)
	admitted, _ := slices.BinarySearch(points, t.share)
	target, margin := t.cfg.TargetConversations, t.cfg.margin()
	if admitted > target+margin || admitted+margin < target && t.share < 1 {
		t.share = 1 // fewer than target+1 conversations: admit them all
		if target < len(points) {
			t.share = points[target] // exactly target lie below it
		}
	}
}

// currentShare returns the affinity share.
func (t *affinityTracker) currentShare() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.share
}

// keyHeap is a max-heap of conversation keys.
type keyHeap []uint64

func (h keyHeap) Len() int           { return len(h) }
func (h keyHeap) Less(i, j int) bool { return h[i] > h[j] }
func (h keyHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *keyHeap) Push(x any)        { *h = append(*h, x.(uint64)) }
func (h *keyHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mix64 is SplitMix64's finalizer: a bijection that spreads every bit of
// x over the result.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
