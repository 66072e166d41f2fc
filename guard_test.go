package pool

import (
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestZeroGuardHoldsNothing(t *testing.T) {
	t.Parallel()
	var g ConcurrencyGuard
	require.NoError(t, g.Close())
	require.NoError(t, g.Close())
	assert.Nil(t, g.counter())
	var nilGuard *ConcurrencyGuard
	require.NoError(t, nilGuard.Close())
	var sel Selection
	sel.Report(Failure) // nothing to count against: no panic
	sel.CoolDown(1)
	assert.False(t, sel.Panic())
	sel = Selection{Guard: new(ConcurrencyGuard)}
	sel.Report(Failure)
	require.NoError(t, sel.Close())
}

// A block of guards fills its 512-byte size class exactly: a field added to
// a guard or to the header must change guardsPerBlock with it.
func TestGuardBlockFillsItsSizeClass(t *testing.T) {
	t.Parallel()
	assert.Equal(t, uintptr(8), unsafe.Sizeof(ConcurrencyGuard{}))
	assert.Equal(t, uintptr(512), unsafe.Sizeof(guardBlock{}))
}

// Guards come from blocks of guardsPerBlock: across several blocks every
// guard is its own, knows its counter, and releases exactly once.
func TestGuardsAreDistinctAcrossBlocks(t *testing.T) {
	t.Parallel()
	l := NewConcurrencyLimiter()
	const n = 3*guardsPerBlock + 5
	seen := make(map[*ConcurrencyGuard]bool, n)
	guards := make([]*ConcurrencyGuard, 0, n)
	for range n {
		g, ok := l.TryAcquire()
		require.True(t, ok)
		require.False(t, seen[g], "a guard handed out twice")
		seen[g] = true
		require.Same(t, l.counter(), g.counter())
		guards = append(guards, g)
	}
	assert.Equal(t, n, l.Active())
	for _, g := range guards {
		require.NoError(t, g.Close())
		require.NoError(t, g.Close())
	}
	assert.Equal(t, 0, l.Active())
}

// A guard closed long ago, closed again after its block has been replaced,
// takes nothing from the slots held now.
func TestStaleGuardCloseTakesNothing(t *testing.T) {
	t.Parallel()
	l := NewConcurrencyLimiter()
	old, _ := l.TryAcquire()
	require.NoError(t, old.Close())
	var held []*ConcurrencyGuard
	for range 2 * guardsPerBlock {
		g, _ := l.TryAcquire()
		held = append(held, g)
	}
	require.NoError(t, old.Close())
	assert.Equal(t, 2*guardsPerBlock, l.Active())
	for _, g := range held {
		g.Close()
	}
	assert.Equal(t, 0, l.Active())
}

// Tickets that miss the counter's block, as those drawn while another
// goroutine is still putting a new block in place do, get guards of their
// own that work like any other; the first ticket of a block's range makes
// the block.
func TestGuardForTicketOffBlock(t *testing.T) {
	t.Parallel()
	l := NewConcurrencyLimiter()
	c := l.counter()
	c.state.Store((guardsPerBlock - 2) << 32) // as if 60 guards had come and gone

	g1, _ := l.TryAcquire()
	g2, _ := l.TryAcquire()
	require.Nil(t, c.blk.Load(), "a ticket off a block's start makes no block")
	require.NotSame(t, g1, g2)
	for _, g := range []*ConcurrencyGuard{g1, g2} {
		require.Same(t, c, g.counter())
	}
	g3, _ := l.TryAcquire() // ticket 62: a block's first
	b := c.blk.Load()
	require.NotNil(t, b)
	assert.Equal(t, uint32(guardsPerBlock), b.base)
	assert.Same(t, &b.guards[0], g3)
	g4, _ := l.TryAcquire()
	assert.Same(t, &b.guards[1], g4)

	assert.Equal(t, 4, l.Active())
	for _, g := range []*ConcurrencyGuard{g1, g2, g3, g4, g1, g3} {
		require.NoError(t, g.Close())
	}
	assert.Equal(t, 0, l.Active())
}

// Tickets count modulo 2^32: across the wrap, every guard handed out is
// still its own, and the count returns to zero.
func TestGuardTicketsWrap(t *testing.T) {
	t.Parallel()
	l := NewConcurrencyLimiter()
	c := l.counter()
	c.state.Store((1<<32 - 3) << 32) // three tickets before the wrap
	seen := map[*ConcurrencyGuard]bool{}
	var held []*ConcurrencyGuard
	for range 2*guardsPerBlock + 5 {
		g, ok := l.TryAcquire()
		require.True(t, ok)
		require.False(t, seen[g], "guard handed out twice")
		require.Same(t, c, g.counter())
		seen[g] = true
		held = append(held, g)
	}
	assert.Equal(t, len(held), l.Active())
	assert.Equal(t, uint32(0), c.blk.Load().base%guardsPerBlock, "blocks start again after the wrap")
	for _, g := range held {
		require.NoError(t, g.Close())
	}
	assert.Equal(t, 0, l.Active())
}

// Many goroutines taking and closing guards, with some held across block
// changes: no guard is handed out twice while held, and the count returns
// exactly to zero.
func TestGuardsUnderConcurrency(t *testing.T) {
	t.Parallel()
	l := NewConcurrencyLimiterWithLimit(1000)
	var (
		mu   sync.Mutex
		held = make(map[*ConcurrencyGuard]bool)
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []*ConcurrencyGuard
			for i := range 5000 {
				g, ok := l.TryAcquire()
				if !ok {
					continue
				}
				mu.Lock()
				dup := held[g]
				held[g] = true
				mu.Unlock()
				if dup {
					t.Error("a held guard was handed out again")
					return
				}
				mine = append(mine, g)
				if i%3 != 0 || len(mine) > 50 {
					g := mine[0]
					mine = mine[1:]
					mu.Lock()
					delete(held, g)
					mu.Unlock()
					g.Close()
					g.Close()
				}
			}
			for _, g := range mine {
				g.Close()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 0, l.Active())
}
