package ann

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestExtendKeepsRecall(t *testing.T) {
	t.Parallel()
	const n, dims, k = 3000, 32, 10
	vecs := embeddingLike(n, dims, 7)
	queries := embeddingLike(100, dims, 8)
	ctx := context.Background()
	half, err := Build(ctx, vecs[:n/2*dims], dims, Params{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	ext, err := Extend(ctx, half, vecs, dims, Params{})
	if err != nil {
		t.Fatal(err)
	}
	if ext.Len() != n || half.Len() != n/2 {
		t.Fatalf("extended graph has %d nodes (base %d), want %d", ext.Len(), half.Len(), n)
	}
	full, err := Build(ctx, vecs, dims, Params{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	re, rf := recallAt(ext, vecs, queries, dims, k, 64, nil), recallAt(full, vecs, queries, dims, k, 64, nil)
	if re < 0.95 || re < rf-0.02 {
		t.Fatalf("recall@%d of the extended graph %.3f, of a graph built whole %.3f", k, re, rf)
	}
	t.Logf("recall@%d: extended %.3f, built whole %.3f", k, re, rf)
}

func TestExtendALoadedGraph(t *testing.T) {
	t.Parallel()
	const n, dims = 1200, 16
	vecs := randomUnit(n, dims, 11)
	ctx := context.Background()
	base, err := Build(ctx, vecs[:800*dims], dims, Params{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	data := base.MarshalBinary()
	orig := bytes.Clone(data)
	loaded, err := Load(data, 800)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := Extend(ctx, loaded, vecs, dims, Params{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, orig) {
		t.Fatal("Extend wrote into the loaded graph's bytes")
	}
	// The extended graph round-trips, and every node is reachable: each
	// vector finds itself.
	again, err := Load(ext.MarshalBinary(), n)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 37 {
		hits := again.Search(vecs, vecs[i*dims:(i+1)*dims], 1, 64, nil)
		if len(hits) != 1 || hits[0].Index != i {
			t.Fatalf("node %d searched for itself found %+v", i, hits)
		}
	}
}

func TestExtendWithNothingNew(t *testing.T) {
	t.Parallel()
	const n, dims = 500, 16
	vecs := randomUnit(n, dims, 5)
	queries := randomUnit(20, dims, 6)
	base, err := Build(context.Background(), vecs, dims, Params{Seed: 9, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	same, err := Extend(context.Background(), base, vecs, dims, Params{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(same.MarshalBinary(), base.MarshalBinary()) {
		t.Fatal("Extend with no new vectors changed the graph")
	}
	for i := range 20 {
		q := queries[i*dims : (i+1)*dims]
		a, b := base.Search(vecs, q, 5, 32, nil), same.Search(vecs, q, 5, 32, nil)
		for j := range a {
			if a[j] != b[j] {
				t.Fatalf("query %d: %v vs %v", i, a, b)
			}
		}
	}
}

func TestExtendRejectsBadInput(t *testing.T) {
	t.Parallel()
	const dims = 8
	vecs := randomUnit(100, dims, 2)
	base, err := Build(context.Background(), vecs[:50*dims], dims, Params{})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
		base *Graph
		vecs []float32
		dims int
		p    Params
		want error
	}{
		{"no base", context.Background(), nil, vecs, dims, Params{}, ErrInvalid},
		{"dims differ", context.Background(), base, vecs, 4, Params{}, ErrInvalid},
		{"fewer vectors than the base", context.Background(), base, vecs[:40*dims], dims, Params{}, ErrInvalid},
		{"not a multiple of dims", context.Background(), base, vecs[:len(vecs)-1], dims, Params{}, ErrInvalid},
		{"negative workers", context.Background(), base, vecs, dims, Params{Workers: -1}, ErrInvalid},
		{"cancelled", cancelled, base, vecs, dims, Params{}, context.Canceled},
	} {
		if _, err := Extend(c.ctx, c.base, c.vecs, c.dims, c.p); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
