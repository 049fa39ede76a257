package llm

import (
	"context"
	"fmt"
	"testing"

	"github.com/tallyhq/tally/internal/fakes"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/label/labeltest"
	"github.com/tallyhq/tally/label/rules"
)

// BenchmarkRequestsPerReceipt counts the LLM's Chat Completions requests
// per receipt through the label pipeline with the item-store cache: the
// first time a receipt is labelled (goal ≤ 1) and when the same receipt is
// labelled again, as a reprocessed upload is (goal 0). One op labels 50
// different receipts twice against a local server that speaks the real
// format.
func BenchmarkRequestsPerReceipt(b *testing.B) {
	chat := fakes.NewChat(b, func(fakes.ChatRequest) fakes.ChatReply {
		return fakes.ChatReply{Body: fakes.ChatCompletion("m", `{"reasoning":"","fields":[],"line_items":[],"labels":[],"currency":""}`, "stop")}
	})
	const n = 50
	rs := make([]label.Receipt, n)
	for i := range rs {
		rs[i] = labeltest.Printed(b, fmt.Sprintf("SHOP %d LLC", i), "03/04/2024", fmt.Sprintf("MILK %d.25", i+1), fmt.Sprintf("TOTAL %d.25", i+1))
	}
	var first, repeat int64
	for b.Loop() {
		r, err := New(Options{BaseURL: chat.URL, APIKey: "test", Model: "m", Table: openTable(b)})
		if err != nil {
			b.Fatal(err)
		}
		pl := label.Pipeline{Rules: rules.New(), Refiner: r}
		for pass := range 2 {
			before := r.Requests()
			for _, rc := range rs {
				if _, err := pl.Propose(context.Background(), rc); err != nil {
					b.Fatal(err)
				}
			}
			if pass == 0 {
				first += r.Requests() - before
			} else {
				repeat += r.Requests() - before
			}
		}
	}
	b.ReportMetric(float64(first)/float64(b.N)/n, "requests/receipt")
	b.ReportMetric(float64(repeat)/float64(b.N)/n, "requests/repeat")
	b.ReportMetric(0, "ns/op")
}
