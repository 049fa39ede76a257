// Package textindextest is the conformance suite of the text index port.
// Every adapter runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		textindextest.Run(t, func(t *testing.T) textindex.Index { … }, textindextest.Features{…})
//	}
//
// The suite pins down what the web app relies on: Tally's query syntax
// (words, phrases, prefixes, all terms required, no operators), matching
// that ignores case, Put as an atomic replace (a redelivered record does not
// duplicate rows), Delete, limits, ranking, snippets with markers, errors
// that wrap tally.ErrInvalidArgument and context.Canceled, and concurrent
// writers. Where backends may reasonably differ, the check is behind a
// Features flag, in the manner of Watermill's pubsub test features. Every
// subtest gets its own index and runs in parallel.
package textindextest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/textindex"
)

// Features declares what a backend does beyond what every adapter must do.
type Features struct {
	// FoldsDiacritics: matching ignores accents, so "CAFÉ" finds "cafe"
	// and "creme brulee" finds "Crème Brûlée". SQLite's unicode61 tokenizer
	// with remove_diacritics does; a search service whose analyzer only
	// lowercases would not.
	FoldsDiacritics bool

	// Reopen opens a second, independent handle on the store behind ix,
	// as another process would (for SQLite: Open on the same file). It
	// may be called after ix is closed. Nil skips the tests of persistence
	// and of two handles writing one store at once.
	Reopen func(t *testing.T, ix textindex.Index) textindex.Index
}

// Run runs the conformance suite. newIndex is called once per subtest (or
// more, for subtests that need several empty indexes) and must return an
// empty index; the suite closes it when the subtest ends.
func Run(t *testing.T, newIndex func(t *testing.T) textindex.Index, f Features) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"Words", testWords},
		{"AllTermsMustMatch", testAllTermsMustMatch},
		{"Phrases", testPhrases},
		{"Prefixes", testPrefixes},
		{"IgnoresCase", testIgnoresCase},
		{"Diacritics", testDiacritics},
		{"PunctuationIsLiteral", testPunctuationIsLiteral},
		{"NoOperators", testNoOperators},
		{"Unicode", testUnicode},
		{"SnippetAndTerms", testSnippetAndTerms},
		{"Ranking", testRanking},
		{"OneHitPerRow", testOneHitPerRow},
		{"PutReplaces", testPutReplaces},
		{"Redelivery", testRedelivery},
		{"PutEmptyRemoves", testPutEmptyRemoves},
		{"Delete", testDelete},
		{"BadPut", testBadPut},
		{"Limit", testLimit},
		{"EmptyResult", testEmptyResult},
		{"BadQueries", testBadQueries},
		{"ConcurrentPuts", testConcurrentPuts},
		{"ConcurrentPutsOneImage", testConcurrentPutsOneImage},
		{"Canceled", testCanceled},
		{"Persistence", testPersistence},
		{"TwoHandles", testTwoHandles},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ix := newIndex(t)
			t.Cleanup(func() { ix.Close() })
			tc.fn(t, &env{ix: ix, f: f})
		})
	}
}

// env is what one subtest works with.
type env struct {
	ix textindex.Index
	f  Features
}

// receipt makes the docs of one receipt: one row per text, rows numbered
// from 1, each row made of one line with the row's number.
func receipt(imageID string, receiptID int, merchant string, texts ...string) []textindex.Doc {
	docs := make([]textindex.Doc, len(texts))
	for i, s := range texts {
		docs[i] = textindex.Doc{
			ImageID: imageID, ReceiptID: receiptID, RowID: i + 1, LineIDs: []int{i + 1},
			Text: s, Merchant: merchant, Date: "2024-03-0" + fmt.Sprint(receiptID%10),
		}
	}
	return docs
}

func (e *env) put(t *testing.T, imageID string, docs ...textindex.Doc) {
	t.Helper()
	if err := e.ix.Put(t.Context(), imageID, docs); err != nil {
		t.Fatalf("Put(%s, %d docs): %v", imageID, len(docs), err)
	}
}

func (e *env) search(t *testing.T, q string) []textindex.Hit {
	t.Helper()
	return e.searchLimit(t, q, 0)
}

