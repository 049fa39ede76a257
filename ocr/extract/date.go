package extract

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tallyhq/tally/ocr"
)

// dateLayout is how the old system wrote dates (Foundation's Date
// description).
const dateLayout = "2006-01-02 15:04:05 -0700"

// Minimum and maximum four-digit years accepted: receipts outside this
// range are far likelier to be reference numbers than dates.
const (
	minYear = 1970
	maxYear = 2099
)

const monthNames = `(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)`

var (
	// 2018-12-25, 2018/12/25, 2018.12.25
	reDateYMD = lazyRegexp(`(\d{4})([-/.])(\d{1,2})([-/.])(\d{1,2})`)
	// 25/12/2018, 12-28-2017, 25.12.18 (both separators must agree; checked
	// in code since RE2 has no back-references)
	reDateNumeric = lazyRegexp(`(\d{1,2})([-/.])(\d{1,2})([-/.])(\d{4}|\d{2})`)
	// Oct 21, 2022; January 5 2024; Sept. 3rd, '24
	reDateMonthFirst = lazyRegexp(`(?i)\b` + monthNames + `\.?[ \t]*(\d{1,2})(?:st|nd|rd|th)?(?:[ \t]*,[ \t]*|[ \t]+)(\d{4}|'\d{2})`)
	// 05 JAN 2024; 5-Jan-24; 21 October, 2022; 05JAN2024
	reDateDayFirst = lazyRegexp(`(?i)(\d{1,2})(?:st|nd|rd|th)?[ \t]*[-/ .]?[ \t]*` + monthNames + `\.?(?:[ \t]*[-/ ,.][ \t]*|[ \t]*)(\d{4}|\d{2})`)
	// A time right after a date: 8:13:39 PM, 20:49, 22:17PM, 13 : 58.
	reTimeAfter = lazyRegexp(`^[ \t]*,?[ \t]*(\d{1,2})[ \t]*:[ \t]*(\d{2})(?:[ \t]*:[ \t]*(\d{2}))?(?:[ \t]*([AaPp])\.?[Mm]\.?)?`)
	// Cues that a receipt prints day-first dates.
	reDayFirstCue = lazyRegexp(`(?i)\b(?:sdn\.?[ \t]*bhd|s/b|jalan|jln|taman|selangor|johor|kuala lumpur|malaysia|gst[ \t]*(?:id|no|reg))\b|\bRM[ \t]?\d`)
)

// dateCandidate is a date found before the choice between day-first and
// month-first is made.
type dateCandidate struct {
	start, end int
	year       int
	a, b       int  // the two leading fields of a numeric date, in printed order
	fixed      bool // a and b are month and day for certain (ISO or month name)
}

