package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/tallyhq/tally/importer"
)

func runImport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	server := serverFlag(fs)
	jobs := fs.Int("j", 4, "files uploaded at once")
	wait := fs.Bool("wait", false, "follow each image through processing (OCR, then labelling) and report where it ended")
	timeout := fs.Duration("timeout", time.Hour, "with -wait, how long the whole run may take")
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("want tally import DIR|FILE... [-j N] [-wait]: %w", errUsage)
	}
	if *jobs < 1 || *jobs > 64 {
		return fmt.Errorf("-j %d outside 1–64: %w", *jobs, errUsage)
	}
	files, skipped, err := importer.Collect(pos...)
	if err != nil {
		return err
	}
	if *wait {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	show := newImportProgress(stdout, len(files))
	outcomes, runErr := newClient(*server).Import(ctx, files, importer.Options{Jobs: *jobs, Wait: *wait, Progress: show})
	failed := printImportTable(stdout, append(skipped, outcomes...), *wait)
	switch {
	case runErr != nil && errors.Is(runErr, context.Canceled):
		return fmt.Errorf("%w; run the same command again to continue (what was imported is found by sha256 and not sent again)", runErr)
	case runErr != nil:
		return runErr
	case failed > 0:
		return fmt.Errorf("%d of %d files failed (see the table)", failed, len(files)+len(skipped))
	}
	return nil
}

// importProgress shows an import's progress: a bar on a terminal, a line
// every 10 files (or 5 s) otherwise, both with an ETA.
type importProgress func(importer.Progress)

func newImportProgress(stdout io.Writer, total int) importProgress {
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) && total > 0 {
		bar := progressbar.NewOptions(total, progressbar.OptionSetWriter(f), progressbar.OptionSetDescription("importing"),
			progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionSetElapsedTime(true),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("files"), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(f) }))
		return func(p importer.Progress) { bar.Set(p.Done) }
	}
	var last time.Time
	return func(p importer.Progress) {
		if p.Done%10 != 0 && p.Done != p.Total && time.Since(last) < 5*time.Second {
			return
		}
		last = time.Now()
		rate := float64(p.Done) / max(p.Elapsed.Seconds(), 1e-9)
		fmt.Fprintf(stdout, "progress: %d/%d files, %.1f files/s, ETA %s\n", p.Done, p.Total, rate, p.ETA().Round(time.Second))
	}
}

// printImportTable prints every file that did not simply go in, with why,
// then the counts; it returns how many failed (in import or, with wait,
// in processing).
func printImportTable(w io.Writer, outcomes []importer.Outcome, wait bool) int {
	counts := map[importer.Status]int{}
	stages := map[string]int{}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	sort.SliceStable(outcomes, func(i, j int) bool { return outcomes[i].Status < outcomes[j].Status })
	header := false
	row := func(status, path, why string) {
		if !header {
			fmt.Fprintln(tw, "STATUS\tFILE\tREASON")
			header = true
		}
		fmt.Fprintf(tw, "%s\t%q\t%s\n", status, path, why)
	}
	for _, o := range outcomes {
		counts[o.Status]++
		if o.Status != importer.Imported && o.Status != importer.Duplicate {
			row(string(o.Status), o.Path, o.Reason)
		}
		if o.Final != nil {
			stages[o.Final.Stage]++
			if o.Final.Stage == importer.StageFailed || o.Final.Stage == importer.StageUnknown {
				row("processing "+o.Final.Stage, o.Path, o.Final.Reason)
			}
		}
	}
	tw.Flush()
	if wait {
		fmt.Fprintf(w, "processing: labelled %d, processed without receipts %d, duplicates %d, failed %d, unfinished %d\n",
			stages[importer.StageLabelled], stages[importer.StageProcessed], stages[importer.StageDuplicate],
			stages[importer.StageFailed], stages[importer.StageUnknown])
	}
	line := fmt.Sprintf("imported %d, duplicates %d, skipped %d, failed %d", counts[importer.Imported], counts[importer.Duplicate],
		counts[importer.Skipped], counts[importer.Failed])
	if n := counts[importer.NotTried]; n > 0 {
		line += fmt.Sprintf(", not tried %d", n)
	}
	fmt.Fprintln(w, line)
	return counts[importer.Failed] + stages[importer.StageFailed] + stages[importer.StageUnknown]
}

// localURL is the URL of a listening address for a client on the same
// machine (an unspecified host, as in ":8080", is this machine).
func localURL(addr string) string {
	if strings.HasPrefix(addr, ":") || strings.HasPrefix(addr, "0.0.0.0:") || strings.HasPrefix(addr, "[::]:") {
		addr = "127.0.0.1" + addr[strings.LastIndex(addr, ":"):]
	}
	return "http://" + addr
}
