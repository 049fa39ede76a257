package sroie

import (
	"fmt"
	"maps"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Fields is what a receipt-understanding system extracted from one
// receipt, in the terms of the SROIE key: Company is the MERCHANT_NAME
// text, Address the ADDRESS_LINE text (lines joined by spaces), DateText
// the DATE as printed and DateISO its value (YYYY-MM-DD), Total the
// GRAND_TOTAL value as a decimal ("9.00"). An empty field means "not
// found".
type Fields struct {
	Company, Address, DateText, DateISO, Total string
}

// The key fields, as FieldTally names them.
const (
	FieldCompany = "company"
	FieldAddress = "address"
	FieldDate    = "date"
	FieldTotal   = "total"
)

// FieldNames returns the four key fields in the order reports list them.
func FieldNames() []string { return []string{FieldCompany, FieldAddress, FieldDate, FieldTotal} }

// Verdict is one field of one receipt judged under one rule, counted the
// SROIE/ICDAR way: precision is correct/predicted, recall correct/truth, so
// an empty prediction costs recall only and a wrong one costs both.
type Verdict struct {
	Predicted bool // the system gave a non-empty value
	Truth     bool // the key has a non-empty value
	Correct   bool // both, and they agree under the rule
}

// Miss reports whether the verdict costs precision or recall.
func (v Verdict) Miss() bool { return (v.Predicted || v.Truth) && !v.Correct }

// FieldVerdict judges one field both ways: Strict is SROIE's exact string
// match, Normalized a match of meaning (see ScoreFields). Note says why a
// comparison could not be made (a key or predicted value that does not
// parse), "" otherwise.
type FieldVerdict struct {
	Strict, Normalized Verdict
	Note               string
}

// FieldScore is one receipt's extracted fields judged against its key.
type FieldScore struct {
	Company, Address, Date, Total FieldVerdict
}

// byName lists the verdicts in FieldNames order.
func (s FieldScore) byName() [4]FieldVerdict {
	return [4]FieldVerdict{s.Company, s.Address, s.Date, s.Total}
}

// ScoreFields judges f against the key k.
//
// Strict (SROIE's metric): both sides upper-cased with white space
// collapsed, then equal as strings — Company, Address and DateText against
// the key as printed. The key prints totals as "9.00", "$8.20", "RM7.00" or
// "RM 3.90" while Total is a value, so a leading "RM" or "$" (and the
// space after it) is stripped from the key's total, and only from the key:
// "RM9.00" extracted is a strict miss, as are "1007.50" against the key's
// "1,007.50" and "43.70" against its "43.7" (keys 350 and 474), which is
// what SROIE's exact match does too.
//
// Normalized (was the right thing found?): company and address equal with
// all white space removed, upper-cased and trailing '.' and ',' ignored
// (a third of the keys' addresses end in "JOHOR." or "18,": copying the
// final stop says nothing about finding the field; inner punctuation still
// counts); the date equal as a calendar day, DateISO against the key's date
// read by ParseDate (DateText read the same way when DateISO is empty); the
// total equal as a number ("9" is "9.00", "RM 1,007.50" is "1007.5"). A key
// date or total that does not parse counts as a normalized miss, with a
// note.
func ScoreFields(k Key, f Fields) FieldScore {
	var s FieldScore
	s.Company = scoreText(k.Company, f.Company)
	s.Address = scoreText(k.Address, f.Address)
	s.Date = scoreDate(k.Date, f.DateText, f.DateISO)
	s.Total = scoreTotal(k.Total, f.Total)
	return s
}

// strictForm is the form SROIE compares: upper-cased, white space collapsed.
func strictForm(s string) string { return normalize(s) }

func strictVerdict(truth, got string) Verdict {
	t, g := strictForm(truth), strictForm(got)
	return Verdict{Predicted: g != "", Truth: t != "", Correct: t != "" && t == g}
}

func scoreText(truth, got string) FieldVerdict {
	loose := func(s string) string {
		return strings.TrimRight(strings.ToUpper(strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, s)), ".,")
	}
	v := FieldVerdict{Strict: strictVerdict(truth, got)}
	v.Normalized = v.Strict
	v.Normalized.Correct = v.Strict.Truth && v.Strict.Predicted && loose(truth) == loose(got)
	return v
}

