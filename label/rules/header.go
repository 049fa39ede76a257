package rules

import (
	"regexp"
	"strings"
	"time"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocr/extract"
)

var (
	// reCompany is a business-name suffix or word that marks the merchant
	// row of a header.
	reCompany = regexp.MustCompile(`\bS[DO]N\.? ?BH[DN]\b|\bS/B\b|\bBHD\b|\bBERHAD\b|ENTERPRISES?\b|TRADING\b|\bRESTAURANT\b|\bRESTORAN\b|\bHARDWARE\b|\bSTATIONERY\b|\bMART\b|\bMARKET\b|\bSUPERMARKET\b|\bCAFE\b|\bBAKERY\b|\bKEDAI\b|\bPERNIAGAAN\b|\bSYARIKAT\b|\bRESTAURANTS?\b|\bBOOKS?\b|\bELECTRICAL\b|\bPETRO\w*\b|\bPASAR\b|\bFARMA\w*\b|\bCO\.?\b|\bLTD\b|\bLLC\b|\bINC\.?\b|\bCORP(ORATION)?\b|\bPLT\b|\bHOLDINGS?\b|\bINDUSTRIES\b|\bPHARMACY\b|\bMINI ?MARKET\b|\bGIFT\b|\bGALLERY\b`)
	// reHeaderNoise is header text that is never the merchant.
	reHeaderNoise = regexp.MustCompile(`^\W*(WELCOME|TAX INVOICE|SIMPLIFIED TAX INVOICE|INVOICE|RECEIPT|OFFICIAL RECEIPT|CASH ?BILL|COPY|CUSTOMER COPY|THANK YOU|REF NO|GOODS SOLD)\b|RETURNABLE|REFUNDABLE`)
	// reRegistration is a company registration row (789417-W, (JM0517726),
	// CO. REG 12345-A, ROC NO …).
	reRegistration = regexp.MustCompile(`^\(?(CO\.? ?(REG|NO)\.?|COMPANY ?(REG|NO)\.?|ROC ?(NO)?\.?|REG\.? ?NO\.?|BUSINESS ?REG)?[ :.]*\(?[A-Z]{0,3}[0-9]{4,}[- ]?[A-Z]?\)?\.?$|\bCO\.? ?REG|\bROC\b|\bCOMPANY NO\b|\(\d{5,}-[A-Z]\)`)
	// reAddressStop ends the address block.
	reAddressStop  = regexp.MustCompile(`\bTEL\b|\bTEL[:.]|\bPHONE\b|\bFAX\b|\bH/P\b|\bHP\b|\bGST\b|\bSST\b|\bTAX\b|INVOICE\b|\bRECEIPT\b|\bDATE\b|\bGUEST CHECK\b|\bCARRY OUT\b|\bPAY BY\b|\bPREPAY\b|\bCASHIER\b|\bEMAIL\b|@|\bWWW\.|HTTP|\bBILL\b|\bDOC(UMENT)?\b|\bTABLE\b|\bORDER\b|\bMEMBER\b|WHATSAPP|\bSTORE ?#|\bOPEN\b|\bHOURS\b|\bMON\b|\bDAILY\b|\bCASH\b`)
	reColumnHeader = regexp.MustCompile(`\b(QTY|QUANTITY|DESCRIPTION|ITEM|ITEMS|PRICE|AMOUNT|AMT|U/PRICE|S/PRICE|UNIT)\b`)
)

// headerRows bounds the header block: at most the first dozen rows, and
// never past the items.
const headerRows = 12

