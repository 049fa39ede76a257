package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally"
)

// maxRetryAfter bounds a server's Retry-After only so absurd values cannot
// overflow a Duration; a caller's deadline normally cuts waits far shorter.
const maxRetryAfter = time.Hour

// maxErrorBody bounds how much of a non-200 body is read for its message.
const maxErrorBody = 64 << 10

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

// outcome is one HTTP attempt's result: vectors, or an error that is
// retryable (after retryAfter, when the server said) or final.
type outcome struct {
	vecs       [][]float32
	err        error
	retryable  bool
	retryAfter time.Duration // negative: the server gave no Retry-After
}

// embedBatch sends one request, retrying transient failures with backoff.
func (e *Embedder) embedBatch(ctx context.Context, texts []string) ([][]float32, error) {
	body, err := json.Marshal(embeddingRequest{Model: e.model, Input: texts, Dimensions: e.sendDims})
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	for attempt := 1; ; attempt++ {
		res := e.attempt(ctx, body, len(texts))
		if res.err == nil {
			return res.vecs, nil
		}
		if !res.retryable {
			return nil, res.err
		}
		if attempt > e.maxRetries {
			return nil, fmt.Errorf("%w: gave up after %d attempts: %w", ErrUnavailable, attempt, res.err)
		}
		wait := res.retryAfter
		if wait < 0 {
			wait = e.backoff(attempt)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return nil, fmt.Errorf("%w: attempt %d failed and retrying in %v would pass the deadline: %w",
				ErrUnavailable, attempt, wait.Round(time.Millisecond), res.err)
		}
		if err := e.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("waiting to retry after attempt %d (%v): %w", attempt, res.err, err)
		}
	}
}

// backoff is the full-jitter wait before retry number attempt (1-based):
// uniform in [0, min(cap, base·2^(attempt-1))).
func (e *Embedder) backoff(attempt int) time.Duration {
	ceiling := backoffCap
	if shift := attempt - 1; shift < 16 {
		ceiling = min(backoffCap, backoffBase<<shift)
	}
	return time.Duration(e.rand() * float64(ceiling))
}

// attempt sends the request once, bounded by the per-attempt timeout.
func (e *Embedder) attempt(ctx context.Context, body []byte, inputs int) outcome {
	actx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, e.endpoint, bytes.NewReader(body))
	if err != nil {
		return outcome{err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "tally/"+tally.Version)
	if e.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.apiKey)
	}

	e.requests.Add(1)
	resp, err := e.client.Do(req)
	if err != nil {
		return e.transportFailure(ctx, actx, "send", err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody)) // lets the connection be reused
		_ = resp.Body.Close()
	}()

	if resp.StatusCode != http.StatusOK {
		msg := readErrorMessage(resp)
		failure := fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
		if retryableStatus(resp.StatusCode) {
			return outcome{err: failure, retryable: true, retryAfter: retryAfter(resp.Header, time.Now())}
		}
		return outcome{err: fmt.Errorf("%w: %w", ErrRejected, failure)}
	}

	// Text floats take at most ~25 bytes each; the limit only stops a
	// runaway body from exhausting memory.
	limit := int64(inputs)*int64(e.dims)*32 + 1<<20
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return e.transportFailure(ctx, actx, "read response", err)
	}
	if int64(len(data)) > limit {
		return outcome{err: fmt.Errorf("%w: body over %d bytes", ErrBadResponse, limit)}
	}
	vecs, err := decodeVectors(data, inputs, e.dims)
	return outcome{vecs: vecs, err: err}
}

// transportFailure classifies an error from sending or reading: the
// caller's context ending is final, anything else (per-attempt timeout,
// connection refused or reset) is worth retrying.
func (e *Embedder) transportFailure(ctx, actx context.Context, what string, err error) outcome {
	if ctx.Err() != nil {
		return outcome{err: fmt.Errorf("%s: %w", what, ctx.Err())}
	}
	if errors.Is(actx.Err(), context.DeadlineExceeded) {
		// Not wrapped: the caller's deadline did not pass, only this attempt's.
		return outcome{err: fmt.Errorf("%s: no response within %v", what, e.timeout), retryable: true, retryAfter: -1}
	}
	return outcome{err: fmt.Errorf("%s: %w", what, err), retryable: true, retryAfter: -1}
}

// retryableStatus: rate limits, request timeouts and server errors are
// transient; every other non-200 (400, 401, 403, 404, 413, …) is not.
func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500
}

// retryAfter reads how long the server asked to wait: retry-after-ms (sent
// by OpenAI), else Retry-After as seconds or an HTTP date. Negative means
// no usable header. The x-ratelimit-reset-* headers are deliberately not
// used: they give when the whole window refills, far longer than needed
// for the next request.
func retryAfter(h http.Header, now time.Time) time.Duration {
	seconds := func(v string, unit float64) (time.Duration, bool) {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || math.IsNaN(f) {
			return 0, false
		}
		return time.Duration(min(f*unit, float64(maxRetryAfter))), true
	}
	if d, ok := seconds(h.Get("Retry-After-Ms"), float64(time.Millisecond)); ok {
		return d
	}
	v := h.Get("Retry-After")
	if d, ok := seconds(v, float64(time.Second)); ok {
		return d
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return -1
}

// readErrorMessage extracts the server's explanation from an error body:
// OpenAI's {"error":{"message","type","param","code"}}, Ollama's
// {"error":"…"}, or the start of whatever else came back.
func readErrorMessage(resp *http.Response) string {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if msg := errorMessage(body); msg != "" {
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

// errorMessage returns the message of a JSON error body, or "".
func errorMessage(body []byte) string {
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
