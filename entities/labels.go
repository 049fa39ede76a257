package entities

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/tallyhq/tally/items"
)

// Item types of receipt understanding: a word's label, a receipt's summary
// and its line items (DESIGN §3).
const (
	TypeReceiptWordLabel = "RECEIPT_WORD_LABEL"
	TypeReceiptSummary   = "RECEIPT_SUMMARY"
	TypeReceiptLineItem  = "RECEIPT_LINE_ITEM"
)

// Validation statuses of a word label, as the old system named them.
const (
	LabelNone        = "NONE"
	LabelPending     = "PENDING"
	LabelValid       = "VALID"
	LabelInvalid     = "INVALID"
	LabelNeedsReview = "NEEDS_REVIEW"
)

// Statuses of a receipt summary: VALID when every check passed and every
// required field was found, NEEDS_REVIEW otherwise (with reasons).
const (
	SummaryValid       = "VALID"
	SummaryNeedsReview = "NEEDS_REVIEW"
)

// labelGSI1Width is the width GSI1PK's LABEL#{label} is padded to with
// '_', as the old system padded it so that labels sort as fixed width.
const labelGSI1Width = 40

// WordRef names one word of a receipt by its line and word ids; it is
// stored and exported as the pair [line_id, word_id].
type WordRef [2]int

// ReceiptWordLabel is one label on one receipt word (a word may carry
// several). A correction never rewrites a row in place: the old row turns
// INVALID and a new one is added, so the history stays readable.
type ReceiptWordLabel struct {
	ImageID               string  `json:"image_id"`
	ReceiptID             int     `json:"receipt_id"`
	LineID                int     `json:"line_id"`
	WordID                int     `json:"word_id"`
	Label                 string  `json:"label"`
	Reasoning             string  `json:"reasoning"`
	TimestampAdded        string  `json:"timestamp_added"`
	ValidationStatus      string  `json:"validation_status"`
	LabelProposedBy       string  `json:"label_proposed_by"`
	LabelConsolidatedFrom string  `json:"label_consolidated_from,omitempty"`
	Confidence            float64 `json:"confidence"`
}

// Key is the label's item key.
func (l ReceiptWordLabel) Key() items.Key {
	return items.Key{PK: pk(l.ImageID), SK: fmt.Sprintf("%s#LABEL#%s", receiptWordSK(l.ReceiptID, l.LineID, l.WordID), l.Label)}
}

// Item is l as an item with the old system's three GSIs.
func (l ReceiptWordLabel) Item() items.Item {
	k := l.Key()
	word := fmt.Sprintf("IMAGE#%s#RECEIPT#%05d#LINE#%05d#WORD#%05d", l.ImageID, l.ReceiptID, l.LineID, l.WordID)
	gsi1 := "LABEL#" + l.Label
	if n := labelGSI1Width - len(gsi1); n > 0 {
		gsi1 += strings.Repeat("_", n)
	}
	it := items.Item{
		items.AttrPK: k.PK, items.AttrSK: k.SK, items.AttrType: TypeReceiptWordLabel,
		"image_id": l.ImageID, "receipt_id": l.ReceiptID, "line_id": l.LineID, "word_id": l.WordID,
		"label": l.Label, "reasoning": l.Reasoning, "timestamp_added": l.TimestampAdded,
		"validation_status": l.ValidationStatus, "label_proposed_by": l.LabelProposedBy,
		"confidence": l.Confidence,
		"GSI1PK":     gsi1, "GSI1SK": word,
		"GSI2PK": "RECEIPT", "GSI2SK": word,
		"GSI3PK": "VALIDATION_STATUS#" + l.ValidationStatus, "GSI3SK": word + "#LABEL#" + l.Label,
	}
	if l.LabelConsolidatedFrom != "" {
		it["label_consolidated_from"] = l.LabelConsolidatedFrom
	}
	return it
}

// SummaryField is one receipt-level field of a summary: the words it was
// read from, as printed and normalized, how sure and by whom.
type SummaryField struct {
	// Text is the field as printed, its words joined by one space.
	Text string `json:"text"`
	// Value is its normalized form: ISO dates, decimal amounts.
	Value      string    `json:"value"`
	Words      []WordRef `json:"words"`
	Confidence float64   `json:"confidence"`
	// Source is rules, llm or user.
	Source string `json:"source"`
}

