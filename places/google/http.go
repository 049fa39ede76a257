package google

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/internal/ctxtime"
	"github.com/tallyhq/tally/places"
)

// api says which of Google's two error conventions a response follows.
type api int

const (
	// newAPI (Places API (New)) answers errors with an HTTP status and
	// {"error":{"code","message","status","details"}}.
	newAPI api = iota
	// legacyAPI (Find Place) answers HTTP 200 with a "status" field.
	legacyAPI
)

const (
	maxResponseBytes = 4 << 20          // far above any answer of the masks used
	maxRetryAfter    = 30 * time.Second // a longer Retry-After is not worth waiting for inline
	maxMessageBytes  = 300              // of Google's message, in our errors
)

// attemptError is why one HTTP attempt failed, and whether another may
// succeed.
type attemptError struct {
	kind  error         // a places sentinel, or nil
	cause error         // an underlying error such as context.DeadlineExceeded
	msg   string        // what happened, without the API key
	retry bool          // a later attempt may succeed
	after time.Duration // the server's Retry-After, if any
}

func (e *attemptError) Error() string { return e.msg }

func (e *attemptError) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.kind, e.cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// call sends a request, retrying what may succeed later, and decodes a
// successful answer into out.
func (c *Client) call(ctx context.Context, op string, kind api, method, endpoint string, body []byte, fieldMask string, out any) error {
	for attempt := 0; ; attempt++ {
		data, err := c.attempt(ctx, kind, method, endpoint, body, fieldMask)
		if err == nil {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("google places: %s: malformed response (%d bytes): %v", op, len(data), err)
			}
			return nil
		}
		var ae *attemptError
		if !errors.As(err, &ae) || !ae.retry || attempt >= c.maxRetries || ctx.Err() != nil {
			if attempt > 0 {
				return fmt.Errorf("google places: %s: %w (after %d attempts)", op, err, attempt+1)
			}
			return fmt.Errorf("google places: %s: %w", op, err)
		}
		if err := ctxtime.Sleep(ctx, max(c.backoffBefore(attempt+1), ae.after)); err != nil {
			return fmt.Errorf("google places: %s: %w (waiting to retry after %v)", op, err, ae)
		}
	}
}

// backoffBefore is the wait before retry n (1, 2, …): RetryBackoff doubled
// each time, with up to a quarter more at random so that workers throttled
// together do not retry together.
func (c *Client) backoffBefore(n int) time.Duration {
	wait := c.backoff << min(n-1, 10)
	return wait + rand.N(wait/4+1)
}

// attempt sends one HTTP request and returns the body of a successful
// answer.
func (c *Client) attempt(ctx context.Context, kind api, method, endpoint string, body []byte, fieldMask string) ([]byte, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, method, endpoint, bytes.NewReader(body))
	if err != nil {
		// The URL holds the key for the legacy API: say nothing of it.
		return nil, fmt.Errorf("build request: malformed URL: %w", tally.ErrInvalidArgument)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "tally/"+tally.Version)
	if kind == newAPI {
		req.Header.Set("X-Goog-Api-Key", c.key)
		req.Header.Set("X-Goog-FieldMask", fieldMask)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	c.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, actx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, c.transportError(ctx, actx, err)
	}
	if len(data) > maxResponseBytes {
		return nil, fmt.Errorf("HTTP %d: response larger than %d bytes", resp.StatusCode, maxResponseBytes)
	}
	if kind == newAPI {
		return data, newAPIError(resp, data)
	}
	return data, legacyAPIError(resp, data)
}

// transportError describes a request that got no complete answer. The
// *url.Error of net/http is unwrapped because its URL carries the key.
func (c *Client) transportError(ctx, actx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err() // the caller gave up: not ours to retry
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(actx.Err(), context.DeadlineExceeded) {
		return &attemptError{cause: context.DeadlineExceeded, retry: true,
			msg: fmt.Sprintf("no answer within %v", c.timeout)}
	}
	return &attemptError{cause: err, retry: true, msg: "transport: " + err.Error()}
}

