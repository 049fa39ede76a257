package process

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tallyhq/tally/internal/lambdahost"
)

// HandleSQSEvent is the Lambda handler for the ocr-results event source
// mapping (with ReportBatchItemFailures): the same batch code as Run, and a
// response whose BatchItemFailures name exactly the records that failed, so
// SQS retries (and eventually dead-letters) only those. It never returns an
// error for a record's failure: an error would fail the whole batch.
func (w *Worker) HandleSQSEvent(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	return lambdahost.SQS("process", w.HandleBatch, w.log)(ctx, ev)
}
