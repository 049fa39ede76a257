package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/web"
)

func runExportCSV(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("export-csv", flag.ContinueOnError)
	cfg := portFlags(fs)
	var f label.Filter
	fs.StringVar(&f.Merchant, "merchant", "", "only merchants whose name contains this")
	fs.StringVar(&f.From, "from", "", "only receipts dated on or after YYYY-MM-DD")
	fs.StringVar(&f.To, "to", "", "only receipts dated on or before YYYY-MM-DD")
	fs.StringVar(&f.MinTotal, "min-total", "", "only grand totals of at least this")
	fs.StringVar(&f.MaxTotal, "max-total", "", "only grand totals of at most this")
	fs.StringVar(&f.Status, "status", "", "only VALID or NEEDS_REVIEW summaries")
	var o web.CSVOptions
	fs.BoolVar(&o.PerItem, "items", false, "one row per line item instead of one per receipt")
	fs.BoolVar(&o.BOM, "bom", false, "start with a UTF-8 byte-order mark (for spreadsheet programs that need it)")
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("tally export-csv takes flags only: %w", errUsage)
	}
	p, _, err := openFlagged(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	return web.WriteCSV(ctx, stdout, p.Items, f, o)
}
