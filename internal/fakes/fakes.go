// Package fakes runs local HTTP servers that speak the real request and
// response formats of the external APIs Tally calls (OpenAI embeddings,
// Google Places), for tests and benchmarks on a machine without internet.
// Vectors come from the offline hashed embedder, so they are deterministic
// and lexical; places come from a table the test gives.
package fakes

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tallyhq/tally/embed/hashed"
)

// OpenAI is a fake /v1/embeddings server.
type OpenAI struct {
	URL      string // base URL, ending in /v1
	requests atomic.Int64
	inputs   atomic.Int64
}

// Requests is how many embedding requests the server answered.
func (o *OpenAI) Requests() int64 { return o.requests.Load() }

// Inputs is how many texts it embedded.
func (o *OpenAI) Inputs() int64 { return o.inputs.Load() }

// NewOpenAI starts a fake embeddings server for the life of tb.
func NewOpenAI(tb testing.TB) *OpenAI {
	tb.Helper()
	o := &OpenAI{}
	var mu sync.Mutex
	embedders := map[int]*hashed.Embedder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/embeddings" {
			http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
			return
		}
		var req struct {
			Model      string   `json:"model"`
			Input      []string `json:"input"`
			Dimensions int      `json:"dimensions"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Input) == 0 {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": "bad request", "type": "invalid_request_error"}})
			return
		}
		dims := req.Dimensions
		if dims == 0 {
			dims = 1536
		}
		mu.Lock()
		e, ok := embedders[dims]
		if !ok {
			var err error
			if e, err = hashed.New(dims); err != nil {
				mu.Unlock()
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			embedders[dims] = e
		}
		mu.Unlock()
		vecs, err := e.Embed(r.Context(), req.Input)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": err.Error(), "type": "invalid_request_error"}})
			return
		}
		o.requests.Add(1)
		o.inputs.Add(int64(len(req.Input)))
		data := make([]map[string]any, len(vecs))
		tokens := 0
		for i, v := range vecs {
			data[i] = map[string]any{"object": "embedding", "index": i, "embedding": v}
			tokens += len(req.Input[i])/4 + 1
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data, "model": req.Model,
			"usage": map[string]any{"prompt_tokens": tokens, "total_tokens": tokens}})
	}))
	tb.Cleanup(srv.Close)
	o.URL = srv.URL + "/v1"
	return o
}

// Place is one place the fake Places server knows.
type Place struct {
	ID, Name, Address, Phone /* E.164 */, Website string
	Types                                         []string
	Lat, Lng                                      float64
}

// Places is a fake Google Places server: legacy Find Place from Text (by
// phone number), Text Search (New) matching every word of the query's
// first three against name+address, and Place Details (New).
type Places struct {
	URL      string // serves both the new and the legacy hosts' paths
	places   []Place
	requests atomic.Int64
	// Phones records every phone number looked up.
	mu     sync.Mutex
	phones []string
}

// Requests is how many requests the server answered.
func (p *Places) Requests() int64 { return p.requests.Load() }

// Phones returns the phone numbers looked up so far.
func (p *Places) Phones() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string{}, p.phones...)
}

// NewPlaces starts a fake Places server knowing places.
func NewPlaces(tb testing.TB, places []Place) *Places {
	tb.Helper()
	p := &Places{places: places}
	newPlace := func(pl Place) map[string]any {
		return map[string]any{"id": pl.ID, "displayName": map[string]any{"text": pl.Name, "languageCode": "en"},
			"formattedAddress": pl.Address, "types": pl.Types, "internationalPhoneNumber": intl(pl.Phone),
			"nationalPhoneNumber": pl.Phone, "websiteUri": pl.Website, "location": map[string]any{"latitude": pl.Lat, "longitude": pl.Lng}}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /maps/api/place/findplacefromtext/json", func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		q := r.URL.Query()
		if q.Get("key") == "" {
			json.NewEncoder(w).Encode(map[string]any{"candidates": []any{}, "status": "REQUEST_DENIED", "error_message": "The provided API key is invalid."})
			return
		}
		var cands []any
		if q.Get("inputtype") == "phonenumber" {
			p.mu.Lock()
			p.phones = append(p.phones, q.Get("input"))
			p.mu.Unlock()
		}
		for _, pl := range p.places {
			if (q.Get("inputtype") == "phonenumber" && pl.Phone == q.Get("input")) ||
				(q.Get("inputtype") == "textquery" && matches(q.Get("input"), pl)) {
				cands = append(cands, map[string]any{"place_id": pl.ID, "name": pl.Name, "formatted_address": pl.Address,
					"types": pl.Types, "geometry": map[string]any{"location": map[string]any{"lat": pl.Lat, "lng": pl.Lng}}})
			}
		}
		status := "OK"
		if len(cands) == 0 {
			status, cands = "ZERO_RESULTS", []any{}
		}
		json.NewEncoder(w).Encode(map[string]any{"candidates": cands, "status": status})
	})
	mux.HandleFunc("POST /v1/places:searchText", func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		if r.Header.Get("X-Goog-Api-Key") == "" {
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": 403, "message": "API key missing", "status": "PERMISSION_DENIED"}})
			return
		}
		var req struct {
			TextQuery string `json:"textQuery"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		var out []any
		for _, pl := range p.places {
			if matches(req.TextQuery, pl) {
				out = append(out, newPlace(pl))
			}
		}
		res := map[string]any{}
		if len(out) > 0 {
			res["places"] = out
		}
		json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("GET /v1/places/{id}", func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		for _, pl := range p.places {
			if pl.ID == r.PathValue("id") {
				json.NewEncoder(w).Encode(newPlace(pl))
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": 404, "message": "not found", "status": "NOT_FOUND"}})
	})
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// matches: every one of the query's first three words (letters and
// digits) appears in the place's name or address.
func matches(query string, pl Place) bool {
	hay := strings.ToUpper(pl.Name + " " + pl.Address)
	words := strings.FieldsFunc(strings.ToUpper(query), func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
	if len(words) == 0 {
		return false
	}
	if len(words) > 3 {
		words = words[:3]
	}
	for _, w := range words {
		if !strings.Contains(hay, w) {
			return false
		}
	}
	return true
}

// intl formats +1NXXNXXXXXX as "+1 NXX-NXX-XXXX", as Places does.
func intl(e164 string) string {
	if len(e164) != 12 || !strings.HasPrefix(e164, "+1") {
		return e164
	}
	return "+1 " + e164[2:5] + "-" + e164[5:8] + "-" + e164[8:]
}
