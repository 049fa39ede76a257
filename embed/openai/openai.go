// Package openai is the embedder adapter for OpenAI's POST /v1/embeddings
// and for servers that speak the same API (Ollama, vLLM, LiteLLM, …).
//
// Embed splits its texts into requests that respect the API's limits (2048
// inputs and about 300k tokens per request, 8191 tokens per input), sends
// them one after another, retries rate limits and server failures with
// backoff, reassembles the vectors by their "index" and unit-normalizes
// them, so callers see the same contract as the offline hashed embedder.
//
// Errors callers branch on:
//   - tally.ErrInvalidArgument: a text can never be embedded (blank, too long).
//   - ErrRejected: the server refused the request (bad key, unknown model);
//     retrying cannot help, the configuration must change.
//   - ErrUnavailable: rate limits, server errors or timeouts outlasted the
//     retries or the caller's deadline; retry the whole job later.
//   - ErrBadResponse: the server answered 200 with something that is not a
//     valid embeddings response. It is not retried: a server that sends a
//     wrong vector count or length does so deterministically.
package openai

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/embed"
	"github.com/tallyhq/tally/internal/openaihttp"
)

// Sentinel errors; every error Embed returns wraps one of these,
// tally.ErrInvalidArgument or a context error.
var (
	// ErrRejected means the server refused the request with a 4xx other
	// than 429 (bad request, bad key, unknown model). Not retried.
	ErrRejected = errors.New("embedding request rejected")
	// ErrUnavailable means the server stayed rate-limited, failing or
	// unreachable until the retries or the context deadline ran out.
	ErrUnavailable = errors.New("embedding service unavailable")
	// ErrBadResponse means a 200 response did not hold one vector of the
	// expected length per input. Not retried.
	ErrBadResponse = errors.New("bad embedding response")
)

// Defaults and OpenAI's documented limits.
const (
	DefaultBaseURL    = "https://api.openai.com/v1"
	DefaultModel      = "text-embedding-3-small"
	DefaultMaxInputs  = 2048   // inputs per request
	DefaultMaxTokens  = 300000 // tokens summed over one request's inputs
	DefaultMaxRetries = 6
	DefaultTimeout    = 30 * time.Second
	// MaxInputTokens is the longest single input the OpenAI embedding
	// models accept.
	MaxInputTokens = 8191
	// EnvAPIKey is read when Options.APIKey is empty.
	EnvAPIKey = "OPENAI_API_KEY"
)

// Backoff between retries: full jitter over base·2^attempt, capped.
const (
	backoffBase = 500 * time.Millisecond
	backoffCap  = 30 * time.Second
)

// knownModel is what New knows about OpenAI's own models, so a zero
// Options.Dims still gives the vector store its length before any call.
type knownModel struct {
	dims          int
	acceptsDimens bool // the "dimensions" request option (text-embedding-3 and later)
}

var knownModels = map[string]knownModel{
	"text-embedding-3-small": {dims: 1536, acceptsDimens: true},
	"text-embedding-3-large": {dims: 3072, acceptsDimens: true},
	"text-embedding-ada-002": {dims: 1536},
}

// Options configure an Embedder. The zero value of every field means its
// default, so Options{} talks to OpenAI with $OPENAI_API_KEY.
type Options struct {
	// BaseURL is the API root; requests go to BaseURL + "/embeddings".
	// Default DefaultBaseURL; point it at Ollama or vLLM (…/v1) for a
	// local server.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer KEY". Default $OPENAI_API_KEY.
	// It may be empty only with a non-default BaseURL (local servers).
	APIKey string
	// Model is the embedding model. Default DefaultModel.
	Model string
	// Dims is sent as the "dimensions" request option (shortened
	// text-embedding-3 vectors, Matryoshka models); 0 means the model's own
	// length and sends nothing.
	Dims int
	// NativeDims declares the vector length of a model New does not know
	// (a local server's model) when Dims is 0; it is checked against every
	// response but never sent, for servers that reject "dimensions".
	NativeDims int
	// MaxInputs bounds the inputs of one request. Default 2048.
	MaxInputs int
	// MaxTokens bounds the estimated tokens of one request (see
	// EstimateTokens). Default 300000.
	MaxTokens int
	// MaxRetries is how many times one request is retried after a 429,
	// 408, 5xx or transport error. Default 6; negative means never retry.
	MaxRetries int
	// Timeout bounds one HTTP attempt. Default 30 s.
	Timeout time.Duration
	// HTTPClient sends the requests. Default a client with no overall
	// timeout (Timeout bounds each attempt).
	HTTPClient *http.Client
	// Sleep waits between retries; tests inject it. Default a timer that
	// returns early with ctx's error.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns numbers in [0, 1) for backoff jitter; tests inject it.
	// It must be safe for concurrent use if the Embedder is shared.
	Rand func() float64
}

// Embedder embeds texts through an OpenAI-compatible embeddings endpoint.
// It is safe for concurrent use.
type Embedder struct {
	endpoint   string
	apiKey     string
	model      string
	sendDims   int // "dimensions" option; 0 = not sent
	dims       int // the length every returned vector must have
	maxInputs  int
	maxTokens  int
	maxRetries int
	timeout    time.Duration
	api        *openaihttp.Client // sends one request with retries
}

