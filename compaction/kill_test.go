//go:build unix

package compaction_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/blob"
	blobfile "github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/compaction"
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/lease"
	"github.com/tallyhq/tally/pipeline"
	queuesqlite "github.com/tallyhq/tally/queue/sqlite"
	"github.com/tallyhq/tally/vector"
)

// Environment of the helper process (the stdlib's re-exec pattern).
const (
	envHelper = "TALLY_COMPACTION_HELPER"
	envDir    = "TALLY_COMPACTION_DIR"
	envPoint  = "TALLY_COMPACTION_POINT" // kind:before|after:n
)

// TestKilledCompactorRecovers SIGKILLs a compactor (a child process) at
// points before, during and after publishing, then lets a normal worker
// finish once the dead one's lease has expired: the vectors are exact, no
// run stays pending, and every segment the head names exists.
func TestKilledCompactorRecovers(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, point := range []string{
		"segment:before:1",  // building the first version
		"segment:after:3",   // a segment written, its version not published
		"manifest:after:2",  // manifest written, not published
		"publish:before:1",  // at the publishing transaction
		"publish:after:4",   // some versions published, more pending; nothing marked
		"mark:after:1",      // one collection of one run marked
		"mark:after:9",      // some runs complete, others not
		"gc:after:1",        // during garbage collection
		"graph:after:1",     // maintenance: a merge's or a segment's graph written, not published
		"maintain:before:1", // at a maintenance publish
		"maintain:after:2",  // maintenance published twice
	} {
		// The scenarios mostly wait for a lease to lapse, so they run side
		// by side whatever -parallel says, a few at a time.
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			t.Run(strings.ReplaceAll(point, ":", "-"), func(t *testing.T) { killScenario(t, point) })
		})
	}
	wg.Wait()
}

// killScenario kills a compactor at point and checks that a survivor
// finishes its work exactly.
func killScenario(t *testing.T, point string) {
	b := setup(t)
	var specs []runSpec
	for n := range 9 {
		specs = append(specs, b.addRun(t, n, 2, 2))
	}
	// A run whose message was lost (the process worker died between
	// CreateRun and Enqueue).
	specs = append(specs, b.writeRun(t, 99, 2, 2, time.Time{}))

	runKilledHelper(t, b.dir, point)

	// Writers go on after the crash.
	for n := 9; n < 12; n++ {
		specs = append(specs, b.addRun(t, n, 2, 2))
	}
	// The dead compactor's leases lapse within their TTL; wait for that
	// rather than let the first batches fail on them.
	for _, coll := range []string{vector.CollectionLines, vector.CollectionWords} {
		waitfor.True(t, coll+" lease to lapse", func() bool {
			l, err := lease.Acquire(b.ctx, b.items, coll+compaction.LeaseSuffix, "probe", time.Millisecond, lease.Options{})
			return err == nil && l.Release(b.ctx) == nil
		})
	}
	cfg := b.config(t, "survivor")
	cfg.LeaseTTL = time.Second
	stop := start(t, b.worker(t, cfg))
	rescued := false
	waitfor.True(t, "every run completed", func() bool {
		if len(b.pending(t)) == 0 && depth(t, b.q) == 0 {
			return true
		}
		if !rescued && depth(t, b.q) == 0 {
			// Drained, yet runs are pending: their messages are gone.
			t.Logf("queue drained with runs pending %v: rescuing", b.pending(t))
			if _, err := compaction.Rescue(b.ctx, b.items, b.q, 0, time.Now()); err != nil {
				t.Fatal(err)
			}
			rescued = true
		}
		return false
	})
	stop()
	b.checkRuns(t, specs)
	b.checkVectors(t, specs)
	b.checkHeadSegments(t)
	if n := depth(t, b.dlq); n != 0 {
		t.Errorf("%d messages in the dead-letter queue", n)
	}
}

// runKilledHelper runs a compactor in a child process that SIGKILLs itself
// at point, and fails the test unless it died that way.
func runKilledHelper(t *testing.T, dir, point string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), envHelper+"=1", envDir+"="+dir, envPoint+"="+point)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("helper at %s: %v, want death by SIGKILL\n%s", point, err, out.String())
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper at %s: %v, want death by SIGKILL\n%s", point, err, out.String())
	}
	if testing.Verbose() {
		t.Logf("helper killed at %s; its log:\n%s", point, out.String())
	}
}

// checkHeadSegments asserts that every segment and mask the head manifest
// of each collection names is in the blob store. (It reads the head item
// directly: the head pointer is the vector store's, PK=VECTOR#{coll}, SK=HEAD.)
func (b *bundle) checkHeadSegments(t *testing.T) {
	t.Helper()
	for _, coll := range []string{vector.CollectionLines, vector.CollectionWords} {
		it, err := b.items.Get(b.ctx, items.Key{PK: "VECTOR#" + coll, SK: "HEAD"})
		if err != nil {
			t.Fatalf("%s head: %v", coll, err)
		}
		key, _ := it["manifest"].(string)
		data, err := blob.ReadAll(b.ctx, b.blob, key)
		if err != nil {
			t.Fatalf("%s head manifest: %v", coll, err)
		}
		var m vector.Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		for _, si := range m.Segments {
			for _, k := range []string{si.Key, si.Mask, si.IDs, si.GraphKey} {
				if k == "" {
					continue
				}
				if _, err := b.blob.Head(b.ctx, k); err != nil {
					t.Errorf("%s v%d names %s: %v", coll, m.Version, k, err)
				}
			}
		}
	}
}

