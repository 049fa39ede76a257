package ocrstage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/imaging"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/queue/consumer"
)

// Defaults of Config.
const (
	DefaultVisibility   = 2 * time.Minute
	DefaultArrivalGrace = 5 * time.Minute
	// DefaultMaxImageBytes matches the upload API's body limit.
	DefaultMaxImageBytes = 25 << 20
)

// Config configures a Worker.
type Config struct {
	Store
	// Jobs is the ocr-jobs queue.
	Jobs   queue.Queue
	Engine ocr.Engine
	// Parallel is how many images are analysed at once (each runs one
	// single-threaded Tesseract); default one per core.
	Parallel int
	// Limits bound decoding; MaxImageBytes bounds the download.
	Limits        imaging.Limits
	MaxImageBytes int64
	// Visibility is the jobs' visibility timeout, extended by a heartbeat
	// while they are worked on.
	Visibility time.Duration
	// Wait is the receive long-poll time (default 20 s).
	Wait time.Duration
	// ArrivalGrace is how long after its upload URL expires a job still
	// waits for its image.
	ArrivalGrace time.Duration
	// MaxReceiveCount is the queue's redrive threshold, for logs.
	MaxReceiveCount int
	// RescueEvery is how often Run re-queues PENDING jobs untouched for
	// RescueAfter (their message was lost); negative disables.
	RescueEvery time.Duration
	RescueAfter time.Duration
	Log         *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Worker consumes the ocr-jobs queue.
type Worker struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and fills in defaults.
func New(cfg Config) (*Worker, error) {
	if cfg.Items == nil || cfg.Blob == nil || cfg.Results == nil || cfg.Engine == nil {
		return nil, fmt.Errorf("ocr worker: Items, Blob, Results and Engine are required: %w", tally.ErrInvalidArgument)
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = runtime.NumCPU()
	}
	if cfg.Visibility <= 0 {
		cfg.Visibility = DefaultVisibility
	}
	if cfg.ArrivalGrace <= 0 {
		cfg.ArrivalGrace = DefaultArrivalGrace
	}
	if cfg.MaxImageBytes <= 0 {
		cfg.MaxImageBytes = DefaultMaxImageBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RescueEvery == 0 {
		cfg.RescueEvery = time.Minute
	}
	if cfg.RescueAfter <= 0 {
		cfg.RescueAfter = 15 * time.Minute
	}
	if cfg.Bucket == "" {
		cfg.Bucket = "tally"
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return &Worker{cfg: cfg, log: log.With("component", "ocr-worker")}, nil
}

// Run receives and handles jobs until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	if w.cfg.Jobs == nil {
		return fmt.Errorf("ocr worker: Run needs the Jobs queue: %w", tally.ErrInvalidArgument)
	}
	c, err := consumer.New(consumer.Config{
		Queue: w.cfg.Jobs, Name: "ocr", MaxBatch: queue.MaxBatch, Wait: w.cfg.Wait,
		Visibility: w.cfg.Visibility, MaxReceiveCount: w.cfg.MaxReceiveCount, Log: w.log,
	})
	if err != nil {
		return err
	}
	w.log.Info("ocr worker started", "engine", w.cfg.Engine.Name(), "parallel", w.cfg.Parallel)
	defer w.log.Info("ocr worker stopped")
	if w.cfg.RescueEvery > 0 {
		var wg sync.WaitGroup
		defer wg.Wait()
		rctx, stop := context.WithCancel(ctx)
		defer stop()
		wg.Go(func() { w.rescueLoop(rctx) })
	}
	return c.Run(ctx, w.HandleBatch)
}

// rescueLoop re-queues stale pending jobs every RescueEvery.
func (w *Worker) rescueLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.RescueEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := Rescue(ctx, w.cfg.Items, w.cfg.Jobs, w.cfg.RescueAfter, w.cfg.Now())
		if err != nil && ctx.Err() == nil {
			w.log.Warn("rescue of stale OCR jobs failed", "err", err)
		} else if n > 0 {
			w.log.Info("re-queued stale OCR jobs", "jobs", n)
		}
	}
}

