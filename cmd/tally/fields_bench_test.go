package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/sroie"
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/label/labeltest"
)

// BenchmarkSROIEFields is receipt understanding end to end from the image:
// each of the 60 SROIE scans is uploaded to a real `tally serve` (embedded
// backends, the named OCR engine), goes through OCR, processing and
// labelling, and its summary's MERCHANT_NAME.text, ADDRESS_LINE.text,
// DATE and GRAND_TOTAL.value are scored against the key fields, strict
// (SROIE's exact match) and normalized (see sroie.ScoreFields). One op is
// all 60 images; F1 figures are percentages.
func BenchmarkSROIEFields(b *testing.B) {
	rs, err := sroie.LoadAll(filepath.Join(fixtures.Dir(b), "sroie"))
	if err != nil {
		b.Fatal(err)
	}
	for _, engine := range []string{config.OCRTesseract, config.OCRPaddle} {
		b.Run(engine, func(b *testing.B) {
			if engine == config.OCRPaddle {
				fixtures.PaddleDir(b)
			}
			var tally sroie.FieldTally
			var elapsed time.Duration
			for range b.N {
				tally = sroie.FieldTally{}
				addr := benchServe(b, engine)
				begin := time.Now()
				ids := uploadAll(b, addr, rs)
				for i, r := range rs {
					s := waitSummary(b, addr, ids[i])
					tally.Add(r.Name, sroie.ScoreFields(r.Key, labeltest.SROIEFields(s)))
				}
				elapsed += time.Since(begin)
			}
			strict, norm := tally.F1()
			b.ReportMetric(100*strict, "F1-strict")
			b.ReportMetric(100*norm, "F1-normalized")
			for _, f := range sroie.FieldNames() {
				_, n := tally.Counts(f)
				b.ReportMetric(float64(n.Correct), f+"/60")
			}
			b.ReportMetric(elapsed.Seconds()/float64(b.N)/float64(len(rs)), "s/image")
			b.ReportMetric(0, "ns/op")
			b.Logf("%s:\n%s", engine, tally.Table())
		})
	}
}

// benchServe runs serve with the engine on a fresh data directory.
func benchServe(b *testing.B, engine string) string { return benchServeT(b, engine) }

// benchServeT runs serve with the engine on a fresh data directory.
func benchServeT(b testing.TB, engine string) string {
	b.Helper()
	cfg, err := config.Config{DataDir: b.TempDir(), Addr: "127.0.0.1:0", OCREngine: engine}.Resolve()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func(a string) { addrc <- a })
	}()
	b.Cleanup(func() { cancel(); <-done })
	select {
	case a := <-addrc:
		return "http://" + a
	case err := <-done:
		b.Fatalf("serve: %v", err)
	}
	return ""
}

// uploadAll uploads every receipt's image with `tally upload` and returns
// the image ids in order.
func uploadAll(b *testing.B, server string, rs []sroie.Receipt) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = uploadOne(b, server, r.ImagePath)
	}
	return ids
}

// uploadOne uploads one file with `tally upload` and returns its image id.
func uploadOne(b testing.TB, server, path string) string {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"upload", "-server", server, path}, &out, &errb); code != 0 {
		b.Fatalf("upload %s: %s", path, errb.String())
	}
	// "FILE\tIMAGE_ID[ note]"
	f := strings.Split(strings.TrimSpace(out.String()), "\t")
	if len(f) < 2 {
		b.Fatalf("upload %s: output %q", path, out.String())
	}
	return strings.Fields(f[1])[0]
}

// waitSummary waits for an image's first receipt summary.
func waitSummary(b *testing.B, server, imageID string) entities.ReceiptSummary {
	var exp entities.Export
	waitfor.True(b, "summary of "+imageID, func() bool {
		resp, err := http.Get(server + "/images/" + imageID)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
		if err := json.NewDecoder(resp.Body).Decode(&exp); err != nil {
			b.Fatal(err)
		}
		return len(exp.ReceiptSummaries) > 0
	})
	return exp.ReceiptSummaries[0]
}
