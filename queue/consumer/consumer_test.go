package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/queue/consumer"
	"github.com/tallyhq/tally/queue/sqlite"
)

// maxReceives is the redrive threshold of the test queues.
const maxReceives = 2

// queues opens a real embedded broker in a temporary directory with a work
// queue that dead-letters into dlq after maxReceives receives.
func queues(t *testing.T) (work, dlq queue.Queue) {
	t.Helper()
	ctx := context.Background()
	b, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "queues.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	dlq, err = b.CreateQueue(ctx, "work-dlq", queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	work, err = b.CreateQueue(ctx, "work", queue.Config{DeadLetter: "work-dlq", MaxReceiveCount: maxReceives})
	if err != nil {
		t.Fatal(err)
	}
	return work, dlq
}

// send sends bodies and returns their message ids.
func send(t *testing.T, q queue.Queue, bodies ...string) []string {
	t.Helper()
	var ids []string
	for _, b := range bodies {
		id, err := queue.Send(context.Background(), q, b, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func numbered(n int) []string {
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = fmt.Sprintf("msg-%02d", i)
	}
	return bodies
}

func stats(t *testing.T, q queue.Queue) queue.Stats {
	t.Helper()
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// receive receives up to max messages, long polling up to wait.
func receive(t *testing.T, q queue.Queue, max int, visibility, wait time.Duration) []queue.Message {
	t.Helper()
	msgs, err := q.Receive(context.Background(), queue.ReceiveOptions{Max: max, Visibility: visibility, Wait: wait})
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func newConsumer(t *testing.T, cfg consumer.Config) *consumer.Consumer {
	t.Helper()
	c, err := consumer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// start runs c with h until the returned stop is called; stop returns Run's
// error.
func start(t *testing.T, c *consumer.Consumer, h consumer.Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(waitfor.Stall):
				err = errors.New("Run did not return after its context was cancelled")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// await fails the test if ch does not deliver for waitfor.Stall.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	return waitfor.Recv(t, what, ch)
}

func succeedAll(_ context.Context, msgs []queue.Message) []error { return make([]error, len(msgs)) }

// logSink keeps log records for assertions.
type logSink struct {
	mu    *sync.Mutex
	recs  *[]logRec
	attrs []slog.Attr
}

type logRec struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

func newLog() (*logSink, *slog.Logger) {
	s := &logSink{mu: new(sync.Mutex), recs: new([]logRec)}
	return s, slog.New(s)
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }

func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	rec := logRec{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
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

// about returns the records naming message id, in order.
func (s *logSink) about(id string) []logRec {
	var out []logRec
	for _, r := range s.records() {
		if r.Attrs["message_id"] == id {
			out = append(out, r)
		}
	}
	return out
}

// hookedQueue is a Queue whose Receive first asks a hook, which may fail it.
type hookedQueue struct {
	queue.Queue
	before func(n int) error // n counts receives from 1
	n      atomic.Int64
}

func (q *hookedQueue) Receive(ctx context.Context, opts queue.ReceiveOptions) ([]queue.Message, error) {
	if err := q.before(int(q.n.Add(1))); err != nil {
		return nil, err
	}
	return q.Queue.Receive(ctx, opts)
}

var errOutage = errors.New("queue unavailable")

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	work, _ := queues(t)
	for name, mod := range map[string]func(*consumer.Config){
		"no queue":            func(c *consumer.Config) { c.Queue = nil },
		"negative batch":      func(c *consumer.Config) { c.MaxBatch = -1 },
		"negative window":     func(c *consumer.Config) { c.GatherWindow = -time.Second },
		"negative wait":       func(c *consumer.Config) { c.Wait = -time.Second },
		"wait too long":       func(c *consumer.Config) { c.Wait = time.Minute },
		"negative visibility": func(c *consumer.Config) { c.Visibility = -time.Second },
		"visibility too long": func(c *consumer.Config) { c.Visibility = 13 * time.Hour },
		"negative receives":   func(c *consumer.Config) { c.MaxReceiveCount = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := consumer.Config{Queue: work}
			mod(&cfg)
			if _, err := consumer.New(cfg); !errors.Is(err, tally.ErrInvalidArgument) {
				t.Errorf("New: %v, want ErrInvalidArgument", err)
			}
		})
	}
	c := newConsumer(t, consumer.Config{Queue: work})
	if err := c.Run(context.Background(), nil); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("Run with a nil handler: %v, want ErrInvalidArgument", err)
	}
}

// TestSuccessesDeletedFailuresRetriedThenDeadLettered: through Run, a
// message the handler finishes is deleted at once; one it fails comes back
// after the visibility timeout with ReceiveCount 2, is logged as going to
// the dead-letter queue on that last receive, and then ends there.
func TestSuccessesDeletedFailuresRetriedThenDeadLettered(t *testing.T) {
	t.Parallel()
	work, dlq := queues(t)
	logs, log := newLog()
	ids := send(t, work, "good", "bad")
	var mu sync.Mutex
	seen := map[string][]int{} // body → receive counts
	c := newConsumer(t, consumer.Config{
		Queue: work, Name: "test", Visibility: 200 * time.Millisecond, Wait: time.Second,
		MaxReceiveCount: maxReceives, Log: log,
	})
	stop := start(t, c, func(_ context.Context, msgs []queue.Message) []error {
		errs := make([]error, len(msgs))
		mu.Lock()
		defer mu.Unlock()
		for i, m := range msgs {
			seen[m.Body] = append(seen[m.Body], m.ReceiveCount)
			if m.Body == "bad" {
				errs[i] = errOutage
			}
		}
		return errs
	})
	dead := receive(t, dlq, 10, time.Hour, 15*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Body != "bad" || dead[0].ID != ids[1] {
		t.Fatalf("dead-letter queue holds %+v, want the bad message", dead)
	}
	if !slices.Equal(seen["good"], []int{1}) || !slices.Equal(seen["bad"], []int{1, 2}) {
		t.Errorf("receive counts seen: %v, want good [1] and bad [1 2]", seen)
	}
	if st := stats(t, work); !st.Empty() {
		t.Errorf("work queue after the run: %+v, want empty", st)
	}
	recs := logs.about(ids[1])
	if len(recs) != 2 || recs[0].Level != slog.LevelWarn || recs[1].Level != slog.LevelError ||
		!strings.Contains(recs[1].Msg, "dead-letter") || recs[1].Attrs["reason"] != errOutage.Error() ||
		recs[1].Attrs["consumer"] != "test" || recs[1].Attrs["receive_count"] != "2" {
		t.Errorf("bad message's log: %+v, want a Warn then an Error naming the dead-letter queue", recs)
	}
	if recs := logs.about(ids[0]); len(recs) != 0 {
		t.Errorf("good message logged as failing: %+v", recs)
	}
}

// TestHeartbeatHidesLongJob: while a handler runs three times longer than
// the visibility timeout, another receiver gets nothing; afterwards the
// messages are deleted.
func TestHeartbeatHidesLongJob(t *testing.T) {
	t.Parallel()
	work, _ := queues(t)
	const visibility = time.Second
	send(t, work, "a", "b")
	c := newConsumer(t, consumer.Config{Queue: work, Visibility: visibility})
	msgs := receive(t, work, 10, visibility, 0)
	if len(msgs) != 2 {
		t.Fatalf("received %d messages, want 2", len(msgs))
	}
	var stolen []string
	res := c.Handle(context.Background(), msgs, func(ctx context.Context, msgs []queue.Message) []error {
		// The job: be another receiver for 3 × visibility.
		for start := time.Now(); time.Since(start) < 3*visibility; {
			for _, m := range receive(t, work, 10, visibility, visibility/4) {
				stolen = append(stolen, m.Body)
			}
		}
		return make([]error, len(msgs))
	})
	if len(stolen) > 0 {
		t.Errorf("another receiver got %v while the handler ran", stolen)
	}
	if res != (consumer.BatchResult{Messages: 2, Deleted: 2}) {
		t.Errorf("result %+v, want both deleted", res)
	}
	if st := stats(t, work); !st.Empty() {
		t.Errorf("queue after the job: %+v, want empty", st)
	}
}

// TestGather: a batch gathers across receives up to MaxBatch while the
// queue has messages and the window is open; without a window it is one
// receive.
func TestGather(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		maxBatch int
		window   time.Duration
		want     []int
	}{
		{"window", 15, 10 * time.Second, []int{15, 10}},
		{"no window", 15, 0, []int{10, 10, 5}},
		{"small batches", 4, 10 * time.Second, []int{4, 4, 4, 4, 4, 4, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			work, _ := queues(t)
			send(t, work, numbered(25)...)
			var sizes []int
			handled := make(chan struct{})
			total := 0
			c := newConsumer(t, consumer.Config{
				Queue: work, MaxBatch: tc.maxBatch, GatherWindow: tc.window, Visibility: time.Minute,
				OnBatch: func(r consumer.BatchResult) {
					sizes = append(sizes, r.Messages)
					if total += r.Deleted; total == 25 {
						close(handled)
					}
				},
			})
			stop := start(t, c, succeedAll)
			await(t, handled, "25 messages deleted")
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sizes, tc.want) {
				t.Errorf("batch sizes %v, want %v", sizes, tc.want)
			}
		})
	}
}

// TestReceiveErrorsBackOffAndRecover: a queue that fails three receives in
// a row is backed off from (100, 200, 400 ms, logged) and then consumed
// normally; a failure in the middle of a gather still hands on the messages
// already received.
func TestReceiveErrorsBackOffAndRecover(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		failing func(n int) bool
		want    []int // batch sizes
		backoff []string
	}{
		{"outage", func(n int) bool { return n <= 3 }, []int{15}, []string{"100ms", "200ms", "400ms"}},
		{"mid-gather", func(n int) bool { return n == 2 }, []int{10, 5}, []string{"100ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			work, _ := queues(t)
			send(t, work, numbered(15)...)
			logs, log := newLog()
			flaky := &hookedQueue{Queue: work, before: func(n int) error {
				if tc.failing(n) {
					return errOutage
				}
				return nil
			}}
			var sizes []int
			handled := make(chan struct{})
			total := 0
			c := newConsumer(t, consumer.Config{
				Queue: flaky, MaxBatch: 20, GatherWindow: 10 * time.Second, Visibility: time.Minute, Log: log,
				OnBatch: func(r consumer.BatchResult) {
					sizes = append(sizes, r.Messages)
					if total += r.Deleted; total == 15 {
						close(handled)
					}
				},
			})
			stop := start(t, c, succeedAll)
			await(t, handled, "15 messages deleted")
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sizes, tc.want) {
				t.Errorf("batch sizes %v, want %v", sizes, tc.want)
			}
			var backoff []string
			for _, r := range logs.records() {
				if r.Attrs["err"] == errOutage.Error() {
					backoff = append(backoff, r.Attrs["backoff"])
				}
			}
			if !slices.Equal(backoff, tc.backoff) {
				t.Errorf("logged backoffs %v, want %v", backoff, tc.backoff)
			}
		})
	}
}

