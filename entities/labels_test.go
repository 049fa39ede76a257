package entities_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
)

// TestWordLabelKeys: the old system's keys and GSIs, exactly.
func TestWordLabelKeys(t *testing.T) {
	t.Parallel()
	l := entities.ReceiptWordLabel{ImageID: "abc", ReceiptID: 1, LineID: 12, WordID: 3, Label: "GRAND_TOTAL",
		ValidationStatus: entities.LabelValid, LabelProposedBy: "rules", Confidence: 0.9}
	it := l.Item()
	want := map[string]any{
		items.AttrPK:   "IMAGE#abc",
		items.AttrSK:   "RECEIPT#00001#LINE#00012#WORD#00003#LABEL#GRAND_TOTAL",
		items.AttrType: "RECEIPT_WORD_LABEL",
		"GSI1PK":       "LABEL#GRAND_TOTAL" + strings.Repeat("_", 40-len("LABEL#GRAND_TOTAL")),
		"GSI1SK":       "IMAGE#abc#RECEIPT#00001#LINE#00012#WORD#00003",
		"GSI2PK":       "RECEIPT",
		"GSI2SK":       "IMAGE#abc#RECEIPT#00001#LINE#00012#WORD#00003",
		"GSI3PK":       "VALIDATION_STATUS#VALID",
		"GSI3SK":       "IMAGE#abc#RECEIPT#00001#LINE#00012#WORD#00003#LABEL#GRAND_TOTAL",
	}
	for k, v := range want {
		if it[k] != v {
			t.Errorf("%s = %v, want %v", k, it[k], v)
		}
	}
	if len(it["GSI1PK"].(string)) != 40 {
		t.Errorf("GSI1PK is %d characters, want 40", len(it["GSI1PK"].(string)))
	}
	if _, ok := it["label_consolidated_from"]; ok {
		t.Error("label_consolidated_from written though empty")
	}
	s := entities.ReceiptSummary{ImageID: "abc", ReceiptID: 2, Date: "2024-03-04"}
	si, err := s.Item()
	if err != nil {
		t.Fatal(err)
	}
	if si[items.AttrSK] != "RECEIPT#00002#SUMMARY" || si["GSI2PK"] != "RECEIPT_SUMMARY" || si["GSI2SK"] != "IMAGE#abc#RECEIPT#00002" ||
		si["GSI4SK"] != "2024-03-04#IMAGE#abc#RECEIPT#00002" || si[items.AttrType] != "RECEIPT_SUMMARY" {
		t.Errorf("summary keys: %v", si)
	}
	li, err := entities.ReceiptLineItem{ImageID: "abc", ReceiptID: 2, ItemIndex: 0}.Item()
	if err != nil || li[items.AttrSK] != "RECEIPT#00002#LINE_ITEM#00000" || li[items.AttrType] != "RECEIPT_LINE_ITEM" {
		t.Errorf("line item keys: %v %v", li, err)
	}
}

// TestUnderstandingRoundTrip: labels, summaries and line items load back
// whole, through Load (the export) and LoadUnderstanding; a label item
// whose attributes contradict its key is ErrMalformedItem.
func TestUnderstandingRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := openTable(t)
	sum := entities.ReceiptSummary{ImageID: "img-u", ReceiptID: 1, MerchantName: "VONS", Date: "2024-03-19", GrandTotal: "3.60",
		Status: entities.SummaryValid, ReviewReasons: []string{}, Doubts: []string{},
		Fields: map[string]entities.SummaryField{"GRAND_TOTAL": {Text: "3.60", Value: "3.60", Words: []entities.WordRef{{11, 2}}, Confidence: 0.9, Source: "rules"}},
		Checks: []entities.Check{{Name: "totals_add_up", Status: entities.CheckPass, Expected: "3.60", Actual: "3.60"}}}
	li := entities.ReceiptLineItem{ImageID: "img-u", ReceiptID: 1, ItemIndex: 0, Name: "WATER", Price: "3.50", LineIDs: []int{8},
		WordRefs: []entities.WordRef{{8, 2}}, RawText: "WATER 3.50", ReconciliationStatus: "match"}
	lab := entities.ReceiptWordLabel{ImageID: "img-u", ReceiptID: 1, LineID: 11, WordID: 2, Label: "GRAND_TOTAL",
		ValidationStatus: entities.LabelValid, LabelProposedBy: "rules", Confidence: 0.9, TimestampAdded: "2024-03-19T00:00:00Z"}
	si, _ := sum.Item()
	lii, _ := li.Item()
	if err := items.PutAll(ctx, tbl, []items.Item{si, lii, lab.Item()}); err != nil {
		t.Fatal(err)
	}
	set, err := entities.Load(ctx, tbl, "img-u")
	if err != nil {
		t.Fatal(err)
	}
	e := set.Export()
	if len(e.ReceiptSummaries) != 1 || !reflect.DeepEqual(e.ReceiptSummaries[0], sum) {
		t.Errorf("summary:\n%+v\nwant\n%+v", e.ReceiptSummaries, sum)
	}
	if len(e.ReceiptLineItems) != 1 || !reflect.DeepEqual(e.ReceiptLineItems[0], li) {
		t.Errorf("line item: %+v", e.ReceiptLineItems)
	}
	if len(e.ReceiptWordLabels) != 1 || e.ReceiptWordLabels[0] != lab {
		t.Errorf("label: %+v", e.ReceiptWordLabels)
	}
	us, err := entities.LoadUnderstanding(ctx, tbl, "img-u", 1)
	if err != nil || len(us) != 1 || len(us[0].Labels) != 1 || us[0].Summary.GrandTotal != "3.60" {
		t.Errorf("LoadUnderstanding = %+v, %v", us, err)
	}
	bad := lab.Item()
	bad["line_id"] = 99
	if err := tbl.Put(ctx, bad, items.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, err := entities.Load(ctx, tbl, "img-u"); !errors.Is(err, entities.ErrMalformedItem) {
		t.Errorf("a label contradicting its key: %v", err)
	}
}
