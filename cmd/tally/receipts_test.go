package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/ocr"
)

// testLines are the printed lines of the test receipt, top to bottom.
var testLines = []string{"CORNER STORE", "2024-03-05", "SUBTOTAL 10.00", "TAX 0.80", "TOTAL 10.80", "CASH 12.30"}

// testReceipt is an image holding one receipt whose lines are
// testLines, laid out top to bottom in the receipt's space (y up).
func testReceipt(imageID string) entities.Set {
	const w, h = 400, 600
	s := entities.Set{
		Images:   []entities.Image{{ImageID: imageID, Width: 1000, Height: 1500, TimestampAdded: "2024-03-05T10:00:00Z", RawS3Bucket: "local", RawS3Key: "raw/" + imageID + ".jpg"}},
		Receipts: []entities.Receipt{{ImageID: imageID, ReceiptID: 1, Width: w, Height: h, TimestampAdded: "2024-03-05T10:00:00Z"}},
	}
	box := func(x0, x1, y0, y1 float64) ocr.Geometry {
		return ocr.NewGeometry(ocr.Quad{TopLeft: ocr.Point{X: x0, Y: y1}, TopRight: ocr.Point{X: x1, Y: y1},
			BottomRight: ocr.Point{X: x1, Y: y0}, BottomLeft: ocr.Point{X: x0, Y: y0}}, 0.95)
	}
	for i, text := range testLines {
		y1 := 0.95 - float64(i)*0.1
		y0 := y1 - 0.05
		line := entities.ReceiptLine{ImageID: imageID, ReceiptID: 1, LineID: i + 1, Text: text, Geometry: box(0.1, 0.9, y0, y1)}
		s.ReceiptLines = append(s.ReceiptLines, line)
		words := strings.Fields(text)
		for j, word := range words {
			x0 := 0.1 + 0.8*float64(j)/float64(len(words))
			x1 := x0 + 0.8/float64(len(words)) - 0.02
			s.ReceiptWords = append(s.ReceiptWords, entities.ReceiptWord{ImageID: imageID, ReceiptID: 1, LineID: i + 1, WordID: j + 1,
				Text: word, Tags: []string{}, Geometry: box(x0, x1, y0, y1)})
		}
	}
	return s
}

// testProposal is what a labeller would say about testReceipt: merchant,
// date, subtotal 10.00 + tax 0.80 = total 10.80 (the totals add up).
func testProposal() label.Proposal {
	field := func(text, value string, words ...entities.WordRef) entities.SummaryField {
		return entities.SummaryField{Text: text, Value: value, Words: words, Confidence: 0.9, Source: label.SourceRules}
	}
	p := label.Proposal{Source: label.SourceRules, Currency: "USD", Fields: map[string]entities.SummaryField{
		label.MerchantName: field("CORNER STORE", "CORNER STORE", entities.WordRef{1, 1}, entities.WordRef{1, 2}),
		label.Date:         field("2024-03-05", "2024-03-05", entities.WordRef{2, 1}),
		label.Subtotal:     field("10.00", "10.00", entities.WordRef{3, 2}),
		label.Tax:          field("0.80", "0.80", entities.WordRef{4, 2}),
		label.GrandTotal:   field("10.80", "10.80", entities.WordRef{5, 2}),
	}}
	for name, f := range p.Fields {
		for _, ref := range f.Words {
			p.Labels = append(p.Labels, label.WordLabel{Word: ref, Label: name, Confidence: 0.9, Source: label.SourceRules})
		}
	}
	return p
}

// storeReceipt writes testReceipt's entities and, when labelled, its
// understanding (as the process stage would) into tbl.
func storeReceipt(t *testing.T, tbl items.Table, imageID string, labelled bool) entities.Understanding {
	t.Helper()
	ctx := context.Background()
	set := testReceipt(imageID)
	if err := entities.Write(ctx, tbl, set); err != nil {
		t.Fatal(err)
	}
	if !labelled {
		return entities.Understanding{}
	}
	u, err := label.Apply(ctx, tbl, label.FromSet(set, 1), testProposal(), time.Date(2024, 3, 5, 12, 0, 0, 0, time.UTC), "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if u.Summary.Status != entities.SummaryValid {
		t.Fatalf("test receipt labelled %s: %v", u.Summary.Status, u.Summary.ReviewReasons)
	}
	return u
}

