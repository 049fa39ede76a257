package purge_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	blobfile "github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/compaction"
	"github.com/tallyhq/tally/embed/hashed"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/label/rules"
	"github.com/tallyhq/tally/merchant"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/ocrstage"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/process"
	"github.com/tallyhq/tally/purge"
	"github.com/tallyhq/tally/queue"
	queuesqlite "github.com/tallyhq/tally/queue/sqlite"
	"github.com/tallyhq/tally/renditions"
	"github.com/tallyhq/tally/upload"
	"github.com/tallyhq/tally/vector"
)

// env is the whole pipeline on embedded backends: uploads through the
// external-OCR path, the process stage with renditions (into a store of
// their own), labels and merchants, the vector store and a compactor.
type env struct {
	dir     string
	items   items.Table
	blob    *flakyBlob // raw uploads, OCR results, crops (and vectors underneath)
	assets  blob.Store // renditions
	queues  pipeline.Queues
	vectors *vector.Store
	cache   *vector.Cache
	upload  *upload.Service
	worker  *process.Worker
}

// flakyBlob is the real file store whose deletes fail once a budget is
// spent: a purge killed part-way through its blobs.
type flakyBlob struct {
	blob.Store
	mu      sync.Mutex
	limited bool
	budget  int
}

func (f *flakyBlob) failAfter(n int) {
	f.mu.Lock()
	f.limited, f.budget = true, n
	f.mu.Unlock()
}

func (f *flakyBlob) heal() {
	f.mu.Lock()
	f.limited = false
	f.mu.Unlock()
}

func (f *flakyBlob) Delete(ctx context.Context, key string) error {
	f.mu.Lock()
	if f.limited {
		if f.budget == 0 {
			f.mu.Unlock()
			return errors.New("injected: connection reset by peer")
		}
		f.budget--
	}
	f.mu.Unlock()
	return f.Store.Delete(ctx, key)
}

// flakyTable is the real table whose batch writes fail after n of them.
type flakyTable struct {
	items.Table
	mu     sync.Mutex
	budget int
}

func (f *flakyTable) BatchWrite(ctx context.Context, puts []items.Item, deletes []items.Key) error {
	f.mu.Lock()
	if f.budget == 0 {
		f.mu.Unlock()
		return errors.New("injected: throughput exceeded")
	}
	f.budget--
	f.mu.Unlock()
	return f.Table.BatchWrite(ctx, puts, deletes)
}

