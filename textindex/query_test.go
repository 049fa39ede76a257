package textindex_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/textindex"
)

func TestParseQuery(t *testing.T) {
	tests := []struct {
		in, fts5, canon string
	}{
		{"milk", `"milk"`, `milk`},
		{"  Milk   BREAD ", `"Milk" "BREAD"`, `Milk BREAD`},
		{`"grand total"`, `"grand total"`, `"grand total"`},
		{`"  grand   total "`, `"  grand   total "`, `"grand total"`},
		{`"grand total" 41.07`, `"grand total" "41.07"`, `"grand total" 41.07`},
		{"choc*", `"choc"*`, `choc*`},
		{"choc***", `"choc"*`, `choc*`},
		{`"grand tot"*`, `"grand tot"*`, `"grand tot"*`},
		{`"tot*"`, `"tot*"`, `"tot*"`},
		{"$12.50", `"$12.50"`, `$12.50`},
		{"12.5*", `"12.5"*`, `12.5*`},
		{"150₽", `"150₽"`, `150₽`},
		// FTS5 operators and syntax are plain text inside FTS5 strings.
		{"NEAR(a b)", `"NEAR(a" "b)"`, `NEAR(a b)`},
		{"a OR", `"a" "OR"`, `a OR`},
		{"milk AND NOT bread", `"milk" "AND" "NOT" "bread"`, `milk AND NOT bread`},
		{"-x", `"-x"`, `-x`},
		{"^x", `"^x"`, `^x`},
		{"col:term", `"col:term"`, `col:term`},
		{"{text}:term", `"{text}:term"`, `{text}:term`},
		{"*milk", `"*milk"`, `*milk`},
		{"milk -- !!", `"milk"`, `milk`},
		{`milk ""`, `"milk"`, `milk`},
		{`abc"def ghi"jkl`, `"abc" "def ghi" "jkl"`, `abc "def ghi" jkl`},
		{`a\x00b`, `"a\x00b"`, `a\x00b`},
		{"a\x00b", "\"a b\"", `"a b"`}, // a NUL would end FTS5's string
		// Unicode: letters of any script, combining marks; emoji alone are no word.
		{"CAFÉ", `"CAFÉ"`, `CAFÉ`},
		{"cafe\u0301", "\"cafe\u0301\"", "cafe\u0301"},
		{"寿司 🍣", `"寿司"`, `寿司`},
		{"🍕pizza🍕", `"🍕pizza🍕"`, `🍕pizza🍕`},
		{"Straße", `"Straße"`, `Straße`},
	}
	for _, tc := range tests {
		p, err := textindex.ParseQuery(tc.in)
		if err != nil {
			t.Errorf("ParseQuery(%q): %v", tc.in, err)
			continue
		}
		if got := p.FTS5(); got != tc.fts5 {
			t.Errorf("ParseQuery(%q).FTS5() = %s, want %s", tc.in, got, tc.fts5)
		}
		if got := p.String(); got != tc.canon {
			t.Errorf("ParseQuery(%q).String() = %s, want %s", tc.in, got, tc.canon)
		}
		// The canonical form is a fixed point.
		again, err := textindex.ParseQuery(p.String())
		if err != nil || again.String() != p.String() || len(again.Terms) != len(p.Terms) {
			t.Errorf("ParseQuery(%q) = %q, %v: not the query %q", p.String(), again.String(), err, tc.in)
		}
	}
}

func TestParseQueryTerms(t *testing.T) {
	p, err := textindex.ParseQuery(`milk "grand tot"* 12.50`)
	if err != nil {
		t.Fatal(err)
	}
	want := []textindex.Term{
		{Text: "milk", Words: []string{"milk"}},
		{Text: "grand tot", Words: []string{"grand", "tot"}, Quoted: true, Prefix: true},
		{Text: "12.50", Words: []string{"12", "50"}},
	}
	if !reflect.DeepEqual(p.Terms, want) {
		t.Errorf("terms = %+v, want %+v", p.Terms, want)
	}
}

func TestParseQueryErrors(t *testing.T) {
	for _, in := range []string{
		"", "   ", "\t\n",
		`"`, `"total`, `milk "grand total`, `"a" "b`,
		"*", "**", "milk *", "-*", `""*`, `"!!"*`,
		"()", "NEAR(", "(a", "a)", "c*", "1*",
		"-", "!!! ???", "🍕", "🍕 🍣", `""`, `"" ""`, "\x00\x01",
		strings.Repeat("a", textindex.MaxQueryLen+1),
		strings.Repeat("é", textindex.MaxQueryLen+1),
	} {
		_, err := textindex.ParseQuery(in)
		if !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("ParseQuery(%q) error = %v, want ErrInvalidArgument", in, err)
		}
	}
	// The limit is in characters, not bytes.
	if _, err := textindex.ParseQuery(strings.Repeat("é", textindex.MaxQueryLen)); err != nil {
		t.Errorf("a query of %d two-byte characters: %v", textindex.MaxQueryLen, err)
	}
}

