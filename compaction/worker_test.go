package compaction_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/compaction"
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/lease"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/vector"
)

// TestEndToEnd: runs written to lines and words, each with its run item and
// message; one worker drains the queue and every run is complete, every
// vector live exactly once, and nothing is left behind.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var specs []runSpec
	for n := range 20 {
		specs = append(specs, b.addRun(t, n, 3, 4))
	}
	cfg := b.config(t, "solo")
	cfg.Compact.MaxDeltas = 7 // several versions per batch
	stop := start(t, b.worker(t, cfg))
	waitfor.True(t, "every run completed and the queue empty", func() bool {
		return len(b.pending(t)) == 0 && depth(t, b.q) == 0
	})
	stop()
	b.checkRuns(t, specs)
	b.checkVectors(t, specs)
	if n := depth(t, b.dlq); n != 0 {
		t.Errorf("%d messages in the dead-letter queue", n)
	}
	// 20 deltas at 7 per version: 3 versions per collection, in order.
	for _, coll := range []string{vector.CollectionLines, vector.CollectionWords} {
		if got := b.logs.published()[coll]; !slices.Equal(got, []string{"1", "2", "3"}) {
			t.Errorf("%s: versions published %v, want 1–3", coll, got)
		}
	}
}

// TestRedeliveryIsIdempotent: handling the same message again (a
// redelivery, a rescued duplicate) changes nothing and counts nothing twice.
func TestRedeliveryIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := b.writeRun(t, 1, 2, 3, time.Time{})
	w := b.worker(t, b.config(t, "w"))
	if errs := w.HandleBatch(b.ctx, []compaction.Message{spec.msg}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	first := b.getRun(t, spec.msg)
	for range 2 {
		errs := w.HandleBatch(b.ctx, []compaction.Message{spec.msg, spec.msg})
		if errs[0] != nil || errs[1] != nil {
			t.Fatal(errs)
		}
	}
	again := b.getRun(t, spec.msg)
	if !again.CompletedAt.Equal(first.CompletedAt) || again.States["lines"] != first.States["lines"] ||
		again.States["words"] != first.States["words"] {
		t.Fatalf("redelivery changed the run:\n%+v\n%+v", first, again)
	}
	b.checkRuns(t, []runSpec{spec})
	b.checkVectors(t, []runSpec{spec})
}

// TestConcurrentWorkers: two and four workers on one queue and the same
// collections while writers add runs: every run completes, every id is live
// once, and versions are published without gaps or duplicates.
func TestConcurrentWorkers(t *testing.T) {
	t.Parallel()
	for _, workers := range []int{2, 4} {
		t.Run(strconv.Itoa(workers), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var ws []*compaction.Worker
			for i := range workers {
				cfg := b.config(t, fmt.Sprintf("w%d", i))
				cfg.MaxBatch = 7 // small batches: more contention
				cfg.Compact = vector.CompactOptions{MaxDeltas: 5}
				// Maintenance merges and builds graphs beside the contended compaction.
				cfg.Maintain = vector.MaintainOptions{Fanout: 3, Base: 10, GraphMin: 40}
				ws = append(ws, b.worker(t, cfg))
			}
			stop := start(t, ws...)
			const writers, perWriter = 3, 10
			specs := make([]runSpec, writers*perWriter)
			var wg sync.WaitGroup
			for wr := range writers {
				wg.Go(func() {
					for i := range perWriter {
						n := wr*perWriter + i
						specs[n] = b.addRun(t, n, 2, 3)
					}
				})
			}
			wg.Wait()
			waitfor.True(t, "every run completed and the queue empty", func() bool {
				return len(b.pending(t)) == 0 && depth(t, b.q) == 0
			})
			stop()
			b.checkRuns(t, specs)
			b.checkVectors(t, specs)
			if n := depth(t, b.dlq); n != 0 {
				t.Errorf("%d messages in the dead-letter queue", n)
			}
			for coll, got := range b.logs.published() {
				slices.SortFunc(got, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
				for i, v := range got {
					if v != strconv.Itoa(i+1) {
						t.Fatalf("%s: versions published in order %v: a gap or a duplicate", coll, got)
					}
				}
				r, err := b.store.OpenReader(b.ctx, coll, b.config(t, "reader-"+coll).Cache)
				if err != nil {
					t.Fatal(err)
				}
				if r.Version() != int64(len(got)) {
					t.Errorf("%s: head is v%d, %d versions published", coll, r.Version(), len(got))
				}
			}
		})
	}
}

