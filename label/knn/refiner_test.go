package knn

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/ocr"
)

// textEmbedder gives each distinct text its own vector and remembers
// which, so that textIndex can answer by the word a vector stands for.
type textEmbedder struct {
	mu    sync.Mutex
	ids   map[string]int
	texts []string
	calls int
}

func (e *textEmbedder) Embed(_ context.Context, texts []string) ([][]float32, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls++
	if e.ids == nil {
		e.ids = map[string]int{}
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		id, ok := e.ids[t]
		if !ok {
			id = len(e.texts)
			e.ids[t] = id
			e.texts = append(e.texts, t)
		}
		out[i] = []float32{float32(id), 1}
	}
	return out, nil
}
func (e *textEmbedder) Dims() int     { return 2 }
func (e *textEmbedder) Model() string { return "text-ids" }

// textIndex answers with canned neighbours for the centre word of the
// embedded text (pipeline.WordTexts puts it third).
type textIndex struct {
	e       *textEmbedder
	byWord  map[string][]Neighbour
	queried []string
	err     error
}

func (x *textIndex) Neighbours(_ context.Context, v []float32, k int, exclude string) ([]Neighbour, error) {
	if x.err != nil {
		return nil, x.err
	}
	x.e.mu.Lock()
	text := x.e.texts[int(v[0])]
	x.e.mu.Unlock()
	word := strings.Fields(text)[2]
	x.queried = append(x.queried, word)
	ns := x.byWord[word]
	if len(ns) > k {
		ns = ns[:k]
	}
	return ns, nil // the index does not exclude: the refiner must
}

// testReceipt has three printed rows:
//
//	ACME MART
//	TOTAL 12.50
//	25/12/2018 CASH 20.00
func testReceipt() label.Receipt {
	w := func(line, id int, text string, x float64) entities.ReceiptWord {
		rw := entities.ReceiptWord{ImageID: "img-1", ReceiptID: 1, LineID: line, WordID: id, Text: text}
		rw.BoundingBox = ocr.BoundingBox{X: x, Y: 1 - float64(line)/10, Width: 0.1, Height: 0.05}
		return rw
	}
	date := w(3, 1, "25/12/2018", 0.1)
	date.ExtractedData = &ocr.ExtractedData{Type: ocr.ExtractDate, Value: "2018-12-25"}
	r := label.Receipt{ImageID: "img-1", ReceiptID: 1,
		Words: []entities.ReceiptWord{w(1, 1, "ACME", 0.1), w(1, 2, "MART", 0.3), w(2, 1, "TOTAL", 0.1), w(2, 2, "12.50", 0.8),
			date, w(3, 2, "CASH", 0.4), w(3, 3, "20.00", 0.8)},
		Rows: []entities.ReceiptRow{{RowID: 1, LineIDs: []int{1}}, {RowID: 2, LineIDs: []int{2}}, {RowID: 3, LineIDs: []int{3}}},
	}
	for i := 1; i <= 3; i++ {
		r.Lines = append(r.Lines, entities.ReceiptLine{ImageID: "img-1", ReceiptID: 1, LineID: i})
	}
	return r
}

// agreeing is n neighbours of other images that all say lbl.
func agreeing(n int, sim float64, merchant, lbl string) []Neighbour {
	return repeat(n, nb(sim, merchant, "other", lbl))
}

func newTestRefiner(t *testing.T, byWord map[string][]Neighbour) (*Refiner, *textEmbedder, *textIndex) {
	t.Helper()
	e := &textEmbedder{}
	x := &textIndex{e: e, byWord: byWord}
	rf, err := New(e, x, Config{})
	if err != nil {
		t.Fatal(err)
	}
	return rf, e, x
}

func labelsOf(p label.Proposal, source string) map[entities.WordRef]label.WordLabel {
	out := map[entities.WordRef]label.WordLabel{}
	for _, l := range p.Labels {
		if l.Source == source {
			out[l.Word] = l
		}
	}
	return out
}

