package upload_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/blob"
	blobfile "github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/ocrstage"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/queue"
	queuesqlite "github.com/tallyhq/tally/queue/sqlite"
	"github.com/tallyhq/tally/upload"
)

type bundle struct {
	srv    *httptest.Server
	items  items.Table
	blob   blob.Store
	queues pipeline.Queues
}

func setup(t *testing.T, mod func(*upload.Config)) *bundle {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	tbl, err := itemssqlite.Open(ctx, filepath.Join(dir, "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	broker, err := queuesqlite.Open(ctx, filepath.Join(dir, "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	qs, err := pipeline.EnsureQueues(ctx, broker)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	bs, err := blobfile.Open(filepath.Join(dir, "blobs"), blobfile.Options{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/blob/", bs.Handler())
	cfg := upload.Config{Store: ocrstage.Store{Items: tbl, Blob: bs, Bucket: "local", Results: qs.OCRResults}, Jobs: qs.OCRJobs, Log: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := upload.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc.Register(mux)
	return &bundle{srv: srv, items: tbl, blob: bs, queues: qs}
}

type file struct {
	field, name string
	data        []byte
}

func multipartBody(t *testing.T, files ...file) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range files {
		w, err := mw.CreateFormFile(f.field, f.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
	}
	mw.Close()
	return mw.FormDataContentType(), &buf
}

// do sends a request and decodes the JSON answer into out (when not nil).
func (b *bundle) do(t *testing.T, method, path, ct string, body io.Reader, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

func fixture(t *testing.T, parts ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(fixtures.Path(t, parts...))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestPresignedUpload(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	var resp upload.CreateResponse
	code := b.do(t, "POST", "/upload-receipt", "application/json", strings.NewReader(`{"filename":"../../etc/Квитанция 1.jpg","content_type":"image/jpeg"}`), &resp)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	if resp.UploadURL == "" || resp.ImageID == "" || resp.JobID == "" {
		t.Fatalf("response = %+v", resp)
	}
	wantKey := "raw-receipts/" + resp.ImageID + "/Квитанция 1.jpg"
	if resp.S3Key != wantKey {
		t.Errorf("s3_key = %q, want %q (directories dropped, unicode kept)", resp.S3Key, wantKey)
	}
	j, err := ocrjob.GetJob(ctx, b.items, resp.ImageID, resp.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != ocrjob.StatusPending || j.JobType != ocrjob.JobTypeFirst || j.Key != wantKey || j.UploadBy.IsZero() {
		t.Errorf("job = %+v", j)
	}
	if st, _ := b.queues.OCRJobs.Stats(ctx); st.Visible+st.Delayed != 1 {
		t.Errorf("jobs queue = %+v, want the job queued", st)
	}
	// The presigned URL takes the image.
	img := fixture(t, "sroie", "img", "000.jpg")
	put := func(url, ct string) int {
		req, _ := http.NewRequest("PUT", url, bytes.NewReader(img))
		req.Header.Set("Content-Type", ct)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if code := put(resp.UploadURL, "image/jpeg"); code != 200 {
		t.Fatalf("PUT = %d", code)
	}
	got, err := blob.ReadAll(ctx, b.blob, wantKey)
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("stored object: %d bytes, %v", len(got), err)
	}
	// The same URL used for another key is refused.
	other := strings.Replace(resp.UploadURL, resp.ImageID, ocrjob.NewID(), 1)
	if code := put(other, "image/jpeg"); code != http.StatusForbidden {
		t.Errorf("PUT to another key = %d, want 403", code)
	}
	// Another content type than the one signed is refused.
	if code := put(resp.UploadURL, "image/png"); code != http.StatusForbidden {
		t.Errorf("PUT with another content type = %d, want 403", code)
	}
}

func TestPresignedURLExpires(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *upload.Config) { c.PresignExpiry = time.Second })
	var resp upload.CreateResponse
	if code := b.do(t, "POST", "/upload-receipt", "application/json", strings.NewReader(`{"filename":"a.png","content_type":"image/png"}`), &resp); code != 200 {
		t.Fatalf("status %d", code)
	}
	// Poll until the URL has expired: then it must be refused.
	var msg []byte
	waitfor.True(t, "the presigned URL to expire", func() bool {
		req, _ := http.NewRequest("PUT", resp.UploadURL, bytes.NewReader(fixtures.BlankPNG(t, 10, 10)))
		req.Header.Set("Content-Type", "image/png")
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ = io.ReadAll(r.Body)
		r.Body.Close()
		return r.StatusCode == http.StatusForbidden
	})
	if !strings.Contains(string(msg), "expired") {
		t.Errorf("refusal does not say expired: %s", msg)
	}
}

func TestCreateUploadRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, tt := range []struct {
		name, body string
		code       int
		says       string
	}{
		{"unsupported type", `{"filename":"a.gif","content_type":"image/gif"}`, 415, "image/jpeg"},
		{"no type", `{"filename":"a.jpg"}`, 415, "image/png"},
		{"not json", `filename=a.jpg`, 400, "request body"},
		{"bad sha256", `{"filename":"a.jpg","content_type":"image/jpeg","sha256":"xyz"}`, 400, "sha256"},
	} {
		var e upload.ErrorBody
		if code := b.do(t, "POST", "/upload-receipt", "application/json", strings.NewReader(tt.body), &e); code != tt.code || !strings.Contains(e.Error, tt.says) {
			t.Errorf("%s: %d %q, want %d naming %q", tt.name, code, e.Error, tt.code, tt.says)
		}
		if tt.code == 415 && len(e.Supported) < 4 {
			t.Errorf("%s: supported list = %v", tt.name, e.Supported)
		}
	}
}

func gifBytes(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gif.Encode(&buf, image.NewPaletted(image.Rect(0, 0, 4, 4), []color.Color{color.White, color.Black}), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hugePNG is a PNG header claiming 20000×20000 pixels.
func hugePNG(t *testing.T) []byte {
	t.Helper()
	b := fixtures.BlankPNG(t, 1, 1)
	put := func(off int, v uint32) {
		b[off], b[off+1], b[off+2], b[off+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	put(16, 20000)
	put(20, 20000)
	put(29, crc32.ChecksumIEEE(b[12:29]))
	return b
}

// TestDirectUpload: good files are taken, each bad one is refused with its
// own status, and one bad file never refuses the good ones.
func TestDirectUpload(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	good := fixture(t, "sroie", "img", "000.jpg")
	ct, body := multipartBody(t,
		file{"file", "000.jpg", good},
		file{"file", "empty.jpg", nil},
		file{"file", "notes.txt", []byte("not an image at all")},
		file{"file", "anim.gif", gifBytes(t)},
		file{"file", "huge.png", hugePNG(t)},
		file{"file", "../../../x.png", fixtures.BlankPNG(t, 20, 20)},
	)
	var resp upload.ReceiptsResponse
	if code := b.do(t, "POST", "/receipts", ct, body, &resp); code != 200 {
		t.Fatalf("status %d: %+v", code, resp)
	}
	if len(resp.Receipts) != 2 {
		t.Fatalf("accepted %+v, want 000.jpg and x.png", resp.Receipts)
	}
	want := map[string]int{"empty.jpg": 400, "notes.txt": 415, "anim.gif": 415, "huge.png": 413}
	for _, e := range resp.Errors {
		if want[e.Filename] != e.Status {
			t.Errorf("%s refused with %d (%s), want %d", e.Filename, e.Status, e.Error, want[e.Filename])
		}
		delete(want, e.Filename)
	}
	if len(want) != 0 {
		t.Errorf("not refused: %v", want)
	}
	for _, a := range resp.Receipts {
		if strings.Contains(a.S3Key, "..") || !strings.HasPrefix(a.S3Key, "raw-receipts/"+a.ImageID+"/") {
			t.Errorf("key %q escapes its image's prefix", a.S3Key)
		}
		j, err := ocrjob.GetJob(ctx, b.items, a.ImageID, a.JobID)
		if err != nil || j.Status != ocrjob.StatusPending || j.SHA256 != a.SHA256 {
			t.Errorf("job of %s = %+v, %v", a.Filename, j, err)
		}
	}
	if st, _ := b.queues.OCRJobs.Stats(ctx); st.Visible != 2 {
		t.Errorf("jobs queue holds %d visible, want 2", st.Visible)
	}

	// The same bytes again: the existing image, unless forced.
	ct, body = multipartBody(t, file{"file", "again.jpg", good})
	var again upload.ReceiptsResponse
	b.do(t, "POST", "/receipts", ct, body, &again)
	if len(again.Receipts) != 1 || !again.Receipts[0].Duplicate || again.Receipts[0].ImageID != resp.Receipts[0].ImageID {
		t.Errorf("duplicate upload = %+v, want image %s", again.Receipts, resp.Receipts[0].ImageID)
	}
	ct, body = multipartBody(t, file{"file", "again.jpg", good})
	var forced upload.ReceiptsResponse
	b.do(t, "POST", "/receipts?force=true", ct, body, &forced)
	if len(forced.Receipts) != 1 || forced.Receipts[0].Duplicate || forced.Receipts[0].ImageID == resp.Receipts[0].ImageID {
		t.Errorf("forced upload = %+v, want a new image", forced.Receipts)
	}
}

func TestDirectUploadLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *upload.Config) { c.MaxBytes = 1000 })
	ct, body := multipartBody(t, file{"file", "big.png", bytes.Repeat([]byte{1}, 5000)})
	var resp upload.ReceiptsResponse
	if code := b.do(t, "POST", "/receipts", ct, body, &resp); code != 413 {
		t.Errorf("oversized file: %d %+v, want 413", code, resp)
	}
	ct, body = multipartBody(t, file{"file", "a.png", fixtures.BlankPNG(t, 4, 4)}, file{"file", "big.png", bytes.Repeat([]byte{1}, 5000)})
	if code := b.do(t, "POST", "/receipts", ct, body, &resp); code != 413 && code != 200 {
		t.Errorf("body over the limit: %d", code)
	}
	var e upload.ErrorBody
	if code := b.do(t, "POST", "/receipts", "application/json", strings.NewReader("{}"), &e); code != 400 {
		t.Errorf("not multipart: %d %q", code, e.Error)
	}
	ct, body = multipartBody(t)
	if code := b.do(t, "POST", "/receipts", ct, body, &e); code != 400 || !strings.Contains(e.Error, "no files") {
		t.Errorf("no files: %d %q", code, e.Error)
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	var e upload.ErrorBody
	if code := b.do(t, "GET", "/upload-status?image_id="+ocrjob.NewID(), "", nil, &e); code != 404 {
		t.Errorf("unknown image: %d", code)
	}
	if code := b.do(t, "GET", "/upload-status", "", nil, &e); code != 400 {
		t.Errorf("no image_id: %d", code)
	}
	if code := b.do(t, "GET", "/upload-status?image_id=a%23b", "", nil, &e); code != 400 {
		t.Errorf("bad image_id: %d", code)
	}
	var resp upload.CreateResponse
	b.do(t, "POST", "/upload-receipt", "application/json", strings.NewReader(`{"filename":"a.png","content_type":"image/png"}`), &resp)
	var st upload.Status
	if code := b.do(t, "GET", "/upload-status?image_id="+resp.ImageID, "", nil, &st); code != 200 {
		t.Fatalf("status %d", code)
	}
	if st.ImageID != resp.ImageID || st.OCRStatus != "PENDING" || st.ProcessingStage != "PENDING" || st.Receipts == nil {
		t.Errorf("status = %+v", st)
	}
}

// TestSubmitExternalOCR feeds the old system's real scan result through
// the external path with a blank image of the scan's size: the result is
// classified and clustered from its lines, and handed to the process stage.
func TestSubmitExternalOCR(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	result := fixture(t, "portfolio", "scan_2f05267d.vision.json")
	ct, body := multipartBody(t, file{"image", "scan.png", fixtures.BlankPNG(t, 2480, 3508)}, file{"result", "scan.json", result})
	var acc upload.Accepted
	if code := b.do(t, "POST", "/ocr-results", ct, body, &acc); code != 200 {
		t.Fatalf("status %d %+v", code, acc)
	}
	var st upload.Status
	b.do(t, "GET", "/upload-status?image_id="+acc.ImageID, "", nil, &st)
	if st.OCRStatus != "COMPLETED" || st.ReceiptCount != 1 || len(st.Receipts) != 1 {
		t.Fatalf("status = %+v", st)
	}
	raw, err := blob.ReadAll(ctx, b.blob, st.ResultKey)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ocr.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Lines) != 40 || len(res.Receipts) != 1 || len(res.Receipts[0].Lines) < 38 {
		t.Errorf("result: %d lines, receipts %d", len(res.Lines), len(res.Receipts))
	}
	if err := res.Validate(); err != nil {
		t.Error(err)
	}
	msgs, err := b.queues.OCRResults.Receive(ctx, queue.ReceiveOptions{Max: 10})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("ocr-results: %d messages, %v", len(msgs), err)
	}

	// Bad submissions are refused with 400 and nothing is queued.
	for _, tt := range []struct {
		name  string
		files []file
	}{
		{"malformed result", []file{{"image", "a.png", fixtures.BlankPNG(t, 50, 50)}, {"result", "r.json", []byte(`{"lines":[{"text":`)}}},
		{"geometry out of range", []file{{"image", "a.png", fixtures.BlankPNG(t, 50, 51)}, {"result", "r.json", []byte(`{"lines":[{"text":"x","bounding_box":{"x":2,"y":0,"width":1,"height":1},"top_left":{"x":2,"y":0},"top_right":{"x":0,"y":0},"bottom_left":{"x":0,"y":0},"bottom_right":{"x":0,"y":0},"angle_degrees":0,"angle_radians":0,"confidence":1,"words":[]}]}`)}}},
		{"no result part", []file{{"image", "a.png", fixtures.BlankPNG(t, 50, 52)}}},
		{"not an image", []file{{"image", "a.png", []byte("text")}, {"result", "r.json", result}}},
	} {
		ct, body := multipartBody(t, tt.files...)
		var e upload.ErrorBody
		if code := b.do(t, "POST", "/ocr-results", ct, body, &e); code/100 != 4 || e.Error == "" {
			t.Errorf("%s: %d %q, want a 4xx with a reason", tt.name, code, e.Error)
		}
	}
	if st, _ := b.queues.OCRResults.Stats(ctx); st.Visible != 0 {
		t.Errorf("bad submissions queued %d results", st.Visible)
	}
}

func TestSanitizeFilename(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"receipt.jpg", "receipt.jpg"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\me\IMG_0001.HEIC`, "IMG_0001.HEIC"},
		{"..", "receipt.jpg"},
		{"", "receipt.jpg"},
		{".hidden.jpg", "hidden.jpg"},
		{"a\x00b\nc.jpg", "abc.jpg"},
		{"Квитанция №5.jpg", "Квитанция _5.jpg"},
		{"a#b?c*.jpg", "a_b_c_.jpg"},
		{strings.Repeat("é", 100) + ".jpg", strings.Repeat("é", 64)},
	} {
		if got := upload.SanitizeFilename(tt.in, ".jpg"); got != tt.want {
			t.Errorf("SanitizeFilename(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if err := blob.ValidateKey("raw-receipts/x/" + upload.SanitizeFilename(tt.in, ".jpg")); err != nil {
			t.Errorf("%q: key invalid: %v", tt.in, err)
		}
	}
}

// brokenBlob fails every write the way a full disk does.
type brokenBlob struct{ blob.Store }

func (brokenBlob) Put(context.Context, string, io.Reader, blob.PutOptions) (blob.Info, error) {
	return blob.Info{}, errors.New("write /data/blobs/x: no space left on device")
}

// TestServerFailureOfOneFileIsLogged: a file refused because the server
// failed (500, here a full disk) is reported to the client and logged for
// the operator; a file refused for its own fault (400) is only reported.
func TestServerFailureOfOneFileIsLogged(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	b := setup(t, func(c *upload.Config) {
		c.Store.Blob = brokenBlob{c.Store.Blob}
		c.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	ct, body := multipartBody(t, file{"file", "good.png", fixtures.BlankPNG(t, 8, 8)}, file{"file", "junk.png", []byte("not an image")})
	var resp upload.ReceiptsResponse
	b.do(t, http.MethodPost, "/receipts", ct, body, &resp)
	if len(resp.Errors) != 2 || resp.Errors[0].Status != http.StatusInternalServerError || resp.Errors[1].Status >= 500 {
		t.Fatalf("refusals: %+v", resp.Errors)
	}
	got := logs.String()
	if !strings.Contains(got, "file not accepted") || !strings.Contains(got, "good.png") || !strings.Contains(got, "no space left") {
		t.Errorf("the 500 is not logged with its file and cause:\n%s", got)
	}
	if strings.Contains(got, "junk.png") {
		t.Errorf("a client's bad file is logged as a server error:\n%s", got)
	}
}

// syncBuffer is a bytes.Buffer safe for the handler's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
