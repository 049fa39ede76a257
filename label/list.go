package label

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/money"
)

// MaxListLimit is the most summaries one List page holds.
const MaxListLimit = 500

// unknownDate is the date part of the summary-by-date sort key of a
// receipt whose date is unknown; dayEnd, appended to a date, sorts after
// every key of that day ('$' follows the '#' after the date).
const (
	unknownDate = "0000-00-00"
	dayEnd      = "$"
)

// Filter selects the summaries List returns; the zero value selects every
// one. Every field is optional and all given ones must hold.
type Filter struct {
	// Merchant is a case-insensitive substring of the merchant's name.
	Merchant string
	// From and To bound the receipt's date (YYYY-MM-DD), both inclusive.
	// A receipt whose date is unknown matches neither bound.
	From, To string
	// MinTotal and MaxTotal bound the grand total (decimal amounts, both
	// inclusive), compared exactly. A receipt without a grand total
	// matches neither bound.
	MinTotal, MaxTotal string
	// Status is VALID or NEEDS_REVIEW.
	Status string
	// Oldest pages oldest first (receipts of unknown date then come
	// first) instead of newest first. A token resumes in the order that
	// made it.
	Oldest bool
	// Owner lists one user's receipts ("" lists those without an owner:
	// accounts off). Each owner's summaries are their own index
	// partition (entities.OwnedPK).
	Owner string
}

// Page is one page of List: summaries newest first, and the token that
// continues right after the last of them ("" when there are no more).
type Page struct {
	Summaries []entities.ReceiptSummary
	NextToken string
}

// filter is a Filter parsed and checked.
type filter struct {
	merchant       string
	from, to       string
	min, max       money.Amount
	hasMin, hasMax bool
	status         string
	owner          string
	// postFilters is true when a filter other than the dates is set:
	// summaries are then read by the index page and matched one by one.
	postFilters bool
	// lowSK and highSK bound GSI4SK (inclusive); "" when unbounded.
	lowSK, highSK string
}

func parseFilter(f Filter) (filter, error) {
	bad := func(format string, args ...any) (filter, error) {
		return filter{}, fmt.Errorf("list receipts: "+format+": %w", append(args, tally.ErrInvalidArgument)...)
	}
	p := filter{merchant: strings.ToLower(strings.TrimSpace(f.Merchant)), owner: f.Owner}
	for _, d := range []struct {
		name string
		v    string
		dst  *string
	}{{"from", f.From, &p.from}, {"to", f.To, &p.to}} {
		v := strings.TrimSpace(d.v)
		if v == "" {
			continue
		}
		if _, err := time.Parse("2006-01-02", v); err != nil {
			return bad("%s %q is not a date (YYYY-MM-DD)", d.name, d.v)
		}
		*d.dst = v
	}
	if p.from != "" && p.to != "" && p.from > p.to {
		return bad("from %s is after to %s", p.from, p.to)
	}
	for _, a := range []struct {
		name string
		v    string
		dst  *money.Amount
		has  *bool
	}{{"min_total", f.MinTotal, &p.min, &p.hasMin}, {"max_total", f.MaxTotal, &p.max, &p.hasMax}} {
		if strings.TrimSpace(a.v) == "" {
			continue
		}
		amt, err := ParseAmount(a.v)
		if err != nil {
			return bad("%s %q is not an amount", a.name, a.v)
		}
		*a.dst, *a.has = amt, true
	}
	if p.hasMin && p.hasMax && p.min.Cmp(p.max) > 0 {
		return bad("min_total %s is more than max_total %s", p.min, p.max)
	}
	switch s := strings.ToUpper(strings.TrimSpace(f.Status)); s {
	case "", entities.SummaryValid, entities.SummaryNeedsReview:
		p.status = s
	default:
		return bad("status %q is neither %s nor %s", f.Status, entities.SummaryValid, entities.SummaryNeedsReview)
	}
	// NEEDS_REVIEW has an index of its own; VALID is filtered.
	p.postFilters = p.merchant != "" || p.hasMin || p.hasMax || (p.status != "" && p.status != entities.SummaryNeedsReview)
	// GSI4SK is "{date}#IMAGE#…": every key of day To sorts below
	// To+dayEnd, and every key of a later day above it. A To alone still
	// leaves out the receipts of unknown date ("0000-00-00#…").
	p.lowSK = p.from
	if p.to != "" {
		p.highSK = p.to + dayEnd
		if p.lowSK == "" {
			p.lowSK = unknownDate + dayEnd
		}
	}
	return p, nil
}

// match applies the filters the index's sort key cannot.
func (p filter) match(s entities.ReceiptSummary) bool {
	if s.Owner != p.owner {
		return false // the index partition is the owner's; this guards Matches
	}
	if p.merchant != "" && !strings.Contains(strings.ToLower(s.MerchantName), p.merchant) {
		return false
	}
	if p.status != "" && s.Status != p.status {
		return false
	}
	if p.hasMin || p.hasMax {
		total, err := ParseAmount(s.GrandTotal)
		if strings.TrimSpace(s.GrandTotal) == "" || err != nil {
			return false
		}
		if p.hasMin && total.Cmp(p.min) < 0 || p.hasMax && total.Cmp(p.max) > 0 {
			return false
		}
	}
	return true
}

// listToken is the decoded form of Page.NextToken: the GSI4SK of the last
// summary returned; the next page starts below it.
type listToken struct {
	After string `json:"after"`
}

func encodeListToken(sk string) string {
	data, _ := json.Marshal(listToken{After: sk})
	return base64.RawURLEncoding.EncodeToString(data)
}

