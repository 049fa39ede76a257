package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/tallyhq/tally/ocrstage"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/upload"
)

func runRetry(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("retry", flag.ContinueOnError)
	cfg := portFlags(fs)
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want tally retry IMAGE_ID: %w", errUsage)
	}
	p, resolved, err := openFlagged(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	qs, err := pipeline.OpenQueues(ctx, p.Queue)
	if err != nil {
		return err
	}
	up, err := upload.New(upload.Config{Store: ocrstage.Store{Items: p.Items, Blob: p.Blob, Bucket: bucketName(resolved), Results: qs.OCRResults},
		Jobs: qs.OCRJobs, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	acc, err := up.Retry(ctx, pos[0])
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(acc)
}
