package ann

import (
	"math"
	"math/rand/v2"
)

// randomUnit returns n uniformly random unit vectors (normalized gaussians):
// the hard case for graph indexes, as every point is nearly equidistant.
func randomUnit(n, dims int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	v := make([]float32, n*dims)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	normalizeRows(v, dims)
	return v
}

// clustered returns n unit vectors drawn around the given number of random
// centres, resembling text embeddings: a point's cosine to its centre is
// about 0.75 and to other centres about 0.
func clustered(n, dims, clusters int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 2))
	centres := randomUnit(clusters, dims, seed^0xc1)
	sigma := 0.9 / math.Sqrt(float64(dims))
	v := make([]float32, n*dims)
	for i := range n {
		c := centres[r.IntN(clusters)*dims:]
		for j := range dims {
			v[i*dims+j] = c[j] + float32(sigma*r.NormFloat64())
		}
	}
	normalizeRows(v, dims)
	return v
}

// embeddingLike returns n unit vectors shaped like text embeddings: 64
// cluster centres, and within each cluster variation concentrated in a few
// dozen directions with a decaying spectrum (as PCA of real embeddings
// shows), plus a little isotropic noise. Cosine to the own centre is about
// 0.7-0.8, as with isotropic clusters, but the intrinsic dimension is low.
func embeddingLike(n, dims int, seed uint64) []float32 {
	const clusters, rank = 64, 64
	r := rand.New(rand.NewPCG(seed, 3))
	centres := randomUnit(clusters, dims, 0xce)
	basis := randomUnit(clusters*rank, dims, 0xba) // per-cluster directions
	iso := 0.4 / math.Sqrt(float64(dims))
	v := make([]float32, n*dims)
	for i := range n {
		c := r.IntN(clusters)
		row := v[i*dims : (i+1)*dims]
		copy(row, centres[c*dims:(c+1)*dims])
		for j := range rank {
			a := float32(0.5 / math.Sqrt(math.Sqrt(float64(j+1))) * r.NormFloat64())
			u := basis[(c*rank+j)*dims:]
			for d := range row {
				row[d] += a * u[d]
			}
		}
		for d := range row {
			row[d] += float32(iso * r.NormFloat64())
		}
	}
	normalizeRows(v, dims)
	return v
}

func normalizeRows(v []float32, dims int) {
	for i := 0; i < len(v); i += dims {
		var s float64
		for _, x := range v[i : i+dims] {
			s += float64(x) * float64(x)
		}
		inv := float32(1 / math.Sqrt(s))
		for j := range v[i : i+dims] {
			v[i+j] *= inv
		}
	}
}

// recallAt computes mean recall of Search against BruteForce over queries.
func recallAt(g *Graph, vecs, queries []float32, dims, k, ef int, accept func(int) bool) float64 {
	var hit, total int
	for q := 0; q < len(queries); q += dims {
		query := queries[q : q+dims]
		exact := BruteForce(vecs, dims, query, k, accept)
		got := g.Search(vecs, query, k, ef, accept)
		want := make(map[int]bool, len(exact))
		for _, h := range exact {
			want[h.Index] = true
		}
		for _, h := range got {
			if want[h.Index] {
				hit++
			}
		}
		total += len(exact)
	}
	if total == 0 {
		return 1
	}
	return float64(hit) / float64(total)
}
