package rules

import (
	"regexp"
	"strings"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/money"
)

// Keyword rows. Each is matched against the words of a row left of its
// amount, upper-cased.
var (
	reSubtotal = regexp.MustCompile(`SUB ?-?TOTAL|\bTOTAL (SALES |AMOUNT |AMT )?\(?EXCL|\bBEFORE (GST|TAX)\b|\bNET SALES\b|\bAMOUNT EXCL|TOTAL SALES$`)
	reTax      = regexp.MustCompile(`\b(GST|SST|TAX|VAT|HST|PST)\b|SALES ?TAX|\bSVC TAX\b|INCLUDED IN TOTAL`)
	reNotTax   = regexp.MustCompile(`\b(GST|TAX|SST) ?(ID|NO|REG|REG NO|INVOICE|CODE)\b|\bTAX INVOICE\b|\bINCL(\.|USIVE|\b)|\bEXCL|\bREG\b|\bNO\.? ?:`)
	reRounding = regexp.MustCompile(`\bROUND(ING|ED)?\b|\bRNDG\b|\bROUNDING ADJ|\bADJ(USTMENT)?\b|\bRND\b`)
	reChange   = regexp.MustCompile(`\bCHANGE\b|\bBAKI\b|\bCHG\b|\bCHANGE DUE\b`)
	reTender   = regexp.MustCompile(`\bCASH\b|\bTENDER(ED)?\b|\bPAID\b|\bPAYMENT\b|\bVISA\b|\bMASTER ?CARD\b|\bMASTER\b|\bAMEX\b|\bDEBIT\b|\bCREDIT\b|\bCARD\b|\bE-?WALLET\b|\bTNG\b|\bBOOST\b|\bGRAB ?PAY\b|\bEFTPOS\b|\bDISCOVER\b`)
	reDiscount = regexp.MustCompile(`\bDISC(OUNT)?\b|\bLESS\b|\bSAVINGS?\b|\bCOUPON\b|\bVOUCHER\b|\bPROMO\b|\bYOU SAVED\b`)
	reTip      = regexp.MustCompile(`\bTIPS?\b|\bGRATUITY\b`)
	reTotal    = regexp.MustCompile(`TOTAL|\bAMOUNT DUE\b|\bBALANCE DUE\b|\bAMT DUE\b|\bNETT\b|\bPAYABLE\b|\bJUMLAH\b|\bBALANCE\b|\bAMOUNT\b|\bAMT\b|\bDUE\b`)
	reNotTotal = regexp.MustCompile(`TOTAL ?(QTY|QUANTITY|ITEMS?|DISCOUNT|SAVINGS?|PCS|UNITS?|NO|COUNT|POINTS?|WEIGHT)|\bQTY\b|\bITEMS? ?COUNT\b|\bNO\.? OF ITEMS\b|\bPOINTS?\b`)
	reFinal    = regexp.MustCompile(`GRAND ?TOTAL|NETT? ?TOTAL|TOTAL ?(AMOUNT|AMT|PAYABLE|DUE|SALES)|ROUNDED|\bINCL(\.|USIVE|\b)|AMOUNT DUE|BALANCE DUE|AFTER (GST|TAX)|\bNETT\b|TOTAL RM|TOTAL ?\(RM\)`)
	reRefund   = regexp.MustCompile(`\bREFUND(ED)?\b|\bCREDIT NOTE\b|\bRETURN(ED)?\b`)
	reLetters  = regexp.MustCompile(`[A-Z]{2,}`)
)

// reIncludes is a "TOTAL INCLUDES … GST" row, which some receipts print
// with the total and others with the tax.
var reIncludes = regexp.MustCompile(`TOTAL INCLUDES?\b`)

// maxRounding bounds a rounding adjustment (Malaysia rounds to 0.05).
var maxRounding = money.MustParse("0.10")

// amountAt is a keyword row's amount: on the row itself, or alone on the
// next row when OCR split them.
type amountAt struct {
	row, word  int // row index and word index of the amount
	keywordRow int
	value      money.Amount
	final      bool // a "final" total keyword (GRAND TOTAL, INCL GST …)
}

