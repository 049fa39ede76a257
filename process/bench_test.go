package process_test

import (
	"context"
	"testing"
	"time"

	embedcache "github.com/tallyhq/tally/embed/cache"
	"github.com/tallyhq/tally/embed/coalesce"
	"github.com/tallyhq/tally/embed/openai"
	"github.com/tallyhq/tally/internal/fakes"
	"github.com/tallyhq/tally/merchant"
	"github.com/tallyhq/tally/places"
	"github.com/tallyhq/tally/places/google"
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

// BenchmarkAPIRequests counts external requests: one op is a batch of 10
// new receipts (the real scan, each a different image) through the process
// stage wired as serve wires it — OpenAI adapter behind the item-store
// cache and the coalescer, Google Places behind its cache — against local
// servers speaking those APIs. The first op runs cold; later ops find the
// same texts and phone in the caches, as receipts of a store seen before do.
func BenchmarkAPIRequests(b *testing.B) {
	ai := fakes.NewOpenAI(b)
	pl := fakes.NewPlaces(b, []fakes.Place{{ID: "ChIJ-vons-westlake", Name: "Vons", Address: "2725 Agoura Rd, Westlake Village, CA 91361, USA",
		Phone: "+18054971921", Types: []string{"supermarket"}}})
	bd := setup(b, b.TempDir(), func(c *process.Config) {
		oa, err := openai.New(openai.Options{BaseURL: ai.URL, APIKey: "test", Dims: 64})
		if err != nil {
			b.Fatal(err)
		}
		cached, err := embedcache.New(oa, c.Items, embedcache.Options{})
		if err != nil {
			b.Fatal(err)
		}
		c.Embedder = coalesce.New(cached, coalesce.Options{Window: process.EmbedWindow, MaxCallers: queue.MaxBatch})
		gc, err := google.New(google.Options{APIKey: "test", BaseURL: pl.URL, LegacyBaseURL: pl.URL})
		if err != nil {
			b.Fatal(err)
		}
		c.Merchant = &merchant.Resolver{Places: places.NewCache(gc, c.Items, places.CacheOptions{}), Items: c.Items}
		c.Parallel = 10
	})
	ctx := context.Background()
	batch := func(seed int) {
		for i := range 10 {
			bd.submitScan(b, seed*10+i)
		}
		var msgs []queue.Message
		for len(msgs) < 10 {
			got := bd.receive(b)
			if len(got) == 0 {
				b.Fatal("results missing")
			}
			msgs = append(msgs, got...)
		}
		for _, err := range bd.worker.HandleBatch(ctx, msgs) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	batch(0)
	b.ReportMetric(float64(ai.Requests())/10, "embed-req/receipt-cold")
	b.ReportMetric(float64(pl.Requests())/10, "places-req/receipt-cold")
	ai0, pl0 := ai.Requests(), pl.Requests()
	b.StartTimer()
	for i := range b.N {
		batch(i + 1)
	}
	b.ReportMetric(float64(ai.Requests()-ai0)/float64(10*b.N), "embed-req/receipt-warm")
	b.ReportMetric(float64(pl.Requests()-pl0)/float64(10*b.N), "places-req/receipt-warm")
}
