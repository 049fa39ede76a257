package openai

import (
	"fmt"

	"github.com/tallyhq/tally/internal/openaihttp"
)

// Scheme is the URL scheme FromURL accepts.
const Scheme = "openai"

// FromURL builds an Embedder from a configuration URL, so one string in
// TALLY_EMBEDDER_URL picks the embedder:
//
//	openai://text-embedding-3-small?dims=512
//	openai://nomic-embed-text:latest?native_dims=768&base=http://127.0.0.1:11434/v1
//	openai://BAAI/bge-m3?native_dims=1024&base=http%3A%2F%2Fvllm%3A8000%2Fv1
//
// Everything between "openai://" and "?" is the model (it may hold ":" and
// "/"; empty means DefaultModel). Query keys: dims, native_dims, base,
// max_inputs, max_tokens, max_retries, timeout (a Go duration). Any other
// key is ErrInvalidArgument. The API key never goes in the URL (URLs end
// up in logs): it comes from $OPENAI_API_KEY.
func FromURL(raw string) (*Embedder, error) {
	u, err := openaihttp.ParseConfigURL(raw, Scheme, "openai embedder")
	if err != nil {
		return nil, err
	}
	opts := Options{Model: u.Model}
	for _, key := range u.Keys() {
		if ok, err := u.Common(key, &opts.BaseURL, &opts.Timeout, &opts.MaxRetries); ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		switch key {
		case "dims":
			err = u.Int(key, &opts.Dims)
		case "native_dims":
			err = u.Int(key, &opts.NativeDims)
		case "max_inputs":
			err = u.Int(key, &opts.MaxInputs)
		case "max_tokens":
			err = u.Int(key, &opts.MaxTokens)
		default:
			err = u.Invalid("unknown key %q (known: dims, native_dims, base, max_inputs, max_tokens, max_retries, timeout)", key)
		}
		if err != nil {
			return nil, err
		}
	}
	e, err := New(opts)
	if err != nil {
		return nil, fmt.Errorf("openai embedder URL %q: %w", raw, err)
	}
	return e, nil
}
