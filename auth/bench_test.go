package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
)

// BenchmarkPasswordCheck is one login's hashing: argon2id at the stored
// cost (19 MiB, 2 passes, 1 lane).
func BenchmarkPasswordCheck(b *testing.B) {
	h, err := defaultParams.hash("correct horse battery")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !defaultParams.compare(h, "correct horse battery") {
			b.Fatal("no match")
		}
	}
}

// BenchmarkGuardedRequest is what accounts add to every API request: the
// token's lookup in the embedded item store.
func BenchmarkGuardedRequest(b *testing.B) {
	ctx := context.Background()
	tbl, err := itemssqlite.Open(ctx, filepath.Join(b.TempDir(), "items.db"), items.DefaultIndexes)
	if err != nil {
		b.Fatal(err)
	}
	defer tbl.Close()
	svc := New(tbl, Options{FastHashForTests: true})
	if err := svc.AddUser(ctx, "alice", "correct horse battery"); err != nil {
		b.Fatal(err)
	}
	tok, err := svc.CreateToken(ctx, "alice", "bench", ScopeRead)
	if err != nil {
		b.Fatal(err)
	}
	m := NewMux(NewGuard(svc, GuardOptions{}))
	m.HandleFunc("GET /x", func(w http.ResponseWriter, r *http.Request) {})
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
