package ann

import (
	"errors"
	"sync"
)

// ErrCorrupt is wrapped by every Load error that is caused by the graph
// bytes themselves, so callers can tell a damaged segment (quarantine it,
// rebuild the graph or fall back to BruteForce) from a caller mistake.
var ErrCorrupt = errors.New("ann: corrupt graph")

// ErrInvalid is wrapped by Build errors about its arguments (dims, vector
// count, parameter ranges), which no retry can fix.
var ErrInvalid = errors.New("ann: invalid argument")

// Hit is one search result: the row index of a vector in the segment and its
// dot-product similarity to the query (cosine similarity for unit vectors).
type Hit struct {
	Index int
	Score float32
}

// Default parameters, chosen from the measurements in the package doc.
const (
	// DefaultM is the per-node degree on the upper layers; layer 0 allows
	// 2*M. 16 is the usual sweet spot for 256-1024 dims: lower M lost recall
	// on random unit vectors, higher M mostly added build time.
	DefaultM = 16
	// DefaultEfConstruction is the beam width used while inserting.
	DefaultEfConstruction = 200
	// DefaultEf is the search beam width used when Search is passed ef <= 0.
	DefaultEf = 128
)

// Limits that keep every size computation in range and every corrupt header
// rejectable without allocating.
const (
	maxM     = 256
	maxLevel = 31
	maxNodes = 1<<32 - 2 // node ids are uint32; ^uint32(0) means "no node"
	noNode   = ^uint32(0)
)

// Params tunes Build. The zero value selects the defaults.
type Params struct {
	// M is the maximum degree on layers >= 1 (layer 0 keeps up to 2*M).
	// Zero means DefaultM.
	M int
	// EfConstruction is the beam width of the search run for every
	// insertion; higher builds a better graph more slowly. Zero means
	// DefaultEfConstruction; it is raised to at least M.
	EfConstruction int
	// Seed drives the random layer assignment. With Workers == 1 the same
	// seed and vectors always produce byte-identical graphs.
	Seed uint64
	// Workers is the number of goroutines inserting concurrently. Zero
	// means GOMAXPROCS. With more than one worker the graph is as good but
	// not reproducible, because insertion order interleaves.
	Workers int
}

// Graph is an HNSW index over vectors it does not own. Its neighbour lists
// use the serialized layout directly (see the package doc), so a Graph made
// by Load aliases the caller's bytes and one made by Build marshals with a
// single copy. A Graph is immutable once returned and safe for concurrent
// Search calls.
type Graph struct {
	n, dims  int
	m, m0    int // max degree on upper layers / on layer 0
	entry    uint32
	maxLevel int
	efc      int
	seed     uint64

	// level0 holds n records of stride m0+1: a count, then m0 slots.
	level0 []uint32
	// offsets[i]..offsets[i+1] is node i's span in upper: level(i) records
	// of stride m+1 for layers 1..level(i).
	offsets []uint32
	upper   []uint32

	pool sync.Pool // *searcher
}

// Len reports the number of nodes (vectors) the graph indexes.
func (g *Graph) Len() int { return g.n }

// Dims reports the vector dimensionality the graph was built for; Search
// rejects queries of any other length.
func (g *Graph) Dims() int { return g.dims }

// M reports the upper-layer degree bound the graph was built with.
func (g *Graph) M() int { return g.m }

// neighbours returns node i's neighbour list on layer l. The caller
// guarantees level(i) >= l (Build by construction, Load by validation).
func (g *Graph) neighbours(i uint32, l int) []uint32 {
	if l == 0 {
		base := int(i) * (g.m0 + 1)
		c := int(g.level0[base])
		return g.level0[base+1 : base+1+c]
	}
	base := int(g.offsets[i]) + (l-1)*(g.m+1)
	c := int(g.upper[base])
	return g.upper[base+1 : base+1+c]
}

// level returns the top layer of node i.
func (g *Graph) level(i uint32) int {
	return int(g.offsets[i+1]-g.offsets[i]) / (g.m + 1)
}

// vec returns row i of vectors.
func (g *Graph) vec(vectors []float32, i uint32) []float32 {
	o := int(i) * g.dims
	return vectors[o : o+g.dims : o+g.dims]
}
