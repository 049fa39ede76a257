package vector_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	blobfile "github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/lease"
	"github.com/tallyhq/tally/vector"
)

const dims = 32

// bundle is what a test needs: a store on real files and a real SQLite table.
type bundle struct {
	ctx   context.Context
	dir   string
	blob  *blobfile.Store
	items items.Table
	store *vector.Store
	cache *vector.Cache
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	b, err := blobfile.Open(filepath.Join(dir, "blobs"), blobfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := itemssqlite.Open(ctx, filepath.Join(dir, "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	st, err := vector.New(vector.Options{Blob: b, Items: tbl, Dims: dims})
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{ctx: ctx, dir: dir, blob: b, items: tbl, store: st, cache: newCache(t, b, filepath.Join(dir, "cache"))}
}

func newCache(t *testing.T, b blob.Store, dir string) *vector.Cache {
	t.Helper()
	c, err := vector.OpenCache(context.Background(), b, vector.CacheOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func vec(seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, seed*7+1))
	v := make([]float32, dims)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func rec(id string, seed uint64) vector.Record {
	return vector.Record{ID: id, Vector: vec(seed), Meta: map[string]any{"text": id, "seed": float64(seed)}}
}

func (b *bundle) compact(t *testing.T, coll string) vector.CompactResult {
	t.Helper()
	l, err := lease.Acquire(b.ctx, b.items, coll+"#compaction", "test", time.Minute, lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(b.ctx)
	res, err := b.store.Compact(b.ctx, coll, l, b.cache, vector.CompactOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (b *bundle) reader(t *testing.T, coll string) *vector.Reader {
	t.Helper()
	r, err := b.store.OpenReader(b.ctx, coll, b.cache)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// live returns every live id with its seed.
func live(t *testing.T, r *vector.Reader) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	err := r.Scan(context.Background(), func(rec vector.Record) bool {
		if _, dup := out[rec.ID]; dup {
			t.Errorf("id %s is live twice", rec.ID)
		}
		out[rec.ID], _ = rec.Meta["seed"].(float64)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteSearchCompact(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for run := range 3 {
		var recs []vector.Record
		for i := range 20 {
			recs = append(recs, rec(fmt.Sprintf("IMAGE#r%d#LINE#%05d", run, i), uint64(run*100+i)))
		}
		if _, err := b.store.WriteDelta(b.ctx, "lines", fmt.Sprintf("run-%d", run), recs, nil); err != nil {
			t.Fatal(err)
		}
	}
	r := b.reader(t, "lines")
	if r.Version() != 0 || r.PendingDeltas() != 3 {
		t.Fatalf("before compaction: version %d, %d pending deltas", r.Version(), r.PendingDeltas())
	}
	// A write is searchable before compaction. vec is not of unit length;
	// the store keeps unit vectors, so a record's own vector scores 1
	// (cosine), not its squared length.
	hits, err := r.Search(b.ctx, vec(105), vector.SearchOptions{K: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 3 || hits[0].ID != "IMAGE#r1#LINE#00005" || hits[0].Score < 0.999 || hits[0].Score > 1.001 {
		t.Fatalf("hits before compaction: %+v", hits)
	}
	if got := len(live(t, r)); got != 60 {
		t.Fatalf("%d live before compaction, want 60", got)
	}

	res := b.compact(t, "lines")
	if !res.Published || res.Version != 1 || len(res.Deltas) != 3 || res.Records != 60 {
		t.Fatalf("compaction: %+v", res)
	}
	if err := r.Refresh(b.ctx); err != nil {
		t.Fatal(err)
	}
	if r.Version() != 1 || r.PendingDeltas() != 0 {
		t.Fatalf("after compaction: version %d, %d pending", r.Version(), r.PendingDeltas())
	}
	hits2, err := r.Search(b.ctx, vec(105), vector.SearchOptions{K: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range hits {
		if hits[i].ID != hits2[i].ID {
			t.Errorf("hit %d changed across compaction: %s → %s", i, hits[i].ID, hits2[i].ID)
		}
	}
	if hits2[0].Meta["text"] != "IMAGE#r1#LINE#00005" {
		t.Errorf("metadata not returned: %v", hits2[0].Meta)
	}
	// Nothing pending: compaction publishes nothing.
	if res := b.compact(t, "lines"); res.Published || res.Version != 1 {
		t.Fatalf("empty compaction published: %+v", res)
	}
}

func TestRedeliveredDeltaIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	recs := []vector.Record{rec("a", 1), rec("b", 2)}
	d1, err := b.store.WriteDelta(b.ctx, "words", "run-x", recs, nil)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := b.store.WriteDelta(b.ctx, "words", "run-x", recs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d1.Seq != d2.Seq || d1.Key != d2.Key {
		t.Fatalf("redelivery registered twice: %+v vs %+v", d1, d2)
	}
	b.compact(t, "words")
	// After compaction, the same run again changes nothing.
	if _, err := b.store.WriteDelta(b.ctx, "words", "run-x", recs, nil); err != nil {
		t.Fatal(err)
	}
	if res := b.compact(t, "words"); res.Published {
		t.Fatalf("re-compacting the same delta published v%d", res.Version)
	}
	if got := live(t, b.reader(t, "words")); len(got) != 2 {
		t.Fatalf("live = %v", got)
	}
}

func TestDeleteThenReinsertAcrossDeltas(t *testing.T) {
	t.Parallel()
	b := setup(t)
	must := func(_ vector.Delta, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.store.WriteDelta(b.ctx, "lines", "r1", []vector.Record{rec("x", 1), rec("y", 2)}, nil))
	b.compact(t, "lines") // x lives in a version segment now
	must(b.store.WriteDelta(b.ctx, "lines", "r2", nil, []string{"x"}))
	r := b.reader(t, "lines")
	if got := live(t, r); len(got) != 1 || got["y"] != 2 {
		t.Fatalf("after pending delete: %v", got)
	}
	must(b.store.WriteDelta(b.ctx, "lines", "r3", []vector.Record{rec("x", 3)}, nil))
	if err := r.Refresh(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got := live(t, r); len(got) != 2 || got["x"] != 3 {
		t.Fatalf("after pending re-insert: %v", got)
	}
	b.compact(t, "lines")
	if err := r.Refresh(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got := live(t, r); len(got) != 2 || got["x"] != 3 || got["y"] != 2 {
		t.Fatalf("after compaction: %v", got)
	}
	hits, err := r.Search(b.ctx, vec(1), vector.SearchOptions{K: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hits {
		if h.ID == "x" && h.Score > 0.99 {
			t.Fatalf("the deleted version of x is still found: %+v", hits)
		}
	}
}

func TestFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var recs []vector.Record
	for i := range 30 {
		r := rec(fmt.Sprintf("id%02d", i), uint64(i))
		r.Meta["merchant"] = []string{"costco", "target", "kroger"}[i%3]
		r.Meta["total"] = i%2 == 0
		recs = append(recs, r)
	}
	if _, err := b.store.WriteDelta(b.ctx, "lines", "r", recs, nil); err != nil {
		t.Fatal(err)
	}
	r := b.reader(t, "lines")
	tests := []struct {
		name    string
		filters []vector.Filter
		want    func(i int) bool
	}{
		{"eq", []vector.Filter{{Field: "merchant", Op: vector.OpEq, Values: []any{"costco"}}}, func(i int) bool { return i%3 == 0 }},
		{"ne", []vector.Filter{{Field: "merchant", Op: vector.OpNe, Values: []any{"costco"}}}, func(i int) bool { return i%3 != 0 }},
		{"in", []vector.Filter{{Field: "merchant", Op: vector.OpIn, Values: []any{"target", "kroger"}}}, func(i int) bool { return i%3 != 0 }},
		{"bool and eq", []vector.Filter{{Field: "total", Op: vector.OpEq, Values: []any{true}}, {Field: "merchant", Op: vector.OpEq, Values: []any{"target"}}}, func(i int) bool { return i%2 == 0 && i%3 == 1 }},
		{"missing field", []vector.Filter{{Field: "nope", Op: vector.OpEq, Values: []any{"x"}}}, func(int) bool { return false }},
	}
	for _, tt := range tests {
		hits, err := r.Search(b.ctx, vec(0), vector.SearchOptions{K: 30, Filters: tt.filters})
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for i := range 30 {
			if tt.want(i) {
				want++
			}
		}
		if len(hits) != want {
			t.Errorf("%s: %d hits, want %d", tt.name, len(hits), want)
		}
		for _, h := range hits {
			var i int
			fmt.Sscanf(h.ID, "id%d", &i)
			if !tt.want(i) {
				t.Errorf("%s: %s should be filtered out", tt.name, h.ID)
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.store.WriteDelta(b.ctx, "lines", "r", []vector.Record{rec("a", 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := b.reader(t, "lines")
	bad := []struct {
		name string
		err  error
	}{
		{"bad collection", func() error {
			_, err := b.store.WriteDelta(b.ctx, "Lines/..", "r", []vector.Record{rec("a", 1)}, nil)
			return err
		}()},
		{"bad run id", func() error {
			_, err := b.store.WriteDelta(b.ctx, "lines", "../x", []vector.Record{rec("a", 1)}, nil)
			return err
		}()},
		{"empty delta", func() error { _, err := b.store.WriteDelta(b.ctx, "lines", "r2", nil, nil); return err }()},
		{"wrong dims", func() error {
			_, err := b.store.WriteDelta(b.ctx, "lines", "r3", []vector.Record{{ID: "a", Vector: []float32{1, 2}}}, nil)
			return err
		}()},
		{"upsert and delete one id", func() error {
			_, err := b.store.WriteDelta(b.ctx, "lines", "r4", []vector.Record{rec("a", 1)}, []string{"a"})
			return err
		}()},
		{"query dims", func() error { _, err := r.Search(b.ctx, []float32{1}, vector.SearchOptions{K: 1}); return err }()},
		{"k zero", func() error { _, err := r.Search(b.ctx, vec(1), vector.SearchOptions{K: 0}); return err }()},
		{"k huge", func() error { _, err := r.Search(b.ctx, vec(1), vector.SearchOptions{K: 100000}); return err }()},
		{"bad filter op", func() error {
			_, err := r.Search(b.ctx, vec(1), vector.SearchOptions{K: 1, Filters: []vector.Filter{{Field: "a", Op: "~", Values: []any{"x"}}}})
			return err
		}()},
		{"bad filter value", func() error {
			_, err := r.Search(b.ctx, vec(1), vector.SearchOptions{K: 1, Filters: []vector.Filter{{Field: "a", Op: vector.OpEq, Values: []any{[]int{1}}}}})
			return err
		}()},
	}
	for _, tc := range bad {
		if !errors.Is(tc.err, tally.ErrInvalidArgument) {
			t.Errorf("%s: error = %v, want ErrInvalidArgument", tc.name, tc.err)
		}
	}
}

// TestLapsedLeaseCannotPublish: a compactor whose lease lapsed (and was taken
// over) gets lease.ErrLost and the head does not move.
func TestLapsedLeaseCannotPublish(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.store.WriteDelta(b.ctx, "lines", "r", []vector.Record{rec("a", 1)}, nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	old, err := lease.Acquire(b.ctx, b.items, "lines#compaction", "old", time.Minute, lease.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := lease.Acquire(b.ctx, b.items, "lines#compaction", "new", time.Minute, lease.Options{Now: clock}); err != nil {
		t.Fatal(err)
	}
	_, err = b.store.Compact(b.ctx, "lines", old, b.cache, vector.CompactOptions{})
	if !errors.Is(err, lease.ErrLost) {
		t.Fatalf("compaction under a lapsed lease: %v, want ErrLost", err)
	}
	if v := b.reader(t, "lines").Version(); v != 0 {
		t.Fatalf("head moved to v%d", v)
	}
}

// TestConcurrentCompactors runs 2 and 4 compactors against writers on one
// collection: every delta's records end up live exactly once.
func TestConcurrentCompactors(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 4} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			const runs, perRun = 40, 10
			var wg sync.WaitGroup
			stop := make(chan struct{})
			published := make(chan int64, 1000)
			for c := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cache := newCache(t, b.blob, filepath.Join(b.dir, fmt.Sprintf("cache%d", c)))
					for {
						select {
						case <-stop:
							return
						default:
						}
						l, err := lease.Acquire(b.ctx, b.items, "lines#compaction", fmt.Sprintf("c%d", c), time.Minute, lease.Options{})
						if errors.Is(err, lease.ErrHeld) {
							// A compactor's back-off between lease
							// attempts, not a wait on a result.
							time.Sleep(time.Millisecond)
							continue
						}
						if err != nil {
							t.Error(err)
							return
						}
						res, err := b.store.Compact(b.ctx, "lines", l, cache, vector.CompactOptions{MaxDeltas: 7})
						l.Release(b.ctx)
						if err != nil {
							t.Error(err)
							return
						}
						if res.Published {
							published <- res.Version
						}
					}
				}()
			}
			for run := range runs {
				var recs []vector.Record
				for i := range perRun {
					// Half the ids are rewritten by the next run: latest wins.
					id := fmt.Sprintf("id-%d", (run*perRun+i)/2)
					recs = append(recs, rec(id, uint64(run)))
				}
				dedup := map[string]vector.Record{}
				for _, r := range recs {
					dedup[r.ID] = r
				}
				recs = recs[:0]
				for _, r := range dedup {
					recs = append(recs, r)
				}
				if _, err := b.store.WriteDelta(b.ctx, "lines", fmt.Sprintf("run-%03d", run), recs, nil); err != nil {
					t.Fatal(err)
				}
			}
			// Wait until everything is applied, failing only if the
			// compactors stop making progress (not because the machine is
			// busy).
			waitfor.Progress(t, "compactors to apply every delta", func() (int, bool) {
				pending, err := b.store.Deltas(b.ctx, "lines", true, 0)
				if err != nil {
					t.Fatal(err)
				}
				return runs - len(pending), len(pending) == 0
			})
			close(stop)
			wg.Wait()
			close(published)
			var versions []int64
			for v := range published {
				versions = append(versions, v)
			}
			sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
			for i, v := range versions {
				if v != int64(i+1) {
					t.Fatalf("versions published %v: not each exactly once", versions)
				}
			}
			got := live(t, b.reader(t, "lines"))
			want := runs * perRun / 2
			if len(got) != want {
				t.Fatalf("%d live ids, want %d", len(got), want)
			}
			for i := range want {
				id := fmt.Sprintf("id-%d", i)
				// id i was written by run (2i)/perRun and (2i+1)/perRun; the later wins.
				if got[id] != float64((2*i+1)/perRun) {
					t.Fatalf("%s has seed %v, want %d", id, got[id], (2*i+1)/perRun)
				}
			}
		})
	}
}

// TestCorruptSegmentKeepsLastGoodVersion: a damaged file in place of a
// segment is a clear error, and a reader keeps serving its last version.
func TestCorruptSegmentKeepsLastGoodVersion(t *testing.T) {
	t.Parallel()
	for _, damage := range []struct {
		name string
		fn   func([]byte) []byte
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
		{"flipped byte", func(b []byte) []byte { c := append([]byte(nil), b...); c[len(c)-10] ^= 0xff; return c }},
		{"foreign file", func([]byte) []byte { return []byte("\x89PNG\r\n\x1a\n not a segment at all") }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if _, err := b.store.WriteDelta(b.ctx, "lines", "r1", []vector.Record{rec("a", 1)}, nil); err != nil {
				t.Fatal(err)
			}
			b.compact(t, "lines")
			r := b.reader(t, "lines")
			d, err := b.store.WriteDelta(b.ctx, "lines", "r2", []vector.Record{rec("b", 2)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			good, err := blob.ReadAll(b.ctx, b.blob, d.Key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.blob.Put(b.ctx, d.Key, bytes.NewReader(damage.fn(good)), blob.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			// A good delta registered after the bad one.
			if _, err := b.store.WriteDelta(b.ctx, "lines", "r3", []vector.Record{rec("c", 3)}, nil); err != nil {
				t.Fatal(err)
			}
			if err := r.Refresh(b.ctx); err != nil {
				t.Fatalf("refresh over a damaged delta: %v", err)
			}
			if p := r.Problems(); len(p) != 1 || !strings.Contains(p[0], "corrupt segment") {
				t.Fatalf("problems = %q, want the damaged delta named", p)
			}
			if got := live(t, r); len(got) != 2 || got["a"] != 1 || got["c"] != 3 || r.Version() != 1 {
				t.Fatalf("reader should serve v1 plus the good delta: v%d %v", r.Version(), got)
			}
			// The compactor quarantines the bad delta and merges the good one.
			l, err := lease.Acquire(b.ctx, b.items, "lines#compaction", "c", time.Minute, lease.Options{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := b.store.Compact(b.ctx, "lines", l, newCache(t, b.blob, t.TempDir()), vector.CompactOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Quarantined) != 1 || res.Quarantined[0].Seq != d.Seq || len(res.Deltas) != 1 || res.Version != 2 {
				t.Fatalf("compaction: %+v", res)
			}
			// Nothing is lost: the bad delta is still registered, and
			// writing its run again repairs it.
			all, err := b.store.Deltas(b.ctx, "lines", false, 0)
			if err != nil {
				t.Fatal(err)
			}
			var q []vector.Delta
			for _, d := range all {
				if d.Quarantined != "" {
					q = append(q, d)
				}
			}
			if len(q) != 1 || !strings.Contains(q[0].Quarantined, "corrupt") {
				t.Fatalf("quarantined deltas: %+v", q)
			}
			if _, err := b.store.WriteDelta(b.ctx, "lines", "r2", []vector.Record{rec("b", 2)}, nil); err != nil {
				t.Fatal(err)
			}
			res, err = b.store.Compact(b.ctx, "lines", l, newCache(t, b.blob, t.TempDir()), vector.CompactOptions{})
			if err != nil || len(res.Deltas) != 1 || res.Version != 3 {
				t.Fatalf("compaction after repair: %+v %v", res, err)
			}
			got := live(t, b.reader(t, "lines"))
			if len(got) != 3 {
				t.Fatalf("after repair: %v", got)
			}
		})
	}
}

func TestGCKeepsReferencedSegments(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 6 {
		if _, err := b.store.WriteDelta(b.ctx, "lines", fmt.Sprintf("r%d", i), []vector.Record{rec(fmt.Sprintf("id%d", i%3), uint64(i))}, nil); err != nil {
			t.Fatal(err)
		}
		b.compact(t, "lines")
	}
	// Collect as if five minutes had passed: past the one-minute grace
	// given, but not past the 10-minute default, so an ignored Grace
	// would delete nothing.
	later, err := vector.New(vector.Options{Blob: b.blob, Items: b.items, Dims: dims,
		Now: func() time.Time { return time.Now().Add(5 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := later.GC(b.ctx, "lines", vector.GCOptions{Keep: 2, Grace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.KeptVersions) != 2 || res.KeptVersions[0] != 6 || res.SegmentsDeleted == 0 || res.DeltasDeleted != 5 {
		t.Fatalf("gc: %+v", res)
	}
	// A collected run still answers RunDelta, and writing it again
	// registers nothing new.
	d, err := b.store.RunDelta(b.ctx, "lines", "r0")
	if err != nil || d.AppliedVersion != 1 || d.Upserts != 1 {
		t.Fatalf("RunDelta of a collected run: %+v %v", d, err)
	}
	if d2, err := b.store.WriteDelta(b.ctx, "lines", "r0", []vector.Record{rec("id0", 0)}, nil); err != nil || d2.AppliedVersion != 1 {
		t.Fatalf("rewriting a collected run: %+v %v", d2, err)
	}
	if pending, _ := b.store.Deltas(b.ctx, "lines", true, 0); len(pending) != 0 {
		t.Fatalf("a collected run was registered again: %+v", pending)
	}
	// A cold reader still opens the head, and the state is exact.
	r, err := b.store.OpenReader(b.ctx, "lines", newCache(t, b.blob, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	got := live(t, r)
	if len(got) != 3 || got["id0"] != 3 || got["id1"] != 4 || got["id2"] != 5 {
		t.Fatalf("after gc: %v", got)
	}
}

// TestAutoModeFallsBackFromAHungMount: a mount whose open blocks (a FIFO
// with no writer) costs start-up the probe deadline, not a hang.
func TestAutoModeFallsBackFromAHungMount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fifo := filepath.Join(t.TempDir(), "mnt")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	type opened struct {
		c   *vector.Cache
		err error
	}
	done := make(chan opened, 1)
	go func() {
		c, err := vector.OpenCache(b.ctx, b.blob, vector.CacheOptions{Dir: t.TempDir(), Mode: vector.ModeAuto, Mount: fifo, ProbeTimeout: 200 * time.Millisecond})
		done <- opened{c, err}
	}()
	// A hang shows as no answer here; that it gave up through the probe
	// deadline (not some other error) shows in the reason.
	o := waitfor.Recv(t, "OpenCache over a hung mount", done)
	c, err := o.c, o.err
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if mode, why := c.Mode(); mode != vector.ModeObject || !strings.Contains(why, "no answer within 200ms") {
		t.Fatalf("mode %s (%s), want fallback to s3 after the 200ms probe deadline", mode, why)
	}
	// And it works.
	if _, err := b.store.WriteDelta(b.ctx, "lines", "r", []vector.Record{rec("a", 1)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.OpenReader(b.ctx, "lines", c); err != nil {
		t.Fatal(err)
	}
}

// TestMountModes: segments mirrored to a shared directory are read in place
// (efs) or copied (efs-copy), and nothing is fetched from the object store.
func TestMountModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []vector.Mode{vector.ModeMount, vector.ModeMountCopy, vector.ModeAuto} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			mount := t.TempDir()
			if _, err := b.store.WriteDelta(b.ctx, "lines", "r", []vector.Record{rec("a", 1), rec("b", 2)}, nil); err != nil {
				t.Fatal(err)
			}
			l, _ := lease.Acquire(b.ctx, b.items, "lines#compaction", "c", time.Minute, lease.Options{})
			if _, err := b.store.Compact(b.ctx, "lines", l, b.cache, vector.CompactOptions{Mirror: mount}); err != nil {
				t.Fatal(err)
			}
			c, err := vector.OpenCache(b.ctx, b.blob, vector.CacheOptions{Dir: t.TempDir(), Mode: mode, Mount: mount})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			want := mode
			if mode == vector.ModeAuto {
				want = vector.ModeMount
			}
			if got, why := c.Mode(); got != want {
				t.Fatalf("mode %s (%s), want %s", got, why, want)
			}
			r, err := b.store.OpenReader(b.ctx, "lines", c)
			if err != nil {
				t.Fatal(err)
			}
			if got := live(t, r); len(got) != 2 {
				t.Fatalf("live %v", got)
			}
			fetched, _ := c.Fetched()
			if mode == vector.ModeMount && fetched != 0 {
				t.Errorf("efs mode fetched %d bytes; want in-place reads", fetched)
			}
		})
	}
}

// TestWarmReaderFetchesOnlyNewSegments: after one more compaction a warm
// reader downloads only what is new.
func TestWarmReaderFetchesOnlyNewSegments(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var recs []vector.Record
	for i := range 300 {
		recs = append(recs, rec(fmt.Sprintf("big%03d", i), uint64(i)))
	}
	if _, err := b.store.WriteDelta(b.ctx, "lines", "r1", recs, nil); err != nil {
		t.Fatal(err)
	}
	b.compact(t, "lines")
	c := newCache(t, b.blob, t.TempDir())
	r, err := b.store.OpenReader(b.ctx, "lines", c)
	if err != nil {
		t.Fatal(err)
	}
	cold, _ := c.Fetched()
	if _, err := b.store.WriteDelta(b.ctx, "lines", "r2", []vector.Record{rec("small", 1)}, nil); err != nil {
		t.Fatal(err)
	}
	b.compact(t, "lines")
	if err := r.Refresh(b.ctx); err != nil {
		t.Fatal(err)
	}
	total, _ := c.Fetched()
	if warm := total - cold; warm == 0 || warm*4 > cold {
		t.Fatalf("warm refresh fetched %d bytes after a cold open of %d", warm, cold)
	}
}

// TestSearchAcrossBigSegments: parts big enough to be searched on
// goroutines of their own (16,384 records and more) answer together with
// a small delta, with filters, and a cancelled search says so.
func TestSearchAcrossBigSegments(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const per = 16_384
	for run := range 2 {
		recs := make([]vector.Record, per)
		for i := range recs {
			seed := uint64(run*100_000 + i)
			recs[i] = vector.Record{ID: fmt.Sprintf("r%d-%05d", run, i), Vector: vec(seed), Meta: map[string]any{"run": float64(run)}}
		}
		if _, err := b.store.WriteDelta(b.ctx, "lines", fmt.Sprintf("big-%d", run), recs, nil); err != nil {
			t.Fatal(err)
		}
		b.compact(t, "lines")
	}
	if _, err := b.store.WriteDelta(b.ctx, "lines", "small", []vector.Record{rec("small-1", 999_999)}, nil); err != nil {
		t.Fatal(err)
	}
	r := b.reader(t, "lines")
	for _, tc := range []struct {
		id      string
		seed    uint64
		filters []vector.Filter
	}{
		{"r0-00042", 42, nil},
		{"r1-01234", 101_234, nil},
		{"small-1", 999_999, nil},
		{"r1-00042", 100_042, []vector.Filter{{Field: "run", Op: vector.OpIn, Values: []any{1.0}}}},
	} {
		hits, err := r.Search(b.ctx, vec(tc.seed), vector.SearchOptions{K: 3, Filters: tc.filters})
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 3 || hits[0].ID != tc.id {
			t.Errorf("search for %s: %+v", tc.id, hits)
		}
	}
	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	if _, err := r.Search(ctx, vec(42), vector.SearchOptions{K: 3}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled search: %v, want context.Canceled", err)
	}
}