func (e *env) searchLimit(t *testing.T, q string, limit int) []textindex.Hit {
	t.Helper()
	hits, err := e.ix.Search(t.Context(), textindex.Query{Text: q, Limit: limit})
	if err != nil {
		t.Fatalf("Search(%q): %v", q, err)
	}
	for i := 1; i < len(hits); i++ {
		if hits[i].Score > hits[i-1].Score {
			t.Errorf("Search(%q): hit %d scores %v above hit %d's %v: not best first", q, i, hits[i].Score, i-1, hits[i-1].Score)
		}
	}
	return hits
}

// texts returns the hits' row texts, sorted, for comparing result sets
// whose order the test does not care about.
func texts(hits []textindex.Hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.Text
	}
	slices.Sort(out)
	return out
}

// expect checks that q finds exactly the rows with the given texts.
func (e *env) expect(t *testing.T, q string, want ...string) {
	t.Helper()
	got := texts(e.search(t, q))
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Search(%q) found %q, want %q", q, got, want)
	}
}

func testWords(t *testing.T, e *env) {
	e.put(t, "img-1", receipt("img-1", 1, "Kroger", "KROGER", "WHOLE MILK 1 GAL 3.49", "BREAD 2.99", "TOTAL 6.48")...)
	e.put(t, "img-2", receipt("img-2", 1, "Safeway", "SAFEWAY", "ALMOND MILK 4.19")...)
	e.expect(t, "milk", "WHOLE MILK 1 GAL 3.49", "ALMOND MILK 4.19")
	e.expect(t, "bread", "BREAD 2.99")
	e.expect(t, "3.49", "WHOLE MILK 1 GAL 3.49")
	// Words are whole words: "mil" is not "milk" without a *.
	e.expect(t, "mil")

	hits := e.search(t, "bread")
	if len(hits) != 1 {
		t.Fatalf("bread: %d hits", len(hits))
	}
	h := hits[0]
	if h.ImageID != "img-1" || h.ReceiptID != 1 || h.RowID != 3 || !slices.Equal(h.LineIDs, []int{3}) ||
		h.Text != "BREAD 2.99" || h.Merchant != "Kroger" || h.Date != "2024-03-01" {
		t.Errorf("hit = %+v, want image img-1 receipt 1 row 3 lines [3] with the doc's text, merchant and date", h)
	}

	// Several receipts on one image, and line ids that are not the row's.
	docs := receipt("img-3", 1, "A", "FIRST RECEIPT COFFEE")
	docs = append(docs, textindex.Doc{ReceiptID: 2, RowID: 7, LineIDs: []int{12, 13, 14}, Text: "SECOND RECEIPT COFFEE"})
	e.put(t, "img-3", docs...)
	hits = e.search(t, "second coffee")
	if len(hits) != 1 || hits[0].ImageID != "img-3" || hits[0].ReceiptID != 2 || hits[0].RowID != 7 || !slices.Equal(hits[0].LineIDs, []int{12, 13, 14}) {
		t.Errorf("second coffee = %+v, want img-3 receipt 2 row 7 lines [12 13 14] (a doc without ImageID takes Put's)", hits)
	}
}

func testAllTermsMustMatch(t *testing.T, e *env) {
	e.put(t, "img", receipt("img", 1, "", "ORGANIC MILK 5.99", "MILK 3.49", "ORGANIC BANANAS 1.29", "BANANAS ORGANIC MILK")...)
	e.expect(t, "organic milk", "ORGANIC MILK 5.99", "BANANAS ORGANIC MILK")
	e.expect(t, "milk organic", "ORGANIC MILK 5.99", "BANANAS ORGANIC MILK")
	e.expect(t, "organic bananas milk", "BANANAS ORGANIC MILK")
	e.expect(t, "organic milk eggs")
	// Terms match within one row, not across the rows of a receipt.
	e.expect(t, "bananas 5.99")
}

