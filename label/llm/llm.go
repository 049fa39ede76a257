// Package llm is a label.Refiner that asks a large language model, through
// the OpenAI Chat Completions API or a server that speaks it (Ollama, vLLM,
// LiteLLM …), to improve the rules engine's proposal for one receipt.
//
// One receipt costs one request. The system message explains the task and
// the labels; the user message holds the receipt's rows, each word written
// as "[line_id,word_id] text", and the rules' proposal as JSON. The answer
// is constrained by a strict JSON schema (structured outputs) and trusted
// only as far as it points at printed words: a field's Text is read back
// from the words it names, never taken from the model, values are
// normalized, and the new proposal must pass label.Validate or it is
// rejected whole, so the caller keeps the rules' proposal and nothing
// half-checked is ever stored.
//
// With Options.Table set, answers are cached in the item store keyed by
// the model and the exact request body, so a redelivered or reprocessed
// receipt costs no request.
//
// Errors callers branch on:
//   - ErrBadAnswer: the model answered, but with something unusable (not
//     JSON, not the schema, truncated, refused, naming words the receipt
//     lacks, amounts that do not parse, impossible dates). ErrTruncated and
//     ErrRefused narrow it down. Asking again may help; keeping the rules'
//     proposal always does.
//   - ErrRejected: the server refused the request (bad key, unknown model,
//     a schema it does not support); the configuration must change.
//   - ErrUnavailable: rate limits, server errors or timeouts outlasted the
//     retries or the caller's deadline.
//   - ErrBadResponse: a 200 body that is not a chat completion.
package llm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/internal/openaihttp"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/label"
)

// Sentinel errors; every error Refine returns wraps one of these or a
// context error.
var (
	// ErrBadAnswer means the model's answer cannot be used as a proposal.
	ErrBadAnswer = errors.New("llm: bad answer")
	// ErrTruncated means the answer stopped at the token limit
	// (finish_reason "length"); it also wraps ErrBadAnswer.
	ErrTruncated = errors.New("llm: answer truncated")
	// ErrRefused means the model refused (message.refusal, or the content
	// filter stopped it); it also wraps ErrBadAnswer.
	ErrRefused = errors.New("llm: model refused")
	// ErrRejected means the server refused the request with a 4xx other
	// than 408 and 429. Not retried.
	ErrRejected = errors.New("llm: request rejected")
	// ErrUnavailable means the server stayed rate-limited, failing or
	// unreachable until the retries or the context deadline ran out.
	ErrUnavailable = errors.New("llm: service unavailable")
	// ErrBadResponse means a 200 body was not a chat completion with a
	// choice. Not retried.
	ErrBadResponse = errors.New("llm: bad chat completion response")
)

// Defaults.
const (
	DefaultBaseURL = "https://api.openai.com/v1"
	// DefaultModel supports structured outputs and is cheap enough to run
	// on every receipt.
	DefaultModel      = "gpt-4o-mini"
	DefaultMaxRetries = 3
	// DefaultTimeout bounds one attempt; a completion of a long receipt
	// takes far longer than an embedding.
	DefaultTimeout = 90 * time.Second
	// DefaultCacheTTL is how long a cached answer lives, as long as the
	// embedding cache's entries.
	DefaultCacheTTL = 90 * 24 * time.Hour
	// EnvAPIKey is read when Options.APIKey is empty.
	EnvAPIKey = "OPENAI_API_KEY"
	// Confidence is given to every label and field the model proposes: above
	// a guess, below a person's word.
	Confidence = 0.8
)

// maxResponse bounds a 200 body; an answer for the longest receipt is a
// few tens of kilobytes.
const maxResponse = 4 << 20

// Options configure a Refiner. The zero value of every field means its
// default, so Options{} talks to OpenAI with $OPENAI_API_KEY and no cache.
type Options struct {
	// BaseURL is the API root; requests go to BaseURL + "/chat/completions".
	BaseURL string
	// APIKey is sent as "Authorization: Bearer KEY". Default
	// $OPENAI_API_KEY; it may be empty only with a non-default BaseURL.
	APIKey string
	// Model is the chat model; it must support json_schema response formats.
	Model string
	// MaxRetries is how many times the request is retried after a 429,
	// 408, 5xx or transport error. Default 3; negative means never.
	MaxRetries int
	// Timeout bounds one HTTP attempt. Default DefaultTimeout.
	Timeout time.Duration
	// MaxCompletionTokens, when positive, is sent as max_completion_tokens
	// to bound an answer's cost; an answer cut there is ErrTruncated.
	MaxCompletionTokens int
	// Table, when set, caches answers (see the package comment).
	Table items.Table
	// CacheTTL is a cached answer's lifetime. Default DefaultCacheTTL.
	CacheTTL time.Duration
	// Log receives cache failures and per-request details; nil discards.
	Log *slog.Logger
	// HTTPClient sends the requests. Default a client with no overall
	// timeout (Timeout bounds each attempt).
	HTTPClient *http.Client
	// Sleep waits between retries; tests inject it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns numbers in [0, 1) for backoff jitter; tests inject it.
	Rand func() float64
}