// TestHandleBatchIsolatesBadMessages: in one batch, invalid messages and a
// run without a delta fail with their reasons while the good runs complete.
func TestHandleBatchIsolatesBadMessages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	good1 := b.writeRun(t, 1, 2, 2, time.Time{})
	good2 := b.writeRun(t, 2, 2, 2, time.Time{})
	noDelta := compaction.Message{RunID: "run-nodelta", ImageID: "img-x", ReceiptID: 1, Collections: []string{"lines"}}
	if err := compaction.CreateRun(b.ctx, b.items, compaction.Run{RunID: noDelta.RunID, ImageID: noDelta.ImageID, ReceiptID: 1, Collections: noDelta.Collections}); err != nil {
		t.Fatal(err)
	}
	noRun := compaction.Message{RunID: "run-norun", ImageID: "img-y", ReceiptID: 1, Collections: []string{"lines"}}
	msgs := []compaction.Message{
		good1.msg,
		{ImageID: "img", ReceiptID: 1, Collections: []string{"lines"}},                 // no run id
		{RunID: "r", ImageID: "img", ReceiptID: 1, Collections: []string{"Bad Name!"}}, // invalid collection
		{RunID: "r", ImageID: "img", ReceiptID: 1, Collections: []string{"faces"}},     // not served
		noDelta,
		noRun,
		good2.msg,
	}
	w := b.worker(t, b.config(t, "w"))
	errs := w.HandleBatch(b.ctx, msgs)
	want := []error{nil, tally.ErrInvalidArgument, tally.ErrInvalidArgument, tally.ErrInvalidArgument, tally.ErrNotFound, tally.ErrNotFound, nil}
	for i, e := range want {
		if e == nil && errs[i] != nil || e != nil && !errors.Is(errs[i], e) {
			t.Errorf("message %d (%+v): %v, want %v", i, msgs[i], errs[i], e)
		}
	}
	if !strings.Contains(fmt.Sprint(errs[4]), "no delta registered") {
		t.Errorf("missing delta reason: %v", errs[4])
	}
	for _, s := range []runSpec{good1, good2} {
		if r := b.getRun(t, s.msg); r.Status != compaction.StatusCompleted {
			t.Errorf("good run %s: %s", r.RunID, r.Status)
		}
	}
	if r := b.getRun(t, noDelta); r.Status != compaction.StatusPending {
		t.Errorf("run without delta: %s", r.Status)
	}
}

// TestBadMessagesGoToTheDeadLetterQueue: through the real queue with the
// pipeline's redrive policy, bad messages are never deleted, their reason
// is logged on every receive, and they end in the dead-letter queue, while
// good messages received with them complete.
func TestBadMessagesGoToTheDeadLetterQueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var good []runSpec
	for n := range 3 {
		good = append(good, b.addRun(t, n, 2, 2))
	}
	noDelta := compaction.Message{RunID: "run-nodelta", ImageID: "img-x", ReceiptID: 1, Collections: []string{"lines"}}
	if err := compaction.CreateRun(b.ctx, b.items, compaction.Run{RunID: noDelta.RunID, ImageID: noDelta.ImageID, ReceiptID: 1, Collections: noDelta.Collections}); err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{ // body → what the logged reason says
		`{"run_id": "r1", "image_id": `:                                                      "malformed JSON",
		`{"image_id":"img","receipt_id":1,"collections":["lines"]}`:                          "missing run_id",
		`{"run_id":"r2","image_id":"img","receipt_id":1,"collections":["Lines!"]}`:           "collection",
		`{"run_id":"r3","image_id":"img","receipt_id":1,"collections":["faces"]}`:            "not one this compactor serves",
		`{"run_id":"run-nodelta","image_id":"img-x","receipt_id":1,"collections":["lines"]}`: "no delta registered",
	}
	ids := map[string]string{} // message id → body
	for body := range bad {
		id, err := queue.Send(b.ctx, b.q, body, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = body
	}
	cfg := b.config(t, "w")
	cfg.Visibility = 300 * time.Millisecond // fast redrive
	stop := start(t, b.worker(t, cfg))
	waitfor.True(t, "bad messages dead-lettered and good runs completed", func() bool {
		return depth(t, b.dlq) == len(bad) && depth(t, b.q) == 0 && b.completed(t, good)
	})
	stop()
	msgs, err := b.dlq.Receive(b.ctx, queue.ReceiveOptions{Max: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, ok := bad[m.Body]; !ok {
			t.Errorf("unexpected message in the dead-letter queue: %s", m.Body)
		}
	}
	// Every bad message's reason was logged on each of its receives.
	for id, body := range ids {
		n := 0
		for _, r := range b.logs.records() {
			if r.Attrs["message_id"] == id && strings.Contains(r.Attrs["reason"], bad[body]) {
				n++
			}
		}
		if n < 5 {
			t.Errorf("message %s (%s): reason %q logged %d times, want one per receive (5)", id, body, bad[body], n)
		}
	}
	for _, s := range good {
		if r := b.getRun(t, s.msg); r.Status != compaction.StatusCompleted {
			t.Errorf("good run %s: %s", r.RunID, r.Status)
		}
	}
	if r := b.getRun(t, noDelta); r.Status != compaction.StatusPending {
		t.Errorf("run without delta: %s", r.Status)
	}
}

// TestRescue: a pending run older than the threshold whose message was lost
// is re-enqueued (once per threshold) and then completes; a fresh one is
// left alone.
func TestRescue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := time.Now()
	old := b.writeRun(t, 1, 2, 2, now.Add(-2*time.Hour))
	fresh := b.writeRun(t, 2, 2, 2, now.Add(-time.Minute))

	n, err := compaction.Rescue(b.ctx, b.items, b.q, time.Hour, now)
	if err != nil || n != 1 {
		t.Fatalf("rescue: %d, %v; want 1", n, err)
	}
	r := b.getRun(t, old.msg)
	if r.RescueCount != 1 || r.RescuedAt.IsZero() {
		t.Fatalf("rescued run: count %d, at %v", r.RescueCount, r.RescuedAt)
	}
	// Just rescued: not again until the threshold passes once more.
	if n, err := compaction.Rescue(b.ctx, b.items, b.q, time.Hour, now.Add(time.Minute)); err != nil || n != 0 {
		t.Fatalf("second rescue: %d, %v; want 0", n, err)
	}
	msgs, err := b.q.Receive(b.ctx, queue.ReceiveOptions{Max: 10, Visibility: time.Millisecond})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("queue after rescue: %d messages, %v; want 1", len(msgs), err)
	}
	if m, err := compaction.Decode(msgs[0].Body); err != nil || m.RunID != old.msg.RunID || !slices.Equal(m.Collections, old.msg.Collections) {
		t.Fatalf("rescued message %q: %+v, %v", msgs[0].Body, m, err)
	}
	waitfor.True(t, "the rescued message to be visible again", func() bool { return depth(t, b.q) == 1 })

	// A worker completes it; the fresh run is not re-sent.
	stop := start(t, b.worker(t, b.config(t, "w")))
	waitfor.True(t, "the rescued run to complete", func() bool {
		return b.completed(t, []runSpec{old}) && depth(t, b.q) == 0
	})
	stop()
	if r := b.getRun(t, fresh.msg); r.RescueCount != 0 {
		t.Errorf("fresh run was rescued: %+v", r)
	}
	b.checkRuns(t, []runSpec{old, fresh}) // fresh completes too: its delta was merged (settled before GC)
}

