package ocrstage_test

import (
	"context"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/sroie"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocr/paddle"
	"github.com/tallyhq/tally/ocr/tesseract"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/ocrstage"
	"github.com/tallyhq/tally/queue"
)

// BenchmarkSROIE measures both OCR engines on the 60 SROIE scans
// (sroie/img and sroie/extra/img), one operation being all 60 images:
//
//   - bare: `tesseract IMAGE stdout --psm 6` per image with
//     OMP_THREAD_LIMIT=1, one at a time — Tesseract's floor;
//   - engine-E: engine E alone on each whole image, one at a time, single
//     threaded;
//   - worker-E-N: the OCR worker on engine E with N images at once: download,
//     decode, classify, cluster, rectify, recognize, store crops and result,
//     routing item, message.
//
// Metrics: s/image (wall) and cpu-s/image (this process and its children),
// line-matched CER against the transcripts in box/*.csv with spaces
// (CER) and without (CER-nospace), segment CER (each transcript line against
// its best window in any OCR line, so an engine's line splitting does not
// count) with and without spaces, how many receipts have their printed
// total, date, company and address somewhere in the text (company and
// address also with spaces removed), and the peak resident memory of this
// process (MB-peak; Tesseract's own, a child's, is child-MB-peak).
func BenchmarkSROIE(b *testing.B) {
	receipts, err := sroie.LoadAll(filepath.Join(fixtures.Dir(b), "sroie"))
	if err != nil {
		b.Fatal(err)
	}
	images := make([][]byte, len(receipts))
	decoded := make([]image.Image, len(receipts))
	for i, r := range receipts {
		if images[i], err = os.ReadFile(r.ImagePath); err != nil {
			b.Fatal(err)
		}
		decoded[i] = fixtures.DecodeImage(b, r.ImagePath)
	}
	paddleEngine, err := paddle.New(paddle.Options{Dir: fixtures.PaddleDir(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer paddleEngine.Close()
	tess, err := tesseract.New(tesseract.Options{})
	if err != nil {
		b.Fatal(err)
	}
	engines := []struct {
		name   string
		engine ocr.Engine
	}{{"tesseract", tess}, {"paddle", paddleEngine}}

	n := float64(len(receipts))
	var usage0 usage
	start := func() { resetPeakRSS(); usage0 = readUsage() }
	report := func(b *testing.B, elapsed time.Duration, texts [][]string) {
		u := readUsage()
		b.ReportMetric(elapsed.Seconds()/float64(b.N)/n, "s/image")
		b.ReportMetric((u.cpu-usage0.cpu).Seconds()/float64(b.N)/n, "cpu-s/image")
		b.ReportMetric(float64(peakRSS())/(1<<20), "MB-peak")
		b.ReportMetric(float64(u.childMaxRSS)/(1<<20), "child-MB-peak")
		var sum sroie.Tally
		for i, r := range receipts {
			sum.Add(sroie.ScoreText(r, texts[i]))
		}
		cer, cerNS := sum.CER()
		seg, segNS := sum.SegmentCER()
		b.ReportMetric(cer, "CER")
		b.ReportMetric(cerNS, "CER-nospace")
		b.ReportMetric(seg, "segCER")
		b.ReportMetric(segNS, "segCER-nospace")
		b.ReportMetric(float64(sum.Totals), "totals/60")
		b.ReportMetric(float64(sum.Dates), "dates/60")
		b.ReportMetric(float64(sum.Companies), "company/60")
		b.ReportMetric(float64(sum.CompaniesNoSpace), "company-nospace/60")
		b.ReportMetric(float64(sum.Addresses), "address/60")
		b.ReportMetric(float64(sum.AddressesNoSpace), "address-nospace/60")
		b.ReportMetric(0, "ns/op")
	}

	b.Run("bare", func(b *testing.B) {
		if _, err := exec.LookPath("tesseract"); err != nil {
			b.Fatal("tesseract not installed (make deps-ocr)")
		}
		texts := make([][]string, len(receipts))
		start()
		begin := time.Now()
		for range b.N {
			for i, r := range receipts {
				cmd := exec.Command("tesseract", r.ImagePath, "stdout", "--psm", "6")
				cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
				out, err := cmd.Output()
				if err != nil {
					b.Fatal(err)
				}
				texts[i] = strings.Split(string(out), "\n")
			}
		}
		report(b, time.Since(begin), texts)
	})

	before := paddleEngine.Times()
	for _, eng := range engines {
		b.Run("engine-"+eng.name, func(b *testing.B) {
			texts := make([][]string, len(receipts))
			start()
			begin := time.Now()
			for range b.N {
				for i, img := range decoded {
					lines, err := eng.engine.Recognize(context.Background(), img)
					if err != nil {
						b.Fatal(err)
					}
					texts[i] = texts[i][:0]
					for _, l := range lines {
						texts[i] = append(texts[i], l.Text)
					}
				}
			}
			report(b, time.Since(begin), texts)
		})
	}
	b.Run("engine-paddle-stages", func(b *testing.B) {
		// The split of engine-paddle's time, from the engine's own clocks.
		t := paddleEngine.Times()
		images := float64(t.Images - before.Images)
		if images == 0 {
			b.Skip("engine-paddle did not run")
		}
		b.ReportMetric((t.Detect-before.Detect).Seconds()/images, "detect-s/image")
		b.ReportMetric((t.Recognize-before.Recognize).Seconds()/images, "recognize-s/image")
		b.ReportMetric(float64(t.Lines-before.Lines)/images, "lines/image")
		b.ReportMetric(0, "ns/op")
	})

	for _, eng := range engines {
		for _, parallel := range []int{1, 2} {
			b.Run(fmt.Sprintf("worker-%s-%d", eng.name, parallel), func(b *testing.B) {
				texts := make([][]string, len(receipts))
				var elapsed time.Duration
				start()
				for range b.N {
					bd := setup(b, func(c *ocrstage.Config) { c.Parallel, c.Engine = parallel, eng.engine })
					jobs := make([]ocrjob.Job, len(receipts))
					for i, r := range receipts {
						jobs[i] = bd.submit(b, r.Name+".jpg", images[i], func(j *ocrjob.Job) { j.Force = true })
					}
					begin := time.Now()
					bd.drainAll(b)
					elapsed += time.Since(begin)
					for i, j := range jobs {
						texts[i] = bd.resultText(b, j)
					}
				}
				report(b, elapsed, texts)
			})
		}
	}
}

// usage is the CPU time of this process and its children, and the largest
// resident set any child reached.
type usage struct {
	cpu         time.Duration
	childMaxRSS int64
}

func readUsage() usage {
	var self, children syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return usage{
		cpu:         tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime),
		childMaxRSS: children.Maxrss * 1024,
	}
}

// resetPeakRSS starts the kernel's high-water mark of this process's
// resident set afresh (Linux: "5" to /proc/self/clear_refs).
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is this process's resident high-water mark (VmHWM) in bytes.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
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
