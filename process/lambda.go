package process

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tallyhq/tally/queue"
)

// HandleSQSEvent is the Lambda handler for the ocr-results event source
// mapping (with ReportBatchItemFailures): the same batch code as Run, and a
// response whose BatchItemFailures name exactly the records that failed, so
// SQS retries (and eventually dead-letters) only those. It never returns an
// error for a record's failure: an error would fail the whole batch.
func (w *Worker) HandleSQSEvent(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	msgs := make([]queue.Message, len(ev.Records))
	for i, r := range ev.Records {
		n, _ := strconv.Atoi(r.Attributes["ApproximateReceiveCount"])
		var sent time.Time
		if ms, err := strconv.ParseInt(r.Attributes["SentTimestamp"], 10, 64); err == nil {
			sent = time.UnixMilli(ms)
		}
		attrs := make(map[string]string, len(r.MessageAttributes))
		for k, v := range r.MessageAttributes {
			if v.StringValue != nil {
				attrs[k] = *v.StringValue
			}
		}
		msgs[i] = queue.Message{ID: r.MessageId, ReceiptHandle: r.ReceiptHandle, Body: r.Body, Attributes: attrs, ReceiveCount: n, SentAt: sent}
	}
	var resp events.SQSEventResponse
	for i, err := range w.HandleBatch(ctx, msgs) {
		if err != nil {
			w.log.Warn("record failed; SQS will retry it", "message_id", ev.Records[i].MessageId, "err", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
		}
	}
	return resp, nil
}
