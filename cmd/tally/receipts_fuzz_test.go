package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/label"
)

// fuzzTable is an embedded table holding testReceipt as img-labelled
// (labelled) and img-unlabelled, and a few more summaries to list.
func fuzzTable(f *testing.F) items.Table {
	f.Helper()
	ctx := context.Background()
	tbl, err := itemssqlite.Open(ctx, filepath.Join(f.TempDir(), "items.db"), items.DefaultIndexes)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { tbl.Close() })
	for _, id := range []string{"img-labelled", "img-unlabelled"} {
		set := testReceipt(id)
		if err := entities.Write(ctx, tbl, set); err != nil {
			f.Fatal(err)
		}
		if id == "img-labelled" {
			if _, err := label.Apply(ctx, tbl, label.FromSet(set, 1), testProposal(), time.Date(2024, 3, 5, 12, 0, 0, 0, time.UTC), "run-1"); err != nil {
				f.Fatal(err)
			}
		}
	}
	for i, m := range []string{"Costco", "Target", "Blue Bottle"} {
		s := entities.ReceiptSummary{ImageID: "img-" + m, ReceiptID: 1, MerchantName: m, Date: "2024-02-1" + string(rune('0'+i)),
			GrandTotal: []string{"20.50", "", "7"}[i], Status: entities.SummaryNeedsReview}
		it, err := s.Item()
		if err != nil {
			f.Fatal(err)
		}
		if err := tbl.Put(ctx, it, items.Cond{}); err != nil {
			f.Fatal(err)
		}
	}
	return tbl
}

// FuzzListReceiptsQuery: GET /receipts with any query string is 200 with
// a page (at most limit summaries, each matching the filters) or 400 with
// an error body, never 5xx.
func FuzzListReceiptsQuery(f *testing.F) {
	tbl := fuzzTable(f)
	h := listReceiptsHandler(tbl)
	for _, q := range []string{
		"", "merchant=COST", "merchant=corner+store", "from=2024-02-12&to=2024-02-14", "to=2024-02-11",
		"min_total=22.50&max_total=24.5", "max_total=10.80", "status=VALID", "status=NEEDS_REVIEW&merchant=target&min_total=21.51",
		"limit=1", "limit=0", "limit=501", "limit=x", "limit=99999999999999999999", "token=!!!", "token=eyJmb28iOjF9",
		"limit=1&token=eyJhZnRlciI6IjIwMjQtMDItMTIjSU1BR0UjaW1nLUJsdWUgQm90dGxlI1JFQ0VJUFQjMDAwMDEifQ",
		"from=2024-13-01", "min_total=ten", "min_total=5&max_total=4", "status=PENDING", "%zz", "merchant=%00&from=;",
		"min_total=922337203685477580&max_total=922337203685477581",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, "/receipts", nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			var page receiptsPage
			if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
				t.Fatalf("GET /receipts?%s: 200 with a bad body: %v", query, err)
			}
			q := req.URL.Query()
			flt := label.Filter{Merchant: q.Get("merchant"), From: q.Get("from"), To: q.Get("to"),
				MinTotal: q.Get("min_total"), MaxTotal: q.Get("max_total"), Status: q.Get("status")}
			for _, s := range page.Receipts {
				if ok, err := flt.Matches(s); !ok || err != nil {
					t.Fatalf("GET /receipts?%s listed %s/%d, which does not match (%v)", query, s.ImageID, s.ReceiptID, err)
				}
			}
		case http.StatusBadRequest:
			var e map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e["error"] == "" {
				t.Fatalf("GET /receipts?%s: 400 without an error body: %s", query, rec.Body)
			}
		default:
			t.Fatalf("GET /receipts?%s = %d %s; want 200 or 400", query, rec.Code, rec.Body)
		}
	})
}

