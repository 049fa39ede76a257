package llm

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
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("llm refiner URL %q: "+format+": %w", append([]any{raw}, append(args, tally.ErrInvalidArgument)...)...)
	}
	prefix := Scheme + "://"
	if len(raw) < len(prefix) || !strings.EqualFold(raw[:len(prefix)], prefix) {
		return nil, invalid("want %sMODEL?…", prefix)
	}
	modelPart, query, _ := strings.Cut(raw[len(prefix):], "?")
	model, err := url.PathUnescape(modelPart)
	if err != nil {
		return nil, invalid("model: %v", err)
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return nil, invalid("query: %v", err)
	}
	opts.Model = model
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
		case "base":
			opts.BaseURL = v
		case "timeout":
			d, perr := time.ParseDuration(v)
			if perr != nil || d <= 0 {
				err = invalid("timeout=%q is not a positive duration", v)
			}
			opts.Timeout = d
		case "max_retries":
			err = number(&opts.MaxRetries)
			if err == nil && opts.MaxRetries == 0 {
				opts.MaxRetries = -1 // an explicit 0 means no retries, not the default
			}
		case "max_completion_tokens":
			err = number(&opts.MaxCompletionTokens)
		default:
			err = invalid("unknown key %q (known: base, timeout, max_retries, max_completion_tokens)", key)
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