func testPhrases(t *testing.T, e *env) {
	e.put(t, "img", receipt("img", 1, "", "GRAND TOTAL 41.07", "TOTAL GRAND", "GRAND SUB TOTAL 12.00", "SUBTOTAL 38.00")...)
	e.expect(t, `"grand total"`, "GRAND TOTAL 41.07")
	e.expect(t, `"total grand"`, "TOTAL GRAND")
	e.expect(t, `grand total`, "GRAND TOTAL 41.07", "TOTAL GRAND", "GRAND SUB TOTAL 12.00")
	e.expect(t, `"grand total" 41.07`, "GRAND TOTAL 41.07")
	e.expect(t, `"grand total" 12.00`)
	e.expect(t, `"sub total"`, "GRAND SUB TOTAL 12.00")
	// Inside quotes * is literal punctuation, not a prefix.
	e.expect(t, `"grand tot*"`)
}

func testPrefixes(t *testing.T, e *env) {
	e.put(t, "img", receipt("img", 1, "", "CHOCOLATE BAR 1.99", "Chocs Away", "HOT COCOA", "GRAND TOTAL 41.07", "MILK CHOCOLATE")...)
	e.expect(t, "choc*", "CHOCOLATE BAR 1.99", "Chocs Away", "MILK CHOCOLATE")
	e.expect(t, "ch*", "CHOCOLATE BAR 1.99", "Chocs Away", "MILK CHOCOLATE")
	e.expect(t, "chocolate*", "CHOCOLATE BAR 1.99", "MILK CHOCOLATE")
	e.expect(t, "choc* milk", "MILK CHOCOLATE")
	e.expect(t, "choc* ba*", "CHOCOLATE BAR 1.99")
	e.expect(t, `"grand tot"*`, "GRAND TOTAL 41.07")
	e.expect(t, "chocx*")
	// Punctuation around a prefix is literal text, as anywhere else.
	e.expect(t, "[choc.*", "CHOCOLATE BAR 1.99", "Chocs Away", "MILK CHOCOLATE")
	e.expect(t, "41.0*", "GRAND TOTAL 41.07")
	e.expect(t, "$41.0*", "GRAND TOTAL 41.07")
	e.expect(t, "41.1*")
	// A prefix matches the start of a word only.
	e.expect(t, "olate*")
}

func testIgnoresCase(t *testing.T, e *env) {
	e.put(t, "img", receipt("img", 1, "", "TOTAL 12.50", "Thank You", "milk")...)
	e.expect(t, "total", "TOTAL 12.50")
	e.expect(t, "MILK", "milk")
	e.expect(t, "tHaNk yOu", "Thank You")
	e.expect(t, `"THANK you"`, "Thank You")
	e.expect(t, "THA*", "Thank You")
}

func testDiacritics(t *testing.T, e *env) {
	if !e.f.FoldsDiacritics {
		t.Skip("the backend does not fold diacritics")
	}
	e.put(t, "img", receipt("img", 1, "", "cafe latte", "CAFÉ NOIR", "Crème Brûlée 6.50", "Jalapeño", "cafe\u0301 au lait")...)
	all := []string{"cafe latte", "CAFÉ NOIR", "cafe\u0301 au lait"}
	e.expect(t, "CAFÉ", all...)
	e.expect(t, "cafe", all...)
	e.expect(t, "Café", all...)
	e.expect(t, "cafe\u0301", all...) // decomposed é
	e.expect(t, "creme brulee", "Crème Brûlée 6.50")
	e.expect(t, `"CREME BRÛLEE"`, "Crème Brûlée 6.50")
	e.expect(t, "jalapeno", "Jalapeño")
	e.expect(t, "jalap*", "Jalapeño")
}

func testPunctuationIsLiteral(t *testing.T, e *env) {
	e.put(t, "img", receipt("img", 1, "", "TOTAL $12.50", "12 x 50", "WWW.KROGER.COM", "(555) 123-4567", "ITEM#42 COL:TERM")...)
	e.expect(t, "$12.50", "TOTAL $12.50")
	e.expect(t, "12.50", "TOTAL $12.50")
	e.expect(t, "kroger.com", "WWW.KROGER.COM")
	e.expect(t, "kroger", "WWW.KROGER.COM")
	e.expect(t, "555-123-4567", "(555) 123-4567")
	e.expect(t, "(555)", "(555) 123-4567")
	e.expect(t, "item#42", "ITEM#42 COL:TERM")
	e.expect(t, "col:term", "ITEM#42 COL:TERM")
}

