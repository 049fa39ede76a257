package web_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/label/labeltest"
	"github.com/tallyhq/tally/label/rules"
	"github.com/tallyhq/tally/ocrstage"
	"github.com/tallyhq/tally/pipeline"
	queuesqlite "github.com/tallyhq/tally/queue/sqlite"
	"github.com/tallyhq/tally/textindex"
	textsqlite "github.com/tallyhq/tally/textindex/sqlite"
	"github.com/tallyhq/tally/upload"
	"github.com/tallyhq/tally/web"
)

// bundle is a running app over real SQLite and file stores.
type bundle struct {
	text   textindex.Index
	items  items.Table
	server *httptest.Server
	client *http.Client
}

func setup(t *testing.T) *bundle { return setupWith(t, 1<<20) }

func setupB(t testing.TB) *bundle { return setupWith(t, 1<<20) }

// setupWith runs the app with uploads of at most maxBytes (0: the upload
// service's default).
func setupWith(t testing.TB, maxBytes int64) *bundle {
	t.Helper()
	dir := t.TempDir()
	tbl, err := sqlite.Open(context.Background(), filepath.Join(dir, "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	bs, err := file.Open(filepath.Join(dir, "blobs"), file.Options{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	broker, err := queuesqlite.Open(context.Background(), filepath.Join(dir, "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	qs, err := pipeline.EnsureQueues(context.Background(), broker)
	if err != nil {
		t.Fatal(err)
	}
	up, err := upload.New(upload.Config{Store: ocrstage.Store{Items: tbl, Blob: bs, Bucket: "local", Results: qs.OCRResults},
		Jobs: qs.OCRJobs, MaxBytes: maxBytes, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	text, err := textsqlite.Open(context.Background(), filepath.Join(dir, "text.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { text.Close() })
	app, err := web.New(web.Config{Items: tbl, Blob: bs, Upload: up, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	app.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &bundle{items: tbl, server: srv, client: client, text: text}
}

// store writes a labelled receipt built from printed rows.
func (b *bundle) store(t *testing.T, imageID string, rows ...string) label.Receipt {
	t.Helper()
	r := labeltest.Printed(t, rows...)
	r.ImageID = imageID
	set := entities.Set{Images: []entities.Image{{ImageID: imageID, Width: 600, Height: 2000}},
		Receipts: []entities.Receipt{{ImageID: imageID, ReceiptID: 1, Width: 600, Height: 2000}}}
	for _, l := range r.Lines {
		l.ImageID = imageID
		set.ReceiptLines = append(set.ReceiptLines, l)
	}
	for i := range r.Words {
		r.Words[i].ImageID = imageID
	}
	set.ReceiptWords = r.Words
	for i := range r.Rows {
		r.Rows[i].ImageID = imageID
	}
	set.ReceiptRows = r.Rows
	if err := entities.Write(context.Background(), b.items, set); err != nil {
		t.Fatal(err)
	}
	if b.text != nil {
		var docs []textindex.Doc
		for _, row := range r.Rows {
			docs = append(docs, textindex.Doc{ImageID: imageID, ReceiptID: 1, RowID: row.RowID, LineIDs: row.LineIDs, Text: row.Text})
		}
		if err := b.text.Put(context.Background(), imageID, docs); err != nil {
			t.Fatal(err)
		}
	}
	pl := label.Pipeline{Rules: rules.New()}
	if _, err := pl.Receipt(context.Background(), b.items, label.FromSet(set, 1), time.Unix(1700000000, 0), "run-1"); err != nil {
		t.Fatal(err)
	}
	return label.FromSet(set, 1)
}

func (b *bundle) get(t *testing.T, path string) (int, string, http.Header) {
	t.Helper()
	resp, err := b.client.Get(b.server.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *bundle) post(t *testing.T, path string, form url.Values) (int, string, http.Header) {
	t.Helper()
	resp, err := b.client.PostForm(b.server.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

var corner = []string{"CORNER GROCERY INC.", "614 Gravier Street", "New Orleans, LA 70130", "03/04/2024 5:42 PM",
	"<script>alert(1)</script> 4.25", "BREAD 3.00", "SUBTOTAL 7.25", "SALES TAX 0.58", "TOTAL $7.83", "VISA 7.83"}

func summary(t *testing.T, b *bundle, imageID string) entities.ReceiptSummary {
	t.Helper()
	u, ok, err := label.Stored(context.Background(), b.items, imageID, 1)
	if err != nil || !ok {
		t.Fatalf("stored summary: %v %v", ok, err)
	}
	return u.Summary
}

func TestPagesEscapeAndDraw(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.store(t, "img-a", corner...)
	code, body, h := b.get(t, "/")
	if code != 200 || !strings.Contains(body, "CORNER GROCERY INC.") || !strings.Contains(h.Get("Content-Type"), "text/html") {
		t.Fatalf("list: %d %q", code, body)
	}
	code, body, _ = b.get(t, "/r/img-a/1")
	if code != 200 {
		t.Fatalf("detail: %d %s", code, body)
	}
	if strings.Contains(body, "<script>alert(1)</script>") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("a receipt word was not escaped")
	}
	if n := strings.Count(body, "<polygon"); n != len(r.Words) {
		t.Errorf("%d boxes drawn for %d words", n, len(r.Words))
	}
	for _, want := range []string{"totals_add_up", "7.83", "BREAD", "l-total"} {
		if !strings.Contains(body, want) {
			t.Errorf("detail lacks %q", want)
		}
	}
	// Assets are hashed and cached for good.
	i := strings.Index(body, "/static/app.")
	j := strings.Index(body[i:], `"`)
	code, _, h = b.get(t, body[i:i+j])
	if code != 200 || !strings.Contains(h.Get("Cache-Control"), "immutable") {
		t.Errorf("asset %s: %d %q", body[i:i+j], code, h.Get("Cache-Control"))
	}
	for _, p := range []string{"/static/nope.css", "/r/img-a/2", "/r/nope/1"} {
		if code, _, _ := b.get(t, p); code != 404 {
			t.Errorf("%s: %d, want 404", p, code)
		}
	}
	if code, _, _ := b.get(t, "/r/img-a/x"); code != 400 {
		t.Errorf("bad receipt id: %d", code)
	}
	if code, _, _ := b.get(t, "/?min_total=lots"); code != 400 {
		t.Errorf("bad filter: %d", code)
	}
}

func TestCorrectionForm(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.store(t, "img-c", corner...)
	before := summary(t, b, "img-c")
	for _, bad := range []url.Values{
		{"field.GRAND_TOTAL": {"seven"}},
		{"field.NOT_A_LABEL": {"1"}},
		{"field.DATE": {"2024-02-30"}},
	} {
		code, body, _ := b.post(t, "/r/img-c/1", bad)
		if code != 400 || !strings.Contains(body, "role=\"alert\"") {
			t.Errorf("%v: %d", bad, code)
		}
	}
	if after := summary(t, b, "img-c"); after.GrandTotal != before.GrandTotal || after.TimestampComputed != before.TimestampComputed {
		t.Fatalf("a rejected form changed the summary: %+v", after)
	}
	code, _, h := b.post(t, "/r/img-c/1", url.Values{"field.GRAND_TOTAL": {"8.83"}, "field.MERCHANT_NAME": {before.MerchantName}})
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/r/img-c/1") {
		t.Fatalf("good form: %d %q", code, h.Get("Location"))
	}
	s := summary(t, b, "img-c")
	if s.GrandTotal != "8.83" || s.Fields[label.GrandTotal].Source != label.SourceUser || s.Status != entities.SummaryNeedsReview {
		t.Errorf("after correcting the total: %s %s %s", s.GrandTotal, s.Fields[label.GrandTotal].Source, s.Status)
	}
	if s.Fields[label.MerchantName].Source == label.SourceUser {
		t.Error("an unchanged field became the user's")
	}
	// The review queue shows it; accepting makes it VALID.
	code, body, _ := b.get(t, "/review")
	if code != 200 || !strings.Contains(body, "totals_add_up") || !strings.Contains(body, `name="review"`) {
		t.Fatalf("review: %d", code)
	}
	code, _, h = b.post(t, "/r/img-c/1", url.Values{"accept": {"1"}, "review": {"1"}})
	if code != http.StatusSeeOther || h.Get("Location") != "/review" {
		t.Fatalf("accept: %d %q", code, h.Get("Location"))
	}
	if s := summary(t, b, "img-c"); s.Status != entities.SummaryValid || !s.Accepted || len(s.ReviewReasons) == 0 {
		t.Errorf("accepted: %s %v %v", s.Status, s.Accepted, s.ReviewReasons)
	}
	if _, body, _ := b.get(t, "/review"); !strings.Contains(body, "Nothing needs review") {
		t.Error("the review queue is not empty")
	}
}

func TestCSV(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.store(t, "img-1", corner...)
	b.store(t, "img-2", "=HYPERLINK(1) LLC", "03/05/2024", "MILK 4.25", "TOTAL 4.25")
	code, body, h := b.get(t, "/export.csv?bom=1")
	if code != 200 || h.Get("Content-Type") != "text/csv; charset=utf-8" || !strings.HasPrefix(body, "\ufeff") {
		t.Fatalf("csv: %d %q", code, h.Get("Content-Type"))
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0][0] != "image_id" || rows[0][8] != "grand_total" {
		t.Fatalf("rows: %q", rows)
	}
	// Oldest first on request.
	_, obody, _ := b.get(t, "/export.csv?sort=oldest")
	orows, _ := csv.NewReader(strings.NewReader(obody)).ReadAll()
	if len(orows) != 3 || orows[1][0] != "img-1" {
		t.Errorf("oldest first: %q", orows)
	}
	// Newest first: img-2 (2024-03-05) then img-1.
	if rows[1][0] != "img-2" || rows[1][2] != "'=HYPERLINK(1) LLC" || rows[1][3] != "2024-03-05" || rows[2][8] != "7.83" {
		t.Errorf("rows: %q", rows[1:])
	}
	_, body, _ = b.get(t, "/export.csv?items=1&merchant=corner")
	rows, err = csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(rows) != 3 || rows[1][14] != "<script>alert(1)</script>" || rows[2][17] != "3.00" {
		t.Errorf("per item: %q %v", rows, err)
	}
	if code, _, _ := b.get(t, "/export.csv?from=yesterday"); code != 400 {
		t.Errorf("bad filter: %d", code)
	}
	code, body, _ = b.get(t, "/export.json?merchant=corner")
	var js []struct {
		ImageID    string `json:"image_id"`
		GrandTotal string `json:"grand_total"`
		LineItems  []struct {
			Price string `json:"price"`
		} `json:"line_items"`
	}
	if err := json.Unmarshal([]byte(body), &js); err != nil || code != 200 || len(js) != 1 || js[0].GrandTotal != "7.83" || len(js[0].LineItems) != 2 {
		t.Errorf("JSON export: %d %v %s", code, err, body)
	}
}

func TestDashboard(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.store(t, "img-1", corner...)
	b.store(t, "img-2", "SHOP TWO LLC", "04/05/2024", "MILK 4.25", "TOTAL $4.25")
	b.store(t, "img-3", "SHOP TWO LLC", "04/09/2024", "MILK 1.00", "TOTAL $1.00")
	code, body, _ := b.get(t, "/dashboard")
	if code != 200 {
		t.Fatalf("dashboard: %d", code)
	}
	// Two months (2024-03: 7.83, 2024-04: 5.25) and two merchants.
	for _, want := range []string{"<strong>3</strong> receipts", "2024-03: 7.83", "2024-04: 5.25", "SHOP TWO LLC: 5.25", "(USD)"} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	if n := strings.Count(body, `<rect class="bar"`); n != 4 {
		t.Errorf("%d bars, want 4", n)
	}
}

func TestHighlight(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.store(t, "img-h", corner...)
	_, body, _ := b.get(t, "/r/img-h/1?hl=bread,TOT")
	// Prefixes of whole words: BREAD and TOTAL, not SUBTOTAL.
	if n := strings.Count(body, " hl\""); n != 2 {
		t.Errorf("%d words highlighted, want 2 (BREAD, TOTAL)", n)
	}
}

// TestSearchPage: words, phrases and prefixes find rows and link to the
// receipt with the words marked; a query in bad syntax is a 400 with the
// reason on the page.
func TestSearchPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.store(t, "img-s", corner...)
	for _, q := range []string{"bread", `"sales tax"`, "grav*"} {
		code, body, _ := b.get(t, "/find?q="+url.QueryEscape(q))
		if code != 200 || !strings.Contains(body, "/r/img-s/1?hl=") || !strings.Contains(body, "<mark>") {
			t.Errorf("%s: %d", q, code)
		}
	}
	if _, body, _ := b.get(t, "/find?q=nothinglikethis"); !strings.Contains(body, "No row has these words") {
		t.Error("a query without hits")
	}
	for _, q := range []string{`"`, `*`, `NEAR(`, `"total`, strings.Repeat("a", 300)} {
		code, body, _ := b.get(t, "/find?q="+url.QueryEscape(q))
		if code != 400 || !strings.Contains(body, `role="alert"`) {
			t.Errorf("query %q: %d", q, code)
		}
	}
	if _, body, _ := b.get(t, "/find?q=%3Cscript%3E"); strings.Contains(body, "<script>") {
		t.Error("the query was not escaped")
	}
}

// TestListTextFilter: the list filtered by words in the receipts' text,
// with the other filters applied, and a bad query a 400 on the page.
func TestListTextFilter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.store(t, "img-1", corner...)
	b.store(t, "img-2", "SHOP TWO LLC", "04/05/2024", "BREAD 4.25", "TOTAL $4.25")
	b.store(t, "img-3", "SHOP THREE LLC", "04/09/2024", "MILK 1.00", "TOTAL $1.00")
	_, body, _ := b.get(t, "/?q=bread")
	if !strings.Contains(body, "/r/img-1/1") || !strings.Contains(body, "/r/img-2/1") || strings.Contains(body, "/r/img-3/1") {
		t.Errorf("q=bread lists the wrong receipts")
	}
	_, body, _ = b.get(t, "/?q=bread&from=2024-04-01")
	if strings.Contains(body, "/r/img-1/1") || !strings.Contains(body, "/r/img-2/1") {
		t.Errorf("q=bread from April lists the wrong receipts")
	}
	if code, body, _ := b.get(t, "/?q=%22bread"); code != 400 || !strings.Contains(body, `role="alert"`) {
		t.Errorf("bad text filter: %d", code)
	}
}
