package vector_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/lease"
	"github.com/tallyhq/tally/vector"
)

// small maintenance options: tiers of 20·4^t records, graphs from 50.
func maintainOpts(b *bundle, coll string) vector.MaintainOptions {
	return vector.MaintainOptions{
		Fanout: 4, Base: 20, GraphMin: 50,
		Lock: func(ctx context.Context) (*lease.Lease, error) {
			return lease.Acquire(ctx, b.items, coll+"#compaction", "maintainer", time.Minute, lease.Options{})
		},
	}
}

// writeRuns writes runs deltas of per records each (ids run-i), compacting
// after each, so every run becomes a segment of its own.
func writeRuns(t *testing.T, b *bundle, coll string, from, runs, per int) {
	t.Helper()
	for run := from; run < from+runs; run++ {
		var recs []vector.Record
		for i := range per {
			recs = append(recs, rec(fmt.Sprintf("r%03d-%03d", run, i), uint64(run*1000+i)))
		}
		if _, err := b.store.WriteDelta(b.ctx, coll, fmt.Sprintf("run-%03d", run), recs, nil); err != nil {
			t.Fatal(err)
		}
		b.compact(t, coll)
	}
}

func (b *bundle) manifest(t *testing.T, coll string) *vector.Manifest {
	t.Helper()
	m, err := b.store.Manifest(b.ctx, coll)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (b *bundle) maintain(t *testing.T, coll string, opts vector.MaintainOptions) vector.MaintainResult {
	t.Helper()
	res, err := b.store.Maintain(b.ctx, coll, b.cache, opts)
	if err != nil {
		t.Fatalf("maintain: %v", err)
	}
	return res
}

// checkSearchExact fails unless searching r for each of the given seeds'
// vectors finds that record first (it is live, so it must be found,
// through a graph or a scan).
func checkSearchFinds(t *testing.T, r *vector.Reader, want map[string]float64) {
	t.Helper()
	n := 0
	for id, seed := range want {
		if n++; n > 40 {
			break
		}
		hits, err := r.Search(context.Background(), vec(uint64(seed)), vector.SearchOptions{K: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 1 || hits[0].ID != id {
			t.Errorf("search for %s's own vector found %+v", id, hits)
		}
	}
}

func TestMaintainMergesTiersAndAddsGraphs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	writeRuns(t, b, "lines", 0, 40, 10)
	before := b.manifest(t, "lines")
	if len(before.Segments) != 40 {
		t.Fatalf("compaction alone left %d segments, want one per run (40)", len(before.Segments))
	}
	for _, si := range before.Segments {
		if si.HasGraph() || si.IDs == "" {
			t.Fatalf("a compacted segment: %+v; want an id sidecar and no graph (graphs are maintenance's)", si)
		}
	}
	want := live(t, b.reader(t, "lines"))

	res := b.maintain(t, "lines", maintainOpts(b, "lines"))
	m := b.manifest(t, "lines")
	// 400 records in tiers 20·4^t: at most 3 segments per tier.
	tiers := map[int]int{}
	for _, si := range m.Segments {
		tiers[tierOf(si.Live(), 20, 4)]++
		if si.Live() >= 50 && !si.HasGraph() {
			t.Errorf("segment of %d live records has no graph: %+v", si.Live(), si)
		}
		if si.IDs == "" {
			t.Errorf("segment without id sidecar: %+v", si)
		}
	}
	for tr, n := range tiers {
		if n >= 4 {
			t.Errorf("tier %d still holds %d segments after maintenance: %v", tr, n, tiers)
		}
	}
	if len(m.Segments) > 6 || res.Merges == 0 || m.Version != res.Version || res.Segments != len(m.Segments) {
		t.Fatalf("after maintenance: %d segments, result %+v", len(m.Segments), res)
	}
	r := b.reader(t, "lines")
	got := live(t, r)
	if len(got) != len(want) {
		t.Fatalf("%d live after maintenance, %d before", len(got), len(want))
	}
	for id, seed := range want {
		if got[id] != seed {
			t.Fatalf("%s: seed %v after maintenance, %v before", id, got[id], seed)
		}
	}
	checkSearchFinds(t, r, want)

	// Nothing left to do: a second call publishes nothing.
	if again := b.maintain(t, "lines", maintainOpts(b, "lines")); again.Version != m.Version || again.Merges+again.Graphs+again.Rewrites != 0 {
		t.Fatalf("second maintenance: %+v", again)
	}
}

// tierOf mirrors the documented tiers: 0 below base, then base·fanout^(t-1)
// up to base·fanout^t.
func tierOf(live, base, fanout int) int {
	if live < base {
		return 0
	}
	t, bound := 1, base*fanout
	for live >= bound {
		t++
		bound *= fanout
	}
	return t
}

// TestMaintainKeepsWritesPublishedMeanwhile lets the compactor publish
// replacements and deletes of the merge's inputs between the merge's build
// and its publish (from inside the publish's Lock): the merged version
// must carry them, so no replaced or deleted copy comes back.
// TestMaintainCapsMergedSegments: no merge makes a segment past
// MaxMerged; the smallest of a full tier merge, as many as fit, and
// segments too big to pair stay as they are, every record still found.
func TestMaintainCapsMergedSegments(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Eleven segments of 30 in one tier (20–80 at Base 20, Fanout 4).
	writeRuns(t, b, "lines", 0, 11, 30)
	want := live(t, b.reader(t, "lines"))
	opts := maintainOpts(b, "lines")
	opts.GraphMin, opts.MaxMerged = 1000, 100
	res := b.maintain(t, "lines", opts)
	m := b.manifest(t, "lines")
	var sizes []int
	for _, si := range m.Segments {
		sizes = append(sizes, si.Live())
		if si.Live() > opts.MaxMerged {
			t.Errorf("a segment of %d live records, past MaxMerged %d", si.Live(), opts.MaxMerged)
		}
	}
	slices.Sort(sizes)
	// Three of 30 at a time make 90s (tier 2, from 80); the two 30s left
	// are fewer than Fanout in their tier, so they wait.
	if !slices.Equal(sizes, []int{30, 30, 90, 90, 90}) || res.Merges != 3 {
		t.Fatalf("segments of %v after %+v; want 30, 30, 90, 90, 90 from three merges", sizes, res)
	}
	if got := live(t, b.reader(t, "lines")); len(got) != len(want) {
		t.Fatalf("%d live after capped merges, %d before", len(got), len(want))
	}
	checkSearchFinds(t, b.reader(t, "lines"), want)
	// A full tier whose segments are too big to pair under the cap stays.
	writeRuns(t, b, "words", 0, 4, 60)
	wopts := maintainOpts(b, "words")
	wopts.GraphMin, wopts.MaxMerged = 1000, 100
	if res := b.maintain(t, "words", wopts); res.Merges != 0 || res.Segments != 4 {
		t.Fatalf("four segments of 60 under a cap of 100: %+v, want them left alone", res)
	}
}

func TestMaintainKeepsWritesPublishedMeanwhile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	writeRuns(t, b, "lines", 0, 4, 10) // four tier-0 segments: one merge
	opts := maintainOpts(b, "lines")
	lock := opts.Lock
	injected := false
	opts.Lock = func(ctx context.Context) (*lease.Lease, error) {
		if !injected {
			injected = true
			// r000-001 rewritten, r001-002 deleted, r003-001…009 deleted.
			del := []string{"r001-002"}
			for i := 1; i < 10; i++ {
				del = append(del, fmt.Sprintf("r003-%03d", i))
			}
			if _, err := b.store.WriteDelta(ctx, "lines", "meanwhile", []vector.Record{rec("r000-001", 77)}, del); err != nil {
				t.Error(err)
			}
			b.compact(t, "lines")
		}
		return lock(ctx)
	}
	opts.MaxSteps = 1
	res := b.maintain(t, "lines", opts)
	if res.Merges != 1 || res.Merged != 4 {
		t.Fatalf("maintenance: %+v", res)
	}
	got := live(t, b.reader(t, "lines"))
	if len(got) != 40-10 {
		t.Fatalf("%d live, want 30: %v", len(got), got)
	}
	if got["r000-001"] != 77 {
		t.Errorf("r000-001 = %v, want the rewrite (77)", got["r000-001"])
	}
	if _, ok := got["r003-000"]; !ok {
		t.Errorf("r003-000 was never deleted, yet it is gone")
	}
	for _, id := range []string{"r001-002", "r003-001", "r003-009"} {
		if _, ok := got[id]; ok {
			t.Errorf("deleted %s is live again", id)
		}
	}
	if m := b.manifest(t, "lines"); m.Records != 30 || len(m.Segments) != 2 {
		t.Errorf("manifest counts %d live records in %d segments, want 30 in two (the merge and the rewrite's)", m.Records, len(m.Segments))
	}
}

// TestMaintainDropsAPlanOvertaken runs a second maintainer to completion
// inside the first one's publish: the first finds its inputs replaced,
// drops its merge and publishes nothing twice.
func TestMaintainDropsAPlanOvertaken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	writeRuns(t, b, "lines", 0, 4, 10)
	want := live(t, b.reader(t, "lines"))
	opts := maintainOpts(b, "lines")
	lock := opts.Lock
	inner := opts
	first := true
	opts.Lock = func(ctx context.Context) (*lease.Lease, error) {
		if first {
			first = false
			if res, err := b.store.Maintain(ctx, "lines", newCache(t, b.blob, t.TempDir()), inner); err != nil || res.Merges != 1 {
				t.Errorf("inner maintenance: %+v, %v", res, err)
			}
		}
		return lock(ctx)
	}
	res := b.maintain(t, "lines", opts)
	if res.Dropped != 1 || res.Merges != 0 {
		t.Fatalf("outer maintenance: %+v, want its one plan dropped", res)
	}
	m := b.manifest(t, "lines")
	if len(m.Segments) != 1 {
		t.Fatalf("%d segments, want the inner merge's one", len(m.Segments))
	}
	if got := live(t, b.reader(t, "lines")); len(got) != len(want) {
		t.Fatalf("%d live, want %d", len(got), len(want))
	}
}

