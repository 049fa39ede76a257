package pipeline

import "strings"

// Edge pads context at the ends of a receipt (rows) or of a row (words), so
// an embedding can tell "first row" from "a row after an empty one".
const Edge = "<EDGE>"

// RowTexts returns the text each row is embedded as: the row above, the
// row, and the row below, one per line, with Edge past either end. Context
// makes "TOTAL 12.50" under "TAX 0.50" distinguishable from the same text
// under "SUBTOTAL".
func RowTexts(rows []string) []string {
	out := make([]string, len(rows))
	at := func(i int) string {
		if i < 0 || i >= len(rows) {
			return Edge
		}
		return rows[i]
	}
	for i := range rows {
		out[i] = at(i-1) + "\n" + rows[i] + "\n" + at(i+1)
	}
	return out
}

// WordTexts returns the text each word of one row (left to right) is
// embedded as: two words of left context, the word, two of right context,
// with Edge past the ends of the row.
func WordTexts(words []string) []string {
	out := make([]string, len(words))
	at := func(i int) string {
		if i < 0 || i >= len(words) {
			return Edge
		}
		return words[i]
	}
	for i := range words {
		out[i] = strings.Join([]string{at(i - 2), at(i - 1), words[i], at(i + 1), at(i + 2)}, " ")
	}
	return out
}
