// Package labeltest is the conformance suite every labeller passes (the
// rules engine alone, and the rules refined by an LLM or by neighbours): it
// must label real-looking receipts with proposals that validate against
// their words, never fail on odd input, and stop when its context ends.
package labeltest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocr/extract"
)

// Features says what a labeller promises beyond the common contract.
type Features struct {
	// Deterministic labellers give the same proposal for the same input.
	Deterministic bool
	// FindsTotals labellers find the grand total of a plain receipt.
	FindsTotals bool
}

// Printed builds a receipt from printed rows, one line per row, words split
// on spaces and laid out left to right, with the OCR stage's extracted
// data: the shape the process stage hands a labeller.
func Printed(tb testing.TB, rows ...string) label.Receipt {
	tb.Helper()
	const w, h = 600, 2000
	lineH := 1.0 / float64(len(rows)+2)
	var lines []ocr.Line
	for i, text := range rows {
		top := 1 - float64(i+1)*lineH
		bottom := top - lineH*0.8
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		var words []ocr.Word
		x := 0.02
		for _, f := range fields {
			wd := min(float64(len(f))*0.015, 0.9)
			q := ocr.Quad{TopLeft: ocr.Point{X: x, Y: top}, TopRight: ocr.Point{X: min(x+wd, 1), Y: top},
				BottomRight: ocr.Point{X: min(x+wd, 1), Y: bottom}, BottomLeft: ocr.Point{X: x, Y: bottom}}
			words = append(words, ocr.Word{Text: f, Geometry: ocr.NewGeometry(q, 1)})
			x = min(x+wd+0.015, 0.99)
		}
		q := ocr.Quad{TopLeft: ocr.Point{X: 0.02, Y: top}, TopRight: ocr.Point{X: x, Y: top},
			BottomRight: ocr.Point{X: x, Y: bottom}, BottomLeft: ocr.Point{X: 0.02, Y: bottom}}
		lines = append(lines, ocr.Line{Text: strings.Join(fields, " "), Words: words, Geometry: ocr.NewGeometry(q, 1)})
	}
	extract.Annotate(lines)
	r := label.Receipt{ImageID: "img-1", ReceiptID: 1, Width: w, Height: h}
	for li, l := range lines {
		r.Lines = append(r.Lines, entities.ReceiptLine{ImageID: r.ImageID, ReceiptID: 1, LineID: li + 1, Text: l.Text, Geometry: l.Geometry})
		for wi, wd := range l.Words {
			r.Words = append(r.Words, entities.ReceiptWord{ImageID: r.ImageID, ReceiptID: 1, LineID: li + 1, WordID: wi + 1,
				Text: wd.Text, ExtractedData: wd.ExtractedData, Geometry: wd.Geometry})
		}
	}
	r.Rows = entities.GroupRows(r.Lines, w, h)
	return r
}

// plain is a receipt any labeller should read.
var plain = []string{"CORNER GROCERY INC.", "614 Gravier Street", "New Orleans, LA 70130", "03/04/2024 5:42 PM",
	"MILK 4.25", "BREAD 3.00", "SUBTOTAL 7.25", "SALES TAX 0.58", "TOTAL $7.83", "VISA 7.83"}

// odd are receipts a labeller must survive without an error.
func odd() map[string][]string {
	huge := []string{"BIG STORE SDN BHD"}
	for i := range 2000 {
		huge = append(huge, fmt.Sprintf("ITEM %d 1.00", i))
	}
	return map[string][]string{
		"no text":         nil,
		"no amounts":      {"CORNER SHOP", "THANK YOU"},
		"two totals":      {"SHOP LLC", "TOTAL 4.25", "TOTAL 5.25"},
		"decimal comma":   {"SHOP LLC", "TOTAL 1.234,56"},
		"refund":          {"SHOP LLC", "REFUND", "TOTAL -4.25"},
		"impossible date": {"SHOP LLC", "31/02/2019", "TOTAL 4.25"},
		"garbage":         {"%%%% ~~~ ((((", "}{ 12.3.4.5 -.- $$", "\x00\x01"},
		"huge":            huge,
	}
}

// Run runs the suite against the labeller newLabeller returns.
func Run(t *testing.T, f Features, newLabeller func(t *testing.T) label.Labeller) {
	t.Run("ProposalsValidate", func(t *testing.T) {
		t.Parallel()
		l := newLabeller(t)
		rs := map[string][]string{"plain": plain}
		for k, v := range odd() {
			rs[k] = v
		}
		for name, rows := range rs {
			r := Printed(t, rows...)
			p, err := l.Label(context.Background(), r)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if err := label.Validate(r, &p); err != nil {
				t.Errorf("%s: proposal does not validate: %v", name, err)
			}
			for _, wl := range p.Labels {
				if wl.Source == "" {
					t.Errorf("%s: label %s on %v has no source", name, wl.Label, wl.Word)
				}
			}
			u := label.Summarize(r, p, time.Unix(0, 0))
			if name != "plain" && u.Summary.Status != entities.SummaryNeedsReview {
				t.Errorf("%s: status %s, want NEEDS_REVIEW", name, u.Summary.Status)
			}
		}
	})
	t.Run("PlainReceipt", func(t *testing.T) {
		t.Parallel()
		if !f.FindsTotals {
			t.Skip("the labeller does not promise totals")
		}
		r := Printed(t, plain...)
		p, err := newLabeller(t).Label(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Fields[label.GrandTotal].Value; got != "7.83" {
			t.Errorf("grand total %q, want 7.83", got)
		}
		if u := label.Summarize(r, p, time.Unix(0, 0)); u.Summary.Status != entities.SummaryValid {
			t.Errorf("status %s: %v", u.Summary.Status, u.Summary.ReviewReasons)
		}
	})
	t.Run("Deterministic", func(t *testing.T) {
		t.Parallel()
		if !f.Deterministic {
			t.Skip("not deterministic")
		}
		l := newLabeller(t)
		r := Printed(t, plain...)
		a, err1 := l.Label(context.Background(), r)
		b, err2 := l.Label(context.Background(), r)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if err1 != nil || err2 != nil || string(ja) != string(jb) {
			t.Errorf("two runs differ: %v %v\n%s\n%s", err1, err2, ja, jb)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := newLabeller(t).Label(ctx, Printed(t, plain...)); err == nil {
			t.Error("a cancelled context labelled anyway")
		}
	})
}

// Refined is a refiner in front of a labeller, as the label pipeline runs
// them, so a refiner passes the same suite.
type Refined struct {
	Pipeline label.Pipeline
}

// Label is the pipeline's proposal.
func (r Refined) Label(ctx context.Context, rc label.Receipt) (label.Proposal, error) {
	return r.Pipeline.Propose(ctx, rc)
}
