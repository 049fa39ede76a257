package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/embed"
	"github.com/tallyhq/tally/embed/embedtest"
	"github.com/tallyhq/tally/embed/hashed"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/items/sqlite"
)

func TestConformance(t *testing.T) {
	embedtest.Run(t, func(t *testing.T) embed.Embedder {
		return newCache(t, newCounting(t, 64), openTable(t), Options{})
	}, embedtest.Capabilities{Deterministic: true, Lexical: true})
}

// TestConformanceShared runs the suite against one cache shared by every
// subtest, in parallel, so most answers come from the table.
func TestConformanceShared(t *testing.T) {
	shared := newCache(t, newCounting(t, 64), openTable(t), Options{})
	embedtest.Run(t, func(t *testing.T) embed.Embedder { return shared }, embedtest.Capabilities{Deterministic: true, Lexical: true})
}

func TestRepeatIsAHit(t *testing.T) {
	t.Parallel()
	inner := newCounting(t, 128)
	c := newCache(t, inner, openTable(t), Options{})
	texts := []string{"WALMART SUPERCENTER", "TOTAL 12.50", "收据 été"}
	first := mustEmbed(t, c, texts)
	second := mustEmbed(t, c, texts)
	if got := inner.callCount(); got != 1 {
		t.Fatalf("inner called %d times for a repeated call, want 1", got)
	}
	for i := range texts {
		if !slices.Equal(first[i], second[i]) {
			t.Errorf("text %d: cached vector differs from the embedded one", i)
		}
	}
	if hits, misses := c.Stats(); hits != 3 || misses != 3 {
		t.Errorf("Stats() = %d hits, %d misses; want 3, 3", hits, misses)
	}
}

func TestDuplicatesInOneCallEmbeddedOnce(t *testing.T) {
	t.Parallel()
	inner := newCounting(t, 64)
	c := newCache(t, inner, openTable(t), Options{})
	vs := mustEmbed(t, c, []string{"A1", "B2", "A1", "A1", "B2"})
	calls := inner.callTexts()
	if len(calls) != 1 || !slices.Equal(calls[0], []string{"A1", "B2"}) {
		t.Fatalf("inner calls = %q, want one call with [A1 B2]", calls)
	}
	for _, pair := range [][2]int{{0, 2}, {0, 3}, {1, 4}} {
		if !slices.Equal(vs[pair[0]], vs[pair[1]]) {
			t.Errorf("vectors %d and %d of the same text differ", pair[0], pair[1])
		}
	}
	vs[2][0] = 42 // a caller changing one copy must not change the others
	if vs[0][0] == 42 || vs[3][0] == 42 {
		t.Error("vectors of a repeated text share memory")
	}
}

func TestMixedHitsAndMissesKeepOrder(t *testing.T) {
	t.Parallel()
	inner := newCounting(t, 64)
	c := newCache(t, inner, openTable(t), Options{})
	mustEmbed(t, c, []string{"ALPHA", "GAMMA"})
	texts := []string{"ALPHA", "BETA", "GAMMA", "DELTA", "ALPHA"}
	got := mustEmbed(t, c, texts)
	calls := inner.callTexts()
	if len(calls) != 2 || !slices.Equal(calls[1], []string{"BETA", "DELTA"}) {
		t.Fatalf("inner calls = %q, want the second to hold only [BETA DELTA]", calls)
	}
	want := mustEmbed(t, inner.Embedder, texts)
	for i := range texts {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("vector %d (%s) is not the inner embedder's", i, texts[i])
		}
	}
}

func TestModelsNeverShareEntries(t *testing.T) {
	t.Parallel()
	tbl := openTable(t)
	small, large := newCounting(t, 64), newCounting(t, 128)
	cs, cl := newCache(t, small, tbl, Options{}), newCache(t, large, tbl, Options{})
	text := []string{"GRAND TOTAL 41.07"}
	mustEmbed(t, cs, text)
	vl := mustEmbed(t, cl, text)
	if large.callCount() != 1 {
		t.Fatalf("the 128-dim cache called its embedder %d times, want 1 (no entry of the 64-dim model may serve it)", large.callCount())
	}
	if len(vl[0]) != 128 {
		t.Fatalf("128-dim cache returned %d dims", len(vl[0]))
	}
	for _, e := range []*counting{small, large} {
		page, err := tbl.Query(context.Background(), items.Query{PK: "EMBEDDING#" + e.Model()})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 1 {
			t.Errorf("partition of %s holds %d entries, want 1", e.Model(), len(page.Items))
		}
	}
}

