// Package extract finds structured data (dates, phone numbers, street
// addresses and web addresses) in OCR'd receipt text and attaches it to the
// words that carry it, the way the old system's Apple Vision worker filled
// ocr.Word.ExtractedData with NSDataDetector's findings.
//
// Values follow the old system where it left evidence:
//   - address: the matched text with its lines joined by one space
//     ("614 Gravier Street New Orleans, LA 70130");
//   - date: a timestamp "2006-01-02 15:04:05 +0000" built from the printed
//     date and, when one follows it on the same or the next line, the printed
//     time. The printed wall-clock time is written as if it were UTC (the old
//     worker converted from the phone's time zone, which Tally cannot know);
//     a date without a time gets 12:00:00, as NSDataDetector gives dates
//     without a time, so that the calendar day survives any later shift of
//     up to ±11 hours;
//   - phone: the number as printed (whitespace collapsed); NormalizePhone
//     turns North American numbers into E.164;
//   - url: the address as printed, with "http://" in front when it has no
//     scheme (as NSDataDetector's URL did).
//
// Limits: standalone times, dates without a year, street addresses that lack
// a suffix (St, Ave, …) or a postcode, and addresses outside the US and
// Malaysia are not found. Numeric dates whose day and month are both ≤ 12
// are read month-first unless the text reads day-first (see Find).
package extract

import (
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/tallyhq/tally/ocr"
)

// Match is one piece of structured data found in a text. Start and End are
// byte offsets into the text (End exclusive); Value is the normalized value
// described in the package documentation.
type Match struct {
	Type  string // ocr.ExtractDate, ocr.ExtractPhone, ocr.ExtractAddress or ocr.ExtractURL
	Value string
	Start int
	End   int
}

// Find returns the dates, phone numbers, addresses and URLs in text, sorted
// by Start and never overlapping one another. Text may hold several lines
// separated by '\n': a date followed by a time on the next line, and a street
// line followed by its city line, are found as one match (up to two empty
// lines between them are stepped over, as Tesseract's text output has
// them), which is why callers should pass a whole receipt rather than one
// line at a time.
//
// Numeric dates like 09/01/2019 are ambiguous; Find reads them day-first when
// the text contains an unambiguous day-first date (25/12/2018) and no
// unambiguous month-first one, or when it looks Malaysian (SDN BHD, JALAN,
// RM amounts …), and month-first otherwise.
func Find(text string) []Match {
	d := newDocument(text)
	var found []Match
	found = append(found, findURLs(text)...)
	found = append(found, findPhones(text)...)
	found = append(found, findDates(d)...)
	found = append(found, findAddresses(d)...)
	return resolveOverlaps(found)
}

// priority orders the types for overlap resolution: the more precise rules
// win over the broader ones.
var priority = map[string]int{
	ocr.ExtractURL:     0,
	ocr.ExtractPhone:   1,
	ocr.ExtractDate:    2,
	ocr.ExtractAddress: 3,
}

// resolveOverlaps keeps, among overlapping matches, the one of the higher
// priority type, then the earlier, then the longer one; it returns the kept
// matches sorted by Start.
func resolveOverlaps(found []Match) []Match {
	sort.SliceStable(found, func(i, j int) bool {
		a, b := found[i], found[j]
		if priority[a.Type] != priority[b.Type] {
			return priority[a.Type] < priority[b.Type]
		}
		if a.Start != b.Start {
			return a.Start < b.Start
		}
		return a.End-a.Start > b.End-b.Start
	})
	// kept stays sorted by Start and free of overlaps, so one binary search
	// finds the only kept match that can overlap a candidate: the last one
	// starting before the candidate ends.
	kept := make([]Match, 0, len(found))
	for _, m := range found {
		if m.End <= m.Start {
			continue
		}
		i := sort.Search(len(kept), func(i int) bool { return kept[i].Start >= m.End })
		if i > 0 && kept[i-1].End > m.Start {
			continue
		}
		kept = slices.Insert(kept, i, m)
	}
	return kept
}

