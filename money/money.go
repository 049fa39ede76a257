// Package money holds amounts as exact decimals, as receipts print them:
// never floats, so that 0.10 + 0.20 is 0.30 and a summary's arithmetic
// checks compare what was printed, not a binary approximation of it.
package money

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// ErrAmount marks text that is not an amount.
var ErrAmount = errors.New("money: not an amount")

// maxScale is the most decimal places kept (unit prices print 3 or 4).
const maxScale = 4

// Amount is units × 10^-scale. The zero value is 0.
type Amount struct {
	units int64
	scale int8
}

// Parse reads an amount as printed on a receipt: an optional sign (leading,
// or trailing as in "5.00-", or parentheses), an optional currency symbol or
// code (RM, $, €, £, USD, MYR), thousands separators, and a decimal point or
// comma. "1,234.50", "1.234,56", "RM9.00", "$-3.10" and "(2.00)" parse; a
// group separator is told from a decimal one by position: the last '.' or
// ',' is the decimal separator when the other kind precedes it; alone, a '.'
// always is ("9.000", a unit price), a ',' only unless 3 digits follow it
// ("1,234"). A receipt known to write "1.234" for a thousand needs its own
// rule before Parse.
func Parse(s string) (Amount, error) {
	t := strings.TrimSpace(s)
	neg := false
	if strings.HasPrefix(t, "(") && strings.HasSuffix(t, ")") {
		neg, t = true, strings.TrimSpace(t[1:len(t)-1])
	}
	if strings.HasSuffix(t, "-") {
		neg, t = !neg, strings.TrimSpace(strings.TrimSuffix(t, "-"))
	}
	if strings.HasPrefix(t, "-") {
		neg, t = !neg, strings.TrimSpace(t[1:])
	}
	up := strings.ToUpper(t)
	for _, c := range []string{"USD", "MYR", "EUR", "GBP", "RM", "US$", "$", "€", "£"} {
		if strings.HasPrefix(up, c) {
			t = strings.TrimSpace(t[len(c):])
			break
		}
	}
	if strings.HasPrefix(t, "-") {
		neg, t = !neg, strings.TrimSpace(t[1:])
	}
	if t == "" {
		return Amount{}, fmt.Errorf("%w: %q", ErrAmount, s)
	}
	dec := decimalSeparator(t)
	var units int64
	scale := int8(-1)
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= '0' && c <= '9':
			if scale >= 0 {
				if scale == maxScale {
					return Amount{}, fmt.Errorf("%w: %q has more than %d decimal places", ErrAmount, s, maxScale)
				}
				scale++
			}
			if units > (math.MaxInt64-9)/10 {
				return Amount{}, fmt.Errorf("%w: %q is too large", ErrAmount, s)
			}
			units = units*10 + int64(c-'0')
		case i == dec:
			scale = 0
		case c == ',' || c == '.' || c == ' ' || c == '\'':
			// a group separator
		default:
			return Amount{}, fmt.Errorf("%w: %q", ErrAmount, s)
		}
	}
	if scale < 0 {
		scale = 0
	}
	if neg {
		units = -units
	}
	return Amount{units: units, scale: scale}, nil
}

// decimalSeparator is the index of t's decimal separator, or -1.
func decimalSeparator(t string) int {
	last := strings.LastIndexAny(t, ".,")
	if last < 0 {
		return -1
	}
	digits := len(t) - last - 1
	other := ","
	if t[last] == ',' {
		other = "."
	}
	switch {
	case strings.ContainsAny(t[:last], other):
		return last // "1,234.50", "1.234,56"
	case strings.Count(t, t[:last+1][last:]) > 1:
		return -1 // "1,234,567": all groups
	case digits == 3 && t[last] == ',':
		return -1 // "1,234": a thousands group (a lone "9.000" is a 3-place price)
	default:
		return last
	}
}

// String is the amount with its own decimal places, "-" for negatives and
// no group separators: "1234.50".
func (a Amount) String() string {
	u := a.units
	sign := ""
	if u < 0 {
		sign, u = "-", -u
	}
	if a.scale == 0 {
		return fmt.Sprintf("%s%d", sign, u)
	}
	p := pow10(a.scale)
	return fmt.Sprintf("%s%d.%0*d", sign, u/p, int(a.scale), u%p)
}

// Fixed is the amount rounded half away from zero to places decimals, as
// a string: Fixed(2) of 9.005 is "9.01".
func (a Amount) Fixed(places int8) string { return a.rescale(places).String() }

// Add returns a + b, exactly.
func (a Amount) Add(b Amount) Amount {
	s := max(a.scale, b.scale)
	return Amount{units: a.rescale(s).units + b.rescale(s).units, scale: s}
}

// Sub returns a − b, exactly.
func (a Amount) Sub(b Amount) Amount { return a.Add(b.Neg()) }

// Neg returns −a.
func (a Amount) Neg() Amount { return Amount{units: -a.units, scale: a.scale} }

// Mul returns a × b, exactly while the result keeps at most maxScale places,
// else rounded to maxScale.
func (a Amount) Mul(b Amount) Amount {
	r := Amount{units: a.units * b.units, scale: a.scale + b.scale}
	if r.scale > maxScale {
		r = r.rescale(maxScale)
	}
	return r
}

// Cmp compares a and b: −1, 0 or +1.
func (a Amount) Cmp(b Amount) int {
	d := a.Sub(b).units
	switch {
	case d < 0:
		return -1
	case d > 0:
		return 1
	}
	return 0
}

// Abs returns |a|.
func (a Amount) Abs() Amount {
	if a.units < 0 {
		return a.Neg()
	}
	return a
}

// IsZero reports whether a is 0.
func (a Amount) IsZero() bool { return a.units == 0 }

// rescale changes the number of decimal places, rounding half away from
// zero when places drop.
func (a Amount) rescale(s int8) Amount {
	switch {
	case s == a.scale:
		return a
	case s > a.scale:
		return Amount{units: a.units * pow10(s-a.scale), scale: s}
	}
	p := pow10(a.scale - s)
	q, r := a.units/p, a.units%p
	if 2*abs(r) >= p {
		if a.units < 0 {
			q--
		} else {
			q++
		}
	}
	return Amount{units: q, scale: s}
}

func pow10(n int8) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// FromInt is the whole amount n.
func FromInt(n int64) Amount { return Amount{units: n} }

// MustParse is Parse for constants in code; it panics on a bad one.
func MustParse(s string) Amount {
	a, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return a
}

// Units is the amount as a whole number of 10^-places units (Units(2) of
// 12.345 is 1235, rounded half away from zero), for arithmetic that needs
// integers, such as scaling a chart.
func (a Amount) Units(places int8) int64 { return a.rescale(places).units }