// openTestPorts opens the ports of cfg (a server's data directory) for the
// test to write through.
func openTestPorts(t *testing.T, cfg config.Config) *ports {
	t.Helper()
	p, err := openPorts(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// stored reads a receipt's understanding back.
func stored(t *testing.T, tbl items.Table, imageID string) entities.Understanding {
	t.Helper()
	u, ok, err := label.Stored(context.Background(), tbl, imageID, 1)
	if err != nil || !ok {
		t.Fatalf("stored understanding of %s: %v %v", imageID, ok, err)
	}
	return u
}

func findLabel(ls []entities.ReceiptWordLabel, line, word int, name string) (entities.ReceiptWordLabel, bool) {
	for _, l := range ls {
		if l.LineID == line && l.WordID == word && l.Label == name {
			return l, true
		}
	}
	return entities.ReceiptWordLabel{}, false
}

// TestReceiptsHTTP: GET /receipts lists stored summaries with filters and
// pages; PATCH /receipts/{image}/{receipt} corrects one, recomputing its
// summary, and refuses bad corrections without storing anything.
func TestReceiptsHTTP(t *testing.T) {
	t.Parallel()
	cfg, addr := startServe(t)
	server := "http://" + addr
	tbl := openTestPorts(t, cfg).Items
	storeReceipt(t, tbl, "img-labelled", true)
	storeReceipt(t, tbl, "img-unlabelled", false)
	// More summaries to list: different days, merchants, totals.
	for i := range 6 {
		s := entities.ReceiptSummary{ImageID: fmt.Sprintf("img-%d", i), ReceiptID: 1, MerchantName: []string{"Costco", "Target"}[i%2],
			Date: fmt.Sprintf("2024-02-%02d", 10+i), GrandTotal: fmt.Sprintf("%d.50", 20+i), Status: entities.SummaryNeedsReview}
		it, err := s.Item()
		if err != nil {
			t.Fatal(err)
		}
		if err := tbl.Put(context.Background(), it, items.Cond{}); err != nil {
			t.Fatal(err)
		}
	}

	list := func(t *testing.T, query string) (int, receiptsPage, string) {
		t.Helper()
		resp, err := http.Get(server + "/receipts?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var page receiptsPage
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(data, &page); err != nil {
				t.Fatalf("GET /receipts?%s: %v: %s", query, err, data)
			}
		}
		return resp.StatusCode, page, string(data)
	}
	names := func(p receiptsPage) []string {
		var out []string
		for _, s := range p.Receipts {
			out = append(out, s.ImageID)
		}
		return out
	}

	t.Run("list", func(t *testing.T) {
		tests := []struct {
			query string
			want  []string
		}{
			{"", []string{"img-labelled", "img-5", "img-4", "img-3", "img-2", "img-1", "img-0"}},
			{"merchant=COST", []string{"img-4", "img-2", "img-0"}},
			{"merchant=corner+store", []string{"img-labelled"}},
			{"from=2024-02-12&to=2024-02-14", []string{"img-4", "img-3", "img-2"}},
			{"to=2024-02-11", []string{"img-1", "img-0"}},
			{"min_total=22.50&max_total=24.5", []string{"img-4", "img-3", "img-2"}},
			{"max_total=10.80", []string{"img-labelled"}},
			{"status=VALID", []string{"img-labelled"}},
			{"status=NEEDS_REVIEW&merchant=target&min_total=21.51", []string{"img-5", "img-3"}},
		}
		for _, tt := range tests {
			code, page, body := list(t, tt.query)
			if code != http.StatusOK || !slices.Equal(names(page), tt.want) || page.NextToken != "" {
				t.Errorf("GET /receipts?%s = %d %v %q (%s), want %v", tt.query, code, names(page), page.NextToken, body, tt.want)
			}
		}
		// Pages of 3 follow each other with no gap nor repeat.
		var got []string
		token := ""
		for range 10 {
			v := url.Values{"limit": {"3"}}
			if token != "" {
				v.Set("token", token)
			}
			code, page, body := list(t, v.Encode())
			if code != http.StatusOK {
				t.Fatalf("page: %d %s", code, body)
			}
			got = append(got, names(page)...)
			if token = page.NextToken; token == "" {
				break
			}
		}
		if want := []string{"img-labelled", "img-5", "img-4", "img-3", "img-2", "img-1", "img-0"}; !slices.Equal(got, want) {
			t.Errorf("paged = %v, want %v", got, want)
		}
		// The summary comes whole: fields, checks, status.
		_, page, _ := list(t, "status=VALID")
		if s := page.Receipts[0]; s.GrandTotal != "10.80" || s.Fields[label.GrandTotal].Text != "10.80" || len(s.Checks) == 0 || s.ReviewReasons == nil {
			t.Errorf("listed summary %+v", s)
		}
		for _, q := range []string{"from=2024-13-01", "to=March", "min_total=ten", "max_total=1.2x", "status=DONE",
			"limit=0", "limit=501", "limit=abc", "token=!!!", "from=2024-03-01&to=2024-02-01"} {
			if code, _, body := list(t, q); code != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
				t.Errorf("GET /receipts?%s = %d %s, want 400 with an error", q, code, body)
			}
		}
	})

	patch := func(t *testing.T, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPatch, server+"/receipts/"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}

	t.Run("refused corrections store nothing", func(t *testing.T) {
		before := stored(t, tbl, "img-labelled")
		tests := []struct {
			name, path, body string
			code             int
			want             string
		}{
			{"unknown field", "img-labelled/1", `{"fields":{"GRAND_TOTAL":{"valu":"12.30"}}}`, 400, `unknown field \"valu\"`},
			{"unknown top-level field", "img-labelled/1", `{"field":{"GRAND_TOTAL":{"value":"12.30"}}}`, 400, `unknown field \"field\"`},
			{"total not a number", "img-labelled/1", `{"fields":{"GRAND_TOTAL":{"value":"twelve"}}}`, 400, "not an amount"},
			{"date not a date", "img-labelled/1", `{"fields":{"DATE":{"value":"2024-02-30"}}}`, 400, "not a date"},
			{"unknown field name", "img-labelled/1", `{"fields":{"COLOUR":{"value":"red"}}}`, 400, "unknown label"},
			{"unknown label", "img-labelled/1", `{"labels":[{"line_id":1,"word_id":1,"label":"FLAVOUR"}]}`, 400, "unknown label"},
			{"unknown word", "img-labelled/1", `{"labels":[{"line_id":99,"word_id":1,"label":"TAX"}]}`, 400, "no such word"},
			{"unknown field word", "img-labelled/1", `{"fields":{"TAX":{"value":"0.80","words":[[4,9]]}}}`, 400, "no such word"},
			{"good then bad", "img-labelled/1", `{"fields":{"GRAND_TOTAL":{"value":"12.30"}},"labels":[{"line_id":99,"word_id":1,"label":"TAX"}]}`, 400, "no such word"},
			{"nothing to correct", "img-labelled/1", `{}`, 400, "nothing to correct"},
			{"empty body", "img-labelled/1", ``, 400, "empty body"},
			{"not JSON", "img-labelled/1", `GRAND_TOTAL=12.30`, 400, "invalid character"},
			{"two values", "img-labelled/1", `{"labels":[]} {"labels":[]}`, 400, "more than one"},
			{"too large", "img-labelled/1", `{"fields":{"MERCHANT_NAME":{"value":"` + strings.Repeat("x", maxCorrectionBytes) + `"}}}`, 413, "bytes"},
			{"receipt not a number", "img-labelled/one", `{"fields":{"GRAND_TOTAL":{"value":"1"}}}`, 400, "receipt_id"},
			{"receipt 0", "img-labelled/0", `{"fields":{"GRAND_TOTAL":{"value":"1"}}}`, 400, "receipt_id"},
			{"unknown image", "no-such-image/1", `{"fields":{"GRAND_TOTAL":{"value":"1"}}}`, 404, "not found"},
			{"unknown receipt", "img-labelled/2", `{"fields":{"GRAND_TOTAL":{"value":"1"}}}`, 404, "no receipt 2"},
			{"never labelled", "img-unlabelled/1", `{"fields":{"GRAND_TOTAL":{"value":"1"}}}`, 404, "no summary"},
		}
		for _, tt := range tests {
			code, body := patch(t, tt.path, tt.body)
			if code != tt.code || !strings.Contains(body, tt.want) || !strings.Contains(body, `"error"`) {
				t.Errorf("%s: PATCH %s = %d %.300s; want %d containing %q", tt.name, tt.path, code, body, tt.code, tt.want)
			}
		}
		if after := stored(t, tbl, "img-labelled"); !reflect.DeepEqual(after, before) {
			t.Errorf("a refused correction changed the receipt:\nbefore %+v\nafter  %+v", before, after)
		}
		if _, ok, _ := label.Stored(context.Background(), tbl, "img-unlabelled", 1); ok {
			t.Error("a correction of a receipt never labelled stored a summary")
		}
	})

	t.Run("correct the total", func(t *testing.T) {
		// The person says the total is the 12.30 printed on the last line.
		code, body := patch(t, "img-labelled/1", `{"fields":{"GRAND_TOTAL":{"value":"12.30","words":[[6,2]]}}}`)
		if code != http.StatusOK {
			t.Fatalf("PATCH = %d %s", code, body)
		}
		var got understandingBody
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		s := got.Summary
		if s.GrandTotal != "12.30" || s.Fields[label.GrandTotal].Source != label.SourceUser || s.Fields[label.GrandTotal].Text != "12.30" {
			t.Errorf("summary total %q field %+v", s.GrandTotal, s.Fields[label.GrandTotal])
		}
		// 10.00 + 0.80 is not 12.30: the check fails and the receipt
		// needs review; nothing was changed to make it pass.
		if s.Status != entities.SummaryNeedsReview || s.Subtotal != "10.00" || s.Tax != "0.80" {
			t.Errorf("summary %s subtotal %s tax %s, want NEEDS_REVIEW with the printed figures", s.Status, s.Subtotal, s.Tax)
		}
		failed := false
		for _, c := range s.Checks {
			if c.Name == label.CheckTotalsAddUp {
				failed = c.Status == entities.CheckFail
			}
		}
		if !failed || !slices.ContainsFunc(s.ReviewReasons, func(r string) bool { return strings.Contains(r, label.CheckTotalsAddUp) }) {
			t.Errorf("checks %+v reasons %v, want %s failed", s.Checks, s.ReviewReasons, label.CheckTotalsAddUp)
		}
		if old, ok := findLabel(got.Labels, 5, 2, label.GrandTotal); !ok || old.ValidationStatus != entities.LabelInvalid {
			t.Errorf("old total label %+v %v, want INVALID", old, ok)
		}
		if nu, ok := findLabel(got.Labels, 6, 2, label.GrandTotal); !ok || nu.ValidationStatus != entities.LabelValid || nu.LabelProposedBy != label.SourceUser {
			t.Errorf("new total label %+v %v, want the user's, VALID", nu, ok)
		}
		if got.LineItems == nil {
			t.Error("line_items is null, want []")
		}
		// It is what is stored, and lists accordingly.
		if after := stored(t, tbl, "img-labelled"); after.Summary.GrandTotal != "12.30" || after.Summary.Status != entities.SummaryNeedsReview {
			t.Errorf("stored summary %+v", after.Summary)
		}
		if _, page, _ := list(t, "status=NEEDS_REVIEW&min_total=12.30&max_total=12.30"); !slices.Equal(names(page), []string{"img-labelled"}) {
			t.Errorf("listed after the correction: %v", names(page))
		}
	})

	t.Run("correct a word label", func(t *testing.T) {
		code, body := patch(t, "img-labelled/1", `{"labels":[{"line_id":6,"word_id":1,"label":"payment_method"}]}`)
		if code != http.StatusOK {
			t.Fatalf("PATCH = %d %s", code, body)
		}
		var got understandingBody
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if l, ok := findLabel(got.Labels, 6, 1, label.PaymentMethod); !ok || l.ValidationStatus != entities.LabelValid || l.LabelProposedBy != label.SourceUser {
			t.Errorf("PAYMENT_METHOD label %+v %v", l, ok)
		}
		// The earlier correction stands.
		if got.Summary.GrandTotal != "12.30" {
			t.Errorf("total %q after a label correction", got.Summary.GrandTotal)
		}
	})
}

// TestLabelCommand: tally label relabels a stored image's receipts with
// the rules, keeps what a person corrected, and prints the summaries.
func TestLabelCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	cfg, err := config.Config{DataDir: dir}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	p := openTestPorts(t, cfg)
	storeReceipt(t, p.Items, "img-cli", true)
	storeReceipt(t, p.Items, "img-cli-new", false)
	if _, err := label.Correct(ctx, p.Items, label.FromSet(testReceipt("img-cli"), 1),
		label.Correction{Fields: map[string]label.FieldCorrection{label.MerchantName: {Value: "Corner Store Inc."}}}, time.Now()); err != nil {
		t.Fatal(err)
	}

	runLabelCmd := func(args ...string) (int, []entities.ReceiptSummary, string) {
		var out, errb bytes.Buffer
		code := run(ctx, append([]string{"label", "-data", dir}, args...), &out, &errb)
		var sums []entities.ReceiptSummary
		if code == 0 {
			if err := json.Unmarshal(out.Bytes(), &sums); err != nil {
				t.Fatalf("tally label %v printed %q: %v", args, out.String(), err)
			}
		}
		return code, sums, errb.String()
	}

	code, sums, errs := runLabelCmd("img-cli")
	if code != 0 || len(sums) != 1 {
		t.Fatalf("tally label img-cli = %d %+v %s", code, sums, errs)
	}
	s := sums[0]
	if s.ImageID != "img-cli" || s.ReceiptID != 1 || s.RunID != "" || s.Status == "" {
		t.Errorf("summary %+v", s)
	}
	if f := s.Fields[label.MerchantName]; s.MerchantName != "Corner Store Inc." || f.Source != label.SourceUser {
		t.Errorf("the person's merchant was not kept: %q %+v", s.MerchantName, f)
	}
	if got := stored(t, p.Items, "img-cli"); !reflect.DeepEqual(got.Summary, s) {
		t.Errorf("printed summary is not the stored one:\nprinted %+v\nstored  %+v", s, got.Summary)
	}

	// A receipt never labelled is labelled; -receipt picks one.
	code, sums, errs = runLabelCmd("-receipt", "1", "img-cli-new")
	if code != 0 || len(sums) != 1 || sums[0].ImageID != "img-cli-new" {
		t.Fatalf("tally label -receipt 1 img-cli-new = %d %+v %s", code, sums, errs)
	}
	if _, ok, err := label.Stored(ctx, p.Items, "img-cli-new", 1); !ok || err != nil {
		t.Errorf("img-cli-new has no stored summary: %v %v", ok, err)
	}

	for _, tt := range []struct {
		args    []string
		code    int
		wantErr string
	}{
		{nil, 2, "IMAGE_ID"},
		{[]string{"a", "b"}, 2, "IMAGE_ID"},
		{[]string{"-receipt", "-1", "img-cli"}, 2, "-receipt"},
		{[]string{"-receipt", "2", "img-cli"}, 1, "no receipt 2"},
		{[]string{"no-such-image"}, 1, "not found"},
		{[]string{"bad#id"}, 1, "image_id"},
	} {
		if code, _, errs := runLabelCmd(tt.args...); code != tt.code || !strings.Contains(errs, tt.wantErr) {
			t.Errorf("tally label %q = %d %q, want %d containing %q", tt.args, code, errs, tt.code, tt.wantErr)
		}
	}
}
