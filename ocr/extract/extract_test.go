package extract

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tallyhq/tally/ocr"
)

// found is a match as a test states it: the type, the matched text and the
// value.
type found struct{ typ, text, value string }

func findAsFound(text string) []found {
	var out []found
	for _, m := range Find(text) {
		out = append(out, found{m.Type, text[m.Start:m.End], m.Value})
	}
	return out
}

// only keeps the matches of one type.
func only(typ string, fs []found) []found {
	var out []found
	for _, f := range fs {
		if f.typ == typ {
			out = append(out, f)
		}
	}
	return out
}

const (
	date    = ocr.ExtractDate
	phone   = ocr.ExtractPhone
	address = ocr.ExtractAddress
	url     = ocr.ExtractURL
)

// Real receipt strings, from the portfolio fixtures and the SROIE
// transcripts, plus the usual forms of each type.
func TestFindDates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want []found
	}{
		{"sroie day-first with time", "25/12/2018 8:13:39 PM",
			[]found{{date, "25/12/2018 8:13:39 PM", "2018-12-25 20:13:39 +0000"}}},
		{"ambiguous reads month-first by default", "DATE: 11/01/2019",
			[]found{{date, "11/01/2019", "2019-11-01 12:00:00 +0000"}}},
		{"ambiguous reads day-first on a Malaysian receipt", "SOON HUAT MACHINERY SDN BHD\nDATE: 11/01/2019",
			[]found{{date, "11/01/2019", "2019-01-11 12:00:00 +0000"}}},
		{"ambiguous reads day-first after an unambiguous day-first date", "BILL DATE : 09/01/2019\nCLOSED: 25/12/2018",
			[]found{{date, "09/01/2019", "2019-01-09 12:00:00 +0000"}, {date, "25/12/2018", "2018-12-25 12:00:00 +0000"}}},
		{"two-digit year with dashes", "MR D.I.Y. (M) SDN BHD\n12-01-19 21:13 SH01 ZK09",
			[]found{{date, "12-01-19 21:13", "2019-01-12 21:13:00 +0000"}}},
		{"ISO with PM glued to a 24-hour time", "2017-12-28 22:17PM",
			[]found{{date, "2017-12-28 22:17PM", "2017-12-28 22:17:00 +0000"}}},
		{"month-first by validity", ": 12/28/2017 10:17:32 PM",
			[]found{{date, "12/28/2017 10:17:32 PM", "2017-12-28 22:17:32 +0000"}}},
		{"spaced time", "18-11-18 13 : 58 SH01 ZI53",
			[]found{{date, "18-11-18 13 : 58", "2018-11-18 13:58:00 +0000"}}},
		{"date inside a line", "ORD #50 -REG #19- 18/01/2018 10:27:03",
			[]found{{date, "18/01/2018 10:27:03", "2018-01-18 10:27:03 +0000"}}},
		{"time on the next line (bar receipt)", "Oct 21, 2022\n6:04 PM",
			[]found{{date, "Oct 21, 2022\n6:04 PM", "2022-10-21 18:04:00 +0000"}}},
		{"time after a blank line (Tesseract text)", "Oct 21, 2022\n\n6:04 PM",
			[]found{{date, "Oct 21, 2022\n\n6:04 PM", "2022-10-21 18:04:00 +0000"}}},
		{"time too far below", "Oct 21, 2022\n\n\n\n6:04 PM",
			[]found{{date, "Oct 21, 2022", "2022-10-21 12:00:00 +0000"}}},
		{"time after other text on the next line", "Oct 21, 2022\nTable 5 6:04 PM",
			[]found{{date, "Oct 21, 2022", "2022-10-21 12:00:00 +0000"}}},
		{"US two-digit year (Vons scan)", "Credit Purchase 03/19/24 13:29",
			[]found{{date, "03/19/24 13:29", "2024-03-19 13:29:00 +0000"}}},
		{"Target", "02/16/2025 12:23 PM",
			[]found{{date, "02/16/2025 12:23 PM", "2025-02-16 12:23:00 +0000"}}},
		{"midnight", "01/02/2024 12:05 AM",
			[]found{{date, "01/02/2024 12:05 AM", "2024-01-02 00:05:00 +0000"}}},
		{"day month-name year", "05 JAN 2024",
			[]found{{date, "05 JAN 2024", "2024-01-05 12:00:00 +0000"}}},
		{"day-month-yy", "Printed 5-Jan-24",
			[]found{{date, "5-Jan-24", "2024-01-05 12:00:00 +0000"}}},
		{"long month name", "January 5 2024",
			[]found{{date, "January 5 2024", "2024-01-05 12:00:00 +0000"}}},
		{"ordinal", "Sept. 3rd, 2024",
			[]found{{date, "Sept. 3rd, 2024", "2024-09-03 12:00:00 +0000"}}},
		{"dotted", "31.12.2023",
			[]found{{date, "31.12.2023", "2023-12-31 12:00:00 +0000"}}},
		{"leap day", "02/29/2024",
			[]found{{date, "02/29/2024", "2024-02-29 12:00:00 +0000"}}},
		{"impossible time is left out", "12/25/2018 99:99",
			[]found{{date, "12/25/2018", "2018-12-25 12:00:00 +0000"}}},
		{"month 13", "13/13/2018", nil},
		{"day 32", "32/01/2018", nil},
		{"ISO month 13", "2018-13-01", nil},
		{"February 30", "02/30/2020", nil},
		{"not a leap year", "02/29/2023", nil},
		{"mixed separators", "12/25-2018", nil},
		{"price", "TOTAL 12.50", nil},
		{"prices in a row", "9.000 0.00 9.00", nil},
		{"time alone", "10:43AM", nil},
		{"receipt number", "RECEIPT NO. : CS1801/26874", nil},
		{"invoice number", "INVOICE NO : 18287/102/T0049", nil},
		{"item code", "WA03 - 24/240", nil},
		{"street number", "NO.3, JALAN SS21/39,47400 PETALING JAYA", nil},
		{"price-like", "1.25.99", nil},
		{"long reference", "REC#2-5047-2810-0172-7579-9", nil},
		{"year out of range", "01/01/1890", nil},
		{"part of a longer number", "112/25/20189", nil},
		{"month name without year", "Oct 21", nil},
		{"word that looks like a month", "2 DECAF 10.99", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := only(date, findAsFound(tt.text))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Find(%q) dates = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestFindPhones(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want []string // matched text; the value is the same, blanks collapsed
	}{
		{"parentheses (Vons)", "Main: (805) 497-1921", []string{"(805) 497-1921"}},
		{"dashes, toll-free (Vons)", "877-276-9637 or Vons.com/foru", []string{"877-276-9637"}},
		{"after a dash (Target)", "- 818-661-2631", []string{"818-661-2631"}},
		{"dots", "805.497.1921", []string{"805.497.1921"}},
		{"spaces", "CALL US 805 497 1921", []string{"805 497 1921"}},
		{"country code", "+1 (212) 555-0142", []string{"+1 (212) 555-0142"}},
		{"leading 1", "1-800-555-1212", []string{"1-800-555-1212"}},
		{"Malaysian glued to label", "TEL:07-3507405", []string{"07-3507405"}},
		{"Malaysian with label", "TEL 07-3523888", []string{"07-3523888"}},
		{"Malaysian two numbers", "TEL : 07-5547360 / 016-7993391", []string{"07-5547360", "016-7993391"}},
		{"Malaysian spaced dashes", "TEL: 012 - 6651783 FAX: 03 - 33623608", []string{"012 - 6651783", "03 - 33623608"}},
		{"Malaysian two dashes", "TEL NO. 03-4162-2318", []string{"03-4162-2318"}},
		{"Malaysian tel/fax", "TEL/FAX : 03-51213881", []string{"03-51213881"}},
		{"Malaysian without label", "03-3279 1851,", []string{"03-3279 1851"}},
		{"Malaysian mobile in a name line", ": ESWARAN 012-6369400", []string{"012-6369400"}},
		{"international", "+60 3-7726 8688", []string{"+60 3-7726 8688"}},
		{"label with seven digits", "PHONE 5551234", []string{"5551234"}},
		{"bare ten digits are a product code", "6827436007 PURE LIFE WATER", nil},
		{"reference and auth numbers", "REF: 682912450610 AUTH: 00982827", nil},
		{"masked card", "CARD # ************5061", nil},
		{"card number", "4111 1111 1111 1111", nil},
		{"card number 2", "5555 5555 5555 4444", nil},
		{"GST number", "GST NO: 0010 9010 5344", nil},
		{"user id", "User ID: 7495 2719 0982", nil},
		{"bill number", "CASH BILL : 01-143008", nil},
		{"receipt reference", "REC#2-5047-2810-0172-7579-9", nil},
		{"AID", "AID A0000000041010", nil},
		{"TVR", "TVR 0000008001", nil},
		{"date and time", "12-01-19 21:13", nil},
		{"ISO date", "2022-10-21", nil},
		{"EAN", "9556939040116", nil},
		{"invoice", "INV# 003281900229170", nil},
		{"loyalty card", "6018840126306675", nil},
		{"area code 1xx", "(123) 456-7890", nil},
		{"price", "TOTAL 1,234.56", nil},
		{"tax line", "T = CA TAX 9.50000 on $12.18", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var want []found
			for _, w := range tt.want {
				want = append(want, found{phone, w, strings.Join(strings.Fields(w), " ")})
			}
			got := only(phone, findAsFound(tt.text))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Find(%q) phones = %q, want %q", tt.text, got, want)
			}
		})
	}
}