func testNoOperators(t *testing.T, e *env) {
	e.put(t, "img", receipt("img", 1, "",
		"MILK 2%", "BREAD", "NEAR ENTRANCE", "X RAY FILM", "AND OR NOT", "NOT FOR RESALE", "TERM DEPOSIT")...)
	// OR is a word, not an operator: no row has milk, or and bread.
	e.expect(t, "milk OR bread")
	e.expect(t, "and or not", "AND OR NOT")
	e.expect(t, "NOT", "AND OR NOT", "NOT FOR RESALE")
	e.expect(t, "NOT resale", "NOT FOR RESALE")
	e.expect(t, "NEAR(entrance)", "NEAR ENTRANCE")
	e.expect(t, "NEAR(milk bread)")
	// -x is not "without x", ^x not "x first", col:term not a column.
	e.expect(t, "-x", "X RAY FILM")
	e.expect(t, "^ray", "X RAY FILM")
	e.expect(t, "film -x", "X RAY FILM")
	e.expect(t, "a OR")
	// As FTS5 column filters these would find TERM DEPOSIT; as text they
	// are the phrase "text deposit", which no row has.
	e.expect(t, "text:deposit")
	e.expect(t, "{text}:deposit")
	e.expect(t, "text : deposit")
	e.expect(t, "+milk", "MILK 2%")
}

func testUnicode(t *testing.T, e *env) {
	e.put(t, "img", receipt("img", 1, "",
		"寿司 SUSHI 🍣 12.00", "Straße 5", "Ελληνικός καφές", "Кофе 150₽", "🍕🍕🍕", "नमस्ते", "ＴＯＴＡＬ")...)
	e.expect(t, "寿司", "寿司 SUSHI 🍣 12.00")
	e.expect(t, "🍣 sushi", "寿司 SUSHI 🍣 12.00")
	e.expect(t, "sushi🍣", "寿司 SUSHI 🍣 12.00")
	e.expect(t, "straße", "Straße 5")
	e.expect(t, "ΚΑΦΈΣ", "Ελληνικός καφές")
	e.expect(t, "кофе", "Кофе 150₽")
	e.expect(t, "150₽", "Кофе 150₽")
	e.expect(t, "नमस्ते", "नमस्ते")
	e.expect(t, "Ελλ*", "Ελληνικός καφές")
	// A query of emoji only has no words.
	if _, err := e.ix.Search(t.Context(), textindex.Query{Text: "🍕"}); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("Search(🍕) error = %v, want ErrInvalidArgument", err)
	}
}