// findHeader finds the merchant row(s) and the address rows under them.
func (rc *receipt) findHeader() {
	end := min(headerRows, len(rc.rows), rc.itemsEnd)
	start, stop := -1, -1
	// The merchant is above the first phone, tax id or invoice row: a
	// business name below those is the customer's.
	for i := 0; i < end; i++ {
		if i > 0 && reAddressStop.MatchString(rc.rows[i].text) {
			end = i
			break
		}
	}
	for i := 0; i < end; i++ {
		if reCompany.MatchString(rc.rows[i].text) && !registrationOnly(rc.rows[i].text) && rc.rows[i].amount < 0 {
			start, stop = i, i+1
			break
		}
	}
	if start >= 0 {
		// A name may wrap: "ENTERPRISE (SETIA" / "ALAM) SDN BHD".
		for stop < end && stop-start < 3 && wraps(rc.rows[stop-1].text, rc.rows[stop].text) {
			stop++
		}
		// "AIK HUAT HARDWARE" above "ENTERPRISE (SETIA": a name row
		// that is all letters and directly above one that starts with a
		// suffix.
		if start > 0 && startsWithSuffix(rc.rows[start].text) && plainName(rc.rows[start-1].text) {
			start--
		}
	} else {
		for i := 0; i < end; i++ {
			x := rc.rows[i]
			if len(reLetters.FindAllString(x.text, -1)) > 0 && !reHeaderNoise.MatchString(x.text) &&
				!registrationOnly(x.text) && x.amount < 0 && !hasExtracted(x, "") {
				start, stop = i, i+1
				break
			}
		}
	}
	if start < 0 {
		return
	}
	var ws []entities.ReceiptWord
	for i := start; i < stop; i++ {
		for _, w := range rc.rows[i].words {
			if !reRegToken.MatchString(strings.ToUpper(w.Text)) {
				ws = append(ws, w)
			}
		}
		rc.used[i] = true
	}
	end = min(headerRows, len(rc.rows), rc.itemsEnd)
	rc.setField(label.MerchantName, ws, strings.Join(strings.Fields(wordsText(ws)), " "), 0.8, "business name at the top of the receipt")
	rc.headerEnd = max(rc.headerEnd, stop)

	// The address: the rows under the name, past registration numbers,
	// until a phone, tax id or the receipt's own details.
	var addr []entities.ReceiptWord
	for i, n := stop, 0; i < end && n < 6; i++ {
		x := rc.rows[i]
		if x.amount >= 0 {
			break
		}
		if reTaxID.MatchString(x.text) && len(addr) > 0 {
			break // the address ends at the tax id under it
		}
		if registrationOnly(x.text) || reNotAddress.MatchString(x.text) || reTaxID.MatchString(x.text) || dateOnly(x) ||
			(reCompany.MatchString(x.text) && reSuffixEnd.MatchString(x.text)) {
			continue
		}
		if len(addr) == 0 && !reAddressStart.MatchString(x.text) && i+1 < end && reAddressStart.MatchString(rc.rows[i+1].text) {
			continue // a branch name ("IKEA CHERAS") above the street line
		}
		if len(addr) > 0 && rePostcode.MatchString(wordsText(addr)) && !reDigit.MatchString(x.text) && !reState.MatchString(x.text) {
			break // past the postcode, a row without digits is a branch name
		}
		n++
		cut := len(x.words)
		for j, w := range x.words {
			up := strings.ToUpper(w.Text)
			if reAddressStop.MatchString(up) || (w.ExtractedData != nil && w.ExtractedData.Type != ocr.ExtractAddress) {
				cut = j
				break
			}
		}
		for _, w := range x.words[:cut] {
			if !reRegToken.MatchString(strings.ToUpper(w.Text)) {
				addr = append(addr, w)
			}
		}
		if cut < len(x.words) {
			break
		}
		rc.used[i] = true
		rc.headerEnd = max(rc.headerEnd, i+1)
		if reCountryEnd.MatchString(x.text) {
			break // the country ends an address
		}
	}
	addr = trimAddress(addr)
	if ex := rc.extractedAddress(end); len(ex) > 0 && (rc.p.Country == "US" || len(addr) == 0) {
		addr = ex
	}
	if len(addr) > 0 {
		rc.setField(label.AddressLine, addr, wordsText(addr), 0.75, "the rows under the business name")
	}
}

var (
	// reRegToken is a registration number word: (519537-X), 860671-D,
	// JM0325955-V, SA03711551-P.
	reRegToken = regexp.MustCompile(`^[(\[][A-Z]{0,3}[0-9]{4,}-?[A-Z][)\]][.,]?$|^[A-Z]{0,3}[0-9]{6,}-?[A-Z]\)?[.,]?$|^[(\[]?[0-9]{6,}[)\]]?$`)
	// reTaxID is a tax registration row inside the header (GST NO: …).
	reTaxID = regexp.MustCompile(`\b(GST|SST)\b.*\b(NO|ID|REG)\b|\bGST/TAX NO|\bTAX (ID|NO)\b|^\(?GST\b`)
	// reNotAddress is header text between the name and the address.
	reNotAddress = regexp.MustCompile(`FORMERLY|KNOWN AS|LICENSEE|A MEMBER OF|DIMILIKI|\bCO[-.]? ?R[EF]G|\bBR NO|\bREG\.? NO|COMPANY REG|\bROC\b|\(?CO\.? ?NO\b|^\(.*\)$`)
)

