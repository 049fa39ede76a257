package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tallyhq/tally/queue"
)

// ErrNotStarted fails a message whose handling was never started: its
// context ended, or its deadline was closer than the reserve. It is
// retried like any failure.
var ErrNotStarted = errors.New("not started: too close to the deadline")

// Each handles msgs with fn, at most parallel at once (at least one), and
// returns one error per message — the batch handler of every worker. When
// ctx has a deadline (a Lambda invocation), no message starts once the
// deadline is closer than reserve; those fail with ErrNotStarted, so the
// host reports them as failures instead of being cut off mid-record.
func Each(ctx context.Context, msgs []queue.Message, parallel int, reserve time.Duration, fn func(context.Context, queue.Message) error) []error {
	errs := make([]error, len(msgs))
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	deadline, hasDeadline := ctx.Deadline()
	for i, m := range msgs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = fmt.Errorf("%w: %v", ErrNotStarted, ctx.Err())
			continue
		}
		if hasDeadline && time.Until(deadline) < reserve {
			<-sem
			errs[i] = ErrNotStarted
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = fn(ctx, m)
		})
	}
	wg.Wait()
	return errs
}
