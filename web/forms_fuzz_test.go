package web_test

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/label/labeltest"
	"github.com/tallyhq/tally/label/rules"
)

// fuzzApp is the app over embedded stores (uploads up to 64 KB) holding
// the corner receipt as img-c, labelled by the rules.
func fuzzApp(f *testing.F) (*bundle, http.Handler) {
	b := setupWith(f, 64<<10)
	r := labeltest.Printed(f, corner...)
	const id = "img-c"
	set := entities.Set{Images: []entities.Image{{ImageID: id, Width: 600, Height: 2000}},
		Receipts: []entities.Receipt{{ImageID: id, ReceiptID: 1, Width: 600, Height: 2000}}}
	for _, l := range r.Lines {
		l.ImageID = id
		set.ReceiptLines = append(set.ReceiptLines, l)
	}
	for _, w := range r.Words {
		w.ImageID = id
		set.ReceiptWords = append(set.ReceiptWords, w)
	}
	for _, row := range r.Rows {
		row.ImageID = id
		set.ReceiptRows = append(set.ReceiptRows, row)
	}
	if err := entities.Write(context.Background(), b.items, set); err != nil {
		f.Fatal(err)
	}
	pl := label.Pipeline{Rules: rules.New()}
	if _, err := pl.Receipt(context.Background(), b.items, label.FromSet(set, 1), time.Unix(1700000000, 0), "run-1"); err != nil {
		f.Fatal(err)
	}
	return b, b.server.Config.Handler
}

// FuzzCorrectionForm: the detail page's form POST /r/{image}/{receipt}
// with any body is a redirect (saved, or nothing changed) or a 4xx page,
// never 5xx; a refused form leaves the summary exactly as it was, and a
// saved amount is the one typed, rounded to cents.
func FuzzCorrectionForm(f *testing.F) {
	b, h := fuzzApp(f)
	for _, s := range []struct{ path, body string }{
		{"/r/img-c/1", "field.GRAND_TOTAL=8.83&field.MERCHANT_NAME=CORNER+GROCERY+INC."},
		{"/r/img-c/1", "accept=1&review=1"}, {"/r/img-c/1", "field.GRAND_TOTAL=seven"},
		{"/r/img-c/1", "field.NOT_A_LABEL=1"}, {"/r/img-c/1", "field.DATE=2024-02-30"}, {"/r/img-c/1", "field.DATE=2024-03-04"},
		{"/r/img-c/1", "field.TAX=922337203685477580"}, {"/r/img-c/1", "field.grand_total=%281.00%29&field.TIP="},
		{"/r/img-c/1", ""}, {"/r/img-c/1", "%zz"}, {"/r/img-c/1", "field.=x&field.MERCHANT_NAME=%3Cscript%3E"},
		{"/r/img-c/2", "accept=1"}, {"/r/img-c/0", "accept=1"}, {"/r/nope/1", "accept=1"}, {"/r/img-c/x", "accept=1"},
	} {
		f.Add(s.path, s.body)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, path, body string) {
		if !strings.HasPrefix(path, "/r/") {
			path = "/r/" + path
		}
		if strings.HasSuffix(path, "/delete") {
			return // a different form
		}
		req, err := http.NewRequest(http.MethodPost, "http://app"+path, strings.NewReader(body))
		if err != nil {
			return // not a URL a browser could send
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		before, _, err := label.Stored(ctx, b.items, "img-c", 1)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q = %d: %s", path, body, rec.Code, rec.Body)
		}
		after, _, err := label.Stored(ctx, b.items, "img-c", 1)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusSeeOther {
			if !reflect.DeepEqual(before, after) {
				t.Fatalf("a refused form (%d) changed the summary", rec.Code)
			}
			return
		}
		form, _ := url.ParseQuery(body)
		for key, vals := range form {
			name, ok := strings.CutPrefix(key, "field.")
			v := strings.TrimSpace(vals[0])
			if !ok || !label.AmountFields[name] || v == "" || after.Summary.Fields[name].Source != label.SourceUser {
				continue
			}
			a, err := label.ParseAmount(v)
			if err != nil {
				t.Fatalf("saved %s = %q, not an amount: %v", name, v, err)
			}
			if got := after.Summary.Fields[name].Value; got != a.Fixed(2) && got != before.Summary.Fields[name].Value {
				t.Fatalf("%s typed %q saved as %q", name, v, got)
			}
		}
	})
}