func setup(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	tbl, err := itemssqlite.Open(ctx, filepath.Join(dir, "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	fs, err := blobfile.Open(filepath.Join(dir, "blobs"), blobfile.Options{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	assets, err := blobfile.Open(filepath.Join(dir, "assets"), blobfile.Options{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	broker, err := queuesqlite.Open(ctx, filepath.Join(dir, "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	qs, err := pipeline.EnsureQueues(ctx, broker)
	if err != nil {
		t.Fatal(err)
	}
	emb, err := hashed.New(64)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := vector.New(vector.Options{Blob: fs, Items: tbl, Dims: emb.Dims()})
	if err != nil {
		t.Fatal(err)
	}
	vc, err := vector.OpenCache(ctx, fs, vector.CacheOptions{Dir: filepath.Join(dir, "vcache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vc.Close)
	bs := &flakyBlob{Store: fs}
	quiet := slog.New(slog.DiscardHandler)
	up, err := upload.New(upload.Config{Store: ocrstage.Store{Items: tbl, Blob: bs, Bucket: "local", Results: qs.OCRResults}, Jobs: qs.OCRJobs, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	w, err := process.New(process.Config{Items: tbl, Blob: bs, Embedder: emb, Vectors: vs, Results: qs.OCRResults,
		Compaction: qs.Compaction, Log: quiet, Assets: assets,
		Renditions: &renditions.Options{Formats: []renditions.Format{renditions.JPEG}, Sizes: []int{300, 0}},
		Labels:     &label.Pipeline{Rules: rules.New()},
		Merchant:   &merchant.Resolver{Items: tbl, Log: quiet},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{dir: dir, items: tbl, blob: bs, assets: assets, queues: qs, vectors: vs, cache: vc, upload: up, worker: w}
}

func (e *env) config() purge.Config {
	return purge.Config{Items: e.items, Blob: e.blob, Assets: e.assets, Vectors: e.vectors, Compaction: e.queues.Compaction}
}

// The blank image paired with the scan's OCR result, a quarter of the
// scan's size on each side (as in the process stage's tests).
const scanWidth, scanHeight = 620, 877

// blankScan is a white PNG whose bytes differ with seed and whose pixels
// do not, so that every seed is a new upload of the same image.
func blankScan(t testing.TB, seed int) []byte {
	t.Helper()
	img := fixtures.BlankPNG(t, scanWidth, scanHeight)
	const afterIHDR = 8 + 4 + 4 + 13 + 4
	text := []byte("Comment\x00seed " + strconv.Itoa(seed))
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(text)))
	chunk = append(append(chunk, "tEXt"...), text...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	return slices.Concat(img[:afterIHDR], chunk, img[afterIHDR:])
}

// submit feeds the old system's real scan result through the external OCR
// path for each seed, then processes every result.
func (e *env) submit(t *testing.T, seeds ...int) []upload.Accepted {
	t.Helper()
	ctx := context.Background()
	result, err := os.ReadFile(fixtures.Path(t, "portfolio", "scan_2f05267d.vision.json"))
	if err != nil {
		t.Fatal(err)
	}
	var accs []upload.Accepted
	for _, s := range seeds {
		acc, err := e.upload.SubmitOCR(ctx, "scan.png", blankScan(t, s), result, false)
		if err != nil {
			t.Fatal(err)
		}
		if acc.Duplicate {
			t.Fatalf("seed %d: a duplicate of %s", s, acc.ImageID)
		}
		accs = append(accs, acc)
	}
	for done := 0; done < len(seeds); {
		msgs, err := e.queues.OCRResults.Receive(ctx, queue.ReceiveOptions{Max: queue.MaxBatch, Visibility: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			t.Fatalf("ocr-results: %d of %d results", done, len(seeds))
		}
		for i, err := range e.worker.HandleBatch(ctx, msgs) {
			if err != nil {
				t.Fatalf("process record %d: %v", i, err)
			}
		}
		e.ack(t, e.queues.OCRResults, msgs)
		done += len(msgs)
	}
	return accs
}

func (e *env) ack(t *testing.T, q queue.Queue, msgs []queue.Message) {
	t.Helper()
	handles := make([]string, len(msgs))
	for i, m := range msgs {
		handles[i] = m.ReceiptHandle
	}
	errs, err := q.DeleteBatch(context.Background(), handles)
	if err == nil {
		err = errors.Join(errs...)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// compactionMessages receives every message on the compaction queue.
func (e *env) compactionMessages(t *testing.T) []queue.Message {
	t.Helper()
	var all []queue.Message
	for {
		msgs, err := e.queues.Compaction.Receive(context.Background(), queue.ReceiveOptions{Max: queue.MaxBatch, Visibility: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			return all
		}
		all = append(all, msgs...)
	}
}

// compact runs a real compactor on msgs; every one must succeed.
func (e *env) compact(t *testing.T, msgs []queue.Message) {
	t.Helper()
	for i, err := range e.compactErrs(t, msgs) {
		if err != nil {
			t.Fatalf("compaction message %s: %v", msgs[i].Body, err)
		}
	}
}

// compactErrs runs a real compactor on msgs, deletes those that
// succeeded, and returns each one's error.
func (e *env) compactErrs(t *testing.T, msgs []queue.Message) []error {
	t.Helper()
	w, err := compaction.New(compaction.Config{Store: e.vectors, Cache: e.cache, Items: e.items, RescueEvery: -1, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	for chunk := range slices.Chunk(msgs, queue.MaxBatch) {
		cerrs := w.HandleMessages(context.Background(), chunk)
		var done []queue.Message
		for i, err := range cerrs {
			if err == nil {
				done = append(done, chunk[i])
			}
		}
		if len(done) > 0 {
			e.ack(t, e.queues.Compaction, done)
		}
		errs = append(errs, cerrs...)
	}
	return errs
}

// vectorIDs returns the ids of the image's live records by collection, as
// a fresh reader sees them.
func (e *env) vectorIDs(t *testing.T, imageID string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	out := map[string][]string{}
	for _, coll := range []string{vector.CollectionLines, vector.CollectionWords} {
		rd, err := e.vectors.OpenReader(ctx, coll, e.cache)
		if err != nil {
			t.Fatal(err)
		}
		if p := rd.Problems(); len(p) > 0 {
			t.Fatalf("reader of %s: %v", coll, p)
		}
		ids := []string{}
		if err := rd.Scan(ctx, func(r vector.Record) bool {
			if strings.HasPrefix(r.ID, "IMAGE#"+imageID+"#") {
				ids = append(ids, r.ID)
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
		sort.Strings(ids)
		out[coll] = ids
	}
	return out
}

// partition returns the image's items.
func (e *env) partition(t *testing.T, imageID string) []items.Item {
	t.Helper()
	all, err := items.QueryAll(context.Background(), e.items, items.Query{PK: "IMAGE#" + imageID})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func typeCounts(all []items.Item) map[string]int {
	out := map[string]int{}
	for _, it := range all {
		typ, _ := it[items.AttrType].(string)
		out[typ]++
	}
	return out
}

// blobKeys lists every object under the image's prefixes, in both stores.
func (e *env) blobKeys(t *testing.T, imageID string) []string {
	t.Helper()
	var keys []string
	for _, s := range []blob.Store{e.blob, e.assets} {
		for _, prefix := range []string{"raw-receipts/", "ocr-results/", "ocr-receipts/", "assets/"} {
			opts := blob.ListOptions{Prefix: prefix + imageID + "/"}
			for {
				page, err := s.List(context.Background(), opts)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range page.Objects {
					keys = append(keys, o.Key)
				}
				if page.NextToken == "" {
					break
				}
				opts.Token = page.NextToken
			}
		}
	}
	sort.Strings(keys)
	return keys
}

// snapshot is everything of one image, to show it untouched.
func (e *env) snapshot(t *testing.T, acc upload.Accepted) string {
	t.Helper()
	owner, err := ocrjob.LookupSHA256(context.Background(), e.items, "", acc.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{
		"partition": e.partition(t, acc.ImageID), "blobs": e.blobKeys(t, acc.ImageID),
		"vectors": e.vectorIDs(t, acc.ImageID), "sha256": owner,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (e *env) runStatus(t *testing.T, imageID string) string {
	t.Helper()
	it, err := e.items.Get(context.Background(), purge.RunKey(imageID))
	if err != nil {
		t.Fatalf("purge run of %s: %v", imageID, err)
	}
	s, _ := it["status"].(string)
	return s
}

// TestPurge pushes two real images through the pipeline and compacts
// them, purges one, and checks that nothing of it is left in the table,
// the blob stores or (before and after the compactor applies the purge)
// the vector store, that the other is untouched, that a second purge is
// ErrNotFound and that the same bytes can be uploaded again.
func TestPurge(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	accs := e.submit(t, 0, 1)
	a, b := accs[0], accs[1]
	e.compact(t, e.compactionMessages(t)) // the process runs: a published version to mask

	before := typeCounts(e.partition(t, a.ImageID))
	for _, typ := range []string{"IMAGE", "LINE", "WORD", "LETTER", "RECEIPT", "RECEIPT_LINE", "RECEIPT_WORD", "RECEIPT_LETTER",
		"RECEIPT_ROW", "RECEIPT_PLACE", "RECEIPT_WORD_LABEL", "RECEIPT_SUMMARY", "RECEIPT_LINE_ITEM", "OCR_JOB", "OCR_ROUTING_DECISION", "COMPACTION_RUN"} {
		if before[typ] == 0 {
			t.Errorf("the processed image has no %s item (%v): the test does not cover it", typ, before)
		}
	}
	vecA := e.vectorIDs(t, a.ImageID)
	if len(vecA[vector.CollectionLines]) == 0 || len(vecA[vector.CollectionWords]) == 0 {
		t.Fatalf("image has vectors %v", vecA)
	}
	blobsA := e.blobKeys(t, a.ImageID)
	for _, prefix := range []string{"raw-receipts/", "ocr-results/", "ocr-receipts/", "assets/"} {
		if !slices.ContainsFunc(blobsA, func(k string) bool { return strings.HasPrefix(k, prefix+a.ImageID+"/") }) {
			t.Errorf("no blob under %s%s/: %v", prefix, a.ImageID, blobsA)
		}
	}
	untouched := e.snapshot(t, b)

	rep, err := purge.Image(ctx, e.config(), a.ImageID)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	want := maps(before, map[string]int{"IMAGE_SHA256": 1})
	if got, _ := json.Marshal(rep.Items); string(got) != string(mustJSON(want)) {
		t.Errorf("report items = %s, want %s", got, mustJSON(want))
	}
	if !slices.Equal(rep.Blobs, blobsA) {
		t.Errorf("report blobs = %v, want %v", rep.Blobs, blobsA)
	}
	if rep.CompactionRun != purge.RunID(a.ImageID) {
		t.Errorf("compaction run %q, want %q", rep.CompactionRun, purge.RunID(a.ImageID))
	}
	// Every receipt word, and every receipt line (the rows' first lines
	// among them), is named.
	if rep.Vectors[vector.CollectionWords] != before["RECEIPT_WORD"] || rep.Vectors[vector.CollectionLines] != before["RECEIPT_LINE"] {
		t.Errorf("report vectors = %v, want %d lines and %d words", rep.Vectors, before["RECEIPT_LINE"], before["RECEIPT_WORD"])
	}
	s := rep.String()
	for _, part := range []string{"removed 1 image, 40 lines, 104 words", "1 OCR job", "1 sha256 claim",
		strconv.Itoa(len(blobsA)) + " blobs", "144 vector records", rep.CompactionRun} {
		if !strings.Contains(s, part) {
			t.Errorf("summary %q lacks %q", s, part)
		}
	}

	if left := e.partition(t, a.ImageID); len(left) != 0 {
		t.Errorf("partition still holds %d items: %v", len(left), typeCounts(left))
	}
	if _, err := ocrjob.LookupSHA256(ctx, e.items, "", a.SHA256); !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("sha256 claim after purge: %v", err)
	}
	if left := e.blobKeys(t, a.ImageID); len(left) != 0 {
		t.Errorf("blobs left: %v", left)
	}
	for _, k := range rep.Blobs {
		_, err1 := e.blob.Head(ctx, k)
		_, err2 := e.assets.Head(ctx, k)
		if !errors.Is(err1, tally.ErrNotFound) || !errors.Is(err2, tally.ErrNotFound) {
			t.Errorf("blob %s still there: %v, %v", k, err1, err2)
		}
	}
	// Readers stop seeing the records as soon as the delete delta is
	// registered, before any compaction.
	for coll, ids := range e.vectorIDs(t, a.ImageID) {
		if len(ids) != 0 {
			t.Errorf("before compaction a reader still returns %d %s records of the purged image", len(ids), coll)
		}
	}

	msgs := e.compactionMessages(t)
	if len(msgs) != 1 {
		t.Fatalf("compaction queue holds %d messages, want the purge's one", len(msgs))
	}
	m, err := compaction.Decode(msgs[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	if m.RunID != rep.CompactionRun || !slices.Equal(m.Collections, []string{vector.CollectionLines, vector.CollectionWords}) {
		t.Errorf("compaction message = %+v", m)
	}
	if st := e.runStatus(t, a.ImageID); st != compaction.StatusPending {
		t.Errorf("purge run is %s before compaction", st)
	}
	e.compact(t, msgs)
	if st := e.runStatus(t, a.ImageID); st != compaction.StatusCompleted {
		t.Errorf("purge run is %s after compaction", st)
	}
	for _, coll := range m.Collections {
		d, err := e.vectors.RunDelta(ctx, coll, rep.CompactionRun)
		if err != nil || d.AppliedVersion == 0 {
			t.Errorf("%s delete delta = %+v, %v: not applied", coll, d, err)
		}
	}
	for coll, ids := range e.vectorIDs(t, a.ImageID) {
		if len(ids) != 0 {
			t.Errorf("after compaction a reader still returns %d %s records of the purged image", len(ids), coll)
		}
	}
	if now := e.snapshot(t, b); now != untouched {
		t.Errorf("the other image changed:\nbefore %s\nafter  %s", untouched, now)
	}

	// A second purge: the image no longer exists, and nothing is sent.
	if _, err := purge.Image(ctx, e.config(), a.ImageID); !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("second purge: %v, want ErrNotFound", err)
	}
	if left := e.compactionMessages(t); len(left) != 0 {
		t.Errorf("second purge sent %d compaction messages", len(left))
	}

	// The same bytes are a new image, not a duplicate of the purged one.
	again := e.submit(t, 0)[0]
	if again.ImageID == a.ImageID || again.SHA256 != a.SHA256 {
		t.Errorf("re-upload = %+v", again)
	}
}

func maps(a, b map[string]int) map[string]int {
	out := map[string]int{}
	for _, m := range []map[string]int{a, b} {
		for k, v := range m {
			out[k] += v
		}
	}
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestInterrupted kills purges part-way — after some blob deletes, and
// after some item batches — and checks that the image stays findable and a
// second call finishes the job, with the same compaction run, while an
// image that is not purged keeps everything.
func TestInterrupted(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	accs := e.submit(t, 10, 11, 12, 13, 14)
	e.compact(t, e.compactionMessages(t))
	keep := accs[len(accs)-1]
	untouched := e.snapshot(t, keep)
	cases := []struct {
		name          string
		blobs, batchs int // deletes allowed before the failure; -1 unlimited
	}{
		{"no blob deleted", 0, -1},
		{"two blobs deleted", 2, -1},
		{"one item batch deleted", -1, 1},
		{"all but the image item", -1, -2}, // fail only the image item's delete
	}
	var runs []string
	for i, c := range cases {
		acc := accs[i]
		before := typeCounts(e.partition(t, acc.ImageID))
		wantBlobs := e.blobKeys(t, acc.ImageID)
		cfg := e.config()
		var ft *flakyTable
		var failImage *failingDelete
		switch {
		case c.batchs >= 0:
			ft = &flakyTable{Table: e.items, budget: c.batchs}
			cfg.Items = ft
		case c.batchs == -2:
			failImage = &failingDelete{Table: e.items, key: ocrjob.ImageKey(acc.ImageID)}
			cfg.Items = failImage
		}
		if c.blobs >= 0 {
			e.blob.failAfter(c.blobs)
		}
		first, err := purge.Image(ctx, cfg, acc.ImageID)
		e.blob.heal()
		if err == nil {
			t.Fatalf("%s: the interrupted purge succeeded", c.name)
		}
		t.Logf("%s: %v; %s", c.name, err, first)
		if _, err := e.items.Get(ctx, ocrjob.ImageKey(acc.ImageID)); err != nil {
			t.Errorf("%s: image item after the interrupted purge: %v", c.name, err)
		}
		if c.blobs >= 0 && len(first.Blobs) != c.blobs {
			t.Errorf("%s: first call reports %d blobs, want %d", c.name, len(first.Blobs), c.blobs)
		}

		second, err := purge.Image(ctx, e.config(), acc.ImageID)
		if err != nil {
			t.Fatalf("%s: re-run: %v", c.name, err)
		}
		if left := e.partition(t, acc.ImageID); len(left) != 0 {
			t.Errorf("%s: partition holds %v", c.name, typeCounts(left))
		}
		if left := e.blobKeys(t, acc.ImageID); len(left) != 0 {
			t.Errorf("%s: blobs left: %v", c.name, left)
		}
		if _, err := ocrjob.LookupSHA256(ctx, e.items, "", acc.SHA256); !errors.Is(err, tally.ErrNotFound) {
			t.Errorf("%s: sha256 claim: %v", c.name, err)
		}
		if second.CompactionRun != first.CompactionRun || second.CompactionRun != purge.RunID(acc.ImageID) {
			t.Errorf("%s: runs %q then %q", c.name, first.CompactionRun, second.CompactionRun)
		}
		if second.Vectors[vector.CollectionWords] != before["RECEIPT_WORD"] {
			t.Errorf("%s: re-run reports vectors %v", c.name, second.Vectors)
		}
		// Between them the two calls removed everything, once.
		if got, want := mustJSON(maps(first.Items, second.Items)), mustJSON(maps(before, map[string]int{"IMAGE_SHA256": 1})); string(got) != string(want) {
			t.Errorf("%s: items removed %s, want %s", c.name, got, want)
		}
		if got := append(slices.Clone(first.Blobs), second.Blobs...); !slices.Equal(sorted(got), wantBlobs) {
			t.Errorf("%s: blobs removed %v, want %v", c.name, sorted(got), wantBlobs)
		}
		runs = append(runs, second.CompactionRun)
	}

	// Each purge sent its message on each call; the compactor completes
	// every run, duplicates included, and no record of a purged image is
	// left.
	msgs := e.compactionMessages(t)
	e.compact(t, msgs)
	for i, run := range runs {
		if st := e.runStatus(t, accs[i].ImageID); st != compaction.StatusCompleted {
			t.Errorf("run %s is %s", run, st)
		}
		for coll, ids := range e.vectorIDs(t, accs[i].ImageID) {
			if len(ids) != 0 {
				t.Errorf("%s: %d %s records left", cases[i].name, len(ids), coll)
			}
		}
	}
	if now := e.snapshot(t, keep); now != untouched {
		t.Errorf("the image not purged changed:\nbefore %s\nafter  %s", untouched, now)
	}
	if v := e.vectorIDs(t, keep.ImageID); len(v[vector.CollectionLines]) == 0 || len(v[vector.CollectionWords]) == 0 {
		t.Errorf("the image not purged lost its vectors: %v", v)
	}
}

// TestPendingProcessRun purges an image whose processing run the
// compactor has not applied yet: readers stop seeing its records at once
// (the purge's delta is registered after the processing run's), and
// compaction of both leaves none. The processing run's item went with the
// partition, so its message fails as ErrNotFound (and, retried, goes to the
// dead-letter queue); the purge run and the other image's run complete.
func TestPendingProcessRun(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	accs := e.submit(t, 20, 21)
	a, b := accs[0], accs[1]
	rep, err := purge.Image(ctx, e.config(), a.ImageID)
	if err != nil {
		t.Fatal(err)
	}
	for coll, ids := range e.vectorIDs(t, a.ImageID) {
		if len(ids) != 0 {
			t.Errorf("a reader returns %d %s records of the purged image while both runs are pending", len(ids), coll)
		}
	}
	msgs := e.compactionMessages(t)
	if len(msgs) != 3 {
		t.Fatalf("%d compaction messages, want 2 processing runs and the purge", len(msgs))
	}
	for i, err := range e.compactErrs(t, msgs) {
		m, _ := compaction.Decode(msgs[i].Body)
		switch {
		case m.ImageID == a.ImageID:
			if !errors.Is(err, tally.ErrNotFound) {
				t.Errorf("the purged image's processing run: %v, want ErrNotFound", err)
			}
		case err != nil:
			t.Errorf("run %s of %s: %v", m.RunID, m.ImageID, err)
		}
	}
	if st := e.runStatus(t, a.ImageID); st != compaction.StatusCompleted || rep.CompactionRun == "" {
		t.Errorf("purge run %q is %s", rep.CompactionRun, st)
	}
	for coll, ids := range e.vectorIDs(t, a.ImageID) {
		if len(ids) != 0 {
			t.Errorf("after compaction %d %s records of the purged image are left", len(ids), coll)
		}
	}
	if v := e.vectorIDs(t, b.ImageID); len(v[vector.CollectionLines]) == 0 || len(v[vector.CollectionWords]) == 0 {
		t.Errorf("the other image lost its vectors: %v", v)
	}
}

// failingDelete is the real table failing the delete of one key.
type failingDelete struct {
	items.Table
	key items.Key
}

func (f *failingDelete) Delete(ctx context.Context, key items.Key, cond items.Cond) error {
	if key == f.key {
		return errors.New("injected: request timed out")
	}
	return f.Table.Delete(ctx, key, cond)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// TestUploadOnly purges images that never got past upload (an OCR job, a
// raw upload and a sha256 claim; no image item, no vectors), one of them a
// forced upload of the same bytes, whose purge must leave the other's
// claim alone.
func TestUploadOnly(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	data := fixtures.BlankPNG(t, 40, 60)
	first, err := e.upload.Ingest(ctx, "a.png", data, false)
	if err != nil {
		t.Fatal(err)
	}
	forced, err := e.upload.Ingest(ctx, "a.png", data, true)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := purge.Image(ctx, e.config(), forced.ImageID)
	if err != nil {
		t.Fatal(err)
	}
	if string(mustJSON(rep.Items)) != `{"OCR_JOB":1}` || !slices.Equal(rep.Blobs, []string{forced.S3Key}) || rep.CompactionRun != "" || len(rep.Vectors) != 0 {
		t.Errorf("forced upload's purge = %+v", rep)
	}
	if owner, err := ocrjob.LookupSHA256(ctx, e.items, "", first.SHA256); err != nil || owner != first.ImageID {
		t.Errorf("the first upload's claim after purging the forced one: %q, %v", owner, err)
	}
	rep, err = purge.Image(ctx, e.config(), first.ImageID)
	if err != nil {
		t.Fatal(err)
	}
	if string(mustJSON(rep.Items)) != `{"IMAGE_SHA256":1,"OCR_JOB":1}` || !slices.Equal(rep.Blobs, []string{first.S3Key}) {
		t.Errorf("first upload's purge = %+v", rep)
	}
	if got, want := rep.String(), "image "+first.ImageID+": removed 1 OCR job, 1 sha256 claim, 1 blob"; got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
	if msgs := e.compactionMessages(t); len(msgs) != 0 {
		t.Errorf("a purge without vectors sent %d compaction messages", len(msgs))
	}
	if _, err := e.items.Get(ctx, purge.RunKey(first.ImageID)); !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("a purge without vectors made a run: %v", err)
	}
	again, err := e.upload.Ingest(ctx, "a.png", data, false)
	if err != nil || again.Duplicate || again.ImageID == first.ImageID {
		t.Errorf("re-upload = %+v, %v", again, err)
	}
}

// TestUnknown: an image that never existed is ErrNotFound and nothing is
// written; a bad id or configuration is ErrInvalidArgument.
func TestUnknown(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	const id = "8e4c1b3a-0000-4000-8000-000000000000"
	rep, err := purge.Image(ctx, e.config(), id)
	if !errors.Is(err, tally.ErrNotFound) {
		t.Fatalf("unknown image: %v", err)
	}
	if len(rep.Items)+len(rep.Blobs)+len(rep.Vectors) != 0 || rep.CompactionRun != "" {
		t.Errorf("unknown image report = %+v", rep)
	}
	if msgs := e.compactionMessages(t); len(msgs) != 0 {
		t.Errorf("%d compaction messages", len(msgs))
	}
	if _, err := e.items.Get(ctx, purge.RunKey(id)); !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("purge run item: %v", err)
	}
	for _, coll := range []string{vector.CollectionLines, vector.CollectionWords} {
		if ds, err := e.vectors.Deltas(ctx, coll, false, 0); err != nil || len(ds) != 0 {
			t.Errorf("%s deltas: %v, %v", coll, ds, err)
		}
	}
	for _, bad := range []string{"", "a/b", "a#b", "..", strings.Repeat("x", 200)} {
		if _, err := purge.Image(ctx, e.config(), bad); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("image id %q: %v, want ErrInvalidArgument", bad, err)
		}
	}
	cfg := e.config()
	cfg.Vectors = nil
	if _, err := purge.Image(ctx, cfg, id); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("no vector store: %v", err)
	}
}

// TestReportString pins the summary's wording.
func TestReportString(t *testing.T) {
	t.Parallel()
	r := purge.Report{ImageID: "img", Items: map[string]int{"IMAGE": 1, "LINE": 40, "RECEIPT_SUMMARY": 1, "RECEIPT_WORD_LABEL": 2, "FOO_BAR": 3},
		Blobs: []string{"a", "b"}, Vectors: map[string]int{"lines": 40, "words": 104}, CompactionRun: "purge-x"}
	want := "image img: removed 1 image, 40 lines, 2 labels, 1 summary, 3 foo bar items, 2 blobs, 144 vector records (compaction run purge-x)"
	if got := r.String(); got != want {
		t.Errorf("String() = %q\nwant        %q", got, want)
	}
	if got := (purge.Report{ImageID: "img"}).String(); got != "image img: removed nothing" {
		t.Errorf("empty report = %q", got)
	}
	first, again := purge.RunID("a"), purge.RunID("a")
	if first != again || first == purge.RunID("b") || vector.ValidateRunID(first) != nil {
		t.Errorf("RunID is not a stable, distinct, valid run id: %q %q", purge.RunID("a"), purge.RunID("b"))
	}
}