// findDates returns the dates in d, each extended over a time printed right
// after it (on the same line, or at the start of the next line when the date
// ends its line).
func findDates(d *document) []Match {
	text := d.text
	var cands []dateCandidate

	for _, loc := range findAll(reDateYMD(), text, func(loc []int) bool {
		return text[loc[4]:loc[5]] == text[loc[8]:loc[9]] && numericBoundary(text, loc[0], loc[1])
	}) {
		y, _ := strconv.Atoi(text[loc[2]:loc[3]])
		m, _ := strconv.Atoi(text[loc[6]:loc[7]])
		day, _ := strconv.Atoi(text[loc[10]:loc[11]])
		if validDate(y, m, day) {
			cands = append(cands, dateCandidate{start: loc[0], end: loc[1], year: y, a: m, b: day, fixed: true})
		}
	}
	for _, loc := range findAll(reDateNumeric(), text, func(loc []int) bool {
		return text[loc[4]:loc[5]] == text[loc[8]:loc[9]] && numericBoundary(text, loc[0], loc[1])
	}) {
		a, _ := strconv.Atoi(text[loc[2]:loc[3]])
		b, _ := strconv.Atoi(text[loc[6]:loc[7]])
		y, ok := parseYear(text[loc[10]:loc[11]])
		if !ok || (!validDate(y, a, b) && !validDate(y, b, a)) {
			continue
		}
		// A two-digit year with dots (1.25.99) reads as a price or a version
		// as often as a date; keep only unambiguous-looking ones.
		if text[loc[4]:loc[5]] == "." && loc[11]-loc[10] == 2 && loc[3]-loc[2] == 1 {
			continue
		}
		cands = append(cands, dateCandidate{start: loc[0], end: loc[1], year: y, a: a, b: b})
	}
	for _, loc := range findAll(reDateMonthFirst(), text, func(loc []int) bool {
		return wordBoundaryBefore(text, loc[0]) && wordBoundaryAfter(text, loc[1]) && numericBoundaryAfter(text, loc[1])
	}) {
		m := monthNumber(text[loc[2]:loc[3]])
		day, _ := strconv.Atoi(text[loc[4]:loc[5]])
		y, ok := parseYear(strings.TrimPrefix(text[loc[6]:loc[7]], "'"))
		if ok && validDate(y, m, day) {
			cands = append(cands, dateCandidate{start: loc[0], end: loc[1], year: y, a: m, b: day, fixed: true})
		}
	}
	for _, loc := range findAll(reDateDayFirst(), text, func(loc []int) bool {
		return numericBoundaryBefore(text, loc[0]) && wordBoundaryAfter(text, loc[1]) && numericBoundaryAfter(text, loc[1])
	}) {
		day, _ := strconv.Atoi(text[loc[2]:loc[3]])
		m := monthNumber(text[loc[4]:loc[5]])
		y, ok := parseYear(text[loc[6]:loc[7]])
		if ok && validDate(y, m, day) {
			cands = append(cands, dateCandidate{start: loc[0], end: loc[1], year: y, a: m, b: day, fixed: true})
		}
	}

	dayFirst := sync.OnceValue(func() bool { return readsDayFirst(text, cands) })
	out := make([]Match, 0, len(cands))
	for _, c := range cands {
		month, day := c.a, c.b
		if !c.fixed {
			switch {
			case !validDate(c.year, c.a, c.b):
				month, day = c.b, c.a
			case validDate(c.year, c.b, c.a) && dayFirst():
				month, day = c.b, c.a
			}
		}
		end, hour, minute, second, hasTime := timeAfter(d, c.end)
		if !hasTime {
			hour, minute, second = 12, 0, 0
		}
		t := time.Date(c.year, time.Month(month), day, hour, minute, second, 0, time.UTC)
		out = append(out, Match{Type: ocr.ExtractDate, Value: t.Format(dateLayout), Start: c.start, End: end})
	}
	return out
}

// readsDayFirst decides how to read numeric dates whose day and month are
// both ≤ 12: by the unambiguous numeric dates in the text, then by cues of a
// day-first country.
func readsDayFirst(text string, cands []dateCandidate) bool {
	dayFirst, monthFirst := 0, 0
	for _, c := range cands {
		if c.fixed {
			continue
		}
		switch {
		case c.a > 12 && c.b <= 12:
			dayFirst++
		case c.b > 12 && c.a <= 12:
			monthFirst++
		}
	}
	if dayFirst != monthFirst {
		return dayFirst > monthFirst
	}
	return reDayFirstCue().MatchString(text)
}

// timeAfter looks for a time right after a date ending at end: on the same
// line, or alone at the start of the next line when nothing else follows the
// date on its line. It returns the new end of the match and the time.
func timeAfter(d *document, end int) (newEnd, hour, minute, second int, ok bool) {
	text := d.text
	li := d.lineOf(end)
	rest := text[end:d.lines[li].end]
	if strings.TrimSpace(rest) == "" {
		// The date ends its line: try the start of the next line.
		ni := d.next(li)
		if ni < 0 {
			return end, 0, 0, 0, false
		}
		next := d.lines[ni]
		if loc := reTimeAfter().FindStringSubmatchIndex(text[next.start:next.end]); loc != nil {
			return parseTime(text, next.start, loc, end)
		}
		return end, 0, 0, 0, false
	}
	if loc := reTimeAfter().FindStringSubmatchIndex(rest); loc != nil {
		return parseTime(text, end, loc, end)
	}
	return end, 0, 0, 0, false
}