// googleError is the error body of Places API (New), as of every Google API.
type googleError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Reason string `json:"reason"`
		} `json:"details"`
	} `json:"error"`
}

// newAPIError maps a Places API (New) answer to an error; nil for 200.
func newAPIError(resp *http.Response, data []byte) error {
	code := resp.StatusCode
	if code == http.StatusOK {
		return nil
	}
	var ge googleError
	_ = json.Unmarshal(data, &ge) // an unreadable body still has a status code
	desc := fmt.Sprintf("HTTP %d", code)
	if ge.Error.Status != "" {
		desc += " " + ge.Error.Status
	}
	if m := clip(ge.Error.Message); m != "" {
		desc += ": " + m
	}
	keyInvalid := false
	for _, d := range ge.Error.Details {
		keyInvalid = keyInvalid || d.Reason == "API_KEY_INVALID"
	}
	e := &attemptError{msg: desc}
	switch {
	case code == http.StatusBadRequest && keyInvalid,
		code == http.StatusUnauthorized, code == http.StatusForbidden:
		e.kind = places.ErrDenied
	case code == http.StatusBadRequest:
		e.kind = places.ErrInvalidArgument
	case code == http.StatusNotFound:
		e.kind = places.ErrNotFound
	case code == http.StatusTooManyRequests:
		e.kind, e.retry, e.after = places.ErrQuota, true, retryAfter(resp)
	case code >= 500:
		e.retry, e.after = true, retryAfter(resp)
	}
	return e
}

// legacyStatus is the part of a legacy answer that says how it went.
type legacyStatus struct {
	Status       string `json:"status"`
	ErrorMessage string `json:"error_message"`
}

// legacyAPIError maps a Find Place (legacy) answer to an error; nil for
// OK and ZERO_RESULTS.
func legacyAPIError(resp *http.Response, data []byte) error {
	code := resp.StatusCode
	switch {
	case code == http.StatusForbidden || code == http.StatusUnauthorized:
		return &attemptError{kind: places.ErrDenied, msg: fmt.Sprintf("HTTP %d", code)}
	case code == http.StatusTooManyRequests:
		return &attemptError{kind: places.ErrQuota, retry: true, after: retryAfter(resp), msg: "HTTP 429"}
	case code >= 500:
		return &attemptError{retry: true, after: retryAfter(resp), msg: fmt.Sprintf("HTTP %d", code)}
	case code != http.StatusOK:
		return &attemptError{msg: fmt.Sprintf("HTTP %d", code)}
	}
	var st legacyStatus
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("malformed response (%d bytes): %v", len(data), err)
	}
	desc := st.Status
	if m := clip(st.ErrorMessage); m != "" {
		desc += ": " + m
	}
	switch st.Status {
	case "OK", "ZERO_RESULTS":
		return nil
	case "INVALID_REQUEST":
		return &attemptError{kind: places.ErrInvalidArgument, msg: desc}
	case "REQUEST_DENIED":
		return &attemptError{kind: places.ErrDenied, msg: desc}
	case "OVER_QUERY_LIMIT":
		return &attemptError{kind: places.ErrQuota, retry: true, msg: desc}
	case "UNKNOWN_ERROR": // Google: "trying again may be successful"
		return &attemptError{retry: true, msg: desc}
	case "":
		return fmt.Errorf("malformed response: no status")
	default:
		return &attemptError{msg: "unexpected status " + desc}
	}
}

// retryAfter reads a Retry-After header given in seconds.
func retryAfter(resp *http.Response) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After")))
	if err != nil || secs <= 0 {
		return 0
	}
	return min(time.Duration(secs)*time.Second, maxRetryAfter)
}

// clip shortens a server message for an error string.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxMessageBytes {
		return s
	}
	cut := maxMessageBytes
	for cut > 0 && s[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}
