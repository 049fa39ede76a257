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
	"strconv"
	"strings"
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
	MaxAttributes     = 10  // message attributes per message
	MaxNameLen        = 80  // queue names and batch entry ids
	MaxAttrNameLen    = 256 // message attribute names
)

// Config describes a queue when it is created. Zero values take SQS's
// defaults. Creating a queue that exists with the same name returns it.
// Check a Config with ValidateConfig.
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
	// CreateQueue creates the named queue, or opens it if it exists. A bad
	// name or config is tally.ErrInvalidArgument; a DeadLetter queue that
	// does not exist is tally.ErrNotFound.
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
	// its own error: a malformed handle is tally.ErrInvalidArgument; deleting
	// a message that is already deleted succeeds (as on SQS), so a consumer
	// may retry a delete. Whether a stale handle (from an earlier receive of
	// a message received again since) fails or is accepted depends on the
	// backend: SQS accepts it and may or may not delete the message; the
	// embedded adapter rejects it with tally.ErrInvalidArgument.
	DeleteBatch(ctx context.Context, handles []string) ([]error, error)
	// ChangeVisibilityBatch sets, from now, how long each message stays
	// hidden; 0 makes it visible at once. Per-entry errors as DeleteBatch,
	// except that a deleted message is tally.ErrInvalidArgument.
	ChangeVisibilityBatch(ctx context.Context, changes []VisibilityChange) ([]error, error)
	// Purge deletes every message in the queue. (On SQS a purge may take up
	// to a minute to take effect, and only one is allowed per minute.)
	Purge(ctx context.Context) error
	// Stats reports the approximate counts SQS reports as attributes.
	// On SQS they may lag by a minute.
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
	// Max is the most messages wanted, 1 to MaxBatch (0 means 1). SQS may
	// return fewer even when more are available.
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
	Visible  int // ApproximateNumberOfMessages
	InFlight int // ApproximateNumberOfMessagesNotVisible
	Delayed  int // ApproximateNumberOfMessagesDelayed
	// OldestAge is the age of the oldest message, 0 when empty. SQS has it
	// only as the CloudWatch metric ApproximateAgeOfOldestMessage, not as a
	// queue attribute, so an SQS adapter may report 0.
	OldestAge time.Duration
	// Visibility is the queue's default visibility timeout
	// (VisibilityTimeout), so that an operator can tell a message that is
	// merely being worked on from one that is stuck.
	Visibility time.Duration
}

// Empty reports whether the queue holds no message in any state.
func (s Stats) Empty() bool { return s.Visible == 0 && s.InFlight == 0 && s.Delayed == 0 }

// InFlight is one received message that is not yet deleted, as an operator
// sees it.
type InFlight struct {
	ID           string
	ReceiveCount int
	// ReceivedAt is when the current receive happened; a consumer's
	// heartbeats move VisibleAt, not ReceivedAt.
	ReceivedAt time.Time
	// VisibleAt is when it becomes visible again unless extended.
	VisibleAt  time.Time
	SentAt     time.Time
	Attributes map[string]string
}

// Inspector is implemented by queues that can list their in-flight messages
// and release them without the receiver's receipt handle: the embedded
// queue. SQS cannot, since only the consumer that received a message holds
// its handle; there a stuck message comes back when its timeout ends.
type Inspector interface {
	// InFlight lists up to limit in-flight messages, longest in flight
	// first.
	InFlight(ctx context.Context, limit int) ([]InFlight, error)
	// Release makes every in-flight message received before receivedBefore
	// visible at once, and returns how many it released. A consumer that
	// still works on one finds its delete refused (a stale handle), and the
	// message is delivered again.
	Release(ctx context.Context, receivedBefore time.Time) (int, error)
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
	if size := MessageSize(body, attrs); size > MaxBodyBytes {
		return fmt.Errorf("message is %d bytes, over the %d byte limit: %w", size, MaxBodyBytes, tally.ErrInvalidArgument)
	}
	if err := validText("message body", body); err != nil {
		return err
	}
	if len(attrs) > MaxAttributes {
		return fmt.Errorf("message has %d attributes, over the limit of %d: %w", len(attrs), MaxAttributes, tally.ErrInvalidArgument)
	}
	for k, v := range attrs {
		if err := validAttrName(k); err != nil {
			return err
		}
		if v == "" {
			return fmt.Errorf("message attribute %q has an empty value: %w", k, tally.ErrInvalidArgument)
		}
		if err := validText(fmt.Sprintf("message attribute %q", k), v); err != nil {
			return err
		}
	}
	return nil
}

