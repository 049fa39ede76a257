package ann

import "slices"

// BruteForce returns the k rows of vectors (row-major, dims per row) with the
// highest dot product against query, best first, considering only rows for
// which accept returns true (a nil accept accepts every row). It is exact:
// use it for small segments, for heavily filtered searches, and as ground
// truth. Ties are broken by lower index first. It returns nil when k <= 0,
// dims <= 0 or len(query) != dims; a trailing partial row is ignored.
func BruteForce(vectors []float32, dims int, query []float32, k int, accept func(i int) bool) []Hit {
	if k <= 0 || dims <= 0 || len(query) != dims {
		return nil
	}
	n := len(vectors) / dims
	raceReadFloats(query) // dot is not instrumented
	raceReadFloats(vectors[:n*dims])
	h := make(minHeap, 0, min(k, n))
	bruteInto(&h, vectors, dims, n, query, k, accept)
	return drain(h)
}

// bruteInto scans rows [0, n) into the bounded result heap h.
func bruteInto(h *minHeap, vectors []float32, dims, n int, query []float32, k int, accept func(i int) bool) {
	for i := range n {
		if accept != nil && !accept(i) {
			continue
		}
		s := dot(query, vectors[i*dims:(i+1)*dims])
		h.offer(cand{id: uint32(i), score: s}, k)
	}
}

// drain converts a result heap into hits sorted best first.
func drain(h minHeap) []Hit {
	if len(h) == 0 {
		return nil
	}
	out := make([]Hit, len(h))
	for i, c := range h {
		out[i] = Hit{Index: int(c.id), Score: c.score}
	}
	slices.SortFunc(out, func(a, b Hit) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return a.Index - b.Index
	})
	return out
}
