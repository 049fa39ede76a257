package hashed

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/embed"
	"github.com/tallyhq/tally/embed/embedtest"
)

func TestConformance(t *testing.T) {
	for _, dims := range []int{64, 512, 1536} {
		t.Run(fmt.Sprint(dims), func(t *testing.T) {
			embedtest.Run(t, func(t *testing.T) embed.Embedder {
				e, err := New(dims)
				if err != nil {
					t.Fatal(err)
				}
				return e
			}, embedtest.Capabilities{Deterministic: true, Lexical: true})
		})
	}
}

func TestNewRejectsBadDims(t *testing.T) {
	t.Parallel()
	for _, d := range []int{-1, 0, MinDims - 1, MaxDims + 1} {
		if _, err := New(d); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("New(%d) error = %v, want ErrInvalidArgument", d, err)
		}
	}
}

func TestModelNamesDims(t *testing.T) {
	t.Parallel()
	a, _ := New(256)
	b, _ := New(512)
	if a.Model() == b.Model() {
		t.Errorf("different dims share the model name %q", a.Model())
	}
}

// TestOCRNoiseTolerance: one wrong character still leaves the text closer to
// its original than to an unrelated line (what character n-grams are for).
func TestOCRNoiseTolerance(t *testing.T) {
	t.Parallel()
	e, _ := New(DefaultDims)
	vs, err := e.Embed(context.Background(), []string{"COSTCO WHOLESALE #1024", "C0STCO WH0LESALE #1024", "SUBTOTAL 88.12"})
	if err != nil {
		t.Fatal(err)
	}
	dot := func(a, b []float32) (s float32) {
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	if near, far := dot(vs[0], vs[1]), dot(vs[0], vs[2]); near <= far || near < 0.3 {
		t.Errorf("noisy copy similarity %f, unrelated %f", near, far)
	}
}

func BenchmarkEmbed(b *testing.B) {
	e, _ := New(DefaultDims)
	texts := make([]string, 100)
	for i := range texts {
		texts[i] = fmt.Sprintf("<EDGE> ORGANIC BANANAS %d.%02d LB <EDGE>", i, i%100)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Embed(context.Background(), texts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(texts))/b.Elapsed().Seconds(), "texts/s")
}
