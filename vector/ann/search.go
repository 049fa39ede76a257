package ann

import "math"

// searcher is the per-goroutine scratch space of a graph walk. Search takes
// one from the graph's pool, so steady-state queries allocate only their
// result slice.
type searcher struct {
	marks []uint16 // visited when marks[i] == epoch
	epoch uint16

	cands  maxHeap
	res    minHeap
	nbuf   []uint32
	sorted []cand
	pick   []cand
	sel    []cand
	prune  []cand
}

func newSearcher(n int) *searcher {
	return &searcher{marks: make([]uint16, n)}
}

// reset starts a new visited generation; the mark array is cleared only
// when the 16-bit epoch wraps, once every 65535 walks.
func (w *searcher) reset() {
	w.epoch++
	if w.epoch == 0 {
		clear(w.marks)
		w.epoch = 1
	}
}

// visit marks i and reports whether it was already visited in this walk.
func (w *searcher) visit(i uint32) bool {
	if w.marks[i] == w.epoch {
		return true
	}
	w.marks[i] = w.epoch
	return false
}

// Filtered-search planning. A filtered graph walk still has to traverse
// rejected nodes to stay connected, so with an accepted fraction f it
// scores roughly V/f nodes, where V is what the unfiltered walk scores;
// scanning only the accepted rows scores f·n rows plus n cheap accept
// calls. Search picks whichever is predicted cheaper, and caps the graph
// walk at twice the scan's cost, so a bad estimate costs at most about three
// times the optimum. Costs are in units of one sequential 512-dim dot.
const (
	sampleSize = 256
	// visitsPerEf is V/ef, measured at 20k×512: 6-9 on embedding-like
	// data, 12 on isotropic clusters, 25 on uniformly random vectors.
	visitsPerEf = 10
	// walkNodeCost: a node scored during a walk cost ~450-550 ns against
	// ~150 ns per row of a sequential scan (cache misses, heap upkeep).
	walkNodeCost = 3
	// acceptCost: an accept call (a bitmap or map probe) against a dot.
	acceptCost = 1.0 / 32
)

// Search returns up to k nodes most similar to query, best first, among
// those for which accept returns true (nil accepts all). vectors must be the
// matrix the graph was built over. ef is the beam width (<= 0 selects
// DefaultEf; it is raised to k): larger is slower and more accurate.
//
// Filtering happens during the walk, not after it, so the result still
// holds k accepted nodes when most nodes are rejected. When the accepted
// fraction (estimated from a fixed sample of 256 nodes) is small enough that
// scanning the accepted rows is cheaper than a filtered walk, or the walk
// exceeds that cost or finds fewer than k results, Search answers exactly
// with a scan instead. Fewer than k hits are returned only when fewer than k
// nodes are accepted.
//
// Search returns nil when k <= 0, the graph is empty, len(query) differs
// from Dims, or vectors holds fewer than Len rows. It is safe for concurrent
// use.
func (g *Graph) Search(vectors, query []float32, k, ef int, accept func(i int) bool) []Hit {
	if g == nil || k <= 0 || g.n == 0 || len(query) != g.dims || len(vectors)/g.dims < g.n {
		return nil
	}
	vectors = vectors[:g.n*g.dims]
	raceReadFloats(query) // dot is not instrumented
	raceReadFloats(vectors)
	if ef <= 0 {
		ef = DefaultEf
	}
	ef = max(ef, k)
	if g.n <= ef {
		return g.scan(vectors, query, k, accept)
	}
	budget := math.MaxInt
	if accept != nil {
		f := g.acceptedFraction(accept)
		scanCost := f*float64(g.n) + acceptCost*float64(g.n)
		walkCost := walkNodeCost * float64(visitsPerEf*ef) / math.Max(f, 1e-9)
		if f*float64(g.n) < float64(k) || scanCost <= walkCost {
			return g.scan(vectors, query, k, accept)
		}
		budget = int(2 * scanCost / walkNodeCost)
	}

	w, _ := g.pool.Get().(*searcher)
	if w == nil {
		w = newSearcher(g.n)
	}
	defer g.pool.Put(w)

	cur := cand{g.entry, dot(query, g.vec(vectors, g.entry))}
	for l := g.maxLevel; l > 0; l-- {
		for changed := true; changed; {
			changed = false
			for _, e := range g.neighbours(cur.id, l) {
				if s := dot(query, g.vec(vectors, e)); s > cur.score {
					cur, changed = cand{e, s}, true
				}
			}
		}
	}
	if !g.walk(w, vectors, query, cur, ef, accept, budget) || len(w.res) < k {
		return g.scan(vectors, query, k, accept)
	}
	for len(w.res) > k {
		w.res.pop()
	}
	return drain(w.res)
}

// walk is the layer-0 beam search (algorithm 2) with filtering: every node
// is traversed, only accepted nodes enter the result set. It reports false
// when it scored more than budget nodes.
func (g *Graph) walk(w *searcher, vectors, query []float32, ep cand, ef int, accept func(int) bool, budget int) bool {
	w.reset()
	w.visit(ep.id)
	w.cands = append(w.cands[:0], ep)
	w.res = w.res[:0]
	if accept == nil || accept(int(ep.id)) {
		w.res = append(w.res, ep)
	}
	scored := 1
	for len(w.cands) > 0 {
		c := w.cands.pop()
		if len(w.res) >= ef && c.score < w.res[0].score {
			break
		}
		for _, e := range g.neighbours(c.id, 0) {
			if w.visit(e) {
				continue
			}
			s := dot(query, g.vec(vectors, e))
			scored++
			if len(w.res) < ef || s > w.res[0].score {
				w.cands.push(cand{e, s})
				if accept == nil || accept(int(e)) {
					w.res.offer(cand{e, s}, ef)
				}
			}
		}
		if scored > budget {
			return false
		}
	}
	return true
}

// scan is the exact fallback over the graph's rows.
func (g *Graph) scan(vectors, query []float32, k int, accept func(int) bool) []Hit {
	h := make(minHeap, 0, min(k, g.n))
	bruteInto(&h, vectors, g.dims, g.n, query, k, accept)
	return drain(h)
}

// acceptedFraction estimates the share of nodes accept admits from a fixed,
// well-spread sample (a golden-ratio sequence, so filters correlated with
// row order — time ranges, deleted runs — are still sampled evenly).
func (g *Graph) acceptedFraction(accept func(int) bool) float64 {
	s := min(g.n, sampleSize)
	if s == g.n {
		c := 0
		for i := range g.n {
			if accept(i) {
				c++
			}
		}
		return float64(c) / float64(g.n)
	}
	const phi = 0.6180339887498949
	c := 0
	x := 0.5
	for range s {
		x += phi
		x -= math.Floor(x)
		if accept(min(int(x*float64(g.n)), g.n-1)) {
			c++
		}
	}
	return float64(c) / float64(s)
}
