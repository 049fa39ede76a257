// Package embedtest is the conformance suite every embedder passes: the
// offline hashed embedder in every test run, the OpenAI adapter against a
// local server that speaks the OpenAI API.
package embedtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/embed"
)

// Capabilities describe what an embedder guarantees beyond the port.
type Capabilities struct {
	// Deterministic means the same text always gives the same vector
	// (true for the hashed embedder and for a fixed-model server).
	Deterministic bool
	// Lexical means texts sharing most characters are closer than texts
	// sharing none; true for every embedder worth using on receipts.
	Lexical bool
}

// Run runs the suite against embedders made by newEmbedder.
func Run(t *testing.T, newEmbedder func(t *testing.T) embed.Embedder, caps Capabilities) {
	t.Run("UnitVectorsInOrder", func(t *testing.T) {
		t.Parallel()
		e := newEmbedder(t)
		texts := []string{"TOTAL 12.50", "WALMART SUPERCENTER", "<EDGE> MILK 2% GAL 3.49 <EDGE>", "収据 été", "$"}
		vs, err := e.Embed(context.Background(), texts)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != len(texts) {
			t.Fatalf("%d vectors for %d texts", len(vs), len(texts))
		}
		for i, v := range vs {
			if len(v) != e.Dims() {
				t.Errorf("vector %d has %d dims, want %d", i, len(v), e.Dims())
			}
			if n := norm(v); math.Abs(n-1) > 1e-3 {
				t.Errorf("vector %d has norm %f, want 1", i, n)
			}
		}
		// Order: each text embedded alone matches its batch position.
		for i, s := range texts {
			one, err := e.Embed(context.Background(), []string{s})
			if err != nil {
				t.Fatal(err)
			}
			if cos(one[0], vs[i]) < 0.999 {
				t.Errorf("text %d embedded alone differs from its batch vector (cos %f)", i, cos(one[0], vs[i]))
			}
		}
	})

	t.Run("EmptyBatch", func(t *testing.T) {
		t.Parallel()
		vs, err := newEmbedder(t).Embed(context.Background(), nil)
		if err != nil || len(vs) != 0 {
			t.Fatalf("Embed(nil) = %d vectors, %v; want none, nil", len(vs), err)
		}
	})

	t.Run("BlankTextIsInvalid", func(t *testing.T) {
		t.Parallel()
		for _, texts := range [][]string{{""}, {"ok", "   "}, {"\n\t"}} {
			_, err := newEmbedder(t).Embed(context.Background(), texts)
			if !errors.Is(err, tally.ErrInvalidArgument) {
				t.Errorf("Embed(%q) error = %v, want ErrInvalidArgument", texts, err)
			}
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		texts := make([]string, 1000)
		for i := range texts {
			texts[i] = fmt.Sprintf("line %d", i)
		}
		if _, err := newEmbedder(t).Embed(ctx, texts); !errors.Is(err, context.Canceled) {
			t.Errorf("Embed with a canceled context: error = %v, want context.Canceled", err)
		}
	})

	t.Run("LargeBatch", func(t *testing.T) {
		t.Parallel()
		texts := make([]string, 2500)
		for i := range texts {
			texts[i] = fmt.Sprintf("ITEM %d PRICE %d.%02d", i, i%100, i%97)
		}
		vs, err := newEmbedder(t).Embed(context.Background(), texts)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != len(texts) {
			t.Fatalf("%d vectors for %d texts", len(vs), len(texts))
		}
	})

	if caps.Deterministic {
		t.Run("Deterministic", func(t *testing.T) {
			t.Parallel()
			a, err := newEmbedder(t).Embed(context.Background(), []string{"GRAND TOTAL 41.07"})
			if err != nil {
				t.Fatal(err)
			}
			b, err := newEmbedder(t).Embed(context.Background(), []string{"GRAND TOTAL 41.07"})
			if err != nil {
				t.Fatal(err)
			}
			for i := range a[0] {
				if a[0][i] != b[0][i] {
					t.Fatalf("component %d differs: %v vs %v", i, a[0][i], b[0][i])
				}
			}
		})
	}

	if caps.Lexical {
		t.Run("SimilarTextsAreCloser", func(t *testing.T) {
			t.Parallel()
			vs, err := newEmbedder(t).Embed(context.Background(), []string{
				"TOTAL 12.50", "TOTAL 12.60", "THANK YOU FOR SHOPPING AT KROGER",
			})
			if err != nil {
				t.Fatal(err)
			}
			near, far := cos(vs[0], vs[1]), cos(vs[0], vs[2])
			if near <= far {
				t.Errorf("cos(TOTAL 12.50, TOTAL 12.60) = %f not above cos(TOTAL 12.50, THANK YOU…) = %f", near, far)
			}
		})
	}
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func cos(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s / (norm(a) * norm(b))
}