// TestRunStopsWhenCancelled: cancelling Run's context ends a long poll, a
// backoff and a running handler; the handler's finished work is still
// deleted.
func TestRunStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	t.Run("long poll", func(t *testing.T) {
		t.Parallel()
		work, _ := queues(t)
		polling := make(chan struct{}, 1)
		q := &hookedQueue{Queue: work, before: func(int) error {
			select {
			case polling <- struct{}{}:
			default:
			}
			return nil
		}}
		stop := start(t, newConsumer(t, consumer.Config{Queue: q, Wait: queue.MaxWait}), succeedAll)
		await(t, polling, "a receive")
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("backoff", func(t *testing.T) {
		t.Parallel()
		work, _ := queues(t)
		failed := make(chan struct{}, 1)
		q := &hookedQueue{Queue: work, before: func(n int) error {
			if n == 3 { // then backing off 400 ms
				failed <- struct{}{}
			}
			return errOutage
		}}
		stop := start(t, newConsumer(t, consumer.Config{Queue: q, Log: slog.New(slog.DiscardHandler)}), succeedAll)
		await(t, failed, "three failed receives")
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("handler", func(t *testing.T) {
		t.Parallel()
		work, _ := queues(t)
		send(t, work, "job")
		working := make(chan struct{})
		stop := start(t, newConsumer(t, consumer.Config{Queue: work}), func(ctx context.Context, msgs []queue.Message) []error {
			close(working)
			<-ctx.Done() // finishes its work as the worker shuts down
			return make([]error, len(msgs))
		})
		await(t, working, "the handler")
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if st := stats(t, work); !st.Empty() {
			t.Errorf("queue after shutdown: %+v, want the finished message deleted", st)
		}
	})
}

// TestIdleBoundsTheWait: Idle runs before every batch and its answer caps
// the long poll, so an empty queue with a 20 s wait still calls it often.
func TestIdleBoundsTheWait(t *testing.T) {
	t.Parallel()
	work, _ := queues(t)
	calls := make(chan struct{}, 3)
	c := newConsumer(t, consumer.Config{Queue: work, Wait: queue.MaxWait, Idle: func(context.Context) time.Duration {
		select {
		case calls <- struct{}{}:
		default:
		}
		return 10 * time.Millisecond
	}})
	stop := start(t, c, succeedAll)
	for i := range 3 {
		await(t, calls, fmt.Sprintf("Idle call %d", i+1))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestHandlerBugs: a handler that reports too few results, none, too many,
// or panics never deletes a message it did not report done, and never
// crashes the consumer.
func TestHandlerBugs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		h       consumer.Handler
		deleted int
		reason  string // logged for the unreported messages
	}{
		{"short", func(context.Context, []queue.Message) []error { return []error{nil} }, 1, consumer.ErrNoResult.Error()},
		{"none", func(context.Context, []queue.Message) []error { return nil }, 0, consumer.ErrNoResult.Error()},
		{"nil handler", nil, 0, consumer.ErrNoResult.Error()},
		{"too many", func(context.Context, []queue.Message) []error { return make([]error, 5) }, 3, ""},
		{"panic", func(context.Context, []queue.Message) []error { panic("boom") }, 0, consumer.ErrHandlerPanic.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			work, _ := queues(t)
			send(t, work, "a", "b", "c")
			logs, log := newLog()
			c := newConsumer(t, consumer.Config{Queue: work, Log: log})
			msgs := receive(t, work, 10, time.Hour, 0)
			res := c.Handle(context.Background(), msgs, tc.h)
			want := consumer.BatchResult{Messages: 3, Failed: 3 - tc.deleted, Deleted: tc.deleted}
			if res != want {
				t.Errorf("result %+v, want %+v", res, want)
			}
			if st := stats(t, work); st.InFlight != 3-tc.deleted || st.Visible != 0 {
				t.Errorf("queue %+v, want %d in flight", st, 3-tc.deleted)
			}
			var bug bool
			for _, r := range logs.records() {
				bug = bug || r.Level == slog.LevelError
			}
			if !bug {
				t.Error("the handler's bug was not logged as an error")
			}
			for _, m := range msgs[tc.deleted:] {
				recs := logs.about(m.ID)
				if len(recs) != 1 || !strings.Contains(recs[0].Attrs["reason"], tc.reason) {
					t.Errorf("message %s: logged %+v, want one failure naming %q", m.Body, recs, tc.reason)
				}
			}
		})
	}
}

// TestRetryAfter: a failure wrapped in RetryAfter(…, 0) comes back at once
// instead of after the (hour-long) visibility timeout, with its receive
// count grown; the wrapper keeps the cause for errors.Is.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	if consumer.RetryAfter(nil, time.Second) != nil {
		t.Error("RetryAfter(nil) is not nil")
	}
	if err := consumer.RetryAfter(errOutage, time.Second); !errors.Is(err, errOutage) || err.Error() != errOutage.Error() {
		t.Errorf("RetryAfter hides its cause: %v", err)
	}
	work, _ := queues(t)
	send(t, work, "transient", "done")
	logs, log := newLog()
	c := newConsumer(t, consumer.Config{Queue: work, Visibility: time.Hour, Log: log})
	msgs := receive(t, work, 10, time.Hour, 0)
	res := c.Handle(context.Background(), msgs, func(_ context.Context, msgs []queue.Message) []error {
		errs := make([]error, len(msgs))
		for i, m := range msgs {
			if m.Body == "transient" {
				errs[i] = consumer.RetryAfter(fmt.Errorf("fetch image: %w", errOutage), 0)
			}
		}
		return errs
	})
	if res != (consumer.BatchResult{Messages: 2, Failed: 1, Deleted: 1}) {
		t.Errorf("result %+v", res)
	}
	again := receive(t, work, 10, time.Hour, 5*time.Second)
	if len(again) != 1 || again[0].Body != "transient" || again[0].ReceiveCount != 2 {
		t.Fatalf("received %+v, want the transient message back with receive count 2", again)
	}
	if recs := logs.about(again[0].ID); len(recs) != 1 || recs[0].Attrs["retry_after"] != "0s" {
		t.Errorf("failure log %+v, want retry_after 0s", recs)
	}
}

