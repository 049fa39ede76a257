package sroie_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/sroie"
)

func TestParseDate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string // want "" means no date
	}{
		{"25/12/2018", "2018-12-25"},
		{"25-12-2018", "2018-12-25"},
		{"25.12.18", "2018-12-25"},
		{"12-01-19", "2019-01-12"}, // day-first even when both parts could be months
		{"5/3/2018", "2018-03-05"},
		{"4/02/2017", "2017-02-04"},
		{"11/5/2018", "2018-05-11"},
		{"12/28/2017", "2017-12-28"}, // month-first: 28 cannot be a month
		{"(06/12/2016)", "2016-12-06"},
		{"13 JAN 2018", "2018-01-13"},
		{"28 MAR 18", "2018-03-28"},
		{"24-MAR-2018", "2018-03-24"},
		{"02/JAN/2017", "2017-01-02"},
		{"13 jan 2018", "2018-01-13"},
		{"5 SEPTEMBER 2017", "2017-09-05"},
		{"JAN 13, 2018", "2018-01-13"},
		{"OCT 3, 2016", "2016-10-03"},
		{"2018-03-23", "2018-03-23"},
		{"2016/05/01", "2016-05-01"},
		{"20180304", "2018-03-04"},
		{"04032018", "2018-03-04"}, // not a valid YYYYMMDD, so DDMMYYYY
		{"31/02/2018", ""},
		{"13/13/2018", ""},
		{"13 FOO 2018", ""},
		{"TOTAL 9.00", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, ok := sroie.ParseDate(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("ParseDate(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func TestParseAmount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string // want as a 2-decimal string, "" for no amount
	}{
		{"9.00", "9.00"}, {"9", "9.00"}, {"RM 3.90", "3.90"}, {"RM7.00", "7.00"}, {"$8.20", "8.20"},
		{"1,007.50", "1007.50"}, {"-1.73", "-1.73"}, {"RM-1.73", "-1.73"}, {".50", "0.50"},
		{"", ""}, {"RM", ""}, {"9.O0", ""}, {"1,00.50", ""}, {"9.00 9.00", ""},
	}
	for _, tt := range tests {
		r, ok := sroie.ParseAmount(tt.in)
		got := ""
		if ok {
			got = r.FloatString(2)
		}
		if got != tt.want {
			t.Errorf("ParseAmount(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestScoreFields(t *testing.T) {
	t.Parallel()
	key := sroie.Key{Company: "BOOK TA .K (TAMAN DAYA) SDN BHD", Date: "25/12/2018",
		Address: "NO.53 55,57 & 59, JALAN SAGU 18, TAMAN DAYA, 81100 JOHOR BAHRU, JOHOR.", Total: "9.00"}
	perfect := sroie.Fields{Company: key.Company, Address: key.Address, DateText: key.Date, DateISO: "2018-12-25", Total: "9.00"}
	with := func(change func(*sroie.Fields)) sroie.Fields {
		f := perfect
		change(&f)
		return f
	}
	hit := sroie.Verdict{Predicted: true, Truth: true, Correct: true}
	wrong := sroie.Verdict{Predicted: true, Truth: true}
	empty := sroie.Verdict{Truth: true}
	tests := []struct {
		name               string
		key                sroie.Key
		f                  sroie.Fields
		field              func(sroie.FieldScore) sroie.FieldVerdict
		strict, normalized sroie.Verdict
		note               bool
	}{
		{"company exact", key, perfect, company, hit, hit, false},
		{"company case and spacing", key, with(func(f *sroie.Fields) { f.Company = "  book ta .k (taman daya)   sdn bhd " }), company, hit, hit, false},
		{"company spaces lost", key, with(func(f *sroie.Fields) { f.Company = "BOOKTA.K(TAMANDAYA)SDNBHD" }), company, wrong, hit, false},
		{"company wrong", key, with(func(f *sroie.Fields) { f.Company = "TAN WOON YANN" }), company, wrong, wrong, false},
		{"company empty", key, with(func(f *sroie.Fields) { f.Company = "" }), company, empty, empty, false},
		{"address final stop dropped", key, with(func(f *sroie.Fields) { f.Address = strings.TrimSuffix(key.Address, ".") }), address, wrong, hit, false},
		{"address inner comma dropped", key, with(func(f *sroie.Fields) { f.Address = strings.Replace(key.Address, "18,", "18", 1) }), address, wrong, wrong, false},
		{"date as printed", key, perfect, date, hit, hit, false},
		{"date other form", key, with(func(f *sroie.Fields) { f.DateText = "25-12-2018" }), date, wrong, hit, false},
		{"date wrong day", key, with(func(f *sroie.Fields) { f.DateText, f.DateISO = "26/12/2018", "2018-12-26" }), date, wrong, wrong, false},
		{"date text only", key, with(func(f *sroie.Fields) { f.DateISO = "" }), date, hit, hit, false},
		{"date ISO only", key, with(func(f *sroie.Fields) { f.DateText = "" }), date, empty, hit, false},
		{"date ISO malformed", key, with(func(f *sroie.Fields) { f.DateISO = "25/12/2018" }), date, hit, wrong, true},
		{"date empty", key, with(func(f *sroie.Fields) { f.DateText, f.DateISO = "", "" }), date, empty, empty, false},
		{"key date unparseable", sroie.Key{Date: "XMAS 2018"}, sroie.Fields{DateText: "XMAS 2018", DateISO: "2018-12-25"}, date, hit, wrong, true},
		{"total exact", key, perfect, total, hit, hit, false},
		{"total 9 vs 9.00", key, with(func(f *sroie.Fields) { f.Total = "9" }), total, wrong, hit, false},
		{"total wrong", key, with(func(f *sroie.Fields) { f.Total = "90.00" }), total, wrong, wrong, false},
		{"total empty", key, with(func(f *sroie.Fields) { f.Total = "" }), total, empty, empty, false},
		{"total unparseable", key, with(func(f *sroie.Fields) { f.Total = "9.O0" }), total, wrong, wrong, true},
		{"key total RM", sroie.Key{Total: "RM 3.90"}, sroie.Fields{Total: "3.90"}, total, hit, hit, false},
		{"key total $", sroie.Key{Total: "$8.20"}, sroie.Fields{Total: "8.20"}, total, hit, hit, false},
		{"currency only stripped from the key", sroie.Key{Total: "RM7.00"}, sroie.Fields{Total: "RM7.00"}, total, wrong, hit, false},
		{"key total with thousands", sroie.Key{Total: "1,007.50"}, sroie.Fields{Total: "1007.50"}, total, wrong, hit, false},
		{"key total empty, predicted", sroie.Key{}, sroie.Fields{Total: "9.00"}, total,
			sroie.Verdict{Predicted: true}, sroie.Verdict{Predicted: true}, false},
		{"key total empty, none predicted", sroie.Key{}, sroie.Fields{}, total, sroie.Verdict{}, sroie.Verdict{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := tt.field(sroie.ScoreFields(tt.key, tt.f))
			if v.Strict != tt.strict || v.Normalized != tt.normalized || (v.Note != "") != tt.note {
				t.Errorf("got strict %+v, normalized %+v, note %q; want %+v, %+v, note %v",
					v.Strict, v.Normalized, v.Note, tt.strict, tt.normalized, tt.note)
			}
		})
	}
}

func company(s sroie.FieldScore) sroie.FieldVerdict { return s.Company }
func address(s sroie.FieldScore) sroie.FieldVerdict { return s.Address }
func date(s sroie.FieldScore) sroie.FieldVerdict    { return s.Date }
func total(s sroie.FieldScore) sroie.FieldVerdict   { return s.Total }

func TestFieldTally(t *testing.T) {
	t.Parallel()
	key := sroie.Key{Company: "ABC SDN BHD", Date: "25/12/2018", Address: "1 JALAN X, 81100 JOHOR.", Total: "9.00"}
	var sum sroie.FieldTally
	// a: all four right.
	sum.Add("a", sroie.ScoreFields(key, sroie.Fields{Company: "ABC SDN BHD", Address: "1 JALAN X, 81100 JOHOR.", DateText: "25/12/2018", DateISO: "2018-12-25", Total: "9.00"}))
	// b: company spacing lost (normalized only), address empty, date wrong, total "9".
	sum.Add("b", sroie.ScoreFields(key, sroie.Fields{Company: "ABCSDN BHD", DateText: "26/12/2018", DateISO: "2018-12-26", Total: "9"}))
	// c: the key has no total; one is predicted anyway. Nothing else predicted.
	sum.Add("c", sroie.ScoreFields(sroie.Key{Company: "ABC SDN BHD", Date: "25/12/2018", Address: "1 JALAN X"}, sroie.Fields{Total: "5.00"}))

	if sum.Receipts != 3 {
		t.Errorf("%d receipts", sum.Receipts)
	}
	tests := []struct {
		field              string
		strict, normalized sroie.FieldCounts
	}{
		{sroie.FieldCompany, sroie.FieldCounts{Correct: 1, Predicted: 2, Truth: 3}, sroie.FieldCounts{Correct: 2, Predicted: 2, Truth: 3}},
		{sroie.FieldAddress, sroie.FieldCounts{Correct: 1, Predicted: 1, Truth: 3}, sroie.FieldCounts{Correct: 1, Predicted: 1, Truth: 3}},
		{sroie.FieldDate, sroie.FieldCounts{Correct: 1, Predicted: 2, Truth: 3}, sroie.FieldCounts{Correct: 1, Predicted: 2, Truth: 3}},
		{sroie.FieldTotal, sroie.FieldCounts{Correct: 1, Predicted: 3, Truth: 2}, sroie.FieldCounts{Correct: 2, Predicted: 3, Truth: 2}},
	}
	for _, tt := range tests {
		if s, n := sum.Counts(tt.field); s != tt.strict || n != tt.normalized {
			t.Errorf("%s: %+v / %+v, want %+v / %+v", tt.field, s, n, tt.strict, tt.normalized)
		}
	}
	// Strict: 4 correct of 8 predicted, 11 truth. Normalized: 6 of 8, 11.
	s, n := sum.Sum()
	if s != (sroie.FieldCounts{Correct: 4, Predicted: 8, Truth: 11}) || n != (sroie.FieldCounts{Correct: 6, Predicted: 8, Truth: 11}) {
		t.Fatalf("sum %+v / %+v", s, n)
	}
	if p, pn := sum.Precision(); !near(p, 4.0/8) || !near(pn, 6.0/8) {
		t.Errorf("precision %v / %v", p, pn)
	}
	if r, rn := sum.Recall(); !near(r, 4.0/11) || !near(rn, 6.0/11) {
		t.Errorf("recall %v / %v", r, rn)
	}
	f1, f1n := sum.F1()
	if p, r := 4.0/8, 4.0/11; !near(f1, 2*p*r/(p+r)) || !near(f1, 8.0/19) {
		t.Errorf("strict F1 %v, want 8/19", f1)
	}
	if !near(f1n, 12.0/19) {
		t.Errorf("normalized F1 %v, want 12/19", f1n)
	}
	wantMisses := map[string][]string{
		sroie.FieldCompany: {"b", "c"}, sroie.FieldAddress: {"b", "c"}, sroie.FieldDate: {"b", "c"}, sroie.FieldTotal: {"b", "c"},
	}
	wantNorm := map[string][]string{
		sroie.FieldCompany: {"c"}, sroie.FieldAddress: {"b", "c"}, sroie.FieldDate: {"b", "c"}, sroie.FieldTotal: {"c"},
	}
	for _, tt := range []struct {
		name      string
		got, want map[string][]string
	}{{"strict", sum.Misses(), wantMisses}, {"normalized", sum.NormalizedMisses(), wantNorm}} {
		for _, f := range sroie.FieldNames() {
			if !slices.Equal(tt.got[f], tt.want[f]) {
				t.Errorf("%s misses of %s: %v, want %v", tt.name, f, tt.got[f], tt.want[f])
			}
		}
	}
	sum.Misses()[sroie.FieldTotal][0] = "changed"
	if sum.Misses()[sroie.FieldTotal][0] != "b" {
		t.Error("Misses shares its slices with the tally")
	}
	table := sum.Table()
	for _, want := range []string{
		"| field | truth | predicted | correct | F1 |",
		"| company | 3 | 2 | 1 | 0.400 | 2 | 2 | 0.800 |",
		"| total | 2 | 3 | 1 | 0.400 | 3 | 2 | 0.800 |",
		"| all (micro) | 11 | 8 | 4 | 0.421 | 8 | 6 | 0.632 |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if lines := strings.Count(table, "\n"); lines != 7 {
		t.Errorf("table has %d lines, want 7:\n%s", lines, table)
	}

	var empty sroie.FieldTally
	if f, fn := empty.F1(); f != 0 || fn != 0 || len(empty.Misses()) != 0 || len(empty.Notes()) != 0 {
		t.Errorf("empty tally: F1 %v/%v, misses %v", f, fn, empty.Misses())
	}
	var noted sroie.FieldTally
	noted.Add("x", sroie.ScoreFields(sroie.Key{Date: "XMAS"}, sroie.Fields{DateISO: "2018-12-25"}))
	if notes := noted.Notes(); len(notes) != 1 || !strings.HasPrefix(notes[0], "x date: ") {
		t.Errorf("notes %q", notes)
	}
}

// TestKeysScoreThemselves runs the ground truth through ScoreFields as if a
// system had extracted it perfectly: every key date and total must parse,
// and only the totals the keys print unlike a two-decimal value miss
// strictly: 350's "1,007.50" and 474's "43.7".
func TestKeysScoreThemselves(t *testing.T) {
	t.Parallel()
	rs, err := sroie.LoadTranscripts(filepath.Join(fixtures.Dir(t), "sroie"))
	if err != nil {
		t.Fatal(err)
	}
	var sum sroie.FieldTally
	for _, r := range rs {
		k := r.Key
		f := sroie.Fields{Company: k.Company, Address: k.Address, DateText: k.Date}
		var ok bool
		if f.DateISO, ok = sroie.ParseDate(k.Date); !ok {
			t.Errorf("%s: key date %q does not parse", r.Name, k.Date)
		}
		if k.Total != "" {
			amount, ok := sroie.ParseAmount(k.Total)
			if !ok {
				t.Errorf("%s: key total %q does not parse", r.Name, k.Total)
				continue
			}
			f.Total = amount.FloatString(2)
		}
		sum.Add(r.Name, sroie.ScoreFields(k, f))
	}
	if _, n := sum.F1(); n != 1 {
		t.Errorf("normalized F1 %v, want 1; misses %v, notes %v", n, sum.NormalizedMisses(), sum.Notes())
	}
	misses := sum.Misses()
	if len(misses) != 1 || !slices.Equal(misses[sroie.FieldTotal], []string{"350", "474"}) {
		t.Errorf("strict misses %v, want only the totals of 350 (1,007.50) and 474 (43.7)", misses)
	}
	if s, _ := sum.Counts(sroie.FieldTotal); s.Truth != 525 {
		t.Errorf("%d key totals, want 525 (extra/033 has none)", s.Truth)
	}
}