// MessageSize is the size SQS charges a message against MaxBodyBytes: the
// body plus each attribute's name, data type ("String") and value.
func MessageSize(body string, attrs map[string]string) int {
	size := len(body)
	for k, v := range attrs {
		size += len(k) + len("String") + len(v)
	}
	return size
}

// ValidateName checks a queue name against SQS's rule for standard queues:
// 1 to 80 characters from [A-Za-z0-9_-].
func ValidateName(name string) error {
	if !validID(name) {
		return fmt.Errorf("queue name %q must be 1 to %d characters of A-Z, a-z, 0-9, '-' and '_': %w", name, MaxNameLen, tally.ErrInvalidArgument)
	}
	return nil
}

// ValidateConfig checks a queue's configuration against SQS's ranges. The
// lower bound of Retention is left to the adapter: SQS requires
// MinRetention, while the embedded adapter also accepts shorter periods
// (down to one second) so that tests need not wait a minute.
func ValidateConfig(cfg Config) error {
	switch {
	case cfg.VisibilityTimeout < 0 || cfg.VisibilityTimeout > MaxVisibility:
		return fmt.Errorf("visibility timeout %v is outside 0..%v: %w", cfg.VisibilityTimeout, MaxVisibility, tally.ErrInvalidArgument)
	case cfg.Retention < 0 || cfg.Retention > MaxRetention:
		return fmt.Errorf("retention %v is outside 0..%v: %w", cfg.Retention, MaxRetention, tally.ErrInvalidArgument)
	case cfg.Delay < 0 || cfg.Delay > MaxDelay:
		return fmt.Errorf("delay %v is outside 0..%v: %w", cfg.Delay, MaxDelay, tally.ErrInvalidArgument)
	case cfg.MaxReceiveCount < 0 || cfg.MaxReceiveCount > 1000:
		return fmt.Errorf("max receive count %d is outside 0..1000: %w", cfg.MaxReceiveCount, tally.ErrInvalidArgument)
	case cfg.DeadLetter == "" && cfg.MaxReceiveCount != 0:
		return fmt.Errorf("max receive count %d needs a dead-letter queue: %w", cfg.MaxReceiveCount, tally.ErrInvalidArgument)
	case cfg.DeadLetter != "" && cfg.MaxReceiveCount < 1:
		return fmt.Errorf("dead-letter queue %q needs a max receive count ≥ 1: %w", cfg.DeadLetter, tally.ErrInvalidArgument)
	}
	if cfg.DeadLetter != "" {
		if err := ValidateName(cfg.DeadLetter); err != nil {
			return fmt.Errorf("dead-letter queue: %w", err)
		}
	}
	return nil
}