// parseTime reads the time matched by reTimeAfter() at base+loc; it rejects
// impossible times and times glued to more digits (13:29:0012).
func parseTime(text string, base int, loc []int, dateEnd int) (newEnd, hour, minute, second int, ok bool) {
	for i := range loc {
		if loc[i] >= 0 {
			loc[i] += base
		}
	}
	if loc[1] < len(text) && isAlnum(text[loc[1]]) {
		return dateEnd, 0, 0, 0, false
	}
	hour, _ = strconv.Atoi(text[loc[2]:loc[3]])
	minute, _ = strconv.Atoi(text[loc[4]:loc[5]])
	if loc[6] >= 0 {
		second, _ = strconv.Atoi(text[loc[6]:loc[7]])
	}
	if hour > 23 || minute > 59 || second > 59 {
		return dateEnd, 0, 0, 0, false
	}
	if loc[8] >= 0 && hour <= 12 {
		pm := text[loc[8]] == 'p' || text[loc[8]] == 'P'
		switch {
		case hour == 12 && !pm:
			hour = 0
		case hour < 12 && pm:
			hour += 12
		}
	}
	return loc[1], hour, minute, second, true
}

// numericBoundary reports whether text[start:end] is not glued to more
// digits or date separators (so that parts of longer numbers, prices and
// reference codes like CS1801/26874 are not read as dates).
func numericBoundary(text string, start, end int) bool {
	return numericBoundaryBefore(text, start) && numericBoundaryAfter(text, end)
}

func numericBoundaryBefore(text string, start int) bool {
	if start == 0 {
		return true
	}
	c := text[start-1]
	if isAlnum(c) {
		return false
	}
	return !(isSeparator(c) && start > 1 && isDigit(text[start-2]))
}

func numericBoundaryAfter(text string, end int) bool {
	if end >= len(text) {
		return true
	}
	c := text[end]
	if isDigit(c) {
		return false
	}
	return !(isSeparator(c) && end+1 < len(text) && isDigit(text[end+1]))
}

func isSeparator(c byte) bool { return c == '/' || c == '-' || c == '.' }

func wordBoundaryBefore(text string, start int) bool {
	return start == 0 || !isAlnum(text[start-1])
}

func wordBoundaryAfter(text string, end int) bool {
	return end >= len(text) || !isAlnum(text[end])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// parseYear reads a two- or four-digit year; two-digit years are 1970–2069.
func parseYear(s string) (int, bool) {
	y, err := strconv.Atoi(s)
	if err != nil {
		return 0, false
	}
	if len(s) == 2 {
		if y < 70 {
			return 2000 + y, true
		}
		return 1900 + y, true
	}
	return y, y >= minYear && y <= maxYear
}

// validDate reports whether year-month-day exists on the calendar.
func validDate(year, month, day int) bool {
	if year < minYear || year > maxYear || month < 1 || month > 12 || day < 1 || day > 31 {
		return false
	}
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	return t.Day() == day
}

// monthNumber maps a month name or abbreviation to 1–12 (0 when unknown).
func monthNumber(name string) int {
	if len(name) < 3 {
		return 0
	}
	switch strings.ToLower(name[:3]) {
	case "jan":
		return 1
	case "feb":
		return 2
	case "mar":
		return 3
	case "apr":
		return 4
	case "may":
		return 5
	case "jun":
		return 6
	case "jul":
		return 7
	case "aug":
		return 8
	case "sep":
		return 9
	case "oct":
		return 10
	case "nov":
		return 11
	case "dec":
		return 12
	}
	return 0
}
