package label_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/label"
)

func openTable(t testing.TB) items.Table {
	t.Helper()
	tbl, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl
}

// putSummaries stores summaries as the label stage writes them.
func putSummaries(t testing.TB, tbl items.Table, ss []entities.ReceiptSummary) {
	t.Helper()
	var its []items.Item
	for _, s := range ss {
		it, err := s.Item()
		if err != nil {
			t.Fatal(err)
		}
		its = append(its, it)
	}
	if err := items.PutAll(context.Background(), tbl, its); err != nil {
		t.Fatal(err)
	}
}

// id names a summary by image and receipt.
func id(s entities.ReceiptSummary) string { return fmt.Sprintf("%s/%d", s.ImageID, s.ReceiptID) }

func ids(ss []entities.ReceiptSummary) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = id(s)
	}
	return out
}

// corpus is 23 summaries: dates over three months (two receipts on some
// days, two without a date), three merchants, totals 1.00 to 23.00 and
// every third one needing review. want lists them newest first.
func corpus() (all, newestFirst []entities.ReceiptSummary) {
	merchants := []string{"Costco Wholesale", "TARGET", "Blue Bottle Coffee"}
	for i := range 23 {
		s := entities.ReceiptSummary{
			ImageID:      fmt.Sprintf("img-%02d", i/2),
			ReceiptID:    i%2 + 1,
			MerchantName: merchants[i%3],
			Date:         time.Date(2024, 1, 1+i*4, 0, 0, 0, 0, time.UTC).Format("2006-01-02"),
			GrandTotal:   fmt.Sprintf("%d.00", i+1),
			Status:       entities.SummaryValid,
		}
		if i%2 == 1 { // the image's second receipt: the first's day
			s.Date = all[i-1].Date
		}
		if i == 5 || i == 17 {
			s.Date = ""
		}
		if i%3 == 2 {
			s.Status = entities.SummaryNeedsReview
		}
		all = append(all, s)
	}
	newestFirst = slices.Clone(all)
	slices.SortStableFunc(newestFirst, func(a, b entities.ReceiptSummary) int {
		ka := entities.SummaryByDateSK(a.Date, a.ImageID, a.ReceiptID)
		kb := entities.SummaryByDateSK(b.Date, b.ImageID, b.ReceiptID)
		switch {
		case ka > kb:
			return -1
		case ka < kb:
			return 1
		}
		return 0
	})
	return all, newestFirst
}

// listAll follows the tokens to the end, checking each page's size.
func listAll(t *testing.T, tbl items.Table, f label.Filter, limit int) ([]entities.ReceiptSummary, int) {
	t.Helper()
	var out []entities.ReceiptSummary
	token, pages := "", 0
	for {
		p, err := label.List(context.Background(), tbl, f, limit, token)
		if err != nil {
			t.Fatalf("List(%+v, %d, %q): %v", f, limit, token, err)
		}
		pages++
		if len(p.Summaries) > limit {
			t.Fatalf("page %d holds %d summaries, limit %d", pages, len(p.Summaries), limit)
		}
		if p.NextToken != "" && len(p.Summaries) != limit {
			t.Fatalf("page %d holds %d summaries but has a next token", pages, len(p.Summaries))
		}
		out = append(out, p.Summaries...)
		if p.NextToken == "" {
			return out, pages
		}
		if pages > 100 {
			t.Fatal("List does not end")
		}
		token = p.NextToken
	}
}

func TestListNewestFirstAndPaginates(t *testing.T) { eachBackend(t, testListNewestFirstAndPaginates) }

