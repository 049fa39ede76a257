// Package compaction is the compactor: the single writer of each vector
// collection. It consumes compaction messages in batches, and for every
// collection a batch names it takes the collection's lease, merges every
// pending delta into new versions (vector.Store.Compact, fenced by the
// lease), marks the batch's CompactionRuns complete, settles any other
// pending run whose delta is now merged, garbage-collects what no kept
// version references, and releases the lease.
//
// Failure handling, in short:
//
//   - A message that can never succeed (bad JSON, missing fields, a
//     collection this compactor does not serve) is left on the queue, not
//     deleted; each receive logs why, and the queue's redrive policy moves
//     it to the dead-letter queue after MaxReceiveCount receives. No bad
//     record is dropped silently, and none fails the good ones beside it.
//   - A run whose delta is missing or quarantined fails the same way
//     (retries, then the dead-letter queue), with the reason logged.
//   - A lease held by another compactor is normal when several run: the
//     messages whose deltas it has not merged yet fail at once (no waiting)
//     and are retried after their visibility timeout, by which time the
//     holder has merged them; those already merged complete straight away.
//   - A compactor killed at any point loses nothing: everything before the
//     publishing transaction is invisible garbage, the publish is atomic and
//     fenced, and run marking is idempotent, so the redelivered messages
//     finish the job. Before garbage collection removes merged deltas, the
//     compactor completes every pending run whose deltas are merged (its
//     message may be late or lost, and a run can only be marked while its
//     delta can be looked up). The rescuer re-sends the message of any run
//     left pending too long, so no run is stuck forever.
//
// HandleBatch is the part shared with the AWS Lambda handler; Run is the
// long-running loop around it for one machine.
package compaction

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/lease"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/queue/consumer"
	"github.com/tallyhq/tally/vector"
)

// Defaults for Config's zero values.
const (
	DefaultLeaseTTL     = 30 * time.Second
	DefaultMaxBatch     = 1000
	DefaultGatherWindow = 2 * time.Second
	DefaultWait         = queue.MaxWait
	DefaultVisibility   = 2 * time.Minute
	DefaultRescueEvery  = time.Minute
	DefaultRescueAfter  = 15 * time.Minute
	// DefaultMaintainEvery is how often Run looks for maintenance that
	// no publish of its own asked for (work another compactor left).
	DefaultMaintainEvery = time.Minute
)

// LeaseSuffix is appended to a collection's name to name its compaction
// lease (item PK=LOCK#{collection}#compaction).
const LeaseSuffix = "#compaction"

// markWorkers bounds how many runs are marked at once.
const markWorkers = 8

// maxCompactRounds bounds the versions one batch publishes per collection
// (each merges up to vector.MaxDeltasPerVersion deltas), so writers that
// never stop cannot keep one batch busy forever.
const maxCompactRounds = 1000

// Errors a message's failure wraps, beside tally.ErrInvalidArgument (bad
// message), tally.ErrNotFound (no run, or no delta for it), lease.ErrHeld
// and lease.ErrLost.
var (
	// ErrQuarantined means the run's delta is registered but its segment
	// is unreadable; writing the run again repairs it.
	ErrQuarantined = errors.New("delta quarantined")
	// ErrNotMerged means the run's delta is still pending after this
	// batch's compaction (typically another compactor holds the lease and
	// will merge it); retrying later succeeds.
	ErrNotMerged = errors.New("delta not merged yet")
)

// Config configures a Worker. Zero values take the defaults above.
type Config struct {
	// Queue is the compaction queue; Run needs it, HandleBatch does not.
	Queue queue.Queue
	// Store, Cache and Items are the vector store, this worker's segment
	// cache, and the table holding leases and runs (the store's table).
	Store *vector.Store
	Cache *vector.Cache
	Items items.Table
	// Collections are the collections this compactor serves; a message
	// naming another is invalid. Default lines and words.
	Collections []string
	// Owner identifies this worker in leases; default hostname:pid:random.
	Owner string
	// LeaseTTL is the lease's life; lease.Keep renews it every third.
	LeaseTTL time.Duration
	// MaxBatch is the most messages one batch gathers (repeated receives
	// of 10 until the queue is empty, MaxBatch is reached, or GatherWindow
	// has passed since the first message).
	MaxBatch     int
	GatherWindow time.Duration
	// Wait is the long-polling time of the first receive, up to 20 s.
	Wait time.Duration
	// Visibility is how long received messages stay hidden; while a batch
	// is worked on it is extended every Visibility/3 (heartbeat).
	Visibility time.Duration
	// MaxReceiveCount is the queue's redrive threshold, used only to say in
	// the log that a bad message goes to the dead-letter queue next; 0 if
	// unknown.
	MaxReceiveCount int
	// Compact and GC tune vector compaction and garbage collection (GC
	// keeps 4 versions and a 10 minute grace period by default).
	Compact vector.CompactOptions
	GC      vector.GCOptions
	// Maintain tunes the vector store's maintenance (tiered merges and
	// graph builds; its Lock is the worker's own). Run maintains in the
	// background, after each publish and every MaintainEvery (default a
	// minute; negative turns maintenance off); HandleMessages, the Lambda
	// handler, maintains after the batch within the invocation's deadline.
	Maintain      vector.MaintainOptions
	MaintainEvery time.Duration
	// RescueEvery is how often Run looks for stale pending runs (negative
	// disables); RescueAfter is how old a pending run must be.
	RescueEvery time.Duration
	RescueAfter time.Duration
	Log         *slog.Logger
}