var (
	// reAddressStart is what a first address line holds: a number or a
	// street word.
	reAddressStart = regexp.MustCompile(`\d|\b(NO|LOT|JALAN|JLN|BLK|BLOCK|UNIT|LEVEL|TINGKAT|FLOOR|LORONG|PERSIARAN|KM|BATU|WISMA|PLAZA|MENARA|KOMPLEKS)\b`)
	rePostcode     = regexp.MustCompile(`\b\d{5}\b`)
	reDigit        = regexp.MustCompile(`\d`)
	reState        = regexp.MustCompile(`\b(JOHOR|SELANGOR|KUALA LUMPUR|PAHANG|PERAK|KEDAH|KELANTAN|TERENGGANU|MELAKA|MALACCA|NEGERI SEMBILAN|PULAU PINANG|PENANG|SABAH|SARAWAK|PERLIS|PUTRAJAYA|LABUAN|DARUL|EHSAN|TAKZIM|MALAYSIA|W\.? ?P\.?)\b`)
	reCountryEnd   = regexp.MustCompile(`\bMALAYSIA\.?$`)
	// reAddressTail is a word that never ends an address: a label whose
	// value OCR left on the row, or punctuation.
	reAddressTail = regexp.MustCompile(`^([:*#.\-]+|T:?|TEL[:.]?|TELEPHONE:?|PHONE:?|FAX:?|H/P:?|\d{2,3}-?)$`)
)

// trimAddress drops words that trail an address without belonging to it
// (a "TEL:" whose number is on the next row, a lone ":").
func trimAddress(ws []entities.ReceiptWord) []entities.ReceiptWord {
	for len(ws) > 0 && reAddressTail.MatchString(strings.ToUpper(ws[len(ws)-1].Text)) {
		ws = ws[:len(ws)-1]
	}
	return ws
}

// registrationOnly tells a row that is only a registration number.
func registrationOnly(s string) bool {
	if reRegistration.MatchString(s) && !reCompany.MatchString(s) {
		return true
	}
	for _, f := range strings.Fields(s) {
		if !reRegToken.MatchString(f) {
			return false
		}
	}
	return true
}

// dateOnly tells a row that holds only a date and a time.
func dateOnly(x row) bool {
	for _, w := range x.words {
		up := strings.ToUpper(w.Text)
		if !(w.ExtractedData != nil && w.ExtractedData.Type == ocr.ExtractDate) && !reTimeWord.MatchString(up) && !reMeridiem.MatchString(up) {
			return false
		}
	}
	return len(x.words) > 0
}

// extractedAddress is the header's words the OCR stage found to be a
// street address (its US rules are stricter than the header heuristic).
func (rc *receipt) extractedAddress(end int) []entities.ReceiptWord {
	var ws []entities.ReceiptWord
	value := ""
	for i := 0; i < end; i++ {
		for _, w := range rc.rows[i].words {
			e := w.ExtractedData
			if e == nil || e.Type != ocr.ExtractAddress || (value != "" && e.Value != value) {
				continue
			}
			value = e.Value
			ws = append(ws, w)
			rc.used[i] = true
		}
	}
	return ws
}

// wraps tells whether row b continues the name on row a.
func wraps(a, b string) bool {
	if strings.Count(a, "(") > strings.Count(a, ")") || strings.HasSuffix(a, "&") || strings.HasSuffix(a, " AND") || strings.HasSuffix(a, "-") {
		return true
	}
	return startsWithSuffix(b) && !reCompany.MatchString(strings.TrimSpace(a[max(0, len(a)-7):]))
}

// reSuffixEnd is a row that ends with a company suffix: another company
// (a former name, a licensor), not an address line.
var reSuffixEnd = regexp.MustCompile(`\b(S[DO]N\.? ?BH[DN]\.?|BHD\.?|BERHAD|S/B|LTD\.?|LLC|INC\.?)$`)

var reSuffixStart = regexp.MustCompile(`^(SDN\.? ?BHD|S/B|BHD|BERHAD|ENTERPRISES?|TRADING|PLT|LTD|LLC|INC|CO\.|\(M\))`)

func startsWithSuffix(s string) bool { return reSuffixStart.MatchString(s) }

var rePlainName = regexp.MustCompile(`^[A-Z&'. ]{3,}$`)

func plainName(s string) bool { return rePlainName.MatchString(s) && !reHeaderNoise.MatchString(s) }

func wordsText(ws []entities.ReceiptWord) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.Text
	}
	return strings.Join(parts, " ")
}

