package openai

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally"
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
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("openai embedder URL %q: "+format+": %w", append([]any{raw}, append(args, tally.ErrInvalidArgument)...)...)
	}
	prefix := Scheme + "://"
	if len(raw) < len(prefix) || !strings.EqualFold(raw[:len(prefix)], prefix) {
		return nil, invalid("want %sMODEL?…", prefix)
	}
	rest := raw[len(prefix):]
	modelPart, query, _ := strings.Cut(rest, "?")
	model, err := url.PathUnescape(modelPart)
	if err != nil {
		return nil, invalid("model: %v", err)
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return nil, invalid("query: %v", err)
	}

	opts := Options{Model: model}
	for _, key := range slices.Sorted(maps.Keys(values)) {
		vals := values[key]
		if len(vals) != 1 {
			return nil, invalid("%s given %d times", key, len(vals))
		}
		v := vals[0]
		number := func(dst *int) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return invalid("%s=%q is not a non-negative integer", key, v)
			}
			*dst = n
			return nil
		}
		switch key {
		case "dims":
			err = number(&opts.Dims)
		case "native_dims":
			err = number(&opts.NativeDims)
		case "max_inputs":
			err = number(&opts.MaxInputs)
		case "max_tokens":
			err = number(&opts.MaxTokens)
		case "max_retries":
			err = number(&opts.MaxRetries)
			if err == nil && opts.MaxRetries == 0 {
				opts.MaxRetries = -1 // an explicit 0 means no retries, not the default
			}
		case "base":
			opts.BaseURL = v
		case "timeout":
			d, perr := time.ParseDuration(v)
			if perr != nil || d <= 0 {
				err = invalid("timeout=%q is not a positive duration", v)
			}
			opts.Timeout = d
		default:
			err = invalid("unknown key %q (known: dims, native_dims, base, max_inputs, max_tokens, max_retries, timeout)", key)
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