func TestRefineLabelsUnlabelledWords(t *testing.T) {
	t.Parallel()
	rf, e, x := newTestRefiner(t, map[string][]Neighbour{
		"ACME":  agreeing(5, 0.9, "", label.MerchantName),
		"MART":  append(agreeing(4, 0.9, "", label.MerchantName), nb(0.9, "", "zz", label.AddressLine)),
		"12.50": agreeing(5, 0.99, "", label.LineTotal), // labelled by the rules: never asked
		"CASH":  agreeing(2, 0.99, "", label.PaymentMethod),
		// An alias votes with its label; an unknown label not at all.
		"TOTAL": append(append(agreeing(2, 0.9, "", "PAYMENT_TYPE"), agreeing(1, 0.9, "", label.PaymentMethod)...), agreeing(3, 0.9, "", "NOT_A_LABEL")...),
	})
	r := testReceipt()
	in := label.Proposal{Source: label.SourceRules, Fields: map[string]entities.SummaryField{
		label.GrandTotal: {Text: "12.50", Value: "12.50", Words: []entities.WordRef{{2, 2}}, Source: label.SourceRules, Confidence: 0.9},
	}, Labels: []label.WordLabel{{Word: entities.WordRef{2, 2}, Label: label.GrandTotal, Source: label.SourceRules, Confidence: 0.9}}}
	before := cloneProposal(in)
	out, err := rf.Refine(context.Background(), r, in)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, before) {
		t.Error("Refine changed its input proposal")
	}
	if out.Source != "rules+knn" {
		t.Errorf("source %q, want rules+knn", out.Source)
	}
	if e.calls != 1 {
		t.Errorf("%d embed calls, want 1 for the whole receipt", e.calls)
	}
	for _, q := range x.queried {
		if q == "12.50" {
			t.Error("a word the proposal labelled was looked up")
		}
	}
	if len(x.queried) != len(r.Words)-1 {
		t.Errorf("looked up %v, want every unlabelled word", x.queried)
	}
	got := labelsOf(out, label.SourceKNN)
	if len(got) != 3 {
		t.Fatalf("kNN labels %+v, want ACME, MART and TOTAL", got)
	}
	if l := got[entities.WordRef{2, 1}]; l.Label != label.PaymentMethod || !strings.HasPrefix(l.Reasoning, "3 of 3 ") {
		t.Errorf("TOTAL: %+v, want PAYMENT_METHOD by 3 of 3 (aliases count, unknown labels do not)", l)
	}
	acme := got[entities.WordRef{1, 1}]
	if acme.Label != label.MerchantName || math.Abs(acme.Confidence-0.9) > 1e-9 || acme.Reasoning != "5 of 5 similar words (≥0.80) are MERCHANT_NAME" {
		t.Errorf("ACME: %+v", acme)
	}
	mart := got[entities.WordRef{1, 2}]
	if mart.Label != label.MerchantName || math.Abs(mart.Confidence-0.8*0.9) > 1e-9 || !strings.HasPrefix(mart.Reasoning, "4 of 5 similar words") {
		t.Errorf("MART: %+v", mart)
	}
	// The rules' labels and fields stand.
	if rules := labelsOf(out, label.SourceRules); len(rules) != 1 || rules[entities.WordRef{2, 2}].Label != label.GrandTotal {
		t.Errorf("rules labels %+v", rules)
	}
	if !reflect.DeepEqual(out.Fields[label.GrandTotal], in.Fields[label.GrandTotal]) {
		t.Errorf("GRAND_TOTAL %+v changed", out.Fields[label.GrandTotal])
	}
	// The merchant the rules did not find is filled from the kNN labels.
	m := out.Fields[label.MerchantName]
	if m.Text != "ACME MART" || m.Value != "ACME MART" || m.Source != label.SourceKNN || !reflect.DeepEqual(m.Words, []entities.WordRef{{1, 1}, {1, 2}}) {
		t.Errorf("MERCHANT_NAME %+v", m)
	}
	if err := label.Validate(r, &out); err != nil {
		t.Errorf("refined proposal invalid: %v", err)
	}
}

