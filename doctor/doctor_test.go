package doctor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/blob"
	blobfile "github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/compaction"
	"github.com/tallyhq/tally/doctor"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/lease"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/queue"
	queuesqlite "github.com/tallyhq/tally/queue/sqlite"
	"github.com/tallyhq/tally/redrive"
	"github.com/tallyhq/tally/vector"
)

// bundle is a whole embedded deployment on real files.
type bundle struct {
	ctx    context.Context
	items  items.Table
	blob   blob.Store
	queues pipeline.Queues
	broker queue.Broker
	store  *vector.Store
	cache  *vector.Cache
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	tbl, err := itemssqlite.Open(ctx, filepath.Join(dir, "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	br, err := queuesqlite.Open(ctx, filepath.Join(dir, "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { br.Close() })
	qs, err := pipeline.EnsureQueues(ctx, br)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := blobfile.Open(filepath.Join(dir, "blobs"), blobfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := vector.New(vector.Options{Blob: bs, Items: tbl, Dims: 4})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := vector.OpenCache(ctx, bs, vector.CacheOptions{Dir: filepath.Join(dir, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	return &bundle{ctx: ctx, items: tbl, blob: bs, queues: qs, broker: br, store: st, cache: cache}
}

// config checks the bundle as doctor would, at the clock now.
func (b *bundle) config(t *testing.T, now time.Time) doctor.Config {
	t.Helper()
	var pairs []doctor.QueuePair
	for _, q := range []queue.Queue{b.queues.OCRJobs, b.queues.OCRResults, b.queues.Compaction} {
		dlq, err := b.broker.OpenQueue(b.ctx, q.Name()+pipeline.DeadLetterSuffix)
		if err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, doctor.QueuePair{Source: q, DeadLetter: dlq})
	}
	return doctor.Config{Items: b.items, Blob: b.blob, Queues: pairs, Vectors: b.store, Cache: b.cache,
		Collections: []string{vector.CollectionLines, vector.CollectionWords}, Now: func() time.Time { return now }}
}

// find returns the checks whose name starts with prefix.
func find(r doctor.Report, prefix string) []doctor.Check {
	var out []doctor.Check
	for _, c := range r.Checks {
		if strings.HasPrefix(c.Name, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func TestHealthyDeployment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rep := doctor.Run(b.ctx, b.config(t, time.Now()))
	if rep.Status() != doctor.OK || rep.ExitCode() != 0 {
		var buf bytes.Buffer
		rep.WriteText(&buf)
		t.Fatalf("a fresh deployment is %s:\n%s", rep.Status(), buf.String())
	}
	for _, name := range []string{"items", "blob", "queue ocr-jobs", "queue ocr-results-dlq", "dead letters compaction-dlq", "ocr jobs",
		"compaction runs", "vectors lines", "lease words#compaction", "vector storage"} {
		cs := find(rep, name)
		if len(cs) == 0 {
			t.Errorf("no %q check in the report", name)
		}
	}
	for _, c := range find(rep, "queue ") {
		if c.Latency <= 0 {
			t.Errorf("%s: no latency measured", c.Name)
		}
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Status string `json:"status"`
		Checks []struct {
			Name, Status string
			Data         map[string]any
		} `json:"checks"`
	}
	if err := json.Unmarshal(buf.Bytes(), &decoded); err != nil || decoded.Status != "ok" || len(decoded.Checks) != len(rep.Checks) {
		t.Fatalf("JSON report %s: %v", buf.String(), err)
	}
}

// TestFindsEveryKindOfProblem breaks one thing of each kind and expects
// each to be named with its fix.
func TestFindsEveryKindOfProblem(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx
	start := time.Now()

	// A message received and never finished: stuck once 2× the queue's
	// five-minute visibility timeout has passed.
	if _, err := queue.Send(ctx, b.queues.OCRResults, `{"image_id":"x"}`, nil); err != nil {
		t.Fatal(err)
	}
	if msgs, err := b.queues.OCRResults.Receive(ctx, queue.ReceiveOptions{Visibility: 12 * time.Hour}); err != nil || len(msgs) != 1 {
		t.Fatalf("receive: %v %v", msgs, err)
	}
	// Dead letters with two reasons.
	dlq, err := b.broker.OpenQueue(ctx, pipeline.QueueOCRResults+pipeline.DeadLetterSuffix)
	if err != nil {
		t.Fatal(err)
	}
	for i, why := range []string{"OCR result malformed: no lines", "OCR result malformed: no lines", "timeout talking to OpenAI"} {
		if _, err := queue.Send(ctx, dlq, `{"n":`+string(rune('0'+i))+`}`, map[string]string{redrive.AttrFailureReason: why}); err != nil {
			t.Fatal(err)
		}
	}
	// An OCR job that never moved.
	if err := ocrjob.CreateJob(ctx, b.items, ocrjob.Job{ImageID: "7b0c2f59-56a0-4c5e-9d48-5a1f0e4b6c11", JobID: "3f1d7a02-9a0e-4d8e-8f43-2c6f1b7e9d20",
		Bucket: "local", Key: "raw/x.png", Filename: "x.png", CreatedAt: start}); err != nil {
		t.Fatal(err)
	}
	// A compaction run nobody finished.
	if err := compaction.CreateRun(ctx, b.items, compaction.Run{RunID: "run-1", ImageID: "7b0c2f59-56a0-4c5e-9d48-5a1f0e4b6c11", ReceiptID: 1,
		Collections: []string{vector.CollectionLines}, CreatedAt: start}); err != nil {
		t.Fatal(err)
	}
	// A compactor that died holding the lease, with a delta waiting, and a
	// delta whose segment is corrupt (quarantined by a compaction).
	if _, err := b.store.WriteDelta(ctx, vector.CollectionWords, "good", []vector.Record{{ID: "a", Vector: []float32{1, 0, 0, 0}}}, nil); err != nil {
		t.Fatal(err)
	}
	bad, err := b.store.WriteDelta(ctx, vector.CollectionWords, "bad", []vector.Record{{ID: "b", Vector: []float32{0, 1, 0, 0}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.blob.Put(ctx, bad.Key, strings.NewReader("not a segment"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	l, err := lease.Acquire(ctx, b.items, vector.CollectionWords+compaction.LeaseSuffix, "compactor-a", time.Minute, lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Compact(ctx, vector.CollectionWords, l, b.cache, vector.CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.WriteDelta(ctx, vector.CollectionWords, "waiting", []vector.Record{{ID: "c", Vector: []float32{0, 0, 1, 0}}}, nil); err != nil {
		t.Fatal(err)
	}

	rep := doctor.Run(ctx, b.config(t, start.Add(time.Hour)))
	var text bytes.Buffer
	rep.WriteText(&text)
	t.Logf("report:\n%s", text.String())
	if rep.Status() != doctor.Problem || rep.ExitCode() != 1 {
		t.Fatalf("status %s, exit %d; want problems, 1", rep.Status(), rep.ExitCode())
	}
	tests := []struct {
		check, detail, fix string
	}{
		{"in flight ocr-results", "1 stuck in flight longer than 10m0s", "tally reset-visibility ocr-results"},
		{"dead letters ocr-results-dlq", "2 × OCR result malformed: no lines", "tally redrive ocr-results -reason 'OCR result malformed: no lines'"},
		{"dead letters ocr-results-dlq", "1 × timeout talking to OpenAI", "tally redrive ocr-results -reason 'timeout talking to OpenAI'"},
		{"ocr jobs", "1 of 1 pending made no progress", "tally retry 7b0c2f59-56a0-4c5e-9d48-5a1f0e4b6c11"},
		{"compaction runs", "run-1 of image 7b0c2f59", "tally worker -role compact"},
		{"vectors words", "delta of run bad quarantined", "tally retry"},
		{"lease words#compaction", "last held by compactor-a", "tally worker -role compact"},
	}
	for _, tc := range tests {
		found := false
		for _, c := range find(rep, tc.check) {
			if c.Status == doctor.Problem && strings.Contains(c.Detail, tc.detail) && strings.Contains(c.Fix, tc.fix) {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem %q with %q and fix %q", tc.check, tc.detail, tc.fix)
		}
	}
	// Doctor only looked: every dead letter is still there, visible.
	if st, err := dlq.Stats(ctx); err != nil || st.Visible != 3 {
		t.Errorf("dead-letter queue after doctor: %+v, %v; want its 3 messages visible", st, err)
	}
	// The same state an hour earlier is not yet stuck or overdue.
	early := doctor.Run(ctx, b.config(t, start))
	for _, name := range []string{"in flight ocr-results", "ocr jobs", "compaction runs", "lease words#compaction"} {
		for _, c := range find(early, name) {
			if c.Status != doctor.OK {
				t.Errorf("at the start, %s is %s: %s", c.Name, c.Status, c.Detail)
			}
		}
	}
}

// TestUnreachablePortIsUnknown: a port that fails its probe makes the
// report "could not check", exit status 2, when nothing else is wrong.
func TestUnreachablePortIsUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.config(t, time.Now())
	b.items.Close()
	cfg.Vectors, cfg.Queues = nil, nil
	rep := doctor.Run(b.ctx, cfg)
	if rep.ExitCode() != 2 {
		var buf bytes.Buffer
		rep.WriteText(&buf)
		t.Fatalf("exit %d, want 2:\n%s", rep.ExitCode(), buf.String())
	}
	if c := find(rep, "items"); len(c) != 1 || c[0].Status != doctor.Unknown || c[0].Detail == "" {
		t.Errorf("items check: %+v", c)
	}
}
