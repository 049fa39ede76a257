package ocrjob_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/ocrjob"
)

func newTable(t *testing.T) items.Table {
	t.Helper()
	tbl, err := itemssqlite.Open(context.Background(), filepath.Join(t.TempDir(), "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl
}

func TestJobLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := newTable(t)
	img, job := ocrjob.NewID(), ocrjob.NewID()
	j := ocrjob.Job{ImageID: img, JobID: job, Bucket: "tally", Key: "raw-receipts/" + img + "/a.jpg", Filename: "a.jpg", ContentType: "image/jpeg"}
	if err := ocrjob.CreateJob(ctx, tbl, j); err != nil {
		t.Fatal(err)
	}
	if err := ocrjob.CreateJob(ctx, tbl, j); !errors.Is(err, tally.ErrConditionFailed) {
		t.Fatalf("second create = %v, want ErrConditionFailed", err)
	}
	got, err := ocrjob.GetJob(ctx, tbl, img, job)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != ocrjob.StatusPending || got.Stage != ocrjob.StagePending || got.JobType != ocrjob.JobTypeFirst || got.Filename != "a.jpg" {
		t.Errorf("created job = %+v", got)
	}
	// Pending jobs are listed by status.
	page, err := tbl.Query(ctx, items.Query{Index: ocrjob.StatusIndex, PK: "OCR_JOB_STATUS#PENDING"})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("pending by status = %d items, %v", len(page.Items), err)
	}
	now := time.Now()
	for _, st := range []string{ocrjob.StageDownload, ocrjob.StageOCR, ocrjob.StageUploading} {
		if err := ocrjob.SetStage(ctx, tbl, img, job, st, now); err != nil {
			t.Fatal(err)
		}
		if got, _ := ocrjob.GetJob(ctx, tbl, img, job); got.Stage != st {
			t.Errorf("stage = %s, want %s", got.Stage, st)
		}
	}
	if n, err := ocrjob.CountAttempt(ctx, tbl, img, job, now); err != nil || n != 1 {
		t.Errorf("CountAttempt = %d, %v", n, err)
	}
	routing := ocrjob.Routing{ImageID: img, JobID: job, Bucket: "tally", ResultKey: "ocr-results/x.json", ReceiptCount: 2,
		ImageType: "PHOTO", Engine: "tesseract", CreatedAt: now,
		Receipts: []ocrjob.ReceiptSummary{{ReceiptID: 1, ClusterID: 1, WarpedWidth: 100, WarpedHeight: 300, CropKey: "c1", Lines: 4}, {ReceiptID: 2, ClusterID: 2}}}
	image := ocrjob.Image{ImageID: img, Width: 3024, Height: 4032, Bucket: "tally", Key: j.Key, SHA256: "ab", ImageType: "PHOTO", Added: now}
	c := ocrjob.Completion{SHA256: "ab", ResultKey: routing.ResultKey, ReceiptCount: 2, ImageType: "PHOTO"}
	if err := ocrjob.Complete(ctx, tbl, img, job, c, now, ocrjob.RoutingWrite(routing), ocrjob.ImageWrite(image)); err != nil {
		t.Fatal(err)
	}
	// Redelivery: completing again is a no-op.
	if err := ocrjob.Complete(ctx, tbl, img, job, c, now, ocrjob.RoutingWrite(routing)); err != nil {
		t.Fatalf("second Complete = %v", err)
	}
	got, _ = ocrjob.GetJob(ctx, tbl, img, job)
	if got.Status != ocrjob.StatusCompleted || got.ReceiptCount != 2 || got.ResultKey != routing.ResultKey || got.ImageType != "PHOTO" {
		t.Errorf("completed job = %+v", got)
	}
	if err := ocrjob.SetStage(ctx, tbl, img, job, ocrjob.StageOCR, now); !errors.Is(err, tally.ErrConditionFailed) {
		t.Errorf("stage after completion = %v, want ErrConditionFailed", err)
	}
	if err := ocrjob.Fail(ctx, tbl, img, job, "late", now); err != nil {
		t.Errorf("Fail after completion = %v, want no-op", err)
	}
	if got, _ := ocrjob.GetJob(ctx, tbl, img, job); got.Status != ocrjob.StatusCompleted {
		t.Errorf("Fail moved a completed job to %s", got.Status)
	}
	r, err := ocrjob.GetRouting(ctx, tbl, img, job)
	if err != nil {
		t.Fatal(err)
	}
	if r.ReceiptCount != 2 || len(r.Receipts) != 2 || r.Receipts[0].CropKey != "c1" || r.Receipts[0].WarpedHeight != 300 || r.Status != ocrjob.StatusPending {
		t.Errorf("routing = %+v", r)
	}
	it, err := tbl.Get(ctx, ocrjob.ImageKey(img))
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := items.Int64Of(it["width"]); w != 3024 || it["image_type"] != "PHOTO" || it[items.AttrType] != ocrjob.TypeImage {
		t.Errorf("image item = %v", it)
	}
}