func testSnippetAndTerms(t *testing.T, e *env) {
	e.put(t, "img", receipt("img", 1, "",
		"<b>FISH & CHIPS</b> 9.50", "GRAND TOTAL 41.07 grand total", "CHOCOLATE BAR 1.99", "Café Crème")...)

	hits := e.search(t, "fish")
	if len(hits) != 1 {
		t.Fatalf("fish: %d hits", len(hits))
	}
	h := hits[0]
	if !strings.Contains(h.Snippet, textindex.MarkStart+"FISH"+textindex.MarkEnd) {
		t.Errorf("snippet %q does not mark FISH", h.Snippet)
	}
	if !strings.Contains(h.Snippet, "<b>") || !strings.Contains(h.Snippet, "& CHIPS") || strings.Contains(h.Snippet, "&amp;") || strings.Contains(h.Snippet, "&lt;") {
		t.Errorf("snippet %q is not the raw text: the index must not produce or escape HTML", h.Snippet)
	}
	if !slices.Equal(h.Terms, []string{"FISH"}) {
		t.Errorf("terms = %q, want [FISH]", h.Terms)
	}

	hits = e.search(t, "choc*")
	if len(hits) != 1 || !slices.Equal(hits[0].Terms, []string{"CHOCOLATE"}) {
		t.Errorf("choc*: %+v, want one hit with terms [CHOCOLATE]", hits)
	} else if got := textindex.Spans(hits[0].Snippet); len(got) < 2 || got[0] != (textindex.Span{Text: "CHOCOLATE", Match: true}) {
		t.Errorf("choc*: snippet spans %+v, want CHOCOLATE marked first", got)
	}

	hits = e.search(t, `"grand total"`)
	if len(hits) != 1 {
		t.Fatalf(`"grand total": %d hits`, len(hits))
	}
	if !slices.Equal(hits[0].Terms, []string{"GRAND", "TOTAL", "grand", "total"}) {
		t.Errorf(`"grand total": terms = %q, want the matched words as written: [GRAND TOTAL grand total]`, hits[0].Terms)
	}
	var marked []string
	for _, sp := range textindex.Spans(hits[0].Snippet) {
		if sp.Match {
			marked = append(marked, sp.Text)
		}
	}
	if strings.Join(marked, " ") != "GRAND TOTAL grand total" {
		t.Errorf(`"grand total": snippet %q marks %q, want both occurrences`, hits[0].Snippet, marked)
	}

	if e.f.FoldsDiacritics {
		hits = e.search(t, "CAFE creme")
		if len(hits) != 1 || !slices.Equal(hits[0].Terms, []string{"Café", "Crème"}) {
			t.Errorf("CAFE creme: %+v, want terms spelled as in the text: [Café Crème]", hits)
		}
	}

	// Text that happens to hold the markers cannot fake a match.
	e.put(t, "img-2", textindex.Doc{ReceiptID: 1, RowID: 1, Text: "WATER \x02FAKE\x03 1.00"})
	hits = e.search(t, "water")
	if len(hits) != 1 || strings.Count(hits[0].Snippet, textindex.MarkStart) != 1 || !slices.Equal(hits[0].Terms, []string{"WATER"}) {
		t.Errorf("water: %+v, want one marked match (markers in a doc's text are removed)", hits)
	}
}

func testRanking(t *testing.T, e *env) {
	e.put(t, "img", receipt("img", 1, "",
		"WHOLE MILK ORGANIC VALLEY FARMS 1 GAL GRADE A PASTEURIZED 5.99",
		"MILK",
		"2 MILK 3.49",
		"BREAD")...)
	hits := e.search(t, "milk")
	if len(hits) != 3 {
		t.Fatalf("milk: %d hits, want 3", len(hits))
	}
	if hits[0].Text != "MILK" {
		t.Errorf("milk: best hit %q, want the row that is only MILK", hits[0].Text)
	}
	if hits[2].Text != "WHOLE MILK ORGANIC VALLEY FARMS 1 GAL GRADE A PASTEURIZED 5.99" {
		t.Errorf("milk: worst hit %q, want the long row", hits[2].Text)
	}
	if hits[0].Score <= hits[2].Score {
		t.Errorf("milk: best score %v not above worst %v", hits[0].Score, hits[2].Score)
	}
}

func testOneHitPerRow(t *testing.T, e *env) {
	e.put(t, "img", receipt("img", 1, "", "MILK MILK MILK", "MILK 2 MILK")...)
	hits := e.search(t, "milk milk*")
	if len(hits) != 2 {
		t.Errorf("milk milk*: %d hits, want one per row (2)", len(hits))
	}
}

func testPutReplaces(t *testing.T, e *env) {
	e.put(t, "img-1", receipt("img-1", 1, "Old", "OLD MERCHANT", "APPLES 1.00", "TOTAL 1.00")...)
	e.put(t, "img-2", receipt("img-2", 1, "Other", "OTHER STORE", "APPLES 2.00")...)
	e.put(t, "img-1", receipt("img-1", 1, "New", "NEW MERCHANT", "PEARS 3.00")...)
	e.expect(t, "old")
	e.expect(t, "merchant", "NEW MERCHANT")
	e.expect(t, "apples", "APPLES 2.00") // img-2 untouched
	e.expect(t, "total")                 // img-1's old row 3 is gone, not kept because the new Put has no row 3
	e.expect(t, "pears", "PEARS 3.00")
	if hits := e.search(t, "pears"); len(hits) == 1 && hits[0].Merchant != "New" {
		t.Errorf("pears: merchant %q, want New", hits[0].Merchant)
	}
}

