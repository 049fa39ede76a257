package process_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/label/rules"
	"github.com/tallyhq/tally/process"
	"github.com/tallyhq/tally/queue"
)

// countingRefiner stands in for an LLM: it counts its calls and returns
// the proposal unchanged.
type countingRefiner struct{ calls atomic.Int64 }

func (c *countingRefiner) Refine(_ context.Context, _ label.Receipt, p label.Proposal) (label.Proposal, error) {
	c.calls.Add(1)
	return p, nil
}

// TestLabels: the process stage labels each receipt after writing its
// entities, and a redelivered record rewrites nothing and asks the
// refiner nothing.
func TestLabels(t *testing.T) {
	t.Parallel()
	ref := &countingRefiner{}
	b := setup(t, t.TempDir(), func(c *process.Config) {
		c.Labels = &label.Pipeline{Rules: rules.New(), Refiner: ref}
	})
	ctx := context.Background()
	acc := b.submitScan(t, 1)
	var msgs []queue.Message
	for len(msgs) == 0 {
		msgs = b.receive(t)
	}
	if errs := b.worker.HandleBatch(ctx, msgs); errs[0] != nil {
		t.Fatal(errs[0])
	}
	first := export(t, b, acc.ImageID)
	if len(first.ReceiptSummaries) != 1 {
		t.Fatalf("%d summaries, want 1", len(first.ReceiptSummaries))
	}
	s := first.ReceiptSummaries[0]
	if s.GrandTotal == "" || s.MerchantName == "" || s.Date == "" || len(first.ReceiptWordLabels) == 0 {
		t.Errorf("summary lacks the basics: merchant %q date %q total %q, %d labels", s.MerchantName, s.Date, s.GrandTotal, len(first.ReceiptWordLabels))
	}
	if s.Status == entities.SummaryNeedsReview && len(s.ReviewReasons) == 0 {
		t.Error("NEEDS_REVIEW without a reason")
	}
	if ref.calls.Load() != 1 {
		t.Errorf("refiner called %d times for one receipt", ref.calls.Load())
	}
	t.Logf("summary: %s %s %s %s (%v)", s.MerchantName, s.Date, s.GrandTotal, s.Status, s.ReviewReasons)

	// Redelivery: the same items, no refiner call.
	if errs := b.worker.HandleBatch(ctx, msgs); errs[0] != nil {
		t.Fatal(errs[0])
	}
	second := export(t, b, acc.ImageID)
	a, _ := json.Marshal([]any{first.ReceiptSummaries, first.ReceiptWordLabels, first.ReceiptLineItems})
	c, _ := json.Marshal([]any{second.ReceiptSummaries, second.ReceiptWordLabels, second.ReceiptLineItems})
	if string(a) != string(c) {
		t.Errorf("redelivery changed the labels:\n%s\n%s", a, c)
	}
	if ref.calls.Load() != 1 {
		t.Errorf("redelivery called the refiner (%d calls)", ref.calls.Load())
	}
}

func export(t *testing.T, b *bundle, imageID string) entities.Export {
	t.Helper()
	set, err := entities.Load(context.Background(), b.items, imageID)
	if err != nil {
		t.Fatal(err)
	}
	return set.Export()
}
