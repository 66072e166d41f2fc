package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The goals of issue 27 for affinity: at least 90% of a conversation's
// turns on one provider on a homogeneous workload, and, with one provider
// hot, a p99 no worse than least-connections'.
func TestAffinityGoals(t *testing.T) {
	t.Parallel()
	hom := homogeneousAgents
	lc := newAffinityRun(hom, false, 1).execute()
	aff := newAffinityRun(hom, true, 1).execute()
	t.Logf("homogeneous: least_connections %v; affinity %v", lc, aff)
	assert.GreaterOrEqual(t, aff.stickiness, 0.90)

	hot := homogeneousAgents
	hot.hotSlowdown = 3
	lcHot := newAffinityRun(hot, false, 1).execute()
	affHot := newAffinityRun(hot, true, 1).execute()
	t.Logf("one provider hot: least_connections %v; affinity %v", lcHot, affHot)
	assert.LessOrEqual(t, affHot.p99(), lcHot.p99())
}
