// Package label is receipt understanding: it turns a receipt's stored words
// into word labels, a summary (merchant, date, totals, payment) and line
// items, and checks the summary's arithmetic so that a person is asked to
// look only where the numbers do not add up.
//
// A Labeller (the port) reads one Receipt and proposes labels, fields and
// line items; the rules engine (label/rules) is the offline default and an
// LLM (label/llm) may refine its proposal. Summarize turns a proposal into
// the stored entities, running the checks and deciding the status; it never
// changes a number to make a check pass. Store writes the result without
// touching what a person corrected, and Correct applies a person's
// correction.
package label

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/tallyhq/tally/entities"
)

// The word labels (DESIGN §3), the old system's names.
const (
	MerchantName  = "MERCHANT_NAME"
	StoreHours    = "STORE_HOURS"
	PhoneNumber   = "PHONE_NUMBER"
	Website       = "WEBSITE"
	LoyaltyID     = "LOYALTY_ID"
	AddressLine   = "ADDRESS_LINE"
	Date          = "DATE"
	Time          = "TIME"
	PaymentMethod = "PAYMENT_METHOD"
	Coupon        = "COUPON"
	Discount      = "DISCOUNT"
	ProductName   = "PRODUCT_NAME"
	Quantity      = "QUANTITY"
	UnitPrice     = "UNIT_PRICE"
	LineTotal     = "LINE_TOTAL"
	Subtotal      = "SUBTOTAL"
	Tax           = "TAX"
	Tip           = "TIP"
	GrandTotal    = "GRAND_TOTAL"
	Change        = "CHANGE"
	CashBack      = "CASH_BACK"
	Refund        = "REFUND"
)

// All lists the labels in the old system's order.
var All = []string{MerchantName, StoreHours, PhoneNumber, Website, LoyaltyID, AddressLine, Date,
	Time, PaymentMethod, Coupon, Discount, ProductName, Quantity, UnitPrice, LineTotal,
	Subtotal, Tax, Tip, GrandTotal, Change, CashBack, Refund}

// aliases are names the old system's data and prompts also used.
var aliases = map[string]string{
	"ADDRESS":       AddressLine,
	"BUSINESS_NAME": MerchantName,
	"CARD_NUMBER":   PaymentMethod,
	"PAYMENT_TYPE":  PaymentMethod,
}

// RequiredFields are the receipt-level fields every summary's fields map
// holds (empty when not found), in display order.
var RequiredFields = []string{MerchantName, AddressLine, PhoneNumber, Date, Time,
	Subtotal, Tax, Tip, GrandTotal, PaymentMethod}

// EssentialFields are the fields without which a summary needs review.
var EssentialFields = []string{MerchantName, Date, GrandTotal}

// AmountFields hold decimal amounts.
var AmountFields = map[string]bool{Subtotal: true, Tax: true, Tip: true, GrandTotal: true,
	Discount: true, Change: true, CashBack: true, Refund: true, LineTotal: true, UnitPrice: true}

// Sources of a label or field.
const (
	SourceRules = "rules"
	SourceLLM   = "llm"
	SourceUser  = "user"
	SourceKNN   = "knn"
)

// ErrUnknownLabel marks a label name that is neither a label nor an alias.
var ErrUnknownLabel = errors.New("label: unknown label")

// ErrUnknownWord marks a word reference the receipt does not have.
var ErrUnknownWord = errors.New("label: no such word")

// Canonical returns the label name for s (upper-cased; aliases resolved).
func Canonical(s string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if a, ok := aliases[u]; ok {
		return a, nil
	}
	for _, l := range All {
		if l == u {
			return u, nil
		}
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownLabel, s)
}

// Receipt is one receipt as a labeller reads it: its lines and words in the
// rectified receipt's space (normalized, y up) and its visual rows.
type Receipt struct {
	ImageID   string
	ReceiptID int
	// Owner is the user whose image it is ("" when accounts are off); the
	// summary carries it so each user's list is their own.
	Owner string
	// Width and Height are the rectified crop's pixel size.
	Width, Height int
	Lines         []entities.ReceiptLine
	Words         []entities.ReceiptWord
	Rows          []entities.ReceiptRow
}

