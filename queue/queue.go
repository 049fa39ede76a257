// Package queue is the port for work queues with the semantics of an Amazon
// SQS standard queue: batched send and receive, a visibility timeout that a
// consumer extends while it works (heartbeat), deletion by receipt handle, a
// receive count, and redrive to a dead-letter queue after maxReceiveCount.
//
// The embedded adapter (queue/sqlite) and the AWS adapter (queue/sqs) both
// pass the conformance suite in queue/queuetest, so pipeline code is written
// once against this interface.
package queue

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/tallyhq/tally"
)

// Limits shared by every adapter; they are SQS's own.
const (
	MaxBatch          = 10               // entries per send, receive, delete or visibility batch
	MaxBodyBytes      = 256 * 1024       // one message body plus its attributes
	MaxBatchBytes     = 256 * 1024       // the sum of a send batch
	MaxDelay          = 15 * time.Minute // DelaySeconds
	MaxWait           = 20 * time.Second // long polling
	MaxVisibility     = 12 * time.Hour
	DefaultVisibility = 30 * time.Second
	DefaultRetention  = 4 * 24 * time.Hour
	MinRetention      = time.Minute
	MaxRetention      = 14 * 24 * time.Hour
)

// Config describes a queue when it is created. Zero values take SQS's
// defaults. Creating a queue that exists with the same name returns it.
type Config struct {
	// VisibilityTimeout is the default time a received message stays hidden.
	VisibilityTimeout time.Duration
	// Retention is how long a message may stay in the queue before it is
	// dropped (SQS MessageRetentionPeriod).
	Retention time.Duration
	// Delay is the default delivery delay of new messages.
	Delay time.Duration
	// DeadLetter names a queue (created beforehand) that receives messages
	// whose receive count would exceed MaxReceiveCount. Empty means none.
	DeadLetter string
	// MaxReceiveCount is the redrive threshold; it must be ≥ 1 when
	// DeadLetter is set.
	MaxReceiveCount int
}

// Broker opens queues. One Broker serves many named queues (one SQLite file,
// or one AWS account and region).
type Broker interface {
	// CreateQueue creates the named queue, or opens it if it exists.
	CreateQueue(ctx context.Context, name string, cfg Config) (Queue, error)
	// OpenQueue opens an existing queue; tally.ErrNotFound if there is none.
	OpenQueue(ctx context.Context, name string) (Queue, error)
	// Close releases the broker's resources; queues from it stop working.
	Close() error
}

// Queue is one SQS-style queue.
type Queue interface {
	// Name is the queue's name (the last part of its URL on SQS).
	Name() string
	// SendBatch sends up to MaxBatch entries. A request-level problem (too
	// many entries, duplicate ids, total size) fails the whole call with
	// tally.ErrInvalidArgument; a problem with one entry is reported in that
	// entry's result, and the others are sent.
	SendBatch(ctx context.Context, entries []SendEntry) ([]SendResult, error)
	// Receive returns up to opts.Max messages, waiting up to opts.Wait for
	// the first one (long polling). It returns an empty slice, not an error,
	// when nothing arrived.
	Receive(ctx context.Context, opts ReceiveOptions) ([]Message, error)
	// DeleteBatch deletes messages by receipt handle. Each result reports
	// its own error (a stale or unknown handle is tally.ErrInvalidArgument).
	DeleteBatch(ctx context.Context, handles []string) ([]error, error)
	// ChangeVisibilityBatch sets, from now, how long each message stays
	// hidden; 0 makes it visible at once. Per-entry errors as DeleteBatch.
	ChangeVisibilityBatch(ctx context.Context, changes []VisibilityChange) ([]error, error)
	// Purge deletes every message in the queue.
	Purge(ctx context.Context) error
	// Stats reports the approximate counts SQS reports as attributes.
	Stats(ctx context.Context) (Stats, error)
}

// SendEntry is one message to send.
type SendEntry struct {
	// ID identifies the entry within its batch (SQS's batch entry id).
	// Empty ids are filled with the entry's index.
	ID string
	// Body is the message body: non-empty UTF-8 text.
	Body string
	// Delay overrides the queue's delivery delay; nil keeps the default.
	Delay *time.Duration
	// Attributes are string message attributes.
	Attributes map[string]string
}