// TestRunRescuesPeriodically: Run's own rescuer finds a run whose message
// was lost and completes it, with nothing else on the queue.
func TestRunRescuesPeriodically(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lost := b.writeRun(t, 1, 2, 2, time.Now().Add(-time.Hour))
	cfg := b.config(t, "w")
	cfg.RescueEvery, cfg.RescueAfter = 50*time.Millisecond, 30*time.Minute
	stop := start(t, b.worker(t, cfg))
	waitfor.True(t, "the lost run to complete", func() bool { return b.completed(t, []runSpec{lost}) })
	stop()
	if r := b.getRun(t, lost.msg); r.RescueCount != 1 {
		t.Errorf("rescue count %d, want 1", r.RescueCount)
	}
	b.checkRuns(t, []runSpec{lost})
	b.checkVectors(t, []runSpec{lost})
}

// countingTable counts lease acquisitions (updates of LOCK# items that add
// to the epoch).
type countingTable struct {
	items.Table
	acquires atomic.Int64
}

func (c *countingTable) Update(ctx context.Context, k items.Key, u items.Update) (items.Item, error) {
	if strings.HasPrefix(k.PK, "LOCK#") && strings.Contains(u.Expr, "ADD") {
		c.acquires.Add(1)
	}
	return c.Table.Update(ctx, k, u)
}

// TestLeaseHeldByAnotherOwner: while another owner holds the collection's
// lease the batch fails at once (one attempt, no spinning) and the run stays
// pending; after the owner releases, the same message succeeds.
func TestLeaseHeldByAnotherOwner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := b.writeRun(t, 1, 2, 2, time.Time{})
	other, err := lease.Acquire(b.ctx, b.items, vector.CollectionLines+compaction.LeaseSuffix, "other", time.Minute, lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ct := &countingTable{Table: b.items}
	cfg := b.config(t, "w")
	cfg.Items = ct
	w := b.worker(t, cfg)
	errs := w.HandleBatch(b.ctx, []compaction.Message{spec.msg})
	if !errors.Is(errs[0], lease.ErrHeld) {
		t.Fatalf("held lease: %v, want lease.ErrHeld", errs[0])
	}
	if n := ct.acquires.Load(); n != 2 { // one for lines (held), one for words
		t.Errorf("%d lease acquisitions, want 2 (one per collection, no retry loop)", n)
	}
	r := b.getRun(t, spec.msg)
	if r.Status != compaction.StatusPending || r.States["lines"].State != compaction.StatusPending ||
		r.States["words"].State != compaction.StatusCompleted {
		t.Fatalf("run after a held lease: %+v", r)
	}
	if err := other.Release(b.ctx); err != nil {
		t.Fatal(err)
	}
	if errs := w.HandleBatch(b.ctx, []compaction.Message{spec.msg}); errs[0] != nil {
		t.Fatalf("after release: %v", errs[0])
	}
	b.checkRuns(t, []runSpec{spec})
	b.checkVectors(t, []runSpec{spec})
}

