package main

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/internal/fixtures"
)

// BenchmarkImport500 is bulk import: 500 small distinct PNGs imported into
// a fresh real `tally serve` (embedded backends; OCR runs beside it, as in
// use) by `tally import -j 4`, against the same 500 posted straight to
// POST /receipts by a plain HTTP loop at the same parallelism. The
// difference is the tool's overhead: reading and hashing each file, its
// sha256 duplicate check, the progress output.
func BenchmarkImport500(b *testing.B) {
	const n, jobs = 500, 4
	dir := b.TempDir()
	var files []string
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("%03d.png", i))
		if err := os.WriteFile(p, fixtures.BlankPNG(b, 10+i%50, 10+i/50), 0o644); err != nil {
			b.Fatal(err)
		}
		files = append(files, p)
	}
	// Each run has its own server, stopped (with its OCR of the run's
	// images) before the next starts. The plain loop runs first; the
	// import reports its overhead over it.
	var direct float64
	b.Run("direct-post", func(b *testing.B) {
		var d time.Duration
		for range b.N {
			server := benchServeT(b, "")
			t0 := time.Now()
			postAll(b, server, files, jobs)
			d += time.Since(t0)
		}
		direct = float64(n*b.N) / d.Seconds()
		b.ReportMetric(direct, "uploads/s")
		b.ReportMetric(0, "ns/op")
	})
	b.Run("tally-import", func(b *testing.B) {
		var d time.Duration
		for range b.N {
			server := benchServeT(b, "")
			t0 := time.Now()
			code, out := tallyCmd(context.Background(), "import", "-server", server, "-j", fmt.Sprint(jobs), dir)
			d += time.Since(t0)
			if code != 0 || !strings.Contains(out, fmt.Sprintf("imported %d, duplicates 0", n)) {
				b.Fatalf("tally import: %d\n%s", code, out)
			}
		}
		rate := float64(n*b.N) / d.Seconds()
		b.ReportMetric(rate, "uploads/s")
		if direct > 0 {
			b.ReportMetric(100*(direct/rate-1), "overhead-%")
		}
		b.ReportMetric(0, "ns/op")
	})
}

// postAll posts each file alone to POST /receipts, jobs at a time.
func postAll(b *testing.B, server string, files []string, jobs int) {
	next := make(chan string)
	var wg sync.WaitGroup
	for range jobs {
		wg.Go(func() {
			for p := range next {
				data, err := os.ReadFile(p)
				if err != nil {
					b.Error(err)
					continue
				}
				var body bytes.Buffer
				mw := multipart.NewWriter(&body)
				part, _ := mw.CreateFormFile("file", filepath.Base(p))
				part.Write(data)
				mw.Close()
				resp, err := http.Post(server+"/receipts", mw.FormDataContentType(), &body)
				if err != nil {
					b.Error(err)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("%s: HTTP %d", p, resp.StatusCode)
				}
			}
		})
	}
	for _, p := range files {
		next <- p
	}
	close(next)
	wg.Wait()
}
