//go:build !race

package ann

import "testing"

// The race detector makes sync.Pool drop items at random, so allocation
// counts are only meaningful without it; make test runs this file in a
// separate pass without -race.

func TestSearchAllocations(t *testing.T) {
	d := testData(t, "embed")
	q := d.query(0)
	d.g.Search(d.vecs, q, 10, d.ef, nil) // warm the pool
	allocs := testing.AllocsPerRun(100, func() { d.g.Search(d.vecs, q, 10, d.ef, nil) })
	if allocs > 1 {
		t.Errorf("Search allocates %.1f times per call, want <= 1 (the result)", allocs)
	}
}