func (a amountAt) wordOf(rc *receipt) entities.ReceiptWord { return rc.rows[a.row].words[a.word] }

// keywords is the text of a row's words left of its amount.
func (x row) keywords() string {
	if x.amount < 0 {
		return x.text
	}
	parts := make([]string, 0, x.amount)
	for _, w := range x.words[:x.amount] {
		parts = append(parts, strings.ToUpper(w.Text))
	}
	return strings.Join(parts, " ")
}

// amountOf finds the amount belonging to keyword row i.
func (rc *receipt) amountOf(i int) (amountAt, bool) {
	x := rc.rows[i]
	if x.amount >= 0 {
		return amountAt{row: i, word: x.amount, keywordRow: i, value: x.value}, true
	}
	if a, ok := repairedAmount(x); ok {
		a.row, a.keywordRow = i, i
		return a, true
	}
	if i+1 < len(rc.rows) {
		n := rc.rows[i+1]
		if n.amount >= 0 && !reLetters.MatchString(strings.ReplaceAll(n.keywords(), "RM", "")) {
			return amountAt{row: i + 1, word: n.amount, keywordRow: i, value: n.value}, true
		}
	}
	return amountAt{}, false
}

// reSplitAmount is an amount OCR misread at its decimal point: "14-10",
// "80 91" read as one word, or "-0" "01" as two.
var (
	reSplitAmount = regexp.MustCompile(`^(-?\d{1,5})[- ](\d{2})$`)
	reWhole       = regexp.MustCompile(`^-?\d{1,5}$`)
	reCents       = regexp.MustCompile(`^\d{2}$`)
)

// repairedAmount reads a keyword row's last word(s) as an amount whose
// decimal point OCR lost, which a keyword row (TOTAL, ROUNDING …) makes
// safe to assume.
func repairedAmount(x row) (amountAt, bool) {
	n := len(x.words)
	if n < 2 {
		return amountAt{}, false
	}
	last := x.words[n-1].Text
	if m := reSplitAmount.FindStringSubmatch(last); m != nil {
		if a, err := money.Parse(m[1] + "." + m[2]); err == nil {
			return amountAt{word: n - 1, value: a}, true
		}
	}
	if n >= 3 && reWhole.MatchString(x.words[n-2].Text) && reCents.MatchString(last) {
		if a, err := money.Parse(x.words[n-2].Text + "." + last); err == nil {
			return amountAt{word: n - 1, value: a}, true
		}
	}
	return amountAt{}, false
}