// Worker is a compactor. Its methods are safe for concurrent use, but one
// Worker is meant to run one loop; run more Workers (each with its own Cache
// and Owner) for more compactors.
type Worker struct {
	cfg     Config
	allowed map[string]bool
	log     *slog.Logger
}

// New checks cfg and fills in its defaults.
func New(cfg Config) (*Worker, error) {
	bad := func(format string, args ...any) (*Worker, error) {
		return nil, fmt.Errorf("compaction worker: %s: %w", fmt.Sprintf(format, args...), tally.ErrInvalidArgument)
	}
	if cfg.Store == nil || cfg.Cache == nil || cfg.Items == nil {
		return bad("Store, Cache and Items are required")
	}
	if len(cfg.Collections) == 0 {
		cfg.Collections = []string{vector.CollectionLines, vector.CollectionWords}
	}
	allowed := map[string]bool{}
	for _, c := range cfg.Collections {
		if err := vector.ValidateCollection(c); err != nil {
			return nil, fmt.Errorf("compaction worker: %w", err)
		}
		allowed[c] = true
	}
	if cfg.Owner == "" {
		cfg.Owner = defaultOwner()
	}
	switch {
	case cfg.LeaseTTL < 0, cfg.MaxBatch < 0, cfg.GatherWindow < 0, cfg.Wait < 0, cfg.Visibility < 0, cfg.RescueAfter < 0:
		return bad("LeaseTTL %v, MaxBatch %d, GatherWindow %v, Wait %v, Visibility %v, RescueAfter %v: none may be negative",
			cfg.LeaseTTL, cfg.MaxBatch, cfg.GatherWindow, cfg.Wait, cfg.Visibility, cfg.RescueAfter)
	case cfg.Wait > queue.MaxWait:
		return bad("wait %v is over %v", cfg.Wait, queue.MaxWait)
	case cfg.Visibility > queue.MaxVisibility:
		return bad("visibility %v is over %v", cfg.Visibility, queue.MaxVisibility)
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.GatherWindow == 0 {
		cfg.GatherWindow = DefaultGatherWindow
	}
	if cfg.Wait == 0 {
		cfg.Wait = DefaultWait
	}
	if cfg.Visibility == 0 {
		cfg.Visibility = DefaultVisibility
	}
	if cfg.RescueEvery == 0 {
		cfg.RescueEvery = DefaultRescueEvery
	}
	if cfg.MaintainEvery == 0 {
		cfg.MaintainEvery = DefaultMaintainEvery
	}
	if cfg.RescueAfter == 0 {
		cfg.RescueAfter = DefaultRescueAfter
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "compactor", "owner", cfg.Owner)
	return &Worker{cfg: cfg, allowed: allowed, log: log}, nil
}

func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Owner is the identity this worker takes leases under.
func (w *Worker) Owner() string { return w.cfg.Owner }

// Run receives and handles batches until ctx ends, then returns nil. Between
// batches it runs the rescuer every RescueEvery (and once at start). Queue
// errors are logged and retried with backoff, never fatal.
func (w *Worker) Run(ctx context.Context) error {
	if w.cfg.Queue == nil {
		return fmt.Errorf("compaction worker: Run needs a Queue: %w", tally.ErrInvalidArgument)
	}
	c, err := consumer.New(consumer.Config{
		Queue:           w.cfg.Queue,
		Name:            "compactor",
		MaxBatch:        w.cfg.MaxBatch,
		GatherWindow:    w.cfg.GatherWindow,
		Wait:            w.cfg.Wait,
		Visibility:      w.cfg.Visibility,
		MaxReceiveCount: w.cfg.MaxReceiveCount,
		Idle:            w.rescuer(),
		Log:             w.log,
	})
	if err != nil {
		return fmt.Errorf("compaction worker: %w", err)
	}
	w.log.Info("compactor started", "queue", w.cfg.Queue.Name(), "collections", w.cfg.Collections)
	defer w.log.Info("compactor stopped")
	if w.cfg.MaintainEvery < 0 {
		return c.Run(ctx, w.handle)
	}
	mctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	kick := make(chan struct{}, 1)
	wg.Go(func() { w.maintainLoop(mctx, kick) })
	defer wg.Wait()
	defer cancel()
	return c.Run(ctx, func(ctx context.Context, raw []queue.Message) []error {
		errs, published := w.handleMessages(ctx, raw)
		if published {
			select {
			case kick <- struct{}{}:
			default:
			}
		}
		return errs
	})
}

// handle is HandleMessages without maintenance.
func (w *Worker) handle(ctx context.Context, raw []queue.Message) []error {
	errs, _ := w.handleMessages(ctx, raw)
	return errs
}

// maintainLoop maintains every collection after each kick (a publish) and
// every MaintainEvery, one collection at a time, until ctx ends. The heavy
// work holds no lease, so compaction goes on beside it.
func (w *Worker) maintainLoop(ctx context.Context, kick <-chan struct{}) {
	tick := time.NewTicker(w.cfg.MaintainEvery)
	defer tick.Stop()
	for {
		for _, coll := range w.cfg.Collections {
			w.maintain(ctx, coll)
		}
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-tick.C:
		}
	}
}

