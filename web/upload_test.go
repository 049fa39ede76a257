package web_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/ocrjob"
)

type upfile struct {
	name string
	data []byte
}

func (b *bundle) upload(t *testing.T, files ...upfile) (int, string, http.Header) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range files {
		w, err := mw.CreateFormFile("file", f.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
	}
	mw.Close()
	resp, err := b.client.Post(b.server.URL+"/upload", mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *bundle) jobs(t *testing.T) int {
	t.Helper()
	all, err := items.QueryAll(context.Background(), b.items, items.Query{Index: "GSITYPE", PK: "OCR_JOB"})
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// TestUploadBadInput: a file that is not an image, one over the size
// limit, and an empty form are each refused with a clear message and a
// 4xx, and nothing is stored; a name with a path or HTML in it is stored
// under a safe name and shown as text.
func TestUploadBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if code, body, _ := b.get(t, "/upload"); code != 200 || !strings.Contains(body, `type="file"`) {
		t.Fatalf("form: %d", code)
	}
	cases := []struct {
		name   string
		files  []upfile
		status int
		says   string
	}{
		{"not an image", []upfile{{"notes.txt", []byte("hello, not an image")}}, 415, "notes.txt"},
		{"too large", []upfile{{"big.png", bytes.Repeat([]byte{0x89}, 2<<20)}}, 413, "over the 1 MB limit"},
		{"no file", nil, 400, "no file was chosen"},
	}
	for _, c := range cases {
		code, body, _ := b.upload(t, c.files...)
		if code != c.status || !strings.Contains(body, c.says) || !strings.Contains(body, `role="alert"`) {
			t.Errorf("%s: %d, body lacks %q", c.name, code, c.says)
		}
	}
	if n := b.jobs(t); n != 0 {
		t.Fatalf("%d jobs stored by refused uploads", n)
	}
	// A bad file beside a good one: the good one goes in, both are listed.
	code, body, _ := b.upload(t, upfile{"x<script>alert(1)<script>.png", fixtures.BlankPNG(t, 20, 20)},
		upfile{"../../etc/a.png", fixtures.BlankPNG(t, 21, 21)}, upfile{"notes.txt", []byte("x")})
	if code != 200 || strings.Contains(body, "<script>alert") || !strings.Contains(body, "x&lt;script&gt;alert(1)&lt;script&gt;.png") ||
		strings.Contains(body, "../") || !strings.Contains(body, "notes.txt") {
		t.Errorf("mixed upload: %d %s", code, body)
	}
	if n := b.jobs(t); n != 2 {
		t.Errorf("%d jobs after a mixed upload, want 2", n)
	}
}

// TestUploadProgressAndRetry: an upload redirects to its progress page,
// which refreshes while the image is on its way; a failed one shows its
// reason and a Retry that queues a new job from the stored image.
func TestUploadProgressAndRetry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, _, h := b.upload(t, upfile{"r.png", fixtures.BlankPNG(t, 30, 30)})
	loc := h.Get("Location")
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/uploads?id=") {
		t.Fatalf("upload: %d %q", code, loc)
	}
	id := strings.TrimPrefix(loc, "/uploads?id=")
	_, body, _ := b.get(t, loc)
	if !strings.Contains(body, `http-equiv="refresh"`) || !strings.Contains(body, `aria-label="stage: uploaded"`) {
		t.Errorf("progress page: %s", body)
	}
	j, err := ocrjob.LatestJob(context.Background(), b.items, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := ocrjob.Fail(context.Background(), b.items, id, j.JobID, "tesseract <crashed>", time.Now()); err != nil {
		t.Fatal(err)
	}
	_, body, _ = b.get(t, loc)
	if strings.Contains(body, `http-equiv="refresh"`) || !strings.Contains(body, "tesseract &lt;crashed&gt;") || !strings.Contains(body, "Retry") {
		t.Errorf("failed upload page: %s", body)
	}
	// The receipts list shows it as FAILED with a Retry, until retried.
	if _, body, _ := b.get(t, "/"); !strings.Contains(body, "FAILED") || !strings.Contains(body, "/uploads/"+id+"/retry") {
		t.Error("the list does not show the failed upload")
	}
	code, _, h = b.post(t, "/uploads/"+id+"/retry", nil)
	if code != http.StatusSeeOther || h.Get("Location") != loc {
		t.Fatalf("retry: %d %q", code, h.Get("Location"))
	}
	if n := b.jobs(t); n != 2 {
		t.Errorf("%d jobs after the retry, want 2", n)
	}
	if _, body, _ := b.get(t, "/"); strings.Contains(body, "/uploads/"+id+"/retry") {
		t.Error("the list still shows the retried upload as failed")
	}
	if code, _, _ := b.post(t, "/uploads/"+id+"/retry", nil); code != http.StatusConflict {
		t.Errorf("retry of a pending image: %d, want 409", code)
	}
}

// TestUpload30MB: a 30 MB file against the server's default 25 MB limit
// is a 413 with the reason, and nothing is stored.
func TestUpload30MB(t *testing.T) {
	t.Parallel()
	b := setupWith(t, 0)
	code, body, _ := b.upload(t, upfile{"huge.jpg", bytes.Repeat([]byte{0xff}, 30<<20)})
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "over the 25 MB limit") {
		t.Errorf("30 MB upload: %d", code)
	}
	if n := b.jobs(t); n != 0 {
		t.Errorf("%d jobs stored", n)
	}
}
