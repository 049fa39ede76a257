package process_test

import (
	"context"
	"testing"
	"time"

	"github.com/tallyhq/tally/process"
	"github.com/tallyhq/tally/queue"
)

// BenchmarkProcess measures receipts per second on one core (Parallel 1),
// offline embedder (hashed, 64 dims here; 512 in serve), renditions off:
// each op is one record of the real scan fixture (1 receipt, 40 lines, 104
// words): entities, rows, embeddings, two vector deltas, compaction run and
// message, routing COMPLETED.
func BenchmarkProcess(b *testing.B) {
	bd := setup(b, b.TempDir(), func(c *process.Config) { c.Parallel = 1 })
	var msgs []queue.Message
	for i := range b.N {
		bd.submitScan(b, i)
	}
	for len(msgs) < b.N {
		got, err := bd.queues.OCRResults.Receive(context.Background(), queue.ReceiveOptions{Max: 10, Visibility: time.Hour})
		if err != nil || len(got) == 0 {
			b.Fatalf("received %d of %d, %v", len(msgs), b.N, err)
		}
		msgs = append(msgs, got...)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < len(msgs); i += 10 {
		for _, err := range bd.worker.HandleBatch(context.Background(), msgs[i:min(i+10, len(msgs))]) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(msgs))/time.Since(start).Seconds(), "receipts/s")
}
