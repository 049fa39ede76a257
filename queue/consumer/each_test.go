package consumer_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/queue/consumer"
)

func TestEach(t *testing.T) {
	t.Parallel()
	msgs := make([]queue.Message, 7)
	for i := range msgs {
		msgs[i] = queue.Message{ID: strconv.Itoa(i)}
	}
	var running, most atomic.Int32
	errs := consumer.Each(context.Background(), msgs, 3, time.Second, func(ctx context.Context, m queue.Message) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			old := most.Load()
			if n <= old || most.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		if m.ID == "4" {
			return errors.New("bad four")
		}
		return nil
	})
	for i, err := range errs {
		if (err != nil) != (i == 4) {
			t.Errorf("message %d: %v", i, err)
		}
	}
	if most.Load() > 3 {
		t.Errorf("%d ran at once, want at most 3", most.Load())
	}

	// Past the reserve before the deadline: nothing starts.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	started := 0
	errs = consumer.Each(ctx, msgs, 2, time.Minute, func(context.Context, queue.Message) error { started++; return nil })
	for _, err := range errs {
		if !errors.Is(err, consumer.ErrNotStarted) {
			t.Errorf("near the deadline: %v, want ErrNotStarted", err)
		}
	}
	if started != 0 {
		t.Errorf("%d started near the deadline", started)
	}
}