// Check statuses.
const (
	CheckPass    = "pass"
	CheckFail    = "fail"
	CheckSkipped = "skipped" // an input was missing
)

// Check is one named arithmetic check of a summary with the figures it
// compared, so that a reviewer sees why it failed.
type Check struct {
	Name     string `json:"name"`
	Status   string `json:"status"`
	Expected string `json:"expected,omitempty"`
	Actual   string `json:"actual,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// Reconciliation is how a receipt's line items sum against its baseline
// (the subtotal, or the grand total less tax), as the old system's
// reconciliation object recorded it.
type Reconciliation struct {
	Status         string `json:"status"`
	ItemSum        string `json:"item_sum,omitempty"`
	Baseline       string `json:"baseline,omitempty"`
	BaselineSource string `json:"baseline_source,omitempty"`
}

// ReceiptSummary is what a receipt says: merchant, date, totals and the
// rest, each with the words behind it, the arithmetic checks run on the
// totals, and whether a person should look at it. Amounts are decimal
// strings ("1234.50"), never floats.
type ReceiptSummary struct {
	ImageID   string `json:"image_id"`
	ReceiptID int    `json:"receipt_id"`
	// Owner is the user whose receipt it is ("" when accounts are off).
	Owner             string `json:"owner,omitempty"`
	TimestampComputed string `json:"timestamp_computed"`
	MerchantName      string `json:"merchant_name"`
	Date              string `json:"date"`
	GrandTotal        string `json:"grand_total"`
	Subtotal          string `json:"subtotal"`
	Tax               string `json:"tax"`
	Tip               string `json:"tip"`
	// Rounding is a printed rounding adjustment ("-0.01"), part of the
	// totals check.
	Rounding      string `json:"rounding"`
	ItemCount     int    `json:"item_count"`
	Currency      string `json:"currency"`
	Country       string `json:"country"`
	PaymentMethod string `json:"payment_method"`
	CardLast4     string `json:"card_last4"`
	Status        string `json:"status"`
	// Accepted is a person's word that the summary is right as it is:
	// its status is VALID whatever the checks say (the reasons stay), until
	// a field is corrected.
	Accepted      bool     `json:"accepted"`
	ReviewReasons []string `json:"review_reasons"`
	// Doubts are the labeller's own reasons for review ("GRAND_TOTAL: …"),
	// kept apart from the checks so that a correction of the field they
	// name clears them.
	Doubts         []string                `json:"doubts"`
	Fields         map[string]SummaryField `json:"fields"`
	Checks         []Check                 `json:"checks"`
	Reconciliation Reconciliation          `json:"reconciliation"`
	// ProposedBy names what produced it (rules, rules+llm, …).
	ProposedBy string `json:"proposed_by"`
	// RunID is the processing run that computed it, so that a redelivered
	// record can tell it already did.
	RunID string `json:"run_id,omitempty"`
}

// SummaryByDateIndex lists summaries by the receipt's date (GSI4, Tally's
// addition): GSI4PK SummaryByDatePK, GSI4SK "{YYYY-MM-DD}#IMAGE#{id}#RECEIPT#{r}",
// with "0000-00-00" for a receipt whose date is unknown, so that a
// reverse query pages newest first and a date range is a between.
const (
	SummaryByDateIndex = "GSI4"
	SummaryByDatePK    = "RECEIPT_SUMMARY"
)

// SummaryReviewIndex lists only the summaries that need review, by date
// like SummaryByDateIndex (GSI3PK SummaryReviewPK, GSI3SK the same sort
// key), so that the review queue and its count never page past the rest.
const (
	SummaryReviewIndex = "GSI3"
	SummaryReviewPK    = "RECEIPT_SUMMARY#NEEDS_REVIEW"
)

// SummaryByDateSK is a summary's GSI4SK.
func SummaryByDateSK(date, imageID string, receiptID int) string {
	if len(date) != len("2006-01-02") {
		date = "0000-00-00"
	}
	return fmt.Sprintf("%s#IMAGE#%s#RECEIPT#%05d", date, imageID, receiptID)
}

// OwnedPK is an index partition of one owner's records: pk itself for
// records without an owner (accounts off, and everything stored before
// them), pk#OWNER#name otherwise, so that each user's list is its own
// partition and never filtered out of everyone's.
func OwnedPK(pk, owner string) string {
	if owner == "" {
		return pk
	}
	return pk + "#OWNER#" + owner
}

// SummaryKey is a receipt summary's item key.
func SummaryKey(imageID string, receiptID int) items.Key {
	return items.Key{PK: pk(imageID), SK: fmt.Sprintf("%s#SUMMARY", receiptSK(receiptID))}
}

// Item is s as an item, listed under GSI2PK RECEIPT_SUMMARY.
func (s ReceiptSummary) Item() (items.Item, error) {
	k := SummaryKey(s.ImageID, s.ReceiptID)
	it, err := structItem(s)
	if err != nil {
		return nil, fmt.Errorf("summary of %s/%d: %w", s.ImageID, s.ReceiptID, err)
	}
	it[items.AttrPK], it[items.AttrSK], it[items.AttrType] = k.PK, k.SK, TypeReceiptSummary
	it["GSI2PK"] = "RECEIPT_SUMMARY"
	it["GSI2SK"] = fmt.Sprintf("IMAGE#%s#RECEIPT#%05d", s.ImageID, s.ReceiptID)
	it["GSI4PK"], it["GSI4SK"] = OwnedPK(SummaryByDatePK, s.Owner), SummaryByDateSK(s.Date, s.ImageID, s.ReceiptID)
	if s.Status == SummaryNeedsReview {
		it["GSI3PK"], it["GSI3SK"] = OwnedPK(SummaryReviewPK, s.Owner), it["GSI4SK"]
	}
	return it, nil
}

// ReceiptLineItem is one bought item (or discount) of a receipt.
// ItemIndex counts from 0 in printed order; amounts are decimal strings,
// empty when not printed.
type ReceiptLineItem struct {
	ImageID              string    `json:"image_id"`
	ReceiptID            int       `json:"receipt_id"`
	ItemIndex            int       `json:"item_index"`
	Name                 string    `json:"name"`
	Quantity             string    `json:"quantity"`
	UnitPrice            string    `json:"unit_price"`
	Price                string    `json:"price"`
	LineIDs              []int     `json:"line_ids"`
	WordRefs             []WordRef `json:"word_refs"`
	IsDiscount           bool      `json:"is_discount"`
	RawText              string    `json:"raw_text"`
	ReconciliationStatus string    `json:"reconciliation_status"`
}

// LineItemKey is a line item's item key.
func LineItemKey(imageID string, receiptID, index int) items.Key {
	return items.Key{PK: pk(imageID), SK: fmt.Sprintf("%s#LINE_ITEM#%05d", receiptSK(receiptID), index)}
}

// Item is li as an item.
func (li ReceiptLineItem) Item() (items.Item, error) {
	k := LineItemKey(li.ImageID, li.ReceiptID, li.ItemIndex)
	it, err := structItem(li)
	if err != nil {
		return nil, fmt.Errorf("line item %d of %s/%d: %w", li.ItemIndex, li.ImageID, li.ReceiptID, err)
	}
	it[items.AttrPK], it[items.AttrSK], it[items.AttrType] = k.PK, k.SK, TypeReceiptLineItem
	return it, nil
}

// Understanding is everything receipt understanding stores for one
// receipt.
type Understanding struct {
	Summary   ReceiptSummary
	LineItems []ReceiptLineItem
	Labels    []ReceiptWordLabel
}

// LoadUnderstanding reads the labels, summary and line items of one
// receipt (receiptID > 0) or of every receipt of the image (0). A receipt
// never labelled has no summary: Summary.ReceiptID stays 0.
func LoadUnderstanding(ctx context.Context, t items.Table, imageID string, receiptID int) ([]Understanding, error) {
	q := items.Query{PK: pk(imageID), SK: items.SKCond{Op: items.SKBeginsWith, Value: "RECEIPT#"}}
	if receiptID > 0 {
		q.SK.Value = receiptSK(receiptID) + "#"
	}
	all, err := items.QueryAll(ctx, t, q)
	if err != nil {
		return nil, fmt.Errorf("load labels of %s: %w", imageID, err)
	}
	var s Set
	for _, it := range all {
		if err := s.addUnderstanding(it); err != nil {
			return nil, fmt.Errorf("load labels of %s: %w", imageID, err)
		}
	}
	return s.understandings(), nil
}

// understandings groups s's labels, summaries and line items by receipt.
func (s Set) understandings() []Understanding {
	by := map[int]*Understanding{}
	get := func(r int) *Understanding {
		if by[r] == nil {
			by[r] = &Understanding{}
		}
		return by[r]
	}
	for _, sm := range s.ReceiptSummaries {
		get(sm.ReceiptID).Summary = sm
	}
	for _, li := range s.ReceiptLineItems {
		u := get(li.ReceiptID)
		u.LineItems = append(u.LineItems, li)
	}
	for _, l := range s.ReceiptWordLabels {
		u := get(l.ReceiptID)
		u.Labels = append(u.Labels, l)
	}
	ids := make([]int, 0, len(by))
	for r := range by {
		ids = append(ids, r)
	}
	sort.Ints(ids)
	out := make([]Understanding, 0, len(ids))
	for _, r := range ids {
		out = append(out, *by[r])
	}
	return out
}

// addUnderstanding decodes a label, summary or line item into s; other
// items are skipped.
func (s *Set) addUnderstanding(it items.Item) error {
	switch typ, _ := it[items.AttrType].(string); typ {
	case TypeReceiptWordLabel:
		var l ReceiptWordLabel
		if err := itemStruct(it, &l); err != nil {
			return malformed(it, err.Error())
		}
		if l.Key() != it.Key() {
			return malformed(it, "label attributes do not match its key")
		}
		s.ReceiptWordLabels = append(s.ReceiptWordLabels, l)
	case TypeReceiptSummary:
		var sm ReceiptSummary
		if err := itemStruct(it, &sm); err != nil {
			return malformed(it, err.Error())
		}
		if sm.ReviewReasons == nil {
			sm.ReviewReasons = []string{}
		}
		s.ReceiptSummaries = append(s.ReceiptSummaries, sm)
	case TypeReceiptLineItem:
		var li ReceiptLineItem
		if err := itemStruct(it, &li); err != nil {
			return malformed(it, err.Error())
		}
		s.ReceiptLineItems = append(s.ReceiptLineItems, li)
	}
	return nil
}

// sortUnderstanding puts labels, summaries and line items in key order.
func (s *Set) sortUnderstanding() {
	sort.SliceStable(s.ReceiptWordLabels, func(i, j int) bool {
		a, b := s.ReceiptWordLabels[i], s.ReceiptWordLabels[j]
		if less(a.ReceiptID, b.ReceiptID, a.LineID, b.LineID, a.WordID, b.WordID) {
			return true
		}
		if less(b.ReceiptID, a.ReceiptID, b.LineID, a.LineID, b.WordID, a.WordID) {
			return false
		}
		return a.Label < b.Label
	})
	sort.SliceStable(s.ReceiptSummaries, func(i, j int) bool { return s.ReceiptSummaries[i].ReceiptID < s.ReceiptSummaries[j].ReceiptID })
	sort.SliceStable(s.ReceiptLineItems, func(i, j int) bool {
		a, b := s.ReceiptLineItems[i], s.ReceiptLineItems[j]
		return less(a.ReceiptID, b.ReceiptID, a.ItemIndex, b.ItemIndex)
	})
}

// structItem turns a struct into item attributes through its JSON form,
// so that the stored attribute names are the exported field names.
func structItem(v any) (items.Item, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var it items.Item
	if err := dec.Decode(&it); err != nil {
		return nil, err
	}
	return it, nil
}

// itemStruct reads item attributes back into a struct (the inverse of
// structItem); key and GSI attributes are ignored.
func itemStruct(it items.Item, v any) error {
	data, err := json.Marshal(items.Output(cloneItem(it)))
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func cloneItem(it items.Item) map[string]any {
	m := make(map[string]any, len(it))
	for k, v := range it {
		m[k] = v
	}
	return m
}