// HandleBatch handles received ocr-jobs messages, up to Parallel at once,
// and returns one error per message: nil when the message is finished with
// (the job completed, failed permanently with its reason recorded, was a
// duplicate, or was re-queued to wait for its image), else why it must be
// retried.
func (w *Worker) HandleBatch(ctx context.Context, msgs []queue.Message) []error {
	return consumer.Each(ctx, msgs, w.cfg.Parallel, 0, w.handle)
}

// permanent wraps the reason a job cannot succeed.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

func (w *Worker) handle(ctx context.Context, m queue.Message) error {
	jm, err := ocrjob.DecodeJobMessage(m.Body)
	if err != nil {
		return err // left for the dead-letter queue
	}
	log := w.log.With("image_id", jm.ImageID, "job_id", jm.JobID)
	job, err := ocrjob.GetJob(ctx, w.cfg.Items, jm.ImageID, jm.JobID)
	if errors.Is(err, tally.ErrNotFound) {
		return fmt.Errorf("ocr job %s of image %s does not exist: %w", jm.JobID, jm.ImageID, tally.ErrInvalidArgument)
	}
	if err != nil {
		return err
	}
	if job.Status != ocrjob.StatusPending {
		log.Debug("ocr job already finished", "status", job.Status)
		return nil
	}
	start := time.Now()
	var stats runStats
	err = w.run(ctx, &job, &stats, log)
	var p permanent
	if errors.As(err, &p) {
		log.Warn("ocr job failed", "reason", p.err.Error())
		if ferr := ocrjob.Fail(ctx, w.cfg.Items, job.ImageID, job.JobID, p.err.Error(), w.cfg.Now()); ferr != nil {
			return ferr
		}
		w.releaseClaim(ctx, job)
		return nil
	}
	if err != nil {
		return err
	}
	log.Info("ocr job done", "duration", time.Since(start).Round(time.Millisecond),
		"image_type", stats.imageType, "receipts", stats.receipts, "recognitions", stats.recognitions)
	return nil
}

// run does one job; a permanent error means the job can never succeed.
// runStats is what one job did, for its log line.
type runStats struct {
	imageType    string
	receipts     int
	recognitions int
}

func (w *Worker) run(ctx context.Context, job *ocrjob.Job, stats *runStats, log *slog.Logger) error {
	now := w.cfg.Now()
	info, err := w.cfg.Blob.Head(ctx, job.Key)
	if errors.Is(err, tally.ErrNotFound) {
		return w.waitForImage(ctx, *job, now, log)
	}
	if err != nil {
		return err
	}
	if info.Size > w.cfg.MaxImageBytes {
		return permanent{fmt.Errorf("image of %d bytes is over the %d byte limit", info.Size, w.cfg.MaxImageBytes)}
	}
	if err := ocrjob.SetStage(ctx, w.cfg.Items, job.ImageID, job.JobID, ocrjob.StageDownload, now); err != nil {
		return finishedOr(err)
	}
	data, err := blob.ReadAll(ctx, w.cfg.Blob, job.Key)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	job.SHA256 = hex.EncodeToString(sum[:])
	if !job.Force {
		owner, err := ocrjob.ClaimSHA256(ctx, w.cfg.Items, job.Owner, job.SHA256, job.ImageID, now)
		if err != nil {
			return err
		}
		if owner != job.ImageID {
			log.Info("duplicate upload", "duplicate_of", owner)
			return ocrjob.Complete(ctx, w.cfg.Items, job.ImageID, job.JobID, ocrjob.Completion{SHA256: job.SHA256, DuplicateOf: owner}, now)
		}
	}
	if err := ocrjob.SetStage(ctx, w.cfg.Items, job.ImageID, job.JobID, ocrjob.StageOCR, w.cfg.Now()); err != nil {
		return finishedOr(err)
	}
	img, imgInfo, err := imaging.Decode(ctx, data, w.cfg.Limits)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return permanent{fmt.Errorf("image: %w", err)}
	}
	g := imaging.Gray(img)
	a, err := Analyze(ctx, g, nil, w.cfg.Engine)
	if errors.Is(err, ErrNoText) {
		return permanent{err}
	}
	if err != nil {
		return err
	}
	stats.imageType, stats.receipts, stats.recognitions = a.Result.Classification.ImageType, len(a.Result.Receipts), a.Recognitions
	if err := ocrjob.SetStage(ctx, w.cfg.Items, job.ImageID, job.JobID, ocrjob.StageUploading, w.cfg.Now()); err != nil {
		return finishedOr(err)
	}
	im := ocrjob.Image{ImageID: job.ImageID, Width: imgInfo.Width, Height: imgInfo.Height, Bucket: w.cfg.Bucket, Key: job.Key,
		SHA256: job.SHA256, Added: job.CreatedAt, Owner: job.Owner}
	_, err = w.cfg.Publish(ctx, *job, im, a, w.cfg.Engine.Name())
	return err
}