// SendResult is the outcome of one SendEntry.
type SendResult struct {
	ID        string // the entry's ID
	MessageID string // assigned by the queue when Err is nil
	Err       error
}

// ReceiveOptions tunes one receive.
type ReceiveOptions struct {
	// Max is the number of messages wanted, 1 to MaxBatch (0 means 1).
	Max int
	// Visibility overrides the queue's visibility timeout; 0 keeps it.
	Visibility time.Duration
	// Wait is the long-polling time, up to MaxWait; 0 returns at once.
	Wait time.Duration
}

// Message is one received message.
type Message struct {
	ID            string
	ReceiptHandle string
	Body          string
	Attributes    map[string]string
	// ReceiveCount is ApproximateReceiveCount, including this receive.
	ReceiveCount int
	// SentAt is SentTimestamp.
	SentAt time.Time
	// FirstReceivedAt is ApproximateFirstReceiveTimestamp.
	FirstReceivedAt time.Time
}

// VisibilityChange is one entry of ChangeVisibilityBatch.
type VisibilityChange struct {
	ReceiptHandle string
	Timeout       time.Duration
}

// Stats are the queue's approximate attributes.
type Stats struct {
	Visible   int           // ApproximateNumberOfMessages
	InFlight  int           // ApproximateNumberOfMessagesNotVisible
	Delayed   int           // ApproximateNumberOfMessagesDelayed
	OldestAge time.Duration // age of the oldest message, 0 when empty
}

// Send sends one message and returns its id.
func Send(ctx context.Context, q Queue, body string, attrs map[string]string) (string, error) {
	res, err := q.SendBatch(ctx, []SendEntry{{ID: "0", Body: body, Attributes: attrs}})
	if err != nil {
		return "", err
	}
	if res[0].Err != nil {
		return "", res[0].Err
	}
	return res[0].MessageID, nil
}

// Delete deletes one message by receipt handle.
func Delete(ctx context.Context, q Queue, handle string) error {
	errs, err := q.DeleteBatch(ctx, []string{handle})
	if err != nil {
		return err
	}
	return errs[0]
}

// ChangeVisibility sets one message's visibility timeout from now.
func ChangeVisibility(ctx context.Context, q Queue, handle string, timeout time.Duration) error {
	errs, err := q.ChangeVisibilityBatch(ctx, []VisibilityChange{{ReceiptHandle: handle, Timeout: timeout}})
	if err != nil {
		return err
	}
	return errs[0]
}

// ValidateBody checks one body and its attributes against SQS's rules so
// every adapter rejects the same inputs with the same error kind.
func ValidateBody(body string, attrs map[string]string) error {
	if body == "" {
		return fmt.Errorf("message body is empty: %w", tally.ErrInvalidArgument)
	}
	size := len(body)
	for k, v := range attrs {
		if k == "" || v == "" {
			return fmt.Errorf("message attribute %q has an empty name or value: %w", k, tally.ErrInvalidArgument)
		}
		size += len(k) + len(v) + len("String")
	}
	if size > MaxBodyBytes {
		return fmt.Errorf("message is %d bytes, over the %d byte limit: %w", size, MaxBodyBytes, tally.ErrInvalidArgument)
	}
	if !utf8.ValidString(body) {
		return fmt.Errorf("message body is not valid UTF-8: %w", tally.ErrInvalidArgument)
	}
	for _, r := range body {
		if !validSQSRune(r) {
			return fmt.Errorf("message body contains character %U that SQS does not accept: %w", r, tally.ErrInvalidArgument)
		}
	}
	return nil
}

// validSQSRune reports whether r is in SQS's allowed set:
// #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
func validSQSRune(r rune) bool {
	switch {
	case r == 0x9 || r == 0xA || r == 0xD:
		return true
	case r >= 0x20 && r <= 0xD7FF:
		return true
	case r >= 0xE000 && r <= 0xFFFD:
		return true
	case r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}
