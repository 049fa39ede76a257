package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/embed"
	"github.com/tallyhq/tally/embed/embedtest"
	"github.com/tallyhq/tally/internal/ctxtime"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	f := newFake(t, nil)
	embedtest.Run(t, func(t *testing.T) embed.Embedder {
		e, _ := newTestEmbedder(t, f, Options{Dims: 64})
		return e
	}, embedtest.Capabilities{Deterministic: true, Lexical: true})
}

func TestRequestCarriesModelInputDimensionsAndKey(t *testing.T) {
	t.Parallel()
	f := newFake(t, nil)
	e, _ := newTestEmbedder(t, f, Options{APIKey: "sk-secret", Model: "text-embedding-3-large", Dims: 256})
	if _, err := e.Embed(context.Background(), []string{"TOTAL 12.50", "MILK"}); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	got := reqs[0]
	if got.auth != "Bearer sk-secret" {
		t.Errorf("Authorization = %q", got.auth)
	}
	if got.contentType != "application/json" {
		t.Errorf("Content-Type = %q", got.contentType)
	}
	if got.body.Model != "text-embedding-3-large" || got.body.Dimensions != 256 || !slices.Equal(got.body.Input, []string{"TOTAL 12.50", "MILK"}) {
		t.Errorf("body = %+v", got.body)
	}
	if e.Requests() != 1 {
		t.Errorf("Requests() = %d, want 1", e.Requests())
	}
}

func TestNoDimensionsOrKeyWhenNotSet(t *testing.T) {
	t.Parallel()
	f := newFake(t, nil)
	// A local server: no key, a model New does not know, its length declared.
	e, err := New(Options{BaseURL: f.baseURL(), APIKey: "", Model: "nomic-embed-text", NativeDims: 1536})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Embed(context.Background(), []string{"hello"}); err != nil {
		t.Fatal(err)
	}
	got := f.requests()[0]
	if _, ok := got.raw["dimensions"]; ok {
		t.Errorf("dimensions sent although not set: %s", got.raw["dimensions"])
	}
	if got.auth != "" {
		t.Errorf("Authorization %q sent with no key", got.auth)
	}
}

// TestBatchingByInputs: 5000 texts go out as 2048 + 2048 + 904, in order,
// and come back in order.
func TestBatchingByInputs(t *testing.T) {
	t.Parallel()
	f := newFake(t, nil)
	e, _ := newTestEmbedder(t, f, Options{Dims: 16})
	texts := make([]string, 5000)
	for i := range texts {
		texts[i] = fmt.Sprintf("ITEM %d", i)
	}
	vs, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	var sent []string
	for _, r := range f.requests() {
		sizes = append(sizes, len(r.body.Input))
		sent = append(sent, r.body.Input...)
	}
	if !slices.Equal(sizes, []int{2048, 2048, 904}) {
		t.Errorf("request sizes %v, want [2048 2048 904]", sizes)
	}
	if !slices.Equal(sent, texts) {
		t.Error("the requests did not carry the texts in order")
	}
	if e.Requests() != 3 {
		t.Errorf("Requests() = %d, want 3", e.Requests())
	}
	assertVectors(t, vs, 16, texts)
}

// assertVectors checks vs are the fake server's vectors for texts, in
// order and unit length (the server sends them scaled by 2.5).
func assertVectors(t *testing.T, vs [][]float32, dims int, texts []string) {
	t.Helper()
	want, err := fakeVectors(dims, texts)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(want) {
		t.Fatalf("%d vectors, want %d", len(vs), len(want))
	}
	for i := range vs {
		for j := range vs[i] {
			if math.Abs(float64(vs[i][j]-want[i][j])) > 1e-5 {
				t.Fatalf("vector %d component %d = %f, want %f", i, j, vs[i][j], want[i][j])
			}
		}
	}
}

func TestBatchingByTokenBudget(t *testing.T) {
	t.Parallel()
	f := newFake(t, nil)
	const budget = 40
	e, _ := newTestEmbedder(t, f, Options{Dims: 16, MaxTokens: budget})
	var texts []string
	for i := range 60 {
		texts = append(texts, strings.Repeat("TOTAL 12.50 ", 1+i%3)) // 6, 12 or 18 tokens
	}
	vs, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) < 2 {
		t.Fatalf("%d requests, want the budget to force several", len(reqs))
	}
	var sent []string
	for n, r := range reqs {
		tokens := 0
		for _, s := range r.body.Input {
			tokens += EstimateTokens(s)
		}
		if tokens > budget {
			t.Errorf("request %d carries %d estimated tokens, over the budget %d", n, tokens, budget)
		}
		sent = append(sent, r.body.Input...)
	}
	if !slices.Equal(sent, texts) {
		t.Error("the requests did not carry the texts in order")
	}
	assertVectors(t, vs, 16, texts)
}

func TestInputOverLimitIsInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		maxTokens int
		long      string
	}{
		{"over 8191 tokens", 0, strings.Repeat("abc", MaxInputTokens+1)},
		{"over a small MaxTokens", 10, "ONE TWO THREE FOUR FIVE SIX SEVEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, nil)
			e, _ := newTestEmbedder(t, f, Options{Dims: 16, MaxTokens: tt.maxTokens})
			_, err := e.Embed(context.Background(), []string{"short", tt.long})
			if !errors.Is(err, tally.ErrInvalidArgument) {
				t.Fatalf("error = %v, want ErrInvalidArgument", err)
			}
			if !strings.Contains(err.Error(), "text 1 ") {
				t.Errorf("error %q does not name text 1", err)
			}
			if n := len(f.requests()); n != 0 {
				t.Errorf("%d requests sent for an invalid input", n)
			}
		})
	}
}

func TestEstimateTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want int
	}{
		{"", 0},
		{"$", 1},
		{"TOTAL", 2},            // 5 letters → 2
		{"TOTAL 12.50", 6},      // TOTAL, space, 12, ., 50
		{"1234567", 3},          // digit groups of 3
		{"   \t\n", 1},          // one whitespace run
		{"été", 5},              // é is 2 bytes, t one letter
		{"収据", 6},               // 3 bytes each
		{"<EDGE> MILK 2%", 10},  // <, EDGE(2), >, space, MILK(2), space, 2, %
		{"\xff", 3},             // invalid UTF-8 travels as U+FFFD
		{"C0STCO WH0LESALE", 9}, // C,0,STCO(2),space,WH,0,LESALE(2)
	}
	for _, tt := range tests {
		if got := EstimateTokens(tt.text); got != tt.want {
			t.Errorf("EstimateTokens(%q) = %d, want %d", tt.text, got, tt.want)
		}
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	// The date is made when the request arrives: subtests start late under load.
	retryAtDate := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(3*time.Second).UTC().Format(http.TimeFormat))
		writeError(w, http.StatusTooManyRequests, "Rate limit reached", "requests", "rate_limit_exceeded")
	}
	serverError := respond(http.StatusInternalServerError, nil, "The server had an error while processing your request.")
	tests := []struct {
		name       string
		maxRetries int
		script     map[int]http.HandlerFunc
		wantErr    error // nil: success
		wantSleeps []time.Duration
		sleepRange [2]time.Duration // instead of wantSleeps, for HTTP dates
		wantCalls  int
	}{
		{
			name:       "429 Retry-After seconds",
			script:     map[int]http.HandlerFunc{0: respond(429, map[string]string{"Retry-After": "2"}, "Rate limit reached")},
			wantSleeps: []time.Duration{2 * time.Second},
			wantCalls:  2,
		},
		{
			name:       "429 retry-after-ms",
			script:     map[int]http.HandlerFunc{0: respond(429, map[string]string{"retry-after-ms": "1500", "Retry-After": "2"}, "Rate limit reached")},
			wantSleeps: []time.Duration{1500 * time.Millisecond},
			wantCalls:  2,
		},
		{
			name:       "429 Retry-After HTTP date",
			script:     map[int]http.HandlerFunc{0: retryAtDate},
			sleepRange: [2]time.Duration{time.Second, 3 * time.Second},
			wantCalls:  2,
		},
		{
			name:       "429 without Retry-After backs off",
			script:     map[int]http.HandlerFunc{0: respond(429, map[string]string{"x-ratelimit-reset-requests": "6m0s"}, "Rate limit reached")},
			wantSleeps: []time.Duration{250 * time.Millisecond},
			wantCalls:  2,
		},
		{
			name:       "500 then success",
			script:     map[int]http.HandlerFunc{0: serverError},
			wantSleeps: []time.Duration{250 * time.Millisecond},
			wantCalls:  2,
		},
		{
			name:       "408 then 502 then success",
			script:     map[int]http.HandlerFunc{0: respond(408, nil, "timeout"), 1: respond(502, nil, "bad gateway")},
			wantSleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond},
			wantCalls:  3,
		},
		{
			name:       "connection reset then success",
			script:     map[int]http.HandlerFunc{0: hangUp},
			wantSleeps: []time.Duration{250 * time.Millisecond},
			wantCalls:  2,
		},
		{
			name:       "503 on every attempt",
			maxRetries: 3,
			script:     repeat(4, respond(503, nil, "The engine is currently overloaded")),
			wantErr:    ErrUnavailable,
			wantSleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second},
			wantCalls:  4,
		},
		{
			name:       "backoff doubles up to its cap",
			maxRetries: 8,
			script:     repeat(9, serverError),
			wantErr:    ErrUnavailable,
			wantSleeps: []time.Duration{
				250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second,
				4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second,
			},
			wantCalls: 9,
		},
		{
			name:       "no retries",
			maxRetries: -1,
			script:     map[int]http.HandlerFunc{0: serverError},
			wantErr:    ErrUnavailable,
			wantCalls:  1,
		},
		{
			name:      "401 is not retried",
			script:    map[int]http.HandlerFunc{0: respond(401, nil, "Incorrect API key provided: sk-test.")},
			wantErr:   ErrRejected,
			wantCalls: 1,
		},
		{
			name:      "400 is not retried",
			script:    map[int]http.HandlerFunc{0: respond(400, nil, "'$.input' is invalid.")},
			wantErr:   ErrRejected,
			wantCalls: 1,
		},
		{
			name:      "404 model not found is not retried",
			script:    map[int]http.HandlerFunc{0: respond(404, nil, "The model `nope` does not exist")},
			wantErr:   ErrRejected,
			wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tt.script)
			e, rec := newTestEmbedder(t, f, Options{Dims: 16, MaxRetries: tt.maxRetries})
			texts := []string{"TOTAL 12.50", "MILK 3.49"}
			vs, err := e.Embed(context.Background(), texts)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("error = %v, want success", err)
			case tt.wantErr == nil:
				assertVectors(t, vs, 16, texts)
			case !errors.Is(err, tt.wantErr):
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			case !strings.Contains(err.Error(), "inputs 0–1"):
				t.Errorf("error %q does not say which inputs failed", err)
			}
			if n := len(f.requests()); n != tt.wantCalls {
				t.Errorf("server saw %d requests, want %d", n, tt.wantCalls)
			}
			if e.Requests() != int64(tt.wantCalls) {
				t.Errorf("Requests() = %d, want %d", e.Requests(), tt.wantCalls)
			}
			got := rec.durations()
			if tt.sleepRange[1] > 0 {
				if len(got) != 1 || got[0] < tt.sleepRange[0] || got[0] > tt.sleepRange[1] {
					t.Errorf("slept %v, want one wait in %v", got, tt.sleepRange)
				}
			} else if !slices.Equal(got, tt.wantSleeps) {
				t.Errorf("slept %v, want %v", got, tt.wantSleeps)
			}
		})
	}
}

