//go:build !race

package ann

import (
	"context"
	"testing"
)

// The race detector makes sync.Pool drop items at random, so allocation
// counts are only meaningful without it; make test runs this file in a
// separate pass without -race.

// TestSearchAllocations builds its own 1000-node graph rather than the
// shared 10k "embed" data set: that build took ~19 s of CPU, nearly all of
// this test's cost in make test's allocation pass. At 1000 nodes Search
// still descends upper layers and takes the graph walk (n > ef), the path
// whose scratch space comes from the pool.
func TestSearchAllocations(t *testing.T) {
	const n, ef = 1000, 64
	all := embeddingLike(n+1, testDims, 11)
	vecs, q := all[:n*testDims], all[n*testDims:]
	g, err := Build(context.Background(), vecs, testDims, Params{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if g.maxLevel == 0 {
		t.Fatal("test graph has no upper layers; pick another seed")
	}
	g.Search(vecs, q, 10, ef, nil) // warm the pool
	allocs := testing.AllocsPerRun(100, func() { g.Search(vecs, q, 10, ef, nil) })
	if allocs > 1 {
		t.Errorf("Search allocates %.1f times per call, want <= 1 (the result)", allocs)
	}
}
