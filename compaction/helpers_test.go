package compaction_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	blobfile "github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/compaction"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/queue"
	queuesqlite "github.com/tallyhq/tally/queue/sqlite"
	"github.com/tallyhq/tally/vector"
)

const dims = 8

// bundle is what a test needs: real files for blobs, a real SQLite table
// and real SQLite queues (the pipeline's, with its redrive policy).
type bundle struct {
	ctx   context.Context
	dir   string
	blob  *blobfile.Store
	items items.Table
	store *vector.Store
	q     queue.Queue
	dlq   queue.Queue
	logs  *logSink
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	logs := newLogSink()
	t.Cleanup(func() {
		if t.Failed() {
			logs.dump(t)
		}
	})
	b, err := blobfile.Open(filepath.Join(dir, "blobs"), blobfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := itemssqlite.Open(ctx, filepath.Join(dir, "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	st, err := vector.New(vector.Options{Blob: b, Items: tbl, Dims: dims, Log: slog.New(logs)})
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
	dlq, err := broker.OpenQueue(ctx, pipeline.QueueCompaction+pipeline.DeadLetterSuffix)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{ctx: ctx, dir: dir, blob: b, items: tbl, store: st, q: qs.Compaction, dlq: dlq, logs: logs}
}

// config is a worker configuration for tests: short visibility and lease so
// retries happen in a second, and no periodic rescue unless asked.
func (b *bundle) config(t *testing.T, owner string) compaction.Config {
	t.Helper()
	cache, err := vector.OpenCache(b.ctx, b.blob, vector.CacheOptions{Dir: filepath.Join(b.dir, "cache-"+owner)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	return compaction.Config{
		Queue: b.q, Store: b.store, Cache: cache, Items: b.items,
		Owner: owner, LeaseTTL: 5 * time.Second, Visibility: time.Second, Wait: 5 * time.Second,
		MaxReceiveCount: pipeline.MaxReceiveCount, RescueEvery: -1,
		Log: slog.New(b.logs).With("test_owner", owner),
	}
}

func (b *bundle) worker(t *testing.T, cfg compaction.Config) *compaction.Worker {
	t.Helper()
	w, err := compaction.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// start runs workers until the returned stop is called.
func start(t *testing.T, ws ...*compaction.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() {
			if err := w.Run(ctx); err != nil {
				t.Errorf("worker %s: %v", w.Owner(), err)
			}
		})
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// runSpec is one processing run written by a test: its message and the
// records it wrote per collection (id → seed).
type runSpec struct {
	msg  compaction.Message
	want map[string]map[string]float64
}

func vec(seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, seed*7+1))
	v := make([]float32, dims)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// writeRun writes run n's deltas (lines lines and words words per line) and
// its CompactionRun item, without enqueueing it.
func (b *bundle) writeRun(t *testing.T, n, lines, words int, created time.Time) runSpec {
	t.Helper()
	img := fmt.Sprintf("img-%04d", n)
	spec := runSpec{
		msg: compaction.Message{
			RunID: fmt.Sprintf("run-%04d", n), ImageID: img, ReceiptID: 1 + n%3,
			Collections: []string{vector.CollectionLines, vector.CollectionWords},
		},
		want: map[string]map[string]float64{vector.CollectionLines: {}, vector.CollectionWords: {}},
	}
	var lrecs, wrecs []vector.Record
	for l := 1; l <= lines; l++ {
		id := fmt.Sprintf("IMAGE#%s#RECEIPT#%05d#LINE#%05d", img, spec.msg.ReceiptID, l)
		seed := uint64(n*1000 + l)
		lrecs = append(lrecs, vector.Record{ID: id, Vector: vec(seed), Meta: map[string]any{"seed": float64(seed)}})
		spec.want[vector.CollectionLines][id] = float64(seed)
		for w := 1; w <= words; w++ {
			wid := fmt.Sprintf("%s#WORD#%05d", id, w)
			wseed := seed*100 + uint64(w)
			wrecs = append(wrecs, vector.Record{ID: wid, Vector: vec(wseed), Meta: map[string]any{"seed": float64(wseed)}})
			spec.want[vector.CollectionWords][wid] = float64(wseed)
		}
	}
	if _, err := b.store.WriteDelta(b.ctx, vector.CollectionLines, spec.msg.RunID, lrecs, nil); err != nil {
		t.Error(err)
	}
	if _, err := b.store.WriteDelta(b.ctx, vector.CollectionWords, spec.msg.RunID, wrecs, nil); err != nil {
		t.Error(err)
	}
	r := compaction.Run{RunID: spec.msg.RunID, ImageID: img, ReceiptID: spec.msg.ReceiptID, Collections: spec.msg.Collections, CreatedAt: created}
	if err := compaction.CreateRun(b.ctx, b.items, r); err != nil {
		t.Error(err)
	}
	return spec
}

// addRun writes a run and enqueues its message, as the process worker does.
func (b *bundle) addRun(t *testing.T, n, lines, words int) runSpec {
	t.Helper()
	spec := b.writeRun(t, n, lines, words, time.Time{})
	if err := compaction.Enqueue(b.ctx, b.q, spec.msg); err != nil {
		t.Error(err)
	}
	return spec
}

func (b *bundle) getRun(t *testing.T, m compaction.Message) compaction.Run {
	t.Helper()
	r, err := compaction.GetRun(b.ctx, b.items, m.ImageID, m.ReceiptID, m.RunID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// completed reports whether every run is COMPLETED.
func (b *bundle) completed(t *testing.T, specs []runSpec) bool {
	t.Helper()
	for _, s := range specs {
		if b.getRun(t, s.msg).Status != compaction.StatusCompleted {
			return false
		}
	}
	return true
}

// pending lists the run ids in the pending index.
func (b *bundle) pending(t *testing.T) []string {
	t.Helper()
	its, err := items.QueryAll(b.ctx, b.items, items.Query{Index: compaction.PendingIndex, PK: compaction.PendingPK})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range its {
		id, _ := it["run_id"].(string)
		ids = append(ids, id)
	}
	return ids
}

func depth(t *testing.T, q queue.Queue) int {
	t.Helper()
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Visible + st.InFlight + st.Delayed
}

// live returns every live id of a collection with its seed, read by a
// fresh reader (fresh cache: every segment is fetched from the blob store).
func (b *bundle) live(t *testing.T, coll string) map[string]float64 {
	t.Helper()
	cache, err := vector.OpenCache(b.ctx, b.blob, vector.CacheOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	r, err := b.store.OpenReader(b.ctx, coll, cache)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	err = r.Scan(b.ctx, func(rec vector.Record) bool {
		if _, dup := out[rec.ID]; dup {
			t.Errorf("%s: id %s is live twice", coll, rec.ID)
		}
		out[rec.ID], _ = rec.Meta["seed"].(float64)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkVectors asserts that each collection holds exactly the records of
// specs, each once.
func (b *bundle) checkVectors(t *testing.T, specs []runSpec) {
	t.Helper()
	for _, coll := range []string{vector.CollectionLines, vector.CollectionWords} {
		want := map[string]float64{}
		for _, s := range specs {
			for id, seed := range s.want[coll] {
				want[id] = seed
			}
		}
		got := b.live(t, coll)
		if len(got) != len(want) {
			t.Errorf("%s: %d live records, want %d", coll, len(got), len(want))
		}
		for id, seed := range want {
			if g, ok := got[id]; !ok || g != seed {
				t.Errorf("%s: %s has seed %v (present %v), want %v", coll, id, g, ok, seed)
			}
		}
	}
}

// checkRuns asserts that every run is COMPLETED with the right counts and
// nothing is left in the pending index.
func (b *bundle) checkRuns(t *testing.T, specs []runSpec) {
	t.Helper()
	for _, s := range specs {
		r := b.getRun(t, s.msg)
		if r.Status != compaction.StatusCompleted || r.CompletedAt.IsZero() {
			t.Errorf("run %s: status %s, completed at %v", r.RunID, r.Status, r.CompletedAt)
		}
		for _, c := range s.msg.Collections {
			cs := r.States[c]
			if cs.State != compaction.StatusCompleted || cs.Version < 1 || cs.Merged != len(s.want[c]) {
				t.Errorf("run %s %s: %+v, want COMPLETED with %d merged", r.RunID, c, cs, len(s.want[c]))
			}
		}
	}
	if p := b.pending(t); len(p) != 0 {
		t.Errorf("pending index still lists %v", p)
	}
}

// logSink is a slog.Handler that keeps records for assertions and prints
// them when a test fails.
type logSink struct {
	mu    *sync.Mutex
	recs  *[]logRec
	attrs []slog.Attr
}

type logRec struct {
	Time  time.Time
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

func newLogSink() *logSink { return &logSink{mu: new(sync.Mutex), recs: new([]logRec)} }

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }

func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	rec := logRec{Time: r.Time, Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	for _, a := range s.attrs {
		rec.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.String()
		return true
	})
	s.mu.Lock()
	*s.recs = append(*s.recs, rec)
	s.mu.Unlock()
	return nil
}

func (s *logSink) WithAttrs(as []slog.Attr) slog.Handler {
	c := *s
	c.attrs = append(slices.Clip(s.attrs), as...)
	return &c
}

func (s *logSink) WithGroup(string) slog.Handler { return s }

func (s *logSink) records() []logRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(*s.recs)
}

func (s *logSink) dump(t *testing.T) {
	for _, r := range s.records() {
		t.Logf("log %s %s %s %v", r.Time.Format("15:04:05.000"), r.Level, r.Msg, r.Attrs)
	}
}

// published returns, per collection, the versions the store logged as
// published, in order.
func (s *logSink) published() map[string][]string {
	out := map[string][]string{}
	for _, r := range s.records() {
		if r.Msg == "vector version published" {
			out[r.Attrs["collection"]] = append(out[r.Attrs["collection"]], r.Attrs["version"])
		}
	}
	return out
}