func scoreDate(truth, text, iso string) FieldVerdict {
	v := FieldVerdict{Strict: strictVerdict(truth, text)}
	n := Verdict{Truth: v.Strict.Truth, Predicted: strings.TrimSpace(iso) != "" || v.Strict.Predicted}
	want, okT := ParseDate(truth)
	var got string
	okG := false
	switch {
	case strings.TrimSpace(iso) != "":
		t, err := time.Parse(time.DateOnly, strings.TrimSpace(iso))
		if okG = err == nil; okG {
			got = t.Format(time.DateOnly)
		} else {
			v.Note = fmt.Sprintf("extracted date %q is not YYYY-MM-DD", iso)
		}
	case v.Strict.Predicted:
		if got, okG = ParseDate(text); !okG {
			v.Note = fmt.Sprintf("extracted date %q does not parse", text)
		}
	}
	if n.Truth && !okT {
		v.Note = fmt.Sprintf("key date %q does not parse", truth)
	}
	n.Correct = n.Truth && n.Predicted && okT && okG && want == got
	v.Normalized = n
	return v
}

func scoreTotal(truth, got string) FieldVerdict {
	key := strictForm(truth)
	for _, cur := range []string{"RM", "$"} {
		if rest, ok := strings.CutPrefix(key, cur); ok {
			key = strings.TrimSpace(rest)
			break
		}
	}
	g := strictForm(got)
	v := FieldVerdict{Strict: Verdict{Predicted: g != "", Truth: key != "", Correct: key != "" && key == g}}
	n := v.Strict
	n.Correct = false
	want, okT := ParseAmount(truth)
	have, okG := ParseAmount(got)
	switch {
	case n.Truth && !okT:
		v.Note = fmt.Sprintf("key total %q does not parse", truth)
	case n.Predicted && !okG:
		v.Note = fmt.Sprintf("extracted total %q does not parse", got)
	}
	n.Correct = n.Truth && n.Predicted && okT && okG && want.Cmp(have) == 0
	v.Normalized = n
	return v
}

// reAmount is an amount after its sign and currency: digits with optional
// thousands commas and decimals.
var reAmount = regexp.MustCompile(`^(?:\d{1,3}(?:,\d{3})+|\d*)(?:\.\d+)?$`)

// ParseAmount reads an amount as the SROIE keys and extractors print it —
// "9", "9.00", "RM 3.90", "$8.20", "1,007.50", "-1.73" — exactly (no
// floating-point rounding), so totals compare as numbers.
func ParseAmount(s string) (*big.Rat, bool) {
	s = strings.Join(strings.Fields(strings.ToUpper(s)), "")
	neg := false
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		neg, s = true, rest
	}
	for _, cur := range []string{"RM", "$"} {
		if rest, ok := strings.CutPrefix(s, cur); ok {
			s = rest
			break
		}
	}
	if rest, ok := strings.CutPrefix(s, "-"); ok && !neg {
		neg, s = true, rest
	}
	if s == "" || s == "." || !reAmount.MatchString(s) {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(strings.ReplaceAll(s, ",", ""))
	if !ok {
		return nil, false
	}
	if neg {
		r.Neg(r)
	}
	return r, true
}

var (
	reYMD     = regexp.MustCompile(`^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$`)
	reDMY     = regexp.MustCompile(`^(\d{1,2})[-/.](\d{1,2})[-/.](\d{2}|\d{4})$`)
	reCompact = regexp.MustCompile(`^\d{8}$`)
	reDMonY   = regexp.MustCompile(`^(\d{1,2})[-/. ]?([A-Z]{3,9})\.?[-/. ,]*(\d{2}|\d{4})$`)
	reMonDY   = regexp.MustCompile(`^([A-Z]{3,9})\.?[-/. ]*(\d{1,2})(?:ST|ND|RD|TH)?[-/. ,]*(\d{2}|\d{4})$`)
)