// safeFTS5 reports whether s is what ParseQuery may produce: FTS5 strings
// (double-quoted, quotes inside doubled, no NUL), each maybe followed by *,
// separated by single spaces. FTS5 gives nothing inside a string a meaning.
func safeFTS5(s string) bool {
	if s == "" || strings.ContainsRune(s, 0) {
		return false
	}
	for {
		if len(s) < 2 || s[0] != '"' {
			return false
		}
		i := 1
		for {
			j := strings.IndexByte(s[i:], '"')
			if j < 0 {
				return false
			}
			i += j + 1
			if i < len(s) && s[i] == '"' {
				i++ // a doubled quote
				continue
			}
			break
		}
		if strings.Trim(s[1:i-1], " ") == "" {
			return false // an empty string: a term without words
		}
		s = s[i:]
		s = strings.TrimPrefix(s, "*")
		if s == "" {
			return true
		}
		if s[0] != ' ' {
			return false
		}
		s = s[1:]
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"milk", `"grand total"`, "choc*", `"`, "*", "NEAR(", "a OR", "-x", "col:term", "^x", "寿司 🍣", `"a"*b"`, "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := textindex.ParseQuery(in)
		if err != nil {
			if !errors.Is(err, tally.ErrInvalidArgument) {
				t.Fatalf("ParseQuery(%q) error %v does not wrap ErrInvalidArgument", in, err)
			}
			return
		}
		if s := p.FTS5(); !safeFTS5(s) {
			t.Fatalf("ParseQuery(%q).FTS5() = %q is not a safe FTS5 expression", in, s)
		}
	})
}

func TestEffectiveLimit(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{0, textindex.DefaultLimit}, {1, 1}, {textindex.MaxLimit, textindex.MaxLimit}, {textindex.MaxLimit + 1, textindex.MaxLimit}, {1 << 40, textindex.MaxLimit}} {
		if got, err := (textindex.Query{Limit: tc.in}).EffectiveLimit(); err != nil || got != tc.want {
			t.Errorf("Limit %d: %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	if _, err := (textindex.Query{Limit: -1}).EffectiveLimit(); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("Limit -1: error %v, want ErrInvalidArgument", err)
	}
}

func TestPrepareDocs(t *testing.T) {
	docs, err := textindex.PrepareDocs("img", []textindex.Doc{
		{ReceiptID: 1, RowID: 1, Text: "a\x02b\x03c\xff", LineIDs: []int{1}},
		{ImageID: "img", ReceiptID: 1, RowID: 2},
		{ReceiptID: 2, RowID: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if docs[0].ImageID != "img" || docs[0].Text != "a b c\uFFFD" {
		t.Errorf("prepared doc = %+v", docs[0])
	}
	for _, tc := range []struct {
		image string
		docs  []textindex.Doc
	}{
		{"", nil},
		{"img", []textindex.Doc{{ImageID: "other"}}},
		{"img", []textindex.Doc{{ReceiptID: 1, RowID: 1}, {ReceiptID: 1, RowID: 1}}},
	} {
		if _, err := textindex.PrepareDocs(tc.image, tc.docs); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("PrepareDocs(%q, %+v) error = %v, want ErrInvalidArgument", tc.image, tc.docs, err)
		}
	}
}

func TestSpans(t *testing.T) {
	got := textindex.Spans("x \x02GRAND TOTAL\x03 41.07 \x02tot\x03")
	want := []textindex.Span{{"x ", false}, {"GRAND TOTAL", true}, {" 41.07 ", false}, {"tot", true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Spans = %+v, want %+v", got, want)
	}
	if got := textindex.Spans("\x02open"); !reflect.DeepEqual(got, []textindex.Span{{"open", true}}) {
		t.Errorf("unclosed marker: %+v", got)
	}
	if got := textindex.MatchedTerms("\x02GRAND TOTAL\x03 x \x02Total\x03 \x02GRAND\x03"); !reflect.DeepEqual(got, []string{"GRAND", "TOTAL", "Total"}) {
		t.Errorf("MatchedTerms = %q", got)
	}
}
