package process_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/label/rules"
	"github.com/tallyhq/tally/process"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/textindex"
	textsqlite "github.com/tallyhq/tally/textindex/sqlite"
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
	dir := t.TempDir()
	text, err := textsqlite.Open(context.Background(), filepath.Join(dir, "text.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { text.Close() })
	b := setup(t, dir, func(c *process.Config) {
		c.Labels = &label.Pipeline{Rules: rules.New(), Refiner: ref}
		c.Text = text
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

	// The rows are in the text index with the summary's merchant.
	hits, err := text.Search(ctx, textindex.Query{Text: "agoura"})
	if err != nil || len(hits) != 1 || hits[0].ImageID != acc.ImageID || hits[0].Merchant != s.MerchantName {
		t.Errorf("text index: %+v %v", hits, err)
	}

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
	if hits, err := text.Search(ctx, textindex.Query{Text: "agoura"}); err != nil || len(hits) != 1 {
		t.Errorf("redelivery duplicated the text index rows: %d %v", len(hits), err)
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

// TestPortfolioFields measures the labels on the old system's real
// receipts (Apple Vision OCR of a flatbed scan and a phone photo): each
// field a person reads off the receipt is compared with the summary, and
// the share that matches is logged; the assertion is that most do.
func TestPortfolioFields(t *testing.T) {
	t.Parallel()
	b := setup(t, t.TempDir(), func(c *process.Config) { c.Labels = &label.Pipeline{Rules: rules.New()} })
	cases := []struct {
		fixture string
		w, h    int // a quarter of the original, same aspect
		want    map[string]string
	}{
		{"scan_2f05267d.vision.json", 620, 877, map[string]string{
			label.MerchantName: "VONS", label.AddressLine: "2725 Agoura Road WESTLAKE CA 91360", label.PhoneNumber: "+18054971921",
			label.Date: "2024-03-19", label.Time: "13:29", label.Tax: "0.00", label.GrandTotal: "3.60", label.PaymentMethod: "MASTERCARD",
			"card_last4": "5061", "items": "2", "country": "US"}},
		{"bar_receipt.vision.json", 756, 1008, map[string]string{
			label.MerchantName: "614 Gravier LLC", label.AddressLine: "614 Gravier Street New Orleans, LA 70130",
			label.Date: "2022-10-21", label.Time: "18:04", label.Tax: "1.82", label.GrandTotal: "20.00", label.PaymentMethod: "MASTERCARD",
			"card_last4": "1394", "items": "1", "country": "US"}},
	}
	ctx := context.Background()
	right, all := 0, 0
	for i, c := range cases {
		result, err := os.ReadFile(fixtures.Path(t, "portfolio", c.fixture))
		if err != nil {
			t.Fatal(err)
		}
		img := fixtures.BlankPNG(t, c.w, c.h)
		acc, err := b.upload.SubmitOCR(ctx, fmt.Sprintf("p%d.png", i), img, result, true)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []queue.Message
		for len(msgs) == 0 {
			msgs = b.receive(t)
		}
		if errs := b.worker.HandleBatch(ctx, msgs); errs[0] != nil {
			t.Fatal(errs[0])
		}
		e := export(t, b, acc.ImageID)
		if len(e.ReceiptSummaries) == 0 {
			t.Fatalf("%s: no summary", c.fixture)
		}
		s := e.ReceiptSummaries[0]
		got := map[string]string{"card_last4": s.CardLast4, "items": fmt.Sprint(len(e.ReceiptLineItems)), "country": s.Country}
		for k, f := range s.Fields {
			got[k] = f.Value
			if k == label.MerchantName || k == label.AddressLine {
				got[k] = f.Text
			}
		}
		for k, v := range c.want {
			all++
			if got[k] == v {
				right++
			} else {
				t.Logf("%s: %s = %q, the receipt says %q", c.fixture, k, got[k], v)
			}
		}
	}
	t.Logf("portfolio: %d of %d fields right", right, all)
	if right*4 < all*3 {
		t.Errorf("only %d of %d portfolio fields right", right, all)
	}
}
