package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/textindex"
	"github.com/tallyhq/tally/upload"
)

// Similar finds rows like a text by meaning (the vector search of the
// `lines` collection); a nil Similar leaves it out.
type Similar func(ctx context.Context, text string, k int) ([]SimilarRow, error)

// SimilarRow is one row the vector search found.
type SimilarRow struct {
	ImageID   string
	ReceiptID int
	Text      string
	Merchant  string
	Score     float32
}

// result is one search result row on the page.
type result struct {
	Link     string
	Merchant string
	Date     string
	Spans    []textindex.Span
	Text     string
	Score    string
}

// maxQueryBytes bounds a search query.
const maxQueryBytes = 256

// search is the search page: exact words, phrases and prefixes from the
// full-text index, then rows similar in meaning from the vector search.
func (a *App) search(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	data := map[string]any{"Common": a.common(r, "Search", "search"), "Q": q, "TextIndex": a.cfg.Text != nil, "Vector": a.cfg.Similar != nil}
	if q == "" {
		a.render(w, http.StatusOK, "search", data)
		return
	}
	if len(q) > maxQueryBytes {
		data["Error"] = fmt.Sprintf("the query is longer than %d bytes", maxQueryBytes)
		a.render(w, http.StatusBadRequest, "search", data)
		return
	}
	seen := map[string]bool{}
	if a.cfg.Text != nil {
		hits, err := a.cfg.Text.Search(r.Context(), textindex.Query{Text: q, Limit: 50})
		if err != nil {
			status := statusOf(err)
			if status >= 500 {
				a.fail(w, err)
				return
			}
			data["Error"] = err.Error()
			a.render(w, status, "search", data)
			return
		}
		var rs []result
		ids := make([]string, len(hits))
		for i, h := range hits {
			ids[i] = h.ImageID
		}
		visible := upload.Visible(r.Context(), a.cfg.Items, ids...)
		for _, h := range hits {
			if !visible(h.ImageID) {
				continue
			}
			seen[h.ImageID+"#"+strconv.Itoa(h.ReceiptID)+"#"+h.Text] = true
			link := detailPath(h.ImageID, h.ReceiptID)
			if len(h.Terms) > 0 {
				link += "?hl=" + url.QueryEscape(strings.Join(h.Terms, ","))
			}
			rs = append(rs, result{Link: link, Merchant: h.Merchant, Date: h.Date, Spans: textindex.Spans(h.Snippet)})
		}
		data["Exact"] = rs
	}
	if a.cfg.Similar != nil {
		rows, err := a.cfg.Similar(r.Context(), q, 10)
		if err != nil && !isInvalid(err) {
			a.cfg.Log.Warn("similar rows", "err", err)
			data["SimilarError"] = "the similar-rows search is unavailable: " + err.Error()
		}
		var rs []result
		ids := make([]string, len(rows))
		for i, s := range rows {
			ids[i] = s.ImageID
		}
		visible := upload.Visible(r.Context(), a.cfg.Items, ids...)
		for _, s := range rows {
			if !visible(s.ImageID) {
				continue
			}
			if seen[s.ImageID+"#"+strconv.Itoa(s.ReceiptID)+"#"+s.Text] {
				continue
			}
			rs = append(rs, result{Link: detailPath(s.ImageID, s.ReceiptID), Merchant: s.Merchant, Text: s.Text,
				Score: strconv.FormatFloat(float64(s.Score), 'f', 2, 32)})
		}
		data["Similar"] = rs
	}
	a.render(w, http.StatusOK, "search", data)
}

func isInvalid(err error) bool { return errors.Is(err, tally.ErrInvalidArgument) }