// maintain runs the store's maintenance of coll, taking the collection's
// compaction lease only for each publish (under an owner of its own, so it
// never shares this worker's compaction tenure), and logs the outcome.
func (w *Worker) maintain(ctx context.Context, coll string) {
	opts := w.cfg.Maintain
	opts.Lock = func(ctx context.Context) (*lease.Lease, error) {
		return lease.Acquire(ctx, w.cfg.Items, coll+LeaseSuffix, w.cfg.Owner+"/maintain", w.cfg.LeaseTTL, lease.Options{})
	}
	if opts.Mirror == "" {
		opts.Mirror = w.cfg.Compact.Mirror
	}
	start := time.Now()
	res, err := w.cfg.Store.Maintain(ctx, coll, w.cfg.Cache, opts)
	if err != nil && ctx.Err() == nil {
		w.log.Warn("vector maintenance failed; it is tried again later", "collection", coll, "err", err)
	}
	if res.Merges+res.Rewrites+res.Graphs > 0 {
		w.log.Info("vector maintenance", "collection", coll, "version", res.Version, "segments", res.Segments,
			"merges", res.Merges, "merged", res.Merged, "rewrites", res.Rewrites, "graphs", res.Graphs,
			"dropped", res.Dropped, "took", time.Since(start).Round(time.Millisecond))
	}
}

// rescuer returns the consumer's Idle hook for one Run: it rescues stale
// runs when due (at once, then every RescueEvery) and bounds the next
// receive's wait so the following rescue is on time. nil when rescue is
// disabled.
func (w *Worker) rescuer() func(context.Context) time.Duration {
	if w.cfg.RescueEvery <= 0 {
		return nil
	}
	next := time.Now()
	return func(ctx context.Context) time.Duration {
		if !time.Now().Before(next) {
			if n, err := rescue(ctx, w.cfg.Items, w.cfg.Queue, w.cfg.RescueAfter, time.Now(), w.log); err != nil {
				if ctx.Err() == nil {
					w.log.Warn("rescue of stale compaction runs failed", "err", err)
				}
			} else if n > 0 {
				w.log.Info("rescued stale compaction runs", "runs", n)
			}
			next = time.Now().Add(w.cfg.RescueEvery)
		}
		return time.Until(next)
	}
}

