package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/embed/hashed"
)

// fakeOpenAI is a local server speaking the OpenAI embeddings API. Its
// vectors come from the hashed embedder (so they are deterministic and
// lexical), scaled off unit length and listed in reverse order, so the
// client must normalize and reassemble by index. script[n], when set,
// answers request n instead.
type fakeOpenAI struct {
	*httptest.Server
	script map[int]http.HandlerFunc

	mu   sync.Mutex
	seen []seenRequest
}

// seenRequest is what the fake server recorded about one request.
type seenRequest struct {
	auth        string
	contentType string
	raw         map[string]json.RawMessage
	body        embeddingRequest
}

// Wire types of the real API, spelled out here so the tests check the
// client against the documented format rather than against itself.
type (
	wireEmbedding struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	wireUsage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	}
	wireList struct {
		Object string          `json:"object"`
		Data   []wireEmbedding `json:"data"`
		Model  string          `json:"model"`
		Usage  wireUsage       `json:"usage"`
	}
	wireError struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}
)

func newFake(t testing.TB, script map[int]http.HandlerFunc) *fakeOpenAI {
	t.Helper()
	f := &fakeOpenAI{script: script}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeOpenAI) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/embeddings" {
		writeError(w, http.StatusNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")", "invalid_request_error", "")
		return
	}
	var seen seenRequest
	seen.auth = r.Header.Get("Authorization")
	seen.contentType = r.Header.Get("Content-Type")
	body, err := io.ReadAll(r.Body)
	if err != nil || json.Unmarshal(body, &seen.raw) != nil {
		writeError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.", "invalid_request_error", "")
		return
	}
	strict := json.NewDecoder(bytes.NewReader(body))
	strict.DisallowUnknownFields()
	if err := strict.Decode(&seen.body); err != nil {
		writeError(w, http.StatusBadRequest, "Unrecognized request argument: "+err.Error(), "invalid_request_error", "")
		return
	}
	f.mu.Lock()
	n := len(f.seen)
	f.seen = append(f.seen, seen)
	f.mu.Unlock()

	if h := f.script[n]; h != nil {
		h(w, r)
		return
	}
	writeVectors(w, seen.body)
}

func (f *fakeOpenAI) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

func (f *fakeOpenAI) baseURL() string { return f.URL + "/v1" }

// fakeDims is the vector length the fake server gives a request.
func fakeDims(req embeddingRequest) int {
	if req.Dimensions > 0 {
		return req.Dimensions
	}
	return 1536
}

// fakeVectors embeds texts as the fake server does, before the off-unit
// scaling: what the client must return.
func fakeVectors(dims int, texts []string) ([][]float32, error) {
	h, err := hashed.New(dims)
	if err != nil {
		return nil, err
	}
	return h.Embed(context.Background(), texts)
}

func writeVectors(w http.ResponseWriter, req embeddingRequest) {
	if len(req.Input) == 0 || len(req.Input) > DefaultMaxInputs {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("'$.input' has %d items", len(req.Input)), "invalid_request_error", "")
		return
	}
	vecs, err := fakeVectors(fakeDims(req), req.Input)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "invalid_request_error", "")
		return
	}
	resp := wireList{Object: "list", Model: req.Model}
	for i := len(vecs) - 1; i >= 0; i-- {
		scaled := make([]float32, len(vecs[i]))
		for j, x := range vecs[i] {
			scaled[j] = 2.5 * x
		}
		resp.Data = append(resp.Data, wireEmbedding{Object: "embedding", Index: i, Embedding: scaled})
		resp.Usage.PromptTokens += EstimateTokens(req.Input[i])
	}
	resp.Usage.TotalTokens = resp.Usage.PromptTokens
	writeJSON(w, http.StatusOK, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, message, typ, code string) {
	e := wireError{Message: message, Type: typ}
	if code != "" {
		e.Code = &code
	}
	writeJSON(w, status, map[string]wireError{"error": e})
}

// respond returns a script step answering with status, headers and an
// OpenAI error body.
func respond(status int, headers map[string]string, message string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		writeError(w, status, message, "server_error", "")
	}
}

// rawBody returns a script step answering 200 with body as is.
func rawBody(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}
}

// sleepRecorder replaces real waiting between retries.
type sleepRecorder struct {
	mu     sync.Mutex
	waited []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waited = append(s.waited, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) durations() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waited...)
}

// newTestEmbedder points an Embedder at f with recorded sleeps and a fixed
// jitter of 0.5 (so backoff waits are exactly half their ceiling).
func newTestEmbedder(t *testing.T, f *fakeOpenAI, opts Options) (*Embedder, *sleepRecorder) {
	t.Helper()
	rec := &sleepRecorder{}
	opts.BaseURL = f.baseURL()
	if opts.APIKey == "" {
		opts.APIKey = "sk-test"
	}
	if opts.Sleep == nil {
		opts.Sleep = rec.sleep
	}
	if opts.Rand == nil {
		opts.Rand = func() float64 { return 0.5 }
	}
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e, rec
}
