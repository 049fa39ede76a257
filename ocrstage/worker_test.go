package ocrstage_test

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/blob"
	blobfile "github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocr/tesseract"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/ocrstage"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/queue"
	queuesqlite "github.com/tallyhq/tally/queue/sqlite"
)

// bundle is one test's OCR stage on embedded backends with real Tesseract.
type bundle struct {
	items  items.Table
	blob   blob.Store
	queues pipeline.Queues
	broker queue.Broker
	worker *ocrstage.Worker
	cfg    ocrstage.Config
}

func setup(t testing.TB, mod func(*ocrstage.Config)) *bundle {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	tbl, err := itemssqlite.Open(ctx, filepath.Join(dir, "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	bs, err := blobfile.Open(filepath.Join(dir, "blobs"), blobfile.Options{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	broker, err := queuesqlite.Open(ctx, filepath.Join(dir, "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	qs, err := pipeline.EnsureQueues(ctx, broker)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := tesseract.New(tesseract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ocrstage.Config{
		Store:  ocrstage.Store{Items: tbl, Blob: bs, Bucket: "local", Results: qs.OCRResults},
		Jobs:   qs.OCRJobs,
		Engine: eng,
		Log:    slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&cfg)
	}
	w, err := ocrstage.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{items: tbl, blob: bs, queues: qs, broker: broker, worker: w, cfg: cfg}
}

// submit stores data as a new image (unless data is nil) and records and
// queues its job; it returns the job.
func (b *bundle) submit(t testing.TB, name string, data []byte, mod func(*ocrjob.Job)) ocrjob.Job {
	t.Helper()
	ctx := context.Background()
	img := ocrjob.NewID()
	j := ocrjob.Job{ImageID: img, JobID: ocrjob.NewID(), Bucket: "local", Key: "raw-receipts/" + img + "/" + name}
	if mod != nil {
		mod(&j)
	}
	if data != nil {
		if _, err := b.blob.Put(ctx, j.Key, bytes.NewReader(data), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ocrjob.CreateJob(ctx, b.items, j); err != nil {
		t.Fatal(err)
	}
	if _, err := queue.Send(ctx, b.queues.OCRJobs, ocrjob.Encode(ocrjob.JobMessage{JobID: j.JobID, ImageID: j.ImageID}), nil); err != nil {
		t.Fatal(err)
	}
	return j
}

// drain receives every visible job message, handles them as one batch and
// returns the messages with their errors.
func (b *bundle) drain(t *testing.T) ([]queue.Message, []error) {
	t.Helper()
	ctx := context.Background()
	msgs, err := b.queues.OCRJobs.Receive(ctx, queue.ReceiveOptions{Max: 10, Visibility: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	errs := b.worker.HandleBatch(ctx, msgs)
	if len(errs) != len(msgs) {
		t.Fatalf("HandleBatch gave %d errors for %d messages", len(errs), len(msgs))
	}
	for i, m := range msgs {
		if errs[i] == nil {
			if err := queue.Delete(ctx, b.queues.OCRJobs, m.ReceiptHandle); err != nil {
				t.Fatal(err)
			}
		}
	}
	return msgs, errs
}

func (b *bundle) job(t *testing.T, j ocrjob.Job) ocrjob.Job {
	t.Helper()
	got, err := ocrjob.GetJob(context.Background(), b.items, j.ImageID, j.JobID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func readFixture(t testing.TB, parts ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(fixtures.Path(t, parts...))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// smallReceipt is a small PNG of a few printed receipt lines: real text
// for real Tesseract, for the tests of the stage's job, queue and status
// handling, where the full-size Costco receipt would only add decoding,
// recognition and encoding time (several seconds under -race) without
// being asserted on. It is built once per test binary; callers must not
// modify it.
var smallReceipt = sync.OnceValue(func() []byte {
	img, _ := fixtures.TextImage([]string{"TALLY TEST MART", "MILK 1 GAL    3.49", "BREAD         2.99", "TOTAL         6.48"}, 3)
	return pngOf(img)
})

func allText(r *ocr.Result) string {
	var sb strings.Builder
	for _, l := range r.Lines {
		sb.WriteString(l.Text + "\n")
	}
	for _, rc := range r.Receipts {
		for _, l := range rc.Lines {
			sb.WriteString(l.Text + "\n")
		}
	}
	return sb.String()
}

// TestCostcoEndToEnd runs a real receipt through the worker: the job ends
// COMPLETED, the result (single-pass) holds the printed total, the crop and
// routing item exist, and one message waits on ocr-results.
func TestCostcoEndToEnd(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	j := b.submit(t, "costco.png", readFixture(t, "portfolio", "costco_wholesale.real.png"), nil)
	_, errs := b.drain(t)
	if len(errs) != 1 || errs[0] != nil {
		t.Fatalf("errs = %v", errs)
	}
	got := b.job(t, j)
	if got.Status != ocrjob.StatusCompleted || got.Stage != ocrjob.StageCompleted || got.ReceiptCount < 1 || got.SHA256 == "" {
		t.Fatalf("job = %+v", got)
	}
	raw, err := blob.ReadAll(ctx, b.blob, got.ResultKey)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ocr.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Validate(); err != nil {
		t.Error(err)
	}
	if !res.SinglePass() || len(res.Receipts) != got.ReceiptCount {
		t.Fatalf("result single-pass %v with %d receipts, job says %d", res.SinglePass(), len(res.Receipts), got.ReceiptCount)
	}
	if !strings.Contains(allText(res), "116.99") {
		t.Errorf("result lacks the total 116.99:\n%s", allText(res))
	}
	rc := res.Receipts[0]
	if rc.WarpedWidth <= 0 || rc.WarpedHeight <= 0 || rc.S3Key == "" {
		t.Errorf("receipt = %dx%d crop %q", rc.WarpedWidth, rc.WarpedHeight, rc.S3Key)
	}
	crop, err := blob.ReadAll(ctx, b.blob, rc.S3Key)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := png.DecodeConfig(bytes.NewReader(crop)); err != nil || cfg.Width != rc.WarpedWidth || cfg.Height != rc.WarpedHeight {
		t.Errorf("crop = %+v, %v; want %dx%d", cfg, err, rc.WarpedWidth, rc.WarpedHeight)
	}
	routing, err := ocrjob.GetRouting(ctx, b.items, j.ImageID, j.JobID)
	if err != nil || routing.ReceiptCount != got.ReceiptCount || routing.ResultKey != got.ResultKey {
		t.Errorf("routing = %+v, %v", routing, err)
	}
	msgs, err := b.queues.OCRResults.Receive(ctx, queue.ReceiveOptions{Max: 10})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("ocr-results has %d messages, %v", len(msgs), err)
	}
	rm, err := ocrjob.DecodeResultMessage(msgs[0].Body)
	if err != nil || rm.ImageID != j.ImageID || rm.JobID != j.JobID || rm.S3Key != got.ResultKey || rm.S3Bucket != "local" || rm.ReceiptCount != got.ReceiptCount {
		t.Errorf("result message = %+v, %v", rm, err)
	}
	img, err := b.items.Get(ctx, ocrjob.ImageKey(j.ImageID))
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := items.Int64Of(img["width"]); w != 760 {
		t.Errorf("image width = %v, want 760", img["width"])
	}

	// Redelivery of a finished job is a no-op: nothing new on ocr-results.
	if _, err := queue.Send(ctx, b.queues.OCRJobs, ocrjob.Encode(ocrjob.JobMessage{JobID: j.JobID, ImageID: j.ImageID}), nil); err != nil {
		t.Fatal(err)
	}
	if _, errs := b.drain(t); len(errs) != 1 || errs[0] != nil {
		t.Fatalf("redelivery errs = %v", errs)
	}
	if st, _ := b.queues.OCRResults.Stats(ctx); st.Visible+st.InFlight != 1 {
		t.Errorf("ocr-results holds %d messages after redelivery, want 1", st.Visible+st.InFlight)
	}
}

// TestSROIEEndToEnd: a real scanned receipt's printed total comes out.
func TestSROIEEndToEnd(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	key := string(readFixture(t, "sroie", "key", "000.json"))
	total := between(key, `"total": "`, `"`)
	if total == "" {
		t.Fatalf("no total in key: %s", key)
	}
	j := b.submit(t, "000.jpg", readFixture(t, "sroie", "img", "000.jpg"), nil)
	if _, errs := b.drain(t); errs[0] != nil {
		t.Fatal(errs[0])
	}
	got := b.job(t, j)
	if got.Status != ocrjob.StatusCompleted {
		t.Fatalf("job = %+v", got)
	}
	raw, _ := blob.ReadAll(context.Background(), b.blob, got.ResultKey)
	res, err := ocr.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(allText(res), total) {
		t.Errorf("result lacks the total %s:\n%s", total, allText(res))
	}
}

func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, end)
	return v
}

func pngOf(img image.Image) []byte {
	var buf bytes.Buffer
	png.Encode(&buf, img)
	return buf.Bytes()
}

// hugePNGHeader is a valid PNG signature and IHDR claiming w×h pixels, with
// no pixel data.
func hugePNGHeader(w, h int) []byte {
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1)))
	b := buf.Bytes()
	// IHDR data starts at byte 16: width, height (big endian); fix the CRC.
	put := func(off, v int) { b[off], b[off+1], b[off+2], b[off+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v) }
	put(16, w)
	put(20, h)
	crc := crc32IEEE(b[12:29])
	put(29, int(crc))
	return b[:33]
}

// TestPermanentFailures: bad images end FAILED with their reason, the
// message is finished with, and a good job in the same batch completes.
func TestPermanentFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	var jpg bytes.Buffer
	src := image.NewRGBA(image.Rect(0, 0, 400, 300))
	for i := range src.Pix {
		src.Pix[i] = byte(i * 7)
	}
	jpeg.Encode(&jpg, src, nil)
	blank := image.NewGray(image.Rect(0, 0, 600, 400))
	for i := range blank.Pix {
		blank.Pix[i] = 255
	}
	cases := []struct {
		name, file string
		data       []byte
		reason     string
	}{
		{"empty", "a.jpg", []byte{}, "empty"},
		{"not an image", "a.jpg", []byte("hello, this is text"), "supported"},
		{"truncated jpeg", "a.jpg", jpg.Bytes()[:jpg.Len()/2], "image"},
		{"huge png", "a.png", hugePNGHeader(20000, 20000), "pixels"},
		{"no text", "blank.png", pngOf(blank), "no text"},
	}
	jobs := make([]ocrjob.Job, len(cases))
	for i, c := range cases {
		jobs[i] = b.submit(t, c.file, c.data, nil)
	}
	good := b.submit(t, "small.png", smallReceipt(), nil)
	msgs, errs := b.drain(t)
	if len(msgs) != len(cases)+1 {
		t.Fatalf("handled %d messages, want %d", len(msgs), len(cases)+1)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("message %d: %v (a permanent failure must finish the message)", i, err)
		}
	}
	for i, c := range cases {
		got := b.job(t, jobs[i])
		if got.Status != ocrjob.StatusFailed || !strings.Contains(strings.ToLower(got.Reason), c.reason) {
			t.Errorf("%s: job %s reason %q, want FAILED naming %q", c.name, got.Status, got.Reason, c.reason)
		}
	}
	if got := b.job(t, good); got.Status != ocrjob.StatusCompleted {
		t.Errorf("good job in the same batch = %s (%s)", got.Status, got.Reason)
	}
}

// TestLateImage: a job whose image has not arrived is re-queued with a
// delay (never FAILED, never counted toward the DLQ) and completes once
// the image is there; a job whose upload window has closed fails.
func TestLateImage(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	late := b.submit(t, "small.png", nil, func(j *ocrjob.Job) { j.UploadBy = time.Now().Add(10 * time.Minute) })
	expired := b.submit(t, "gone.png", nil, func(j *ocrjob.Job) { j.UploadBy = time.Now().Add(-time.Hour) })
	if _, errs := b.drain(t); errs[0] != nil || errs[1] != nil {
		t.Fatalf("errs = %v", errs)
	}
	got := b.job(t, late)
	if got.Status != ocrjob.StatusPending || got.Attempts != 1 {
		t.Fatalf("late job = %s attempts %d, want PENDING 1", got.Status, got.Attempts)
	}
	if got := b.job(t, expired); got.Status != ocrjob.StatusFailed || !strings.Contains(got.Reason, "never arrived") {
		t.Errorf("expired job = %s %q", got.Status, got.Reason)
	}
	st, err := b.queues.OCRJobs.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Delayed != 1 || st.Visible != 0 {
		t.Fatalf("jobs queue = %+v, want the late job re-queued with a delay", st)
	}
	// The image arrives; the re-queued message (sent again here without the
	// delay, as it would be after the backoff) completes the job.
	if _, err := b.blob.Put(ctx, late.Key, bytes.NewReader(smallReceipt()), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := queue.Send(ctx, b.queues.OCRJobs, ocrjob.Encode(ocrjob.JobMessage{JobID: late.JobID, ImageID: late.ImageID}), nil); err != nil {
		t.Fatal(err)
	}
	if _, errs := b.drain(t); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if got := b.job(t, late); got.Status != ocrjob.StatusCompleted {
		t.Errorf("late job after arrival = %s %q", got.Status, got.Reason)
	}
}

func TestArrivalBackoff(t *testing.T) {
	t.Parallel()
	prev := time.Duration(0)
	for n := 1; n < 20; n++ {
		d := ocrstage.ArrivalBackoff(n)
		if d < prev || d > 2*time.Minute || d <= 0 {
			t.Errorf("ArrivalBackoff(%d) = %v after %v", n, d, prev)
		}
		prev = d
	}
}

// TestDuplicateBytes: the same bytes as an earlier image complete as a
// duplicate pointing at it, without OCR; with Force they are OCRed again.
func TestDuplicateBytes(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	data := smallReceipt()
	first := b.submit(t, "a.png", data, nil)
	if _, errs := b.drain(t); errs[0] != nil {
		t.Fatal(errs[0])
	}
	second := b.submit(t, "b.png", data, nil)
	forced := b.submit(t, "c.png", data, func(j *ocrjob.Job) { j.Force = true })
	if _, errs := b.drain(t); errs[0] != nil || errs[1] != nil {
		t.Fatalf("errs = %v", errs)
	}
	got := b.job(t, second)
	if got.Status != ocrjob.StatusCompleted || got.DuplicateOf != first.ImageID || got.Stage != ocrjob.StageDuplicate || got.ResultKey != "" {
		t.Errorf("duplicate job = %+v", got)
	}
	if got := b.job(t, forced); got.Status != ocrjob.StatusCompleted || got.DuplicateOf != "" || got.ResultKey == "" {
		t.Errorf("forced job = %+v", got)
	}
}

// TestTransientFailureGoesToDLQ: an engine that fails (a tesseract that
// crashes) leaves the job PENDING and the message on the queue; after
// MaxReceiveCount receives it is in the dead-letter queue, not lost.
func TestTransientFailureGoesToDLQ(t *testing.T) {
	t.Parallel()
	script := filepath.Join(t.TempDir(), "tesseract")
	os.WriteFile(script, []byte("#!/bin/sh\ncase \"$1\" in --version) echo 'tesseract 5.3.0'; exit 0;; --list-langs) printf 'List of available languages (1):\\neng\\n'; exit 0;; esac\necho 'Segmentation fault' >&2\nexit 139\n"), 0o755)
	eng, err := tesseract.New(tesseract.Options{Binary: script})
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, func(c *ocrstage.Config) { c.Engine = eng })
	ctx := context.Background()
	j := b.submit(t, "small.png", smallReceipt(), nil)
	for i := 1; i <= pipeline.MaxReceiveCount; i++ {
		msgs, err := b.queues.OCRJobs.Receive(ctx, queue.ReceiveOptions{Max: 10, Visibility: time.Second})
		if err != nil || len(msgs) != 1 {
			t.Fatalf("receive %d: %d messages, %v", i, len(msgs), err)
		}
		errs := b.worker.HandleBatch(ctx, msgs)
		if !errors.Is(errs[0], ocr.ErrEngine) {
			t.Fatalf("receive %d: err = %v, want ErrEngine", i, errs[0])
		}
		// Make it visible again at once instead of waiting.
		if err := queue.ChangeVisibility(ctx, b.queues.OCRJobs, msgs[0].ReceiptHandle, 0); err != nil {
			t.Fatal(err)
		}
	}
	if msgs, _ := b.queues.OCRJobs.Receive(ctx, queue.ReceiveOptions{Max: 10}); len(msgs) != 0 {
		t.Fatalf("message still on the jobs queue after %d receives", pipeline.MaxReceiveCount)
	}
	dlq, err := b.broker.OpenQueue(ctx, pipeline.QueueOCRJobs+pipeline.DeadLetterSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if msgs, err := dlq.Receive(ctx, queue.ReceiveOptions{Max: 10}); err != nil || len(msgs) != 1 {
		t.Fatalf("dead-letter queue has %d messages, %v; want the failed job", len(msgs), err)
	}
	if got := b.job(t, j); got.Status != ocrjob.StatusPending {
		t.Errorf("job after transient failures = %s, want PENDING", got.Status)
	}
}

// TestRescue re-queues a pending job whose message was lost.
func TestRescue(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	img := ocrjob.NewID()
	j := ocrjob.Job{ImageID: img, JobID: ocrjob.NewID(), Key: "raw-receipts/" + img + "/x.png", CreatedAt: time.Now().Add(-time.Hour)}
	if err := ocrjob.CreateJob(ctx, b.items, j); err != nil {
		t.Fatal(err)
	}
	n, err := ocrstage.Rescue(ctx, b.items, b.queues.OCRJobs, 15*time.Minute, time.Now())
	if err != nil || n != 1 {
		t.Fatalf("Rescue = %d, %v; want 1", n, err)
	}
	if n, _ := ocrstage.Rescue(ctx, b.items, b.queues.OCRJobs, 15*time.Minute, time.Now()); n != 0 {
		t.Errorf("second Rescue re-queued %d, want 0 (the job was just touched)", n)
	}
	msgs, err := b.queues.OCRJobs.Receive(ctx, queue.ReceiveOptions{Max: 10})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("jobs queue has %d messages, %v", len(msgs), err)
	}
	if m, _ := ocrjob.DecodeJobMessage(msgs[0].Body); m.JobID != j.JobID {
		t.Errorf("rescued message = %+v", m)
	}
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