// HandleMessages is the handler of received compaction messages (Run's
// consumer.Handler and the Lambda SQS handler's): it decodes the batch and
// hands the messages that decode to HandleBatch; the caller deletes what
// succeeded and leaves the rest for a retry and, if they keep failing, the
// dead-letter queue.
//
// As the Lambda handler it then maintains the collections it published,
// leaving a fifth of the time to the deadline unused (a step cut short is
// simply done again later).
func (w *Worker) HandleMessages(ctx context.Context, raw []queue.Message) []error {
	errs, published := w.handleMessages(ctx, raw)
	if !published || w.cfg.MaintainEvery < 0 {
		return errs
	}
	mctx := ctx
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		mctx, cancel = context.WithDeadline(ctx, d.Add(-time.Until(d)/5))
		defer cancel()
	}
	for _, coll := range w.cfg.Collections {
		w.maintain(mctx, coll)
	}
	return errs
}

// handleMessages decodes and handles raw; published reports whether a
// version was published.
func (w *Worker) handleMessages(ctx context.Context, raw []queue.Message) (errs []error, published bool) {
	errs = make([]error, len(raw))
	var good []Message
	var goodIdx []int
	for i, m := range raw {
		msg, err := Decode(m.Body)
		if err != nil {
			errs[i] = err
			continue
		}
		good = append(good, msg)
		goodIdx = append(goodIdx, i)
	}
	if len(good) > 0 {
		berrs, pub := w.handleBatch(ctx, good)
		published = pub
		for j, i := range goodIdx {
			errs[i] = berrs[j]
			if errors.Is(errs[i], lease.ErrHeld) {
				// Another compactor holds the collection and is merging
				// this run's delta now: look again soon, when the retry
				// finds the run complete, not after a whole visibility
				// timeout. (Under Lambda the event source mapping decides.)
				errs[i] = consumer.RetryAfter(errs[i], heldRetry(raw[i].ReceiveCount, w.cfg.LeaseTTL))
			}
		}
	}
	return errs, published
}

// HeldRetry is how soon a message whose collection another compactor holds
// comes back the first time.
const HeldRetry = 5 * time.Second

// heldRetry doubles HeldRetry with each receive, up to the lease's TTL, so
// that the retries a message gets before the dead-letter queue outlast the
// lease of a holder that died (which nobody can take over until it
// expires): 5 s, 10 s, 20 s, then the TTL. A live holder still finds the
// first retry quick.
func heldRetry(receiveCount int, ttl time.Duration) time.Duration {
	d := HeldRetry
	for n := 1; n < receiveCount && d < ttl; n++ {
		d *= 2
	}
	return min(max(d, HeldRetry), max(ttl, HeldRetry))
}

// HandleBatch is the compactor's core: for each message, nil when its run's
// collections are merged and marked complete (delete it), or why not (leave
// it for a retry and, if it keeps failing, the dead-letter queue). One bad
// message never fails another.
//
// For each collection the batch names it takes the lease, compacts until
// nothing is pending, marks the runs, collects garbage and releases the
// lease. A collection whose lease another compactor holds is not waited for:
// its runs already merged complete, the others fail with lease.ErrHeld.
//
// HandleBatch neither receives nor deletes: its caller owns the messages
// (Run here; the Lambda host maps failures to batchItemFailures) and keeps
// their visibility extended while it runs.
func (w *Worker) HandleBatch(ctx context.Context, msgs []Message) []error {
	errs, _ := w.handleBatch(ctx, msgs)
	return errs
}

func (w *Worker) handleBatch(ctx context.Context, msgs []Message) (errs []error, published bool) {
	errs = make([]error, len(msgs))
	var colls []string
	seen := map[string]bool{}
	for i, m := range msgs {
		if err := w.validate(m); err != nil {
			errs[i] = err
			continue
		}
		for _, c := range m.Collections {
			if !seen[c] {
				seen[c] = true
				colls = append(colls, c)
			}
		}
	}
	sort.Strings(colls)

	// Compact every collection at once, each under its own lease.
	tenures := make([]*tenure, len(colls))
	compactErr := make(map[string]error, len(colls))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, c := range colls {
		wg.Go(func() {
			t, err := w.compact(ctx, c)
			tenures[i] = t
			mu.Lock()
			compactErr[c] = err
			mu.Unlock()
		})
	}
	wg.Wait()

	// Mark the runs while still holding the leases, so garbage collection
	// cannot remove a delta whose run is not marked yet.
	jobs := make(chan int)
	for range min(markWorkers, len(msgs)) {
		wg.Go(func() {
			for i := range jobs {
				errs[i] = w.markRun(ctx, msgs[i], compactErr)
			}
		})
	}
	for i := range msgs {
		if errs[i] == nil {
			jobs <- i
		}
	}
	close(jobs)
	wg.Wait()

	for _, t := range tenures {
		if t != nil {
			published = published || t.published
			wg.Go(func() { w.finish(ctx, t) })
		}
	}
	wg.Wait()
	return errs, published
}

