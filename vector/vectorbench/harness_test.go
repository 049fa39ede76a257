package vectorbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	chromem "github.com/philippgille/chromem-go"

	"github.com/tallyhq/tally/blob"
	blobfile "github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/lease"
	"github.com/tallyhq/tally/vector"
	"github.com/tallyhq/tally/vector/ann"
)

// Harness constants: the workload the issue describes.
const (
	numQueries = 200  // held-out queries per dataset
	topK       = 10   // k of every search and of recall@k
	deltaSize  = 1000 // records per WriteDelta, like one processing run
	// The extra delta written before the warm refresh: new records,
	// re-upserts of existing ids and deletes of existing ids.
	extraNew     = 90
	extraUpdates = 10
	extraDeletes = 10
	// tieEps credits a returned record whose exact score is within tieEps
	// of the k-th exact score: with duplicate vectors (frequent among
	// receipt lines) several records tie for the last places and any of
	// them is a correct answer.
	tieEps = 1e-5
)

// collGraph is the collection a fixture writes, compacts, maintains and
// searches.
const collGraph = "bench-lines"

// spec names one dataset.
type spec struct {
	kind string // "embed" (embeddingLike) or "hashed" (receipt lines)
	n    int
	dims int
}

func (s spec) String() string { return fmt.Sprintf("%s-%dx%d", s.kind, s.n, s.dims) }

// stage runs one step of a fixture at most once per process and remembers
// its error, so every benchmark that needs the step can ask for it.
type stage struct {
	once sync.Once
	err  error
}

func (s *stage) run(tb testing.TB, fn func() error) {
	tb.Helper()
	s.once.Do(func() { s.err = fn() })
	if s.err != nil {
		tb.Fatal(s.err)
	}
}

// fixture is one dataset's data and store, built lazily stage by stage.
type fixture struct {
	spec
	ctx context.Context

	// vecs holds n unit vectors (row i has id rowID(i)); queries the
	// held-out ones; extra the rows of the extra delta.
	vecs, queries, extra []float32
	lines                []string // hashed datasets: the text of each row
	truth                [][]ann.Hit
	scanLat              []time.Duration // single-goroutine exact scans

	dir   string
	blob  *blobfile.Store
	tbl   *itemssqlite.Table
	store *vector.Store

	writeDur, compactDur time.Duration
	compactVersions      int
	compactSegments      int // segments before maintenance
	maintainDur          time.Duration
	maintained           vector.MaintainResult
	segments, records    int
	graphSegments        int // segments with a graph after maintenance

	cache    *vector.Cache // the graph collection's compactor cache
	reader   *vector.Reader
	rcache   *vector.Cache // the reader's cache
	coldOpen time.Duration
	coldB    int64
	coldF    int64
	firstLat []time.Duration // the first pass of queries after the cold open
	// A progressive cold open (ReaderOptions.FirstBytes): until its first
	// answer, and the bytes it fetched by then.
	firstAnswer  time.Duration
	firstAnswerB int64
	// The reader's resident set growth over the open and the first pass.
	readerRSS int64

	col        *chromem.Collection
	chromemAdd time.Duration
	chromemLat []time.Duration
	chromemRec float64

	warm warmResult

	sData, sStore, sGraph, sOpen, sChromem, sWarm stage
}

// warmResult is what the refresh after one more compaction measured.
type warmResult struct {
	fetchedB, fetchedF   int64 // by the warm reader's Refresh
	refresh              time.Duration
	newSegB, newDeltaB   int64 // new version segments (incl. masks) and the delta
	compact              time.Duration
	compactorB           int64 // fetched by a compactor with an empty cache
	compactorF           int64
	versionB, versionSeg int64 // the whole new version, for scale
	sidecarB             int64 // the id sidecars of the version compacted into
	// From the extra delta's WriteDelta until the warm reader finds it:
	// as a pending delta (refresh only), and once compacted.
	searchable, searchableCompacted time.Duration
}

func rowID(i int) string { return fmt.Sprintf("r%07d", i) }

