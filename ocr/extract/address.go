package extract

import (
	"strings"

	"github.com/tallyhq/tally/ocr"
)

// US addresses.
const (
	streetSuffixes = `street|st|avenue|ave|av|road|rd|boulevard|blvd|drive|dr|lane|ln|way|highway|hwy|parkway|pkwy|court|ct|place|pl|circle|cir|terrace|ter|trail|trl|square|sq|plaza|plz|center|ctr|centre|route|rte|pike|loop|alley|aly|expressway|expy|freeway|fwy|turnpike|tpke|causeway|row|crossing|xing`
	directions     = `n|s|e|w|ne|nw|se|sw|north|south|east|west|northeast|northwest|southeast|southwest`
	stateCodes     = `AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR|VI|GU`
	stateNames     = `alabama|alaska|arizona|arkansas|california|colorado|connecticut|delaware|florida|georgia|hawaii|idaho|illinois|indiana|iowa|kansas|kentucky|louisiana|maine|maryland|massachusetts|michigan|minnesota|mississippi|missouri|montana|nebraska|nevada|new hampshire|new jersey|new mexico|new york|north carolina|north dakota|ohio|oklahoma|oregon|pennsylvania|rhode island|south carolina|south dakota|tennessee|texas|utah|vermont|virginia|washington|west virginia|wisconsin|wyoming|district of columbia|puerto rico`
	// word is one word of a street or city name.
	word = `[A-Za-z0-9][A-Za-z0-9.'&-]*`
	// street is "614 Gravier Street", "2725 N. Agoura Rd. Suite 100".
	street = `(?i:\d{1,6}[A-Z]?(?:[ \t]*-[ \t]*\d{1,6})?[ \t]+(?:(?:` + directions + `)\.?[ \t]+)?(?:` + word + `[ \t]+){1,4}(?:` + streetSuffixes + `)\b\.?(?:[ \t]+(?:` + directions + `)\b\.?)?(?:,?[ \t]*(?:suite|ste|unit|apt|#)[ \t]*[.#]?[ \t]*[A-Z0-9-]+)?)`
	// stateZip is "LA 70130", "California 91362 • 4063".
	stateZip = `(?:` + stateCodes + `|(?i:` + stateNames + `))\.?,?[ \t]+\d{5}(?:[ \t]*[-–•·][ \t]*\d{4})?\b`
	// city is one to four words of a city name.
	city = `(?i:[A-Za-z][A-Za-z.'-]*(?:[ \t]+[A-Za-z][A-Za-z.'-]*){0,3})`
)

var (
	// A street that ends its line, or is followed on it by city, state and
	// ZIP code; the alternative keeps "2 DIET DR PEPPER" out.
	reStreet = lazyRegexp(`(?m)` + street + `(?:,?[ \t]+` + city + `,?[ \t]+` + stateZip + `|[ \t,]*$)`)
	// "New Orleans, LA 70130" or "WESTLAKE CA 91360" (the city is required
	// on its own).
	reCityStateZip = lazyRegexp(city + `,?[ \t]+` + stateZip)
	// "California 91362" or "CA 91362" at the start of a line, after a city
	// line.
	reStateZipLine = lazyRegexp(`^[ \t]*` + stateZip)
	// A line holding only a city name ("Westlake Village.").
	reCityLine = lazyRegexp(`^[ \t]*` + city + `[ \t]*[.,]?[ \t]*$`)
)

