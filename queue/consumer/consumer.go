// Package consumer is the queue-consuming loop every worker shares
// (compactor, OCR, process): receive a batch, keep it invisible while a
// handler works on it, delete what succeeded, and leave what failed on the
// queue, so it is retried after its visibility timeout and dead-lettered by
// the queue's redrive policy once it has failed MaxReceiveCount times.
//
// Writing the loop once keeps the failure rules in one place: no message is
// dropped silently (every failure is logged with its reason on every
// receive), one bad message never fails the others in its batch, finished
// work is deleted even while shutting down, and queue outages are waited
// out with backoff instead of stopping the worker.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/internal/ctxtime"
	"github.com/tallyhq/tally/queue"
)

// Defaults for Config's zero values.
const (
	DefaultMaxBatch   = queue.MaxBatch
	DefaultWait       = queue.MaxWait
	DefaultVisibility = queue.DefaultVisibility
)

const (
	// settleTimeout bounds deleting (or deferring) a handled batch after
	// the caller's context has ended.
	settleTimeout = 30 * time.Second
	// Receive errors are retried after a backoff that doubles between
	// these bounds.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 30 * time.Second
	// clipBytes bounds a message body quoted in a log record.
	clipBytes = 120
)

// Errors a message's failure wraps when the handler did not supply one.
var (
	// ErrNoResult means the handler returned fewer results than messages
	// (a bug in the handler); the unreported messages are retried.
	ErrNoResult = errors.New("handler reported no result for the message")
	// ErrHandlerPanic means the handler panicked; its whole batch is
	// retried, and dead-lettered if it keeps panicking.
	ErrHandlerPanic = errors.New("handler panicked")
)

// Handler works on one batch and returns one error per message, in order:
// nil means done (the message is deleted); an error leaves the message on
// the queue for a retry. Errors wrapping tally.ErrInvalidArgument mark a
// message that can never succeed: it is logged with its body. Wrap an error
// with RetryAfter to have the message come back sooner (or later) than the
// visibility timeout.
type Handler func(ctx context.Context, msgs []queue.Message) []error

// Config configures a Consumer. Zero values take the defaults above.
type Config struct {
	// Queue is the queue consumed.
	Queue queue.Queue
	// Name names the consumer in logs ("compactor", "ocr"); default the
	// queue's name.
	Name string
	// MaxBatch is the most messages one batch gathers.
	MaxBatch int
	// GatherWindow is how long a batch keeps gathering after its first
	// receive: further receives (without waiting) follow until the queue is
	// empty, MaxBatch is reached or the window (at most Visibility/3, so
	// the first messages cannot time out) has passed. 0 means one receive
	// per batch.
	GatherWindow time.Duration
	// Wait is the long-polling time of a batch's first receive, up to
	// queue.MaxWait.
	Wait time.Duration
	// Visibility is how long received messages stay hidden; while the
	// handler works they are extended every Visibility/3 (heartbeat), so a
	// long job does not need a long timeout and a crashed one is retried
	// soon.
	Visibility time.Duration
	// MaxReceiveCount is the queue's redrive threshold, used only to log
	// that a failing message goes to the dead-letter queue next; 0 if
	// unknown.
	MaxReceiveCount int
	// Idle, if set, is called before each batch's first receive and
	// returns the longest that receive may wait, so periodic work (the
	// compactor's rescuer) can run between batches on time.
	Idle func(ctx context.Context) time.Duration
	// OnBatch, if set, is called after each batch is settled (deleted and
	// logged), from the goroutine that handled it; tests and metrics use it
	// instead of polling the queue.
	OnBatch func(BatchResult)
	// Log receives the consumer's records; default slog.Default().
	Log *slog.Logger
}

// BatchResult is how one batch ended.
type BatchResult struct {
	Messages int // messages handled
	Failed   int // left on the queue for a retry
	Deleted  int // of the Messages-Failed successes, how many were deleted
}

