package openai

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tallyhq/tally/internal/openaihttp"
)

// embeddingRequest is the body of POST /embeddings.
type embeddingRequest struct {
	Model      string   `json:"model"`
	Input      []string `json:"input"`
	Dimensions int      `json:"dimensions,omitempty"`
}

// embeddingResponse is the part of a 200 body Embed reads; "object",
// "model" and "usage" are ignored because compatible servers differ there.
type embeddingResponse struct {
	Data []struct {
		Index     *int      `json:"index"`
		Embedding []float64 `json:"embedding"`
	} `json:"data"`
	Error json.RawMessage `json:"error"`
}

// embedBatch sends one request, retrying transient failures with backoff
// (internal/openaihttp), and decodes its vectors. A 200 that does not
// decode is not retried: a server that sends a wrong vector count or
// length does so deterministically.
func (e *Embedder) embedBatch(ctx context.Context, texts []string) ([][]float32, error) {
	body, err := json.Marshal(embeddingRequest{Model: e.model, Input: texts, Dimensions: e.sendDims})
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	// Text floats take at most ~25 bytes each; the limit only stops a
	// runaway body from exhausting memory.
	limit := int64(len(texts))*int64(e.dims)*32 + 1<<20
	data, err := e.api.Post(ctx, body, limit)
	if err != nil {
		return nil, err
	}
	return decodeVectors(data, len(texts), e.dims)
}

// errorMessage returns the message of a JSON error body, or "".
func errorMessage(body []byte) string { return openaihttp.ErrorMessage(body) }

// decodeVectors checks a 200 body holds exactly one vector of length dims
// for each input index and returns them in input order, unit-normalized.
func decodeVectors(body []byte, inputs, dims int) ([][]float32, error) {
	var resp embeddingResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("%w: malformed JSON: %v", ErrBadResponse, err)
	}
	if len(resp.Data) != inputs {
		if msg := errorMessage(body); msg != "" {
			return nil, fmt.Errorf("%w: %d vectors for %d inputs (server said %q)", ErrBadResponse, len(resp.Data), inputs, msg)
		}
		return nil, fmt.Errorf("%w: %d vectors for %d inputs", ErrBadResponse, len(resp.Data), inputs)
	}
	out := make([][]float32, inputs)
	for i, d := range resp.Data {
		switch {
		case d.Index == nil:
			return nil, fmt.Errorf("%w: data[%d] has no index", ErrBadResponse, i)
		case *d.Index < 0 || *d.Index >= inputs:
			return nil, fmt.Errorf("%w: data[%d] has index %d, want 0–%d", ErrBadResponse, i, *d.Index, inputs-1)
		case out[*d.Index] != nil:
			return nil, fmt.Errorf("%w: index %d appears twice", ErrBadResponse, *d.Index)
		case len(d.Embedding) != dims:
			return nil, fmt.Errorf("%w: vector %d has %d dimensions, want %d", ErrBadResponse, *d.Index, len(d.Embedding), dims)
		}
		v, ok := normalize(d.Embedding)
		if !ok {
			return nil, fmt.Errorf("%w: vector %d has zero or infinite length", ErrBadResponse, *d.Index)
		}
		out[*d.Index] = v
	}
	return out, nil
}