// Malaysian addresses.
var (
	// A five-digit postcode followed by a place name, or ending its line.
	rePostcode = lazyRegexp(`\d{5}`)
	// Words that make a line part of an address.
	reMalaysianAddressWord = lazyRegexp(`(?i)\b(?:jalan|jln|lorong|lrg|persiaran|lebuh|lebuhraya|taman|tmn|bandar|kawasan|perindustrian|kampung|kg|batu|seksyen|blok|block|level|tingkat|bangunan|wisma|menara|plaza|kompleks|pusat|lot|ss|usj|pjs|jaya|mukim)\b`)
	// A line that starts with a house, lot or floor number.
	// ("NO.53", "LOT 1851-A", "27,JALAN", "75. JALAN"; not "3.50" or "8,99").
	reHouseNumber = lazyRegexp(`(?i)^(?:(?:no|lot|level|blok|block|unit|pt|p\.t)\b[ \t.:]*\d|\d{1,5}[A-Z]?(?:-\d+[A-Z]?)*[ \t]*,[ \t]*(?:[^0-9 \t]|$)|\d{1,5}[A-Z]?(?:-\d+[A-Z]?)*[ \t.,]*(?:jalan|jln|lorong|persiaran|taman|tmn|batu)\b)`)
	// A US state just before a five-digit number makes it a ZIP code.
	reUSStateBefore = lazyRegexp(`(?:\b(?:` + stateCodes + `)|(?i:` + stateNames + `))\.?,?[ \t]*$`)
	// Lines that are not part of an address even when they contain an
	// address word: company names, registration numbers, contact lines.
	reNotAddress = lazyRegexp(`(?i)\b(?:sdn|bhd|bnd|s/b|enterprise|trading|company|co\.?[ \t]*reg|gst|tel|fax|phone|invoice|receipt|cashier|date|total)\b|^\(?[A-Z]{0,3}\d{5,}-?[A-Z]?\)?$`)
	// Where a place name after a postcode stops.
	rePlaceStop = lazyRegexp(`(?i)\b(?:tel|fax|phone|gst|h/p|hp)\b|\d`)
	// State and country words that may follow on their own line.
	reStateLine = lazyRegexp(`(?i)^[ \t(]*(?:(?:johor|kedah|kelantan|melaka|malacca|negeri|sembilan|pahang|perak|perlis|pulau|pinang|penang|sabah|sarawak|selangor|terengganu|kuala|lumpur|kl|putrajaya|labuan|wilayah|persekutuan|malaysia|darul|ehsan|takzim|aman|makmur|naim|khusus|ridzuan|d\.[ \t]*e|w\.[ \t]*p|bahru)[ \t.,)]*)+$`)
)

// maxAddressLines bounds how far an address may extend above its postcode
// line, so that a stray match cannot swallow a whole receipt.
const maxAddressLines = 4

// findAddresses returns US and Malaysian street addresses in d.
func findAddresses(d *document) []Match {
	out := findUSAddresses(d)
	out = append(out, findMalaysianAddresses(d)...)
	return out
}

// findUSAddresses finds a street line, optionally continued by
// "City, ST 12345" on the same or the next line (or by a city line and a
// "State 12345" line), and city-state-ZIP lines on their own. It runs the
// (slow) address expressions only on lines that can hold a match: a street
// word near the end of the line, or a ZIP code.
func findUSAddresses(d *document) []Match {
	text := d.text
	var out []Match
	add := func(start, end int) {
		end = trimRightSet(text, start, end, " \t,")
		out = append(out, Match{Type: ocr.ExtractAddress, Value: joinedValue(text, start, end), Start: start, End: end})
	}
	for li, ln := range d.lines {
		lineText := text[ln.start:ln.end]
		hasZip := hasDigitRun(lineText, 5)
		if hasZip || endsWithStreetWord(lineText) {
			for _, loc := range reStreet().FindAllStringIndex(lineText, -1) {
				start, end := ln.start+loc[0], ln.start+loc[1]
				if !numericBoundaryBefore(text, start) {
					continue
				}
				if !reCityStateZipEnd().MatchString(text[start:end]) {
					end = continueUSAddress(d, li, end)
				}
				add(start, end)
			}
		}
		if hasZip {
			for _, loc := range reCityStateZip().FindAllStringIndex(lineText, -1) {
				if start := ln.start + loc[0]; wordBoundaryBefore(text, start) {
					add(start, ln.start+loc[1])
				}
			}
		}
	}
	return out
}

// streetWords are the street suffixes, directions and unit words: a street
// that ends its line has one of them among the line's last few words.
var streetWords = func() map[string]bool {
	m := map[string]bool{"suite": true, "ste": true, "unit": true, "apt": true}
	for _, w := range strings.Split(streetSuffixes+"|"+directions, "|") {
		m[w] = true
	}
	return m
}()