// months maps month names and their abbreviations to month numbers.
var months = func() map[string]int {
	m := map[string]int{"SEPT": 9}
	for i := 1; i <= 12; i++ {
		name := strings.ToUpper(time.Month(i).String())
		m[name], m[name[:3]] = i, i
	}
	return m
}()

// ParseDate reads a date as SROIE receipts print it and returns it as
// YYYY-MM-DD. The keys are Malaysian and day-first: 25/12/2018, 25-12-2018,
// 25.12.18, 5/3/2018, "13 JAN 2018", "24-MAR-2018", "02/JAN/2017", also
// "JAN 13, 2018", year-first 2018-03-23 and 2016/05/01, compact 20180304,
// and one in parentheses. A numeric date whose second part cannot be a
// month (12/28/2017, two keys do this) is read month-first. Two-digit years
// are 20yy.
func ParseDate(s string) (string, bool) {
	s = strings.Join(strings.Fields(strings.ToUpper(strings.Trim(strings.TrimSpace(s), "()"))), " ")
	num := func(ss ...string) []int {
		out := make([]int, len(ss))
		for i, x := range ss {
			out[i], _ = strconv.Atoi(x)
		}
		return out
	}
	var y, m, d int
	if g := reYMD.FindStringSubmatch(s); g != nil {
		v := num(g[1:]...)
		y, m, d = v[0], v[1], v[2]
	} else if g := reDMY.FindStringSubmatch(s); g != nil {
		v := num(g[1:]...)
		d, m, y = v[0], v[1], v[2]
		if m > 12 && d <= 12 {
			d, m = m, d
		}
	} else if reCompact.MatchString(s) {
		v := num(s[:4], s[4:6], s[6:])
		if iso, ok := validDate(v[0], v[1], v[2]); ok {
			return iso, true
		}
		v = num(s[:2], s[2:4], s[4:])
		d, m, y = v[0], v[1], v[2]
	} else if g := reDMonY.FindStringSubmatch(s); g != nil {
		v := num(g[1], g[3])
		d, m, y = v[0], months[g[2]], v[1]
	} else if g := reMonDY.FindStringSubmatch(s); g != nil {
		v := num(g[2], g[3])
		m, d, y = months[g[1]], v[0], v[1]
	} else {
		return "", false
	}
	return validDate(y, m, d)
}

