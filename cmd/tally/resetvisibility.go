package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/queue"
)

func runResetVisibility(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("reset-visibility", flag.ContinueOnError)
	cfg := portFlags(fs)
	older := fs.Duration("older", -1, "release messages in flight longer than this (default: 2× the queue's visibility timeout, what doctor calls stuck; 0: every in-flight message)")
	dry := fs.Bool("dry-run", false, "list what would be released; release nothing")
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	names := []string{pipeline.QueueOCRJobs, pipeline.QueueOCRResults, pipeline.QueueCompaction}
	if len(pos) != 1 || !slices.Contains(names, strings.TrimSuffix(pos[0], pipeline.DeadLetterSuffix)) {
		return fmt.Errorf("want tally reset-visibility QUEUE, QUEUE one of %s (or its %s): %w", strings.Join(names, ", "), pipeline.DeadLetterSuffix, errUsage)
	}
	p, _, err := openFlagged(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	q, err := p.Queue.OpenQueue(ctx, pos[0])
	if err != nil {
		return err
	}
	n, listed, err := resetVisibility(ctx, q, *older, *dry, time.Now())
	for _, m := range listed {
		fmt.Fprintf(stdout, "%s\treceived %s ago, %d times\n", m.ID, time.Since(m.ReceivedAt).Round(time.Second), m.ReceiveCount)
	}
	if err != nil {
		return err
	}
	verb := "released"
	if *dry {
		verb = "would release"
	}
	fmt.Fprintf(stdout, "%s: %s %d in-flight messages\n", q.Name(), verb, n)
	return nil
}

// errNoInspector explains why a queue's stuck messages cannot be released.
var errNoInspector = errors.New("this queue cannot release messages it did not hand out itself: on SQS only the consumer that received a message holds its receipt handle, so a stuck message becomes visible when its visibility timeout ends (`tally doctor` shows the timeout); stop or fix the consumer that holds it")

// resetVisibility releases q's messages in flight longer than older (a
// negative older means twice the queue's visibility timeout), listing them.
func resetVisibility(ctx context.Context, q queue.Queue, older time.Duration, dry bool, now time.Time) (int, []queue.InFlight, error) {
	in, ok := q.(queue.Inspector)
	if !ok {
		return 0, nil, fmt.Errorf("reset visibility of %s: %w: %w", q.Name(), errNoInspector, tally.ErrInvalidArgument)
	}
	if older < 0 {
		st, err := q.Stats(ctx)
		if err != nil {
			return 0, nil, err
		}
		older = 2 * st.Visibility
	}
	cutoff := now.Add(-older)
	list, err := in.InFlight(ctx, 1000)
	if err != nil {
		return 0, nil, err
	}
	var hit []queue.InFlight
	for _, m := range list {
		if m.ReceivedAt.Before(cutoff) {
			hit = append(hit, m)
		}
	}
	if dry {
		return len(hit), hit, nil
	}
	n, err := in.Release(ctx, cutoff)
	return n, hit, err
}