func TestRejectedCarriesServerMessage(t *testing.T) {
	t.Parallel()
	f := newFake(t, map[int]http.HandlerFunc{0: func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusUnauthorized, "Incorrect API key provided: sk-test.", "invalid_request_error", "invalid_api_key")
	}})
	e, _ := newTestEmbedder(t, f, Options{Dims: 16})
	_, err := e.Embed(context.Background(), []string{"a"})
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "invalid_api_key: Incorrect API key provided") {
		t.Errorf("error = %v, want ErrRejected with the server's code and message", err)
	}
}

// TestAttemptTimeoutIsRetried: a server that does not answer within
// Options.Timeout costs one attempt, not the call.
func TestAttemptTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	f := newFake(t, map[int]http.HandlerFunc{0: func(w http.ResponseWriter, r *http.Request) {
		select { // outlast the client's 50 ms, but end once it hangs up
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}})
	e, rec := newTestEmbedder(t, f, Options{Dims: 16, Timeout: 50 * time.Millisecond})
	vs, err := e.Embed(context.Background(), []string{"TOTAL 12.50"})
	if err != nil {
		t.Fatal(err)
	}
	assertVectors(t, vs, 16, []string{"TOTAL 12.50"})
	if n := len(f.requests()); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
	if len(rec.durations()) != 1 {
		t.Errorf("slept %v, want one backoff", rec.durations())
	}
}

