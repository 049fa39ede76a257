package ocrstage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/queue"
)

// Rescue re-sends the message of every PENDING job not touched for
// olderThan: a job whose message was lost (the upload API crashed between
// recording the job and queueing it) would otherwise wait forever. A job
// with a message still in flight gets a second one; the worker drops
// whichever arrives after the job finished. It returns how many jobs it
// re-queued.
func Rescue(ctx context.Context, t items.Table, jobs queue.Queue, olderThan time.Duration, now time.Time) (int, error) {
	cutoff := ocrjob.FormatTime(now.Add(-olderThan))
	q := items.Query{Index: ocrjob.StatusIndex, PK: "OCR_JOB_STATUS#" + ocrjob.StatusPending,
		SK: items.SKCond{Op: items.SKLess, Value: cutoff}}
	n := 0
	for {
		page, err := t.Query(ctx, q)
		if err != nil {
			return n, fmt.Errorf("list stale OCR jobs: %w", err)
		}
		for _, it := range page.Items {
			j, err := ocrjob.JobFromItem(it)
			if err != nil {
				continue
			}
			if now.Sub(j.UpdatedAt) < olderThan {
				continue // created long ago but still making progress
			}
			// Touch the job first, so two rescuers do not both re-send it.
			_, err = t.Update(ctx, ocrjob.JobKey(j.ImageID, j.JobID), items.Update{
				Expr:   "SET updated_at = :now",
				Cond:   "#status = :pending AND updated_at = :seen",
				Names:  map[string]string{"#status": "status"},
				Values: map[string]any{":now": ocrjob.FormatTime(now), ":pending": ocrjob.StatusPending, ":seen": ocrjob.FormatTime(j.UpdatedAt)},
			})
			if errors.Is(err, tally.ErrConditionFailed) {
				continue
			}
			if err != nil {
				return n, fmt.Errorf("touch stale OCR job %s: %w", j.JobID, err)
			}
			body := ocrjob.Encode(ocrjob.JobMessage{JobID: j.JobID, ImageID: j.ImageID})
			if _, err := queue.Send(ctx, jobs, body, nil); err != nil {
				return n, fmt.Errorf("re-queue stale OCR job %s: %w", j.JobID, err)
			}
			n++
		}
		if page.NextToken == "" {
			return n, nil
		}
		q.Token = page.NextToken
	}
}
