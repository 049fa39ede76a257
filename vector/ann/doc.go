// Package ann is Tally's approximate-nearest-neighbour index for cosine
// similarity over unit vectors (similarity = dot product), stored in the
// opaque "graph" section of a vector segment.
//
// # Algorithm
//
// The index is an HNSW graph (Malkov & Yashunin, 2016/2018), written here
// because coder/hnsw measured recall@10 of 0.03-0.05 on our data. Nodes get a
// random top layer (geometric, mL = 1/ln M); each insertion descends the
// upper layers greedily, runs a beam search of width EfConstruction on its
// own layers, and links to neighbours chosen by the paper's diversity
// heuristic (algorithm 4): M per upper layer, up to 2M on layer 0, with
// back-links pruned by the same heuristic. Two deviations, both measured:
// exact duplicates of a node are capped at M/2 of its links and chosen by a
// hash rather than by index (otherwise a group of more than 2M identical
// vectors forms an unreachable island), and layers are assigned up front
// from the seed so that a one-worker build is byte-for-byte reproducible.
// Parallel builds lock one node's list at a time (never two, so no lock
// ordering issues) and the entry point with an RWMutex.
//
// HNSW was kept over alternatives (IVF, a flat int8 scan) because on
// embedding-like data it reached recall@10 = 1.0 at ef = 64 while scoring
// under 5% of a 20k segment. Its weak spot is uniformly random
// high-dimensional vectors, where every point is nearly equidistant: there
// recall@10 >= 0.95 needs ef around 512 and the walk scores 40-50% of the
// nodes at 20k, so for such data (or small segments) BruteForce is as fast.
// An int8 first pass was not added: without SIMD in plain Go an int8 dot is
// no cheaper to compute than a float32 one, and a quantized copy would need
// its own storage in the segment.
//
// # Filtering
//
// Search applies accept during the walk: rejected nodes are still traversed
// (so the graph stays connected) but never enter the results. The accepted
// fraction is estimated from a fixed sample of 256 nodes; when scanning only
// the accepted rows is predicted cheaper than a walk that must score about
// 1/fraction times more nodes, Search scans instead, and a walk that
// overruns the scan's cost, or finds fewer than k results, also falls back
// to the exact scan. So k results are returned whenever k nodes are accepted.
//
// # Byte layout
//
// All integers are little-endian uint32; the layout is a whole number of
// words and every array is 4-byte aligned when the section is, so Load can
// alias a memory map without decoding. n is the node count, M0 = 2M.
//
//	header, 16 words (64 bytes):
//	  0 magic "TANN"     4 M (upper-layer degree)   8 upper words U  12-15 reserved, 0
//	  1 version (1)      5 M0 (layer-0 degree)      9 EfConstruction (informational)
//	  2 n                6 entry point (^0 if n=0)  10 seed low  11 seed high
//	  3 dims             7 max level
//	layer 0, n records of M0+1 words:   count, then M0 neighbour slots
//	offsets, n+1 words:                 node i's upper records are words
//	                                    [offsets[i], offsets[i+1]) of the
//	                                    upper area, one per layer 1..level(i)
//	upper area, U words:                records of M+1 words: count, M slots
//
// A node's level is (offsets[i+1]-offsets[i])/(M+1), so no separate level
// array is stored. The layer-0 record of node i starts at byte
// 64 + 4·i·(M0+1): one multiply, no indirection, on the hot path. Load checks
// the header, the exact length, every count, every neighbour index (< n, and
// on upper layers present on that layer) and the offsets, so Search on a
// loaded graph cannot read out of range; failures wrap ErrCorrupt. For
// M = 16 the graph costs about 136 bytes per node plus about 4.5% for upper
// layers.
package ann
