// Package pipeline is Tally's pipeline told as one story: upload → OCR →
// process → compaction, each stage a consumer of one queue and a producer
// for the next. It is written only against the ports (queue, blob, items),
// never against a backend.
package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/tallyhq/tally/queue"
)

// The pipeline's queues. Each has a dead-letter queue named Name+"-dlq"
// that receives a message once it has been received MaxReceiveCount times
// without being deleted, so no failed record is ever silently dropped.
const (
	QueueOCRJobs    = "ocr-jobs"
	QueueOCRResults = "ocr-results"
	QueueCompaction = "compaction"

	// DeadLetterSuffix names a queue's dead-letter queue.
	DeadLetterSuffix = "-dlq"
	// MaxReceiveCount is how many times a message is tried before redrive.
	MaxReceiveCount = 5
)

// Queues are the pipeline's opened queues.
type Queues struct {
	OCRJobs, OCRResults, Compaction queue.Queue
}

// EnsureQueues creates (or opens) every pipeline queue with its dead-letter
// queue and redrive policy. It is idempotent.
func EnsureQueues(ctx context.Context, b queue.Broker) (Queues, error) {
	var qs Queues
	for _, spec := range []struct {
		name       string
		visibility time.Duration
		dst        *queue.Queue
	}{
		{QueueOCRJobs, 5 * time.Minute, &qs.OCRJobs},
		{QueueOCRResults, 5 * time.Minute, &qs.OCRResults},
		{QueueCompaction, 5 * time.Minute, &qs.Compaction},
	} {
		dlq := spec.name + DeadLetterSuffix
		if _, err := b.CreateQueue(ctx, dlq, queue.Config{Retention: queue.MaxRetention}); err != nil {
			return qs, fmt.Errorf("create queue %s: %w", dlq, err)
		}
		q, err := b.CreateQueue(ctx, spec.name, queue.Config{
			VisibilityTimeout: spec.visibility,
			DeadLetter:        dlq,
			MaxReceiveCount:   MaxReceiveCount,
		})
		if err != nil {
			return qs, fmt.Errorf("create queue %s: %w", spec.name, err)
		}
		*spec.dst = q
	}
	return qs, nil
}

// OpenQueues opens the pipeline's queues without creating or changing them:
// what a worker does when the queues are deployed by infrastructure, whose
// visibility timeouts and redrive policies it must not rewrite. A missing
// queue is tally.ErrNotFound, naming it.
func OpenQueues(ctx context.Context, b queue.Broker) (Queues, error) {
	var qs Queues
	for _, spec := range []struct {
		name string
		dst  *queue.Queue
	}{
		{QueueOCRJobs, &qs.OCRJobs},
		{QueueOCRResults, &qs.OCRResults},
		{QueueCompaction, &qs.Compaction},
	} {
		q, err := b.OpenQueue(ctx, spec.name)
		if err != nil {
			return qs, fmt.Errorf("open queue %s: %w", spec.name, err)
		}
		*spec.dst = q
	}
	return qs, nil
}
