package sroie_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/sroie"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	rs, err := sroie.Load(filepath.Join(fixtures.Dir(t), "sroie"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 30 {
		t.Fatalf("loaded %d receipts, want 30", len(rs))
	}
	for _, r := range rs {
		if len(r.Lines) < 5 || r.Key.Total == "" {
			t.Errorf("%s: %d lines, total %q", r.Name, len(r.Lines), r.Key.Total)
		}
	}
}

func TestLineMatchedErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		truth, got  []string
		errs, chars int
	}{
		{[]string{"TOTAL 9.00"}, []string{"Total  9.00"}, 0, 10},
		{[]string{"TOTAL 9.00"}, []string{"T0TAL 9.00", "junk"}, 1, 10},
		{[]string{"ABC", "DEF"}, []string{"ABC"}, 3, 6},
		{[]string{"ABC"}, nil, 3, 3},
	}
	for _, tt := range tests {
		if e, c := sroie.LineMatchedErrors(tt.truth, tt.got); e != tt.errs || c != tt.chars {
			t.Errorf("LineMatchedErrors(%q, %q) = %d/%d, want %d/%d", tt.truth, tt.got, e, c, tt.errs, tt.chars)
		}
	}
	if d := sroie.EditDistance([]rune("kitten"), []rune("sitting")); d != 3 {
		t.Errorf("EditDistance = %d, want 3", d)
	}
}

func TestLoadAll(t *testing.T) {
	t.Parallel()
	rs, err := sroie.LoadAll(filepath.Join(fixtures.Dir(t), "sroie"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 60 || rs[0].Name != "000" || rs[59].Name != "059" {
		t.Fatalf("loaded %d receipts (%s…), want 000–059", len(rs), rs[0].Name)
	}
}

func TestSegmentErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		truth, got  []string
		errs, chars int
	}{
		// A row the engine read as one line with its neighbour costs
		// nothing, unlike in LineMatchedErrors.
		{[]string{"TOTAL", "9.00"}, []string{"Total: 9.00"}, 0, 9},
		{[]string{"TOTAL"}, []string{"T0TAL 9.00"}, 1, 5},
		{[]string{"ABC"}, []string{"xyz"}, 3, 3},
		{[]string{"ABC"}, nil, 3, 3},
	}
	for _, tt := range tests {
		if e, c := sroie.SegmentErrors(tt.truth, tt.got); e != tt.errs || c != tt.chars {
			t.Errorf("SegmentErrors(%q, %q) = %d/%d, want %d/%d", tt.truth, tt.got, e, c, tt.errs, tt.chars)
		}
	}
}

func TestScoreText(t *testing.T) {
	t.Parallel()
	r := sroie.Receipt{
		Lines: []string{"BOOK TA .K SDN BHD", "NO.53 JALAN SAGU 18,", "TAMAN DAYA", "TOTAL 9.00"},
		Key:   sroie.Key{Company: "BOOK TA .K SDN BHD", Date: "25/12/2018", Address: "NO.53 JALAN SAGU 18, TAMAN DAYA", Total: "9.00"},
	}
	tests := []struct {
		name string
		got  []string
		want sroie.Score
	}{
		{"all read", []string{"Book Ta .K Sdn Bhd", "NO.53 JALAN SAGU 18,", "TAMAN DAYA", "Date: 25/12/2018", "Total 9.00"},
			sroie.Score{Total: true, Date: true, Company: true, CompanyNoSpace: true, Address: true, AddressNoSpace: true}},
		{"spaces lost", []string{"BOOKTA.KSDNBHD", "NO.53JALANSAGU18,TAMANDAYA", "TOTAL9.00"},
			sroie.Score{Total: true, CompanyNoSpace: true, AddressNoSpace: true}},
		{"nothing", []string{"hello"}, sroie.Score{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sroie.ScoreText(r, tt.got)
			if got.Total != tt.want.Total || got.Date != tt.want.Date || got.Company != tt.want.Company ||
				got.CompanyNoSpace != tt.want.CompanyNoSpace || got.Address != tt.want.Address || got.AddressNoSpace != tt.want.AddressNoSpace {
				t.Errorf("fields = %+v, want %+v", got, tt.want)
			}
			if got.Chars != 58 || got.CharsNoSpace != 49 {
				t.Errorf("chars = %d/%d, want 58/49", got.Chars, got.CharsNoSpace)
			}
		})
	}
	if s := sroie.ScoreText(r, r.Lines); s.LineErrs != 0 || s.SegErrs != 0 || s.LineErrsNoSpace != 0 {
		t.Errorf("the transcripts themselves score %+v", s)
	}
	if s := sroie.ScoreText(r, []string{"BOOKTA.KSDNBHD"}); s.SegErrsNoSpace >= s.SegErrs {
		t.Errorf("lost spaces cost %d with spaces and %d without; want fewer without", s.SegErrs, s.SegErrsNoSpace)
	}
}

