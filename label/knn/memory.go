package knn

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/tallyhq/tally"
)

// Memory is an exact in-memory Index: cosine similarity against every
// word added, for tests and for measuring the consensus on a stream of
// receipts without a vector store. Vectors are kept per dimension
// (postings of their non-zero components), so that the sparse vectors of
// the hashed embedder cost only the dimensions they share with the
// query; the answer is the same exact top k a full scan gives. It is safe
// for concurrent use.
type Memory struct {
	mu      sync.RWMutex
	dims    int
	entries []Neighbour
	post    [][]posting
}

type posting struct {
	entry int32
	value float32
}

// NewMemory returns an empty index of dims-dimensional vectors.
func NewMemory(dims int) (*Memory, error) {
	if dims <= 0 {
		return nil, fmt.Errorf("knn memory index: %d dimensions: %w", dims, tally.ErrInvalidArgument)
	}
	return &Memory{dims: dims, post: make([][]posting, dims)}, nil
}

// Len is the number of labelled words held.
func (m *Memory) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.entries)
}

// Add holds one word's vector and what a neighbour reports of it. A word
// without labels is not held (it could never vote), so a caller may add
// every word of a receipt; added tells whether it was.
func (m *Memory) Add(vector []float32, n Neighbour) (added bool, err error) {
	if len(vector) != m.dims {
		return false, fmt.Errorf("knn memory index: vector has %d dims, want %d: %w", len(vector), m.dims, tally.ErrInvalidArgument)
	}
	n.Labels = uniqueLabels(n.Labels)
	if len(n.Labels) == 0 {
		return false, nil
	}
	v, ok := unit(vector)
	if !ok {
		return false, fmt.Errorf("knn memory index: zero vector: %w", tally.ErrInvalidArgument)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.entries) >= math.MaxInt32 {
		return false, fmt.Errorf("knn memory index: full: %w", tally.ErrInvalidArgument)
	}
	id := int32(len(m.entries))
	n.Similarity = 0
	m.entries = append(m.entries, n)
	for d, x := range v {
		if x != 0 {
			m.post[d] = append(m.post[d], posting{id, x})
		}
	}
	return true, nil
}

// Neighbours returns the k held words most similar to vector, best first
// (ties in the order added), none of image excludeImage.
func (m *Memory) Neighbours(ctx context.Context, vector []float32, k int, excludeImage string) ([]Neighbour, error) {
	if len(vector) != m.dims {
		return nil, fmt.Errorf("knn memory index: query has %d dims, want %d: %w", len(vector), m.dims, tally.ErrInvalidArgument)
	}
	if k <= 0 {
		return nil, fmt.Errorf("knn memory index: k = %d: %w", k, tally.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q, ok := unit(vector)
	if !ok {
		return nil, nil // no direction: nothing is similar
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	scores := make([]float32, len(m.entries))
	for d, x := range q {
		if x == 0 {
			continue
		}
		for _, p := range m.post[d] {
			scores[p.entry] += x * p.value
		}
	}
	// Top k by insertion into a short sorted list: k is small.
	type cand struct {
		i int
		s float32
	}
	top := make([]cand, 0, k+1)
	for i, s := range scores {
		if len(top) == k && s <= top[k-1].s {
			continue
		}
		if excludeImage != "" && m.entries[i].ImageID == excludeImage {
			continue
		}
		j := len(top)
		top = append(top, cand{})
		for j > 0 && top[j-1].s < s {
			top[j] = top[j-1]
			j--
		}
		top[j] = cand{i, s}
		if len(top) > k {
			top = top[:k]
		}
	}
	out := make([]Neighbour, len(top))
	for i, c := range top {
		n := m.entries[c.i]
		n.Labels = append([]string(nil), n.Labels...)
		n.Similarity = math.Min(float64(c.s), 1)
		out[i] = n
	}
	return out, nil
}

// unit is v scaled to length 1; ok is false for a zero vector.
func unit(v []float32) ([]float32, bool) {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if n == 0 {
		return nil, false
	}
	inv := 1 / math.Sqrt(n)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out, true
}