func testListNewestFirstAndPaginates(t *testing.T, tbl items.Table) {
	all, want := corpus()
	putSummaries(t, tbl, all)
	// A summary of another kind of item in the same image does not list.
	if err := tbl.Put(context.Background(), items.Item{items.AttrPK: "IMAGE#img-00", items.AttrSK: "RECEIPT#00001#LINE_ITEM#00000",
		items.AttrType: entities.TypeReceiptLineItem}, items.Cond{}); err != nil {
		t.Fatal(err)
	}

	for _, limit := range []int{1, 5, 22, 23, 24, label.MaxListLimit} {
		got, pages := listAll(t, tbl, label.Filter{}, limit)
		if !slices.Equal(ids(got), ids(want)) {
			t.Errorf("limit %d: got\n%v\nwant\n%v", limit, ids(got), ids(want))
		}
		if wantPages := (len(want) + limit - 1) / limit; pages != wantPages {
			t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}
	// The summaries come back whole.
	p, err := label.List(context.Background(), tbl, label.Filter{}, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Summaries[0]; s.MerchantName != want[0].MerchantName || s.GrandTotal != want[0].GrandTotal ||
		s.Date != want[0].Date || s.Status != want[0].Status || s.ReviewReasons == nil {
		t.Errorf("first summary %+v, want %+v", s, want[0])
	}
	// Undated receipts come last.
	if last := want[len(want)-1]; last.Date != "" {
		t.Fatalf("corpus: last is dated %s", last.Date)
	}
}

// TestListTokenIsKeyset: a token resumes right after the last summary
// returned even when summaries were written (before and after it) since.
func TestListTokenIsKeyset(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := openTable(t)
	all, want := corpus()
	putSummaries(t, tbl, all)
	p1, err := label.List(ctx, tbl, label.Filter{}, 5, "")
	if err != nil {
		t.Fatal(err)
	}
	// One newer than everything, one between the pages' boundary and the
	// next summary would be skipped or listed by a positional token.
	putSummaries(t, tbl, []entities.ReceiptSummary{
		{ImageID: "img-new", ReceiptID: 1, Date: "2030-01-01", Status: entities.SummaryValid},
		{ImageID: "img-zzz", ReceiptID: 1, Date: want[4].Date, Status: entities.SummaryValid},
	})
	p2, err := label.List(ctx, tbl, label.Filter{}, 5, p1.NextToken)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(p1.Summaries); !slices.Equal(got, ids(want[:5])) {
		t.Errorf("page 1 = %v, want %v", got, ids(want[:5]))
	}
	// img-zzz sorts above want[4] on the same day: it belongs to page 1's
	// range and is not listed again on page 2.
	if got := ids(p2.Summaries); !slices.Equal(got, ids(want[5:10])) {
		t.Errorf("page 2 = %v, want %v", got, ids(want[5:10]))
	}
}

func TestListFilters(t *testing.T) { eachBackend(t, testListFilters) }

func testListFilters(t *testing.T, tbl items.Table) {
	all, want := corpus()
	// A summary with no grand total and one whose total is not a number
	// never match a total bound.
	extra := []entities.ReceiptSummary{
		{ImageID: "img-nototal", ReceiptID: 1, MerchantName: "TARGET", Date: "2024-02-10", Status: entities.SummaryNeedsReview},
		{ImageID: "img-badtotal", ReceiptID: 1, MerchantName: "TARGET", Date: "2024-02-10", GrandTotal: "abc", Status: entities.SummaryNeedsReview},
	}
	putSummaries(t, tbl, append(slices.Clone(all), extra...))
	withExtra := append(slices.Clone(want), extra...)
	slices.SortStableFunc(withExtra, func(a, b entities.ReceiptSummary) int {
		ka := entities.SummaryByDateSK(a.Date, a.ImageID, a.ReceiptID)
		kb := entities.SummaryByDateSK(b.Date, b.ImageID, b.ReceiptID)
		if ka > kb {
			return -1
		}
		if ka < kb {
			return 1
		}
		return 0
	})
	amount := func(s string) float64 {
		var f float64
		fmt.Sscanf(s, "%f", &f)
		return f
	}
	tests := []struct {
		name   string
		filter label.Filter
		keep   func(entities.ReceiptSummary) bool
	}{
		{"merchant, any case", label.Filter{Merchant: "target"}, func(s entities.ReceiptSummary) bool { return s.MerchantName == "TARGET" }},
		{"merchant substring", label.Filter{Merchant: "BOTTLE co"}, func(s entities.ReceiptSummary) bool { return s.MerchantName == "Blue Bottle Coffee" }},
		{"merchant none", label.Filter{Merchant: "walmart"}, func(entities.ReceiptSummary) bool { return false }},
		{"from", label.Filter{From: "2024-03-01"}, func(s entities.ReceiptSummary) bool { return s.Date >= "2024-03-01" }},
		{"to includes the whole day", label.Filter{To: all[8].Date}, func(s entities.ReceiptSummary) bool { return s.Date != "" && s.Date <= all[8].Date }},
		{"from to", label.Filter{From: all[4].Date, To: all[10].Date}, func(s entities.ReceiptSummary) bool {
			return s.Date >= all[4].Date && s.Date <= all[10].Date
		}},
		{"one day", label.Filter{From: all[6].Date, To: all[6].Date}, func(s entities.ReceiptSummary) bool { return s.Date == all[6].Date }},
		{"min total", label.Filter{MinTotal: "12.5"}, func(s entities.ReceiptSummary) bool { return s.GrandTotal != "" && amount(s.GrandTotal) >= 12.5 }},
		{"min total inclusive", label.Filter{MinTotal: "20"}, func(s entities.ReceiptSummary) bool { return s.GrandTotal != "" && amount(s.GrandTotal) >= 20 }},
		{"max total", label.Filter{MaxTotal: "$3.00"}, func(s entities.ReceiptSummary) bool { return s.GrandTotal != "" && amount(s.GrandTotal) <= 3 }},
		{"total range", label.Filter{MinTotal: "4.00", MaxTotal: "9.00"}, func(s entities.ReceiptSummary) bool {
			return s.GrandTotal != "" && amount(s.GrandTotal) >= 4 && amount(s.GrandTotal) <= 9
		}},
		{"status", label.Filter{Status: "NEEDS_REVIEW"}, func(s entities.ReceiptSummary) bool { return s.Status == entities.SummaryNeedsReview }},
		{"status lower case", label.Filter{Status: "valid"}, func(s entities.ReceiptSummary) bool { return s.Status == entities.SummaryValid }},
		{"all together", label.Filter{Merchant: "costco", From: "2024-01-10", To: "2024-03-31", MinTotal: "2", Status: "VALID"}, func(s entities.ReceiptSummary) bool {
			return s.MerchantName == "Costco Wholesale" && s.Date >= "2024-01-10" && s.Date <= "2024-03-31" &&
				amount(s.GrandTotal) >= 2 && s.Status == entities.SummaryValid
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var wantIDs []string
			for _, s := range withExtra {
				if s.GrandTotal == "abc" && (tt.filter.MinTotal != "" || tt.filter.MaxTotal != "") {
					continue
				}
				if tt.keep(s) {
					wantIDs = append(wantIDs, id(s))
				}
			}
			for _, limit := range []int{2, 3, 100} {
				got, _ := listAll(t, tbl, tt.filter, limit)
				if !slices.Equal(ids(got), wantIDs) {
					t.Errorf("limit %d: got\n%v\nwant\n%v", limit, ids(got), wantIDs)
				}
			}
		})
	}
}

// TestListAppliedSummary: a summary stored by label.Apply lists, and
// relabelling moves it when its date changes (the index follows).
func TestListAppliedSummary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := openTable(t)
	r := label.Receipt{ImageID: "img-apply", ReceiptID: 1}
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	propose := func(date string) label.Proposal {
		return label.Proposal{Source: label.SourceRules, Fields: map[string]entities.SummaryField{
			label.MerchantName: {Text: "Corner Store", Source: label.SourceRules},
			label.Date:         {Value: date, Source: label.SourceRules},
			label.GrandTotal:   {Value: "7.50", Source: label.SourceRules},
		}}
	}
	if _, err := label.Apply(ctx, tbl, r, propose("2024-04-30"), at, ""); err != nil {
		t.Fatal(err)
	}
	list := func(f label.Filter) []string {
		p, err := label.List(ctx, tbl, f, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		return ids(p.Summaries)
	}
	if got := list(label.Filter{Merchant: "corner", From: "2024-04-30", To: "2024-04-30", MinTotal: "7.5", MaxTotal: "7.50"}); !slices.Equal(got, []string{"img-apply/1"}) {
		t.Errorf("applied summary: %v", got)
	}
	if _, err := label.Apply(ctx, tbl, r, propose("2024-05-02"), at, ""); err != nil {
		t.Fatal(err)
	}
	if got := list(label.Filter{To: "2024-04-30"}); len(got) != 0 {
		t.Errorf("old date still lists: %v", got)
	}
	if got := list(label.Filter{}); !slices.Equal(got, []string{"img-apply/1"}) {
		t.Errorf("relabelled: %v", got)
	}
}

func TestListBadArguments(t *testing.T) {
	t.Parallel()
	tbl := openTable(t)
	tests := []struct {
		name   string
		filter label.Filter
		limit  int
		token  string
	}{
		{name: "from not a date", filter: label.Filter{From: "2024-13-01"}, limit: 10},
		{name: "to not a date", filter: label.Filter{To: "yesterday"}, limit: 10},
		{name: "to without dashes", filter: label.Filter{To: "20240101"}, limit: 10},
		{name: "from after to", filter: label.Filter{From: "2024-02-01", To: "2024-01-01"}, limit: 10},
		{name: "min not an amount", filter: label.Filter{MinTotal: "ten"}, limit: 10},
		{name: "max not an amount", filter: label.Filter{MaxTotal: "1.2.3x"}, limit: 10},
		{name: "min over max", filter: label.Filter{MinTotal: "5", MaxTotal: "4.99"}, limit: 10},
		{name: "unknown status", filter: label.Filter{Status: "PENDING"}, limit: 10},
		{name: "limit 0", limit: 0},
		{name: "negative limit", limit: -1},
		{name: "limit over the maximum", limit: label.MaxListLimit + 1},
		{name: "token not base64", limit: 10, token: "!!!"},
		{name: "token not ours", limit: 10, token: "eyJmb28iOjF9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := label.List(context.Background(), tbl, tt.filter, tt.limit, tt.token)
			if !errors.Is(err, tally.ErrInvalidArgument) {
				t.Errorf("List(%+v, %d, %q) = %v, want ErrInvalidArgument", tt.filter, tt.limit, tt.token, err)
			}
		})
	}
}

func TestListEmpty(t *testing.T) {
	t.Parallel()
	p, err := label.List(context.Background(), openTable(t), label.Filter{Status: "VALID"}, 10, "")
	if err != nil || len(p.Summaries) != 0 || p.NextToken != "" || p.Summaries == nil {
		t.Errorf("List on an empty table = %+v, %v; want an empty page", p, err)
	}
}

func TestListOldestFirst(t *testing.T) { eachBackend(t, testListOldestFirst) }

// testListOldestFirst: Oldest pages the same summaries in the other order,
// with and without date bounds and the review index.
func testListOldestFirst(t *testing.T, tbl items.Table) {
	all, _ := corpus()
	putSummaries(t, tbl, all)
	for _, f := range []label.Filter{{}, {From: "2024-01-01", To: "2024-12-31"}, {Status: entities.SummaryNeedsReview}, {Merchant: "o"}} {
		nf := f
		want, _ := listAll(t, tbl, nf, label.MaxListLimit)
		slices.Reverse(want)
		of := f
		of.Oldest = true
		for _, limit := range []int{1, 4, label.MaxListLimit} {
			got, _ := listAll(t, tbl, of, limit)
			if !slices.Equal(ids(got), ids(want)) {
				t.Errorf("%+v limit %d: got\n%v\nwant\n%v", of, limit, ids(got), ids(want))
			}
		}
	}
}
