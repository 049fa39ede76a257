// Package importertest runs Tally's real upload API (package upload on
// embedded SQLite items and queue and a file blob store) behind an
// httptest server, for the tests of the importer and the watched folder,
// which cannot start the whole `tally serve`. No OCR runs behind it, so
// images stay PENDING.
package importertest

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	blobfile "github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/ocrstage"
	"github.com/tallyhq/tally/pipeline"
	queuesqlite "github.com/tallyhq/tally/queue/sqlite"
	"github.com/tallyhq/tally/upload"
)

// Server is a running upload API.
type Server struct {
	*httptest.Server
	uploads atomic.Int64
}

// Uploads counts the POST /receipts requests answered, so a test can see
// that a duplicate was never sent.
func (s *Server) Uploads() int { return int(s.uploads.Load()) }

// Start runs the upload API on fresh stores in a temporary directory; it
// stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	tbl, err := itemssqlite.Open(ctx, filepath.Join(dir, "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	broker, err := queuesqlite.Open(ctx, filepath.Join(dir, "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	qs, err := pipeline.EnsureQueues(ctx, broker)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s := &Server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if r.Method == http.MethodPost && r.URL.Path == "/receipts" {
			s.uploads.Add(1)
		}
	}))
	t.Cleanup(s.Close)
	bs, err := blobfile.Open(filepath.Join(dir, "blobs"), blobfile.Options{BaseURL: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/blob/", bs.Handler())
	svc, err := upload.New(upload.Config{Store: ocrstage.Store{Items: tbl, Blob: bs, Bucket: "local", Results: qs.OCRResults},
		Jobs: qs.OCRJobs, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	svc.Register(mux)
	return s
}

// WriteFiles creates each file (nil data: an empty file), with its
// directories: the folders the import and watch tests feed.
func WriteFiles(t testing.TB, files map[string][]byte) {
	t.Helper()
	for p, data := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