// FromSet takes receipt receiptID's lines, words and rows out of an
// image's entities; rows are grouped afresh when none are stored.
func FromSet(s entities.Set, receiptID int) Receipt {
	r := Receipt{ReceiptID: receiptID}
	if len(s.Images) > 0 {
		r.Owner = s.Images[0].Owner
	}
	for _, rc := range s.Receipts {
		if rc.ReceiptID == receiptID {
			r.ImageID, r.Width, r.Height = rc.ImageID, rc.Width, rc.Height
		}
	}
	for _, l := range s.ReceiptLines {
		if l.ReceiptID == receiptID {
			r.Lines = append(r.Lines, l)
			r.ImageID = l.ImageID
		}
	}
	for _, w := range s.ReceiptWords {
		if w.ReceiptID == receiptID {
			r.Words = append(r.Words, w)
		}
	}
	for _, row := range s.ReceiptRows {
		if row.ReceiptID == receiptID {
			r.Rows = append(r.Rows, row)
		}
	}
	if len(r.Rows) == 0 {
		r.Rows = entities.GroupRows(r.Lines, r.Width, r.Height)
	}
	return r
}

// Word returns the word ref names, if the receipt has it.
func (r Receipt) Word(ref entities.WordRef) (entities.ReceiptWord, bool) {
	i := sort.Search(len(r.Words), func(i int) bool {
		w := r.Words[i]
		return w.LineID > ref[0] || (w.LineID == ref[0] && w.WordID >= ref[1])
	})
	if i < len(r.Words) && r.Words[i].LineID == ref[0] && r.Words[i].WordID == ref[1] {
		return r.Words[i], true
	}
	return entities.ReceiptWord{}, false
}

// Text joins the refs' words with one space, as printed.
func (r Receipt) Text(refs []entities.WordRef) string {
	parts := make([]string, 0, len(refs))
	for _, ref := range refs {
		if w, ok := r.Word(ref); ok {
			parts = append(parts, w.Text)
		}
	}
	return strings.Join(parts, " ")
}

// RowWords returns a row's words in reading order (left to right across
// its lines).
func (r Receipt) RowWords(row entities.ReceiptRow) []entities.ReceiptWord {
	in := map[int]bool{}
	for _, id := range row.LineIDs {
		in[id] = true
	}
	var ws []entities.ReceiptWord
	for _, w := range r.Words {
		if in[w.LineID] {
			ws = append(ws, w)
		}
	}
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].BoundingBox.X < ws[j].BoundingBox.X })
	return ws
}

// WordLabel is one proposed label on one word.
type WordLabel struct {
	Word       entities.WordRef
	Label      string
	Confidence float64
	Reasoning  string
	// Source is who proposed it (rules, llm, knn, user).
	Source string
	// ConsolidatedFrom is the label a person's correction replaced.
	ConsolidatedFrom string
}

// Proposal is what a labeller says about one receipt. Fields are keyed by
// label (receipt-level labels only); items are in printed order with
// amounts as decimal strings.
type Proposal struct {
	Labels []WordLabel
	Fields map[string]entities.SummaryField
	Items  []entities.ReceiptLineItem
	// Rounding is a printed rounding adjustment ("-0.02"), part of the
	// totals check; empty when none was printed.
	Rounding string
	// Currency is an ISO 4217 code (MYR, USD) and Country an ISO 3166
	// code (MY, US), read from the receipt's evidence; empty when unknown.
	Currency, Country string
	CardLast4         string
	// Doubts are reasons for review the labeller found on its way (two
	// different totals, an impossible date …).
	Doubts []string
	// Source names the labeller(s) behind the proposal.
	Source string
}

// Labeller proposes labels, fields and line items for one receipt. It
// must not fail on odd input (no text, no amounts): it proposes less and
// says why in Doubts. Errors are for I/O (an LLM that is down).
type Labeller interface {
	Label(ctx context.Context, r Receipt) (Proposal, error)
}

// Refiner improves an existing proposal (an LLM given the rules' one).
type Refiner interface {
	Refine(ctx context.Context, r Receipt, p Proposal) (Proposal, error)
}