func TestFailAndLatest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := newTable(t)
	img := ocrjob.NewID()
	first, second := ocrjob.NewID(), ocrjob.NewID()
	t0 := time.Now().Add(-time.Minute)
	for i, id := range []string{first, second} {
		if err := ocrjob.CreateJob(ctx, tbl, ocrjob.Job{ImageID: img, JobID: id, Key: "k", CreatedAt: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ocrjob.Fail(ctx, tbl, img, second, "image: not a JPEG", time.Now()); err != nil {
		t.Fatal(err)
	}
	j, err := ocrjob.LatestJob(ctx, tbl, img)
	if err != nil {
		t.Fatal(err)
	}
	if j.JobID != second || j.Status != ocrjob.StatusFailed || j.Reason != "image: not a JPEG" || j.Stage != ocrjob.StageFailed {
		t.Errorf("latest = %+v", j)
	}
	if _, err := ocrjob.LatestJob(ctx, tbl, ocrjob.NewID()); !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("unknown image = %v", err)
	}
	if err := ocrjob.Complete(ctx, tbl, img, second, ocrjob.Completion{}, time.Now()); !errors.Is(err, tally.ErrConditionFailed) {
		t.Errorf("completing a failed job = %v", err)
	}
}

func TestClaimSHA256(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tbl := newTable(t)
	a, b := ocrjob.NewID(), ocrjob.NewID()
	if got, err := ocrjob.ClaimSHA256(ctx, tbl, "", "ff", a, time.Now()); err != nil || got != a {
		t.Fatalf("first claim = %s, %v", got, err)
	}
	if got, err := ocrjob.ClaimSHA256(ctx, tbl, "", "ff", b, time.Now()); err != nil || got != a {
		t.Fatalf("second claim = %s, %v; want the first image", got, err)
	}
	if _, err := ocrjob.LookupSHA256(ctx, tbl, "", "00"); !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("lookup of unknown = %v", err)
	}
	// Claims are per owner: another user's same bytes are their own image.
	if got, err := ocrjob.ClaimSHA256(ctx, tbl, "bob", "ff", b, time.Now()); err != nil || got != b {
		t.Fatalf("bob's claim = %s, %v; want his own image", got, err)
	}
	if got, err := ocrjob.LookupSHA256(ctx, tbl, "bob", "ff"); err != nil || got != b {
		t.Errorf("bob's lookup = %s, %v", got, err)
	}
	if k := ocrjob.SHA256Key("", "ff"); k.PK != "IMAGE_SHA256#ff" || k.SK != "IMAGE" {
		t.Errorf("an unowned claim's key %+v is not the old system's", k)
	}
}

func TestValidateID(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		id string
		ok bool
	}{
		{ocrjob.NewID(), true}, {"", false}, {"a#b", false}, {"../x", false}, {"..", false}, {"a\x00", false}, {string(make([]byte, 200)), false}, {"\xff", false},
	} {
		if err := ocrjob.ValidateID("id", tt.id); (err == nil) != tt.ok || (err != nil && !errors.Is(err, tally.ErrInvalidArgument)) {
			t.Errorf("ValidateID(%q) = %v", tt.id, err)
		}
	}
}

func TestMessages(t *testing.T) {
	t.Parallel()
	img, job := ocrjob.NewID(), ocrjob.NewID()
	m, err := ocrjob.DecodeJobMessage(ocrjob.Encode(ocrjob.JobMessage{JobID: job, ImageID: img}))
	if err != nil || m.JobID != job || m.ImageID != img {
		t.Fatalf("job message round trip = %+v, %v", m, err)
	}
	rm := ocrjob.ResultMessage{ImageID: img, JobID: job, S3Key: "k", S3Bucket: "b", ReceiptCount: 1}
	if got, err := ocrjob.DecodeResultMessage(ocrjob.Encode(rm)); err != nil || got != rm {
		t.Fatalf("result message round trip = %+v, %v", got, err)
	}
	for _, bad := range []string{``, `{}`, `{"job_id":"a"}`, `{"job_id":"a","image_id":"b#c"}`, `[1]`} {
		if _, err := ocrjob.DecodeJobMessage(bad); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("DecodeJobMessage(%q) = %v", bad, err)
		}
	}
}
