package vectorbench

import (
	"math"
	"testing"
	"time"

	"github.com/tallyhq/tally/vector/ann"
)

// TestRecall checks the harness's recall@10 on 1k embedding-like vectors:
// the exact answer scores 1, an answer with three wrong rows scores 0.7,
// duplicates and out-of-range rows are not credited twice, and a row tying
// the 10th exact score is credited.
func TestRecall(t *testing.T) {
	const n, dims = 1000, 64
	all := embeddingLike(n+1, dims, 5)
	vecs, q := all[:n*dims], all[n*dims:]
	exact := ann.BruteForce(vecs, dims, q, topK, nil)
	if len(exact) != topK {
		t.Fatalf("exact answer has %d hits", len(exact))
	}
	idx := make([]int, topK)
	for i, h := range exact {
		idx[i] = h.Index
	}
	if r := recallAt(vecs, dims, q, exact, idx); r != 1 {
		t.Errorf("exact answer: recall %v, want 1", r)
	}
	// Replace the last three with the three worst rows.
	worst := ann.BruteForce(vecs, dims, negate(q), 3, nil)
	bad := append(append([]int{}, idx[:7]...), worst[0].Index, worst[1].Index, worst[2].Index)
	if r := recallAt(vecs, dims, q, exact, bad); math.Abs(r-0.7) > 1e-9 {
		t.Errorf("three wrong: recall %v, want 0.7", r)
	}
	dup := append(append([]int{}, idx[:5]...), idx[0], idx[0], -1, n+5, idx[5])
	if r := recallAt(vecs, dims, q, exact, dup); math.Abs(r-0.6) > 1e-9 {
		t.Errorf("duplicates and invalid rows: recall %v, want 0.6", r)
	}
	if r := recallAt(vecs, dims, q, exact, idx[:4]); math.Abs(r-0.4) > 1e-9 {
		t.Errorf("four answers: recall %v, want 0.4", r)
	}
	// A copy of the 10th row, appended as row n, ties it.
	tied := append(append([]float32{}, vecs...), vecs[exact[9].Index*dims:(exact[9].Index+1)*dims]...)
	alt := append(append([]int{}, idx[:9]...), n)
	if r := recallAt(tied, dims, q, exact, alt); r != 1 {
		t.Errorf("tie: recall %v, want 1", r)
	}
}

// TestEmbeddingLike checks the generator's rows are unit vectors,
// deterministic, and clustered: the nearest neighbour is far closer than a
// random row, and a row's cosine to its cluster centre is about 0.46.
func TestEmbeddingLike(t *testing.T) {
	const n, dims = 1000, 128
	a, b := embeddingLike(n, dims, 9), embeddingLike(n, dims, 9)
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("not deterministic")
		}
	}
	var nearest, random float64
	for i := range 50 {
		row := a[i*dims : (i+1)*dims]
		var s float64
		for _, x := range row {
			s += float64(x) * float64(x)
		}
		if math.Abs(s-1) > 1e-5 {
			t.Fatalf("row %d has squared norm %v", i, s)
		}
		hits := ann.BruteForce(a, dims, row, 2, nil)
		nearest += float64(hits[1].Score)
		random += float64(dot(row, a[(n-1-i)*dims:(n-i)*dims]))
	}
	nearest, random = nearest/50, random/50
	// Cosine to the own centre: recover centres as the generator does.
	centres := randomUnit(genClusters, dims, 9^0xce)
	var best float64
	for i := range 200 {
		var m float32
		for c := range genClusters {
			m = max(m, dot(a[i*dims:(i+1)*dims], centres[c*dims:(c+1)*dims]))
		}
		best += float64(m)
	}
	if best /= 200; best < 0.35 || best > 0.6 {
		t.Errorf("mean cosine to own centre %.3f, want about 0.46", best)
	}
	t.Logf("nearest-neighbour cosine %.3f, random pair %.3f, own centre %.3f", nearest, random, best)
	if nearest < 0.3 || random > 0.1 {
		t.Errorf("mean nearest-neighbour cosine %.3f, random pair %.3f: not clustered", nearest, random)
	}
}

// TestReceiptLines checks the receipt generator and the hashed embedder.
func TestReceiptLines(t *testing.T) {
	lines := receiptLines(500, 3)
	if len(lines) != 500 || lines[0] == "" {
		t.Fatalf("got %d lines, first %q", len(lines), lines[0])
	}
	v, err := hashedVectors(lines, 64)
	if err != nil || len(v) != 500*64 {
		t.Fatalf("hashed vectors: %d floats, %v", len(v), err)
	}
}

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 200; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	if p := percentile(lat, 50); p != 100 {
		t.Errorf("p50 = %v, want 100", p)
	}
	if p := percentile(lat, 99); p != 198 {
		t.Errorf("p99 = %v, want 198", p)
	}
	if p := percentile(lat[:1], 99); p != 200 {
		t.Errorf("p99 of one = %v, want 200", p)
	}
}

func negate(v []float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = -x
	}
	return out
}
