package rules

import (
	"regexp"
	"strings"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/money"
)

var (
	// reQuantity is a quantity word: 2, 2X, X2, 2@, 1.250KG (weighed),
	// 1 PC, 3PCS.
	reQuantity = regexp.MustCompile(`^(?:[Xx]?(\d{1,3})[Xx@]?|(\d{1,3}\.\d{1,3})(?:KG|G)|(\d{1,3}) ?(?:PCS?|UNITS?|EA))$`)
	// rePieces is a count with its unit: never an item code.
	rePieces = regexp.MustCompile(`^\d{1,3} ?(?:PCS?|UNITS?|EA)$`)
	// reUnitPrice is a unit price printed with three decimals (9.000).
	reUnitPrice = regexp.MustCompile(`^\d+\.\d{3}$`)
	reTimes     = regexp.MustCompile(`^[Xx@*]$`)
	reItemNoise = regexp.MustCompile(`^(SR|ZR|S|T|N|E|X|F|TX|NT|Z|\*|#)$`)
)

// findItems reads the line items: the rows with an amount between the
// header and the first totals row. A row whose only words are figures
// takes its name from the name-only row above or below it.
func (rc *receipt) findItems() {
	start := rc.headerEnd
	for i := start; i < rc.itemsEnd; i++ {
		if rc.rows[i].amount < 0 && reColumnHeader.MatchString(rc.rows[i].text) {
			start = i + 1
		}
	}
	taken := map[int]bool{}
	for i := start; i < rc.itemsEnd; i++ {
		x := rc.rows[i]
		if x.amount < 0 || rc.used[i] || taken[i] {
			continue
		}
		kw := x.keywords()
		if reTotal.MatchString(kw) && !reNotTotal.MatchString(kw) || reColumnHeader.MatchString(kw) && !hasName(x.words[:x.amount]) && x.amount == 0 {
			continue
		}
		it := entities.ReceiptLineItem{LineIDs: lineIDs(x.words), RawText: wordsText(x.words)}
		var name, qty, unit []entities.ReceiptWord
		price := x.words[x.amount]
		for j, w := range x.words[:x.amount] {
			up := strings.ToUpper(w.Text)
			switch {
			case reTimes.MatchString(up):
			case isAmountWord(w.Text) || reUnitPrice.MatchString(up):
				// The price column, not a zero discount column beside it.
				if a, err := money.Parse(up); err == nil && (!a.IsZero() || len(unit) == 0) {
					unit = []entities.ReceiptWord{w}
				}
			case reQuantity.MatchString(up) && len(qty) == 0 && (j > 0 || x.amount-j <= 2 || rePieces.MatchString(up) ||
				(j+1 < x.amount && reTimes.MatchString(x.words[j+1].Text))):
				qty = []entities.ReceiptWord{w}
			case reItemNoise.MatchString(up):
			default:
				name = append(name, w)
			}
		}
		if !hasName(name) {
			// The name is on its own row, just below (SROIE) or above.
			for _, j := range []int{i + 1, i - 1} {
				if j >= start && j < rc.itemsEnd && !taken[j] && !rc.used[j] && rc.rows[j].amount < 0 && hasName(rc.rows[j].words) &&
					!reColumnHeader.MatchString(rc.rows[j].text) {
					name = append(name, rc.rows[j].words...)
					taken[j] = true
					it.LineIDs = append(it.LineIDs, lineIDs(rc.rows[j].words)...)
					it.RawText = strings.TrimSpace(it.RawText + " " + wordsText(rc.rows[j].words))
					break
				}
			}
		}
		if !hasName(name) {
			continue
		}
		value := x.value
		it.Name = wordsText(name)
		it.IsDiscount = reDiscount.MatchString(strings.ToUpper(it.Name)) || value.Cmp(money.Amount{}) < 0
		if it.IsDiscount {
			value = value.Abs().Neg()
		}
		it.Price = value.Fixed(2)
		for _, w := range name {
			rc.labelWord(w, label.ProductName, 0.7, "the item's name")
			it.WordRefs = append(it.WordRefs, ref(w))
		}
		if len(qty) > 0 {
			q := strings.TrimSpace(strings.TrimRight(strings.TrimLeft(strings.ToUpper(qty[0].Text), "X"), "X@KGPCSUNITEA "))
			if a, err := money.Parse(q); err == nil {
				it.Quantity = a.String()
				rc.labelWord(qty[0], label.Quantity, 0.6, "a count beside the item")
				it.WordRefs = append(it.WordRefs, ref(qty[0]))
			}
		}
		if len(unit) > 0 {
			if a, err := money.Parse(strings.ToUpper(unit[0].Text)); err == nil {
				it.UnitPrice = a.Fixed(2)
				rc.labelWord(unit[0], label.UnitPrice, 0.6, "the price before the line total")
				it.WordRefs = append(it.WordRefs, ref(unit[0]))
			}
		}
		if it.IsDiscount {
			rc.labelWord(price, label.Discount, 0.7, "a discount line")
		} else {
			rc.labelWord(price, label.LineTotal, 0.7, "the item's amount")
		}
		it.WordRefs = append(it.WordRefs, ref(price))
		rc.p.Items = append(rc.p.Items, it)
	}
}

func isAmountWord(s string) bool { _, ok := parseAmount(s); return ok }

// hasName tells whether words hold a name: a word of two letters or more.
func hasName(ws []entities.ReceiptWord) bool {
	for _, w := range ws {
		if reLetters.MatchString(strings.ToUpper(w.Text)) && !reItemNoise.MatchString(strings.ToUpper(w.Text)) {
			return true
		}
	}
	return false
}

func lineIDs(ws []entities.ReceiptWord) []int {
	var out []int
	seen := map[int]bool{}
	for _, w := range ws {
		if !seen[w.LineID] {
			seen[w.LineID] = true
			out = append(out, w.LineID)
		}
	}
	return out
}