func TestFindURLs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want []found
	}{
		{"www (Vons)", "Visit www.VONS.COM", []found{{url, "www.VONS.COM", "http://www.VONS.COM"}}},
		{"bare with path (Vons)", "877-276-9637 or Vons.com/foru", []found{{url, "Vons.com/foru", "http://Vons.com/foru"}}},
		{"bare (Target)", "informtarget.com", []found{{url, "informtarget.com", "http://informtarget.com"}}},
		{"country domain (SROIE)", "WWW.MCDFEEDBACK.COM.MY", []found{{url, "WWW.MCDFEEDBACK.COM.MY", "http://WWW.MCDFEEDBACK.COM.MY"}}},
		{"scheme, sentence dot", "Survey at https://example.com/r?id=5.", []found{{url, "https://example.com/r?id=5", "https://example.com/r?id=5"}}},
		{"e-mail", "SOONHUAT2000@HOTMAIL.COM", nil},
		{"e-mail with a dotted name", "jane.co@shop.com", nil},
		{"sentence", "THANK YOU.COME AGAIN", nil},
		{"initials", "MR D.I.Y. (M) SDN BHD", nil},
		{"registration", "(CO.REG : 933109-X)", nil},
		{"price", "TOTAL 3.99", nil},
		{"file name", "report.txt", nil},
		{"one-letter name", "A.US", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := only(url, findAsFound(tt.text))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Find(%q) urls = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestFindAddresses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want []string // values
	}{
		{"bar receipt: street and city lines", "614 Gravier LLC\n614 Gravier Street\nNew Orleans, LA 70130\nTicket: #50",
			[]string{"614 Gravier Street New Orleans, LA 70130"}},
		{"Vons: city without comma", "Main: (805) 497-1921\n2725 Agoura Road\nWESTLAKE CA 91360\nYOUR CASHIER TODAY WAS SELF",
			[]string{"2725 Agoura Road WESTLAKE CA 91360"}},
		{"Target: city line then state name", "30740 RuGsell Ranch Rd\nWestlake Village.\nCalifornia 91362 • 4063",
			[]string{"30740 RuGsell Ranch Rd Westlake Village. California 91362 • 4063"}},
		{"one line with direction and ZIP+4", "123 N Main St, Springfield, IL 62701-1234",
			[]string{"123 N Main St, Springfield, IL 62701-1234"}},
		{"suite", "500 W Madison St. Suite 1000\nChicago, IL 60661",
			[]string{"500 W Madison St. Suite 1000 Chicago, IL 60661"}},
		{"direction after suffix", "1600 Pennsylvania Ave NW\nWashington, DC 20500",
			[]string{"1600 Pennsylvania Ave NW Washington, DC 20500"}},
		{"street alone", "2725 Agoura Road\nTHANK YOU", []string{"2725 Agoura Road"}},
		{"city line alone", "New Orleans, LA 70130", []string{"New Orleans, LA 70130"}},
		{"SROIE 000: state line after postcode", "789417-W\nNO.53 55,57 & 59, JALAN SAGU 18,\nTAMAN DAYA,\n81100 JOHOR BAHRU,\nJOHOR.\nDOCUMENT NO : TD01167104",
			[]string{"NO.53 55,57 & 59, JALAN SAGU 18, TAMAN DAYA, 81100 JOHOR BAHRU, JOHOR."}},
		{"SROIE 016: postcode ends its line", "LIGHTROOM GALLERY SDN BHD\nNO: 28, JALAN ASTANA 1C,\nBANDAR BUKIT RAJA, 41050\nKLANG SELANGOR D.E, MALAYSIA\nROC NO. : (1072825-A)",
			[]string{"NO: 28, JALAN ASTANA 1C, BANDAR BUKIT RAJA, 41050 KLANG SELANGOR D.E, MALAYSIA"}},
		{"blank line inside (Tesseract text)", "No: 28, JALAN ASTANA 1C,\nBANDAR BUKIT RAJA, 41050\n\nKLANG SELANGOR D.E, MALAYSIA",
			[]string{"No: 28, JALAN ASTANA 1C, BANDAR BUKIT RAJA, 41050 KLANG SELANGOR D.E, MALAYSIA"}},
		{"SROIE 009: postcode after a comma", "LICENSEE OF MCDONALD'S\nLEVEL 6, BANGUNAN TH, DAMANSARA UPTOWN3\nNO.3, JALAN SS21/39,47400 PETALING JAYA\nSELANGOR\n(GST ID NO: 000504664064)",
			[]string{"LEVEL 6, BANGUNAN TH, DAMANSARA UPTOWN3 NO.3, JALAN SS21/39,47400 PETALING JAYA SELANGOR"}},
		{"SROIE 014: stops before the registration number", "ASIA MART\n(SA0264195-T)\nNO.23 BATU 10, TAMAN SENTOSA,\nJALAN KAPAR, 42200 KLANG, SELANGOR.\nGST ID : 001609584640",
			[]string{"NO.23 BATU 10, TAMAN SENTOSA, JALAN KAPAR, 42200 KLANG, SELANGOR."}},
		{"postcode line with a phone", "NO. 5, JALAN MAJU,\n47000 SUNGAI BULOH, SELANGOR TEL: 03-6156 1234",
			[]string{"NO. 5, JALAN MAJU, 47000 SUNGAI BULOH, SELANGOR"}},
		{"SROIE 029: no postcode", "C W KHOO HARDWARE SDN BHD\nNO.50 , JALAN PBS 14/11 ,\nKAWASAN PERINDUSTRIAN BUKIT SERDANG,\nTEL : 03-89410243",
			[]string{"NO.50 , JALAN PBS 14/11 , KAWASAN PERINDUSTRIAN BUKIT SERDANG"}},
		{"US street with a Malaysian address word, then a word line", "1 Plaza Dr\nAustin, TX 78701\nTHANK YOU",
			[]string{"1 Plaza Dr Austin, TX 78701"}},
		{"prices above a five-digit code", "3.50\n8,99\n12345 COKE ZERO", nil},
		{"drink, not a street", "2 DIET DR PEPPER 3.99", nil},
		{"item ending in a price", "1 CHICKEN WAY 4.99", nil},
		{"store line", "Store 3135 Dir Tomas de la Cruz", nil},
		{"company", "614 Gravier LLC", nil},
		{"item code alone", "88888", nil},
		{"five digits after a label", "GST NO: 00108 TAMAN", nil},
		{"total", "TOTAL 12345", nil},
		{"company line with TAMAN", "BOOK TA .K(TAMAN DAYA) SDN BND", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, f := range only(address, findAsFound(tt.text)) {
				got = append(got, f.value)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Find(%q) addresses = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestFindMixedLine(t *testing.T) {
	t.Parallel()
	text := "TEL: 07-8263254 FAX: 07-8266888\n23-01-2019 13:14:15 PM, PRINT BY: ROOT\n877-276-9637 or Vons.com/foru"
	want := []found{
		{phone, "07-8263254", "07-8263254"},
		{phone, "07-8266888", "07-8266888"},
		{date, "23-01-2019 13:14:15 PM", "2019-01-23 13:14:15 +0000"},
		{phone, "877-276-9637", "877-276-9637"},
		{url, "Vons.com/foru", "http://Vons.com/foru"},
	}
	if got := findAsFound(text); !reflect.DeepEqual(got, want) {
		t.Errorf("Find = %q, want %q", got, want)
	}
	if got := Find(""); len(got) != 0 {
		t.Errorf("Find(\"\") = %v, want none", got)
	}
}

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		want     string
		ok       bool
		tollFree bool
	}{
		{"(805) 497-1921", "+18054971921", true, false},
		{"805.497.1921", "+18054971921", true, false},
		{"805 497 1921", "+18054971921", true, false},
		{"+1 805-497-1921", "+18054971921", true, false},
		{"1-805-497-1921", "+18054971921", true, false},
		{"+1 (877) 276-9637", "+18772769637", true, true},
		{"877-276-9637", "+18772769637", true, true},
		{"1-800-555-1212", "+18005551212", true, true},
		{"833 555 0100", "+18335550100", true, true},
		{" 888-555-0100 ", "+18885550100", true, true},
		{"855-555-0100", "+18555550100", true, true},
		{"844-555-0100", "+18445550100", true, true},
		{"866-555-0100", "+18665550100", true, true},
		{"899-555-0100", "+18995550100", true, false},
		{"497-1921", "", false, false},
		{"(123) 456-7890", "", false, false},
		{"(023) 456-7890", "", false, false},
		{"805-097-1921", "", false, false},
		{"2-805-497-1921", "", false, false},
		{"+44 20 7946 0958", "", false, false},
		{"+60 3-7726 8688", "", false, false},
		{"805-497-19211", "", false, false},
		{"805-497-1921 x12", "", false, false},
		{"", "", false, false},
		{"+", "", false, false},
	}
	for _, tt := range tests {
		got, ok := NormalizePhone(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if ok && IsTollFree(got) != tt.tollFree {
			t.Errorf("IsTollFree(%q) = %v, want %v", got, !tt.tollFree, tt.tollFree)
		}
	}
	for _, s := range []string{"", "+1800", "800-555-1212", "+448005551212", "+1800555121"} {
		if IsTollFree(s) {
			t.Errorf("IsTollFree(%q) = true, want false", s)
		}
	}
}

// line builds an OCR line whose words are the space-separated parts of
// text, with distinct geometry so that the test can see it is untouched.
func line(text string) ocr.Line {
	l := ocr.Line{Text: text, Geometry: ocr.Geometry{Confidence: 0.9}}
	for i, w := range strings.Fields(text) {
		l.Words = append(l.Words, ocr.Word{
			Text:     w,
			Geometry: ocr.Geometry{BoundingBox: ocr.BoundingBox{X: float64(i) / 10, Width: 0.05}, Confidence: 0.8},
			Letters:  []ocr.Letter{{Text: w[:1]}},
		})
	}
	return l
}

// annotations lists each line's words' extracted data as "type=value" (or
// "" for none).
func annotations(lines []ocr.Line) [][]string {
	out := make([][]string, len(lines))
	for i, l := range lines {
		for _, w := range l.Words {
			s := ""
			if w.ExtractedData != nil {
				s = w.ExtractedData.Type + "=" + w.ExtractedData.Value
			}
			out[i] = append(out[i], s)
		}
	}
	return out
}

func TestAnnotate(t *testing.T) {
	t.Parallel()
	const addr = "address=614 Gravier Street New Orleans, LA 70130"
	const when = "date=2022-10-21 18:04:00 +0000"
	const tel = "phone=07-3507405"
	tests := []struct {
		name  string
		lines []ocr.Line
		want  [][]string
	}{
		{"multi-line matches annotate every word of both lines",
			[]ocr.Line{line("614 Gravier LLC"), line("614 Gravier Street"), line("New Orleans, LA 70130"), line("Oct 21, 2022"), line("6:04 PM"), line("$20.00")},
			[][]string{{"", "", ""}, {addr, addr, addr}, {addr, addr, addr, addr}, {when, when, when}, {when, when}, {""}}},
		{"a word that holds a match partly is annotated",
			[]ocr.Line{line("TEL:07-3507405 RECEIPT")},
			[][]string{{tel, ""}}},
		{"words missing from the line text fall back to the words",
			[]ocr.Line{{Text: "", Words: line("TEL:07-3507405").Words}},
			[][]string{{tel}}},
		{"line text that differs from its words",
			[]ocr.Line{{Text: "TEL: 07-3507405", Words: line("TEL:07-3507405").Words}},
			[][]string{{tel}}},
		{"no words, no lines", []ocr.Line{{Text: "www.VONS.COM"}}, [][]string{nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			Annotate(tt.lines)
			if got := annotations(tt.lines); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("annotations = %q\nwant %q", got, tt.want)
			}
		})
	}
	Annotate(nil) // must not panic
}

func TestAnnotateKeepsExistingDataAndGeometry(t *testing.T) {
	t.Parallel()
	lines := []ocr.Line{line("Visit www.VONS.COM"), line("TEL:07-3507405")}
	worker := &ocr.ExtractedData{Type: ocr.ExtractURL, Value: "https://www.vons.com/"}
	lines[0].Words[1].ExtractedData = worker

	before := make([]ocr.Line, len(lines))
	for i, l := range lines {
		before[i] = l
		before[i].Words = append([]ocr.Word(nil), l.Words...)
	}
	Annotate(lines)

	if lines[0].Words[1].ExtractedData != worker || *worker != (ocr.ExtractedData{Type: ocr.ExtractURL, Value: "https://www.vons.com/"}) {
		t.Errorf("existing extracted data replaced: %+v", lines[0].Words[1].ExtractedData)
	}
	if lines[1].Words[0].ExtractedData == nil {
		t.Fatal("phone not annotated")
	}
	for i := range lines {
		if lines[i].Text != before[i].Text || lines[i].Geometry != before[i].Geometry {
			t.Errorf("line %d changed", i)
		}
		for j, w := range lines[i].Words {
			b := before[i].Words[j]
			if w.Text != b.Text || w.Geometry != b.Geometry || !reflect.DeepEqual(w.Letters, b.Letters) {
				t.Errorf("line %d word %d changed: %+v, was %+v", i, j, w, b)
			}
		}
	}
}

// FuzzFind checks that Find never panics on any input and returns matches
// that lie within the text, in order, without overlaps, with a known type
// and a value; Annotate must survive the same text as a line.
func FuzzFind(f *testing.F) {
	for _, s := range []string{
		"", "\n", "614 Gravier Street\nNew Orleans, LA 70130", "Oct 21, 2022\n6:04 PM",
		"TEL : 07-5547360 / 016-7993391", "NO: 28, JALAN ASTANA 1C,\nBANDAR BUKIT RAJA, 41050\nKLANG SELANGOR D.E, MALAYSIA",
		"877-276-9637 or Vons.com/foru", "25/12/2018 8:13:39 PM", "+60 3-7726 8688", "12345\n\n67890",
		"30740 RuGsell Ranch Rd\nWestlake Village.\nCalifornia 91362 • 4063", "\xff\xfe 12/12/2012", "NO.50 , JALAN PBS 14/11 ,\n",
	} {
		f.Add(s)
	}
	types := map[string]bool{date: true, phone: true, address: true, url: true}
	f.Fuzz(func(t *testing.T, text string) {
		matches := Find(text)
		prevEnd := 0
		for i, m := range matches {
			if m.Start < 0 || m.End > len(text) || m.Start >= m.End {
				t.Fatalf("match %d %+v out of bounds of %d bytes", i, m, len(text))
			}
			if m.Start < prevEnd {
				t.Fatalf("match %d %+v overlaps the previous one (ends at %d)", i, m, prevEnd)
			}
			prevEnd = m.End
			if !types[m.Type] || m.Value == "" {
				t.Fatalf("match %d has type %q value %q", i, m.Type, m.Value)
			}
		}
		lines := []ocr.Line{line(text), {Text: text}}
		Annotate(lines)
	})
}