func TestMaintainWithoutTheLeaseCannotPublish(t *testing.T) {
	t.Parallel()
	b := setup(t)
	writeRuns(t, b, "lines", 0, 4, 10)
	before := b.manifest(t, "lines")
	opts := maintainOpts(b, "lines")
	opts.Lock = func(ctx context.Context) (*lease.Lease, error) {
		l, err := lease.Acquire(ctx, b.items, "lines#compaction", "slow", 20*time.Millisecond, lease.Options{})
		if err != nil {
			return nil, err
		}
		// Another compactor takes the collection once this lease lapses.
		waitfor.True(t, "the maintainer's lease to lapse", func() bool {
			other, err := lease.Acquire(ctx, b.items, "lines#compaction", "other", time.Minute, lease.Options{})
			return err == nil && other != nil
		})
		return l, nil
	}
	_, err := b.store.Maintain(b.ctx, "lines", b.cache, opts)
	if !errors.Is(err, lease.ErrLost) {
		t.Fatalf("maintenance with a lapsed lease: %v, want lease.ErrLost", err)
	}
	if after := b.manifest(t, "lines"); after.Version != before.Version {
		t.Fatalf("head moved from v%d to v%d without the lease", before.Version, after.Version)
	}
}

func TestMaintainRewritesMostlyDeadSegments(t *testing.T) {
	t.Parallel()
	b := setup(t)
	writeRuns(t, b, "lines", 0, 1, 60)
	var del []string
	for i := range 40 {
		del = append(del, fmt.Sprintf("r000-%03d", i))
	}
	if _, err := b.store.WriteDelta(b.ctx, "lines", "deletes", nil, del); err != nil {
		t.Fatal(err)
	}
	b.compact(t, "lines")
	if m := b.manifest(t, "lines"); len(m.Segments) != 1 || m.Segments[0].Masked != 40 {
		t.Fatalf("before: %+v", m.Segments)
	}
	res := b.maintain(t, "lines", maintainOpts(b, "lines"))
	m := b.manifest(t, "lines")
	if res.Rewrites != 1 || len(m.Segments) != 1 || m.Segments[0].Count != 20 || m.Segments[0].Masked != 0 {
		t.Fatalf("rewrite: %+v, segments %+v", res, m.Segments)
	}
	if got := live(t, b.reader(t, "lines")); len(got) != 20 {
		t.Fatalf("%d live, want 20", len(got))
	}
}

func TestMaintainBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.store.Maintain(b.ctx, "lines", b.cache, vector.MaintainOptions{}); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("no Lock: %v, want ErrInvalidArgument", err)
	}
	if _, err := b.store.Maintain(b.ctx, "Bad/Name", b.cache, maintainOpts(b, "lines")); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("bad collection: %v, want ErrInvalidArgument", err)
	}
	// An empty collection has nothing to maintain.
	if res := b.maintain(t, "lines", maintainOpts(b, "lines")); res.Version != 0 || res.Merges+res.Graphs != 0 {
		t.Errorf("empty collection: %+v", res)
	}
}

// TestDamagedGraphIsSearchedExactly damages a graph-only segment: the
// reader reports it and still answers, exactly, from the segment.
func TestDamagedGraphIsSearchedExactly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	writeRuns(t, b, "lines", 0, 1, 80)
	want := live(t, b.reader(t, "lines"))
	if res := b.maintain(t, "lines", maintainOpts(b, "lines")); res.Graphs != 1 {
		t.Fatalf("maintenance: %+v, want one graph", res)
	}
	si := b.manifest(t, "lines").Segments[0]
	good, err := blob.ReadAll(b.ctx, b.blob, si.GraphKey)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), good...)
	bad[len(bad)-9] ^= 0xff
	if _, err := b.blob.Put(b.ctx, si.GraphKey, bytes.NewReader(bad), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := b.store.OpenReader(b.ctx, "lines", newCache(t, b.blob, t.TempDir()))
	if err != nil {
		t.Fatalf("open over a damaged graph: %v", err)
	}
	if p := r.Problems(); len(p) != 1 || !strings.Contains(p[0], "searched exactly") {
		t.Fatalf("problems = %q", p)
	}
	checkSearchFinds(t, r, want)
}