func testRedelivery(t *testing.T, e *env) {
	docs := receipt("img", 1, "Kroger", "KROGER", "MILK 3.49", "TOTAL 3.49")
	for range 3 {
		e.put(t, "img", docs...)
	}
	e.expect(t, "milk", "MILK 3.49")
	e.expect(t, "3.49", "MILK 3.49", "TOTAL 3.49")
	// A second receipt found on a re-run of OCR replaces, too.
	docs = append(docs, receipt("img", 2, "Kroger", "KROGER", "MILK 3.49")...)
	e.put(t, "img", docs...)
	e.put(t, "img", docs...)
	e.expect(t, "milk", "MILK 3.49", "MILK 3.49")
}

func testPutEmptyRemoves(t *testing.T, e *env) {
	e.put(t, "img", receipt("img", 1, "", "MILK")...)
	e.put(t, "img")
	e.expect(t, "milk")
}

func testDelete(t *testing.T, e *env) {
	ctx := t.Context()
	e.put(t, "img-1", receipt("img-1", 1, "", "MILK 1", "EGGS 1")...)
	e.put(t, "img-2", receipt("img-2", 1, "", "MILK 2")...)
	e.put(t, "img-10", receipt("img-10", 1, "", "MILK 10")...)
	if err := e.ix.Delete(ctx, "img-1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	e.expect(t, "milk", "MILK 2", "MILK 10")
	e.expect(t, "eggs")
	if err := e.ix.Delete(ctx, "img-1"); err != nil {
		t.Errorf("Delete of a deleted image: %v, want nil", err)
	}
	if err := e.ix.Delete(ctx, "never-put"); err != nil {
		t.Errorf("Delete of an unknown image: %v, want nil", err)
	}
	// The image can be put again.
	e.put(t, "img-1", receipt("img-1", 1, "", "MILK 1 AGAIN")...)
	e.expect(t, "milk", "MILK 1 AGAIN", "MILK 2", "MILK 10")
}

func testBadPut(t *testing.T, e *env) {
	ctx := t.Context()
	e.put(t, "img", receipt("img", 1, "", "MILK")...)
	for _, tc := range []struct {
		image string
		docs  []textindex.Doc
	}{
		{"", receipt("", 1, "", "EGGS")},
		{"img", receipt("other", 1, "", "EGGS")},
		{"img", append(receipt("img", 1, "", "EGGS"), receipt("img", 1, "", "EGGS AGAIN")...)},
	} {
		if err := e.ix.Put(ctx, tc.image, tc.docs); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("Put(%q, %+v) error = %v, want ErrInvalidArgument", tc.image, tc.docs, err)
		}
	}
	e.expect(t, "milk", "MILK") // a rejected Put changes nothing
	e.expect(t, "eggs")
}

func testLimit(t *testing.T, e *env) {
	ctx := t.Context()
	var docs []textindex.Doc
	for i := range textindex.MaxLimit + 50 {
		docs = append(docs, textindex.Doc{ReceiptID: 1 + i/100, RowID: i, Text: fmt.Sprintf("TOTAL %d.00", i)})
	}
	e.put(t, "img", docs...)
	for _, tc := range []struct{ limit, want int }{
		{0, textindex.DefaultLimit},
		{1, 1},
		{7, 7},
		{textindex.MaxLimit, textindex.MaxLimit},
		{textindex.MaxLimit + 1, textindex.MaxLimit},
		{100000, textindex.MaxLimit},
	} {
		if hits := e.searchLimit(t, "total", tc.limit); len(hits) != tc.want {
			t.Errorf("Limit %d: %d hits, want %d", tc.limit, len(hits), tc.want)
		}
	}
	if hits := e.searchLimit(t, "7.00", 100); len(hits) != 1 {
		t.Errorf("7.00: %d hits, want 1 (fewer matches than the limit)", len(hits))
	}
	if _, err := e.ix.Search(ctx, textindex.Query{Text: "total", Limit: -1}); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("Limit -1: error = %v, want ErrInvalidArgument", err)
	}
}

