package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/embed"
	"github.com/tallyhq/tally/vector"
)

// Searcher answers text searches: it embeds the query with the same
// embedder the pipeline used for the records and searches a collection's
// latest snapshot plus its not-yet-compacted deltas.
type Searcher struct {
	store    *vector.Store
	cache    *vector.Cache
	embedder embed.Embedder
	// MaxStaleness is how old a reader's view may be before a search
	// refreshes it (a refresh reads one item and the pending-delta list).
	maxStale time.Duration
	// firstBytes, when positive, opens readers progressively (see
	// ProgressiveOpen).
	firstBytes int64

	mu      sync.Mutex
	readers map[string]*cachedReader
}

type cachedReader struct {
	mu        sync.Mutex
	r         *vector.Reader
	refreshed time.Time
}

// NewSearcher returns a Searcher; maxStale ≤ 0 refreshes before every search.
func NewSearcher(store *vector.Store, cache *vector.Cache, e embed.Embedder, maxStale time.Duration) (*Searcher, error) {
	if e.Dims() != store.Dims() {
		return nil, fmt.Errorf("embedder %s makes %d-dimensional vectors but the vector store holds %d: %w",
			e.Model(), e.Dims(), store.Dims(), tally.ErrInvalidArgument)
	}
	return &Searcher{store: store, cache: cache, embedder: e, maxStale: maxStale, readers: map[string]*cachedReader{}}, nil
}

// ProgressiveOpen makes a cold reader answer once the pending deltas and
// the newest segments up to firstBytes are local, while the rest arrives
// (vector.ReaderOptions.FirstBytes): a Lambda's first search after a cold
// start then costs one segment's download, not the collection's. Until
// the rest is in, responses say Partial. Call it before the first search;
// 0 (the default) loads everything first.
func (s *Searcher) ProgressiveOpen(firstBytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.firstBytes = max(0, firstBytes)
}

// Result is one search hit, with the record's text when it has one.
type Result struct {
	ID    string         `json:"id"`
	Score float32        `json:"score"`
	Text  string         `json:"text,omitempty"`
	Meta  map[string]any `json:"metadata,omitempty"`
}

// SearchResponse is a search's answer and the state it was answered from.
type SearchResponse struct {
	Collection    string   `json:"collection"`
	Version       int64    `json:"version"`
	PendingDeltas int      `json:"pending_deltas"`
	Results       []Result `json:"results"`
	Problems      []string `json:"problems,omitempty"`
	// Partial says the answer came from the newest segments only: the
	// reader is still loading the older ones (ProgressiveOpen).
	Partial bool `json:"partial,omitempty"`
}

// Search embeds text and returns the k nearest records passing filters.
func (s *Searcher) Search(ctx context.Context, text, coll string, k int, filters []vector.Filter) (SearchResponse, error) {
	if strings.TrimSpace(text) == "" {
		return SearchResponse{}, fmt.Errorf("search: empty query: %w", tally.ErrInvalidArgument)
	}
	r, err := s.reader(ctx, coll)
	if err != nil {
		return SearchResponse{}, err
	}
	vs, err := s.embedder.Embed(ctx, []string{text})
	if err != nil {
		return SearchResponse{}, fmt.Errorf("search: embed query: %w", err)
	}
	hits, err := r.Search(ctx, vs[0], vector.SearchOptions{K: k, Filters: filters})
	if err != nil {
		return SearchResponse{}, err
	}
	resp := SearchResponse{Collection: coll, Version: r.Version(), PendingDeltas: r.PendingDeltas(), Problems: r.Problems(), Partial: r.Partial(), Results: []Result{}}
	for _, h := range hits {
		t, _ := h.Meta["text"].(string)
		resp.Results = append(resp.Results, Result{ID: h.ID, Score: h.Score, Text: t, Meta: h.Meta})
	}
	return resp, nil
}

func (s *Searcher) reader(ctx context.Context, coll string) (*vector.Reader, error) {
	if err := vector.ValidateCollection(coll); err != nil {
		return nil, err
	}
	s.mu.Lock()
	cr, ok := s.readers[coll]
	if !ok {
		cr = &cachedReader{}
		s.readers[coll] = cr
	}
	first := s.firstBytes
	s.mu.Unlock()
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.r == nil {
		r, err := s.store.OpenReaderWith(ctx, coll, s.cache, vector.ReaderOptions{FirstBytes: first})
		if err != nil {
			return nil, err
		}
		cr.r, cr.refreshed = r, time.Now()
		return r, nil
	}
	if time.Since(cr.refreshed) >= s.maxStale {
		// On failure keep serving the last good view.
		if err := cr.r.Refresh(ctx); err == nil {
			cr.refreshed = time.Now()
		}
	}
	return cr.r, nil
}

// ParseFilter reads a filter written as "field=value", "field!=value",
// "field=a|b" (any of) or "field!=a|b" (none of). Values that read as
// numbers or booleans match either that or the literal string.
func ParseFilter(s string) (vector.Filter, error) {
	op, field, raw := vector.OpIn, "", ""
	if i := strings.Index(s, "!="); i >= 0 {
		op, field, raw = vector.OpNin, s[:i], s[i+2:]
	} else if i := strings.Index(s, "="); i > 0 {
		field, raw = s[:i], s[i+1:]
	} else {
		return vector.Filter{}, fmt.Errorf("filter %q: want field=value or field!=value: %w", s, tally.ErrInvalidArgument)
	}
	field = strings.TrimSpace(field)
	if field == "" || raw == "" {
		return vector.Filter{}, fmt.Errorf("filter %q: empty field or value: %w", s, tally.ErrInvalidArgument)
	}
	var values []any
	for _, v := range strings.Split(raw, "|") {
		values = append(values, v)
		if b, err := strconv.ParseBool(v); err == nil {
			values = append(values, b)
		} else if f, err := strconv.ParseFloat(v, 64); err == nil {
			values = append(values, f)
		}
	}
	return vector.Filter{Field: field, Op: op, Values: values}, nil
}