func TestRefineFillsOnlyMissingFields(t *testing.T) {
	t.Parallel()
	neighbours := map[string][]Neighbour{
		"ACME":       agreeing(3, 0.9, "", label.MerchantName),
		"20.00":      agreeing(3, 0.9, "", label.GrandTotal),
		"TOTAL":      agreeing(3, 0.9, "", label.GrandTotal), // not an amount: never the value
		"25/12/2018": agreeing(3, 0.9, "", label.Date),
		"CASH":       agreeing(3, 0.9, "", label.PaymentMethod),
	}
	r := testReceipt()
	t.Run("missing", func(t *testing.T) {
		rf, _, _ := newTestRefiner(t, neighbours)
		out, err := rf.Refine(context.Background(), r, label.Proposal{Source: label.SourceRules})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]entities.SummaryField{
			label.MerchantName:  {Text: "ACME", Value: "ACME", Words: []entities.WordRef{{1, 1}}},
			label.GrandTotal:    {Text: "20.00", Value: "20.00", Words: []entities.WordRef{{3, 3}}},
			label.Date:          {Text: "25/12/2018", Value: "2018-12-25", Words: []entities.WordRef{{3, 1}}},
			label.PaymentMethod: {Text: "CASH", Value: "CASH", Words: []entities.WordRef{{3, 2}}},
		}
		if len(out.Fields) != len(want) {
			t.Errorf("fields %+v", out.Fields)
		}
		for k, w := range want {
			f := out.Fields[k]
			if f.Text != w.Text || f.Value != w.Value || !reflect.DeepEqual(f.Words, w.Words) || f.Source != label.SourceKNN || f.Confidence <= 0 || f.Confidence > 1 {
				t.Errorf("%s = %+v, want %+v", k, f, w)
			}
		}
		if err := label.Validate(r, &out); err != nil {
			t.Errorf("refined proposal invalid: %v", err)
		}
	})
	t.Run("found by the rules", func(t *testing.T) {
		rf, _, _ := newTestRefiner(t, neighbours)
		rules := map[string]entities.SummaryField{
			label.MerchantName:  {Text: "ACME MART", Value: "ACME MART", Words: []entities.WordRef{{1, 2}}, Source: label.SourceRules},
			label.GrandTotal:    {Text: "12.50", Value: "12.50", Words: []entities.WordRef{{2, 2}}, Source: label.SourceRules},
			label.Date:          {Text: "25/12/2018", Value: "2018-12-24", Source: label.SourceRules},
			label.PaymentMethod: {Value: "CARD", Source: label.SourceRules},
		}
		in := label.Proposal{Source: label.SourceRules, Fields: rules}
		out, err := rf.Refine(context.Background(), r, in)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(out.Fields, rules) {
			t.Errorf("fields %+v, want the rules' %+v", out.Fields, rules)
		}
		if n := len(labelsOf(out, label.SourceKNN)); n != 5 {
			t.Errorf("%d kNN word labels, want 5 (labels are added even where the field stands)", n)
		}
	})
	t.Run("a date needs the OCR stage's date", func(t *testing.T) {
		rf, _, _ := newTestRefiner(t, map[string][]Neighbour{"TOTAL": agreeing(3, 0.9, "", label.Date)})
		out, err := rf.Refine(context.Background(), r, label.Proposal{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := out.Fields[label.Date]; ok || len(out.Labels) != 1 {
			t.Errorf("DATE filled from a word without a date: %+v", out)
		}
	})
}

func TestRefineSameImageAndMerchant(t *testing.T) {
	t.Parallel()
	self := append(ofImage(3, nb(0.99, "", "img-1", label.Tax)), agreeing(2, 0.9, "", label.Tip)...)
	flip := append(agreeing(4, 0.9, "OTHER", label.Tax), agreeing(3, 0.9, "acme mart", label.Tip)...)
	rf, _, _ := newTestRefiner(t, map[string][]Neighbour{"TOTAL": self, "CASH": flip})
	in := label.Proposal{Source: "rules", Fields: map[string]entities.SummaryField{label.MerchantName: {Text: "ACME MART", Value: "ACME MART", Source: "rules"}}}
	out, err := rf.Refine(context.Background(), testReceipt(), in)
	if err != nil {
		t.Fatal(err)
	}
	got := labelsOf(out, label.SourceKNN)
	if l, ok := got[entities.WordRef{2, 1}]; ok {
		t.Errorf("TOTAL labelled %s by its own image's words", l.Label)
	}
	if l := got[entities.WordRef{3, 2}]; l.Label != label.Tip {
		t.Errorf("CASH labelled %q, want TIP (3 same-merchant votes outweigh 4)", l.Label)
	}
	// Without the merchant, the four win.
	out, err = rf.Refine(context.Background(), testReceipt(), label.Proposal{})
	if err != nil {
		t.Fatal(err)
	}
	if l := labelsOf(out, label.SourceKNN)[entities.WordRef{3, 2}]; l.Label != label.Tax {
		t.Errorf("CASH labelled %q without a merchant, want TAX", l.Label)
	}
}

func TestRefineErrors(t *testing.T) {
	t.Parallel()
	if _, err := New(nil, nil, Config{}); err == nil {
		t.Error("New without embedder and index succeeded")
	}
	rf, _, x := newTestRefiner(t, nil)
	boom := errors.New("boom")
	x.err = boom
	if _, err := rf.Refine(context.Background(), testReceipt(), label.Proposal{}); !errors.Is(err, boom) {
		t.Errorf("Refine error %v, want it to wrap the index's", err)
	}
	x.err = nil
	if _, err := rf.Suggest(context.Background(), testReceipt(), label.Proposal{}, []entities.WordRef{{9, 9}}); !errors.Is(err, label.ErrUnknownWord) {
		t.Errorf("Suggest of a missing word: %v", err)
	}
	// A receipt with no words refines to the same proposal.
	out, err := rf.Refine(context.Background(), label.Receipt{}, label.Proposal{Source: "rules"})
	if err != nil || out.Source != "rules+knn" || len(out.Labels) != 0 {
		t.Errorf("empty receipt: %+v, %v", out, err)
	}
}
