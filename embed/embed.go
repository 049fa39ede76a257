// Package embed is the port for text embedders: texts in, unit vectors out.
// The offline default (embed/hashed) needs no network; the OpenAI adapter (a
// later issue) speaks /v1/embeddings. Both pass embed/embedtest.
package embed

import (
	"context"
	"fmt"
	"strings"

	"github.com/tallyhq/tally"
)

// Embedder turns texts into vectors in one fixed space.
type Embedder interface {
	// Embed returns one unit-length vector per text, in the order given.
	// An empty or blank text is tally.ErrInvalidArgument. Implementations
	// batch and retry internally; a nil or empty texts returns nil.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	// Dims is the length of every vector.
	Dims() int
	// Model names the vector space (model and dimensions); vectors of
	// different models must never be compared or stored together.
	Model() string
}

// ValidateTexts rejects the texts no embedder can embed, so every adapter
// fails the same inputs the same way.
func ValidateTexts(texts []string) error {
	for i, s := range texts {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("text %d is empty: %w", i, tally.ErrInvalidArgument)
		}
	}
	return nil
}
