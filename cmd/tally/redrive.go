package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/redrive"
)

func runRedrive(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("redrive", flag.ContinueOnError)
	cfg := portFlags(fs)
	reason := fs.String("reason", "", "move only messages whose failure_reason contains this")
	max := fs.Int("max", 0, "move at most this many (default: all)")
	dry := fs.Bool("dry-run", false, "count what would move; move nothing")
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	names := []string{pipeline.QueueOCRJobs, pipeline.QueueOCRResults, pipeline.QueueCompaction}
	if len(pos) != 1 || !slices.Contains(names, strings.TrimSuffix(pos[0], pipeline.DeadLetterSuffix)) {
		return fmt.Errorf("want tally redrive QUEUE, QUEUE one of %s: %w", strings.Join(names, ", "), errUsage)
	}
	if *max < 0 {
		return fmt.Errorf("-max %d is negative: %w", *max, errUsage)
	}
	name := strings.TrimSuffix(pos[0], pipeline.DeadLetterSuffix)
	p, _, err := openFlagged(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	src, err := p.Queue.OpenQueue(ctx, name)
	if err != nil {
		return err
	}
	dlq, err := p.Queue.OpenQueue(ctx, name+pipeline.DeadLetterSuffix)
	if err != nil {
		return err
	}
	rep, err := redrive.Run(ctx, redrive.Config{From: dlq, To: src, Items: p.Items, Reason: *reason, Max: *max, DryRun: *dry})
	verb := "moved"
	if *dry {
		verb = "would move"
	}
	fmt.Fprintf(stdout, "%s → %s: %s %d, finished %d left by an earlier run, left %d that did not match\n",
		dlq.Name(), src.Name(), verb, rep.Moved, rep.Resumed, rep.Skipped)
	reasons := make([]string, 0, len(rep.Reasons))
	for r := range rep.Reasons {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		fmt.Fprintf(stdout, "  %5d  %s\n", rep.Reasons[r], r)
	}
	return err
}
