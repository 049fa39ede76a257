package knn

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tallyhq/tally/vector"
)

// Searcher is the part of a *vector.Reader that VectorIndex needs, so a
// test or a caching wrapper can stand in for it.
type Searcher interface {
	Search(ctx context.Context, query []float32, opts vector.SearchOptions) ([]vector.Hit, error)
}

// DefaultOverfetch is how many times k records VectorIndex asks the store
// for. Most records of the "words" collection carry no label (only words
// of VALID summaries do), and the store cannot filter on a field being
// present, so unlabelled hits are dropped after the search.
const DefaultOverfetch = 8

// DefaultMaxStale is how old OpenVectorIndex lets its reader's view get.
const DefaultMaxStale = 10 * time.Second

// VectorIndex is the Index over the vector store's "words" collection:
// the process stage writes each word's VALID labels into its record's
// "label" metadata (joined by ","), its merchant into "merchant_name" and
// its image into "image_id".
type VectorIndex struct {
	s Searcher
	// Overfetch multiplies k in the store search; DefaultOverfetch when
	// ≤ 0. Raise it when most neighbours come back unlabelled.
	Overfetch int
}

// NewVectorIndex returns the Index over s, a reader of the "words"
// collection.
func NewVectorIndex(s Searcher) *VectorIndex { return &VectorIndex{s: s} }

// OpenVectorIndex opens a reader on the store's "words" collection and
// returns the Index over it. The reader is refreshed before a search when
// its view is older than maxStale (DefaultMaxStale when ≤ 0), so that
// labels of receipts processed since become votes without a refresh per
// word; a failed refresh keeps the last good view.
func OpenVectorIndex(ctx context.Context, store *vector.Store, cache *vector.Cache, maxStale time.Duration) (*VectorIndex, error) {
	r, err := store.OpenReader(ctx, vector.CollectionWords, cache)
	if err != nil {
		return nil, fmt.Errorf("knn: open %s reader: %w", vector.CollectionWords, err)
	}
	if maxStale <= 0 {
		maxStale = DefaultMaxStale
	}
	return NewVectorIndex(&refreshing{r: r, maxStale: maxStale, at: time.Now()}), nil
}

// Neighbours returns the labelled records nearest vector, best first,
// none of image excludeImage.
func (x *VectorIndex) Neighbours(ctx context.Context, q []float32, k int, excludeImage string) ([]Neighbour, error) {
	if k <= 0 {
		return nil, nil
	}
	over := x.Overfetch
	if over <= 0 {
		over = DefaultOverfetch
	}
	opts := vector.SearchOptions{K: min(vector.MaxK, max(k, k*over))}
	if excludeImage != "" {
		opts.Filters = []vector.Filter{{Field: "image_id", Op: vector.OpNe, Values: []any{excludeImage}}}
	}
	hits, err := x.s.Search(ctx, q, opts)
	if err != nil {
		return nil, fmt.Errorf("knn: search %s: %w", vector.CollectionWords, err)
	}
	out := make([]Neighbour, 0, k)
	for _, h := range hits {
		s, _ := h.Meta["label"].(string)
		labels := ParseLabels(s)
		if len(labels) == 0 {
			continue
		}
		n := Neighbour{Similarity: min(float64(h.Score), 1), Labels: labels, ID: h.ID}
		n.Merchant, _ = h.Meta["merchant_name"].(string)
		n.ImageID, _ = h.Meta["image_id"].(string)
		n.Text, _ = h.Meta["text"].(string)
		if excludeImage != "" && n.ImageID == excludeImage {
			continue
		}
		out = append(out, n)
		if len(out) == k {
			break
		}
	}
	return out, nil
}

// refreshing is a reader refreshed when its view is older than maxStale.
type refreshing struct {
	mu       sync.Mutex
	r        *vector.Reader
	maxStale time.Duration
	at       time.Time
}

func (f *refreshing) Search(ctx context.Context, q []float32, opts vector.SearchOptions) ([]vector.Hit, error) {
	f.mu.Lock()
	if time.Since(f.at) >= f.maxStale {
		if err := f.r.Refresh(ctx); err == nil {
			f.at = time.Now()
		}
	}
	f.mu.Unlock()
	return f.r.Search(ctx, q, opts)
}