func (w *Worker) validate(m Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	for _, c := range m.Collections {
		if !w.allowed[c] {
			return fmt.Errorf("compaction message for run %q: collection %q is not one this compactor serves (%v): %w",
				m.RunID, c, w.cfg.Collections, tally.ErrInvalidArgument)
		}
	}
	return nil
}

// tenure is a held collection lease and the context that ends when it is
// lost.
type tenure struct {
	coll      string
	lease     *lease.Lease
	held      context.Context
	stop      func() error
	compacted bool // compaction finished cleanly
	published bool // and published at least one version
}

// compact takes the collection's lease and publishes versions until no
// delta is pending. It returns the tenure (to finish later) even on a
// compaction error, so the lease is always released.
func (w *Worker) compact(ctx context.Context, coll string) (*tenure, error) {
	l, err := lease.Acquire(ctx, w.cfg.Items, coll+LeaseSuffix, w.cfg.Owner, w.cfg.LeaseTTL, lease.Options{})
	if err != nil {
		if errors.Is(err, lease.ErrHeld) {
			w.log.Info("collection is being compacted by another owner; its runs are retried later", "collection", coll)
		}
		return nil, fmt.Errorf("compact %s: %w", coll, err)
	}
	held, stop := l.Keep(ctx, w.log)
	t := &tenure{coll: coll, lease: l, held: held, stop: stop}
	perVersion := w.cfg.Compact.MaxDeltas
	if perVersion <= 0 || perVersion > vector.MaxDeltasPerVersion {
		perVersion = vector.MaxDeltasPerVersion
	}
	for range maxCompactRounds {
		res, err := w.cfg.Store.Compact(held, coll, l, w.cfg.Cache, w.cfg.Compact)
		if err != nil {
			if cause := context.Cause(held); cause != nil && ctx.Err() == nil {
				err = fmt.Errorf("%w (%w)", err, cause)
			}
			w.log.Warn("compaction failed", "collection", coll, "epoch", l.Epoch(), "err", err)
			return t, fmt.Errorf("compact %s: %w", coll, err)
		}
		t.published = t.published || res.Published
		for _, d := range res.Quarantined {
			w.log.Error("delta quarantined: its run fails until the run is written again",
				"collection", coll, "run", d.RunID, "seq", d.Seq, "reason", d.Quarantined)
		}
		// Fewer deltas than a version holds means none were left behind.
		if len(res.Deltas)+len(res.Quarantined) < perVersion {
			break
		}
	}
	t.compacted = true
	return t, nil
}

// finish settles pending runs and collects garbage, only after a clean
// compaction that published something (nothing new to collect otherwise;
// leftovers wait for the next publish) and only while the lease is held.
// Then it releases the lease.
func (w *Worker) finish(ctx context.Context, t *tenure) {
	if t.compacted && t.published && t.held.Err() == nil {
		covered, err := w.settle(t.held, t.coll)
		switch {
		case err != nil:
			if t.held.Err() == nil {
				w.log.Warn("settling pending runs failed; garbage collection waits for the next batch", "collection", t.coll, "err", err)
			}
		case !covered:
			w.log.Info("many pending runs; garbage collection waits until they are settled", "collection", t.coll)
		default:
			if _, err := w.cfg.Store.GC(t.held, t.coll, w.cfg.GC); err != nil && t.held.Err() == nil {
				w.log.Warn("vector garbage collection failed; the next batch retries it", "collection", t.coll, "err", err)
			}
		}
	}
	if err := t.stop(); err != nil {
		w.log.Warn("lease lost during compaction", "collection", t.coll, "err", err)
	}
	// Release even when ctx ended, so the next compactor need not wait out
	// the lease.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := t.lease.Release(rctx); err != nil {
		w.log.Warn("release lease failed; it expires by itself", "collection", t.coll, "err", err)
	}
}

// settleBudget bounds how many pending runs one settle pass reads.
const settleBudget = 2000

