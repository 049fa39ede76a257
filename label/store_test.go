package label_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/ocr"
)

// smallReceipt is a receipt of three rows: a name, an item and a total.
func smallReceipt() label.Receipt {
	r := label.Receipt{ImageID: "img-s", ReceiptID: 1, Width: 100, Height: 100}
	texts := [][]string{{"CORNER", "SHOP"}, {"MILK", "4.25"}, {"TOTAL", "4.25"}}
	for li, ws := range texts {
		y := 0.9 - 0.2*float64(li)
		for wi, tx := range ws {
			x := 0.1 + 0.4*float64(wi)
			q := ocr.Quad{TopLeft: ocr.Point{X: x, Y: y}, TopRight: ocr.Point{X: x + 0.3, Y: y},
				BottomRight: ocr.Point{X: x + 0.3, Y: y - 0.1}, BottomLeft: ocr.Point{X: x, Y: y - 0.1}}
			r.Words = append(r.Words, entities.ReceiptWord{ImageID: r.ImageID, ReceiptID: 1, LineID: li + 1, WordID: wi + 1, Text: tx, Geometry: ocr.NewGeometry(q, 1)})
		}
	}
	return r
}

func proposal() label.Proposal {
	field := func(text, value string, ref entities.WordRef) entities.SummaryField {
		return entities.SummaryField{Text: text, Value: value, Words: []entities.WordRef{ref}, Confidence: 0.9, Source: label.SourceRules}
	}
	return label.Proposal{Source: label.SourceRules,
		Fields: map[string]entities.SummaryField{
			label.MerchantName: field("CORNER", "CORNER", entities.WordRef{1, 1}),
			label.Date:         {Value: "2024-03-04", Text: "03/04/2024"},
			label.GrandTotal:   field("4.25", "4.25", entities.WordRef{3, 2}),
		},
		Labels: []label.WordLabel{
			{Word: entities.WordRef{1, 1}, Label: label.MerchantName, Confidence: 0.9, Source: label.SourceRules},
			{Word: entities.WordRef{2, 2}, Label: label.LineTotal, Confidence: 0.9, Source: label.SourceRules},
			{Word: entities.WordRef{3, 2}, Label: label.GrandTotal, Confidence: 0.9, Source: label.SourceRules},
		},
		Items: []entities.ReceiptLineItem{{Name: "MILK", Price: "4.25", LineIDs: []int{2}}},
	}
}

// TestCorrectAndReapply: a correction rejects the old rows (kept as
// INVALID), adds the person's, recomputes the checks; a later relabel
// keeps the correction; an invalid correction changes nothing.
func TestCorrectAndReapply(t *testing.T) { eachBackend(t, testCorrectAndReapply) }

