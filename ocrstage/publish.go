package ocrstage

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/imaging"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/queue"
)

// Store is what publishing a result needs: the table, the blob store (and
// the bucket name messages carry), and the ocr-results queue.
type Store struct {
	Items   items.Table
	Blob    blob.Store
	Bucket  string
	Results queue.Queue
}

// ResultKey is where a job's OCR result JSON is stored.
func ResultKey(imageID, jobID string) string {
	return "ocr-results/" + imageID + "/" + jobID + ".json"
}

// CropKey is where a job's rectified receipt crop is stored.
func CropKey(imageID, jobID string, clusterID int) string {
	return fmt.Sprintf("ocr-receipts/%s/%s/receipt_%05d.png", imageID, jobID, clusterID)
}

// Published is what Publish stored.
type Published struct {
	ResultKey    string
	ReceiptCount int
}

// Publish stores an analysed image and hands it to the process stage, in an
// order that survives a crash at any point: crops and result JSON first
// (plain overwrites), then the routing item, then the ocr-results message,
// then the job COMPLETED with the image item in one transaction. A crash
// before the last step leaves the job PENDING, so its redelivered message
// redoes the same writes (the process stage is idempotent per job, so a
// second ocr-results message costs only work).
func (s Store) Publish(ctx context.Context, job ocrjob.Job, im ocrjob.Image, a *Analysis, engine string) (Published, error) {
	res := a.Result
	summaries := make([]ocrjob.ReceiptSummary, len(res.Receipts))
	for i := range res.Receipts {
		rc := &res.Receipts[i]
		key := CropKey(job.ImageID, job.JobID, rc.ClusterID)
		if i < len(a.Crops) && a.Crops[i] != nil {
			var buf bytes.Buffer
			if err := imaging.EncodePNG(&buf, a.Crops[i]); err != nil {
				return Published{}, fmt.Errorf("encode receipt %d crop: %w", rc.ClusterID, err)
			}
			if _, err := s.Blob.Put(ctx, key, &buf, blob.PutOptions{ContentType: "image/png"}); err != nil {
				return Published{}, fmt.Errorf("store receipt %d crop: %w", rc.ClusterID, err)
			}
			rc.S3Key = key
		}
		summaries[i] = ocrjob.ReceiptSummary{ReceiptID: i + 1, ClusterID: rc.ClusterID, WarpedWidth: rc.WarpedWidth,
			WarpedHeight: rc.WarpedHeight, CropKey: rc.S3Key, Lines: len(rc.Lines)}
	}
	body, err := ocr.Encode(res)
	if err != nil {
		return Published{}, fmt.Errorf("encode OCR result: %w", err)
	}
	key := ResultKey(job.ImageID, job.JobID)
	if _, err := s.Blob.Put(ctx, key, bytes.NewReader(body), blob.PutOptions{ContentType: "application/json"}); err != nil {
		return Published{}, fmt.Errorf("store OCR result: %w", err)
	}
	imageType := ""
	if res.Classification != nil {
		imageType = res.Classification.ImageType
	}
	now := time.Now()
	routing := ocrjob.Routing{ImageID: job.ImageID, JobID: job.JobID, Bucket: s.Bucket, ResultKey: key,
		ReceiptCount: len(res.Receipts), ImageType: imageType, Engine: engine, Receipts: summaries, CreatedAt: now}
	rw := ocrjob.RoutingWrite(routing)
	if err := s.Items.Put(ctx, rw.Item, items.Cond{}); err != nil {
		return Published{}, fmt.Errorf("store routing decision: %w", err)
	}
	msg := ocrjob.ResultMessage{ImageID: job.ImageID, JobID: job.JobID, S3Key: key, S3Bucket: s.Bucket, ReceiptCount: len(res.Receipts)}
	if _, err := queue.Send(ctx, s.Results, ocrjob.Encode(msg), nil); err != nil {
		return Published{}, fmt.Errorf("send OCR result message: %w", err)
	}
	im.ImageType = imageType
	c := ocrjob.Completion{SHA256: im.SHA256, ResultKey: key, ReceiptCount: len(res.Receipts), ImageType: imageType}
	if err := ocrjob.Complete(ctx, s.Items, job.ImageID, job.JobID, c, now, ocrjob.ImageWrite(im)); err != nil {
		return Published{}, err
	}
	return Published{ResultKey: key, ReceiptCount: len(res.Receipts)}, nil
}