// TestHelperProcess is the child compactor of TestKilledCompactorRecovers;
// it does nothing in a normal test run.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		return
	}
	os.Exit(helperMain())
}

func helperMain() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	fail := func(err error) int {
		log.Error("helper failed", "err", err)
		return 2
	}
	k, err := parseKiller(os.Getenv(envPoint))
	if err != nil {
		return fail(err)
	}
	dir := os.Getenv(envDir)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fb, err := blobfile.Open(filepath.Join(dir, "blobs"), blobfile.Options{})
	if err != nil {
		return fail(err)
	}
	tbl, err := itemssqlite.Open(ctx, filepath.Join(dir, "items.db"), items.DefaultIndexes)
	if err != nil {
		return fail(err)
	}
	broker, err := queuesqlite.Open(ctx, filepath.Join(dir, "queue.db"))
	if err != nil {
		return fail(err)
	}
	q, err := broker.OpenQueue(ctx, pipeline.QueueCompaction)
	if err != nil {
		return fail(err)
	}
	kb := &killBlob{Store: fb, k: k}
	kt := &killTable{Table: tbl, k: k}
	store, err := vector.New(vector.Options{Blob: kb, Items: kt, Dims: dims, Log: log})
	if err != nil {
		return fail(err)
	}
	cache, err := vector.OpenCache(ctx, kb, vector.CacheOptions{Dir: filepath.Join(dir, "cache-helper")})
	if err != nil {
		return fail(err)
	}
	w, err := compaction.New(compaction.Config{
		Queue: q, Store: store, Cache: cache, Items: kt, Owner: "helper",
		LeaseTTL: time.Second, Visibility: 500 * time.Millisecond, Wait: time.Second, RescueEvery: -1,
		Compact: vector.CompactOptions{MaxDeltas: 3},
		// Maintain at every publish: merges of two segments and graphs
		// from 4 records, so kills land inside maintenance too.
		Maintain: vector.MaintainOptions{Fanout: 2, Base: 2, GraphMin: 4},
		// Collect eagerly so that kills can land in the middle of it.
		GC:  vector.GCOptions{Keep: 1, Grace: time.Nanosecond},
		Log: log,
	})
	if err != nil {
		return fail(err)
	}
	if err := w.Run(ctx); err != nil {
		return fail(err)
	}
	log.Error("helper was never killed", "point", os.Getenv(envPoint))
	return 3
}

// killer SIGKILLs its own process at the n-th operation of one kind,
// before or after the operation runs.
type killer struct {
	kind   string
	before bool
	n      int64
	count  atomic.Int64
}

func parseKiller(s string) (*killer, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 || (parts[1] != "before" && parts[1] != "after") {
		return nil, fmt.Errorf("kill point %q: want kind:before|after:n", s)
	}
	n, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("kill point %q: bad count", s)
	}
	return &killer{kind: parts[0], before: parts[1] == "before", n: n}, nil
}

func (k *killer) around(kind string, op func()) {
	if kind == "" || kind != k.kind {
		op()
		return
	}
	hit := k.count.Add(1) == k.n
	if hit && k.before {
		die()
	}
	op()
	if hit && !k.before {
		die()
	}
}

func die() {
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Minute) // never reached: SIGKILL cannot be caught
}

// killBlob kills on segment puts ("segment"), manifest puts ("manifest")
// and deletes ("gc").
type killBlob struct {
	blob.Store
	k *killer
}

func (s *killBlob) Put(ctx context.Context, key string, r io.Reader, opts blob.PutOptions) (info blob.Info, err error) {
	kind := ""
	switch {
	case strings.HasSuffix(key, "-graph.seg"):
		kind = "graph"
	case strings.Contains(key, "/segments/"):
		kind = "segment"
	}
	s.k.around(kind, func() { info, err = s.Store.Put(ctx, key, r, opts) })
	return info, err
}

func (s *killBlob) PutIfAbsent(ctx context.Context, key string, r io.Reader, opts blob.PutOptions) (info blob.Info, err error) {
	kind := ""
	if strings.Contains(key, "/versions/") {
		kind = "manifest"
	}
	s.k.around(kind, func() { info, err = s.Store.PutIfAbsent(ctx, key, r, opts) })
	return info, err
}

func (s *killBlob) Delete(ctx context.Context, key string) (err error) {
	s.k.around("gc", func() { err = s.Store.Delete(ctx, key) })
	return err
}

// killTable kills on the publishing transaction ("publish") and on updates
// of CompactionRun items ("mark").
type killTable struct {
	items.Table
	k *killer
}

func (t *killTable) TransactWrite(ctx context.Context, writes []items.Write) (err error) {
	kind := ""
	for _, w := range writes {
		if w.Kind == items.WritePut && w.Item[items.AttrType] == "VECTOR_HEAD" {
			kind = "publish"
			if len(writes) == 2 {
				// The fence and the head alone: maintenance, which
				// marks no delta applied.
				kind = "maintain"
			}
		}
	}
	t.k.around(kind, func() { err = t.Table.TransactWrite(ctx, writes) })
	return err
}

func (t *killTable) Update(ctx context.Context, key items.Key, u items.Update) (it items.Item, err error) {
	kind := ""
	if strings.Contains(key.SK, "#COMPACTION_RUN#") {
		kind = "mark"
	}
	t.k.around(kind, func() { it, err = t.Table.Update(ctx, key, u) })
	return it, err
}