var _ embed.Embedder = (*Embedder)(nil)

// New checks opts and returns an Embedder. It does no I/O: the vector
// length comes from Dims, NativeDims or the known OpenAI models, and every
// response is checked against it.
func New(opts Options) (*Embedder, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("openai embedder: "+format+": %w", append(args, tally.ErrInvalidArgument)...)
	}
	base, key, err := openaihttp.Endpoint("openai embedder", opts.BaseURL, DefaultBaseURL, opts.APIKey, EnvAPIKey)
	if err != nil {
		return nil, err
	}
	model := strings.TrimSpace(opts.Model)
	if model == "" {
		model = DefaultModel
	}

	e := &Embedder{
		endpoint:   base + "/embeddings",
		apiKey:     key,
		model:      model,
		maxInputs:  orDefault(opts.MaxInputs, DefaultMaxInputs),
		maxTokens:  orDefault(opts.MaxTokens, DefaultMaxTokens),
		maxRetries: orDefault(opts.MaxRetries, DefaultMaxRetries),
		timeout:    orDefault(opts.Timeout, DefaultTimeout),
	}
	switch {
	case opts.MaxInputs < 0:
		return nil, invalid("MaxInputs %d is negative", opts.MaxInputs)
	case opts.MaxTokens < 0:
		return nil, invalid("MaxTokens %d is negative", opts.MaxTokens)
	case opts.Timeout < 0:
		return nil, invalid("Timeout %v is negative", opts.Timeout)
	case opts.Dims < 0 || opts.NativeDims < 0:
		return nil, invalid("dimensions %d / native %d are negative", opts.Dims, opts.NativeDims)
	}
	if opts.MaxRetries < 0 {
		e.maxRetries = 0
	}

	known, isKnown := knownModels[model]
	switch {
	case opts.Dims > 0 && isKnown && !known.acceptsDimens:
		return nil, invalid("model %s does not accept the dimensions option", model)
	case opts.Dims > 0 && isKnown && opts.Dims > known.dims:
		return nil, invalid("model %s has at most %d dimensions, asked for %d", model, known.dims, opts.Dims)
	case opts.Dims > 0 && opts.NativeDims > 0 && opts.Dims > opts.NativeDims:
		return nil, invalid("dimensions %d exceed the native %d", opts.Dims, opts.NativeDims)
	case opts.Dims > 0:
		e.sendDims, e.dims = opts.Dims, opts.Dims
	case opts.NativeDims > 0:
		e.dims = opts.NativeDims
	case isKnown:
		e.dims = known.dims
	default:
		return nil, invalid("model %s has no known vector length: set Dims (sent to the server) or NativeDims (only checked)", model)
	}

	e.api = openaihttp.New(openaihttp.Config{
		Endpoint: e.endpoint, APIKey: e.apiKey, HTTPClient: opts.HTTPClient,
		MaxRetries: e.maxRetries, Timeout: e.timeout, BackoffBase: backoffBase, BackoffCap: backoffCap,
		Sleep: opts.Sleep, Rand: opts.Rand,
		Rejected: ErrRejected, Unavailable: ErrUnavailable, BadResponse: ErrBadResponse,
	})
	return e, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Dims is the length of every vector Embed returns.
func (e *Embedder) Dims() int { return e.dims }

// Model names the vector space, "openai:MODEL:DIMS", so vectors of
// different models or shortened lengths are never stored together.
func (e *Embedder) Model() string { return fmt.Sprintf("openai:%s:%d", e.model, e.dims) }

// Requests is how many HTTP requests (retries included) this Embedder has
// sent, for measuring requests per receipt.
func (e *Embedder) Requests() int64 { return e.api.Requests() }

// Embed returns one unit vector per text, in order. Texts are split into
// requests of at most MaxInputs inputs and MaxTokens estimated tokens, sent
// one at a time; the first failing request ends the call.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if err := embed.ValidateTexts(texts); err != nil {
		return nil, fmt.Errorf("openai embed: %w", err)
	}
	if len(texts) == 0 {
		return nil, nil
	}
	batches, err := planBatches(texts, e.maxInputs, e.maxTokens)
	if err != nil {
		return nil, fmt.Errorf("openai embed: %w", err)
	}
	out := make([][]float32, len(texts))
	for n, b := range batches {
		where := fmt.Sprintf("openai embed: request %d of %d (inputs %d–%d)", n+1, len(batches), b.start, b.end-1)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		vecs, err := e.embedBatch(ctx, texts[b.start:b.end])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		copy(out[b.start:b.end], vecs)
	}
	return out, nil
}

// normalize scales v to unit length; the port promises unit vectors and not
// every compatible server returns them.
func normalize(v []float64) ([]float32, bool) {
	var sum float64
	for _, x := range v {
		sum += x * x
	}
	norm := math.Sqrt(sum)
	if norm == 0 || math.IsInf(norm, 0) || math.IsNaN(norm) {
		return nil, false
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out, true
}
