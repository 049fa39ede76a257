package upload_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/gif"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	blobfile "github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/ocrstage"
	"github.com/tallyhq/tally/pipeline"
	queuesqlite "github.com/tallyhq/tally/queue/sqlite"
	"github.com/tallyhq/tally/upload"
)

// FuzzReceiptsUpload: POST /receipts with any body — a multipart form
// built from fuzzed parts, or raw bytes under a fuzzed content type — is
// answered 200 (files accepted), 4xx with the reason, never 5xx; a
// refused request stores no job, and an accepted one at most one per
// accepted file. The service and its embedded stores are built once.
func FuzzReceiptsUpload(f *testing.F) {
	ctx := context.Background()
	dir := f.TempDir()
	tbl, err := itemssqlite.Open(ctx, filepath.Join(dir, "items.db"), items.DefaultIndexes)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { tbl.Close() })
	broker, err := queuesqlite.Open(ctx, filepath.Join(dir, "queue.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { broker.Close() })
	qs, err := pipeline.EnsureQueues(ctx, broker)
	if err != nil {
		f.Fatal(err)
	}
	bs, err := blobfile.Open(filepath.Join(dir, "blobs"), blobfile.Options{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		f.Fatal(err)
	}
	svc, err := upload.New(upload.Config{Store: ocrstage.Store{Items: tbl, Blob: bs, Bucket: "local", Results: qs.OCRResults},
		Jobs: qs.OCRJobs, MaxBytes: 64 << 10, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	jobs := func(t *testing.T) int {
		all, err := items.QueryAll(ctx, tbl, items.Query{Index: "GSITYPE", PK: "OCR_JOB"})
		if err != nil {
			t.Fatal(err)
		}
		return len(all)
	}

	png := fixtures.BlankPNG(f, 8, 8)
	var gifBuf bytes.Buffer
	gif.Encode(&gifBuf, image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black}), nil)
	f.Add(false, "", "file", "r.png", png, "file", "notes.txt", []byte("hello, not an image"), "")
	f.Add(false, "", "file", "../../etc/a.gif", gifBuf.Bytes(), "", "", []byte(nil), "true")
	f.Add(false, "", "file", "big.png", bytes.Repeat([]byte{0x89}, 65<<10), "file", "x<script>.png", png[:len(png)/2], "1")
	f.Add(false, "", "note", "", []byte("a field, no file"), "file", "", []byte("x"), "")
	f.Add(true, "multipart/form-data; boundary=X", "", "", []byte("--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n\x89PNG\r\n--X--\r\n"), "", "", []byte(nil), "")
	f.Add(true, "multipart/form-data; boundary=X", "", "", []byte("--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\ntruncated"), "", "", []byte(nil), "")
	f.Add(true, "multipart/form-data", "", "", []byte("--X--"), "", "", []byte(nil), "")
	f.Add(true, "application/json", "", "", []byte(`{"filename":"a.png"}`), "", "", []byte(nil), "")
	f.Add(true, "", "", "", []byte(nil), "", "", []byte(nil), "")
	f.Fuzz(func(t *testing.T, raw bool, contentType, field1, name1 string, data1 []byte, field2, name2 string, data2 []byte, force string) {
		var body bytes.Buffer
		if raw {
			body.Write(data1)
		} else {
			mw := multipart.NewWriter(&body)
			for _, p := range []struct {
				field, name string
				data        []byte
			}{{field1, name1, data1}, {field2, name2, data2}} {
				if p.field == "" && p.name == "" {
					continue
				}
				var w interface{ Write([]byte) (int, error) }
				var err error
				if p.name == "" {
					w, err = mw.CreateFormField(p.field)
				} else {
					w, err = mw.CreateFormFile(p.field, p.name)
				}
				if err != nil {
					t.Fatal(err)
				}
				w.Write(p.data)
			}
			mw.Close()
			contentType = mw.FormDataContentType()
		}
		before := jobs(t)
		req := httptest.NewRequest(http.MethodPost, "/receipts", &body)
		req.URL.RawQuery = "force=" + force
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		after := jobs(t)
		var resp struct {
			upload.ReceiptsResponse
			Error string `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("%d with a body that is not JSON: %v: %s", rec.Code, err, rec.Body)
		}
		switch {
		case rec.Code == http.StatusOK:
			if len(resp.Receipts) == 0 || after-before > len(resp.Receipts) {
				t.Fatalf("200 with %d receipts and %d new jobs: %s", len(resp.Receipts), after-before, rec.Body)
			}
			for _, e := range resp.Errors {
				if e.Status < 400 || e.Status >= 500 {
					t.Fatalf("a file refused with %d: %s", e.Status, e.Error)
				}
			}
		case rec.Code >= 400 && rec.Code < 500:
			if after != before {
				t.Fatalf("refused with %d but stored %d jobs: %s", rec.Code, after-before, rec.Body)
			}
			if resp.Error == "" && len(resp.Errors) == 0 {
				t.Fatalf("refused with %d and no reason", rec.Code)
			}
		default:
			t.Fatalf("POST /receipts = %d: %s", rec.Code, rec.Body)
		}
	})
}
