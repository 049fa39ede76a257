// Package process is the process stage (the old "process OCR" Lambda): for
// each OCR result it writes the receipt's entities, renditions, embeddings,
// vector deltas and compaction run, so that the receipt becomes searchable.
//
// One batch handler serves two hosts: the long-running worker (Run, on the
// shared queue consumer) and the Lambda SQS handler (HandleSQSEvent), whose
// batchItemFailures name exactly the records that failed. Every record is
// idempotent — its run id is a function of (image, receipt, OCR job) — and
// no record is ever acknowledged unless it was processed or, when it can
// never succeed, sent to the dead-letter queue with its reason.
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/embed"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/merchant"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/queue/consumer"
	"github.com/tallyhq/tally/renditions"
	"github.com/tallyhq/tally/textindex"
	"github.com/tallyhq/tally/vector"
)

// EmbedWindow is how long a coalescing embedder in front of the process
// stage should hold a call for company: the records of a batch reach their
// embedding step within about this long of each other (each builds its
// entities first, ~15 ms of CPU), so ten records share one request.
const EmbedWindow = 100 * time.Millisecond

// Defaults of Config.
const (
	DefaultVisibility = 2 * time.Minute
	// DefaultDeadlineReserve is how close to its context's deadline a batch
	// stops starting records.
	DefaultDeadlineReserve = 10 * time.Second
)

// Config configures a Worker.
type Config struct {
	Items    items.Table
	Blob     blob.Store
	Embedder embed.Embedder
	Vectors  *vector.Store
	// Results is the ocr-results queue (Run consumes it); DeadLetter is its
	// dead-letter queue, where records that can never succeed are sent with
	// their reason; Compaction receives one message per run.
	Results    queue.Queue
	DeadLetter queue.Queue
	Compaction queue.Queue
	// Merchant, when not nil, resolves each receipt's merchant (ReceiptPlace)
	// and its name goes into the receipt's vector metadata.
	Merchant *merchant.Resolver
	// Labels, when not nil, labels each receipt after its entities are
	// written (word labels, summary, line items) and puts each word's
	// VALID label into its vector metadata.
	Labels *label.Pipeline
	// Text, when not nil, indexes each receipt's rows for full-text
	// search (with the summary's merchant and date once labelled).
	Text textindex.Index
	// Renditions, when not nil, renders the image and each receipt into
	// Assets (default Blob; a bucket of its own on AWS).
	Renditions *renditions.Options
	Assets     blob.Store
	// Parallel bounds records processed at once; default 10, a whole SQS
	// batch, so a batch's embeddings share requests (the work is mostly
	// waiting on the stores and the embedder, not CPU).
	Parallel int
	// DeadlineReserve: no record starts when the context's deadline is
	// closer than this (Lambda); the unstarted ones fail.
	DeadlineReserve time.Duration
	Visibility      time.Duration
	Wait            time.Duration
	MaxReceiveCount int
	Log             *slog.Logger
	// OnRecord, when set, is called after each record (tests).
	OnRecord func(imageID string, err error)
	// Checkpoint, when set, is called at the named points of a record:
	// "entities" (written), "deltas" (a receipt's deltas written), "run"
	// (its compaction run created). Tests kill the process there.
	Checkpoint func(point string)
}

// Worker is the process stage.
type Worker struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and fills in defaults.
func New(cfg Config) (*Worker, error) {
	if cfg.Items == nil || cfg.Blob == nil || cfg.Embedder == nil || cfg.Vectors == nil || cfg.Compaction == nil {
		return nil, fmt.Errorf("process worker: Items, Blob, Embedder, Vectors and Compaction are required: %w", tally.ErrInvalidArgument)
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = queue.MaxBatch
	}
	if cfg.Assets == nil {
		cfg.Assets = cfg.Blob
	}
	if cfg.DeadlineReserve <= 0 {
		cfg.DeadlineReserve = DefaultDeadlineReserve
	}
	if cfg.Visibility <= 0 {
		cfg.Visibility = DefaultVisibility
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return &Worker{cfg: cfg, log: log.With("component", "process")}, nil
}

// Run consumes the ocr-results queue until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	if w.cfg.Results == nil {
		return fmt.Errorf("process worker: Run needs the Results queue: %w", tally.ErrInvalidArgument)
	}
	c, err := consumer.New(consumer.Config{
		Queue: w.cfg.Results, Name: "process", MaxBatch: queue.MaxBatch, Wait: w.cfg.Wait,
		Visibility: w.cfg.Visibility, MaxReceiveCount: w.cfg.MaxReceiveCount, Log: w.log,
	})
	if err != nil {
		return err
	}
	if w.cfg.Renditions != nil {
		// Compile the WebAssembly encoders now, not on the first record.
		go renditions.Warm()
	}
	w.log.Info("process worker ready", "parallel", w.cfg.Parallel, "embedder", w.cfg.Embedder.Model(), "renditions", w.cfg.Renditions != nil)
	return c.Run(ctx, w.HandleBatch)
}