func testCorrectAndReapply(t *testing.T, tbl items.Table) {
	ctx := context.Background()
	r := smallReceipt()
	at := time.Date(2024, 3, 4, 12, 0, 0, 0, time.UTC)
	u, err := label.Apply(ctx, tbl, r, proposal(), at, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if u.Summary.Status != entities.SummaryValid {
		t.Fatalf("status %s %v", u.Summary.Status, u.Summary.ReviewReasons)
	}

	// Bad corrections: nothing stored.
	for _, c := range []label.Correction{
		{Fields: map[string]label.FieldCorrection{label.GrandTotal: {Value: "four"}}},
		{Fields: map[string]label.FieldCorrection{"NOT_A_LABEL": {Value: "1"}}},
		{Labels: []label.LabelCorrection{{LineID: 9, WordID: 9, Label: label.Tax}}},
		{Fields: map[string]label.FieldCorrection{label.Date: {Value: "2019-02-30"}}},
		{},
	} {
		if _, err := label.Correct(ctx, tbl, r, c, at); !errors.Is(err, label.ErrInvalidCorrection) {
			t.Errorf("correction %+v: err %v, want ErrInvalidCorrection", c, err)
		}
	}
	after, _, err := label.Stored(ctx, tbl, r.ImageID, 1)
	if err != nil || after.Summary.GrandTotal != "4.25" || len(after.Labels) != 3 {
		t.Fatalf("a rejected correction changed something: %+v %v", after.Summary, err)
	}

	// The person says the total is 5.25 on the same word.
	u, err = label.Correct(ctx, tbl, r, label.Correction{Fields: map[string]label.FieldCorrection{
		"grand_total": {Value: "5.25", Words: []entities.WordRef{{3, 2}}}}}, at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if u.Summary.GrandTotal != "5.25" || u.Summary.Fields[label.GrandTotal].Source != label.SourceUser {
		t.Errorf("summary total %q source %q", u.Summary.GrandTotal, u.Summary.Fields[label.GrandTotal].Source)
	}
	if u.Summary.Status != entities.SummaryNeedsReview {
		t.Errorf("items 4.25 against total 5.25: status %s", u.Summary.Status)
	}
	// The word [3,2] GRAND_TOTAL row is the user's now (same key): the
	// machine's was replaced by the person's VALID row.
	var user int
	for _, l := range u.Labels {
		if l.LabelProposedBy == label.SourceUser && l.ValidationStatus == entities.LabelValid {
			user++
		}
	}
	if user != 1 {
		t.Errorf("%d user labels, want 1: %+v", user, u.Labels)
	}

	// A word label correction: [2,2] is TAX, not LINE_TOTAL.
	u, err = label.Correct(ctx, tbl, r, label.Correction{Labels: []label.LabelCorrection{{LineID: 2, WordID: 2, Label: "TAX"}}}, at.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var invalid, consolidated bool
	for _, l := range u.Labels {
		if l.LineID == 2 && l.WordID == 2 && l.Label == label.LineTotal && l.ValidationStatus == entities.LabelInvalid {
			invalid = true
		}
		if l.LineID == 2 && l.WordID == 2 && l.Label == label.Tax && l.LabelConsolidatedFrom == label.LineTotal {
			consolidated = true
		}
	}
	if !invalid || !consolidated {
		t.Errorf("old row INVALID %v, new row from LINE_TOTAL %v: %+v", invalid, consolidated, u.Labels)
	}

	// Relabelling (tally label) keeps the person's corrections and history.
	u, err = label.Apply(ctx, tbl, r, proposal(), at.Add(3*time.Hour), "")
	if err != nil {
		t.Fatal(err)
	}
	if u.Summary.GrandTotal != "5.25" {
		t.Errorf("relabel lost the corrected total: %q", u.Summary.GrandTotal)
	}
	stored, _, err := label.Stored(ctx, tbl, r.ImageID, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range stored.Labels {
		if l.LineID == 2 && l.WordID == 2 && l.Label == label.LineTotal && l.ValidationStatus != entities.LabelInvalid {
			t.Errorf("relabel revived a rejected label: %+v", l)
		}
	}
}

func TestCanonical(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"ADDRESS": label.AddressLine, "business_name": label.MerchantName,
		"CARD_NUMBER": label.PaymentMethod, "PAYMENT_TYPE": label.PaymentMethod, "tax": label.Tax} {
		if got, err := label.Canonical(in); err != nil || got != want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := label.Canonical("TOTALS"); !errors.Is(err, label.ErrUnknownLabel) {
		t.Errorf("unknown label: %v", err)
	}
}

func TestReconciliation(t *testing.T) {
	t.Parallel()
	r := smallReceipt()
	for _, c := range []struct{ sub, want string }{{"4.25", label.ReconcileMatch}, {"4.26", label.ReconcileMatch},
		{"4.90", label.ReconcileNear}, {"9.00", label.ReconcileMismatch}, {"", label.ReconcileMatch}} {
		p := proposal()
		if c.sub != "" {
			p.Fields[label.Subtotal] = entities.SummaryField{Value: c.sub, Text: c.sub}
		}
		u := label.Summarize(r, p, time.Unix(0, 0))
		if got := u.Summary.Reconciliation.Status; got != c.want {
			t.Errorf("subtotal %q: reconciliation %s, want %s (%+v)", c.sub, got, c.want, u.Summary.Reconciliation)
		}
	}
}
