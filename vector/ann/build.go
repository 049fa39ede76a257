package ann

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Build constructs an HNSW graph over vectors, a row-major n×dims matrix of
// unit vectors that the graph does not retain (Search takes the same matrix
// again, typically aliasing a memory-mapped segment). Build checks ctx
// between insertions and returns ctx.Err() (wrapped) when cancelled.
func Build(ctx context.Context, vectors []float32, dims int, p Params) (*Graph, error) {
	if dims <= 0 {
		return nil, fmt.Errorf("%w: dims %d must be positive", ErrInvalid, dims)
	}
	if len(vectors)%dims != 0 {
		return nil, fmt.Errorf("%w: %d floats is not a multiple of dims %d", ErrInvalid, len(vectors), dims)
	}
	n := len(vectors) / dims
	if n > maxNodes {
		return nil, fmt.Errorf("%w: %d vectors exceeds the limit of %d", ErrInvalid, n, maxNodes)
	}
	if p.M == 0 {
		p.M = DefaultM
	}
	if p.M < 2 || p.M > maxM {
		return nil, fmt.Errorf("%w: M %d outside [2, %d]", ErrInvalid, p.M, maxM)
	}
	if p.EfConstruction == 0 {
		p.EfConstruction = DefaultEfConstruction
	}
	if p.EfConstruction < 0 {
		return nil, fmt.Errorf("%w: EfConstruction %d is negative", ErrInvalid, p.EfConstruction)
	}
	p.EfConstruction = max(p.EfConstruction, p.M)
	if p.Workers < 0 {
		return nil, fmt.Errorf("%w: Workers %d is negative", ErrInvalid, p.Workers)
	}
	if p.Workers == 0 {
		p.Workers = runtime.GOMAXPROCS(0)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ann: build: %w", err)
	}

	g := &Graph{n: n, dims: dims, m: p.M, m0: 2 * p.M, efc: p.EfConstruction, seed: p.Seed, entry: noNode}
	// Assign every node's top layer up front from the seed, so the layout
	// (and with one worker the whole graph) is reproducible, and so the
	// upper-layer storage can be sized before any insertion.
	rng := rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15))
	if err := g.layout(0, nil, rng); err != nil {
		return nil, err
	}
	if n == 0 {
		return g, nil
	}
	g.entry = 0
	g.maxLevel = g.level(0)
	// Node 0 is the initial entry point.
	if err := g.insertFrom(ctx, vectors, 1, p.Workers); err != nil {
		return nil, err
	}
	return g, nil
}

// Extend returns a new graph over vectors (row-major n×dims), whose first
// base.Len() rows must be the vectors base was built over, in the same
// order: it keeps base's structure for them and inserts the rest with
// base's parameters (M, efConstruction), using p.Workers goroutines
// (0: GOMAXPROCS; p's other fields are ignored). This is what a merge of
// segments wants: the largest input's graph grows by the smaller inputs'
// vectors instead of a graph of them all being built from nothing. base
// is not modified (it may alias a memory map); ctx is checked between
// insertions as in Build.
func Extend(ctx context.Context, base *Graph, vectors []float32, dims int, p Params) (*Graph, error) {
	if base == nil {
		return nil, fmt.Errorf("%w: no base graph", ErrInvalid)
	}
	if dims != base.dims {
		return nil, fmt.Errorf("%w: dims %d, base graph has %d", ErrInvalid, dims, base.dims)
	}
	if len(vectors)%dims != 0 {
		return nil, fmt.Errorf("%w: %d floats is not a multiple of dims %d", ErrInvalid, len(vectors), dims)
	}
	n := len(vectors) / dims
	if n < base.n {
		return nil, fmt.Errorf("%w: %d vectors, fewer than the base graph's %d", ErrInvalid, n, base.n)
	}
	if n > maxNodes {
		return nil, fmt.Errorf("%w: %d vectors exceeds the limit of %d", ErrInvalid, n, maxNodes)
	}
	if p.Workers < 0 {
		return nil, fmt.Errorf("%w: Workers %d is negative", ErrInvalid, p.Workers)
	}
	if base.n == 0 {
		return Build(ctx, vectors, dims, Params{M: base.m, EfConstruction: base.efc, Seed: base.seed, Workers: p.Workers})
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ann: extend: %w", err)
	}
	g := &Graph{n: n, dims: dims, m: base.m, m0: base.m0, efc: base.efc, seed: base.seed, entry: base.entry, maxLevel: base.maxLevel}
	// The new nodes' layers come from a stream of their own, derived from
	// the seed and the base's size: the same inputs give the same layout.
	s := base.seed ^ mix(uint32(base.n), 0x5eed)
	rng := rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
	if err := g.layout(base.n, base, rng); err != nil {
		return nil, err
	}
	copy(g.level0, base.level0[:base.n*(base.m0+1)])
	copy(g.upper, base.upper[:base.offsets[base.n]])
	if err := g.insertFrom(ctx, vectors, base.n, p.Workers); err != nil {
		return nil, err
	}
	return g, nil
}

