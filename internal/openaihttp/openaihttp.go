// Package openaihttp sends JSON POST requests to OpenAI-compatible APIs
// (OpenAI, Ollama, vLLM, LiteLLM …) and retries what may succeed later: rate
// limits, request timeouts, server errors and transport failures, with
// full-jitter exponential backoff, the server's Retry-After, a per-attempt
// timeout and the caller's deadline. The embedder (embed/openai) and the
// LLM refiner (label/llm) share it, so the retry policy lives in one place.
//
// The package knows nothing about the endpoints' bodies: Post returns the
// 200 body and the caller decodes it. Callers name the errors they wrap
// (Config.Rejected, Unavailable, BadResponse) so that each adapter keeps
// its own documented sentinels.
package openaihttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/internal/ctxtime"
)

// Defaults of Config.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultBackoffBase = 500 * time.Millisecond
	DefaultBackoffCap  = 30 * time.Second
)

// MaxRetryAfter bounds a server's Retry-After only so absurd values cannot
// overflow a Duration; a caller's deadline normally cuts waits far shorter.
const MaxRetryAfter = time.Hour

// maxErrorBody bounds how much of a non-200 body is read for its message.
const maxErrorBody = 64 << 10

// Sentinels used when a Config leaves its own unset.
var (
	// ErrRejected: the server refused the request with a 4xx other than
	// 408 and 429; retrying cannot help.
	ErrRejected = errors.New("request rejected")
	// ErrUnavailable: the server stayed rate-limited, failing or
	// unreachable until the retries or the caller's deadline ran out.
	ErrUnavailable = errors.New("service unavailable")
	// ErrBadResponse: a 200 body was larger than the caller allowed.
	ErrBadResponse = errors.New("bad response")
)

// Config configures a Client. Endpoint is required; every other zero field
// means its default.
type Config struct {
	// Endpoint is the full URL requests are POSTed to (…/v1/embeddings).
	Endpoint string
	// APIKey, when set, is sent as "Authorization: Bearer KEY".
	APIKey string
	// HTTPClient sends the requests. Default a client with no overall
	// timeout (Timeout bounds each attempt).
	HTTPClient *http.Client
	// MaxRetries is how many times one request is retried; 0 or negative
	// means never (callers apply their own defaults).
	MaxRetries int
	// Timeout bounds one attempt. Default DefaultTimeout.
	Timeout time.Duration
	// BackoffBase and BackoffCap shape the full-jitter backoff: the wait
	// before retry n is uniform in [0, min(cap, base·2^(n-1))).
	BackoffBase, BackoffCap time.Duration
	// Sleep waits between retries; tests inject it. Default ctxtime.Sleep.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns numbers in [0, 1) for the jitter; tests inject it. It
	// must be safe for concurrent use if the Client is shared.
	Rand func() float64
	// Rejected, Unavailable and BadResponse are the errors wrapped for a
	// refused request, exhausted retries and an oversized body. Default
	// this package's sentinels.
	Rejected, Unavailable, BadResponse error
}

// Client posts JSON bodies to one endpoint with retries. It is safe for
// concurrent use.
type Client struct {
	cfg      Config
	requests atomic.Int64
}

// New returns a Client for cfg with its defaults filled in. It does no I/O.
func New(cfg Config) *Client {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffCap <= 0 {
		cfg.BackoffCap = DefaultBackoffCap
	}
	if cfg.Sleep == nil {
		cfg.Sleep = ctxtime.Sleep
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Rejected == nil {
		cfg.Rejected = ErrRejected
	}
	if cfg.Unavailable == nil {
		cfg.Unavailable = ErrUnavailable
	}
	if cfg.BadResponse == nil {
		cfg.BadResponse = ErrBadResponse
	}
	return &Client{cfg: cfg}
}

// Requests is how many HTTP requests (retries included) the Client has
// sent, for measuring requests per receipt.
func (c *Client) Requests() int64 { return c.requests.Load() }

// outcome is one attempt's result: a 200 body, or an error that is
// retryable (after retryAfter, when the server said) or final.
type outcome struct {
	body       []byte
	err        error
	retryable  bool
	retryAfter time.Duration // negative: the server gave no Retry-After
}

// Post sends body until a 200 arrives and returns that response's body
// (at most limit bytes; a longer one is Config.BadResponse). A 429, 408,
// 5xx or transport failure is retried up to MaxRetries times; a retry the
// caller's deadline would cut short is not started. Errors wrap
// Config.Rejected (other non-200s, with the server's message),
// Config.Unavailable (retries exhausted) or ctx's error.
func (c *Client) Post(ctx context.Context, body []byte, limit int64) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		res := c.attempt(ctx, body, limit)
		if res.err == nil {
			return res.body, nil
		}
		if !res.retryable {
			return nil, res.err
		}
		if attempt > c.cfg.MaxRetries {
			return nil, fmt.Errorf("%w: gave up after %d attempts: %w", c.cfg.Unavailable, attempt, res.err)
		}
		wait := res.retryAfter
		if wait < 0 {
			wait = c.backoff(attempt)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return nil, fmt.Errorf("%w: attempt %d failed and retrying in %v would pass the deadline: %w",
				c.cfg.Unavailable, attempt, wait.Round(time.Millisecond), res.err)
		}
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("waiting to retry after attempt %d (%v): %w", attempt, res.err, err)
		}
	}
}