func TestTally(t *testing.T) {
	t.Parallel()
	r := sroie.Receipt{Lines: []string{"TOTAL 9.00"}, Key: sroie.Key{Company: "ABC SDN BHD", Date: "25/12/2018", Total: "9.00"}}
	var sum sroie.Tally
	sum.Add(sroie.ScoreText(r, []string{"ABCSDN BHD", "TOTAL 9.00"}))
	sum.Add(sroie.ScoreText(r, []string{"TOTAL 9.0O"}))
	if sum.Receipts != 2 || sum.Totals != 1 || sum.Dates != 0 || sum.Companies != 0 || sum.CompaniesNoSpace != 1 {
		t.Errorf("tally %+v", sum)
	}
	if cer, _ := sum.CER(); cer != 1.0/20 {
		t.Errorf("CER = %v, want 1/20 (one wrong character of two 10-character lines)", cer)
	}
	var empty sroie.Tally
	if cer, seg := empty.CER(); cer != 0 || seg != 0 {
		t.Errorf("empty tally CER %v/%v", cer, seg)
	}
}

func TestBoxes(t *testing.T) {
	t.Parallel()
	rs, err := sroie.Load(filepath.Join(fixtures.Dir(t), "sroie"))
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	if len(r.Boxes) != len(r.Lines) {
		t.Fatalf("%d boxes, %d lines", len(r.Boxes), len(r.Lines))
	}
	// box/000.csv starts "72,25,326,25,326,64,72,64,TAN WOON YANN".
	want := sroie.Box{Quad: [4][2]float64{{72, 25}, {326, 25}, {326, 64}, {72, 64}}, Text: "TAN WOON YANN"}
	if r.Boxes[0] != want {
		t.Errorf("first box %+v, want %+v", r.Boxes[0], want)
	}
	for i, b := range r.Boxes {
		if strings.ToUpper(b.Text) != r.Lines[i] {
			t.Errorf("box %d %q against line %q", i, b.Text, r.Lines[i])
		}
	}
}

func TestLoadText(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(fixtures.Dir(t), "sroie")
	rs, err := sroie.LoadText(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 466 || rs[0].Name != "060" || rs[len(rs)-1].Name != "625" {
		t.Fatalf("loaded %d receipts (%s…), want 466, 060–625", len(rs), rs[0].Name)
	}
	for _, r := range rs {
		if sroie.Reserved(r.Name) || r.ImagePath != "" || len(r.Boxes) == 0 || len(r.Boxes) != len(r.Lines) {
			t.Errorf("%s: image %q, %d boxes, %d lines", r.Name, r.ImagePath, len(r.Boxes), len(r.Lines))
		}
	}
	all, err := sroie.LoadTranscripts(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 526 || all[0].Name != "000" || all[60].Name != "060" || all[525].Name != "625" {
		t.Fatalf("LoadTranscripts: %d receipts, want 526 sorted by name", len(all))
	}
	images := 0
	for i, r := range all {
		if i > 0 && all[i-1].Name >= r.Name {
			t.Errorf("%s after %s", r.Name, all[i-1].Name)
		}
		if r.ImagePath != "" {
			images++
		}
	}
	if images != 60 {
		t.Errorf("%d receipts with images, want 60", images)
	}
}

// TestReservedSkipped makes sure the loaders never pick up the evaluation
// receipts 100–199, even when their files are present.
func TestReservedSkipped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const box = "1,2,30,2,30,12,1,12,TOTAL 9.00\r\n\r\n5,20,40,20,40,30,5,30,\"QUOTED, WITH COMMA\n"
	const key = `{"company":"A","date":"01/02/2018","address":"B","total":"9.00"}`
	for _, n := range []string{"099", "100", "150", "199", "200"} {
		write("img/"+n+".jpg", "")
		write("box/"+n+".csv", box)
		write("key/"+n+".json", key)
		write("text/box/"+n+".csv", box)
		write("text/key/"+n+".json", key)
	}
	for name, load := range map[string]func(string) ([]sroie.Receipt, error){"Load": sroie.Load, "LoadText": sroie.LoadText} {
		rs, err := load(dir)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var names []string
		for _, r := range rs {
			names = append(names, r.Name)
		}
		if got := strings.Join(names, ","); got != "099,200" {
			t.Errorf("%s loaded %s, want 099,200", name, got)
		}
		if b := rs[0].Boxes; len(b) != 2 || b[1].Text != `"QUOTED, WITH COMMA` || b[1].Quad[2] != [2]float64{40, 30} {
			t.Errorf("%s boxes %+v", name, b)
		}
	}
	for _, tt := range []struct {
		name string
		want bool
	}{{"099", false}, {"100", true}, {"150", true}, {"0150", true}, {"150-copy", true}, {"199", true}, {"200", false}, {"x150", false}, {"", false}} {
		if got := sroie.Reserved(tt.name); got != tt.want {
			t.Errorf("Reserved(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