// findTotals finds the subtotal, tax, tip, discount, rounding, tendered,
// change and grand total rows and chooses the grand total.
func (rc *receipt) findTotals() {
	var subs, taxes, rounds, changes, tenders, discounts, tips, totals []amountAt
	first := -1
	refund := false
	for i := 0; i < rc.summaryFrom; i++ {
		x := rc.rows[i]
		kw := x.keywords()
		if reRefund.MatchString(x.text) {
			refund = true
		}
		if !reLetters.MatchString(kw) {
			continue
		}
		a, ok := rc.amountOf(i)
		if !ok {
			continue
		}
		isTotal := false
		if reIncludes.MatchString(kw) {
			// "TOTAL INCLUDES GST 6% 9.00" is the total, "TOTAL INCLUDES
			// 6% GST 1.51" the tax: the arithmetic tells them apart.
			taxes = append(taxes, a)
			totals = append(totals, a)
			continue
		}
		switch {
		case reSubtotal.MatchString(kw):
			subs = append(subs, a)
		case reTax.MatchString(kw) && !reNotTax.MatchString(kw) && !reTotalOnly(kw):
			taxes = append(taxes, a)
		case reRounding.MatchString(kw) && a.value.Abs().Cmp(maxRounding) < 0:
			rounds = append(rounds, a)
		case reRounding.MatchString(kw):
			// "ROUNDING RM 42.35": the rounded total itself.
			a.final = true
			totals = append(totals, a)
			isTotal = true
		case reChange.MatchString(kw):
			changes = append(changes, a)
		case reTip.MatchString(kw):
			tips = append(tips, a)
		case reDiscount.MatchString(kw) && !reTotal.MatchString(strings.ReplaceAll(kw, "DISCOUNT", "")):
			discounts = append(discounts, a)
		case reTotal.MatchString(kw) && !reNotTotal.MatchString(kw):
			a.final = reFinal.MatchString(kw)
			totals = append(totals, a)
			isTotal = true
		case reTender.MatchString(kw):
			tenders = append(tenders, a)
		default:
			continue
		}
		if first < 0 && (isTotal || len(subs)+len(taxes) > 0) {
			first = i
		}
	}
	if first >= 0 {
		rc.itemsEnd = first
	}

	var tendered, change *amountAt
	if len(tenders) > 0 {
		tendered = &tenders[0]
	}
	if len(changes) > 0 {
		change = &changes[0]
	}
	var rounding money.Amount
	if len(rounds) > 0 {
		r := rounds[len(rounds)-1]
		rounding = r.value
		rc.p.Rounding = r.value.Fixed(2)
		rc.used[r.row] = true
	}

	total, sure := rc.chooseTotal(totals, subs, taxes, rounding, tendered, change)
	if total == nil && tendered != nil && change != nil {
		// No total line: the amount paid less the change, if printed.
		want := tendered.value.Sub(change.value)
		for i := 0; i < rc.summaryFrom; i++ {
			if x := rc.rows[i]; x.amount >= 0 && x.value.Cmp(want) == 0 && i != tendered.row {
				a := amountAt{row: i, word: x.amount, keywordRow: i, value: x.value}
				total, sure = &a, true
				break
			}
		}
	}
	if total == nil {
		// No total line at all: the largest amount, said to be a guess.
		var best *amountAt
		for i := 0; i < rc.summaryFrom; i++ {
			x := rc.rows[i]
			if x.amount < 0 || (tendered != nil && i == tendered.row) || (change != nil && i == change.row) {
				continue
			}
			if best == nil || x.value.Cmp(best.value) > 0 {
				best = &amountAt{row: i, word: x.amount, keywordRow: i, value: x.value}
			}
		}
		if best != nil {
			total = best
			rc.doubt(label.GrandTotal, "no total line; %s is the largest amount printed", best.value.Fixed(2))
		}
	}
	if total != nil && len(rounds) > 0 && !rounding.IsZero() {
		// "TOTAL 60.31 / ROUNDING -0.01" with no rounded total printed:
		// the amount due is their sum, read from both words.
		r := rounds[len(rounds)-1]
		later := false
		for _, t := range totals {
			later = later || t.keywordRow > r.keywordRow
		}
		if r.keywordRow > total.keywordRow && !later {
			due := total.value.Add(rounding)
			ws := []entities.ReceiptWord{total.wordOf(rc), r.wordOf(rc)}
			rc.setField(label.GrandTotal, ws, due.Fixed(2), 0.75, "the total row's amount with the rounding row's adjustment")
			rc.used[total.row], rc.used[r.row] = true, true
			rc.totalRow = total.keywordRow
			total = nil
		}
	}
	if total != nil {
		conf := 0.9
		why := "amount of the total row"
		if !sure {
			conf = 0.6
		}
		rc.setAmount(label.GrandTotal, *total, conf, why)
		rc.totalRow = total.keywordRow
	}
	if f, ok := rc.p.Fields[label.GrandTotal]; ok {
		v, _ := money.Parse(f.Value)
		w, _ := rc.r.Word(f.Words[0])
		if v.Cmp(money.Amount{}) < 0 || refund {
			rc.labelWord(w, label.Refund, f.Confidence, "negative total or refund wording")
			rc.doubt(label.GrandTotal, "a refund or credit note (total %s)", v.Fixed(2))
		}
	}

	// The subtotal and tax belong to the chosen total: the last of each
	// printed before it.
	before := func(as []amountAt) *amountAt {
		var best *amountAt
		for i := range as {
			if total == nil || as[i].keywordRow <= total.keywordRow || best == nil {
				best = &as[i]
			}
		}
		return best
	}
	if s := before(subs); s != nil {
		rc.setAmount(label.Subtotal, *s, 0.9, "amount of the subtotal row")
	}
	if t := before(taxes); t != nil {
		rc.setAmount(label.Tax, *t, 0.85, "amount of the tax row")
	}
	if t := before(tips); t != nil {
		rc.setAmount(label.Tip, *t, 0.85, "amount of the tip row")
	}
	for _, d := range discounts {
		if !d.value.IsZero() && d.keywordRow >= rc.itemsEnd {
			rc.setAmount(label.Discount, d, 0.8, "amount of the discount row")
			break
		}
	}
	if change != nil {
		rc.labelWord(change.wordOf(rc), label.Change, 0.85, "amount of the change row")
		rc.used[change.row] = true
	}
	if tendered != nil {
		rc.used[tendered.row] = true
	}
	for _, f := range []string{label.GrandTotal, label.Subtotal, label.Tax} {
		if fl, ok := rc.p.Fields[f]; ok && commaDecimal(fl.Text) && rc.p.Country != "" {
			rc.doubt(f, "%q is printed with a decimal comma, unusual for %s", fl.Text, rc.p.Country)
		}
	}
}

