package pipeline_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/queue"
	queuesqlite "github.com/tallyhq/tally/queue/sqlite"
	"github.com/tallyhq/tally/vector"
)

func TestParseFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    vector.Filter
		wantErr bool
	}{
		{in: "merchant=COSTCO", want: vector.Filter{Field: "merchant", Op: vector.OpIn, Values: []any{"COSTCO"}}},
		{in: "merchant!=COSTCO", want: vector.Filter{Field: "merchant", Op: vector.OpNin, Values: []any{"COSTCO"}}},
		{in: "label=TOTAL|TAX", want: vector.Filter{Field: "label", Op: vector.OpIn, Values: []any{"TOTAL", "TAX"}}},
		{in: "receipt_id=2", want: vector.Filter{Field: "receipt_id", Op: vector.OpIn, Values: []any{"2", 2.0}}},
		{in: "valid=true", want: vector.Filter{Field: "valid", Op: vector.OpIn, Values: []any{"true", true}}},
		{in: "a=b=c", want: vector.Filter{Field: "a", Op: vector.OpIn, Values: []any{"b=c"}}},
		{in: "novalue", wantErr: true},
		{in: "=x", wantErr: true},
		{in: "x=", wantErr: true},
		{in: "!=x", wantErr: true},
	}
	for _, tt := range tests {
		got, err := pipeline.ParseFilter(tt.in)
		if tt.wantErr {
			if !errors.Is(err, tally.ErrInvalidArgument) {
				t.Errorf("ParseFilter(%q) error = %v, want ErrInvalidArgument", tt.in, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseFilter(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// TestEnsureQueuesRedrives: the pipeline's queues exist with dead-letter
// queues, creating them twice is harmless, and a message that keeps failing
// lands in the DLQ.
func TestEnsureQueuesRedrives(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := queuesqlite.Open(ctx, filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := pipeline.EnsureQueues(ctx, b); err != nil {
		t.Fatal(err)
	}
	qs, err := pipeline.EnsureQueues(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := queue.Send(ctx, qs.OCRResults, `{"image_id":"x"}`, nil); err != nil {
		t.Fatal(err)
	}
	for range pipeline.MaxReceiveCount {
		msgs, err := qs.OCRResults.Receive(ctx, queue.ReceiveOptions{Max: 1, Wait: 2 * time.Second})
		if err != nil || len(msgs) != 1 {
			t.Fatalf("receive: %v %v", msgs, err)
		}
		if err := queue.ChangeVisibility(ctx, qs.OCRResults, msgs[0].ReceiptHandle, 0); err != nil {
			t.Fatal(err)
		}
	}
	if msgs, _ := qs.OCRResults.Receive(ctx, queue.ReceiveOptions{Max: 1}); len(msgs) != 0 {
		t.Fatalf("message delivered a %dth time", pipeline.MaxReceiveCount+1)
	}
	dlq, err := b.OpenQueue(ctx, pipeline.QueueOCRResults+pipeline.DeadLetterSuffix)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := dlq.Receive(ctx, queue.ReceiveOptions{Max: 1, Wait: 2 * time.Second})
	if err != nil || len(msgs) != 1 || msgs[0].Body != `{"image_id":"x"}` {
		t.Fatalf("dead-letter queue: %v %v", msgs, err)
	}
}
