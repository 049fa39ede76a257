package label_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/label"
)

// FuzzList: the list filters as GET /receipts and the web app pass them
// from a query string (merchant, from, to, min_total, max_total, status,
// sort, limit, token) either are tally.ErrInvalidArgument or give a page
// of at most limit summaries; a first page is exactly the first limit
// summaries of the corpus, in order, that Filter.Matches; a next token
// resumes without repeating any.
func FuzzList(f *testing.F) {
	tbl := openTable(f)
	all, newestFirst := corpus()
	putSummaries(f, tbl, all)
	type seed struct {
		merchant, from, to, min, max, status string
		oldest                               bool
		limit                                int
		token                                string
	}
	for _, s := range []seed{
		{limit: 10}, {merchant: "cost", limit: 3}, {from: "2024-01-05", to: "2024-02-14", limit: 4},
		{to: "2024-02-01", limit: 50, oldest: true}, {min: "3", max: "$12.50", limit: 2}, {status: "needs_review", limit: 5},
		{status: " VALID ", merchant: " Target", min: "1,000.00", limit: 500}, {from: "2024-13-01", limit: 10},
		{to: "yesterday", limit: 10}, {from: "2024-02-01", to: "2024-01-01", limit: 10}, {min: "ten", limit: 10},
		{max: "1.2.3x", limit: 10}, {min: "5", max: "4.99", limit: 10}, {status: "PENDING", limit: 10}, {limit: 0},
		{limit: -1}, {limit: label.MaxListLimit + 1}, {limit: 10, token: "!!!"}, {limit: 10, token: "eyJmb28iOjF9"},
		{limit: 2, token: "eyJhZnRlciI6IjIwMjQtMDEtMjEjSU1BR0UjaW1nLTAyI1JFQ0VJUFQjMDAwMDEifQ"},
		{min: "99999999999999999", max: "(2.00)", limit: 10}, {min: "-0.001", max: "0.0001", limit: 10},
	} {
		f.Add(s.merchant, s.from, s.to, s.min, s.max, s.status, s.oldest, s.limit, s.token)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, merchant, from, to, min, max, status string, oldest bool, limit int, token string) {
		flt := label.Filter{Merchant: merchant, From: from, To: to, MinTotal: min, MaxTotal: max, Status: status, Oldest: oldest}
		page, err := label.List(ctx, tbl, flt, limit, token)
		_, merr := flt.Matches(entities.ReceiptSummary{})
		if err != nil {
			if !errors.Is(err, tally.ErrInvalidArgument) {
				t.Fatalf("List(%+v, %d, %q) = %v, want tally.ErrInvalidArgument", flt, limit, token, err)
			}
			if merr == nil && limit >= 1 && limit <= label.MaxListLimit && token == "" {
				t.Fatalf("List refused a filter Matches accepts: %v", err)
			}
			return
		}
		if merr != nil {
			t.Fatalf("List accepted a filter Matches refuses: %v", merr)
		}
		if len(page.Summaries) > limit || (page.NextToken != "" && len(page.Summaries) != limit) {
			t.Fatalf("page of %d summaries (limit %d), next token %q", len(page.Summaries), limit, page.NextToken)
		}
		for _, s := range page.Summaries {
			if ok, err := flt.Matches(s); !ok || err != nil {
				t.Fatalf("listed %s, which the filter does not match (%v)", id(s), err)
			}
		}
		if token == "" {
			order := newestFirst
			if oldest {
				order = slices.Clone(newestFirst)
				slices.Reverse(order)
			}
			var want []string
			for _, s := range order {
				if ok, _ := flt.Matches(s); ok && len(want) < limit {
					want = append(want, id(s))
				}
			}
			if got := ids(page.Summaries); !slices.Equal(got, want) {
				t.Fatalf("List(%+v, %d) = %v, want %v", flt, limit, got, want)
			}
		}
		if page.NextToken != "" {
			next, err := label.List(ctx, tbl, flt, limit, page.NextToken)
			if err != nil {
				t.Fatalf("next page: %v", err)
			}
			for _, s := range next.Summaries {
				if slices.Contains(ids(page.Summaries), id(s)) {
					t.Fatalf("next page repeats %s", id(s))
				}
			}
		}
	})
}