// reTotalOnly tells "TOTAL GST"-like rows that are a tax, from "TOTAL"
// rows that are not: a row with TOTAL and a tax word is a tax unless it
// says it includes it.
func reTotalOnly(kw string) bool {
	return strings.Contains(kw, "TOTAL") && !reTotalTax.MatchString(kw)
}

var reTotalTax = regexp.MustCompile(`TOTAL (GST|TAX|SST|VAT)|(GST|TAX|SST|VAT) TOTAL`)

// chooseTotal picks the grand total among the total rows: the one the
// arithmetic confirms (paid − change, subtotal + tax + rounding, an
// earlier total + rounding), else the last "final" one, else the last.
// sure is false when two different totals remain unconfirmed, and the
// proposal then says so.
func (rc *receipt) chooseTotal(totals, subs, taxes []amountAt, rounding money.Amount, tendered, change *amountAt) (*amountAt, bool) {
	if len(totals) == 0 {
		return nil, false
	}
	pick := func(want money.Amount) *amountAt {
		var got *amountAt
		for i := range totals {
			if totals[i].value.Cmp(want) == 0 && (got == nil || totals[i].final || !got.final) {
				got = &totals[i]
			}
		}
		return got
	}
	if tendered != nil && change != nil {
		if t := pick(tendered.value.Sub(change.value)); t != nil {
			return t, true
		}
	}
	if len(subs) > 0 {
		sum := subs[len(subs)-1].value.Add(rounding)
		if len(taxes) > 0 {
			sum = sum.Add(taxes[len(taxes)-1].value)
		}
		if t := pick(sum); t != nil {
			return t, true
		}
	}
	if !rounding.IsZero() {
		for i := range totals {
			if t := pick(totals[i].value.Add(rounding)); t != nil {
				return t, true
			}
		}
	}
	if tendered != nil && change == nil {
		if t := pick(tendered.value); t != nil {
			return t, true
		}
	}
	var best *amountAt
	for i := range totals {
		if best == nil || totals[i].final || !best.final {
			best = &totals[i]
		}
	}
	distinct := map[string]bool{}
	for _, t := range totals {
		if t.final == best.final {
			distinct[t.value.Fixed(2)] = true
		}
	}
	if len(distinct) > 1 {
		var vals []string
		for _, t := range totals {
			if t.final == best.final {
				vals = append(vals, t.value.Fixed(2))
			}
		}
		rc.doubt(label.GrandTotal, "different totals printed (%s) and the arithmetic confirms none; took %s", strings.Join(vals, ", "), best.value.Fixed(2))
		return best, false
	}
	return best, true
}

// setAmount records an amount field and labels its word.
func (rc *receipt) setAmount(name string, a amountAt, conf float64, why string) {
	rc.setField(name, []entities.ReceiptWord{a.wordOf(rc)}, a.value.Fixed(2), conf, why)
	rc.used[a.row] = true
	rc.used[a.keywordRow] = true
}