func testEmptyResult(t *testing.T, e *env) {
	// An empty index, then one without a match.
	for range 2 {
		hits, err := e.ix.Search(t.Context(), textindex.Query{Text: "milk"})
		if err != nil || hits == nil || len(hits) != 0 {
			t.Errorf("Search(milk) = %#v, %v; want an empty, non-nil slice (it becomes [] in JSON), nil", hits, err)
		}
		e.put(t, "img", receipt("img", 1, "", "BREAD")...)
	}
}

func testBadQueries(t *testing.T, e *env) {
	e.put(t, "img", receipt("img", 1, "", "MILK", `"QUOTED"`, "* STAR *")...)
	for _, q := range []string{
		"", "   ", `"`, `"total`, `milk "grand`, "*", "**", "milk *", `"milk"*"`,
		"()", "-", "?!", "🍕", `""`, "\x00", strings.Repeat("milk ", textindex.MaxQueryLen/5+1),
	} {
		hits, err := e.ix.Search(t.Context(), textindex.Query{Text: q})
		if !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("Search(%q) = %d hits, error %v; want ErrInvalidArgument", q, len(hits), err)
		}
	}
	// Inputs that look like backend syntax are text, never a backend error.
	for _, q := range []string{
		"NEAR(", "NEAR(milk", "a OR", "OR", "AND", "NOT milk", "-x", "col:term", "text:milk", "^x", "milk^",
		"{text}:milk", "milk + bread", `"quoted"`, "'", "'milk'", "\\", "milk\\", "%", "_", "m%lk", "[milk]",
		"; DROP TABLE x;--", "x' OR '1'='1", "\u200b", "milk\u00a0bread", "\U0001F9FE receipt", "ｍｉｌｋ",
	} {
		if _, err := e.ix.Search(t.Context(), textindex.Query{Text: q}); err != nil && !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("Search(%q): %v", q, err)
		}
	}
	e.expect(t, `"quoted"`, `"QUOTED"`)
}