// TestDeadlineShorterThanRetryAfter: when the server asks for a wait that
// would outlast the caller's deadline, Embed gives up at once instead of
// sleeping into it.
func TestDeadlineShorterThanRetryAfter(t *testing.T) {
	t.Parallel()
	f := newFake(t, map[int]http.HandlerFunc{0: respond(429, map[string]string{"Retry-After": "30"}, "Rate limit reached")})
	e, rec := newTestEmbedder(t, f, Options{Dims: 16})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := e.Embed(ctx, []string{"a"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "Rate limit reached") {
		t.Errorf("error = %v, want ErrUnavailable carrying the 429", err)
	}
	if got := rec.durations(); len(got) != 0 {
		t.Errorf("slept %v although the wait passes the deadline", got)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}

func TestCanceledWhileWaiting(t *testing.T) {
	t.Parallel()
	f := newFake(t, repeat(2, respond(503, nil, "overloaded")))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, _ := newTestEmbedder(t, f, Options{Dims: 16, Sleep: func(ctx context.Context, d time.Duration) error {
		cancel() // the caller gives up during the wait
		return ctxtime.Sleep(ctx, d)
	}})
	_, err := e.Embed(ctx, []string{"a"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}

func TestBadResponses(t *testing.T) {
	t.Parallel()
	vector := func(n int) string {
		v := make([]float32, n)
		v[0] = 1
		b, _ := json.Marshal(v)
		return string(b)
	}
	item := func(index string, n int) string {
		return fmt.Sprintf(`{"object":"embedding","index":%s,"embedding":%s}`, index, vector(n))
	}
	list := func(items ...string) string {
		return `{"object":"list","data":[` + strings.Join(items, ",") + `],"model":"text-embedding-3-small","usage":{"prompt_tokens":2,"total_tokens":2}}`
	}
	tests := []struct{ name, body, want string }{
		{"malformed JSON", `{"object":"list","data":[`, "malformed JSON"},
		{"not JSON at all", `<html>oops</html>`, "malformed JSON"},
		{"too few vectors", list(item("0", 16)), "1 vectors for 2 inputs"},
		{"too many vectors", list(item("0", 16), item("1", 16), item("2", 16)), "3 vectors for 2 inputs"},
		{"wrong dims", list(item("0", 16), item("1", 15)), "vector 1 has 15 dimensions, want 16"},
		{"duplicate index", list(item("1", 16), item("1", 16)), "index 1 appears twice"},
		{"missing index", list(`{"object":"embedding","embedding":`+vector(16)+`}`, item("1", 16)), "data[0] has no index"},
		{"index out of range", list(item("0", 16), item("2", 16)), "index 2"},
		{"zero vector", list(item("0", 16), `{"object":"embedding","index":1,"embedding":[0`+strings.Repeat(",0", 15)+`]}`), "zero"},
		{"error in a 200", `{"error":{"message":"input too long","type":"invalid_request_error"}}`, "input too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, map[int]http.HandlerFunc{0: rawBody(tt.body)})
			e, rec := newTestEmbedder(t, f, Options{Dims: 16})
			_, err := e.Embed(context.Background(), []string{"TOTAL", "MILK"})
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error = %v, want ErrBadResponse", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "inputs 0–1") {
				t.Errorf("error %q does not mention %q and the inputs", err, tt.want)
			}
			if n := len(f.requests()); n != 1 || len(rec.durations()) != 0 {
				t.Errorf("%d requests and waits %v: a bad response must not be retried", n, rec.durations())
			}
		})
	}
}

// TestErrorNamesFailingRequest: with several requests, the error says which
// inputs the failing one carried, and nothing after it is sent.
func TestErrorNamesFailingRequest(t *testing.T) {
	t.Parallel()
	f := newFake(t, map[int]http.HandlerFunc{1: respond(400, nil, "'$.input[1]' is invalid")})
	e, _ := newTestEmbedder(t, f, Options{Dims: 16, MaxInputs: 2})
	_, err := e.Embed(context.Background(), []string{"a", "b", "c", "d", "e"})
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "request 2 of 3 (inputs 2–3)") {
		t.Errorf("error = %v, want ErrRejected naming request 2 of 3 (inputs 2–3)", err)
	}
	if n := len(f.requests()); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

func TestNew(t *testing.T) {
	t.Setenv(EnvAPIKey, "")
	tests := []struct {
		name      string
		opts      Options
		wantModel string // "" means New must fail with ErrInvalidArgument
		wantDims  int
	}{
		{"default base needs a key", Options{}, "", 0},
		{"defaults with a key", Options{APIKey: "k"}, "openai:text-embedding-3-small:1536", 1536},
		{"shortened", Options{APIKey: "k", Dims: 512}, "openai:text-embedding-3-small:512", 512},
		{"large", Options{APIKey: "k", Model: "text-embedding-3-large"}, "openai:text-embedding-3-large:3072", 3072},
		{"ada", Options{APIKey: "k", Model: "text-embedding-ada-002"}, "openai:text-embedding-ada-002:1536", 1536},
		{"ada takes no dimensions", Options{APIKey: "k", Model: "text-embedding-ada-002", Dims: 512}, "", 0},
		{"too many dimensions", Options{APIKey: "k", Dims: 2000}, "", 0},
		{"local server without key", Options{BaseURL: "http://127.0.0.1:11434/v1/", Model: "nomic-embed-text", NativeDims: 768}, "openai:nomic-embed-text:768", 768},
		{"unknown model needs a length", Options{BaseURL: "http://127.0.0.1:11434/v1", Model: "nomic-embed-text"}, "", 0},
		{"unknown model with dims", Options{BaseURL: "http://vllm:8000/v1", Model: "BAAI/bge-m3", Dims: 256}, "openai:BAAI/bge-m3:256", 256},
		{"dims over native", Options{BaseURL: "http://vllm:8000/v1", Model: "m", Dims: 1024, NativeDims: 768}, "", 0},
		{"bad base URL", Options{BaseURL: "127.0.0.1:11434", APIKey: "k"}, "", 0},
		{"ftp base URL", Options{BaseURL: "ftp://host/v1", APIKey: "k"}, "", 0},
		{"negative dims", Options{APIKey: "k", Dims: -1}, "", 0},
		{"negative max inputs", Options{APIKey: "k", MaxInputs: -1}, "", 0},
		{"negative timeout", Options{APIKey: "k", Timeout: -time.Second}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(tt.opts)
			if tt.wantModel == "" {
				if !errors.Is(err, tally.ErrInvalidArgument) {
					t.Errorf("New(%+v) error = %v, want ErrInvalidArgument", tt.opts, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Model() != tt.wantModel || e.Dims() != tt.wantDims {
				t.Errorf("Model %q Dims %d, want %q %d", e.Model(), e.Dims(), tt.wantModel, tt.wantDims)
			}
		})
	}

	t.Run("key from the environment", func(t *testing.T) {
		t.Setenv(EnvAPIKey, "sk-env")
		e, err := New(Options{})
		if err != nil {
			t.Fatal(err)
		}
		if e.apiKey != "sk-env" {
			t.Errorf("api key %q, want the environment's", e.apiKey)
		}
	})
}

func TestFromURL(t *testing.T) {
	t.Setenv(EnvAPIKey, "sk-env")
	tests := []struct {
		raw       string
		wantModel string // "" means ErrInvalidArgument
		check     func(e *Embedder) string
	}{
		{raw: "openai://", wantModel: "openai:text-embedding-3-small:1536"},
		{raw: "openai://text-embedding-3-small?dims=512", wantModel: "openai:text-embedding-3-small:512",
			check: func(e *Embedder) string {
				return fmt.Sprint(e.endpoint == DefaultBaseURL+"/embeddings" && e.sendDims == 512)
			}},
		{raw: "openai://text-embedding-3-small?dims=512&base=http://127.0.0.1:11434/v1", wantModel: "openai:text-embedding-3-small:512",
			check: func(e *Embedder) string { return fmt.Sprint(e.endpoint == "http://127.0.0.1:11434/v1/embeddings") }},
		{raw: "openai://nomic-embed-text:latest?native_dims=768&base=http%3A%2F%2F127.0.0.1%3A11434%2Fv1", wantModel: "openai:nomic-embed-text:latest:768",
			check: func(e *Embedder) string {
				return fmt.Sprint(e.endpoint == "http://127.0.0.1:11434/v1/embeddings" && e.sendDims == 0)
			}},
		{raw: "openai://BAAI/bge-m3?native_dims=1024&base=http://vllm:8000/v1", wantModel: "openai:BAAI/bge-m3:1024"},
		{raw: "openai://text-embedding-3-large?max_inputs=100&max_tokens=5000&max_retries=0&timeout=5s", wantModel: "openai:text-embedding-3-large:3072",
			check: func(e *Embedder) string {
				return fmt.Sprint(e.maxInputs == 100 && e.maxTokens == 5000 && e.maxRetries == 0 && e.timeout == 5*time.Second)
			}},
		{raw: "openai://text-embedding-3-small?max_retries=2", wantModel: "openai:text-embedding-3-small:1536",
			check: func(e *Embedder) string { return fmt.Sprint(e.maxRetries == 2) }},
		{raw: "openai://text-embedding-3-small?dim=512"},                   // unknown key
		{raw: "openai://text-embedding-3-small?key=sk-x"},                  // keys stay out of URLs
		{raw: "openai://text-embedding-3-small?dims=abc"},                  // not a number
		{raw: "openai://text-embedding-3-small?dims=-5"},                   // negative
		{raw: "openai://text-embedding-3-small?dims=512&dims=256"},         // repeated
		{raw: "openai://text-embedding-3-small?timeout=soon"},              // not a duration
		{raw: "openai://text-embedding-3-small?base=localhost:11434"},      // no scheme
		{raw: "openai://llama?base=http://h/v1"},                           // unknown model, no length
		{raw: "hashed://512"},                                              // wrong scheme
		{raw: "openai:/text-embedding-3-small"},                            // malformed
		{raw: "openai://text-embedding-3-small?dims=512&base=%zz"},         // bad escape
		{raw: "openai://text-embedding-3-small%zz"},                        // bad escape in model
		{raw: "openai://text-embedding-3-small?dims=99999999999999999999"}, // overflow
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			e, err := FromURL(tt.raw)
			if tt.wantModel == "" {
				if !errors.Is(err, tally.ErrInvalidArgument) {
					t.Errorf("FromURL(%q) error = %v, want ErrInvalidArgument", tt.raw, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Model() != tt.wantModel {
				t.Errorf("Model() = %q, want %q", e.Model(), tt.wantModel)
			}
			if tt.check != nil && tt.check(e) != "true" {
				t.Errorf("%+v does not hold the URL's settings", e)
			}
		})
	}
}

// hangUp drops the connection without an HTTP response, as a crashed proxy
// or a reset would.
func hangUp(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot hijack: "+err.Error(), http.StatusTeapot) // fails the test as a rejection
		return
	}
	_ = conn.Close()
}

// repeat is a script answering the first n requests with h.
func repeat(n int, h http.HandlerFunc) map[int]http.HandlerFunc {
	m := make(map[int]http.HandlerFunc, n)
	for i := range n {
		m[i] = h
	}
	return m
}

func BenchmarkEmbed(b *testing.B) {
	f := newFake(b, nil)
	e, err := New(Options{BaseURL: f.baseURL(), APIKey: "k"})
	if err != nil {
		b.Fatal(err)
	}
	texts := make([]string, 2048)
	for i := range texts {
		texts[i] = fmt.Sprintf("<EDGE> ORGANIC BANANAS %d.%02d LB <EDGE>", i, i%100)
	}
	for b.Loop() {
		if _, err := e.Embed(context.Background(), texts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(texts))/b.Elapsed().Seconds(), "texts/s")
}

// BenchmarkDecodeVectors is the client's share of a full-size response:
// 2048 vectors of 1536 dimensions as JSON text.
func BenchmarkDecodeVectors(b *testing.B) {
	texts := make([]string, DefaultMaxInputs)
	for i := range texts {
		texts[i] = fmt.Sprintf("<EDGE> ORGANIC BANANAS %d.%02d LB <EDGE>", i, i%100)
	}
	rec := httptest.NewRecorder()
	writeVectors(rec, embeddingRequest{Model: DefaultModel, Input: texts})
	body := rec.Body.Bytes()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := decodeVectors(body, len(texts), 1536); err != nil {
			b.Fatal(err)
		}
	}
}
