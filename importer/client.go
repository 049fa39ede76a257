// Package importer is the client side of getting many images into Tally:
// it finds the images under folders (saying why it skips the others), asks
// the server whether it already holds each file's bytes (by sha256) before
// sending any, uploads the rest, retries a server it cannot reach with
// backoff, and can follow each image through processing. `tally import`,
// `tally upload` and the watched folder (package watch) all go through it,
// so they agree on what a duplicate, a skip and a failure are.
package importer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tallyhq/tally/internal/ctxtime"
	"github.com/tallyhq/tally/upload"
)

// Defaults of Client.
const (
	DefaultAttempts = 5
	DefaultBackoff  = 100 * time.Millisecond
)

// Client talks HTTP to one Tally server.
type Client struct {
	// Base is the server's URL, e.g. http://127.0.0.1:8080.
	Base string
	// HTTP sends the requests; nil means http.DefaultClient.
	HTTP *http.Client
	// Attempts and Backoff bound the retries of a server that cannot be
	// reached (or answers 502/503/504 while it starts): Attempts tries,
	// waiting Backoff after the first, then twice as long each time.
	Attempts int
	Backoff  time.Duration
	// Token, when set, is sent as Authorization: Bearer (an API token from
	// `tally token create`).
	Token string
	// ReadFile reads a file to import; nil means os.ReadFile. Tests set it
	// to make a file unreadable, which chmod cannot do for root.
	ReadFile func(name string) ([]byte, error)
}

// New is a Client of the server at base with the default retries.
func New(base string) *Client {
	return &Client{Base: strings.TrimRight(base, "/")}
}

// UnreachableError is a request that never got an answer: the server is
// down, or -server names the wrong place. Callers retry it or keep the
// file for later instead of calling the file bad.
type UnreachableError struct {
	Base string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("reach tally server %s: %v (is `tally serve` running? see -server)", e.Base, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Unreachable reports whether err is (or wraps) an UnreachableError.
func Unreachable(err error) bool {
	var u *UnreachableError
	return errors.As(err, &u)
}

// HTTPError is a non-2xx answer, with the server's message.
type HTTPError struct {
	Status  int
	Message string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("server: %s (HTTP %d)", e.Message, e.Status)
}

// transient is an error worth trying again: no answer, or a server (or a
// proxy before it) that is starting or overloaded.
func transient(err error) bool {
	var h *HTTPError
	if errors.As(err, &h) {
		return h.Status == http.StatusBadGateway || h.Status == http.StatusServiceUnavailable || h.Status == http.StatusGatewayTimeout
	}
	return Unreachable(err)
}

// Call sends one request to path on the server and decodes its JSON answer
// into out (nil: discarded). A non-2xx answer is an *HTTPError carrying the
// server's message; out is still filled when that body is JSON.
func (c *Client) Call(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	target := c.Base + path
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("request %s %s: %w", method, target, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", method, target, ctx.Err())
		}
		return &UnreachableError{Base: c.Base, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer of %s: %w", target, err)
	}
	var jerr error
	if out != nil {
		jerr = json.Unmarshal(data, out)
	}
	if resp.StatusCode/100 != 2 {
		var e upload.ErrorBody
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return &HTTPError{Status: resp.StatusCode, Message: e.Error}
		}
		return &HTTPError{Status: resp.StatusCode, Message: string(bytes.TrimSpace(data))}
	}
	if jerr != nil {
		return fmt.Errorf("answer of %s: %w", target, jerr)
	}
	return nil
}

// Retrying calls f until it succeeds, fails for a reason other than an
// unreachable (or starting) server, or Attempts tries with doubling
// backoff have failed; then the error says how long it tried.
func (c *Client) Retrying(ctx context.Context, f func() error) error {
	attempts, wait := c.Attempts, c.Backoff
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	if wait <= 0 {
		wait = DefaultBackoff
	}
	start := time.Now()
	var err error
	for attempt := 1; ; attempt++ {
		if err = f(); err == nil || !transient(err) {
			return err
		}
		if attempt == attempts {
			break
		}
		if serr := ctxtime.Sleep(ctx, wait); serr != nil {
			return errors.Join(err, serr)
		}
		wait *= 2
	}
	return fmt.Errorf("gave up after %d attempts over %s: %w", attempts, time.Since(start).Round(100*time.Millisecond), err)
}

func (c *Client) readFile(name string) ([]byte, error) {
	if c.ReadFile != nil {
		return c.ReadFile(name)
	}
	return os.ReadFile(name)
}