func TestTableFailureFallsBackToInner(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name             string
		failGet, failPut bool
	}{
		{"read fails", true, false},
		{"write fails", false, true},
		{"both fail", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inner := newCounting(t, 64)
			var logs syncBuffer
			tbl := &failingTable{Table: openTable(t), failGet: tc.failGet, failPut: tc.failPut}
			c := newCache(t, inner, tbl, Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
			texts := []string{"MILK 2% GAL 3.49", "EGGS 2.99"}
			for range 2 {
				got := mustEmbed(t, c, texts)
				want := mustEmbed(t, inner.Embedder, texts)
				for i := range texts {
					if !slices.Equal(got[i], want[i]) {
						t.Errorf("vector %d is not the inner embedder's", i)
					}
				}
			}
			if got := inner.callCount(); got != 2 {
				t.Errorf("inner called %d times, want 2 (the cache cannot help)", got)
			}
			if !strings.Contains(logs.String(), "embedding cache") {
				t.Errorf("the cache failure was not logged; log: %q", logs.String())
			}
		})
	}
}

func TestCorruptEntryIsAMissAndOverwritten(t *testing.T) {
	t.Parallel()
	valid := encodeVector(make([]float32, 64))
	for _, tc := range []struct {
		name    string
		corrupt items.Item
	}{
		{"not base64", items.Item{attrDims: 64, attrVector: "!!not base64!!"}},
		{"short vector", items.Item{attrDims: 64, attrVector: encodeVector([]float32{1, 0, 0})}},
		{"wrong dims", items.Item{attrDims: 32, attrVector: valid}},
		{"missing dims", items.Item{attrVector: valid}},
		{"vector is a list", items.Item{attrDims: 64, attrVector: []any{1.0, 2.0}}},
		{"NaN component", items.Item{attrDims: 64, attrVector: encodeVector(append([]float32{float32(math.NaN())}, make([]float32, 63)...))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			tbl := openTable(t)
			inner := newCounting(t, 64)
			c := newCache(t, inner, tbl, Options{})
			text := []string{"KROGER #123"}
			want := mustEmbed(t, c, text)

			key := c.key(text[0])
			bad := items.Item{items.AttrPK: key.PK, items.AttrSK: key.SK, items.AttrType: ItemType}
			for k, v := range tc.corrupt {
				bad[k] = v
			}
			if err := tbl.Put(ctx, bad, items.Cond{}); err != nil {
				t.Fatal(err)
			}

			got := mustEmbed(t, c, text)
			if inner.callCount() != 2 {
				t.Fatalf("inner called %d times, want 2 (the corrupt entry is a miss)", inner.callCount())
			}
			if !slices.Equal(got[0], want[0]) {
				t.Error("vector after a corrupt entry is not the inner embedder's")
			}
			mustEmbed(t, c, text)
			if inner.callCount() != 2 {
				t.Errorf("inner called %d times, want still 2 (the entry was rewritten)", inner.callCount())
			}
		})
	}
}

func TestEntryAttributes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ttl  time.Duration
		want time.Duration
	}{
		{"default", 0, DefaultTTL},
		{"one hour", time.Hour, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tbl := openTable(t)
			inner := newCounting(t, 64)
			c := newCache(t, inner, tbl, Options{TTL: tc.ttl})
			before := time.Now()
			mustEmbed(t, c, []string{"STORE HOURS 7-11"})
			after := time.Now()
			it, err := tbl.Get(context.Background(), c.key("STORE HOURS 7-11"))
			if err != nil {
				t.Fatal(err)
			}
			exp, ok := it[items.AttrTTL].(int64)
			if !ok {
				t.Fatalf("%s = %#v, want epoch seconds", items.AttrTTL, it[items.AttrTTL])
			}
			if lo, hi := before.Add(tc.want).Unix(), after.Add(tc.want).Unix(); exp < lo || exp > hi {
				t.Errorf("%s = %d, want within [%d, %d]", items.AttrTTL, exp, lo, hi)
			}
			if it[items.AttrType] != ItemType || it[attrDims] != int64(64) {
				t.Errorf("entry TYPE = %v, dims = %v; want %s, 64", it[items.AttrType], it[attrDims], ItemType)
			}
			if want := "EMBEDDING#" + inner.Model(); it.Key().PK != want || !strings.HasPrefix(it.Key().SK, "TEXT#") || len(it.Key().SK) != len("TEXT#")+64 {
				t.Errorf("entry key = %+v, want PK %s and SK TEXT#<sha256 hex>", it.Key(), want)
			}
		})
	}
}

// TestManyTexts crosses the BatchGet limit: every read asks for at most
// items.MaxBatchGet keys, and the second pass is all hits.
func TestManyTexts(t *testing.T) {
	t.Parallel()
	tbl := &failingTable{Table: openTable(t)}
	inner := newCounting(t, 64)
	c := newCache(t, inner, tbl, Options{})
	texts := make([]string, 250)
	for i := range texts {
		texts[i] = fmt.Sprintf("ITEM %d PRICE %d.%02d", i, i%10, i%97)
	}
	first := mustEmbed(t, c, texts)
	second := mustEmbed(t, c, texts)
	if inner.callCount() != 1 {
		t.Errorf("inner called %d times, want 1", inner.callCount())
	}
	for i := range texts {
		if !slices.Equal(first[i], second[i]) {
			t.Fatalf("text %d: cached vector differs", i)
		}
	}
	if m := tbl.maxBatchGet(); m > items.MaxBatchGet {
		t.Errorf("a BatchGet asked for %d keys, more than %d", m, items.MaxBatchGet)
	}
}

func TestInnerErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name  string
		inner embed.Embedder
		want  error
	}{
		{"inner fails", stub{err: boom}, boom},
		{"inner returns too few", stub{vectors: [][]float32{}}, ErrInnerMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCache(t, tc.inner, openTable(t), Options{})
			if _, err := c.Embed(context.Background(), []string{"x"}); !errors.Is(err, tc.want) {
				t.Errorf("Embed error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	inner := newCounting(t, 64)
	tbl := openTable(t)
	for _, tc := range []struct {
		name  string
		inner embed.Embedder
		table items.Table
		opts  Options
	}{
		{"nil inner", nil, tbl, Options{}},
		{"nil table", inner, nil, Options{}},
		{"negative TTL", inner, tbl, Options{TTL: -time.Second}},
	} {
		if _, err := New(tc.inner, tc.table, tc.opts); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("%s: New error = %v, want ErrInvalidArgument", tc.name, err)
		}
	}
}

func TestConcurrentCallers(t *testing.T) {
	t.Parallel()
	inner := newCounting(t, 64)
	c := newCache(t, inner, openTable(t), Options{})
	texts := []string{"SUBTOTAL", "TAX", "TOTAL", "VISA"}
	want := mustEmbed(t, inner.Embedder, texts)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			got, err := c.Embed(context.Background(), texts)
			if err != nil {
				errs <- err
				return
			}
			for i := range texts {
				if !slices.Equal(got[i], want[i]) {
					errs <- fmt.Errorf("vector %d differs", i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkEmbed(b *testing.B) {
	texts := make([]string, 100)
	for i := range texts {
		texts[i] = fmt.Sprintf("LINE %d: ITEM %d PRICE %d.%02d", i, i*7, i%10, i%97)
	}
	ctx := context.Background()
	b.Run("inner-only", func(b *testing.B) {
		inner := newCounting(b, 1536)
		for b.Loop() {
			if _, err := inner.Embed(ctx, texts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("all-hits", func(b *testing.B) {
		c := newCache(b, newCounting(b, 1536), openTable(b), Options{})
		mustEmbed(b, c, texts)
		for b.Loop() {
			if _, err := c.Embed(ctx, texts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("all-misses", func(b *testing.B) {
		c := newCache(b, newCounting(b, 1536), openTable(b), Options{})
		n := 0
		for b.Loop() {
			fresh := make([]string, len(texts))
			for i := range fresh {
				fresh[i] = fmt.Sprintf("%s #%d", texts[i], n)
			}
			n++
			if _, err := c.Embed(ctx, fresh); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// --- helpers ---

func openTable(t testing.TB) items.Table {
	t.Helper()
	tbl, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl
}

func newCache(t testing.TB, inner embed.Embedder, tbl items.Table, opts Options) *Cache {
	t.Helper()
	c, err := New(inner, tbl, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustEmbed(t testing.TB, e embed.Embedder, texts []string) [][]float32 {
	t.Helper()
	vs, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(texts) {
		t.Fatalf("%d vectors for %d texts", len(vs), len(texts))
	}
	return vs
}

// counting is the hashed embedder, recording the texts of every call.
type counting struct {
	*hashed.Embedder
	mu    sync.Mutex
	calls [][]string
}

func newCounting(t testing.TB, dims int) *counting {
	t.Helper()
	h, err := hashed.New(dims)
	if err != nil {
		t.Fatal(err)
	}
	return &counting{Embedder: h}
}

func (c *counting) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	c.mu.Lock()
	c.calls = append(c.calls, slices.Clone(texts))
	c.mu.Unlock()
	return c.Embedder.Embed(ctx, texts)
}

func (c *counting) callCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

func (c *counting) callTexts() [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// failingTable wraps a table, failing reads and writes on demand and
// recording the largest BatchGet. It hides the inner table's PutAll, so
// writes go through BatchWrite.
type failingTable struct {
	items.Table
	failGet, failPut bool
	mu               sync.Mutex
	maxGet           int
}

var errTableDown = errors.New("table down")

func (f *failingTable) BatchGet(ctx context.Context, keys []items.Key) ([]items.Item, error) {
	f.mu.Lock()
	f.maxGet = max(f.maxGet, len(keys))
	f.mu.Unlock()
	if f.failGet {
		return nil, errTableDown
	}
	return f.Table.BatchGet(ctx, keys)
}

func (f *failingTable) BatchWrite(ctx context.Context, puts []items.Item, deletes []items.Key) error {
	if f.failPut {
		return errTableDown
	}
	return f.Table.BatchWrite(ctx, puts, deletes)
}

func (f *failingTable) maxBatchGet() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxGet
}

// stub answers every call with fixed vectors or an error.
type stub struct {
	vectors [][]float32
	err     error
}

func (s stub) Embed(context.Context, []string) ([][]float32, error) { return s.vectors, s.err }
func (s stub) Dims() int                                            { return 4 }
func (s stub) Model() string                                        { return "stub-4" }

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