// Consumer runs a Handler over a queue. Its methods are safe for concurrent
// use; run several Consumers (or several Run loops) for more throughput.
type Consumer struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and fills in its defaults; a bad value is
// tally.ErrInvalidArgument.
func New(cfg Config) (*Consumer, error) {
	bad := func(format string, args ...any) (*Consumer, error) {
		return nil, fmt.Errorf("queue consumer: %s: %w", fmt.Sprintf(format, args...), tally.ErrInvalidArgument)
	}
	switch {
	case cfg.Queue == nil:
		return bad("a Queue is required")
	case cfg.MaxBatch < 0, cfg.GatherWindow < 0, cfg.Wait < 0, cfg.Visibility < 0, cfg.MaxReceiveCount < 0:
		return bad("MaxBatch %d, GatherWindow %v, Wait %v, Visibility %v, MaxReceiveCount %d: none may be negative",
			cfg.MaxBatch, cfg.GatherWindow, cfg.Wait, cfg.Visibility, cfg.MaxReceiveCount)
	case cfg.Wait > queue.MaxWait:
		return bad("wait %v is over %v", cfg.Wait, queue.MaxWait)
	case cfg.Visibility > queue.MaxVisibility:
		return bad("visibility %v is over %v", cfg.Visibility, queue.MaxVisibility)
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Queue.Name()
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.Wait == 0 {
		cfg.Wait = DefaultWait
	}
	if cfg.Visibility == 0 {
		cfg.Visibility = DefaultVisibility
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("consumer", cfg.Name, "queue", cfg.Queue.Name())
	return &Consumer{cfg: cfg, log: log}, nil
}

// Run receives and handles batches until ctx ends, then returns nil. A
// receive error is logged and retried after a backoff (100 ms doubling up to
// 30 s), never fatal: a worker outlives a queue outage. Only a nil handler
// is an error.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	if h == nil {
		return fmt.Errorf("queue consumer %s: Run needs a Handler: %w", c.cfg.Name, tally.ErrInvalidArgument)
	}
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		wait := c.cfg.Wait
		if c.cfg.Idle != nil {
			wait = max(0, min(wait, c.cfg.Idle(ctx)))
		}
		msgs, err := c.gather(ctx, wait)
		if len(msgs) > 0 {
			c.Handle(ctx, msgs, h)
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			c.log.Warn("receive failed; backing off", "err", err, "backoff", backoff)
			_ = ctxtime.Sleep(ctx, backoff)
			continue
		}
		backoff = 0
	}
	return nil
}

// gather long-polls for a first message, then keeps receiving without
// waiting until the queue is empty, MaxBatch is reached or the gather window
// ends, so one batch serves as many messages as are waiting. Messages
// already received are returned even with an error: they are in flight and
// must be handled (or left to time out).
func (c *Consumer) gather(ctx context.Context, wait time.Duration) ([]queue.Message, error) {
	opts := queue.ReceiveOptions{Max: min(queue.MaxBatch, c.cfg.MaxBatch), Visibility: c.cfg.Visibility, Wait: wait}
	msgs, err := c.cfg.Queue.Receive(ctx, opts)
	if err != nil || len(msgs) == 0 {
		return nil, err
	}
	deadline := time.Now().Add(min(c.cfg.GatherWindow, c.cfg.Visibility/3))
	opts.Wait = 0
	for len(msgs) < c.cfg.MaxBatch && time.Now().Before(deadline) {
		opts.Max = min(queue.MaxBatch, c.cfg.MaxBatch-len(msgs))
		more, err := c.cfg.Queue.Receive(ctx, opts)
		if err != nil {
			return msgs, err
		}
		if len(more) == 0 {
			break
		}
		msgs = append(msgs, more...)
	}
	return msgs, nil
}

