// Package rules is the offline receipt labeller: layout-aware rules over a
// receipt's visual rows that find the merchant, address, phone, date,
// time, totals, payment and line items, for receipts from Malaysia (GST,
// RM, ROUNDING, day-first dates) and the US (sales tax, $, month-first
// dates).
//
// The rules read rows, not lines: OCR splits a printed row ("TOTAL :",
// "RM", "39.80") into pieces, and ReceiptRow joins them again. A row's
// amount is its rightmost word that reads as an amount; a row's keywords
// are its other words. The header block (the rows above the first date,
// amount or item header) holds the merchant and its address. Totals are
// chosen by keyword and confirmed by arithmetic (cash − change, subtotal +
// tax + rounding); when two different totals remain, the proposal says so
// instead of guessing silently.
package rules

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/money"
)

// Labeller is the rules engine. The zero value is ready to use.
type Labeller struct{}

// New returns the rules engine.
func New() *Labeller { return &Labeller{} }

var _ label.Labeller = (*Labeller)(nil)

// manyRows is a row count past which a receipt is suspect (two receipts
// read as one, or a runaway OCR result).
const manyRows = 600

// Label proposes labels, fields and line items for r. It never fails on
// odd input; what it could not find is missing from the proposal, and its
// doubts say what looked wrong.
func (l *Labeller) Label(ctx context.Context, r label.Receipt) (label.Proposal, error) {
	if err := ctx.Err(); err != nil {
		return label.Proposal{}, err
	}
	rc := newReceipt(r)
	p := label.Proposal{Source: label.SourceRules, Fields: map[string]entities.SummaryField{}}
	rc.p = &p
	if len(rc.rows) > manyRows {
		p.Doubts = append(p.Doubts, fmt.Sprintf("receipt has %d rows (more than %d): check it was read as one receipt", len(rc.rows), manyRows))
	}
	rc.detectCountry()
	rc.findTotals()
	rc.findHeader()
	rc.findDate()
	rc.findTime()
	rc.findPhone()
	rc.findWebsite()
	rc.findPayment()
	rc.findItems()
	return p, nil
}

// row is one visual row with its words in reading order.
type row struct {
	index  int
	words  []entities.ReceiptWord
	text   string // upper-cased, words joined by one space
	amount int    // index into words of the rightmost amount, -1 if none
	value  money.Amount
}

// receipt is the rules' working state for one receipt.
type receipt struct {
	r        label.Receipt
	rows     []row
	p        *label.Proposal
	dayFirst bool
	// summaryFrom is the first row of a tax summary table (GST SUMMARY),
	// whose TOTAL rows are not the receipt's; len(rows) when none.
	summaryFrom int
	// totalRow is the grand total's row, -1 when none; itemsEnd is the
	// first row after the items (the first totals row).
	totalRow, itemsEnd int
	// headerEnd is the first row after the header block.
	headerEnd int
	used      map[int]bool // rows already given a receipt-level field
}

func newReceipt(r label.Receipt) *receipt {
	rc := &receipt{r: r, totalRow: -1, used: map[int]bool{}}
	for i, rw := range r.Rows {
		ws := r.RowWords(rw)
		texts := make([]string, len(ws))
		for j, w := range ws {
			texts[j] = w.Text
		}
		x := row{index: i, words: ws, text: strings.ToUpper(strings.Join(strings.Fields(strings.Join(texts, " ")), " ")), amount: -1}
		for j := len(ws) - 1; j >= 0; j-- {
			if a, ok := parseAmount(ws[j].Text); ok {
				x.amount, x.value = j, a
				break
			}
		}
		rc.rows = append(rc.rows, x)
	}
	rc.summaryFrom = len(rc.rows)
	rc.itemsEnd = len(rc.rows)
	for i, x := range rc.rows {
		if reTaxSummary.MatchString(x.text) {
			rc.summaryFrom = i
			break
		}
	}
	return rc
}