// endsWithStreetWord reports whether one of the last five words of line is
// in streetWords.
func endsWithStreetWord(line string) bool {
	fields := strings.Fields(line)
	for i := len(fields) - 1; i >= 0 && i >= len(fields)-5; i-- {
		if streetWords[strings.ToLower(strings.Trim(fields[i], ".,#"))] {
			return true
		}
	}
	return false
}

// hasDigitRun reports whether s holds n digits in a row.
func hasDigitRun(s string, n int) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			run++
			if run >= n {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// reCityStateZipEnd() tells a street match that already holds its city.
var reCityStateZipEnd = lazyRegexp(stateZip + `$`)

// continueUSAddress extends a street ending line li at end over the next
// line when it is "City, ST 12345", or over the next two when they are a
// city and "State 12345".
func continueUSAddress(d *document, li, end int) int {
	text := d.text
	ni := d.next(li)
	if ni < 0 {
		return end
	}
	next := d.lines[ni]
	nextText := text[next.start:next.end]
	if loc := reCityStateZip().FindStringIndex(nextText); loc != nil && strings.TrimSpace(nextText[:loc[0]]) == "" {
		return next.start + loc[1]
	}
	if loc := reStateZipLine().FindStringIndex(nextText); loc != nil {
		return next.start + loc[1]
	}
	if ai := d.next(ni); ai >= 0 && reCityLine().MatchString(nextText) {
		after := d.lines[ai]
		if loc := reStateZipLine().FindStringIndex(text[after.start:after.end]); loc != nil {
			return after.start + loc[1]
		}
	}
	return end
}

// findMalaysianAddresses finds addresses that end in a five-digit postcode
// and a place name, "NO.53 55,57 & 59, JALAN SAGU 18, / TAMAN DAYA, /
// 81100 JOHOR BAHRU, / JOHOR.": the lines above the postcode that look like
// an address, the postcode line up to its place name, and a following state
// line. Without a postcode, a block that starts with a house number and a
// street word ("NO.50, JALAN PBS 14/11, / KAWASAN PERINDUSTRIAN ...") is
// taken as far as its lines look like an address.
func findMalaysianAddresses(d *document) []Match {
	text := d.text
	var out []Match
	covered := make([]bool, len(d.lines))
	add := func(first, last, end int) {
		start := d.trimmed(first).start
		end = trimRightSet(text, start, end, " \t,")
		out = append(out, Match{Type: ocr.ExtractAddress, Value: joinedValue(text, start, end), Start: start, End: end})
		for k := first; k <= last; k++ {
			covered[k] = true
		}
	}
	for li := range d.lines {
		if first, last, end, ok := postcodeBlockAt(d, li); ok {
			add(first, last, end)
		}
	}
	for li := 0; li < len(d.lines); li++ {
		if covered[li] {
			continue
		}
		if last, end, ok := streetBlockAt(d, li, covered); ok {
			add(li, last, end)
			li = last
		}
	}
	return out
}

// postcodeBlockAt reports the address block whose postcode is on line li:
// its first and last lines and the byte offset where it ends.
func postcodeBlockAt(d *document, li int) (first, last, end int, ok bool) {
	text := d.text
	line := d.trimmed(li)
	lineText := text[line.start:line.end]
	pc, found := postcodeIn(lineText)
	if !found {
		return 0, 0, 0, false
	}
	// What precedes the postcode on its line must not be a company or
	// contact line ("GST NO: 12345 ...") nor a US state (a ZIP code).
	before := lineText[:pc-5]
	if reNotAddress().MatchString(before) && !reHouseNumber().MatchString(before) || reUSStateBefore().MatchString(before) {
		return 0, 0, 0, false
	}
	first = li
	for k, n := d.prev(li), 1; k >= 0 && n <= maxAddressLines; k, n = d.prev(k), n+1 {
		t := d.trimmed(k)
		if !addressLike(text[t.start:t.end]) {
			break
		}
		first = k
	}
	placeStart := line.start + pc
	rest := text[placeStart:line.end]
	place := rest
	if loc := rePlaceStop().FindStringIndex(place); loc != nil {
		place = place[:loc[0]]
	}
	placeName := strings.Trim(place, " \t,.")
	placeEndsLine := strings.TrimSpace(place) == strings.TrimSpace(rest)
	end = placeStart + len(strings.TrimRight(place, " \t"))
	last = li
	if placeName == "" {
		// The postcode ends its line: the place name is on the next.
		ni := d.next(li)
		if !placeEndsLine || ni < 0 || !isPlaceLine(text, d.trimmed(ni)) {
			return 0, 0, 0, false
		}
		last = ni
		end = d.trimmed(last).end
	}
	if ni := d.next(last); (placeEndsLine || last > li) && ni >= 0 {
		next := d.trimmed(ni)
		if reStateLine().MatchString(text[next.start:next.end]) {
			last = ni
			end = next.end
		}
	}
	// A postcode with nothing address-like around it is a number, not an
	// address.
	firstLine := d.trimmed(first)
	if !reMalaysianAddressWord().MatchString(text[firstLine.start:end]) && !reHouseNumber().MatchString(text[firstLine.start:firstLine.end]) {
		return 0, 0, 0, false
	}
	return first, last, end, true
}

// streetBlockAt reports an address without a postcode starting on line li:
// a house number and a street word, then the lines that look like an
// address, up to maxAddressLines in all.
func streetBlockAt(d *document, li int, covered []bool) (last, end int, ok bool) {
	text := d.text
	line := d.trimmed(li)
	lineText := text[line.start:line.end]
	if !reHouseNumber().MatchString(lineText) || !reStreetWordMY().MatchString(lineText) || reNotAddress().MatchString(lineText) {
		return 0, 0, false
	}
	last, end = li, line.end
	for k, n := d.next(li), 2; k >= 0 && n <= maxAddressLines && !covered[k]; k, n = d.next(k), n+1 {
		t := d.trimmed(k)
		lt := text[t.start:t.end]
		if !addressLike(lt) || reHouseNumber().MatchString(lt) {
			break
		}
		last, end = k, t.end
	}
	return last, end, true
}

// reStreetWordMY() is the street part of a Malaysian address.
var reStreetWordMY = lazyRegexp(`(?i)\b(?:jalan|jln|lorong|lrg|persiaran|lebuh|lebuhraya)\b`)

// postcodeIn finds a Malaysian postcode in a line: five digits standing
// alone (not part of a longer number, a price or a code), followed by a place
// name or by the end of the line. It returns the offset just after the
// postcode.
func postcodeIn(line string) (int, bool) {
	for _, loc := range rePostcode().FindAllStringIndex(line, -1) {
		s, e := loc[0], loc[1]
		if s > 0 && (isAlnum(line[s-1]) || line[s-1] == '.' || line[s-1] == '-' || line[s-1] == '/' || line[s-1] == '#') {
			continue
		}
		if e < len(line) && (isAlnum(line[e]) || line[e] == '.' || line[e] == '-' || line[e] == '/') {
			continue
		}
		rest := strings.TrimLeft(line[e:], " \t,")
		if rest == "" || isLetter(rune(rest[0])) {
			return e, true
		}
	}
	return 0, false
}

// addressLike reports whether a line above a postcode belongs to the
// address: it holds an address word or a house number, or ends with a comma
// (the address goes on), and is not a company or contact line.
func addressLike(line string) bool {
	if line == "" {
		return false
	}
	if reHouseNumber().MatchString(line) {
		return !strings.Contains(strings.ToUpper(line), "SDN")
	}
	if reNotAddress().MatchString(line) {
		return false
	}
	return reMalaysianAddressWord().MatchString(line) || strings.HasSuffix(line, ",")
}

// isPlaceLine reports whether a line is a place name only (letters, spaces
// and punctuation, no digits), as after a postcode that ends its line.
func isPlaceLine(text string, s span) bool {
	line := text[s.start:s.end]
	if line == "" || reNotAddress().MatchString(line) || len(strings.Fields(line)) > 6 {
		return false
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		if !(isLetter(rune(c)) || c == ' ' || c == '\t' || c == ',' || c == '.' || c == '\'' || c == '-') {
			return false
		}
	}
	return true
}

// trimRightSet moves end left past the bytes in cut (never before start).
func trimRightSet(text string, start, end int, cut string) int {
	for end > start && strings.IndexByte(cut, text[end-1]) >= 0 {
		end--
	}
	return end
}
