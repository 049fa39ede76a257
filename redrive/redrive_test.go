package redrive_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/tallyhq/tally/internal/awstest"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/queue"
	queuesqlite "github.com/tallyhq/tally/queue/sqlite"
	queuesqs "github.com/tallyhq/tally/queue/sqs"
	"github.com/tallyhq/tally/redrive"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// env is a source queue and its dead-letter queue on one backend, and a
// ledger table.
type env struct {
	src, dlq queue.Queue
	items    items.Table
}

func brokers(t *testing.T) map[string]func(t *testing.T) queue.Broker {
	return map[string]func(t *testing.T) queue.Broker{
		"sqlite": func(t *testing.T) queue.Broker {
			b, err := queuesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "q.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b
		},
		"sqs": func(t *testing.T) queue.Broker {
			var r [4]byte
			rand.Read(r[:])
			b := queuesqs.New(awstest.Shared(t).Config(t), queuesqs.Options{Prefix: "rd" + hex.EncodeToString(r[:]) + "-"})
			t.Cleanup(func() { b.Close() })
			return b
		},
	}
}

func setup(t *testing.T, open func(t *testing.T) queue.Broker) env {
	t.Helper()
	ctx := context.Background()
	b := open(t)
	dlq, err := b.CreateQueue(ctx, "work-dlq", queue.Config{VisibilityTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	src, err := b.CreateQueue(ctx, "work", queue.Config{VisibilityTimeout: time.Minute, DeadLetter: "work-dlq", MaxReceiveCount: 3})
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := itemssqlite.Open(ctx, filepath.Join(t.TempDir(), "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return env{src: src, dlq: dlq, items: tbl}
}

// dead puts messages in the DLQ as a stage does: body plus failure_reason.
func (e env) dead(t *testing.T, reasons ...string) {
	t.Helper()
	var entries []queue.SendEntry
	for i, r := range reasons {
		entries = append(entries, queue.SendEntry{ID: string(rune('a' + i)), Body: "body-" + r + "-" + string(rune('a'+i)),
			Attributes: map[string]string{redrive.AttrFailureReason: r, "source_message_id": "m" + string(rune('a'+i))}})
	}
	for start := 0; start < len(entries); start += queue.MaxBatch {
		if _, err := e.dlq.SendBatch(context.Background(), entries[start:min(start+queue.MaxBatch, len(entries))]); err != nil {
			t.Fatal(err)
		}
	}
}

// drain receives everything visible in q and deletes it.
func drain(t *testing.T, q queue.Queue) []queue.Message {
	t.Helper()
	var out []queue.Message
	for {
		msgs, err := q.Receive(context.Background(), queue.ReceiveOptions{Max: queue.MaxBatch, Visibility: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			return out
		}
		for _, m := range msgs {
			queue.Delete(context.Background(), q, m.ReceiptHandle)
		}
		out = append(out, msgs...)
	}
}

func bodies(ms []queue.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Body)
	}
	sort.Strings(out)
	return out
}

func TestRedrive(t *testing.T) {
	t.Parallel()
	for name, open := range brokers(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()

			// A dry run moves nothing and leaves every message visible.
			e := setup(t, open)
			e.dead(t, "OCR result missing", "timeout talking to OpenAI", "OCR result malformed")
			rep, err := redrive.Run(ctx, redrive.Config{From: e.dlq, To: e.src, Items: e.items, Reason: "ocr result", DryRun: true})
			if err != nil || rep.Moved != 2 || rep.Skipped != 1 {
				t.Fatalf("dry run: %+v %v", rep, err)
			}
			if ex := rep.Newest["OCR result malformed"]; rep.Reasons["OCR result malformed"] != 1 || ex.Body != "body-OCR result malformed-c" {
				t.Fatalf("dry run's example for its reason = %+v (counts %v), want the message sent with it", ex, rep.Reasons)
			}
			if st, _ := e.src.Stats(ctx); st.Visible != 0 {
				t.Fatalf("a dry run sent %d", st.Visible)
			}

			// A filtered run moves the two, with the reason dropped and the
			// origin named; the other stays in the DLQ, visible.
			rep, err = redrive.Run(ctx, redrive.Config{From: e.dlq, To: e.src, Items: e.items, Reason: "OCR RESULT"})
			if err != nil || rep.Moved != 2 || rep.Skipped != 1 {
				t.Fatalf("filtered run: %+v %v", rep, err)
			}
			moved := drain(t, e.src)
			if len(moved) != 2 || moved[0].Attributes[redrive.AttrFailureReason] != "" || moved[0].Attributes[redrive.AttrRedrivenFrom] == "" ||
				moved[0].Attributes["source_message_id"] == "" {
				t.Fatalf("moved: %+v", moved)
			}
			left := drain(t, e.dlq)
			if len(left) != 1 || left[0].Attributes[redrive.AttrFailureReason] != "timeout talking to OpenAI" {
				t.Fatalf("left in the DLQ: %+v", left)
			}

			// -max bounds a run.
			e.dead(t, "a", "b", "c", "d", "e")
			rep, err = redrive.Run(ctx, redrive.Config{From: e.dlq, To: e.src, Items: e.items, Max: 3})
			if err != nil || rep.Moved != 3 {
				t.Fatalf("max 3: %+v %v", rep, err)
			}
			if got := len(drain(t, e.src)); got != 3 {
				t.Errorf("max 3 sent %d", got)
			}
			if got := len(drain(t, e.dlq)); got != 2 {
				t.Errorf("max 3 left %d in the DLQ, want 2", got)
			}
		})
	}
}

// failingDelete fails every delete: a run interrupted after its sends.
type failingDelete struct{ queue.Queue }

func (failingDelete) DeleteBatch(context.Context, []string) ([]error, error) {
	return nil, errors.New("network down")
}

// TestInterrupted: a run that sent a message but could not delete it is
// run again: the message is deleted, not sent a second time.
func TestInterrupted(t *testing.T) {
	t.Parallel()
	for name, open := range brokers(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := setup(t, open)
			e.dead(t, "x")
			if _, err := redrive.Run(ctx, redrive.Config{From: failingDelete{e.dlq}, To: e.src, Items: e.items}); err == nil {
				t.Fatal("a failed delete was not reported")
			}
			rep, err := redrive.Run(ctx, redrive.Config{From: e.dlq, To: e.src, Items: e.items})
			if err != nil || rep.Resumed != 1 || rep.Moved != 0 {
				t.Fatalf("second run: %+v %v", rep, err)
			}
			if got := bodies(drain(t, e.src)); len(got) != 1 {
				t.Errorf("the source got %d copies, want 1: %v", len(got), got)
			}
			if got := len(drain(t, e.dlq)); got != 0 {
				t.Errorf("%d left in the DLQ", got)
			}
		})
	}
}