var (
	// reAmount is a printed amount with two decimals: 9.00, 1,234.50,
	// RM9.00, $3.99, -3.10, 5.00-, (2.00), 1.234,56.
	reAmount     = regexp.MustCompile(`^\(?[-+]?(?:RM|\$|USD|MYR|US\$)?[-+]?(?:\d{1,3}(?:[,.' ]\d{3})+|\d*)[.,]\d{2}\)?-?$`)
	reTaxSummary = regexp.MustCompile(`\b(GST|TAX|SST|VAT) ?SUMMARY\b|\bSUMMARY OF (GST|TAX)\b|\bTAX CODE\b`)
)

// parseAmount reads a word as an amount if it looks like one.
func parseAmount(s string) (money.Amount, bool) {
	t := strings.TrimRight(strings.ToUpper(strings.TrimSpace(s)), ":")
	if i := strings.LastIndexByte(t, ':'); i >= 0 {
		t = t[i+1:] // "AMOUNT:$8.20", a keyword glued on
	}
	if len(t) > 1 && t[0] == 'S' && isDigit(t[1]) {
		t = "$" + t[1:] // OCR reads $ as S
	}
	if !reAmount.MatchString(t) {
		return money.Amount{}, false
	}
	a, err := money.Parse(t)
	return a, err == nil
}

// commaDecimal tells an amount printed with a decimal comma (1.234,56).
func commaDecimal(s string) bool {
	i := strings.LastIndexAny(s, ".,")
	return i >= 0 && s[i] == ',' && len(s)-i-1 == 2
}

// ref is a word's reference.
func ref(w entities.ReceiptWord) entities.WordRef { return entities.WordRef{w.LineID, w.WordID} }

// setField records a receipt-level field from words and labels them.
func (rc *receipt) setField(name string, ws []entities.ReceiptWord, value string, confidence float64, why string) {
	if len(ws) == 0 {
		return
	}
	f := entities.SummaryField{Value: value, Confidence: confidence, Source: label.SourceRules}
	texts := make([]string, len(ws))
	for i, w := range ws {
		texts[i] = w.Text
		f.Words = append(f.Words, ref(w))
		rc.labelWord(w, name, confidence, why)
	}
	f.Text = strings.Join(texts, " ")
	rc.p.Fields[name] = f
}

func (rc *receipt) labelWord(w entities.ReceiptWord, name string, confidence float64, why string) {
	rc.p.Labels = append(rc.p.Labels, label.WordLabel{Word: ref(w), Label: name, Confidence: confidence,
		Reasoning: why, Source: label.SourceRules})
}

func (rc *receipt) doubt(field, format string, args ...any) {
	rc.p.Doubts = append(rc.p.Doubts, field+": "+fmt.Sprintf(format, args...))
}

// Country evidence.
var (
	reMY = regexp.MustCompile(`\bRM ?\d|\bRM\b|\bGST\b|\bSST\b|\bSDN\.? ?BHD\b|\bBHD\b|\bJALAN\b|\bJLN\b|\bMALAYSIA\b|\bROUNDING\b|\bTAMAN\b|\bSELANGOR\b|\bJOHOR\b|\bKUALA LUMPUR\b|\bPULAU PINANG\b|\bPERAK\b|\bKEDAH\b`)
	reUS = regexp.MustCompile(`\$ ?\d|\bSALES TAX\b|\b(AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC),? \d{5}(-\d{4})?\b|\(\d{3}\) ?\d{3}-\d{4}\b|\bUSD\b`)
)

// detectCountry weighs the receipt's evidence: Malaysian words and RM
// against US state/ZIP pairs, $ and sales tax.
func (rc *receipt) detectCountry() {
	my, us := 0, 0
	for _, x := range rc.rows {
		my += len(reMY.FindAllString(x.text, -1))
		us += len(reUS.FindAllString(x.text, -1))
	}
	switch {
	case my > us:
		rc.p.Country, rc.p.Currency, rc.dayFirst = "MY", "MYR", true
	case us > my:
		rc.p.Country, rc.p.Currency = "US", "USD"
	}
}
