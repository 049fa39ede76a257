// Package hashed is Tally's offline embedder: signed feature hashing of
// words and character n-grams into a fixed number of dimensions, then
// unit-normalized.
//
// It is lexical, not semantic: "TOTAL 12.50" is near "TOTAL 12.60" because
// they share characters, but "soda" is not near "pop". That is enough for
// search and for finding receipts of the same merchant (the same header
// lines, phone numbers and addresses recur) with no network at all. Use an
// OpenAI-compatible embedder when meaning matters.
package hashed

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"unicode"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/embed"
)

// Limits on the dimension count.
const (
	MinDims     = 16
	MaxDims     = 4096
	DefaultDims = 512
)

// Feature weights: whole words dominate, character n-grams give tolerance
// to OCR errors and number changes.
const (
	wordWeight  = 1.0
	gram3Weight = 0.5
	gram4Weight = 0.5
)

// Embedder is the hashed n-gram embedder. It is safe for concurrent use.
type Embedder struct {
	dims int
}

var _ embed.Embedder = (*Embedder)(nil)

// New returns an embedder producing dims-dimensional vectors.
func New(dims int) (*Embedder, error) {
	if dims < MinDims || dims > MaxDims {
		return nil, fmt.Errorf("hashed embedder: %d dimensions, want %d–%d: %w", dims, MinDims, MaxDims, tally.ErrInvalidArgument)
	}
	return &Embedder{dims: dims}, nil
}

// Dims is the vector length.
func (e *Embedder) Dims() int { return e.dims }

// Model names the space, including the dimensions and the feature version,
// so vectors from a changed feature set are never mixed with old ones.
func (e *Embedder) Model() string { return fmt.Sprintf("hashed-ngram-v1-%d", e.dims) }

// Embed embeds each text. It does no I/O; ctx is checked between texts.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if err := embed.ValidateTexts(texts); err != nil {
		return nil, fmt.Errorf("hashed embed: %w", err)
	}
	if len(texts) == 0 {
		return nil, nil
	}
	out := make([][]float32, len(texts))
	for i, s := range texts {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("hashed embed: %w", err)
			}
		}
		out[i] = e.vector(s)
	}
	return out, nil
}

func (e *Embedder) vector(s string) []float32 {
	acc := make([]float64, e.dims)
	add := func(kind byte, feature string, w float64) {
		h := fnv.New64a()
		h.Write([]byte{kind})
		h.Write([]byte(feature))
		sum := h.Sum64()
		idx := int(sum % uint64(e.dims))
		if sum>>63 == 1 {
			w = -w
		}
		acc[idx] += w
	}
	for _, tok := range strings.Fields(strings.ToLower(s)) {
		word := strings.TrimFunc(tok, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		if word == "" {
			word = tok // punctuation-only tokens ("<edge>", "$") are words too
		}
		add('w', word, wordWeight)
		runes := []rune(" " + tok + " ")
		for i := 0; i+3 <= len(runes); i++ {
			add('3', string(runes[i:i+3]), gram3Weight)
		}
		for i := 0; i+4 <= len(runes); i++ {
			add('4', string(runes[i:i+4]), gram4Weight)
		}
	}
	var norm float64
	for _, v := range acc {
		norm += v * v
	}
	v := make([]float32, e.dims)
	if norm == 0 {
		// Every feature cancelled out (vanishingly rare): fall back to a
		// fixed unit vector rather than a zero vector that has no direction.
		v[0] = 1
		return v
	}
	inv := 1 / math.Sqrt(norm)
	for i, x := range acc {
		v[i] = float32(x * inv)
	}
	return v
}
