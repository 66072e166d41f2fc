package pool

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundRobinTakesTurnsSkippingTheFull(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, []*Provider{
		NewProvider(newTestTarget(t, "https://a.example.com"), 5),
		NewProviderWithConcurrencyLimit(newTestTarget(t, "https://b.example.com"), 1, 1),
		NewProvider(newTestTarget(t, "https://drained.example.com"), 0),
		NewProvider(newTestTarget(t, "https://c.example.com"), 1),
	}, WithStrategy(RoundRobin))
	var got []int
	var held []Selection
	for range 6 {
		s, ok := p.Select()
		require.True(t, ok)
		got = append(got, s.Index)
		held = append(held, s)
	}
	// Turns 0..5 start at a, b, drained, c, a, b: b is full from its first
	// turn on, and drained has weight 0, so each moves on to the next.
	assert.Equal(t, []int{0, 1, 3, 3, 0, 3}, got)
	closeAll(held)
	for _, pr := range p.Providers() {
		assert.Equal(t, 0, pr.ActiveConnections())
	}
}

func TestRandomSourceRepeatsAWalk(t *testing.T) {
	t.Parallel()
	picks := func() []int {
		src := rand.New(rand.NewPCG(1, 2))
		p := newTestPool(t, []*Provider{
			NewProvider(newTestTarget(t, "https://a.example.com"), 1),
			NewProvider(newTestTarget(t, "https://b.example.com"), 2),
			NewProvider(newTestTarget(t, "https://c.example.com"), 3),
		}, WithRandomSource(src.Uint64))
		var out []int
		for range 200 {
			s, ok := p.SelectIter().Next()
			require.True(t, ok)
			out = append(out, s.Index)
			s.Close()
		}
		return out
	}
	first := picks()
	assert.Equal(t, first, picks(), "the same source, the same picks")
	assert.Contains(t, first, 0)
	assert.Contains(t, first, 2)
}