// finishedOr turns "the job is no longer pending" (another delivery
// finished it meanwhile) into success.
func finishedOr(err error) error {
	if errors.Is(err, tally.ErrConditionFailed) {
		return nil
	}
	return err
}

// waitForImage re-queues a job whose image has not arrived yet, with
// exponential backoff, as a fresh message (so waiting never counts toward
// the dead-letter queue). Only once the upload URL has expired, plus a
// grace period, is the job failed: that image can no longer arrive.
func (w *Worker) waitForImage(ctx context.Context, job ocrjob.Job, now time.Time, log *slog.Logger) error {
	if !job.UploadBy.IsZero() && now.After(job.UploadBy.Add(w.cfg.ArrivalGrace)) {
		return permanent{fmt.Errorf("the image never arrived at %s before its upload URL expired at %s", job.Key, job.UploadBy.Format(time.RFC3339))}
	}
	n, err := ocrjob.CountAttempt(ctx, w.cfg.Items, job.ImageID, job.JobID, now)
	if err != nil {
		return err
	}
	delay := ArrivalBackoff(n)
	body := ocrjob.Encode(ocrjob.JobMessage{JobID: job.JobID, ImageID: job.ImageID})
	res, err := w.cfg.Jobs.SendBatch(ctx, []queue.SendEntry{{ID: "0", Body: body, Delay: &delay}})
	if err == nil && len(res) == 1 {
		err = res[0].Err
	}
	if err != nil {
		return fmt.Errorf("re-queue job waiting for its image: %w", err)
	}
	log.Info("image not uploaded yet; job re-queued", "attempt", n, "delay", delay)
	return nil
}

// ArrivalBackoff is the delay before the n-th (1-based) check for a late
// image: 2 s doubling, capped at 2 minutes.
func ArrivalBackoff(n int) time.Duration {
	d := 2 * time.Second
	for i := 1; i < n && d < 2*time.Minute; i++ {
		d *= 2
	}
	return min(d, 2*time.Minute)
}

// releaseClaim drops the job's claim on its bytes when the job failed, so
// the same bytes uploaded again are tried again rather than pointed at a
// failed image.
func (w *Worker) releaseClaim(ctx context.Context, job ocrjob.Job) {
	if job.SHA256 == "" || job.Force {
		return
	}
	err := w.cfg.Items.Delete(ctx, ocrjob.SHA256Key(job.Owner, job.SHA256), items.Cond{
		Expr: "image_id = :id", Values: map[string]any{":id": job.ImageID}})
	if err != nil && !errors.Is(err, tally.ErrConditionFailed) {
		w.log.Warn("release sha256 claim of failed job", "image_id", job.ImageID, "err", err)
	}
}
