package label

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/money"
)

// Check names.
const (
	CheckItemsSumToSubtotal = "items_sum_to_subtotal"
	CheckTotalsAddUp        = "totals_add_up"
	// CheckQuantityTimesPrice is named per item: line_item_{i}_quantity_times_unit_price.
	CheckQuantityTimesPrice = "quantity_times_unit_price"
)

// Reconciliation statuses of line items against their baseline, as the
// old system computed them.
const (
	ReconcileMatch      = "match"
	ReconcileNear       = "near"
	ReconcileMismatch   = "mismatch"
	ReconcileNoBaseline = "no-baseline"
)

// Summarize turns a proposal into what is stored for the receipt: the
// summary with its checks and status, the line items, and one label row
// per proposed label, all stamped with at. It recomputes every check from
// the figures as proposed and never alters one.
func Summarize(r Receipt, p Proposal, at time.Time) entities.Understanding {
	ts := at.UTC().Format(time.RFC3339)
	s := entities.ReceiptSummary{
		ImageID: r.ImageID, ReceiptID: r.ReceiptID, Owner: r.Owner, TimestampComputed: ts,
		Currency: p.Currency, Country: p.Country, CardLast4: p.CardLast4,
		Fields: map[string]entities.SummaryField{}, ReviewReasons: []string{}, ProposedBy: p.Source,
		Rounding: p.Rounding, Doubts: dedupe(p.Doubts),
	}
	for k, f := range p.Fields {
		if f.Words == nil {
			f.Words = []entities.WordRef{}
		}
		s.Fields[k] = f
	}
	for _, k := range RequiredFields {
		if _, ok := s.Fields[k]; !ok {
			s.Fields[k] = entities.SummaryField{Words: []entities.WordRef{}}
		}
	}
	val := func(k string) string { return s.Fields[k].Value }
	s.MerchantName = s.Fields[MerchantName].Text
	s.Date = val(Date)
	s.GrandTotal, s.Subtotal, s.Tax, s.Tip = val(GrandTotal), val(Subtotal), val(Tax), val(Tip)
	s.PaymentMethod = val(PaymentMethod)

	its := make([]entities.ReceiptLineItem, len(p.Items))
	for i, it := range p.Items {
		it.ImageID, it.ReceiptID, it.ItemIndex = r.ImageID, r.ReceiptID, i
		if it.LineIDs == nil {
			it.LineIDs = []int{}
		}
		if it.WordRefs == nil {
			it.WordRefs = []entities.WordRef{}
		}
		its[i] = it
		if !it.IsDiscount {
			s.ItemCount++
		}
	}

	var reasons []string
	for _, k := range EssentialFields {
		if s.Fields[k].Value == "" && s.Fields[k].Text == "" {
			reasons = append(reasons, "no "+k+" found")
		}
	}
	s.Checks, s.Reconciliation = checks(s, its, p.Rounding)
	for _, c := range s.Checks {
		if c.Status == entities.CheckFail {
			reasons = append(reasons, fmt.Sprintf("check %s failed: %s", c.Name, c.Detail))
		}
	}
	for i := range its {
		its[i].ReconciliationStatus = s.Reconciliation.Status
	}
	reasons = append(reasons, p.Doubts...)
	s.ReviewReasons = dedupe(reasons)
	s.Status = entities.SummaryValid
	if len(s.ReviewReasons) > 0 {
		s.Status = entities.SummaryNeedsReview
	}

	status := entities.LabelPending
	if s.Status == entities.SummaryValid {
		status = entities.LabelValid
	}
	labels := make([]entities.ReceiptWordLabel, 0, len(p.Labels))
	seen := map[string]bool{}
	for _, l := range p.Labels {
		row := entities.ReceiptWordLabel{
			ImageID: r.ImageID, ReceiptID: r.ReceiptID, LineID: l.Word[0], WordID: l.Word[1],
			Label: l.Label, Reasoning: l.Reasoning, TimestampAdded: ts, ValidationStatus: status,
			LabelProposedBy: l.Source, LabelConsolidatedFrom: l.ConsolidatedFrom, Confidence: l.Confidence,
		}
		if l.Source == SourceUser {
			row.ValidationStatus = entities.LabelValid
		}
		if k := row.Key().SK; !seen[k] {
			seen[k] = true
			labels = append(labels, row)
		}
	}
	sort.SliceStable(labels, func(i, j int) bool { return labels[i].Key().SK < labels[j].Key().SK })
	return entities.Understanding{Summary: s, LineItems: its, Labels: labels}
}