// layout sizes g's storage for g.n nodes: nodes below keep are base's, with
// its layers; the others draw theirs from rng.
func (g *Graph) layout(keep int, base *Graph, rng *rand.Rand) error {
	mL := 1 / math.Log(float64(g.m))
	g.offsets = make([]uint32, g.n+1)
	var upper uint64
	for i := range g.n {
		var l int
		if i < keep {
			l = base.level(uint32(i))
		} else {
			l = min(int(-math.Log(1-rng.Float64())*mL), maxLevel) // 1-u is in (0, 1]
		}
		upper += uint64(l) * uint64(g.m+1)
		if upper > math.MaxUint32 {
			return fmt.Errorf("%w: upper layers of %d vectors do not fit in 32-bit offsets", ErrInvalid, g.n)
		}
		g.offsets[i+1] = uint32(upper)
	}
	g.upper = make([]uint32, upper)
	g.level0 = make([]uint32, g.n*(g.m0+1))
	return nil
}

// insertFrom inserts nodes from..n-1 of vectors into g (whose nodes below
// from are linked already), on workers goroutines (0: GOMAXPROCS).
func (g *Graph) insertFrom(ctx context.Context, vectors []float32, from, workers int) error {
	n := g.n
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	b := &builder{g: g, vectors: vectors[:n*g.dims], par: workers > 1 && n-from > 1}
	if b.par {
		b.locks = make([]sync.Mutex, n)
	}
	var next atomic.Int64
	next.Store(int64(from))
	workers = max(1, min(workers, n-from))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for wi := range workers {
		wg.Go(func() {
			raceReadFloats(b.vectors) // dot is not instrumented
			w := newSearcher(n)
			for count := 0; ; count++ {
				if count%32 == 0 {
					if err := ctx.Err(); err != nil {
						errs[wi] = err
						return
					}
				}
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				b.insert(w, uint32(i))
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("ann: build: %w", err)
		}
	}
	return nil
}

// builder holds the mutable state of one Build: per-node locks guarding
// neighbour lists (only when inserting in parallel) and the entry point.
type builder struct {
	g       *Graph
	vectors []float32
	par     bool
	locks   []sync.Mutex
	epMu    sync.RWMutex
}

func (b *builder) lock(i uint32) {
	if b.par {
		b.locks[i].Lock()
	}
}

func (b *builder) unlock(i uint32) {
	if b.par {
		b.locks[i].Unlock()
	}
}

// record returns node i's raw record on layer l: count, then slots.
func (b *builder) record(i uint32, l int) []uint32 {
	g := b.g
	if l == 0 {
		base := int(i) * (g.m0 + 1)
		return g.level0[base : base+g.m0+1]
	}
	base := int(g.offsets[i]) + (l-1)*(g.m+1)
	return g.upper[base : base+g.m+1]
}

// neighbours copies node i's layer-l list into w.nbuf under i's lock, so
// the caller can score them without blocking writers.
func (b *builder) neighbours(w *searcher, i uint32, l int) []uint32 {
	b.lock(i)
	r := b.record(i, l)
	w.nbuf = append(w.nbuf[:0], r[1:1+r[0]]...)
	b.unlock(i)
	return w.nbuf
}

// insert links node q into every layer up to its level (Malkov & Yashunin,
// algorithm 1, with the neighbour-selection heuristic of algorithm 4).
func (b *builder) insert(w *searcher, q uint32) {
	g := b.g
	qv := g.vec(b.vectors, q)
	lvl := g.level(q)

	b.epMu.RLock()
	ep, top := g.entry, g.maxLevel
	b.epMu.RUnlock()
	raise := false
	if lvl > top {
		// A new top node: hold the entry point exclusively until it is
		// fully linked, so nobody enters through a half-built node.
		b.epMu.Lock()
		ep, top = g.entry, g.maxLevel
		if raise = lvl > top; !raise {
			b.epMu.Unlock()
		}
	}

	cur := cand{ep, dot(qv, g.vec(b.vectors, ep))}
	for l := top; l > lvl; l-- {
		cur = b.greedy(w, qv, cur, l)
	}
	for l := min(lvl, top); l >= 0; l-- {
		b.beam(w, qv, q, cur, l)
		// Results best first.
		w.sorted = append(w.sorted[:0], w.res...)
		sortDesc(w.sorted)
		cur = w.sorted[0]
		sel := b.heuristic(w, q, w.sorted, g.m)
		b.lock(q)
		r := b.record(q, l)
		r[0] = uint32(len(sel))
		for j, c := range sel {
			r[1+j] = c.id
		}
		b.unlock(q)
		w.sel = append(w.sel[:0], sel...) // heuristic reuses w.pick when pruning
		for _, c := range w.sel {
			b.connect(w, c.id, q, c.score, l)
		}
	}
	if raise {
		g.entry, g.maxLevel = q, lvl
		b.epMu.Unlock()
	}
}

// beam is the insertion-time layer search (algorithm 2) with beam width
// efConstruction, leaving the results in w.res. Node self is never returned.
func (b *builder) beam(w *searcher, qv []float32, self uint32, ep cand, l int) {
	g := b.g
	w.reset()
	w.visit(self)
	w.visit(ep.id)
	w.cands = append(w.cands[:0], ep)
	w.res = append(w.res[:0], ep)
	for len(w.cands) > 0 {
		c := w.cands.pop()
		if len(w.res) >= g.efc && c.score < w.res[0].score {
			break
		}
		for _, e := range b.neighbours(w, c.id, l) {
			if w.visit(e) {
				continue
			}
			s := dot(qv, g.vec(b.vectors, e))
			if len(w.res) < g.efc || s > w.res[0].score {
				w.cands.push(cand{e, s})
				w.res.offer(cand{e, s}, g.efc)
			}
		}
	}
}

// greedy walks layer l from cur to a local maximum of similarity to qv.
func (b *builder) greedy(w *searcher, qv []float32, cur cand, l int) cand {
	for changed := true; changed; {
		changed = false
		for _, e := range b.neighbours(w, cur.id, l) {
			if s := dot(qv, b.g.vec(b.vectors, e)); s > cur.score {
				cur, changed = cand{e, s}, true
			}
		}
	}
	return cur
}

// heuristic keeps at most m of cands (sorted best first by similarity to
// node base), skipping any candidate that is more similar to an already kept
// neighbour than to base. This keeps edges pointing in diverse directions,
// which is what makes HNSW work on clustered data, and keeps long links
// between clusters.
//
// Exact copies of base (similarity at least base's self-similarity) pass
// that test against each other, so they are capped at m/2: a group of more
// than m identical vectors would otherwise fill every member's list with
// copies and become an island cut off from the rest of the graph. Which
// copies are kept is decided by a hash of (base, copy) rather than by index,
// so that every copy keeps some in-edges and the copies stay connected.
func (b *builder) heuristic(w *searcher, base uint32, cands []cand, m int) []cand {
	bv := b.g.vec(b.vectors, base)
	self := dot(bv, bv)
	p := 0
	for p < len(cands) && cands[p].score >= self {
		p++
	}
	if p > m/2 {
		slices.SortFunc(cands[:p], func(x, y cand) int {
			hx, hy := mix(base, x.id), mix(base, y.id)
			switch {
			case hx < hy:
				return -1
			case hx > hy:
				return 1
			}
			return 0
		})
	}
	w.pick = w.pick[:0]
	copies := 0
	for _, c := range cands {
		if len(w.pick) >= m {
			break
		}
		if c.score >= self {
			if copies >= m/2 {
				continue
			}
			copies++
			w.pick = append(w.pick, c)
			continue
		}
		cv := b.g.vec(b.vectors, c.id)
		good := true
		for _, s := range w.pick {
			if dot(cv, b.g.vec(b.vectors, s.id)) > c.score {
				good = false
				break
			}
		}
		if good {
			w.pick = append(w.pick, c)
		}
	}
	return w.pick
}

// connect adds the back edge s→q on layer l, pruning s's list with the
// heuristic when it is full.
func (b *builder) connect(w *searcher, s, q uint32, score float32, l int) {
	g := b.g
	maxDeg := g.m
	if l == 0 {
		maxDeg = g.m0
	}
	b.lock(s)
	defer b.unlock(s)
	r := b.record(s, l)
	c := int(r[0])
	for _, e := range r[1 : 1+c] {
		if e == q {
			return
		}
	}
	if c < maxDeg {
		r[1+c] = q
		r[0]++
		return
	}
	sv := g.vec(b.vectors, s)
	w.prune = append(w.prune[:0], cand{q, score})
	for _, e := range r[1 : 1+c] {
		w.prune = append(w.prune, cand{e, dot(sv, g.vec(b.vectors, e))})
	}
	sortDesc(w.prune)
	sel := b.heuristic(w, s, w.prune, maxDeg)
	r[0] = uint32(len(sel))
	for j, x := range sel {
		r[1+j] = x.id
	}
}

// mix is a splitmix64 finaliser over a pair of node ids.
func mix(a, b uint32) uint64 {
	z := uint64(a)<<32 | uint64(b)
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// sortDesc sorts candidates best first with the package's tie-break.
func sortDesc(c []cand) {
	slices.SortFunc(c, func(a, b cand) int {
		switch {
		case worse(b, a):
			return -1
		case worse(a, b):
			return 1
		}
		return 0
	})
}