func decodeListToken(s string) (string, error) {
	data, err := base64.RawURLEncoding.DecodeString(s)
	var tok listToken
	if err == nil {
		err = json.Unmarshal(data, &tok)
	}
	if err != nil || tok.After == "" || !utf8.ValidString(tok.After) || len(tok.After) > items.MaxSKBytes {
		return "", fmt.Errorf("list receipts: malformed token: %w", tally.ErrInvalidArgument)
	}
	return tok.After, nil
}

// List pages through receipt summaries newest first (by the receipt's
// date, receipts of unknown date last; Filter.Oldest reverses it) on the
// summary-by-date index. The
// date bounds are a condition on the index's sort key; the other filters
// are applied to each summary read, reading on until limit (1 to
// MaxListLimit) summaries match. token is "" for the first page or a
// previous Page's NextToken, which resumes right after the last summary
// that page returned, whatever was written since. Bad filters, limits
// and tokens are tally.ErrInvalidArgument.
func List(ctx context.Context, t items.Table, f Filter, limit int, token string) (Page, error) {
	p, err := parseFilter(f)
	if err != nil {
		return Page{}, err
	}
	if limit < 1 || limit > MaxListLimit {
		return Page{}, fmt.Errorf("list receipts: limit %d outside 1–%d: %w", limit, MaxListLimit, tally.ErrInvalidArgument)
	}
	low, high := p.lowSK, p.highSK
	skip := "" // the token's summary, returned by the previous page
	if token != "" {
		after, err := decodeListToken(token)
		if err != nil {
			return Page{}, err
		}
		switch {
		case !f.Oldest && (high == "" || after <= high):
			high, skip = after, after
		case f.Oldest && (low == "" || after >= low):
			low, skip = after, after
		}
	}
	cond := items.SKCond{}
	switch {
	case low != "" && high != "":
		if low > high {
			return Page{Summaries: []entities.ReceiptSummary{}}, nil
		}
		// No exclusive between: the summary at the token is skipped below.
		cond = items.SKCond{Op: items.SKBetween, Value: low, Value2: high}
	case low != "" && skip != "":
		cond = items.SKCond{Op: items.SKGreater, Value: low}
	case low != "":
		cond = items.SKCond{Op: items.SKGreaterEq, Value: low}
	case high != "" && skip != "":
		cond = items.SKCond{Op: items.SKLess, Value: high}
	case high != "":
		cond = items.SKCond{Op: items.SKLessEq, Value: high}
	}
	q := items.Query{Index: entities.SummaryByDateIndex, PK: entities.OwnedPK(entities.SummaryByDatePK, f.Owner), SK: cond, Reverse: !f.Oldest, Limit: limit + 1}
	if p.status == entities.SummaryNeedsReview {
		q.Index, q.PK = entities.SummaryReviewIndex, entities.OwnedPK(entities.SummaryReviewPK, f.Owner)
	}
	if p.postFilters {
		q.Limit = items.MaxQueryLimit
	}

	out := make([]entities.ReceiptSummary, 0, min(limit, 64))
	var last string
	for {
		page, err := t.Query(ctx, q)
		if err != nil {
			return Page{}, fmt.Errorf("list receipts: %w", err)
		}
		for _, it := range page.Items {
			sk, _ := it[summaryByDateSKAttr].(string)
			if skip != "" && sk == skip {
				continue
			}
			if typ, _ := it[items.AttrType].(string); typ != entities.TypeReceiptSummary {
				continue
			}
			s, err := decodeSummary(it)
			if err != nil {
				return Page{}, fmt.Errorf("list receipts: %w", err)
			}
			if !p.match(s) {
				continue
			}
			if len(out) == limit {
				// Another match: there is a next page.
				return Page{Summaries: out, NextToken: encodeListToken(last)}, nil
			}
			out, last = append(out, s), sk
		}
		if page.NextToken == "" {
			return Page{Summaries: out}, nil
		}
		if len(out) == limit {
			return Page{Summaries: out, NextToken: encodeListToken(last)}, nil
		}
		q.Token = page.NextToken
	}
}

// summaryByDateSKAttr is the attribute holding a summary's
// entities.SummaryByDateSK (the summary-by-date index's sort key).
const summaryByDateSKAttr = "GSI4SK"

// decodeSummary reads a RECEIPT_SUMMARY item into a summary, as
// entities.LoadUnderstanding does: through the item's JSON form, key and
// index attributes ignored.
func decodeSummary(it items.Item) (entities.ReceiptSummary, error) {
	m := make(map[string]any, len(it))
	for k, v := range it {
		m[k] = v
	}
	data, err := json.Marshal(items.Output(m))
	if err != nil {
		return entities.ReceiptSummary{}, fmt.Errorf("%w: %s %s: %v", entities.ErrMalformedItem, it.Key().PK, it.Key().SK, err)
	}
	var s entities.ReceiptSummary
	if err := json.Unmarshal(data, &s); err != nil {
		return entities.ReceiptSummary{}, fmt.Errorf("%w: %s %s: %v", entities.ErrMalformedItem, it.Key().PK, it.Key().SK, err)
	}
	if s.ReviewReasons == nil {
		s.ReviewReasons = []string{}
	}
	return s, nil
}

// Matches tells whether a summary passes f (dates, merchant, totals,
// status), for callers that found summaries another way (a text search);
// a bad filter is tally.ErrInvalidArgument.
func (f Filter) Matches(s entities.ReceiptSummary) (bool, error) {
	p, err := parseFilter(f)
	if err != nil {
		return false, err
	}
	if p.lowSK != "" || p.highSK != "" {
		sk := entities.SummaryByDateSK(s.Date, s.ImageID, s.ReceiptID)
		if (p.lowSK != "" && sk < p.lowSK) || (p.highSK != "" && sk > p.highSK) {
			return false, nil
		}
	}
	return p.match(s), nil
}
