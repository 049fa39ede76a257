package openaihttp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestErrorMessageFormats(t *testing.T) {
	t.Parallel()
	tests := []struct{ body, want string }{
		{`{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, "rate_limit_exceeded: Rate limit reached"},
		{`{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}`, "invalid_request_error: bad"},
		{`{"error":"model \"x\" not found, try pulling it first"}`, `model "x" not found, try pulling it first`}, // Ollama
		{`{"object":"error","message":"This model's maximum context length is 512 tokens"}`, "This model's maximum context length is 512 tokens"},
		{`<html>502 Bad Gateway</html>`, ""},
	}
	for _, tt := range tests {
		if got := ErrorMessage([]byte(tt.body)); got != tt.want {
			t.Errorf("ErrorMessage(%s) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestRetryAfterParsing(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 5, 26, 5, 0, 0, 0, time.UTC)
	tests := []struct {
		headers map[string]string
		want    time.Duration
	}{
		{nil, -1},
		{map[string]string{"Retry-After": "2"}, 2 * time.Second},
		{map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{map[string]string{"Retry-After": "Mon, 26 May 2025 05:00:07 GMT"}, 7 * time.Second},
		{map[string]string{"Retry-After": "Mon, 26 May 2025 04:59:00 GMT"}, 0}, // in the past
		{map[string]string{"Retry-After": "soon"}, -1},
		{map[string]string{"Retry-After": "-3"}, -1},
		{map[string]string{"Retry-After": "1e300"}, MaxRetryAfter},
		{map[string]string{"Retry-After-Ms": "20", "Retry-After": "1"}, 20 * time.Millisecond},
		{map[string]string{"Retry-After-Ms": "junk", "Retry-After": "1"}, time.Second},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.headers {
			h.Set(k, v)
		}
		if got := RetryAfter(h, now); got != tt.want {
			t.Errorf("RetryAfter(%v) = %v, want %v", tt.headers, got, tt.want)
		}
	}
}

func TestRetryableStatus(t *testing.T) {
	t.Parallel()
	for code, want := range map[int]bool{200: false, 400: false, 401: false, 404: false, 408: true, 413: false, 429: true, 500: true, 502: true, 503: true} {
		if got := RetryableStatus(code); got != want {
			t.Errorf("RetryableStatus(%d) = %v, want %v", code, got, want)
		}
	}
}

// errCustom stands for an adapter's own sentinel.
var errCustom = errors.New("custom unavailable")

func TestPost(t *testing.T) {
	t.Parallel()
	ok := func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"ok":true}`)) }
	status := func(code int, headers ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(headers); i += 2 {
				w.Header().Set(headers[i], headers[i+1])
			}
			w.WriteHeader(code)
			_, _ = w.Write([]byte(`{"error":{"message":"nope","type":"server_error","param":null,"code":null}}`))
		}
	}
	tests := []struct {
		name       string
		script     []http.HandlerFunc // request n gets script[n], then ok
		maxRetries int
		limit      int64
		wantErr    error
		wantSleeps []time.Duration
		wantCalls  int64
	}{
		{name: "first try", wantCalls: 1},
		{name: "500 then ok", script: []http.HandlerFunc{status(500)}, maxRetries: 2, wantSleeps: []time.Duration{250 * time.Millisecond}, wantCalls: 2},
		{name: "429 Retry-After", script: []http.HandlerFunc{status(429, "Retry-After", "3")}, maxRetries: 2, wantSleeps: []time.Duration{3 * time.Second}, wantCalls: 2},
		{name: "exhausted", script: []http.HandlerFunc{status(503), status(503), status(503)}, maxRetries: 2, wantErr: errCustom,
			wantSleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}, wantCalls: 3},
		{name: "400 final", script: []http.HandlerFunc{status(400)}, maxRetries: 2, wantErr: ErrRejected, wantCalls: 1},
		{name: "body over limit", limit: 4, wantErr: ErrBadResponse, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer k" || r.Header.Get("Content-Type") != "application/json" {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				i := int(n.Add(1)) - 1
				if i < len(tt.script) {
					tt.script[i](w, r)
					return
				}
				ok(w, r)
			}))
			t.Cleanup(srv.Close)
			var mu sync.Mutex
			var slept []time.Duration
			c := New(Config{Endpoint: srv.URL, APIKey: "k", MaxRetries: tt.maxRetries, Unavailable: errCustom,
				Rand: func() float64 { return 0.5 },
				Sleep: func(ctx context.Context, d time.Duration) error {
					mu.Lock()
					defer mu.Unlock()
					slept = append(slept, d)
					return nil
				}})
			limit := tt.limit
			if limit == 0 {
				limit = 1 << 20
			}
			body, err := c.Post(context.Background(), []byte(`{}`), limit)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Post: %v", err)
			case tt.wantErr == nil && string(body) != `{"ok":true}`:
				t.Errorf("body %q", body)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if c.Requests() != tt.wantCalls || n.Load() != tt.wantCalls {
				t.Errorf("Requests() = %d, server saw %d, want %d", c.Requests(), n.Load(), tt.wantCalls)
			}
			if !slices.Equal(slept, tt.wantSleeps) {
				t.Errorf("slept %v, want %v", slept, tt.wantSleeps)
			}
		})
	}
}

func TestPostConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now
	c := New(Config{Endpoint: "http://" + addr + "/v1/x", MaxRetries: 2,
		Sleep: func(ctx context.Context, d time.Duration) error { return nil }})
	_, err = c.Post(context.Background(), []byte(`{}`), 1<<20)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Errorf("error %v, want ErrUnavailable after 3 attempts", err)
	}
	if c.Requests() != 3 {
		t.Errorf("Requests() = %d, want 3", c.Requests())
	}
}
