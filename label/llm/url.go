package llm

import (
	"fmt"

	"github.com/tallyhq/tally/internal/openaihttp"
)

// Scheme is the URL scheme FromURL accepts, the embedder's own, so one
// convention configures every OpenAI-compatible port.
const Scheme = "openai"

// FromURL builds a Refiner from a configuration URL, so one string picks
// the model and server:
//
//	openai://gpt-4o-mini
//	openai://qwen2.5:7b?base=http://127.0.0.1:11434/v1&timeout=30s&max_retries=3
//
// Everything between "openai://" and "?" is the model (it may hold ":" and
// "/"; empty means DefaultModel). Query keys: base, timeout (a Go
// duration), max_retries, max_completion_tokens; they override the same
// fields of opts, which carries the rest (the cache table, the logger, the
// HTTP client, test hooks). Any other key is tally.ErrInvalidArgument. The
// API key never goes in the URL (URLs end up in logs): it comes from
// opts.APIKey or $OPENAI_API_KEY.
func FromURL(raw string, opts Options) (*Refiner, error) {
	u, err := openaihttp.ParseConfigURL(raw, Scheme, "llm refiner")
	if err != nil {
		return nil, err
	}
	opts.Model = u.Model
	for _, key := range u.Keys() {
		if ok, err := u.Common(key, &opts.BaseURL, &opts.Timeout, &opts.MaxRetries); ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		switch key {
		case "max_completion_tokens":
			err = u.Int(key, &opts.MaxCompletionTokens)
		default:
			err = u.Invalid("unknown key %q (known: base, timeout, max_retries, max_completion_tokens)", key)
		}
		if err != nil {
			return nil, err
		}
	}
	rf, err := New(opts)
	if err != nil {
		return nil, fmt.Errorf("llm refiner URL %q: %w", raw, err)
	}
	return rf, nil
}
