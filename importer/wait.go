package importer

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/tallyhq/tally/internal/ctxtime"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/upload"
)

// Stages a waited-for image ends in (Final.Stage), as the web app's
// uploads page names them.
const (
	// StageLabelled: OCR found receipts and each has its labelled summary.
	StageLabelled = "labelled"
	// StageProcessed: OCR completed and found no receipt to label.
	StageProcessed = "processed"
	// StageFailed: OCR failed; Reason says why.
	StageFailed = "failed"
	// StageDuplicate: the OCR stage found the bytes were already there.
	StageDuplicate = "duplicate"
	// StageUnknown: the wait itself failed (timeout, server gone).
	StageUnknown = "unknown"
)

// Final is where an image ended after processing.
type Final struct {
	Stage  string
	Reason string
	// Status is the server's last /upload-status answer.
	Status upload.Status
}

// maxPoll bounds the wait between two status polls.
const maxPoll = 2 * time.Second

// WaitOCR polls GET /upload-status until the image's OCR job is no longer
// PENDING (COMPLETED or FAILED), backing off from 200 ms to 2 s. It is
// what `tally upload -wait` prints.
func (c *Client) WaitOCR(ctx context.Context, imageID string) (upload.Status, error) {
	path := "/upload-status?image_id=" + url.QueryEscape(imageID)
	delay := 200 * time.Millisecond
	for {
		var st upload.Status
		err := c.Retrying(ctx, func() error { return c.Call(ctx, http.MethodGet, path, "", nil, &st) })
		if err != nil {
			return st, fmt.Errorf("status of image %s: %w", imageID, err)
		}
		if st.OCRStatus != ocrjob.StatusPending {
			return st, nil
		}
		if err := ctxtime.Sleep(ctx, delay); err != nil {
			return st, fmt.Errorf("image %s still %s at %s: %w", imageID, st.OCRStatus, st.ProcessingStage, err)
		}
		delay = min(2*delay, maxPoll)
	}
}

// Wait follows an image through processing: its OCR job (WaitOCR), then,
// when OCR found receipts, the image's export (GET /images/{id}) until
// every receipt has its labelled summary. A processing stage that fails
// after OCR is not reported by these endpoints, so ctx bounds the wait.
func (c *Client) Wait(ctx context.Context, imageID string) (Final, error) {
	st, err := c.WaitOCR(ctx, imageID)
	if err != nil {
		return Final{Stage: StageUnknown, Reason: err.Error(), Status: st}, err
	}
	switch {
	case st.OCRStatus == ocrjob.StatusFailed:
		return Final{Stage: StageFailed, Reason: st.FailureReason, Status: st}, nil
	case st.DuplicateOf != "":
		return Final{Stage: StageDuplicate, Reason: "duplicate of image " + st.DuplicateOf, Status: st}, nil
	case st.ReceiptCount == 0:
		return Final{Stage: StageProcessed, Status: st}, nil
	}
	path := "/images/" + url.PathEscape(imageID)
	delay := 200 * time.Millisecond
	for {
		var exp struct {
			Summaries []struct{} `json:"receipt_summaries"`
		}
		err := c.Retrying(ctx, func() error { return c.Call(ctx, http.MethodGet, path, "", nil, &exp) })
		if err != nil {
			return Final{Stage: StageUnknown, Reason: err.Error(), Status: st}, fmt.Errorf("export of image %s: %w", imageID, err)
		}
		if len(exp.Summaries) >= st.ReceiptCount {
			return Final{Stage: StageLabelled, Status: st}, nil
		}
		if err := ctxtime.Sleep(ctx, delay); err != nil {
			return Final{Stage: StageUnknown, Reason: "not labelled yet", Status: st},
				fmt.Errorf("image %s: %d of %d receipts labelled: %w", imageID, len(exp.Summaries), st.ReceiptCount, err)
		}
		delay = min(2*delay, maxPoll)
	}
}