// FuzzCorrectReceipt: PATCH /receipts/{image_id}/{receipt_id} with any
// path and body is 200 with the recomputed understanding, whose corrected
// amounts are the values sent rounded to cents, or a 4xx (never 5xx) that
// leaves the stored understanding exactly as it was. The body goes
// through decodeCorrection, so whatever it accepts re-encodes to the same
// correction.
func FuzzCorrectReceipt(f *testing.F) {
	tbl := fuzzTable(f)
	h := correctReceiptHandler(tbl, func() time.Time { return time.Date(2024, 3, 6, 9, 0, 0, 0, time.UTC) })
	for _, s := range []struct{ image, receipt, body string }{
		{"img-labelled", "1", `{"fields":{"GRAND_TOTAL":{"value":"12.30","words":[[6,2]]}}}`},
		{"img-labelled", "1", `{"fields":{"MERCHANT_NAME":{"value":"Corner","text":"CORNER"}},"accept":true}`},
		{"img-labelled", "1", `{"labels":[{"line_id":5,"word_id":2,"label":"TAX","from":"GRAND_TOTAL"},{"line_id":1,"word_id":1,"label":"MERCHANT_NAME","remove":true}]}`},
		{"img-labelled", "1", `{"accept":true}`},
		{"img-labelled", "1", `{"fields":{"GRAND_TOTAL":{"valu":"12.30"}}}`},
		{"img-labelled", "1", `{"field":{"GRAND_TOTAL":{"value":"12.30"}}}`},
		{"img-labelled", "1", `{"fields":{"GRAND_TOTAL":{"value":"twelve"}}}`},
		{"img-labelled", "1", `{"fields":{"GRAND_TOTAL":{"value":"922337203685477580"}}}`},
		{"img-labelled", "1", `{"fields":{"DATE":{"value":"2024-02-30"}}}`},
		{"img-labelled", "1", `{"fields":{"COLOUR":{"value":"red"}}}`},
		{"img-labelled", "1", `{"labels":[{"line_id":99,"word_id":1,"label":"TAX"}]}`},
		{"img-labelled", "1", `{"fields":{"TAX":{"value":"0.80","words":[[4,9]]}}}`},
		{"img-labelled", "1", `{"fields":{"GRAND_TOTAL":{"value":"12.30"}},"labels":[{"line_id":99,"word_id":1,"label":"TAX"}]}`},
		{"img-labelled", "1", `{}`}, {"img-labelled", "1", ``}, {"img-labelled", "1", `GRAND_TOTAL=12.30`},
		{"img-labelled", "1", `{"labels":[]} {"labels":[]}`},
		{"img-labelled", "one", `{"accept":true}`}, {"img-labelled", "0", `{"accept":true}`}, {"img-labelled", "-1", `{"accept":true}`},
		{"no-such-image", "1", `{"accept":true}`}, {"img-labelled", "2", `{"accept":true}`}, {"img-unlabelled", "1", `{"accept":true}`},
		{"a#b", "1", `{"accept":true}`}, {"", "1", `{}`},
	} {
		f.Add(s.image, s.receipt, []byte(s.body))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, imageID, receiptID string, body []byte) {
		before, _, err := label.Stored(ctx, tbl, "img-labelled", 1)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPatch, "/receipts/x/1", bytes.NewReader(body))
		req.SetPathValue("image_id", imageID)
		req.SetPathValue("receipt_id", receiptID)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 || (rec.Code != http.StatusOK && rec.Code < 400) {
			t.Fatalf("PATCH %q/%q %q = %d %s", imageID, receiptID, body, rec.Code, rec.Body)
		}
		if rec.Code != http.StatusOK {
			after, _, err := label.Stored(ctx, tbl, "img-labelled", 1)
			if err != nil || !reflect.DeepEqual(before, after) {
				t.Fatalf("a refused correction (%d %s) changed the receipt (%v)", rec.Code, rec.Body, err)
			}
			if _, ok, _ := label.Stored(ctx, tbl, "img-unlabelled", 1); ok {
				t.Fatal("a correction of a receipt never labelled stored a summary")
			}
			return
		}
		c, err := decodeCorrection(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("200 for a body decodeCorrection refuses: %v", err)
		}
		enc, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if c2, err := decodeCorrection(bytes.NewReader(enc)); err != nil || !reflect.DeepEqual(normCorrection(c), normCorrection(c2)) {
			t.Fatalf("correction round trip: %+v → %s → %+v, %v", c, enc, c2, err)
		}
		var got understandingBody
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("200 with a bad body: %v", err)
		}
		for name, fc := range c.Fields {
			canon, err := label.Canonical(name)
			if err != nil || !label.AmountFields[canon] || strings.TrimSpace(fc.Value) == "" {
				continue
			}
			a, err := label.ParseAmount(fc.Value)
			if err != nil {
				t.Fatalf("accepted amount %q that does not parse: %v", fc.Value, err)
			}
			if v := got.Summary.Fields[canon].Value; v != a.Fixed(2) {
				t.Fatalf("%s corrected to %q stored as %q", canon, fc.Value, v)
			}
		}
	})
}

// normCorrection maps empty lists to nil, as omitempty does.
func normCorrection(c label.Correction) label.Correction {
	if len(c.Fields) == 0 {
		c.Fields = nil
	}
	if len(c.Labels) == 0 {
		c.Labels = nil
	}
	for k, fc := range c.Fields {
		if len(fc.Words) == 0 {
			fc.Words = nil
		}
		c.Fields[k] = fc
	}
	return c
}
