package pipeline_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/blob"
	blobfile "github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/embed/hashed"
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/lease"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/vector"
)

// heldBlob holds back reads of the keys in held until release is closed.
type heldBlob struct {
	blob.Store
	release chan struct{}
	held    map[string]bool
}

func (h *heldBlob) Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error) {
	if h.held[key] {
		select {
		case <-h.release:
		case <-ctx.Done():
			return nil, blob.Info{}, ctx.Err()
		}
	}
	return h.Store.Get(ctx, key)
}

// TestProgressiveSearchSaysPartial: a searcher opening progressively
// answers from the newest segment while an older one is still arriving,
// says so, and answers from everything once it is in.
func TestProgressiveSearchSaysPartial(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	tbl, err := itemssqlite.Open(ctx, filepath.Join(dir, "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	bs, err := blobfile.Open(filepath.Join(dir, "blobs"), blobfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	emb, _ := hashed.New(256)
	store, err := vector.New(vector.Options{Blob: bs, Items: tbl, Dims: 256})
	if err != nil {
		t.Fatal(err)
	}
	compactorCache, err := vector.OpenCache(ctx, bs, vector.CacheOptions{Dir: filepath.Join(dir, "compactor")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(compactorCache.Close)
	// Two segments: the old one holds "coffee beans", the new one "oat milk".
	for i, text := range []string{"coffee beans", "oat milk"} {
		vs, err := emb.Embed(ctx, []string{text})
		if err != nil {
			t.Fatal(err)
		}
		id := "IMAGE#i" + string(rune('0'+i)) + "#LINE#00001"
		if _, err := store.WriteDelta(ctx, vector.CollectionLines, fmt.Sprintf("run-%d", i), []vector.Record{{ID: id, Vector: vs[0], Meta: map[string]any{"text": text}}}, nil); err != nil {
			t.Fatal(err)
		}
		l, err := lease.Acquire(ctx, tbl, vector.CollectionLines+"#compaction", "test", time.Minute, lease.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Compact(ctx, vector.CollectionLines, l, compactorCache, vector.CompactOptions{}); err != nil {
			t.Fatal(err)
		}
		l.Release(ctx)
	}
	m, err := store.Manifest(ctx, vector.CollectionLines)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Segments) != 2 {
		t.Fatalf("%d segments, want 2", len(m.Segments))
	}
	held := &heldBlob{Store: bs, release: make(chan struct{}), held: map[string]bool{}}
	held.held[m.Segments[0].Key] = true
	cache, err := vector.OpenCache(ctx, held, vector.CacheOptions{Dir: filepath.Join(dir, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	s, err := pipeline.NewSearcher(store, cache, emb, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.ProgressiveOpen(1)

	resp, err := s.Search(ctx, "oat milk", vector.CollectionLines, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Partial || len(resp.Results) != 1 || resp.Results[0].Text != "oat milk" {
		t.Fatalf("while the old segment is held back: %+v; want a partial answer from the new one", resp)
	}
	close(held.release)
	waitfor.True(t, "the old segment to load", func() bool {
		resp, err = s.Search(ctx, "coffee beans", vector.CollectionLines, 2, nil)
		return err == nil && !resp.Partial
	})
	if len(resp.Results) != 2 || !strings.Contains(resp.Results[0].Text, "coffee") {
		t.Fatalf("once loaded: %+v; want both records, the coffee first", resp)
	}
}
