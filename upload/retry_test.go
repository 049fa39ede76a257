package upload_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/upload"
)

// TestRetry: a FAILED image runs again from its stored upload as a new
// job with a queued message; an image that did not fail, or that does not
// exist, is refused with the right status and nothing queued.
func TestRetry(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	ct, body := multipartBody(t, file{"file", "r.png", fixtures.BlankPNG(t, 20, 20)})
	var resp upload.ReceiptsResponse
	if code := b.do(t, "POST", "/receipts", ct, body, &resp); code != 200 || len(resp.Receipts) != 1 {
		t.Fatalf("upload: %d %+v", code, resp)
	}
	acc := resp.Receipts[0]
	drain := func() int {
		msgs, err := b.queues.OCRJobs.Receive(ctx, queue.ReceiveOptions{Max: 10, Visibility: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			queue.Delete(ctx, b.queues.OCRJobs, m.ReceiptHandle)
		}
		return len(msgs)
	}
	drain()
	if code := b.do(t, "POST", "/images/"+acc.ImageID+"/retry", "", nil, nil); code != 409 {
		t.Errorf("retry of a pending image: %d, want 409", code)
	}
	if err := ocrjob.Fail(ctx, b.items, acc.ImageID, acc.JobID, "tesseract crashed", time.Now()); err != nil {
		t.Fatal(err)
	}
	var again upload.Accepted
	if code := b.do(t, "POST", "/images/"+acc.ImageID+"/retry", "", nil, &again); code != 202 {
		t.Fatalf("retry of a failed image: %d", code)
	}
	if again.ImageID != acc.ImageID || again.JobID == acc.JobID || again.S3Key != acc.S3Key {
		t.Errorf("retry = %+v, first = %+v", again, acc)
	}
	if n := drain(); n != 1 {
		t.Errorf("%d messages queued by the retry, want 1", n)
	}
	j, err := ocrjob.LatestJob(ctx, b.items, acc.ImageID)
	if err != nil || j.JobID != again.JobID || j.Status != ocrjob.StatusPending || !j.Force {
		t.Errorf("latest job = %+v, %v", j, err)
	}
	// The retry's own job is PENDING: not retried again until it is stuck.
	if code := b.do(t, "POST", "/images/"+acc.ImageID+"/retry", "", nil, nil); code != 409 {
		t.Errorf("retry of an image whose retry is pending: %d, want 409", code)
	}
	if code := b.do(t, "POST", "/images/nope/retry", "", nil, nil); code != 404 {
		t.Errorf("unknown image: %d", code)
	}
	if code := b.do(t, "POST", "/images/..%2f/retry", "", nil, nil); code != 400 && code != 404 {
		t.Errorf("bad id: %d", code)
	}
}

// TestBySHA256: which image holds some bytes, answered without side
// effects; a malformed hash is a 400 and unknown bytes a 404.
func TestBySHA256(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ct, body := multipartBody(t, file{"file", "r.png", fixtures.BlankPNG(t, 22, 22)})
	var resp upload.ReceiptsResponse
	if code := b.do(t, "POST", "/receipts", ct, body, &resp); code != 200 || len(resp.Receipts) != 1 {
		t.Fatalf("upload: %d", code)
	}
	var got struct {
		ImageID string `json:"image_id"`
	}
	if code := b.do(t, "GET", "/images/by-sha256/"+strings.ToUpper(resp.Receipts[0].SHA256), "", nil, &got); code != 200 || got.ImageID != resp.Receipts[0].ImageID {
		t.Errorf("known bytes: %d %+v", code, got)
	}
	if code := b.do(t, "GET", "/images/by-sha256/"+strings.Repeat("0", 64), "", nil, nil); code != 404 {
		t.Errorf("unknown bytes: %d", code)
	}
	if code := b.do(t, "GET", "/images/by-sha256/xyz", "", nil, nil); code != 400 {
		t.Errorf("bad hash: %d", code)
	}
}

// TestRetryStuck: a PENDING job with no progress for StuckAfter is retried
// as a failed one is, keeping the stored upload.
func TestRetryStuck(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *upload.Config) { c.StuckAfter = time.Millisecond })
	ct, body := multipartBody(t, file{"file", "s.png", fixtures.BlankPNG(t, 21, 21)})
	var resp upload.ReceiptsResponse
	if code := b.do(t, "POST", "/receipts", ct, body, &resp); code != 200 || len(resp.Receipts) != 1 {
		t.Fatalf("upload: %d %+v", code, resp)
	}
	acc := resp.Receipts[0]
	j, err := ocrjob.LatestJob(context.Background(), b.items, acc.ImageID)
	if err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, "the job to age past StuckAfter", func() bool { return upload.Stuck(j, time.Millisecond, time.Now()) })
	var again upload.Accepted
	if code := b.do(t, "POST", "/images/"+acc.ImageID+"/retry", "", nil, &again); code != 202 || again.JobID == acc.JobID || again.S3Key != acc.S3Key {
		t.Fatalf("retry of a stuck image: %d %+v", code, again)
	}
	if upload.Stuck(ocrjob.Job{Status: ocrjob.StatusCompleted}, 0, time.Now()) {
		t.Error("a COMPLETED job counted as stuck")
	}
}