// ErrNotStarted fails a record that was not started because the batch's
// deadline was too close; it is retried.
var ErrNotStarted = consumer.ErrNotStarted

// Permanent marks why a record can never succeed (malformed message, OCR
// result or geometry; a missing job or result). Such a record is sent to
// the dead-letter queue with its reason instead of being retried.
type Permanent struct{ Err error }

func (p *Permanent) Error() string { return "permanent: " + p.Err.Error() }
func (p *Permanent) Unwrap() error { return p.Err }

func permanent(format string, args ...any) error {
	return &Permanent{Err: fmt.Errorf(format, args...)}
}

// HandleBatch processes records concurrently (at most Parallel at once) and
// returns one error per record: nil when it is done (processed, or
// dead-lettered with its reason), else why it must be retried. Records not
// started before the deadline reserve fail with ErrNotStarted.
func (w *Worker) HandleBatch(ctx context.Context, msgs []queue.Message) []error {
	return consumer.Each(ctx, msgs, w.cfg.Parallel, w.cfg.DeadlineReserve, w.handle)
}

// handle runs one record and settles a permanent failure: recorded on the
// job and routing items and sent to the dead-letter queue, then the
// original is done.
func (w *Worker) handle(ctx context.Context, m queue.Message) error {
	start := time.Now()
	rm, err := ocrjob.DecodeResultMessage(m.Body)
	if err != nil {
		err = &Permanent{Err: err}
	} else {
		err = w.Process(ctx, rm)
	}
	if w.cfg.OnRecord != nil {
		defer w.cfg.OnRecord(rm.ImageID, err)
	}
	var p *Permanent
	if !errors.As(err, &p) {
		if err == nil {
			w.log.Info("record processed", "image_id", rm.ImageID, "job_id", rm.JobID, "duration", time.Since(start).Round(time.Millisecond))
		}
		return err
	}
	reason := p.Err.Error()
	w.log.Warn("record cannot be processed; sending it to the dead-letter queue", "image_id", rm.ImageID, "job_id", rm.JobID, "reason", reason)
	if rm.ImageID != "" && rm.JobID != "" {
		if err := w.recordFailure(ctx, rm, reason); err != nil {
			return err
		}
	}
	if w.cfg.DeadLetter == nil {
		// No dead-letter queue to hand it to: leave it for the redrive.
		return err
	}
	attrs := map[string]string{"failure_reason": clip(reason, 250), "source_message_id": m.ID}
	if _, serr := queue.Send(ctx, w.cfg.DeadLetter, m.Body, attrs); serr != nil {
		return fmt.Errorf("send to dead-letter queue: %w (record failed: %v)", serr, err)
	}
	return nil
}

// recordFailure writes the reason on the job and routing items (those that
// exist).
func (w *Worker) recordFailure(ctx context.Context, rm ocrjob.ResultMessage, reason string) error {
	for _, k := range []items.Key{ocrjob.JobKey(rm.ImageID, rm.JobID), ocrjob.RoutingKey(rm.ImageID, rm.JobID)} {
		_, err := w.cfg.Items.Update(ctx, k, items.Update{
			Expr:   "SET process_status = :failed, process_failure_reason = :reason, updated_at = :now",
			Cond:   "attribute_exists(PK)",
			Values: map[string]any{":failed": ocrjob.StatusFailed, ":reason": clip(reason, 1000), ":now": ocrjob.FormatTime(time.Now())},
		})
		if err != nil && !errors.Is(err, tally.ErrConditionFailed) {
			return fmt.Errorf("record failure reason: %w", err)
		}
	}
	return nil
}

func (w *Worker) checkpoint(point string) {
	if w.cfg.Checkpoint != nil {
		w.cfg.Checkpoint(point)
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && (s[n]&0xc0) == 0x80 {
		n--
	}
	return s[:n]
}