func testConcurrentPuts(t *testing.T, e *env) {
	const writers, images = 8, 10
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, writers*images*2)
	for w := range writers {
		wg.Go(func() {
			for i := range images {
				id := fmt.Sprintf("w%d-img%d", w, i)
				docs := receipt(id, 1, "", fmt.Sprintf("WRITER%d IMAGE%d", w, i), "SHARED MILK", "TOTAL 1.00")
				if err := e.ix.Put(ctx, id, docs); err != nil {
					errs <- fmt.Errorf("put %s: %w", id, err)
				}
				// And a reader alongside every writer.
				if _, err := e.ix.Search(ctx, textindex.Query{Text: "shared milk"}); err != nil {
					errs <- fmt.Errorf("search: %w", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if hits := e.searchLimit(t, "shared milk", textindex.MaxLimit); len(hits) != writers*images {
		t.Errorf("shared milk: %d hits, want %d", len(hits), writers*images)
	}
	for w := range writers {
		if hits := e.searchLimit(t, fmt.Sprintf("writer%d", w), textindex.MaxLimit); len(hits) != images {
			t.Errorf("writer%d: %d hits, want %d", w, len(hits), images)
		}
	}
}

// testConcurrentPutsOneImage races redeliveries of different versions of
// one image: afterwards the image holds exactly one version, whole.
func testConcurrentPutsOneImage(t *testing.T, e *env) {
	const versions = 8
	putVersions(t, func(int) textindex.Index { return e.ix }, versions)
	checkOneVersion(t, e, versions)
}

// putVersions Puts versions of image "img" from as many goroutines, each
// through the index at(i), several times each.
func putVersions(t *testing.T, at func(i int) textindex.Index, versions int) {
	t.Helper()
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, versions*5)
	for v := range versions {
		wg.Go(func() {
			var rows []string
			for r := range 3 + v { // versions differ in their number of rows too
				rows = append(rows, fmt.Sprintf("VERSION%d ROW%d", v, r))
			}
			for range 5 {
				if err := at(v).Put(ctx, "img", receipt("img", 1, "", rows...)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func checkOneVersion(t *testing.T, e *env, versions int) {
	t.Helper()
	hits := e.searchLimit(t, "version*", textindex.MaxLimit)
	if len(hits) == 0 {
		t.Fatal("no version of the image is left")
	}
	var v int
	if _, err := fmt.Sscanf(hits[0].Text, "VERSION%d", &v); err != nil {
		t.Fatalf("hit %q: %v", hits[0].Text, err)
	}
	if len(hits) != 3+v {
		t.Errorf("%d rows left, want version %d's %d: %q", len(hits), v, 3+v, texts(hits))
	}
	for _, h := range hits {
		if !strings.HasPrefix(h.Text, fmt.Sprintf("VERSION%d ", v)) {
			t.Errorf("row %q left beside version %d: Puts of one image interleaved", h.Text, v)
		}
	}
}

func testCanceled(t *testing.T, e *env) {
	e.put(t, "img", receipt("img", 1, "", "MILK")...)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := e.ix.Put(ctx, "img", receipt("img", 1, "", "EGGS")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context: error = %v, want context.Canceled", err)
	}
	if err := e.ix.Put(ctx, "img-2", receipt("img-2", 1, "", "EGGS")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put of a new image with a canceled context: error = %v, want context.Canceled", err)
	}
	if err := e.ix.Delete(ctx, "img"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with a canceled context: error = %v, want context.Canceled", err)
	}
	if _, err := e.ix.Search(ctx, textindex.Query{Text: "milk"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Search with a canceled context: error = %v, want context.Canceled", err)
	}
	// Nothing changed.
	e.expect(t, "milk", "MILK")
	e.expect(t, "eggs")

	// A large Put canceled part way is all or nothing.
	var docs []textindex.Doc
	for i := range 5000 {
		docs = append(docs, textindex.Doc{ReceiptID: 1, RowID: i, Text: fmt.Sprintf("BULK ROW %d", i)})
	}
	ctx, cancel = context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.ix.Put(ctx, "bulk", docs) }()
	cancel()
	err := <-done
	n := len(e.searchLimit(t, `"bulk row"`, textindex.MaxLimit))
	switch {
	case err == nil && n != textindex.MaxLimit:
		t.Errorf("Put returned nil but %d bulk rows are searchable, want %d", n, textindex.MaxLimit)
	case err != nil && !errors.Is(err, context.Canceled):
		t.Errorf("canceled Put: error = %v, want context.Canceled", err)
	case err != nil && n != 0:
		t.Errorf("canceled Put left %d rows behind", n)
	}
}

func testPersistence(t *testing.T, e *env) {
	if e.f.Reopen == nil {
		t.Skip("Features.Reopen is nil")
	}
	e.put(t, "img", receipt("img", 1, "Kroger", "KROGER", "MILK 3.49")...)
	if err := e.ix.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	again := &env{ix: e.f.Reopen(t, e.ix), f: e.f}
	t.Cleanup(func() { again.ix.Close() })
	again.expect(t, "milk", "MILK 3.49")
	again.put(t, "img", receipt("img", 1, "Kroger", "KROGER", "EGGS 2.99")...)
	again.expect(t, "milk")
	again.expect(t, "eggs", "EGGS 2.99")
}

// testTwoHandles writes one store through two handles at once, as two
// processes sharing an index file would.
func testTwoHandles(t *testing.T, e *env) {
	if e.f.Reopen == nil {
		t.Skip("Features.Reopen is nil")
	}
	a := e
	b := &env{ix: e.f.Reopen(t, e.ix), f: e.f}
	t.Cleanup(func() { b.ix.Close() })

	a.put(t, "img-a", receipt("img-a", 1, "", "MILK FROM A")...)
	b.expect(t, "milk", "MILK FROM A")
	b.put(t, "img-b", receipt("img-b", 1, "", "MILK FROM B")...)
	a.expect(t, "milk", "MILK FROM A", "MILK FROM B")
	if err := b.ix.Delete(t.Context(), "img-a"); err != nil {
		t.Fatal(err)
	}
	a.expect(t, "milk", "MILK FROM B")

	const versions = 8
	putVersions(t, func(i int) textindex.Index { return []textindex.Index{a.ix, b.ix}[i%2] }, versions)
	checkOneVersion(t, a, versions)
	checkOneVersion(t, b, versions)
}