// Refiner refines proposals through a chat model. It is safe for
// concurrent use.
type Refiner struct {
	endpoint            string
	apiKey              string
	model               string
	maxRetries          int
	timeout             time.Duration
	maxCompletionTokens int
	api                 *openaihttp.Client
	table               items.Table
	ttl                 time.Duration
	log                 *slog.Logger
	hits                atomic.Int64
}

var _ label.Refiner = (*Refiner)(nil)

// New checks opts and returns a Refiner. It does no I/O.
func New(opts Options) (*Refiner, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("llm refiner: "+format+": %w", append(args, tally.ErrInvalidArgument)...)
	}
	base, key, err := openaihttp.Endpoint("llm refiner", opts.BaseURL, DefaultBaseURL, opts.APIKey, EnvAPIKey)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.Timeout < 0:
		return nil, invalid("Timeout %v is negative", opts.Timeout)
	case opts.CacheTTL < 0:
		return nil, invalid("CacheTTL %v is negative", opts.CacheTTL)
	case opts.MaxCompletionTokens < 0:
		return nil, invalid("MaxCompletionTokens %d is negative", opts.MaxCompletionTokens)
	}
	model := strings.TrimSpace(opts.Model)
	if model == "" {
		model = DefaultModel
	}
	rf := &Refiner{
		endpoint:            base + "/chat/completions",
		apiKey:              key,
		model:               model,
		maxRetries:          opts.MaxRetries,
		timeout:             opts.Timeout,
		maxCompletionTokens: opts.MaxCompletionTokens,
		table:               opts.Table,
		ttl:                 opts.CacheTTL,
		log:                 opts.Log,
	}
	switch {
	case rf.maxRetries == 0:
		rf.maxRetries = DefaultMaxRetries
	case rf.maxRetries < 0:
		rf.maxRetries = 0
	}
	if rf.timeout == 0 {
		rf.timeout = DefaultTimeout
	}
	if rf.ttl == 0 {
		rf.ttl = DefaultCacheTTL
	}
	if rf.log == nil {
		rf.log = slog.New(slog.DiscardHandler)
	}
	rf.api = openaihttp.New(openaihttp.Config{
		Endpoint: rf.endpoint, APIKey: key, HTTPClient: opts.HTTPClient,
		MaxRetries: rf.maxRetries, Timeout: rf.timeout, Sleep: opts.Sleep, Rand: opts.Rand,
		Rejected: ErrRejected, Unavailable: ErrUnavailable, BadResponse: ErrBadResponse,
	})
	return rf, nil
}

// Model is the chat model asked.
func (rf *Refiner) Model() string { return rf.model }

// Requests is how many HTTP requests (retries included) the Refiner has
// sent, for measuring requests per receipt.
func (rf *Refiner) Requests() int64 { return rf.api.Requests() }

// CacheHits is how many Refine calls were answered from the cache.
func (rf *Refiner) CacheHits() int64 { return rf.hits.Load() }

// Refine asks the model to improve p for r and returns the new proposal:
// the model's fields (Text from their words), line items and labels, with
// the rules' fields, labels and items kept where the model said nothing,
// p's doubts, rounding, country and card kept, and Source
// p.Source+"+llm". On any error the returned proposal is the zero value
// and the caller keeps p. A receipt without words is returned unchanged
// without asking.
func (rf *Refiner) Refine(ctx context.Context, r label.Receipt, p label.Proposal) (label.Proposal, error) {
	where := fmt.Sprintf("llm refine %s/%d", r.ImageID, r.ReceiptID)
	if len(r.Words) == 0 {
		return p, nil
	}
	if err := ctx.Err(); err != nil {
		return label.Proposal{}, fmt.Errorf("%s: %w", where, err)
	}
	body, err := rf.requestBody(r, p)
	if err != nil {
		return label.Proposal{}, fmt.Errorf("%s: %w", where, err)
	}
	key := rf.cacheKey(body)
	if content, ok := rf.cached(ctx, key); ok {
		out, err := refined(r, p, content)
		if err == nil {
			rf.hits.Add(1)
			return out, nil
		}
		rf.log.Warn("llm cache entry unusable; asking again", "pk", key.PK, "sk", key.SK, "err", err)
	}

	data, err := rf.api.Post(ctx, body, maxResponse)
	if err != nil {
		return label.Proposal{}, fmt.Errorf("%s: %w", where, err)
	}
	c, err := decodeCompletion(data)
	if err != nil {
		return label.Proposal{}, fmt.Errorf("%s: %w", where, err)
	}
	rf.log.Debug("llm answered", "image_id", r.ImageID, "receipt_id", r.ReceiptID, "model", rf.model,
		"id", c.ID, "prompt_tokens", c.Usage.PromptTokens, "completion_tokens", c.Usage.CompletionTokens)
	out, err := refined(r, p, c.content)
	if err != nil {
		return label.Proposal{}, fmt.Errorf("%s: %w", where, err)
	}
	rf.store(ctx, key, c.content)
	return out, nil
}