// TestBadMessageLogsClippedBody: a failure wrapping tally.ErrInvalidArgument
// (a message that can never succeed) is logged with its body, clipped on a
// rune boundary; other failures are logged without it.
func TestBadMessageLogsClippedBody(t *testing.T) {
	t.Parallel()
	work, _ := queues(t)
	long := strings.Repeat("é", 200) // 400 bytes, 2 per rune
	ids := send(t, work, long, "short")
	logs, log := newLog()
	c := newConsumer(t, consumer.Config{Queue: work, MaxReceiveCount: maxReceives, Log: log})
	c.Handle(context.Background(), receive(t, work, 10, time.Hour, 0), func(_ context.Context, msgs []queue.Message) []error {
		errs := make([]error, len(msgs))
		for i, m := range msgs {
			errs[i] = fmt.Errorf("malformed: %w", tally.ErrInvalidArgument)
			if m.Body == "short" {
				errs[i] = errOutage
			}
		}
		return errs
	})
	recs := logs.about(ids[0])
	if len(recs) != 1 || recs[0].Level != slog.LevelWarn {
		t.Fatalf("bad message's log: %+v, want one Warn", recs)
	}
	body := recs[0].Attrs["body"]
	if !strings.HasSuffix(body, "…") || len(body) > 130 || !strings.HasPrefix(long, strings.TrimSuffix(body, "…")) {
		t.Errorf("logged body %q (%d bytes), want a clipped prefix of the body", body, len(body))
	}
	if recs := logs.about(ids[1]); len(recs) != 1 || recs[0].Attrs["body"] != "" {
		t.Errorf("retryable failure's log: %+v, want it without the body", recs)
	}
}
