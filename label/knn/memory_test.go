package knn

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/tallyhq/tally/embed/hashed"
)

// bruteForce is the top k by a full scan of dense cosine similarities.
func bruteForce(vs [][]float32, images []string, q []float32, k int, exclude string) []int {
	cos := cosine
	var idx []int
	for i := range vs {
		if images[i] != exclude {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return cos(vs[idx[a]], q) > cos(vs[idx[b]], q) })
	return idx[:min(k, len(idx))]
}

func TestMemoryIsExact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	emb, err := hashed.New(hashed.DefaultDims)
	if err != nil {
		t.Fatal(err)
	}
	words := []string{"TOTAL", "12.50", "CASH", "CHANGE", "GST", "RM", "SDN", "BHD", "JALAN", "TAMAN", "QTY", "DATE", "TIME", "TEL"}
	var texts []string
	for i := 0; i < 400; i++ {
		texts = append(texts, fmt.Sprintf("%s %s %s %d", words[rng.IntN(len(words))], words[rng.IntN(len(words))], words[rng.IntN(len(words))], rng.IntN(50)))
	}
	hv, err := emb.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	dense := make([][]float32, 200) // not unit, not sparse
	for i := range dense {
		dense[i] = make([]float32, hashed.DefaultDims)
		for j := range dense[i] {
			dense[i][j] = float32(rng.NormFloat64())
		}
	}
	for name, vs := range map[string][][]float32{"hashed": hv, "dense": dense} {
		m, err := NewMemory(hashed.DefaultDims)
		if err != nil {
			t.Fatal(err)
		}
		images := make([]string, len(vs))
		for i, v := range vs {
			images[i] = fmt.Sprintf("img-%d", i%7)
			if ok, err := m.Add(v, Neighbour{ImageID: images[i], Labels: []string{fmt.Sprint(i)}}); !ok || err != nil {
				t.Fatalf("Add: %v, %v", ok, err)
			}
		}
		for qi := 0; qi < 20; qi++ {
			q := vs[rng.IntN(len(vs))]
			exclude := images[rng.IntN(len(images))]
			got, err := m.Neighbours(ctx, q, 10, exclude)
			if err != nil {
				t.Fatal(err)
			}
			want := bruteForce(vs, images, q, 10, exclude)
			if len(got) != len(want) {
				t.Fatalf("%s: %d neighbours, want %d", name, len(got), len(want))
			}
			for i := range got {
				if got[i].ImageID == exclude {
					t.Fatalf("%s: neighbour of the excluded image", name)
				}
				// Equal similarities may come in either order: compare scores.
				wantSim := cosine(vs[want[i]], q)
				if math.Abs(got[i].Similarity-wantSim) > 1e-5 {
					t.Fatalf("%s query %d: neighbour %d similarity %v, want %v", name, qi, i, got[i].Similarity, wantSim)
				}
			}
		}
	}
}

func cosine(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return d / math.Sqrt(na*nb)
}

func TestMemoryEdges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := NewMemory(0); err == nil {
		t.Error("NewMemory(0) succeeded")
	}
	m, _ := NewMemory(3)
	if ok, err := m.Add([]float32{1, 0, 0}, Neighbour{ImageID: "a"}); ok || err != nil {
		t.Errorf("Add without labels = %v, %v; want not held", ok, err)
	}
	if _, err := m.Add([]float32{1, 0}, Neighbour{Labels: []string{"X"}}); err == nil {
		t.Error("Add of a short vector succeeded")
	}
	if _, err := m.Add([]float32{0, 0, 0}, Neighbour{Labels: []string{"X"}}); err == nil {
		t.Error("Add of a zero vector succeeded")
	}
	m.Add([]float32{1, 0, 0}, Neighbour{ImageID: "a", Labels: []string{"X"}, Merchant: "M"})
	m.Add([]float32{1, 1, 0}, Neighbour{ImageID: "b", Labels: []string{"Y"}})
	m.Add([]float32{0, 0, 1}, Neighbour{ImageID: "c", Labels: []string{"Z"}})
	if m.Len() != 3 {
		t.Errorf("Len = %d", m.Len())
	}
	got, err := m.Neighbours(ctx, []float32{2, 0, 0}, 5, "")
	if err != nil || len(got) != 3 || got[0].Labels[0] != "X" || got[0].Merchant != "M" || math.Abs(got[0].Similarity-1) > 1e-6 ||
		got[1].Labels[0] != "Y" || math.Abs(got[1].Similarity-math.Sqrt(0.5)) > 1e-6 || got[2].Similarity != 0 {
		t.Errorf("Neighbours = %+v, %v", got, err)
	}
	got[0].Labels[0] = "changed"
	if again, _ := m.Neighbours(ctx, []float32{2, 0, 0}, 1, "b"); len(again) != 1 || again[0].Labels[0] != "X" {
		t.Errorf("a caller's change reached the index, or k/exclusion ignored: %+v", again)
	}
	if got, _ := m.Neighbours(ctx, []float32{2, 0, 0}, 1, "a"); len(got) != 1 || got[0].ImageID != "b" {
		t.Errorf("excluding a: %+v", got)
	}
	if _, err := m.Neighbours(ctx, []float32{1}, 1, ""); err == nil {
		t.Error("short query succeeded")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Neighbours(cctx, []float32{1, 0, 0}, 1, ""); err == nil {
		t.Error("cancelled context succeeded")
	}
}