// FuzzUploadForm: the upload form's POST /upload with any multipart body
// (or raw bytes) is a redirect to the progress page, a page listing each
// file's fate, or a 4xx page — never 5xx — and a refused upload stores
// no job.
func FuzzUploadForm(f *testing.F) {
	b, h := fuzzApp(f)
	png := fixtures.BlankPNG(f, 9, 9)
	f.Add(false, "", "r.png", png, "notes.txt", []byte("hello, not an image"))
	f.Add(false, "", "x<script>alert(1)<script>.png", png, "../../etc/a.png", png[:20])
	f.Add(false, "", "big.png", bytes.Repeat([]byte{0x89}, 65<<10), "", []byte(nil))
	f.Add(false, "", "", []byte(nil), "", []byte(nil))
	f.Add(true, "multipart/form-data; boundary=X", "", []byte("--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\ncut"), "", []byte(nil))
	f.Add(true, "text/plain", "", []byte("x"), "", []byte(nil))
	ctx := context.Background()
	jobs := func(t *testing.T) int {
		all, err := items.QueryAll(ctx, b.items, items.Query{Index: "GSITYPE", PK: "OCR_JOB"})
		if err != nil {
			t.Fatal(err)
		}
		return len(all)
	}
	f.Fuzz(func(t *testing.T, raw bool, contentType, name1 string, data1 []byte, name2 string, data2 []byte) {
		var body bytes.Buffer
		if raw {
			body.Write(data1)
		} else {
			mw := multipart.NewWriter(&body)
			for _, p := range []struct {
				name string
				data []byte
			}{{name1, data1}, {name2, data2}} {
				if p.name == "" && len(p.data) == 0 {
					continue
				}
				w, err := mw.CreateFormFile("file", p.name)
				if err != nil {
					t.Fatal(err)
				}
				w.Write(p.data)
			}
			mw.Close()
			contentType = mw.FormDataContentType()
		}
		req := httptest.NewRequest(http.MethodPost, "/upload", &body)
		req.Header.Set("Content-Type", contentType)
		before := jobs(t)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		after := jobs(t)
		switch {
		case rec.Code == http.StatusSeeOther:
			if !strings.HasPrefix(rec.Header().Get("Location"), "/uploads?") {
				t.Fatalf("redirect to %q", rec.Header().Get("Location"))
			}
		case rec.Code == http.StatusOK:
		case rec.Code >= 400 && rec.Code < 500:
			if after != before {
				t.Fatalf("refused with %d but stored %d jobs", rec.Code, after-before)
			}
			if !strings.Contains(rec.Body.String(), `role="alert"`) {
				t.Fatalf("refused with %d and no message", rec.Code)
			}
		default:
			t.Fatalf("POST /upload = %d: %s", rec.Code, rec.Body)
		}
	})
}

// FuzzListFilters: the list, review, export and search pages with any
// query string are 200 or a 4xx page, never 5xx.
func FuzzListFilters(f *testing.F) {
	_, h := fuzzApp(f)
	for _, s := range []struct{ path, query string }{
		{"/", ""}, {"/", "merchant=corner&from=2024-03-01&to=2024-03-31&min_total=1&max_total=%2410.00&status=VALID&sort=oldest"},
		{"/", "min_total=lots"}, {"/", "from=2024-13-01"}, {"/", "q=bread"}, {"/", "q=%22sales+tax%22&merchant=x"},
		{"/", "token=!!!"}, {"/", "status=nope"}, {"/review", "token=eyJmb28iOjF9"}, {"/export.csv", "to=2024-01-01"},
		{"/export.json", "min_total=5&max_total=4"}, {"/find", "q=bread*"}, {"/find", "q=%22unterminated"},
		{"/find", "q=" + strings.Repeat("x", 300)}, {"/dashboard", "from=x"}, {"/r/img-c/1", "hl=bread,tax&msg=%3Cb%3E"},
		{"/uploads", "id=nope&id=a%23b"},
	} {
		f.Add(s.path, s.query)
	}
	f.Fuzz(func(t *testing.T, path, query string) {
		switch path {
		case "/", "/review", "/export.csv", "/export.json", "/find", "/dashboard", "/r/img-c/1", "/uploads":
		default:
			path = "/"
		}
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 || (rec.Code != http.StatusOK && rec.Code < 400) {
			t.Fatalf("GET %s?%s = %d: %.500s", path, query, rec.Code, rec.Body)
		}
	})
}
