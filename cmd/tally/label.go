package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/ocrjob"
)

func runLabel(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("label", flag.ContinueOnError)
	cfg := portFlags(fs)
	receipt := fs.Int("receipt", 0, "label only this receipt of the image (default: every receipt)")
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want tally label IMAGE_ID [-receipt N]: %w", errUsage)
	}
	if *receipt < 0 {
		return fmt.Errorf("-receipt %d is not a receipt number: %w", *receipt, errUsage)
	}
	p, resolved, err := openFlagged(ctx, cfg)
	if err != nil {
		return err
	}
	log := newLogger(resolved.LogFormat, os.Stderr)
	defer p.Close()
	pl, err := newLabelPipeline(resolved, p.Items, log)
	if err != nil {
		return err
	}
	sums, err := labelImage(ctx, p.Items, pl, pos[0], *receipt, time.Now())
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(sums)
}

// labelImage runs receipt understanding again on the receipts of a stored
// image (only receipt receiptID when it is > 0) and returns their new
// summaries. It always relabels (no run id); what a person corrected is
// kept (label.Apply).
func labelImage(ctx context.Context, t items.Table, pl label.Pipeline, imageID string, receiptID int, at time.Time) ([]entities.ReceiptSummary, error) {
	if err := ocrjob.ValidateID("image_id", imageID); err != nil {
		return nil, err
	}
	set, err := entities.Load(ctx, t, imageID)
	if err != nil {
		return nil, fmt.Errorf("label image %s: %w", imageID, err)
	}
	if receiptID > 0 && !hasReceipt(set, receiptID) {
		return nil, fmt.Errorf("label image %s: no receipt %d: %w", imageID, receiptID, tally.ErrNotFound)
	}
	out := []entities.ReceiptSummary{}
	for _, rc := range set.Receipts {
		if receiptID > 0 && rc.ReceiptID != receiptID {
			continue
		}
		u, err := pl.Receipt(ctx, t, label.FromSet(set, rc.ReceiptID), at, "")
		if err != nil {
			return nil, fmt.Errorf("label image %s: %w", imageID, err)
		}
		out = append(out, u.Summary)
	}
	return out, nil
}