// validDate formats a calendar day, reading two-digit years as 20yy; a day
// that does not exist, or a year outside 1900–2099, is no date.
func validDate(y, m, d int) (string, bool) {
	if y < 100 {
		y += 2000
	}
	if y < 1900 || y > 2099 || m < 1 || m > 12 || d < 1 {
		return "", false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d {
		return "", false
	}
	return t.Format(time.DateOnly), true
}

// FieldCounts are one field's (or all fields') counts under one rule.
type FieldCounts struct {
	Correct, Predicted, Truth int
}

// Precision is correct/predicted (0 with no predictions).
func (c FieldCounts) Precision() float64 { return ratio(c.Correct, c.Predicted) }

// Recall is correct/truth (0 with no ground truth).
func (c FieldCounts) Recall() float64 { return ratio(c.Correct, c.Truth) }

// F1 is the harmonic mean of precision and recall, 2·correct/(predicted+truth).
func (c FieldCounts) F1() float64 { return ratio(2*c.Correct, c.Predicted+c.Truth) }

func (c *FieldCounts) add(v Verdict) {
	c.Correct += b2i(v.Correct)
	c.Predicted += b2i(v.Predicted)
	c.Truth += b2i(v.Truth)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// FieldTally sums FieldScores over receipts for a benchmark: per field and
// micro-averaged over the four fields (SROIE's task 3 metric), strictly and
// normalized, and remembers which receipts missed what for debugging. The
// zero value is ready to use.
type FieldTally struct {
	Receipts           int
	strict, normalized [4]FieldCounts
	misses, normMisses map[string][]string
	notes              []string
}

// Add counts one receipt's score under its name.
func (t *FieldTally) Add(name string, s FieldScore) {
	if t.misses == nil {
		t.misses, t.normMisses = map[string][]string{}, map[string][]string{}
	}
	t.Receipts++
	for i, v := range s.byName() {
		field := FieldNames()[i]
		t.strict[i].add(v.Strict)
		t.normalized[i].add(v.Normalized)
		if v.Strict.Miss() {
			t.misses[field] = append(t.misses[field], name)
		}
		if v.Normalized.Miss() {
			t.normMisses[field] = append(t.normMisses[field], name)
		}
		if v.Note != "" {
			t.notes = append(t.notes, fmt.Sprintf("%s %s: %s", name, field, v.Note))
		}
	}
}

// Counts returns one field's counts (field is one of FieldNames; any other
// name has none).
func (t FieldTally) Counts(field string) (strict, normalized FieldCounts) {
	if i := slices.Index(FieldNames(), field); i >= 0 {
		return t.strict[i], t.normalized[i]
	}
	return FieldCounts{}, FieldCounts{}
}

// Sum returns the counts summed over the four fields, from which the
// micro-averaged scores are computed.
func (t FieldTally) Sum() (strict, normalized FieldCounts) {
	for i := range t.strict {
		strict.Correct += t.strict[i].Correct
		strict.Predicted += t.strict[i].Predicted
		strict.Truth += t.strict[i].Truth
		normalized.Correct += t.normalized[i].Correct
		normalized.Predicted += t.normalized[i].Predicted
		normalized.Truth += t.normalized[i].Truth
	}
	return strict, normalized
}

// Precision is the micro-averaged precision, strict and normalized.
func (t FieldTally) Precision() (strict, normalized float64) {
	s, n := t.Sum()
	return s.Precision(), n.Precision()
}

// Recall is the micro-averaged recall, strict and normalized.
func (t FieldTally) Recall() (strict, normalized float64) {
	s, n := t.Sum()
	return s.Recall(), n.Recall()
}

// F1 is the micro-averaged F1, strict and normalized.
func (t FieldTally) F1() (strict, normalized float64) {
	s, n := t.Sum()
	return s.F1(), n.F1()
}

// Misses maps each field to the receipts (in the order added) where it
// was wrong or missing under the strict rule, SROIE's own.
func (t FieldTally) Misses() map[string][]string { return cloneMisses(t.misses) }

// NormalizedMisses is Misses under the normalized rule: the receipts where
// the field was really not found.
func (t FieldTally) NormalizedMisses() map[string][]string { return cloneMisses(t.normMisses) }

// Notes lists why comparisons could not be made ("231 date: key date … does
// not parse"), so that a miss caused by the key is not blamed on the
// system.
func (t FieldTally) Notes() []string { return slices.Clone(t.notes) }

func cloneMisses(m map[string][]string) map[string][]string {
	out := maps.Clone(m)
	if out == nil {
		return map[string][]string{}
	}
	for k, v := range out {
		out[k] = slices.Clone(v)
	}
	return out
}

// Table is a markdown table of the per-field counts and both F1s, and
// their micro-averaged totals, for BENCHMARKS.md.
func (t FieldTally) Table() string {
	var b strings.Builder
	b.WriteString("| field | truth | predicted | correct | F1 | predicted (norm.) | correct (norm.) | F1 (norm.) |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	row := func(name string, s, n FieldCounts) {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %.3f | %d | %d | %.3f |\n",
			name, s.Truth, s.Predicted, s.Correct, s.F1(), n.Predicted, n.Correct, n.F1())
	}
	for i, f := range FieldNames() {
		row(f, t.strict[i], t.normalized[i])
	}
	s, n := t.Sum()
	row("all (micro)", s, n)
	return b.String()
}