// backoff is the full-jitter wait before retry number attempt (1-based).
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.cfg.BackoffCap
	if shift := attempt - 1; shift < 16 {
		ceiling = min(c.cfg.BackoffCap, c.cfg.BackoffBase<<shift)
	}
	return time.Duration(c.cfg.Rand() * float64(ceiling))
}

// attempt sends the request once, bounded by the per-attempt timeout.
func (c *Client) attempt(ctx context.Context, body []byte, limit int64) outcome {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.cfg.Endpoint, bytes.NewReader(body))
	if err != nil {
		return outcome{err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "tally/"+tally.Version)
	if c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}

	c.requests.Add(1)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return c.transportFailure(ctx, actx, "send", err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody)) // lets the connection be reused
		_ = resp.Body.Close()
	}()

	if resp.StatusCode != http.StatusOK {
		failure := fmt.Errorf("HTTP %d: %s", resp.StatusCode, readErrorMessage(resp))
		if RetryableStatus(resp.StatusCode) {
			return outcome{err: failure, retryable: true, retryAfter: RetryAfter(resp.Header, time.Now())}
		}
		return outcome{err: fmt.Errorf("%w: %w", c.cfg.Rejected, failure)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return c.transportFailure(ctx, actx, "read response", err)
	}
	if int64(len(data)) > limit {
		return outcome{err: fmt.Errorf("%w: body over %d bytes", c.cfg.BadResponse, limit)}
	}
	return outcome{body: data}
}

// transportFailure classifies an error from sending or reading: the
// caller's context ending is final, anything else (per-attempt timeout,
// connection refused or reset) is worth retrying.
func (c *Client) transportFailure(ctx, actx context.Context, what string, err error) outcome {
	if ctx.Err() != nil {
		return outcome{err: fmt.Errorf("%s: %w", what, ctx.Err())}
	}
	if errors.Is(actx.Err(), context.DeadlineExceeded) {
		// Not wrapped: the caller's deadline did not pass, only this attempt's.
		return outcome{err: fmt.Errorf("%s: no response within %v", what, c.cfg.Timeout), retryable: true, retryAfter: -1}
	}
	return outcome{err: fmt.Errorf("%s: %w", what, err), retryable: true, retryAfter: -1}
}

// RetryableStatus tells whether an HTTP status is transient: rate limits,
// request timeouts and server errors are; every other non-200 (400, 401,
// 403, 404, 413, …) is not.
func RetryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500
}

// RetryAfter reads how long the server asked to wait: retry-after-ms (sent
// by OpenAI), else Retry-After as seconds or an HTTP date, at most
// MaxRetryAfter. Negative means no usable header. The x-ratelimit-reset-*
// headers are deliberately not used: they give when the whole window
// refills, far longer than needed for the next request.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	seconds := func(v string, unit float64) (time.Duration, bool) {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || math.IsNaN(f) {
			return 0, false
		}
		return time.Duration(min(f*unit, float64(MaxRetryAfter))), true
	}
	if d, ok := seconds(h.Get("Retry-After-Ms"), float64(time.Millisecond)); ok {
		return d
	}
	v := h.Get("Retry-After")
	if d, ok := seconds(v, float64(time.Second)); ok {
		return d
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), MaxRetryAfter)
	}
	return -1
}

// readErrorMessage extracts the server's explanation from an error body:
// a JSON error (see ErrorMessage) or the start of whatever else came back.
func readErrorMessage(resp *http.Response) string {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if msg := ErrorMessage(body); msg != "" {
		return msg
	}
	text := strings.TrimSpace(string(body))
	if text == "" {
		return http.StatusText(resp.StatusCode)
	}
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	return text
}

// ErrorMessage returns the message of a JSON error body, or "": OpenAI's
// {"error":{"message","type","param","code"}} as "code: message" (or
// "type: message"), Ollama's {"error":"…"}, vLLM's {"message":"…"}.
func ErrorMessage(body []byte) string {
	var envelope struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &envelope) != nil {
		return ""
	}
	var asString string
	if json.Unmarshal(envelope.Error, &asString) == nil && asString != "" {
		return asString
	}
	var detail struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    any    `json:"code"`
	}
	if json.Unmarshal(envelope.Error, &detail) == nil && detail.Message != "" {
		kind := detail.Type
		if code, ok := detail.Code.(string); ok && code != "" {
			kind = code
		}
		if kind != "" {
			return kind + ": " + detail.Message
		}
		return detail.Message
	}
	return envelope.Message
}