// TestLeaseHeldThroughTheQueue: the same through Run: the message is not
// deleted while the lease is held, and completes after the release.
func TestLeaseHeldThroughTheQueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := b.addRun(t, 1, 2, 2)
	other, err := lease.Acquire(b.ctx, b.items, vector.CollectionLines+compaction.LeaseSuffix, "other", time.Minute, lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, b.worker(t, b.config(t, "w")))
	waitfor.True(t, "a failure because the lease is held", func() bool {
		for _, r := range b.logs.records() {
			if strings.Contains(r.Attrs["reason"], "lease held") {
				return true
			}
		}
		return false
	})
	if depth(t, b.q) != 1 {
		t.Fatalf("message deleted while the lease was held")
	}
	if err := other.Release(b.ctx); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, "the run to complete", func() bool {
		return b.completed(t, []runSpec{spec}) && depth(t, b.q) == 0
	})
	stop()
	b.checkRuns(t, []runSpec{spec})
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)
	good := b.config(t, "w")
	for name, mod := range map[string]func(*compaction.Config){
		"no store":        func(c *compaction.Config) { c.Store = nil },
		"no cache":        func(c *compaction.Config) { c.Cache = nil },
		"no items":        func(c *compaction.Config) { c.Items = nil },
		"bad collection":  func(c *compaction.Config) { c.Collections = []string{"Bad!"} },
		"negative ttl":    func(c *compaction.Config) { c.LeaseTTL = -time.Second },
		"wait too long":   func(c *compaction.Config) { c.Wait = time.Minute },
		"visibility long": func(c *compaction.Config) { c.Visibility = 13 * time.Hour },
	} {
		cfg := good
		mod(&cfg)
		if _, err := compaction.New(cfg); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	cfg := good
	cfg.Owner = ""
	w, err := compaction.New(cfg)
	if err != nil || w.Owner() == "" || strings.Count(w.Owner(), ":") != 2 {
		t.Errorf("default owner %q, %v", w.Owner(), err)
	}
	cfg.Queue = nil
	w, _ = compaction.New(cfg)
	if err := w.Run(context.Background()); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("Run without a queue: %v", err)
	}
}

// TestQuarantinedDelta: a run whose delta segment is unreadable fails with
// the reason (never completes on a guess); writing the run again repairs it
// and the same message then completes.
func TestQuarantinedDelta(t *testing.T) {
	t.Parallel()
	b := setup(t)
	recs := []vector.Record{{ID: "IMAGE#q#RECEIPT#00001#LINE#00001", Vector: vec(1), Meta: map[string]any{"seed": 1.0}}}
	d, err := b.store.WriteDelta(b.ctx, "lines", "run-q", recs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.blob.Put(b.ctx, d.Key, strings.NewReader("not a segment"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	msg := compaction.Message{RunID: "run-q", ImageID: "q", ReceiptID: 1, Collections: []string{"lines"}}
	if err := compaction.CreateRun(b.ctx, b.items, compaction.Run{RunID: msg.RunID, ImageID: msg.ImageID, ReceiptID: 1, Collections: msg.Collections}); err != nil {
		t.Fatal(err)
	}
	w := b.worker(t, b.config(t, "w"))
	if errs := w.HandleBatch(b.ctx, []compaction.Message{msg}); !errors.Is(errs[0], compaction.ErrQuarantined) {
		t.Fatalf("unreadable delta: %v, want ErrQuarantined", errs[0])
	}
	if r := b.getRun(t, msg); r.Status != compaction.StatusPending {
		t.Fatalf("run with an unreadable delta is %s", r.Status)
	}
	if _, err := b.store.WriteDelta(b.ctx, "lines", "run-q", recs, nil); err != nil {
		t.Fatal(err)
	}
	if errs := w.HandleBatch(b.ctx, []compaction.Message{msg}); errs[0] != nil {
		t.Fatalf("after repair: %v", errs[0])
	}
	if r := b.getRun(t, msg); r.Status != compaction.StatusCompleted || r.States["lines"].Merged != 1 {
		t.Fatalf("repaired run: %+v", r)
	}
	if got := b.live(t, "lines"); len(got) != 1 {
		t.Fatalf("live after repair: %v", got)
	}
}
