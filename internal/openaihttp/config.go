package openaihttp

import (
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally"
)

// ConfigURL is a parsed configuration URL of an OpenAI-compatible client,
// SCHEME://MODEL?key=value…: everything between "://" and "?" is the model
// (it may hold ":" and "/"), and every query key appears once. The
// embedder and the LLM refiner read theirs with it, so both accept the same
// forms and refuse the same mistakes.
type ConfigURL struct {
	raw, what string
	Model     string
	values    map[string]string
}

// ParseConfigURL parses raw, which must start with scheme "://"; what
// names the client in errors ("openai embedder"). Errors wrap
// tally.ErrInvalidArgument.
func ParseConfigURL(raw, scheme, what string) (ConfigURL, error) {
	u := ConfigURL{raw: raw, what: what, values: map[string]string{}}
	prefix := scheme + "://"
	if len(raw) < len(prefix) || !strings.EqualFold(raw[:len(prefix)], prefix) {
		return u, u.Invalid("want %sMODEL?…", prefix)
	}
	modelPart, query, _ := strings.Cut(raw[len(prefix):], "?")
	model, err := url.PathUnescape(modelPart)
	if err != nil {
		return u, u.Invalid("model: %v", err)
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return u, u.Invalid("query: %v", err)
	}
	for k, vs := range values {
		if len(vs) != 1 {
			return u, u.Invalid("%s given %d times", k, len(vs))
		}
		u.values[k] = vs[0]
	}
	u.Model = model
	return u, nil
}

// Keys lists the query keys in sorted order.
func (u ConfigURL) Keys() []string { return slices.Sorted(maps.Keys(u.values)) }

// Value is a query key's value.
func (u ConfigURL) Value(key string) string { return u.values[key] }

// Invalid is an error about the URL, wrapping tally.ErrInvalidArgument.
func (u ConfigURL) Invalid(format string, args ...any) error {
	return fmt.Errorf("%s URL %q: "+format+": %w", append([]any{u.what, u.raw}, append(args, tally.ErrInvalidArgument)...)...)
}

// Int reads a non-negative integer key into dst.
func (u ConfigURL) Int(key string, dst *int) error {
	n, err := strconv.Atoi(u.values[key])
	if err != nil || n < 0 {
		return u.Invalid("%s=%q is not a non-negative integer", key, u.values[key])
	}
	*dst = n
	return nil
}

// Common reads the keys every client takes — base (the API root),
// timeout (one attempt, a Go duration) and max_retries (0 means never,
// stored as -1 so that it is not taken for "default") — and reports
// whether key was one of them.
func (u ConfigURL) Common(key string, base *string, timeout *time.Duration, maxRetries *int) (bool, error) {
	v := u.values[key]
	switch key {
	case "base":
		*base = v
	case "timeout":
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return true, u.Invalid("timeout=%q is not a positive duration", v)
		}
		*timeout = d
	case "max_retries":
		if err := u.Int(key, maxRetries); err != nil {
			return true, err
		}
		if *maxRetries == 0 {
			*maxRetries = -1
		}
	default:
		return false, nil
	}
	return true, nil
}

// Endpoint resolves a client's API root and key: base (default
// defaultBase) must be an http(s) URL, and the key (default $envKey) may be
// empty only with a non-default base (a local server). Errors wrap
// tally.ErrInvalidArgument; what names the client.
func Endpoint(what, base, defaultBase, apiKey, envKey string) (root, key string, err error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%s: "+format+": %w", append([]any{what}, append(args, tally.ErrInvalidArgument)...)...)
	}
	root = strings.TrimRight(strings.TrimSpace(base), "/")
	if root == "" {
		root = defaultBase
	}
	u, perr := url.Parse(root)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", invalid("base URL %q is not an http(s) URL", base)
	}
	key = apiKey
	if key == "" {
		key = os.Getenv(envKey)
	}
	if key == "" && root == defaultBase {
		return "", "", invalid("no API key: set Options.APIKey or $%s (only a non-default base URL may go without)", envKey)
	}
	return root, key, nil
}