// settle marks coll complete in every pending run whose delta in coll is
// merged, oldest run first, and completes the runs that are then done. It
// runs under the lease just before garbage collection, which deletes
// merged deltas (and with them what RunDelta finds): a run whose message is
// late or lost (the rescuer re-sends it only after RescueAfter) must be
// marked while its delta can still be looked up. covered is false when the
// budget ran out before the last pending run; GC then waits.
func (w *Worker) settle(ctx context.Context, coll string) (covered bool, err error) {
	q := items.Query{Index: PendingIndex, PK: PendingPK, Limit: 500}
	read, settled := 0, 0
	defer func() {
		if settled > 0 {
			w.log.Info("completed pending runs whose message has not been handled yet", "collection", coll, "runs", settled)
		}
	}()
	for {
		page, err := w.cfg.Items.Query(ctx, q)
		if err != nil {
			return false, fmt.Errorf("settle %s: query pending runs: %w", coll, err)
		}
		for _, it := range page.Items {
			read++
			run, err := runFromItem(it)
			if err != nil || run.Status != StatusPending || !slices.Contains(run.Collections, coll) {
				continue // a malformed run is the rescuer's to report
			}
			k := it.Key()
			if run.States[coll].State != StatusCompleted {
				d, err := w.cfg.Store.RunDelta(ctx, coll, run.RunID)
				if errors.Is(err, tally.ErrNotFound) {
					continue // nothing registered: nothing for GC to remove
				}
				if err != nil {
					return false, fmt.Errorf("settle %s: %w", coll, err)
				}
				if d.AppliedVersion == 0 {
					continue
				}
				if run, err = markCollection(ctx, w.cfg.Items, k, coll, d.AppliedVersion, d.Upserts); err != nil {
					return false, fmt.Errorf("settle %s: %w", coll, err)
				}
			}
			// Complete also a run whose last step a crash interrupted.
			if run.Status == StatusPending && run.complete() {
				if err := completeRun(ctx, w.cfg.Items, k, run, time.Now()); err != nil {
					return false, fmt.Errorf("settle %s: %w", coll, err)
				}
				settled++
			}
		}
		if page.NextToken == "" {
			return true, nil
		}
		if read >= settleBudget {
			return false, nil
		}
		q.Token = page.NextToken
	}
}

// markRun records each of the message's collections whose delta is merged,
// and the run as COMPLETED once all of them are. Everything it writes is a
// fixed value under a condition, so a redelivered message changes nothing.
func (w *Worker) markRun(ctx context.Context, m Message, compactErr map[string]error) error {
	k := RunKey(m.ImageID, m.ReceiptID, m.RunID)
	it, err := w.cfg.Items.Get(ctx, k)
	if errors.Is(err, tally.ErrNotFound) {
		return fmt.Errorf("run %s (image %s, receipt %d): no CompactionRun item (CreateRun must come before Enqueue): %w",
			m.RunID, m.ImageID, m.ReceiptID, err)
	}
	if err != nil {
		return fmt.Errorf("run %s: %w", m.RunID, err)
	}
	run, err := runFromItem(it)
	if err != nil {
		return fmt.Errorf("run %s: %w", m.RunID, err)
	}
	if run.Status == StatusCompleted {
		return nil
	}
	var errs []error
	for _, c := range m.Collections {
		if run.States[c].State == StatusCompleted {
			continue
		}
		d, err := w.cfg.Store.RunDelta(ctx, c, m.RunID)
		switch {
		case errors.Is(err, tally.ErrNotFound):
			errs = append(errs, fmt.Errorf("run %s: no delta registered in %s: %w", m.RunID, c, err))
		case err != nil:
			errs = append(errs, fmt.Errorf("run %s: %w", m.RunID, err))
		case d.Quarantined != "":
			errs = append(errs, fmt.Errorf("run %s: delta #%d in %s is unreadable (%s); write the run again to repair it: %w",
				m.RunID, d.Seq, c, d.Quarantined, ErrQuarantined))
		case d.AppliedVersion == 0:
			cause := compactErr[c]
			if cause == nil {
				cause = ErrNotMerged
			}
			errs = append(errs, fmt.Errorf("run %s: delta #%d in %s not merged yet: %w", m.RunID, d.Seq, c, cause))
		default:
			r, err := markCollection(ctx, w.cfg.Items, k, c, d.AppliedVersion, d.Upserts)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			run = r
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if run.Status == StatusCompleted {
		return nil
	}
	if !run.complete() {
		// The message named fewer collections than the run: its part is
		// done; the rescuer re-sends the run with all of them.
		w.log.Warn("run has collections its message did not name; left pending for the rescuer",
			"run", m.RunID, "message_collections", m.Collections, "run_collections", run.Collections)
		return nil
	}
	if err := completeRun(ctx, w.cfg.Items, k, run, time.Now()); err != nil {
		return fmt.Errorf("run %s: %w", m.RunID, err)
	}
	return nil
}