// Annotate finds dates, phones, addresses and URLs in lines and sets
// ExtractedData on each word that is part of a match (a multi-word or
// multi-line match annotates all its words with the same value). It never
// changes geometry or text. Existing ExtractedData is kept: an external OCR
// worker's findings win.
func Annotate(lines []ocr.Line) {
	var text strings.Builder
	type wordSpan struct {
		line, word int
		start, end int // byte offsets into text
	}
	var spans []wordSpan
	for li := range lines {
		if li > 0 {
			text.WriteByte('\n')
		}
		base := text.Len()
		lineText, offsets := locateWords(&lines[li])
		text.WriteString(lineText)
		for wi, off := range offsets {
			spans = append(spans, wordSpan{line: li, word: wi, start: base + off[0], end: base + off[1]})
		}
	}
	matches := Find(text.String())
	if len(matches) == 0 {
		return
	}
	// Both spans and matches are sorted by start; walk them together.
	mi := 0
	for _, s := range spans {
		for mi < len(matches) && matches[mi].End <= s.start {
			mi++
		}
		for k := mi; k < len(matches) && matches[k].Start < s.end; k++ {
			m := matches[k]
			if m.End <= s.start || s.end <= s.start {
				continue
			}
			w := &lines[s.line].Words[s.word]
			if w.ExtractedData == nil {
				w.ExtractedData = &ocr.ExtractedData{Type: m.Type, Value: m.Value}
			}
			break
		}
	}
}

// locateWords returns the text to search for a line and each word's byte
// range in it. It uses the line's own text when every word can be found in it
// in order (words are substrings of the line for Vision and Tesseract), and
// otherwise the words joined by spaces, so that matches always map to words.
func locateWords(l *ocr.Line) (string, [][2]int) {
	offsets := make([][2]int, len(l.Words))
	text := strings.ReplaceAll(l.Text, "\n", " ")
	pos := 0
	ok := true
	for i, w := range l.Words {
		wt := strings.ReplaceAll(w.Text, "\n", " ")
		if wt == "" {
			offsets[i] = [2]int{pos, pos}
			continue
		}
		j := strings.Index(text[pos:], wt)
		if j < 0 {
			ok = false
			break
		}
		offsets[i] = [2]int{pos + j, pos + j + len(wt)}
		pos += j + len(wt)
	}
	if ok {
		return text, offsets
	}
	var b strings.Builder
	for i, w := range l.Words {
		if i > 0 {
			b.WriteByte(' ')
		}
		start := b.Len()
		b.WriteString(strings.ReplaceAll(w.Text, "\n", " "))
		offsets[i] = [2]int{start, b.Len()}
	}
	return b.String(), offsets
}

// document is a text split into lines, for the rules that look across lines.
type document struct {
	text  string
	lines []span // each line without its '\n'
}

// span is a byte range [start, end) of a document's text.
type span struct{ start, end int }

func newDocument(text string) *document {
	d := &document{text: text}
	start := 0
	for i := 0; i < len(text); i++ {
		if text[i] == '\n' {
			d.lines = append(d.lines, span{start, i})
			start = i + 1
		}
	}
	d.lines = append(d.lines, span{start, len(text)})
	return d
}

// lineOf returns the index of the line holding byte offset off.
func (d *document) lineOf(off int) int {
	return sort.Search(len(d.lines), func(i int) bool { return d.lines[i].end >= off })
}

// trimmed returns line i's span without leading and trailing blanks.
func (d *document) trimmed(i int) span {
	s := d.lines[i]
	for s.start < s.end && isBlank(d.text[s.start]) {
		s.start++
	}
	for s.end > s.start && isBlank(d.text[s.end-1]) {
		s.end--
	}
	return s
}

// maxBlankLines is how many empty lines a multi-line match may step over
// (Tesseract's text output separates blocks with them).
const maxBlankLines = 2

// next returns the index of the first non-empty line after line i, or -1.
func (d *document) next(i int) int {
	for k := i + 1; k < len(d.lines) && k <= i+1+maxBlankLines; k++ {
		if t := d.trimmed(k); t.end > t.start {
			return k
		}
	}
	return -1
}

// prev returns the index of the last non-empty line before line i, or -1.
func (d *document) prev(i int) int {
	for k := i - 1; k >= 0 && k >= i-1-maxBlankLines; k-- {
		if t := d.trimmed(k); t.end > t.start {
			return k
		}
	}
	return -1
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

// joinedValue returns text[start:end] with its line breaks and runs of
// blanks replaced by single spaces, which is how the old system wrote
// multi-line values.
func joinedValue(text string, start, end int) string {
	return strings.Join(strings.Fields(text[start:end]), " ")
}

// findAll returns the submatch indices of the matches of re in text that
// accept keeps. It is one left-to-right pass (FindAllStringSubmatchIndex), so
// its cost stays linear in the text whatever accept rejects.
func findAll(re *regexp.Regexp, text string, accept func(loc []int) bool) [][]int {
	all := re.FindAllStringSubmatchIndex(text, -1)
	out := all[:0]
	for _, loc := range all {
		if accept(loc) {
			out = append(out, loc)
		}
	}
	return out
}
