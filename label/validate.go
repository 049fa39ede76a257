package label

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/money"
)

// ErrInvalidProposal marks a proposal that names words the receipt lacks,
// unknown labels, amounts that do not parse or dates that cannot exist —
// what an LLM's answer is checked for before anything is written.
var ErrInvalidProposal = errors.New("label: invalid proposal")

// MaxAmountDigits bounds the digits before the decimal point of an amount
// Tally keeps: money.Amount holds int64 units, and rounding a larger one
// to cents (or adding a few) would overflow into a wrong amount.
const MaxAmountDigits = 13

// ParseAmount is money.Parse refusing amounts of more than
// MaxAmountDigits whole digits (money.ErrAmount), so that Fixed(2), Cmp
// and sums of what it returns stay exact.
func ParseAmount(s string) (money.Amount, error) {
	a, err := money.Parse(s)
	if err != nil {
		return money.Amount{}, err
	}
	whole, _, _ := strings.Cut(strings.TrimPrefix(a.String(), "-"), ".")
	if len(whole) > MaxAmountDigits {
		return money.Amount{}, fmt.Errorf("%w: %q is too large", money.ErrAmount, s)
	}
	return a, nil
}

// Validate checks a proposal against its receipt: every word ref exists,
// every label is known (aliases are rewritten to their label in place),
// every amount parses and every DATE value is a real ISO date. It does not
// judge whether the figures add up: Summarize's checks do that.
func Validate(r Receipt, p *Proposal) error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidProposal}, args...)...))
	}
	refs := func(where string, rs []entities.WordRef) {
		for _, ref := range rs {
			if _, ok := r.Word(ref); !ok {
				fail("%s: %w [%d, %d]", where, ErrUnknownWord, ref[0], ref[1])
			}
		}
	}
	for i := range p.Labels {
		l := &p.Labels[i]
		name, err := Canonical(l.Label)
		if err != nil {
			fail("label %d: %v", i, err)
			continue
		}
		l.Label = name
		refs(fmt.Sprintf("label %d", i), []entities.WordRef{l.Word})
		if l.Confidence < 0 || l.Confidence > 1 {
			fail("label %d: confidence %v outside 0–1", i, l.Confidence)
		}
	}
	fields := make(map[string]entities.SummaryField, len(p.Fields))
	for k, f := range p.Fields {
		name, err := Canonical(k)
		if err != nil {
			fail("field %q: %v", k, err)
			continue
		}
		refs("field "+name, f.Words)
		if AmountFields[name] && f.Value != "" {
			a, err := ParseAmount(f.Value)
			if err != nil {
				fail("field %s: %v", name, err)
			} else {
				f.Value = a.Fixed(2)
			}
		}
		if name == Date && f.Value != "" {
			if _, err := time.Parse("2006-01-02", f.Value); err != nil {
				fail("field DATE: %q is not a date (YYYY-MM-DD)", f.Value)
			}
		}
		if f.Confidence < 0 || f.Confidence > 1 {
			fail("field %s: confidence %v outside 0–1", name, f.Confidence)
		}
		fields[name] = f
	}
	p.Fields = fields
	for i, it := range p.Items {
		refs(fmt.Sprintf("line item %d", i), it.WordRefs)
		for what, v := range map[string]string{"quantity": it.Quantity, "unit_price": it.UnitPrice, "price": it.Price} {
			if v == "" {
				continue
			}
			if _, err := ParseAmount(v); err != nil {
				fail("line item %d %s: %v", i, what, err)
			}
		}
	}
	if p.Rounding != "" {
		if _, err := ParseAmount(p.Rounding); err != nil {
			fail("rounding: %v", err)
		}
	}
	return errors.Join(errs...)
}