// hasExtracted tells whether a row has a word with extracted data of the
// type (any type for "").
func hasExtracted(x row, typ string) bool {
	for _, w := range x.words {
		if w.ExtractedData != nil && (typ == "" || w.ExtractedData.Type == typ) {
			return true
		}
	}
	return false
}

var (
	reDateShape  = regexp.MustCompile(`\d{1,4}[/.\-]\d{1,2}[/.\-]\d{2,4}|\d{1,2}[ \-]?(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]*[ \-,]*\d{2,4}|(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]*[ \-]?\d{1,2}|^\d{1,2}[,.]?$|^\d{4},?$|^(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)`)
	reTimeWord   = regexp.MustCompile(`^(\d{1,2}):(\d{2})(?::(\d{2}))?(AM|PM)?$`)
	reMeridiem   = regexp.MustCompile(`^(AM|PM|A\.M\.|P\.M\.)$`)
	reDateKeyRow = regexp.MustCompile(`\bDATE\b|\bTARIKH\b`)
)

// findDate takes the date the OCR stage found (extracted_data), on a DATE
// row when there are several; a printed date that cannot exist is a doubt.
func (rc *receipt) findDate() {
	type cand struct {
		row   int
		words []entities.ReceiptWord
		value string
	}
	var cands []cand
	for i, x := range rc.rows {
		var ws []entities.ReceiptWord
		value := ""
		for _, w := range x.words {
			e := w.ExtractedData
			if e == nil || e.Type != ocr.ExtractDate || !reDateShape.MatchString(strings.ToUpper(w.Text)) {
				if len(ws) > 0 {
					break
				}
				continue
			}
			if value != "" && e.Value != value {
				break
			}
			value = e.Value
			ws = append(ws, w)
		}
		if len(ws) > 0 {
			cands = append(cands, cand{row: i, words: ws, value: value})
		}
	}
	best := -1
	for k, c := range cands {
		if best < 0 || (reDateKeyRow.MatchString(rc.rows[c.row].text) && !reDateKeyRow.MatchString(rc.rows[cands[best].row].text)) {
			best = k
		}
	}
	if best >= 0 {
		c := cands[best]
		iso := c.value
		if len(iso) >= 10 {
			iso = iso[:10]
		}
		// The printed date wins over the extracted timestamp, which an
		// OCR worker may have shifted to UTC across midnight.
		if _, printed, ok := rc.dateIn(strings.ToUpper(wordsText(c.words))); ok {
			iso = printed
		}
		d, err := time.Parse("2006-01-02", iso)
		switch {
		case err != nil:
			rc.doubt(label.Date, "%q does not read as a date", wordsText(c.words))
		case d.Year() < 1990 || d.After(time.Now().AddDate(1, 0, 0)):
			rc.doubt(label.Date, "%s is an unlikely receipt date", iso)
			rc.setField(label.Date, c.words, iso, 0.5, "a printed date")
		default:
			rc.setField(label.Date, c.words, iso, 0.85, "a printed date")
		}
		if c.row < rc.itemsEnd && c.row < headerRows {
			rc.headerEnd = max(rc.headerEnd, c.row+1)
		}
		return
	}
	// The OCR stage found none: read the rows themselves, where OCR glued
	// a time on ("22/12/201714:03") or split a date over words ("05",
	// "Mar", "201818:24").
	var bad string
	for i, x := range rc.rows {
		var b strings.Builder
		spans := make([][2]int, len(x.words))
		for j, w := range x.words {
			if j > 0 {
				b.WriteByte(' ')
			}
			spans[j][0] = b.Len()
			b.WriteString(strings.ToUpper(w.Text))
			spans[j][1] = b.Len()
		}
		text := b.String()
		for at := 0; at < len(text); at++ {
			startsWord := at == 0 || text[at-1] == ' '
			if !(isDigit(text[at]) && (at == 0 || !isDigit(text[at-1]))) && !startsWord {
				continue
			}
			printed, iso, ok := rc.dateIn(text[at:])
			if printed == "" {
				continue
			}
			if !ok {
				if bad == "" {
					bad = printed
				}
				continue
			}
			var ws []entities.ReceiptWord
			for j, sp := range spans {
				if sp[1] > at && sp[0] < at+len(printed) {
					ws = append(ws, x.words[j])
				}
			}
			rc.setField(label.Date, ws, iso, 0.7, "a printed date")
			rc.p.Fields[label.Date] = withText(rc.p.Fields[label.Date], printed)
			if i < rc.itemsEnd && i < headerRows {
				rc.headerEnd = max(rc.headerEnd, i+1)
			}
			return
		}
	}
	// Nothing found: a printed date that cannot exist is worth saying.
	if bad != "" {
		rc.doubt(label.Date, "%q is not a real date", bad)
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func withText(f entities.SummaryField, text string) entities.SummaryField {
	f.Text = text
	return f
}

var (
	reNumDate    = regexp.MustCompile(`^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})`)
	reMonthDate  = regexp.MustCompile(`^(\d{1,2}) ?[\-]?(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]* ?[\-,]? ?(\d{4}|\d{2})`)
	reMonthFirst = regexp.MustCompile(`^(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]*\.? ?(\d{1,2}),? ?(\d{4})`)
	reISODate    = regexp.MustCompile(`^(20\d{2})[/.\-](\d{1,2})[/.\-](\d{1,2})`)
	months       = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
)

// dateIn finds a date in one word: the printed text, its ISO form, and
// whether it is a real calendar date. Numeric dates are day-first on a
// day-first receipt (or when the first part cannot be a month).
func (rc *receipt) dateIn(s string) (text, iso string, ok bool) {
	var y, m, d int
	switch {
	case reISODate.MatchString(s):
		g := reISODate.FindStringSubmatch(s)
		text, y, m, d = g[0], atoi(g[1]), atoi(g[2]), atoi(g[3])
	case reMonthFirst.MatchString(s):
		g := reMonthFirst.FindStringSubmatch(s)
		text, m, d, y = g[0], months[g[1]], atoi(g[2]), atoi(g[3])
	case reMonthDate.MatchString(s):
		g := reMonthDate.FindStringSubmatch(s)
		text, d, m, y = g[0], atoi(g[1]), months[g[2]], atoi(g[3])
	case reNumDate.MatchString(s):
		g := reNumDate.FindStringSubmatch(s)
		a, b := atoi(g[1]), atoi(g[2])
		text, y = g[0], atoi(g[3])
		switch {
		case rc.dayFirst || a > 12:
			d, m = a, b
		default:
			m, d = a, b
		}
	default:
		return "", "", false
	}
	if y < 100 {
		y += 2000
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if m < 1 || m > 12 || t.Day() != d || y < 1990 || t.After(time.Now().AddDate(1, 0, 0)) {
		return text, "", false
	}
	return text, t.Format("2006-01-02"), true
}

// findTime takes the first clock time, on the date's row when there is
// one, as HH:MM[:SS] in 24 hours.
func (rc *receipt) findTime() {
	dateRow := -1
	if f, ok := rc.p.Fields[label.Date]; ok && len(f.Words) > 0 {
		dateRow = rc.rowOf(f.Words[0])
	}
	var found []entities.ReceiptWord
	value := ""
	for _, order := range [][]int{rc.rowsNear(dateRow), rc.allRows()} {
		for _, i := range order {
			x := rc.rows[i]
			for j, w := range x.words {
				m := reTimeWord.FindStringSubmatch(strings.ToUpper(w.Text))
				if m == nil {
					continue
				}
				h, mi := atoi(m[1]), atoi(m[2])
				mer := m[4]
				ws := []entities.ReceiptWord{w}
				if mer == "" && j+1 < len(x.words) && reMeridiem.MatchString(strings.ToUpper(x.words[j+1].Text)) {
					mer = strings.ReplaceAll(strings.ToUpper(x.words[j+1].Text), ".", "")
					ws = append(ws, x.words[j+1])
				}
				if mer == "PM" && h < 12 {
					h += 12
				}
				if mer == "AM" && h == 12 {
					h = 0
				}
				if h > 23 || mi > 59 {
					continue
				}
				value = twoDigits(h) + ":" + twoDigits(mi)
				if m[3] != "" {
					value += ":" + m[3]
				}
				found = ws
				break
			}
			if found != nil {
				break
			}
		}
		if found != nil {
			break
		}
	}
	if found != nil {
		rc.setField(label.Time, found, value, 0.8, "a printed clock time")
	}
}

func (rc *receipt) rowsNear(i int) []int {
	if i < 0 {
		return nil
	}
	var out []int
	for _, j := range []int{i, i + 1, i - 1} {
		if j >= 0 && j < len(rc.rows) {
			out = append(out, j)
		}
	}
	return out
}

func (rc *receipt) allRows() []int {
	out := make([]int, len(rc.rows))
	for i := range out {
		out[i] = i
	}
	return out
}

func (rc *receipt) rowOf(ref entities.WordRef) int {
	for i, x := range rc.rows {
		for _, w := range x.words {
			if w.LineID == ref[0] && w.WordID == ref[1] {
				return i
			}
		}
	}
	return -1
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func twoDigits(n int) string { return string([]byte{byte('0' + n/10), byte('0' + n%10)}) }

var reFax = regexp.MustCompile(`\bFAX\b`)

// findPhone takes the first phone number the OCR stage found that is not
// a fax, preferring the header.
func (rc *receipt) findPhone() {
	for i, x := range rc.rows {
		var ws []entities.ReceiptWord
		value := ""
		for j, w := range x.words {
			e := w.ExtractedData
			if e == nil || e.Type != ocr.ExtractPhone || (value != "" && e.Value != value) {
				if len(ws) > 0 {
					break
				}
				continue
			}
			if value == "" && j > 0 && reFax.MatchString(strings.ToUpper(wordsText(x.words[max(0, j-2):j]))) {
				continue
			}
			value = e.Value
			ws = append(ws, w)
		}
		if len(ws) == 0 {
			continue
		}
		if e164, ok := extract.NormalizePhone(value); ok {
			value = e164
		}
		rc.setField(label.PhoneNumber, ws, value, 0.8, "a printed phone number")
		if i < rc.itemsEnd && i < headerRows {
			rc.headerEnd = max(rc.headerEnd, i+1)
		}
		return
	}
}

// findWebsite labels the first web address.
func (rc *receipt) findWebsite() {
	for _, x := range rc.rows {
		for _, w := range x.words {
			if e := w.ExtractedData; e != nil && e.Type == ocr.ExtractURL {
				rc.setField(label.Website, []entities.ReceiptWord{w}, e.Value, 0.8, "a printed web address")
				return
			}
		}
	}
}

var (
	rePayWord = regexp.MustCompile(`^(CASH|VISA|MASTERCARD|MASTER|MC|AMEX|AMERICAN|DEBIT|CREDIT|CARD|EFTPOS|DISCOVER|E-?WALLET|TNG|BOOST|GRABPAY|UNIONPAY|JCB|MAESTRO|INTERAC|CHECK|CHEQUE|APPLE|GOOGLE|PAY)$`)
	reLast4   = regexp.MustCompile(`(?:[X*#•]{2,}[ -]?)+(\d{4})\b|\b(?:VISA|MASTERCARD|AMEX|DISCOVER|DEBIT|CARD)\s*(?:#|NO\.?|ENDING(?: IN)?)?\s*(\d{4})\b`)
)

// payNames normalizes payment words.
var payNames = map[string]string{"MASTER": "MASTERCARD", "MC": "MASTERCARD", "AMERICAN": "AMEX", "CARD": "CARD",
	"EWALLET": "E-WALLET", "E-WALLET": "E-WALLET", "CHEQUE": "CHECK"}

// findPayment labels how the receipt was paid (the tender rows below the
// items) and the card's last four digits.
func (rc *receipt) findPayment() {
	var best []entities.ReceiptWord
	bestMethod, bestRank := "", -1
	for i := rc.itemsEnd; i < rc.summaryFrom && i < len(rc.rows); i++ {
		x := rc.rows[i]
		var ws []entities.ReceiptWord
		for _, w := range x.words {
			up := strings.Trim(strings.ToUpper(w.Text), ":.,")
			if rePayWord.MatchString(up) {
				ws = append(ws, w)
			}
		}
		if len(ws) == 0 || (x.amount < 0 && !reLast4.MatchString(x.text)) {
			continue
		}
		method := strings.Trim(strings.ToUpper(ws[0].Text), ":.,")
		if n, ok := payNames[method]; ok {
			method = n
		}
		if method == "CREDIT" || method == "DEBIT" {
			method += " CARD"
		}
		rank := 3 // a card brand
		switch method {
		case "CARD", "PAY":
			rank = 0
		case "CREDIT CARD", "DEBIT CARD":
			rank = 1
		case "CASH":
			rank = 2
		}
		if rank > bestRank {
			best, bestMethod, bestRank = ws, method, rank
		}
	}
	if best != nil {
		rc.setField(label.PaymentMethod, best, bestMethod, 0.75, "a payment row")
	}
	for _, x := range rc.rows {
		if m := reLast4.FindStringSubmatch(x.text); m != nil {
			rc.p.CardLast4 = m[1] + m[2]
			break
		}
	}
}