// ValidateSendBatch applies SendBatch's request-level rules (1 to MaxBatch
// entries, distinct ids of 1 to 80 [A-Za-z0-9_-] characters, at most
// MaxBatchBytes in all) and returns a copy of entries whose empty ids are
// filled with the entry's index. Problems with one entry's body, attributes
// or delay are not request-level: check those with ValidateEntry.
func ValidateSendBatch(entries []SendEntry) ([]SendEntry, error) {
	if err := ValidateBatchSize(len(entries)); err != nil {
		return nil, err
	}
	out := make([]SendEntry, len(entries))
	seen := make(map[string]bool, len(entries))
	total := 0
	for i, e := range entries {
		if e.ID == "" {
			e.ID = strconv.Itoa(i)
		}
		if !validID(e.ID) {
			return nil, fmt.Errorf("batch entry id %q must be 1 to %d characters of A-Z, a-z, 0-9, '-' and '_': %w", e.ID, MaxNameLen, tally.ErrInvalidArgument)
		}
		if seen[e.ID] {
			return nil, fmt.Errorf("batch entry id %q is used twice: %w", e.ID, tally.ErrInvalidArgument)
		}
		seen[e.ID] = true
		total += MessageSize(e.Body, e.Attributes)
		out[i] = e
	}
	if total > MaxBatchBytes {
		return nil, fmt.Errorf("batch is %d bytes, over the %d byte limit: %w", total, MaxBatchBytes, tally.ErrInvalidArgument)
	}
	return out, nil
}

// ValidateEntry checks one send entry (body, attributes, delay); its error
// belongs in that entry's SendResult.
func ValidateEntry(e SendEntry) error {
	if e.Delay != nil && (*e.Delay < 0 || *e.Delay > MaxDelay) {
		return fmt.Errorf("delay %v is outside 0..%v: %w", *e.Delay, MaxDelay, tally.ErrInvalidArgument)
	}
	return ValidateBody(e.Body, e.Attributes)
}

// ValidateBatchSize checks that a batch request has 1 to MaxBatch entries.
func ValidateBatchSize(n int) error {
	if n < 1 || n > MaxBatch {
		return fmt.Errorf("batch has %d entries, want 1 to %d: %w", n, MaxBatch, tally.ErrInvalidArgument)
	}
	return nil
}

// ValidateReceive checks receive options and returns them with Max
// defaulted (0 means 1).
func ValidateReceive(opts ReceiveOptions) (ReceiveOptions, error) {
	if opts.Max == 0 {
		opts.Max = 1
	}
	switch {
	case opts.Max < 0 || opts.Max > MaxBatch:
		return opts, fmt.Errorf("receive max %d is outside 1..%d: %w", opts.Max, MaxBatch, tally.ErrInvalidArgument)
	case opts.Wait < 0 || opts.Wait > MaxWait:
		return opts, fmt.Errorf("receive wait %v is outside 0..%v: %w", opts.Wait, MaxWait, tally.ErrInvalidArgument)
	case opts.Visibility < 0 || opts.Visibility > MaxVisibility:
		return opts, fmt.Errorf("receive visibility %v is outside 0..%v: %w", opts.Visibility, MaxVisibility, tally.ErrInvalidArgument)
	}
	return opts, nil
}

// ValidateVisibility checks one visibility timeout change.
func ValidateVisibility(d time.Duration) error {
	if d < 0 || d > MaxVisibility {
		return fmt.Errorf("visibility timeout %v is outside 0..%v: %w", d, MaxVisibility, tally.ErrInvalidArgument)
	}
	return nil
}

// validID reports whether s matches SQS's [A-Za-z0-9_-]{1,80}, the rule for
// queue names and batch entry ids.
func validID(s string) bool {
	if len(s) < 1 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validAttrName checks a message attribute name: up to 256 characters of
// [A-Za-z0-9_.-], not starting with "AWS." or "Amazon." (any case), not
// starting or ending with '.', and without "..".
func validAttrName(name string) error {
	bad := len(name) == 0 || len(name) > MaxAttrNameLen ||
		strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..")
	lower := strings.ToLower(name)
	bad = bad || strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.")
	for i := 0; i < len(name) && !bad; i++ {
		c := name[i]
		bad = !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.')
	}
	if bad {
		return fmt.Errorf("message attribute name %q is not valid for SQS: %w", name, tally.ErrInvalidArgument)
	}
	return nil
}

// validText checks that s is UTF-8 made only of characters SQS accepts.
func validText(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8: %w", what, tally.ErrInvalidArgument)
	}
	for _, r := range s {
		if !validSQSRune(r) {
			return fmt.Errorf("%s contains character %U that SQS does not accept: %w", what, r, tally.ErrInvalidArgument)
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