// Handle works on one received batch: it runs h with a visibility
// heartbeat, deletes the messages h finished (even if ctx has ended
// meanwhile: redoing finished work is only waste), logs why the others
// failed and leaves them on the queue, to be retried after their visibility
// timeout (or their RetryAfter delay) and dead-lettered after
// MaxReceiveCount receives. Run calls it for every batch; call it directly
// for messages received some other way.
func (c *Consumer) Handle(ctx context.Context, msgs []queue.Message, h Handler) BatchResult {
	if len(msgs) == 0 {
		return BatchResult{}
	}
	start := time.Now()
	handles := make([]string, len(msgs))
	for i, m := range msgs {
		handles[i] = m.ReceiptHandle
	}
	stop := c.Heartbeat(ctx, handles)
	errs := c.call(ctx, msgs, h)
	stop()

	if len(errs) != len(msgs) {
		c.log.Error("handler returned the wrong number of results (a bug); the unreported messages are retried",
			"messages", len(msgs), "results", len(errs))
	}
	res := BatchResult{Messages: len(msgs)}
	var done []string
	var retries []queue.VisibilityChange
	for i, m := range msgs {
		err := ErrNoResult
		if i < len(errs) {
			err = errs[i]
		}
		if err == nil {
			done = append(done, m.ReceiptHandle)
			continue
		}
		res.Failed++
		c.logFailure(m, err)
		var ra *retryAfterError
		if errors.As(err, &ra) {
			retries = append(retries, queue.VisibilityChange{ReceiptHandle: m.ReceiptHandle, Timeout: ra.after})
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	res.Deleted = c.Delete(sctx, done)
	c.changeVisibility(sctx, retries, "defer failed messages")
	c.log.Info("batch handled", "messages", res.Messages, "done", len(done), "deleted", res.Deleted,
		"failed", res.Failed, "duration", time.Since(start).Round(time.Millisecond))
	if c.cfg.OnBatch != nil {
		c.cfg.OnBatch(res)
	}
	return res
}

// call runs h, turning a panic into a failure of the whole batch so one
// poisoned message ends in the dead-letter queue instead of crashing the
// worker on every receive.
func (c *Consumer) call(ctx context.Context, msgs []queue.Message, h Handler) (errs []error) {
	if h == nil {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("handler panicked; its batch is retried", "messages", len(msgs), "panic", fmt.Sprint(r),
				"stack", string(debug.Stack()))
			err := fmt.Errorf("%w: %v", ErrHandlerPanic, r)
			errs = make([]error, len(msgs))
			for i := range errs {
				errs[i] = err
			}
		}
	}()
	return h(ctx, msgs)
}

// logFailure logs why a message failed: a Warn while it has receives left,
// an Error on the last receive before the dead-letter queue. A message that
// can never succeed (tally.ErrInvalidArgument) is logged with its body, so
// the reason it is dead-lettered is on record.
func (c *Consumer) logFailure(m queue.Message, err error) {
	attrs := []any{"message_id", m.ID, "receive_count", m.ReceiveCount, "reason", err.Error()}
	var ra *retryAfterError
	if errors.As(err, &ra) {
		attrs = append(attrs, "retry_after", ra.after)
	}
	last := c.cfg.MaxReceiveCount > 0 && m.ReceiveCount >= c.cfg.MaxReceiveCount
	if errors.Is(err, tally.ErrInvalidArgument) {
		attrs = append(attrs, "body", clip(m.Body))
		if last {
			c.log.Error("bad message: last receive, it goes to the dead-letter queue", attrs...)
			return
		}
		c.log.Warn("bad message: left on the queue for the dead-letter queue", attrs...)
		return
	}
	if last {
		c.log.Error("message failed on its last receive; it goes to the dead-letter queue", attrs...)
		return
	}
	c.log.Warn("message failed; it will be retried", attrs...)
}

// Delete deletes messages by receipt handle, in batches of queue.MaxBatch,
// and returns how many were deleted. Failures are logged, not returned: an
// undeleted message comes back and is handled again, so handlers must be
// idempotent anyway. Handle deletes for Run; a worker that finishes messages
// one by one can delete them itself.
func (c *Consumer) Delete(ctx context.Context, handles []string) int {
	n := 0
	for chunk := range slices.Chunk(handles, queue.MaxBatch) {
		errs, err := c.cfg.Queue.DeleteBatch(ctx, chunk)
		if err != nil {
			c.log.Warn("delete messages failed; they will be handled again", "messages", len(chunk), "err", err)
			continue
		}
		for _, e := range errs {
			if e != nil {
				c.log.Warn("delete message failed; it will be handled again", "err", e)
				continue
			}
			n++
		}
	}
	return n
}

// Heartbeat extends the messages' visibility to Visibility every
// Visibility/3 until stop is called (or ctx ends), so a long job keeps its
// messages hidden without a long visibility timeout. stop waits for an
// extension in progress to finish. Handle runs one for its handler.
func (c *Consumer) Heartbeat(ctx context.Context, handles []string) (stop func()) {
	if len(handles) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	changes := make([]queue.VisibilityChange, len(handles))
	for i, h := range handles {
		changes[i] = queue.VisibilityChange{ReceiptHandle: h, Timeout: c.cfg.Visibility}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(c.cfg.Visibility/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			c.changeVisibility(ctx, changes, "extend visibility")
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

// changeVisibility applies changes in batches, logging (what) failures
// unless ctx has ended.
func (c *Consumer) changeVisibility(ctx context.Context, changes []queue.VisibilityChange, what string) {
	for chunk := range slices.Chunk(changes, queue.MaxBatch) {
		errs, err := c.cfg.Queue.ChangeVisibilityBatch(ctx, chunk)
		if err == nil {
			err = errors.Join(errs...)
		}
		if err != nil && ctx.Err() == nil {
			c.log.Warn(what+" failed", "messages", len(chunk), "err", err)
		}
	}
}

// RetryAfter marks a handler's failure as one to retry after d instead of
// after the visibility timeout: a transient fault can be retried at once
// (d = 0) or a known wait honoured, without lowering the timeout that
// protects long jobs. d is clamped to 0..queue.MaxVisibility. The message's
// receive count still grows, so it is still dead-lettered if it keeps
// failing. RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, after: min(max(d, 0), queue.MaxVisibility)}
}

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// clip shortens a body for a log record, on a rune boundary.
func clip(s string) string {
	if len(s) <= clipBytes {
		return s
	}
	i := clipBytes
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