func dedupe(xs []string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// amount parses an optional decimal string: ok false when empty, an error
// when present but not an amount.
func amount(s string) (money.Amount, bool, error) {
	if strings.TrimSpace(s) == "" {
		return money.Amount{}, false, nil
	}
	a, err := money.Parse(s)
	return a, err == nil, err
}

// checks runs the named arithmetic checks and reconciles the items.
func checks(s entities.ReceiptSummary, its []entities.ReceiptLineItem, rounding string) ([]entities.Check, entities.Reconciliation) {
	var out []entities.Check
	bad := func(name, what string, err error) entities.Check {
		return entities.Check{Name: name, Status: entities.CheckFail, Detail: fmt.Sprintf("%s is not an amount: %v", what, err)}
	}
	sub, hasSub, errSub := amount(s.Subtotal)
	total, hasTotal, errTotal := amount(s.GrandTotal)
	tax, _, errTax := amount(s.Tax)
	tip, _, errTip := amount(s.Tip)
	disc, hasDisc, errDisc := amount(s.Fields[Discount].Value)
	round, _, errRound := amount(rounding)

	// Σ line totals − discounts = subtotal. Discount items carry negative
	// prices; a receipt-level DISCOUNT not itemized is subtracted here.
	var itemSum money.Amount
	priced, itemDiscounts := 0, false
	var itemErr error
	for _, it := range its {
		a, ok, err := amount(it.Price)
		if err != nil && itemErr == nil {
			itemErr = fmt.Errorf("line item %d price %q: %w", it.ItemIndex, it.Price, err)
		}
		if ok {
			if it.IsDiscount {
				itemDiscounts = true
				a = a.Abs().Neg()
			}
			itemSum = itemSum.Add(a)
			priced++
		}
	}
	if hasDisc && !itemDiscounts {
		itemSum = itemSum.Sub(disc.Abs())
	}
	c := entities.Check{Name: CheckItemsSumToSubtotal, Status: entities.CheckSkipped}
	switch {
	case errSub != nil:
		c = bad(c.Name, "subtotal", errSub)
	case itemErr != nil:
		c = bad(c.Name, "an item price", itemErr)
	case errDisc != nil:
		c = bad(c.Name, "discount", errDisc)
	case !hasSub:
		c.Detail = "no subtotal"
	case priced == 0:
		c.Detail = "no priced line items"
	default:
		c.Expected, c.Actual = sub.Fixed(2), itemSum.Fixed(2)
		c.Status = entities.CheckPass
		if itemSum.Cmp(sub) != 0 {
			c.Status = entities.CheckFail
			c.Detail = fmt.Sprintf("line items sum to %s, subtotal is %s", c.Actual, c.Expected)
		}
	}
	out = append(out, c)

	// subtotal + tax + tip − discounts (+ rounding) = grand total.
	c = entities.Check{Name: CheckTotalsAddUp, Status: entities.CheckSkipped}
	switch {
	case errSub != nil:
		c = bad(c.Name, "subtotal", errSub)
	case errTotal != nil:
		c = bad(c.Name, "grand total", errTotal)
	case errTax != nil:
		c = bad(c.Name, "tax", errTax)
	case errTip != nil:
		c = bad(c.Name, "tip", errTip)
	case errDisc != nil:
		c = bad(c.Name, "discount", errDisc)
	case errRound != nil:
		c = bad(c.Name, "rounding", errRound)
	case !hasTotal:
		c.Detail = "no grand total"
	case !hasSub && priced == 0:
		c.Detail = "no subtotal and no priced line items"
	default:
		base := sub
		if !hasSub {
			base = itemSum // no subtotal printed: the items are it
		}
		want := base.Add(tax).Add(tip).Add(round)
		if hasDisc && itemDiscounts {
			// The subtotal already has the itemized discounts taken off.
		} else if hasDisc && hasSub && discountAfterSubtotal(sub, tax, tip, round, total) {
			want = want.Sub(disc.Abs())
		}
		c.Expected, c.Actual = total.Fixed(2), want.Fixed(2)
		c.Status = entities.CheckPass
		if want.Cmp(total) != 0 {
			c.Status = entities.CheckFail
			what := "subtotal"
			if !hasSub {
				what = "line items"
			}
			c.Detail = fmt.Sprintf("%s %s + tax %s + tip %s", what, base.Fixed(2), tax.Fixed(2), tip.Fixed(2))
			if hasDisc {
				c.Detail += " − discount " + disc.Abs().Fixed(2)
			}
			if !round.IsZero() {
				c.Detail += " + rounding " + round.Fixed(2)
			}
			c.Detail += fmt.Sprintf(" is %s, grand total is %s", c.Actual, c.Expected)
		}
	}
	out = append(out, c)

	// quantity × unit price = line total, per item that prints all three.
	for _, it := range its {
		q, hasQ, errQ := amount(it.Quantity)
		u, hasU, errU := amount(it.UnitPrice)
		p, hasP, errP := amount(it.Price)
		if !hasQ || !hasU || !hasP {
			continue
		}
		c := entities.Check{Name: fmt.Sprintf("line_item_%d_%s", it.ItemIndex, CheckQuantityTimesPrice), Status: entities.CheckPass}
		if err := firstErr(errQ, errU, errP); err != nil {
			out = append(out, bad(c.Name, "a figure", err))
			continue
		}
		got := q.Mul(u)
		c.Expected, c.Actual = p.Abs().Fixed(2), got.Abs().Fixed(2)
		if c.Expected != c.Actual {
			c.Status = entities.CheckFail
			c.Detail = fmt.Sprintf("%s × %s is %s, line total is %s", q, u, c.Actual, c.Expected)
		}
		out = append(out, c)
	}
	return out, reconcile(itemSum, priced, sub, hasSub, total, hasTotal, tax)
}

// discountAfterSubtotal tells whether a receipt-level discount is taken off
// after the subtotal: only when the totals add up that way and not the
// other.
func discountAfterSubtotal(sub, tax, tip, round, total money.Amount) bool {
	without := sub.Add(tax).Add(tip).Add(round)
	return without.Cmp(total) != 0
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// reconcile compares the items' sum with the subtotal, or the grand total
// less tax: match within max(0.02, 1 %), near within max(1.00, 10 %).
func reconcile(sum money.Amount, priced int, sub money.Amount, hasSub bool, total money.Amount, hasTotal bool, tax money.Amount) entities.Reconciliation {
	rc := entities.Reconciliation{Status: ReconcileNoBaseline}
	if priced == 0 {
		return rc
	}
	rc.ItemSum = sum.Fixed(2)
	var base money.Amount
	switch {
	case hasSub:
		base, rc.BaselineSource = sub, "subtotal"
	case hasTotal:
		base, rc.BaselineSource = total.Sub(tax), "grand_total_minus_tax"
	default:
		return rc
	}
	rc.Baseline = base.Fixed(2)
	diff := sum.Sub(base).Abs()
	within := func(floor string, percent int64) bool {
		f, _ := money.Parse(floor)
		tol := base.Abs().Mul(money.FromInt(percent)).Mul(money.MustParse("0.01"))
		if tol.Cmp(f) < 0 {
			tol = f
		}
		return diff.Cmp(tol) <= 0
	}
	switch {
	case within("0.02", 1):
		rc.Status = ReconcileMatch
	case within("1.00", 10):
		rc.Status = ReconcileNear
	default:
		rc.Status = ReconcileMismatch
	}
	return rc
}
