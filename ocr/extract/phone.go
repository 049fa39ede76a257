package extract

import (
	"regexp"
	"strings"
	"sync"

	"github.com/tallyhq/tally/ocr"
)

var (
	// North American numbers need separators or parentheses, so that bare
	// ten-digit product codes and reference numbers are not phones:
	// (805) 497-1921, 805-497-1921, 805.497.1921, 805 497 1921, +1 877-276-9637.
	reNANP = lazyRegexp(`(?:\+?1[ \t]*[-.]?[ \t]*)?(?:\([2-9]\d{2}\)[ \t]*[-.]?[ \t]*|[2-9]\d{2}(?:[ \t]*[-.][ \t]*|[ \t]))[2-9]\d{2}(?:[ \t]*[-.][ \t]*|[ \t])\d{4}`)
	// Malaysian numbers as receipts print them: an area or mobile prefix
	// starting with 0, a dash, then the subscriber number
	// (03-7726 8688, 07-3507405, 012 - 6651783, 03-4162-2318).
	reMalaysian = lazyRegexp(`0\d{1,2}[ \t]*-[ \t]*\d{3,4}(?:[ \t]*-[ \t]*|[ \t])?\d{3,4}`)
	// International numbers written with a country code: +60 3-7726 8688.
	reInternational = lazyRegexp(`\+\d{1,3}(?:[ \t]*-?[ \t]*\(\d{1,4}\))?(?:[ \t]*-?[ \t]*\d{1,4}){2,5}`)
	// Any number after a phone label: TEL: 07-3507405, PHONE 5551234,
	// TEL NO. 03-4162-2318, TEL/FAX : 03-51213881.
	rePhoneLabel = lazyRegexp(`(?i)\b(?:tel(?:ephone)?(?:/fax)?|phone|ph|hp|h/p|mobile|mob|fax|call)(?:[ \t]*no)?[ \t]*[.:#]?[ \t]*(\+?\(?\d[\d \t().-]{5,20}\d)`)
)

// findPhones returns the phone numbers in text. Fax numbers count: they are
// phone numbers of the merchant too.
func findPhones(text string) []Match {
	var out []Match
	add := func(start, end int) {
		out = append(out, Match{Type: ocr.ExtractPhone, Value: joinedValue(text, start, end), Start: start, End: end})
	}
	for _, loc := range findAll(reNANP(), text, func(loc []int) bool {
		return phoneBoundary(text, loc[0], loc[1])
	}) {
		add(loc[0], loc[1])
	}
	for _, loc := range findAll(reMalaysian(), text, func(loc []int) bool {
		n := countDigits(text[loc[0]:loc[1]])
		return n >= 9 && n <= 11 && phoneBoundary(text, loc[0], loc[1])
	}) {
		add(loc[0], loc[1])
	}
	for _, loc := range findAll(reInternational(), text, func(loc []int) bool {
		n := countDigits(text[loc[0]:loc[1]])
		return n >= 8 && n <= 15 && phoneBoundary(text, loc[0], loc[1])
	}) {
		add(loc[0], loc[1])
	}
	for _, loc := range findAll(rePhoneLabel(), text, func(loc []int) bool {
		if !wordBoundaryBefore(text, loc[0]) {
			return false
		}
		start, end := loc[2], loc[3]
		n := countDigits(text[start:end])
		return n >= 7 && n <= 15 && balancedParens(text[start:end]) && phoneBoundary(text, start, end)
	}) {
		add(loc[2], loc[3])
	}
	return out
}

// phoneBoundary reports whether text[start:end] stands alone: not part of a
// longer run of digit groups (card numbers, 13–19 digits, or reference
// numbers), a price or a word.
func phoneBoundary(text string, start, end int) bool {
	if start > 0 {
		c := text[start-1]
		if isAlnum(c) || c == '$' || c == '.' || c == '/' && start > 1 && isDigit(text[start-2]) {
			return false
		}
		if (c == ' ' || c == '-') && start > 1 && isDigit(text[start-2]) {
			return false
		}
	}
	if end < len(text) {
		c := text[end]
		if isAlnum(c) {
			return false
		}
		if (c == ' ' || c == '-' || c == '.' || c == '/') && end+1 < len(text) && isDigit(text[end+1]) {
			return false
		}
	}
	return true
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			n++
		}
	}
	return n
}

func balancedParens(s string) bool {
	return strings.Count(s, "(") == strings.Count(s, ")")
}

// NormalizePhone returns the E.164 form ("+1NXXNXXXXXX") of a US or Canadian
// number written with optional +1 or 1 and the separators receipts use
// (. - space parentheses), so that numbers printed differently compare
// equal (the places cache is keyed by it). It reports false for anything
// else: fewer or more digits, letters, or an area code or exchange that
// cannot start with 0 or 1.
func NormalizePhone(s string) (e164 string, ok bool) {
	digits := make([]byte, 0, 11)
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "+") {
		s = s[1:]
		if !strings.HasPrefix(strings.TrimLeft(s, " "), "1") {
			return "", false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c):
			digits = append(digits, c)
		case c == ' ' || c == '\t' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", false
		}
		if len(digits) > 11 {
			return "", false
		}
	}
	if len(digits) == 11 {
		if digits[0] != '1' {
			return "", false
		}
		digits = digits[1:]
	}
	if len(digits) != 10 || digits[0] < '2' || digits[3] < '2' {
		return "", false
	}
	return "+1" + string(digits), true
}

// tollFreeAreaCodes are the NANP toll-free codes: a toll-free number names
// a company's call centre rather than a store, so merchant resolution should
// not look a place up by it.
var tollFreeAreaCodes = map[string]bool{
	"800": true, "833": true, "844": true, "855": true, "866": true, "877": true, "888": true,
}

// IsTollFree reports whether e164 (as NormalizePhone returns it) is a
// toll-free North American number.
func IsTollFree(e164 string) bool {
	return len(e164) == 12 && strings.HasPrefix(e164, "+1") && tollFreeAreaCodes[e164[2:5]]
}

// lazyRegexp compiles a pattern on first use, not at program start: the
// package has two dozen patterns, and compiling them all in init cost every
// tally process ~5 ms before it could do anything.
func lazyRegexp(pattern string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })
}