// TestColdCompactorFetchesIDsNotVectors: a compactor with an empty cache
// merging a small delta into a large collection fetches the id sidecars,
// the masks and the delta, not the segments' vectors.
func TestColdCompactorFetchesIDsNotVectors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	writeRuns(t, b, "lines", 0, 8, 100)
	b.maintain(t, "lines", maintainOpts(b, "lines"))
	m := b.manifest(t, "lines")
	var sidecars, segments int64
	for _, si := range m.Segments {
		sidecars += si.IDsBytes
		segments += si.Bytes
	}
	d, err := b.store.WriteDelta(b.ctx, "lines", "small", []vector.Record{rec("r003-004", 5), rec("new", 6)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := b.blob.Head(b.ctx, d.Key)
	if err != nil {
		t.Fatal(err)
	}
	cold := newCache(t, b.blob, t.TempDir())
	l, err := lease.Acquire(b.ctx, b.items, "lines#compaction", "cold", time.Minute, lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Compact(b.ctx, "lines", l, cold, vector.CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	fetched, files := cold.Fetched()
	if limit := 2*sidecars + info.Size; fetched > limit {
		t.Fatalf("cold compactor fetched %d bytes in %d files; want ≤ 2×%d (id sidecars) + %d (delta); the segments are %d", fetched, files, sidecars, info.Size, segments)
	}
	t.Logf("cold compactor fetched %d bytes (%d files); %d segments: sidecars %d bytes, segments %d bytes", fetched, files, len(m.Segments), sidecars, segments)
	got := live(t, b.reader(t, "lines"))
	if len(got) != 801 || got["r003-004"] != 5 {
		t.Fatalf("%d live, r003-004 = %v", len(got), got["r003-004"])
	}
}

// cacheFiles lists the local copies in a cache directory.
func cacheFiles(t *testing.T, dir string) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range entries {
		out[e.Name()] = true
	}
	return out
}

func localCopy(key string) string { return strings.ReplaceAll(key, "/", "__") }

// blobSizes sizes blob keys (a cached copy is exactly its blob).
func (b *bundle) blobSizes(t *testing.T, keys []string) []int64 {
	t.Helper()
	out := make([]int64, len(keys))
	for i, k := range keys {
		info, err := b.blob.Head(b.ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = info.Size
	}
	return out
}

// readerFiles are the keys a reader of m fetches: segments, masks, graphs.
func readerFiles(m *vector.Manifest) []string {
	var out []string
	for _, si := range m.Segments {
		for _, k := range []string{si.Key, si.Mask, si.GraphKey} {
			if k != "" {
				out = append(out, k)
			}
		}
	}
	return out
}

// TestCacheEvictsWhatNoVersionHolds: a reader's cache holds its version's
// files; once maintenance replaced them and the reader refreshed, the old
// copies are unmapped and deleted (cap 0), kept while everything fits
// under the cap (least recently used deleted first), and what the open
// version holds is never deleted, even past the cap.
func TestCacheEvictsWhatNoVersionHolds(t *testing.T) {
	t.Parallel()
	// A probe run of the same writes and maintenance gives the sizes
	// (encodings are deterministic): the four old segments in the order a
	// reader fetches them, and what the merged version holds.
	probe := setup(t)
	writeRuns(t, probe, "lines", 0, 4, 10)
	oldSizes := probe.blobSizes(t, readerFiles(probe.manifest(t, "lines")))
	probe.maintain(t, "lines", maintainOpts(probe, "lines"))
	var held int64
	for _, n := range probe.blobSizes(t, readerFiles(probe.manifest(t, "lines"))) {
		held += n
	}
	if len(oldSizes) != 4 {
		t.Fatalf("old version has %d files, want 4 segments", len(oldSizes))
	}
	for _, tc := range []struct {
		name string
		cap  int64
		kept int // old copies left: the most recently used
	}{
		{"cap 0", 0, 0},
		{"cap fits everything", held + sum(oldSizes), 4},
		{"cap fits one old copy", held + oldSizes[3], 1},
		{"cap below the open version", 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			writeRuns(t, b, "lines", 0, 4, 10)
			old := readerFiles(b.manifest(t, "lines"))
			dir := filepath.Join(b.dir, "reader-cache")
			c, err := vector.OpenCache(b.ctx, b.blob, vector.CacheOptions{Dir: dir, MaxBytes: tc.cap})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			r, err := b.store.OpenReader(b.ctx, "lines", c)
			if err != nil {
				t.Fatal(err)
			}
			want := live(t, r)
			b.maintain(t, "lines", maintainOpts(b, "lines"))
			if err := r.Refresh(b.ctx); err != nil {
				t.Fatal(err)
			}
			files := cacheFiles(t, dir)
			for _, k := range readerFiles(b.manifest(t, "lines")) {
				if !files[localCopy(k)] {
					t.Errorf("the open version's %s was evicted", k)
				}
			}
			kept := 0
			for i, k := range old {
				if files[localCopy(k)] {
					kept++
					if i < len(old)-tc.kept {
						t.Errorf("old copy %d of %d kept, but it was used before those evicted", i, len(old))
					}
				}
			}
			if kept != tc.kept {
				t.Errorf("%d old copies kept, want %d (cap %d, held %d, old %v)", kept, tc.kept, tc.cap, held, oldSizes)
			}
			if got := live(t, r); len(got) != len(want) {
				t.Fatalf("%d live after eviction, want %d", len(got), len(want))
			}
			checkSearchFinds(t, r, want)
			r.Close()
			if _, err := r.Search(b.ctx, vec(1), vector.SearchOptions{K: 1}); !errors.Is(err, vector.ErrClosed) {
				t.Fatalf("search of a closed reader: %v, want ErrClosed", err)
			}
			if tc.cap == 0 {
				if n := len(cacheFiles(t, dir)); n != 0 {
					t.Fatalf("a cache capped at 0 keeps %d files after its only reader closed", n)
				}
			}
		})
	}
}

// TestCacheStartsFromWhatAPreviousProcessLeft: copies found at open are
// used without a fetch; a download a crash cut short is removed.
func TestCacheStartsFromWhatAPreviousProcessLeft(t *testing.T) {
	t.Parallel()
	b := setup(t)
	writeRuns(t, b, "lines", 0, 2, 10)
	dir := filepath.Join(b.dir, "reader-cache")
	first := newCache(t, b.blob, dir)
	r, err := b.store.OpenReader(b.ctx, "lines", first)
	if err != nil {
		t.Fatal(err)
	}
	_ = r // left open: the process "dies" with its copies on disk
	if err := os.WriteFile(filepath.Join(dir, ".fetch-123"), []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	second := newCache(t, b.blob, dir)
	if cacheFiles(t, dir)[".fetch-123"] {
		t.Error("a torn download survived the cache's open")
	}
	r2, err := b.store.OpenReader(b.ctx, "lines", second)
	if err != nil {
		t.Fatal(err)
	}
	if n, files := second.Fetched(); n != 0 || files != 0 {
		t.Errorf("the second process fetched %d bytes in %d files; the copies were on disk", n, files)
	}
	if got := live(t, r2); len(got) != 20 {
		t.Fatalf("%d live", len(got))
	}
}

func sum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

// TestSharedCacheUnderMaintenance: in one process (tally serve) readers,
// the compactor and maintenance share a cache; refreshes that unmap
// replaced segments must never pull one from under a search, a merge or
// a compaction.
func TestSharedCacheUnderMaintenance(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.reader(t, "lines")
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := r.Refresh(b.ctx); err != nil {
				done <- err
				return
			}
			if _, err := r.Search(b.ctx, vec(3), vector.SearchOptions{K: 5}); err != nil {
				done <- err
				return
			}
			if err := r.Scan(b.ctx, func(vector.Record) bool { return true }); err != nil {
				done <- err
				return
			}
		}
	}()
	const runs = 24
	for run := range runs {
		writeRuns(t, b, "lines", run, 1, 10)
		if run%3 == 2 {
			b.maintain(t, "lines", maintainOpts(b, "lines"))
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("reader beside compaction and maintenance: %v", err)
	}
	if err := r.Refresh(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got := live(t, r); len(got) != runs*10 {
		t.Fatalf("%d live, want %d", len(got), runs*10)
	}
}

// gatedBlob holds back Gets of the keys in gate until it is closed: a
// slow object store for the older segments.
type gatedBlob struct {
	blob.Store
	gate    chan struct{}
	blocked map[string]bool
}

func (g *gatedBlob) Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error) {
	if g.blocked[key] {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, blob.Info{}, ctx.Err()
		}
	}
	return g.Store.Get(ctx, key)
}

// TestProgressiveOpenAnswersFromTheNewestFirst: a cold reader with
// FirstBytes answers from the newest segments while the older ones are
// still arriving, says so, and serves the whole version once they are in.
func TestProgressiveOpenAnswersFromTheNewestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	writeRuns(t, b, "lines", 0, 6, 50)
	m := b.manifest(t, "lines")
	g := &gatedBlob{Store: b.blob, gate: make(chan struct{}), blocked: map[string]bool{}}
	for _, si := range m.Segments[:4] {
		g.blocked[si.Key] = true
	}
	newest := m.Segments[4].Bytes + m.Segments[5].Bytes
	c, err := vector.OpenCache(b.ctx, g, vector.CacheOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if _, err := b.store.OpenReaderWith(b.ctx, "lines", c, vector.ReaderOptions{FirstBytes: -1}); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Fatalf("negative FirstBytes: %v", err)
	}
	// A budget below the newest segment still loads that one (in a cache
	// of its own: what it fetches would be local for the reader below).
	c1, err := vector.OpenCache(b.ctx, g, vector.CacheOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c1.Close)
	tiny, err := b.store.OpenReaderWith(b.ctx, "lines", c1, vector.ReaderOptions{FirstBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if hits, err := tiny.Search(b.ctx, vec(5007), vector.SearchOptions{K: 1}); err != nil || len(hits) != 1 || hits[0].ID != "r005-007" {
		t.Fatalf("a 1-byte first load answers %+v, %v; want the newest segment's record", hits, err)
	}
	tiny.Close()
	r, err := b.store.OpenReaderWith(b.ctx, "lines", c, vector.ReaderOptions{FirstBytes: newest})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Partial() {
		t.Fatal("the open waited for the held-back segments")
	}
	find := func(id string, seed uint64) bool {
		hits, err := r.Search(b.ctx, vec(seed), vector.SearchOptions{K: 1})
		if err != nil {
			t.Fatal(err)
		}
		return len(hits) == 1 && hits[0].ID == id
	}
	if !find("r005-007", 5007) || !find("r004-000", 4000) {
		t.Error("the newest segments do not answer during the open")
	}
	if find("r000-003", 3) {
		t.Error("an old segment answered before it was loaded")
	}
	close(g.gate)
	<-r.Loaded()
	if r.Partial() {
		t.Fatal("still partial once loaded")
	}
	if !find("r000-003", 3) {
		t.Error("an old segment does not answer once loaded")
	}
	if got := live(t, r); len(got) != 300 {
		t.Fatalf("%d live once loaded, want 300", len(got))
	}
	// A warm refresh has every segment local: not partial at all.
	if err := r.Refresh(b.ctx); err != nil || r.Partial() {
		t.Fatalf("warm refresh: partial %v, %v", r.Partial(), err)
	}
}

// TestMergeExtendsTheLargestGraph: a merge whose largest input has a graph
// keeps that input's records (a dead one too, masked) and extends its
// graph with the others; every live record is found, the dead one is not.
func TestMergeExtendsTheLargestGraph(t *testing.T) {
	t.Parallel()
	b := setup(t)
	opts := maintainOpts(b, "lines")
	writeRuns(t, b, "lines", 0, 1, 120)
	if res := b.maintain(t, "lines", opts); res.Graphs != 1 {
		t.Fatalf("first maintenance: %+v, want the graph of the first segment", res)
	}
	if _, err := b.store.WriteDelta(b.ctx, "lines", "delete-one", nil, []string{"r000-007"}); err != nil {
		t.Fatal(err)
	}
	b.compact(t, "lines")
	// Three more segments of tier 2 (80–320 live records) with the first.
	writeRuns(t, b, "lines", 1, 3, 90)
	res := b.maintain(t, "lines", opts)
	m := b.manifest(t, "lines")
	if res.Merges != 1 || len(m.Segments) != 1 {
		t.Fatalf("maintenance: %+v, segments %+v", res, m.Segments)
	}
	si := m.Segments[0]
	if si.Count != 120+270 || si.Masked != 1 || !si.HasGraph() {
		t.Fatalf("merged segment %+v: want the base's 120 records (one masked) and 270 more, with a graph", si)
	}
	r := b.reader(t, "lines")
	got := live(t, r)
	if len(got) != 389 {
		t.Fatalf("%d live, want 389", len(got))
	}
	if _, ok := got["r000-007"]; ok {
		t.Fatal("the deleted record is live again")
	}
	checkSearchFinds(t, r, got)
	hits, err := r.Search(b.ctx, vec(7), vector.SearchOptions{K: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 1 && hits[0].ID == "r000-007" {
		t.Fatal("search found the deleted record")
	}
}