// rowIndex parses an id written by rowID; -1 for any other id.
func rowIndex(id string) int {
	if !strings.HasPrefix(id, "r") {
		return -1
	}
	i, err := strconv.Atoi(id[1:])
	if err != nil {
		return -1
	}
	return i
}

func newFixture(sp spec) *fixture {
	return &fixture{spec: sp, ctx: context.Background()}
}

// data generates vectors, queries and extra rows, and the exact top-k of
// every query by a single-goroutine ann.BruteForce scan (timed, as the
// exact-scan baseline).
func (f *fixture) data(tb testing.TB) {
	f.sData.run(tb, func() error {
		start := time.Now()
		total := f.n + numQueries + extraNew + extraUpdates
		var all []float32
		switch f.kind {
		case "embed":
			all = embeddingLike(total, f.dims, 31)
		case "hashed":
			f.lines = receiptLines(total, 31)
			var err error
			if all, err = hashedVectors(f.lines, f.dims); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown data kind %q", f.kind)
		}
		d := f.dims
		f.vecs = all[: f.n*d : f.n*d]
		f.queries = all[f.n*d : (f.n+numQueries)*d : (f.n+numQueries)*d]
		f.extra = all[(f.n+numQueries)*d:]
		gen := time.Since(start)
		start = time.Now()
		f.truth = make([][]ann.Hit, numQueries)
		f.scanLat = make([]time.Duration, numQueries)
		for i := range numQueries {
			t0 := time.Now()
			f.truth[i] = ann.BruteForce(f.vecs, d, f.query(i), topK, nil)
			f.scanLat[i] = time.Since(t0)
		}
		tb.Logf("%v: generated in %v, exact answers in %v", f.spec, gen.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		return nil
	})
}

func (f *fixture) query(i int) []float32 { return f.queries[i*f.dims : (i+1)*f.dims] }
func (f *fixture) row(i int) []float32   { return f.vecs[i*f.dims : (i+1)*f.dims] }

// openStore opens a vector.Store on real files and a real SQLite table, as
// vector_test.go's setup does, in a fresh temporary directory.
func (f *fixture) openStore(tb testing.TB) {
	f.sStore.run(tb, func() error {
		dir, err := os.MkdirTemp("", "vectorbench-*")
		if err != nil {
			return err
		}
		f.dir = dir
		if f.blob, err = blobfile.Open(filepath.Join(dir, "blobs"), blobfile.Options{}); err != nil {
			return err
		}
		if f.tbl, err = itemssqlite.Open(f.ctx, filepath.Join(dir, "items.db"), items.DefaultIndexes); err != nil {
			return err
		}
		f.store, err = vector.New(vector.Options{Blob: f.blob, Items: f.tbl, Dims: f.dims})
		return err
	})
}

// meta is the metadata of row i: what Tally keeps per receipt line.
func (f *fixture) meta(i int) map[string]any {
	m := map[string]any{"receipt_id": fmt.Sprintf("rcpt-%06d", i/deltaSize*40+i%40), "line": float64(i % 40)}
	if f.lines != nil {
		m["text"] = f.lines[i]
	}
	return m
}

// writeDeltas writes all n rows to coll as deltas of deltaSize records.
func (f *fixture) writeDeltas(coll string) (time.Duration, error) {
	start := time.Now()
	for lo := 0; lo < f.n; lo += deltaSize {
		hi := min(lo+deltaSize, f.n)
		recs := make([]vector.Record, 0, hi-lo)
		for i := lo; i < hi; i++ {
			recs = append(recs, vector.Record{ID: rowID(i), Vector: f.row(i), Meta: f.meta(i)})
		}
		if _, err := f.store.WriteDelta(f.ctx, coll, fmt.Sprintf("run-%07d", lo/deltaSize), recs, nil); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// compactAll compacts coll under its lease until nothing is pending and
// returns the time taken, the versions published and the last result.
func (f *fixture) compactAll(coll string, cache *vector.Cache, opts vector.CompactOptions) (time.Duration, int, vector.CompactResult, error) {
	l, err := lease.Acquire(f.ctx, f.tbl, coll+"#compaction", "vectorbench", 3*time.Hour, lease.Options{})
	if err != nil {
		return 0, 0, vector.CompactResult{}, err
	}
	defer l.Release(f.ctx)
	start := time.Now()
	versions := 0
	var last vector.CompactResult
	for {
		res, err := f.store.Compact(f.ctx, coll, l, cache, opts)
		if err != nil {
			return 0, 0, last, err
		}
		if !res.Published {
			return time.Since(start), versions, last, nil
		}
		if len(res.Quarantined) > 0 {
			return 0, 0, res, fmt.Errorf("compact %s: %d deltas quarantined", coll, len(res.Quarantined))
		}
		versions++
		last = res
	}
}

func (f *fixture) newCache(name string) (*vector.Cache, error) {
	return vector.OpenCache(f.ctx, f.blob, vector.CacheOptions{Dir: filepath.Join(f.dir, name)})
}

// graph writes every row to the searched collection, compacts it as the
// publish path does (no graph), then runs maintenance until nothing is
// left: tiered merges and HNSW graphs with default parameters on every
// core.
func (f *fixture) graph(tb testing.TB) {
	f.data(tb)
	f.openStore(tb)
	f.sGraph.run(tb, func() error {
		var err error
		if f.writeDur, err = f.writeDeltas(collGraph); err != nil {
			return err
		}
		if f.cache, err = f.newCache("cache-compactor"); err != nil {
			return err
		}
		var res vector.CompactResult
		f.compactDur, f.compactVersions, res, err = f.compactAll(collGraph, f.cache, vector.CompactOptions{})
		if err != nil {
			return err
		}
		f.compactSegments = res.Segments
		if res.Records != f.n {
			return fmt.Errorf("compact: %d live records, want %d", res.Records, f.n)
		}
		start := time.Now()
		f.maintained, err = f.store.Maintain(f.ctx, collGraph, f.cache, vector.MaintainOptions{Lock: f.lock(collGraph)})
		if err != nil {
			return err
		}
		f.maintainDur = time.Since(start)
		m, err := f.store.Manifest(f.ctx, collGraph)
		if err != nil {
			return err
		}
		f.segments, f.records = len(m.Segments), m.Records
		for _, si := range m.Segments {
			if si.HasGraph() {
				f.graphSegments++
			}
		}
		if f.records != f.n {
			return fmt.Errorf("maintain: %d live records, want %d", f.records, f.n)
		}
		tb.Logf("%v: wrote %d deltas in %v; compacted into %d versions, %d segments, in %v; maintained in %v (%d merges, %d graphs) into %d segments", f.spec,
			(f.n+deltaSize-1)/deltaSize, f.writeDur.Round(time.Millisecond), f.compactVersions, f.compactSegments, f.compactDur.Round(time.Millisecond),
			f.maintainDur.Round(time.Millisecond), f.maintained.Merges, f.maintained.Graphs+f.maintained.Merges, f.segments)
		return nil
	})
}

// lock takes coll's compaction lease for one maintenance publish.
func (f *fixture) lock(coll string) func(context.Context) (*lease.Lease, error) {
	return func(ctx context.Context) (*lease.Lease, error) {
		return lease.Acquire(ctx, f.tbl, coll+"#compaction", "vectorbench-maintain", time.Minute, lease.Options{})
	}
}

// open cold-opens a reader of the searched collection on an empty cache
// directory, counts what it fetched, and runs the queries once.
func (f *fixture) open(tb testing.TB) {
	f.graph(tb)
	f.sOpen.run(tb, func() error {
		if err := f.progressiveOpen(); err != nil {
			return err
		}
		rss0 := residentBytes()
		start := time.Now()
		c, err := f.newCache("cache-reader")
		if err != nil {
			return err
		}
		r, err := f.store.OpenReader(f.ctx, collGraph, c)
		if err != nil {
			c.Close()
			return err
		}
		f.coldOpen = time.Since(start)
		f.rcache, f.reader = c, r
		f.coldB, f.coldF = c.Fetched()
		// The first pass over the queries touches the mapped segments'
		// pages for the first time (page faults); it is reported here, so
		// the search rows measure the steady state.
		f.searchTally(tb, 0, &f.firstLat)
		f.readerRSS = residentBytes() - rss0
		return nil
	})
}

// firstBytes is what a progressive open loads before it answers.
const firstBytes = 64 << 20

// progressiveOpen cold-opens a reader with ReaderOptions.FirstBytes on an
// empty cache and times its first answer; the reader is closed again.
func (f *fixture) progressiveOpen() error {
	dir := "cache-progressive"
	c, err := f.newCache(dir)
	if err != nil {
		return err
	}
	defer func() {
		c.Close()
		os.RemoveAll(filepath.Join(f.dir, dir))
	}()
	start := time.Now()
	r, err := f.store.OpenReaderWith(f.ctx, collGraph, c, vector.ReaderOptions{FirstBytes: firstBytes})
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := r.Search(f.ctx, f.query(0), vector.SearchOptions{K: topK}); err != nil {
		return err
	}
	f.firstAnswer = time.Since(start)
	f.firstAnswerB, _ = c.Fetched()
	<-r.Loaded() // let the background load finish before the cache closes
	return nil
}

// residentBytes is the process's resident set (VmRSS), 0 where /proc is
// missing.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// chromemColl loads the same vectors into a chromem-go collection whose
// embedding function fails the benchmark if it is ever called.
func (f *fixture) chromemColl(tb testing.TB) {
	f.data(tb)
	f.sChromem.run(tb, func() error {
		start := time.Now()
		db := chromem.NewDB()
		col, err := db.CreateCollection("bench", nil, func(context.Context, string) ([]float32, error) {
			return nil, errors.New("chromem embedding func called: every document and query must carry its embedding")
		})
		if err != nil {
			return err
		}
		// AddDocument one by one: AddDocuments starts a goroutine per
		// document, which at 1M costs gigabytes of stacks.
		for i := range f.n {
			if err := col.AddDocument(f.ctx, chromem.Document{ID: rowID(i), Embedding: f.row(i)}); err != nil {
				return err
			}
		}
		f.col, f.chromemAdd = col, time.Since(start)
		return nil
	})
}

// searchTally runs every query through the reader, appending latencies to
// lat, and returns the answers as row indices.
func (f *fixture) searchTally(tb testing.TB, ef int, lat *[]time.Duration) [][]int {
	out := make([][]int, numQueries)
	for i := range numQueries {
		t0 := time.Now()
		hits, err := f.reader.Search(f.ctx, f.query(i), vector.SearchOptions{K: topK, Ef: ef})
		*lat = append(*lat, time.Since(t0))
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = make([]int, len(hits))
		for j, h := range hits {
			out[i][j] = rowIndex(h.ID)
		}
	}
	return out
}

// searchChromem runs every query through chromem-go's exact search.
func (f *fixture) searchChromem(tb testing.TB, lat *[]time.Duration) [][]int {
	out := make([][]int, numQueries)
	for i := range numQueries {
		t0 := time.Now()
		res, err := f.col.QueryEmbedding(f.ctx, f.query(i), topK, nil, nil)
		*lat = append(*lat, time.Since(t0))
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = make([]int, len(res))
		for j, r := range res {
			out[i][j] = rowIndex(r.ID)
		}
	}
	return out
}

// meanRecall is the mean of recallAt over every query.
func (f *fixture) meanRecall(got [][]int) float64 {
	var sum float64
	for i, g := range got {
		sum += recallAt(f.vecs, f.dims, f.query(i), f.truth[i], g)
	}
	return sum / float64(len(got))
}

// recallAt is recall@k of got (row indices, best first) against exact (the
// exact top-k of query over vecs): the fraction of the k exact places that
// got fills with a correct record. A returned row is correct when it is in
// exact or when its exact score is within tieEps of the k-th exact score
// (a tie); each row counts once, and rows past the k-th are ignored.
func recallAt(vecs []float32, dims int, query []float32, exact []ann.Hit, got []int) float64 {
	if len(exact) == 0 {
		return 1
	}
	want := make(map[int]bool, len(exact))
	for _, h := range exact {
		want[h.Index] = true
	}
	kth := exact[len(exact)-1].Score
	seen := map[int]bool{}
	hits := 0
	for _, idx := range got[:min(len(got), len(exact))] {
		if idx < 0 || idx*dims >= len(vecs) || seen[idx] {
			continue
		}
		seen[idx] = true
		if want[idx] || dot(query, vecs[idx*dims:(idx+1)*dims]) >= kth-tieEps {
			hits++
		}
	}
	return float64(hits) / float64(len(exact))
}

func dot(a, b []float32) float32 {
	var s float32
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of lat,
// in milliseconds; it sorts a copy.
func percentile(lat []time.Duration, p float64) float64 {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	rank := int(float64(len(s))*p/100+0.999999) - 1
	rank = min(max(rank, 0), len(s)-1)
	return float64(s[rank]) / float64(time.Millisecond)
}

// warmRefresh writes one more small delta (new records, re-upserts and
// deletes of existing ids), compacts it with a compactor whose cache is
// empty (a freshly started worker), refreshes the warm reader and counts
// the bytes each fetched against the bytes that were new.
func (f *fixture) warmRefresh(tb testing.TB) {
	f.open(tb)
	f.sWarm.run(tb, func() error {
		before, err := listSizes(f.ctx, f.blob, "vectors/"+collGraph+"/")
		if err != nil {
			return err
		}
		var recs []vector.Record
		d := f.dims
		for j := range extraNew + extraUpdates {
			id := fmt.Sprintf("x%07d", j)
			if j >= extraNew {
				id = rowID((j - extraNew) * (f.n / extraUpdates)) // re-upsert an existing id
			}
			recs = append(recs, vector.Record{ID: id, Vector: f.extra[j*d : (j+1)*d], Meta: map[string]any{"receipt_id": "rcpt-extra"}})
		}
		var dels []string
		for j := range extraDeletes {
			dels = append(dels, rowID((j*(f.n/extraDeletes)+f.n/(2*extraDeletes))%f.n))
		}
		head, err := f.store.Manifest(f.ctx, collGraph)
		if err != nil {
			return err
		}
		for _, si := range head.Segments {
			f.warm.sidecarB += si.IDsBytes
		}
		written := time.Now()
		if _, err := f.store.WriteDelta(f.ctx, collGraph, "run-extra", recs, dels); err != nil {
			return err
		}
		// Searchable as a pending delta: the warm reader refreshes and
		// finds the first new record by its own vector.
		if err := f.reader.Refresh(f.ctx); err != nil {
			return err
		}
		if err := f.findExtra(0); err != nil {
			return err
		}
		f.warm.searchable = time.Since(written)
		cc, err := f.newCache("cache-compactor-2")
		if err != nil {
			return err
		}
		defer func() {
			cc.Close()
			os.RemoveAll(filepath.Join(f.dir, "cache-compactor-2"))
		}()
		var res vector.CompactResult
		f.warm.compact, _, res, err = f.compactAll(collGraph, cc, vector.CompactOptions{})
		if err != nil {
			return err
		}
		f.warm.compactorB, f.warm.compactorF = cc.Fetched()
		if want := f.n + extraNew - extraDeletes; res.Records != want {
			return fmt.Errorf("extra compaction: %d live records, want %d", res.Records, want)
		}
		after, err := listSizes(f.ctx, f.blob, "vectors/"+collGraph+"/")
		if err != nil {
			return err
		}
		for k, size := range after {
			if _, old := before[k]; old || !strings.HasSuffix(k, ".seg") {
				continue
			}
			if strings.Contains(k, "/deltas/") {
				f.warm.newDeltaB += size
			} else {
				f.warm.newSegB += size
			}
		}
		b0, f0 := f.rcache.Fetched()
		start := time.Now()
		if err := f.reader.Refresh(f.ctx); err != nil {
			return err
		}
		f.warm.refresh = time.Since(start)
		if err := f.findExtra(0); err != nil {
			return err
		}
		f.warm.searchableCompacted = time.Since(written)
		b1, f1 := f.rcache.Fetched()
		f.warm.fetchedB, f.warm.fetchedF = b1-b0, f1-f0
		f.warm.versionSeg = int64(res.Segments)
		for k, size := range after {
			if strings.Contains(k, "/segments/") {
				f.warm.versionB += size
			}
		}
		return f.checkExtra()
	})
}

// findExtra fails unless the reader finds extra record j by its vector.
func (f *fixture) findExtra(j int) error {
	d := f.dims
	want := fmt.Sprintf("x%07d", j)
	hits, err := f.reader.Search(f.ctx, f.extra[j*d:(j+1)*d], vector.SearchOptions{K: topK})
	if err != nil {
		return err
	}
	for _, h := range hits {
		if h.ID == want || h.Score >= 0.9999 {
			return nil
		}
	}
	return fmt.Errorf("extra record %s not found: %v", want, hits)
}

// checkExtra verifies that the refreshed reader answers with the extra
// delta applied: new and re-upserted records are found by their own
// vectors, deleted ones are gone.
func (f *fixture) checkExtra() error {
	d := f.dims
	for j := range extraNew + extraUpdates {
		want := fmt.Sprintf("x%07d", j)
		if j >= extraNew {
			want = rowID((j - extraNew) * (f.n / extraUpdates))
		}
		hits, err := f.reader.Search(f.ctx, f.extra[j*d:(j+1)*d], vector.SearchOptions{K: topK})
		if err != nil {
			return err
		}
		// Found, or hidden behind k exact duplicates (receipt lines).
		found, dups := 0, 0
		for _, h := range hits {
			if h.ID == want {
				found++
			}
			if h.Score >= 0.9999 {
				dups++
			}
		}
		if found > 1 {
			return fmt.Errorf("after refresh, re-upserted %s is returned %d times", want, found)
		}
		if found == 0 && dups < topK {
			return fmt.Errorf("after refresh, searching extra record %s by its vector gives %v", want, hits)
		}
	}
	for j := range extraDeletes {
		i := (j*(f.n/extraDeletes) + f.n/(2*extraDeletes)) % f.n
		hits, err := f.reader.Search(f.ctx, f.row(i), vector.SearchOptions{K: topK})
		if err != nil {
			return err
		}
		for _, h := range hits {
			if h.ID == rowID(i) {
				return fmt.Errorf("after refresh, deleted %s is still returned", h.ID)
			}
		}
	}
	return nil
}

// listSizes maps every key under prefix to its size.
func listSizes(ctx context.Context, b blob.Store, prefix string) (map[string]int64, error) {
	out := map[string]int64{}
	opts := blob.ListOptions{Prefix: prefix}
	for {
		p, err := b.List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, o := range p.Objects {
			out[o.Key] = o.Size
		}
		if p.NextToken == "" {
			return out, nil
		}
		opts.Token = p.NextToken
	}
}

// close releases the fixture's memory, maps and files.
func (f *fixture) close() {
	if f.rcache != nil {
		f.rcache.Close()
	}
	if f.cache != nil {
		f.cache.Close()
	}
	if f.tbl != nil {
		f.tbl.Close()
	}
	if f.dir != "" {
		os.RemoveAll(f.dir)
	}
	f.vecs, f.queries, f.extra, f.lines, f.truth = nil, nil, nil, nil, nil
	f.reader, f.rcache, f.cache, f.col, f.store, f.tbl, f.blob = nil, nil, nil, nil, nil, nil, nil
	runtime.GC()
	debug.FreeOSMemory()
}
