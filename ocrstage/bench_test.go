package ocrstage_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/sroie"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/ocrstage"
	"github.com/tallyhq/tally/queue"
)

// BenchmarkSROIE measures the OCR stage on the 30 SROIE scans, one
// operation being all 30 images:
//
//   - bare: `tesseract IMAGE stdout --psm 6` per image with
//     OMP_THREAD_LIMIT=1, one at a time — the floor;
//   - worker-N: the OCR worker with N images at once (each one
//     single-threaded Tesseract): download, decode, classify, cluster,
//     rectify, recognize, store crops and result, routing item, message.
//
// Metrics: s/image (wall time per image), images/min, CER (line-matched
// against the transcripts in box/*.csv, ignoring case and spacing) and how
// many receipts' printed totals appear in the text.
func BenchmarkSROIE(b *testing.B) {
	receipts, err := sroie.Load(filepath.Join(fixtures.Dir(b), "sroie"))
	if err != nil {
		b.Fatal(err)
	}
	images := make([][]byte, len(receipts))
	for i, r := range receipts {
		if images[i], err = os.ReadFile(r.ImagePath); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(len(receipts))
	report := func(b *testing.B, elapsed time.Duration, texts [][]string) {
		per := elapsed.Seconds() / float64(b.N) / n
		b.ReportMetric(per, "s/image")
		b.ReportMetric(60/per, "images/min")
		errs, chars, totals := 0, 0, 0
		for i, r := range receipts {
			e, c := sroie.LineMatchedErrors(r.Lines, texts[i])
			errs, chars = errs+e, chars+c
			if strings.Contains(strings.Join(texts[i], "\n"), r.Key.Total) {
				totals++
			}
		}
		b.ReportMetric(float64(errs)/float64(chars), "CER")
		b.ReportMetric(float64(totals), "totals/30")
		b.ReportMetric(0, "ns/op")
	}

	bare := func(b *testing.B, extra ...string) {
		if _, err := exec.LookPath("tesseract"); err != nil {
			b.Skip("tesseract not installed")
		}
		texts := make([][]string, len(receipts))
		start := time.Now()
		for range b.N {
			for i, r := range receipts {
				cmd := exec.Command("tesseract", append([]string{r.ImagePath, "stdout", "--psm", "6"}, extra...)...)
				cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
				out, err := cmd.Output()
				if err != nil {
					b.Fatal(err)
				}
				texts[i] = strings.Split(string(out), "\n")
			}
		}
		report(b, time.Since(start), texts)
	}
	b.Run("bare", func(b *testing.B) { bare(b) })
	// The same run asked for what the worker asks of Tesseract: hOCR with
	// character boxes (CER not comparable: the output is markup).
	b.Run("bare-hocr", func(b *testing.B) { bare(b, "-c", "hocr_char_boxes=1", "hocr") })

	for _, parallel := range []int{1, 2} {
		b.Run("worker-"+string(rune('0'+parallel)), func(b *testing.B) {
			texts := make([][]string, len(receipts))
			var elapsed time.Duration
			for range b.N {
				bd := setup(b, func(c *ocrstage.Config) { c.Parallel = parallel })
				jobs := make([]ocrjob.Job, len(receipts))
				for i, r := range receipts {
					jobs[i] = bd.submit(b, r.Name+".jpg", images[i], func(j *ocrjob.Job) { j.Force = true })
				}
				start := time.Now()
				bd.drainAll(b)
				elapsed += time.Since(start)
				for i, j := range jobs {
					texts[i] = bd.resultText(b, j)
				}
			}
			report(b, elapsed, texts)
		})
	}
}

// drainAll handles the jobs queue until it is empty, in batches of 10.
func (b *bundle) drainAll(tb testing.TB) {
	ctx := context.Background()
	for {
		msgs, err := b.queues.OCRJobs.Receive(ctx, queue.ReceiveOptions{Max: 10, Visibility: 10 * time.Minute})
		if err != nil {
			tb.Fatal(err)
		}
		if len(msgs) == 0 {
			return
		}
		for i, err := range b.worker.HandleBatch(ctx, msgs) {
			if err != nil {
				tb.Fatal(err)
			}
			queue.Delete(ctx, b.queues.OCRJobs, msgs[i].ReceiptHandle)
		}
	}
}

// resultText is the text of a completed job's receipts, line by line.
func (b *bundle) resultText(tb testing.TB, j ocrjob.Job) []string {
	ctx := context.Background()
	got, err := ocrjob.GetJob(ctx, b.items, j.ImageID, j.JobID)
	if err != nil || got.Status != ocrjob.StatusCompleted {
		tb.Fatalf("job %s: %+v %v", j.JobID, got, err)
	}
	raw, err := blob.ReadAll(ctx, b.blob, got.ResultKey)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := ocr.Decode(raw)
	if err != nil {
		tb.Fatal(err)
	}
	var lines []string
	for _, rc := range res.Receipts {
		for _, l := range rc.Lines {
			lines = append(lines, l.Text)
		}
	}
	return lines
}
