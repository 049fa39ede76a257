// Package sqs is the AWS adapter of the queue port: each queue.Queue is an
// Amazon SQS standard queue. It passes the same conformance suite
// (queue/queuetest) as the embedded adapter, against moto_server and AWS.
//
// Naming. A logical queue name ("ocr-jobs") becomes the SQS queue
// Options.Prefix+name ("prod-ocr-jobs"), so one account and region can hold
// several Tally deployments. SQS limits the full name to 80 characters; so
// that every name the port accepts works here too, a prefixed name that
// would be longer keeps its first characters and ends in "-" and 16 hex
// digits of the SHA-256 of the logical name. Options.QueueURLs bypasses the
// mapping for queues made by the infrastructure (the OCR_JOB_QUEUE_URL of a
// Lambda), which are then used as they are.
//
// Differences from the embedded adapter, all SQS's own: receive order is not
// guaranteed and a receive may return fewer messages than are available;
// counts in Stats are approximate and may lag; a stale receipt handle is
// accepted; Stats.OldestAge is always 0 (SQS has it only as a CloudWatch
// metric); retention is at least a minute; durations are rounded up to whole
// seconds; one purge per queue per minute (ErrPurgeInProgress).
//
// Two consequences of aws-sdk-go-v2 omitting zero integers from requests: a
// per-message Delay of 0 on a queue with a default delay gets the queue's
// delay, and a receive with Wait 0 uses the queue's
// ReceiveMessageWaitTimeSeconds (0 for queues made by CreateQueue, but an
// infrastructure queue reached through QueueURLs may long poll by default).
//
// Throttling and 5xx responses are retried by the aws.Config's retryer (use
// internal/awsenv); the adapter adds no retry of its own.
package sqs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/queue"
)

// MaxPrefixLen bounds Options.Prefix so that a shortened name (see the
// package doc) keeps enough of the logical name to stay readable.
const MaxPrefixLen = 40

// ErrPurgeInProgress is returned by Purge when SQS refuses a purge because
// another one on the same queue started less than a minute ago. Messages
// sent before that earlier purge are being deleted; newer ones are not.
// Retry after a minute if they must go too.
var ErrPurgeInProgress = errors.New("sqs: a purge of this queue is already in progress")

// errClosed is returned by every operation after Broker.Close.
var errClosed = errors.New("sqs broker is closed")

// Options tune a Broker. The zero value uses queue names unchanged.
type Options struct {
	// Prefix is prepended to every logical queue name to form the SQS
	// queue name, so several deployments can share one account: "ocr-jobs"
	// with Prefix "prod-" is the SQS queue "prod-ocr-jobs". At most
	// MaxPrefixLen characters of [A-Za-z0-9_-].
	Prefix string
	// QueueURLs maps logical queue names to the URLs of queues that exist
	// already (made by the infrastructure, e.g. OCR_JOB_QUEUE_URL for
	// "ocr-jobs"). OpenQueue and CreateQueue of such a name use the URL
	// without calling SQS: CreateQueue validates its arguments but neither
	// creates the queue nor changes its attributes, which belong to whoever
	// made it; a URL that names no queue fails on first use with
	// tally.ErrNotFound. A DeadLetter naming such a queue uses its URL too.
	QueueURLs map[string]string
	// Logger receives notes on queue creation and convergence; nil discards
	// them.
	Logger *slog.Logger
}

// Broker opens SQS queues of one account and region.
type Broker struct {
	client *awssqs.Client
	opts   Options
	log    *slog.Logger
	err    error // a bad Options value, returned by every call

	ctx    context.Context // cancelled by Close, to end long polls
	cancel context.CancelFunc
	once   sync.Once
}

var _ queue.Broker = (*Broker)(nil)

// New returns a Broker using cfg, which should come from awsenv.Load so that
// it carries Tally's retry policy. Invalid Options are reported by the first
// CreateQueue or OpenQueue.
func New(cfg aws.Config, opts Options) *Broker {
	b := &Broker{client: awssqs.NewFromConfig(cfg), opts: opts, log: opts.Logger}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.err = checkOptions(opts)
	return b
}

func checkOptions(opts Options) error {
	if opts.Prefix != "" {
		if len(opts.Prefix) > MaxPrefixLen || queue.ValidateName(opts.Prefix) != nil {
			return fmt.Errorf("sqs queue prefix %q must be up to %d characters of A-Z, a-z, 0-9, '-' and '_': %w", opts.Prefix, MaxPrefixLen, tally.ErrInvalidArgument)
		}
	}
	for name, u := range opts.QueueURLs {
		if err := queue.ValidateName(name); err != nil {
			return fmt.Errorf("sqs queue URLs: %w", err)
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("sqs queue URL %q for %s is not an http(s) URL: %w", u, name, tally.ErrInvalidArgument)
		}
	}
	return nil
}

// Client returns the SQS client, for tests and tools that need an API the
// port does not have.
func (b *Broker) Client() *awssqs.Client { return b.client }

// Close ends waiting receives; later calls on the broker and its queues
// fail. The SDK client holds nothing else to release.
func (b *Broker) Close() error {
	b.once.Do(b.cancel)
	return nil
}

// QueueName returns the SQS queue name a logical name maps to (see the
// package doc), for infrastructure code that must create the same queues.
func (b *Broker) QueueName(name string) string {
	full := b.opts.Prefix + name
	if len(full) <= queue.MaxNameLen {
		return full
	}
	sum := sha256.Sum256([]byte(name))
	tag := hex.EncodeToString(sum[:8])
	keep := max(queue.MaxNameLen-len(b.opts.Prefix)-1-len(tag), 0)
	return b.opts.Prefix + name[:min(keep, len(name))] + "-" + tag
}

func (b *Broker) check() error {
	if b.err != nil {
		return b.err
	}
	if b.ctx.Err() != nil {
		return errClosed
	}
	return nil
}

// url finds the URL of a logical queue: from Options.QueueURLs, else with
// GetQueueUrl.
func (b *Broker) url(ctx context.Context, name string) (string, error) {
	if u, ok := b.opts.QueueURLs[name]; ok {
		return u, nil
	}
	out, err := b.client.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(b.QueueName(name))})
	if err != nil {
		return "", wrap("GetQueueUrl", b.QueueName(name), err)
	}
	return aws.ToString(out.QueueUrl), nil
}

// CreateQueue creates the SQS queue, or opens it if it exists. It sets
// every attribute the port controls (VisibilityTimeout,
// MessageRetentionPeriod, DelaySeconds, RedrivePolicy, and
// ReceiveMessageWaitTimeSeconds 0), so an existing queue converges on cfg:
// SQS answers QueueAlreadyExists when the attributes differ, and then they
// are applied with SetQueueAttributes (SQS may take up to a minute to
// propagate them). A redrive policy left on an existing queue whose cfg has
// no DeadLetter is removed. Queues listed in Options.QueueURLs are not
// touched (see Options).
func (b *Broker) CreateQueue(ctx context.Context, name string, cfg queue.Config) (queue.Queue, error) {
	if err := b.check(); err != nil {
		return nil, fmt.Errorf("create queue %s: %w", name, err)
	}
	if err := queue.ValidateName(name); err != nil {
		return nil, fmt.Errorf("create queue: %w", err)
	}
	if err := queue.ValidateConfig(cfg); err != nil {
		return nil, fmt.Errorf("create queue %s: %w", name, err)
	}
	if cfg.Retention != 0 && cfg.Retention < queue.MinRetention {
		return nil, fmt.Errorf("create queue %s: retention %v is under SQS's minimum %v: %w", name, cfg.Retention, queue.MinRetention, tally.ErrInvalidArgument)
	}
	if cfg.DeadLetter == name {
		return nil, fmt.Errorf("create queue %s: a queue cannot be its own dead-letter queue: %w", name, tally.ErrInvalidArgument)
	}
	if u, ok := b.opts.QueueURLs[name]; ok {
		b.log.DebugContext(ctx, "sqs queue has a configured URL; its attributes are left as they are", "queue", name, "url", u)
		return &Queue{b: b, name: name, url: u}, nil
	}

	attrs := map[string]string{
		string(types.QueueAttributeNameVisibilityTimeout):             seconds(orDefault(cfg.VisibilityTimeout, queue.DefaultVisibility)),
		string(types.QueueAttributeNameMessageRetentionPeriod):        seconds(orDefault(cfg.Retention, queue.DefaultRetention)),
		string(types.QueueAttributeNameDelaySeconds):                  seconds(cfg.Delay),
		string(types.QueueAttributeNameReceiveMessageWaitTimeSeconds): "0",
	}
	if cfg.DeadLetter != "" {
		policy, err := b.redrivePolicy(ctx, cfg.DeadLetter, cfg.MaxReceiveCount)
		if err != nil {
			return nil, fmt.Errorf("create queue %s: %w", name, err)
		}
		attrs[string(types.QueueAttributeNameRedrivePolicy)] = policy
	}

	sqsName := b.QueueName(name)
	out, err := b.client.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(sqsName), Attributes: attrs})
	switch {
	case err == nil:
		q := &Queue{b: b, name: name, url: aws.ToString(out.QueueUrl)}
		if cfg.DeadLetter == "" {
			if err := q.dropRedrive(ctx); err != nil {
				return nil, fmt.Errorf("create queue %s: %w", name, err)
			}
		}
		return q, nil
	case isCode(err, "QueueAlreadyExists", "QueueNameExists") || errors.As(err, new(*types.QueueNameExists)):
		u, err := b.url(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("create queue %s: %w", name, err)
		}
		if cfg.DeadLetter == "" {
			attrs[string(types.QueueAttributeNameRedrivePolicy)] = ""
		}
		if _, err := b.client.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(u), Attributes: attrs}); err != nil {
			return nil, fmt.Errorf("create queue %s: %w", name, wrap("SetQueueAttributes", sqsName, err))
		}
		b.log.InfoContext(ctx, "sqs queue existed with other attributes; updated them", "queue", sqsName, "attributes", attrs)
		return &Queue{b: b, name: name, url: u}, nil
	default:
		return nil, fmt.Errorf("create queue %s: %w", name, wrap("CreateQueue", sqsName, err))
	}
}

// redrivePolicy builds the RedrivePolicy attribute naming the logical queue
// dlq; tally.ErrNotFound if it does not exist.
func (b *Broker) redrivePolicy(ctx context.Context, dlq string, maxReceives int) (string, error) {
	u, err := b.url(ctx, dlq)
	if err != nil {
		return "", fmt.Errorf("dead-letter queue %s: %w", dlq, err)
	}
	out, err := b.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(u),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("dead-letter queue %s: %w", dlq, wrap("GetQueueAttributes", dlq, err))
	}
	arn := out.Attributes[string(types.QueueAttributeNameQueueArn)]
	if arn == "" {
		return "", fmt.Errorf("dead-letter queue %s has no QueueArn attribute", dlq)
	}
	js, err := json.Marshal(struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     int    `json:"maxReceiveCount"`
	}{arn, maxReceives})
	if err != nil {
		return "", err
	}
	return string(js), nil
}

// OpenQueue opens an existing queue; tally.ErrNotFound if there is none. A
// queue in Options.QueueURLs is opened without calling SQS.
func (b *Broker) OpenQueue(ctx context.Context, name string) (queue.Queue, error) {
	if err := b.check(); err != nil {
		return nil, fmt.Errorf("open queue %s: %w", name, err)
	}
	if err := queue.ValidateName(name); err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}
	u, err := b.url(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("open queue %s: %w", name, err)
	}
	return &Queue{b: b, name: name, url: u}, nil
}

// Queue is one SQS queue, addressed by URL.
type Queue struct {
	b    *Broker
	name string
	url  string
}

var _ queue.Queue = (*Queue)(nil)

// Name is the logical queue name (without the broker's prefix).
func (q *Queue) Name() string { return q.name }

// URL is the SQS queue URL, e.g. for an event source mapping.
func (q *Queue) URL() string { return q.url }

// dropRedrive removes a redrive policy an existing queue still has from an
// earlier config: CreateQueue compares only the attributes it is given, so
// it cannot see it.
func (q *Queue) dropRedrive(ctx context.Context) error {
	out, err := q.b.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(q.url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		return wrap("GetQueueAttributes", q.name, err)
	}
	if out.Attributes[string(types.QueueAttributeNameRedrivePolicy)] == "" {
		return nil
	}
	_, err = q.b.client.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{
		QueueUrl:   aws.String(q.url),
		Attributes: map[string]string{string(types.QueueAttributeNameRedrivePolicy): ""},
	})
	if err != nil {
		return wrap("SetQueueAttributes", q.name, err)
	}
	q.b.log.InfoContext(ctx, "removed the redrive policy of an existing sqs queue", "queue", q.name)
	return nil
}

// SendBatch validates every entry first and sends only the valid ones in one
// SendMessageBatch; SQS's per-entry failures land in their results.
func (q *Queue) SendBatch(ctx context.Context, entries []queue.SendEntry) ([]queue.SendResult, error) {
	if err := q.b.check(); err != nil {
		return nil, fmt.Errorf("send to %s: %w", q.name, err)
	}
	entries, err := queue.ValidateSendBatch(entries)
	if err != nil {
		return nil, fmt.Errorf("send to %s: %w", q.name, err)
	}
	results := make([]queue.SendResult, len(entries))
	index := make(map[string]int, len(entries))
	var req []types.SendMessageBatchRequestEntry
	for i, e := range entries {
		results[i] = queue.SendResult{ID: e.ID}
		if err := queue.ValidateEntry(e); err != nil {
			results[i].Err = fmt.Errorf("send entry %s to %s: %w", e.ID, q.name, err)
			continue
		}
		re := types.SendMessageBatchRequestEntry{Id: aws.String(e.ID), MessageBody: aws.String(e.Body)}
		if e.Delay != nil {
			re.DelaySeconds = secs32(*e.Delay)
		}
		if len(e.Attributes) > 0 {
			re.MessageAttributes = make(map[string]types.MessageAttributeValue, len(e.Attributes))
			for k, v := range e.Attributes {
				re.MessageAttributes[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
			}
		}
		index[e.ID] = i
		req = append(req, re)
	}
	if len(req) == 0 {
		return results, nil
	}
	out, err := q.b.client.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(q.url), Entries: req})
	if err != nil {
		return nil, fmt.Errorf("send to %s: %w", q.name, wrap("SendMessageBatch", q.name, err))
	}
	done := make(map[string]bool, len(req))
	for _, s := range out.Successful {
		if i, ok := index[aws.ToString(s.Id)]; ok {
			results[i].MessageID = aws.ToString(s.MessageId)
			done[results[i].ID] = true
		}
	}
	for _, f := range out.Failed {
		if i, ok := index[aws.ToString(f.Id)]; ok {
			results[i].Err = fmt.Errorf("send entry %s to %s: %w", results[i].ID, q.name, entryError(f))
			done[results[i].ID] = true
		}
	}
	for id, i := range index {
		if !done[id] {
			results[i].Err = fmt.Errorf("send entry %s to %s: SQS returned no result for it", id, q.name)
		}
	}
	return results, nil
}

// Receive is one ReceiveMessage call, long polling up to opts.Wait. A
// cancelled ctx (or Close) ends the poll at once.
func (q *Queue) Receive(ctx context.Context, opts queue.ReceiveOptions) ([]queue.Message, error) {
	if err := q.b.check(); err != nil {
		return nil, fmt.Errorf("receive from %s: %w", q.name, err)
	}
	opts, err := queue.ValidateReceive(opts)
	if err != nil {
		return nil, fmt.Errorf("receive from %s: %w", q.name, err)
	}
	pollCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(q.b.ctx, cancel)
	defer stop()
	out, err := q.b.client.ReceiveMessage(pollCtx, &awssqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(q.url),
		MaxNumberOfMessages:         int32(opts.Max),
		WaitTimeSeconds:             secs32(opts.Wait),
		VisibilityTimeout:           secs32(opts.Visibility),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("receive from %s: %w", q.name, ctx.Err())
		case q.b.ctx.Err() != nil:
			return nil, fmt.Errorf("receive from %s: %w", q.name, errClosed)
		}
		return nil, fmt.Errorf("receive from %s: %w", q.name, wrap("ReceiveMessage", q.name, err))
	}
	msgs := make([]queue.Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		msg := queue.Message{
			ID:              aws.ToString(m.MessageId),
			ReceiptHandle:   aws.ToString(m.ReceiptHandle),
			Body:            aws.ToString(m.Body),
			ReceiveCount:    atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]),
			SentAt:          millis(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)]),
			FirstReceivedAt: millis(m.Attributes[string(types.MessageSystemAttributeNameApproximateFirstReceiveTimestamp)]),
		}
		for k, v := range m.MessageAttributes {
			// String and Number attributes carry StringValue; Binary ones,
			// which the port cannot send, are dropped.
			if v.StringValue == nil {
				continue
			}
			if msg.Attributes == nil {
				msg.Attributes = make(map[string]string, len(m.MessageAttributes))
			}
			msg.Attributes[k] = *v.StringValue
		}
		msgs = append(msgs, msg)
	}
	return msgs, nil
}

// DeleteBatch deletes by receipt handle in one DeleteMessageBatch. Empty
// handles are rejected here; SQS judges the rest.
func (q *Queue) DeleteBatch(ctx context.Context, handles []string) ([]error, error) {
	if err := q.b.check(); err != nil {
		return nil, fmt.Errorf("delete from %s: %w", q.name, err)
	}
	if err := queue.ValidateBatchSize(len(handles)); err != nil {
		return nil, fmt.Errorf("delete from %s: %w", q.name, err)
	}
	errs := make([]error, len(handles))
	var req []types.DeleteMessageBatchRequestEntry
	for i, h := range handles {
		if h == "" {
			errs[i] = fmt.Errorf("delete from %s: empty receipt handle: %w", q.name, tally.ErrInvalidArgument)
			continue
		}
		req = append(req, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(h)})
	}
	if len(req) == 0 {
		return errs, nil
	}
	out, err := q.b.client.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.url), Entries: req})
	if err != nil {
		return nil, fmt.Errorf("delete from %s: %w", q.name, wrap("DeleteMessageBatch", q.name, err))
	}
	ok := make([]string, 0, len(out.Successful))
	for _, s := range out.Successful {
		ok = append(ok, aws.ToString(s.Id))
	}
	batchErrors(errs, req, func(e types.DeleteMessageBatchRequestEntry) string { return aws.ToString(e.Id) }, ok, out.Failed, "delete from "+q.name)
	return errs, nil
}

// ChangeVisibilityBatch sets visibility timeouts in one
// ChangeMessageVisibilityBatch; timeouts are rounded up to whole seconds.
func (q *Queue) ChangeVisibilityBatch(ctx context.Context, changes []queue.VisibilityChange) ([]error, error) {
	if err := q.b.check(); err != nil {
		return nil, fmt.Errorf("change visibility in %s: %w", q.name, err)
	}
	if err := queue.ValidateBatchSize(len(changes)); err != nil {
		return nil, fmt.Errorf("change visibility in %s: %w", q.name, err)
	}
	errs := make([]error, len(changes))
	var req []types.ChangeMessageVisibilityBatchRequestEntry
	for i, ch := range changes {
		if err := queue.ValidateVisibility(ch.Timeout); err != nil {
			errs[i] = fmt.Errorf("change visibility in %s: %w", q.name, err)
			continue
		}
		if ch.ReceiptHandle == "" {
			errs[i] = fmt.Errorf("change visibility in %s: empty receipt handle: %w", q.name, tally.ErrInvalidArgument)
			continue
		}
		req = append(req, types.ChangeMessageVisibilityBatchRequestEntry{
			Id:                aws.String(strconv.Itoa(i)),
			ReceiptHandle:     aws.String(ch.ReceiptHandle),
			VisibilityTimeout: secs32(ch.Timeout),
		})
	}
	if len(req) == 0 {
		return errs, nil
	}
	out, err := q.b.client.ChangeMessageVisibilityBatch(ctx, &awssqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(q.url), Entries: req})
	if err != nil {
		return nil, fmt.Errorf("change visibility in %s: %w", q.name, wrap("ChangeMessageVisibilityBatch", q.name, err))
	}
	ok := make([]string, 0, len(out.Successful))
	for _, s := range out.Successful {
		ok = append(ok, aws.ToString(s.Id))
	}
	batchErrors(errs, req, func(e types.ChangeMessageVisibilityBatchRequestEntry) string { return aws.ToString(e.Id) }, ok, out.Failed, "change visibility in "+q.name)
	return errs, nil
}

// batchErrors fills errs (indexed by the entry ids, which are the positions
// in the caller's slice) from a batch response: failed entries get their
// mapped error, entries SQS did not mention get an error too.
func batchErrors[E any](errs []error, req []E, id func(E) string, ok []string, failed []types.BatchResultErrorEntry, what string) {
	seen := make(map[string]bool, len(req))
	for _, s := range ok {
		seen[s] = true
	}
	for _, f := range failed {
		i, err := strconv.Atoi(aws.ToString(f.Id))
		if err != nil || i < 0 || i >= len(errs) {
			continue
		}
		errs[i] = fmt.Errorf("%s: %w", what, entryError(f))
		seen[aws.ToString(f.Id)] = true
	}
	for _, e := range req {
		if !seen[id(e)] {
			i, _ := strconv.Atoi(id(e))
			errs[i] = fmt.Errorf("%s: SQS returned no result for entry %s", what, id(e))
		}
	}
}

// Purge calls PurgeQueue. SQS deletes the messages within up to a minute and
// allows one purge per minute: a second one in that window fails with
// ErrPurgeInProgress.
func (q *Queue) Purge(ctx context.Context) error {
	if err := q.b.check(); err != nil {
		return fmt.Errorf("purge %s: %w", q.name, err)
	}
	_, err := q.b.client.PurgeQueue(ctx, &awssqs.PurgeQueueInput{QueueUrl: aws.String(q.url)})
	if err != nil {
		return fmt.Errorf("purge %s: %w", q.name, wrap("PurgeQueue", q.name, err))
	}
	return nil
}

// Stats reads SQS's approximate counts; OldestAge is always 0.
func (q *Queue) Stats(ctx context.Context) (queue.Stats, error) {
	if err := q.b.check(); err != nil {
		return queue.Stats{}, fmt.Errorf("stats of %s: %w", q.name, err)
	}
	out, err := q.b.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
			types.QueueAttributeNameVisibilityTimeout,
		},
	})
	if err != nil {
		return queue.Stats{}, fmt.Errorf("stats of %s: %w", q.name, wrap("GetQueueAttributes", q.name, err))
	}
	return queue.Stats{
		Visible:    atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)]),
		InFlight:   atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)]),
		Delayed:    atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesDelayed)]),
		Visibility: time.Duration(atoi(out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)])) * time.Second,
	}, nil
}

// Error codes, short (JSON protocol) and legacy (query protocol, which SQS
// still sends in x-amzn-query-error and the SDK may surface), mapped onto
// the port's sentinels.
var codeSentinels = map[string]error{
	"QueueDoesNotExist":                                     tally.ErrNotFound,
	"AWS.SimpleQueueService.NonExistentQueue":               tally.ErrNotFound,
	"ResourceNotFoundException":                             tally.ErrNotFound,
	"ReceiptHandleIsInvalid":                                tally.ErrInvalidArgument,
	"InvalidParameterValue":                                 tally.ErrInvalidArgument,
	"InvalidParameterCombination":                           tally.ErrInvalidArgument,
	"InvalidAttributeName":                                  tally.ErrInvalidArgument,
	"InvalidAttributeValue":                                 tally.ErrInvalidArgument,
	"InvalidMessageContents":                                tally.ErrInvalidArgument,
	"InvalidIdFormat":                                       tally.ErrInvalidArgument,
	"InvalidAddress":                                        tally.ErrInvalidArgument,
	"MissingParameter":                                      tally.ErrInvalidArgument,
	"ValidationError":                                       tally.ErrInvalidArgument,
	"MessageNotInflight":                                    tally.ErrInvalidArgument,
	"AWS.SimpleQueueService.MessageNotInflight":             tally.ErrInvalidArgument,
	"BatchEntryIdsNotDistinct":                              tally.ErrInvalidArgument,
	"AWS.SimpleQueueService.BatchEntryIdsNotDistinct":       tally.ErrInvalidArgument,
	"EmptyBatchRequest":                                     tally.ErrInvalidArgument,
	"AWS.SimpleQueueService.EmptyBatchRequest":              tally.ErrInvalidArgument,
	"TooManyEntriesInBatchRequest":                          tally.ErrInvalidArgument,
	"AWS.SimpleQueueService.TooManyEntriesInBatchRequest":   tally.ErrInvalidArgument,
	"BatchRequestTooLong":                                   tally.ErrInvalidArgument,
	"AWS.SimpleQueueService.BatchRequestTooLong":            tally.ErrInvalidArgument,
	"InvalidBatchEntryId":                                   tally.ErrInvalidArgument,
	"AWS.SimpleQueueService.InvalidBatchEntryId":            tally.ErrInvalidArgument,
	"UnsupportedOperation":                                  tally.ErrInvalidArgument,
	"AWS.SimpleQueueService.UnsupportedOperation":           tally.ErrInvalidArgument,
	"PurgeQueueInProgress":                                  ErrPurgeInProgress,
	"AWS.SimpleQueueService.PurgeQueueInProgress":           ErrPurgeInProgress,
	"QueueDeletedRecently":                                  tally.ErrConditionFailed,
	"AWS.SimpleQueueService.QueueDeletedRecently":           tally.ErrConditionFailed,
	"AWS.SimpleQueueService.InvalidBatchEntryIdFormat":      tally.ErrInvalidArgument,
	"AWS.SimpleQueueService.ReceiptHandleIsInvalidForQueue": tally.ErrInvalidArgument,
}

// typedSentinel maps the SDK's modelled error types, whatever code string
// they carry.
func typedSentinel(err error) error {
	switch {
	case errors.As(err, new(*types.QueueDoesNotExist)):
		return tally.ErrNotFound
	case errors.As(err, new(*types.PurgeQueueInProgress)):
		return ErrPurgeInProgress
	case errors.As(err, new(*types.ReceiptHandleIsInvalid)),
		errors.As(err, new(*types.InvalidAttributeName)),
		errors.As(err, new(*types.InvalidAttributeValue)),
		errors.As(err, new(*types.InvalidMessageContents)),
		errors.As(err, new(*types.InvalidIdFormat)),
		errors.As(err, new(*types.MessageNotInflight)),
		errors.As(err, new(*types.BatchEntryIdsNotDistinct)),
		errors.As(err, new(*types.EmptyBatchRequest)),
		errors.As(err, new(*types.TooManyEntriesInBatchRequest)),
		errors.As(err, new(*types.BatchRequestTooLong)),
		errors.As(err, new(*types.InvalidBatchEntryId)),
		errors.As(err, new(*types.InvalidAddress)),
		errors.As(err, new(*types.UnsupportedOperation)):
		return tally.ErrInvalidArgument
	}
	return nil
}

// wrap names the API call and queue and adds the port's sentinel, if any,
// to an SDK error.
func wrap(api, name string, err error) error {
	sentinel := typedSentinel(err)
	var ae smithy.APIError
	if sentinel == nil && errors.As(err, &ae) {
		sentinel = codeSentinels[ae.ErrorCode()]
	}
	if sentinel == nil {
		return fmt.Errorf("%s %s: %w", api, name, err)
	}
	return fmt.Errorf("%s %s: %w: %w", api, name, err, sentinel)
}

func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}

// entryError turns one failed batch entry into an error wrapping the port's
// sentinel for its code.
func entryError(f types.BatchResultErrorEntry) error {
	code, msg := aws.ToString(f.Code), aws.ToString(f.Message)
	if s := codeSentinels[code]; s != nil {
		return fmt.Errorf("%s: %s: %w", code, msg, s)
	}
	if f.SenderFault {
		return fmt.Errorf("%s: %s: %w", code, msg, tally.ErrInvalidArgument)
	}
	return fmt.Errorf("%s: %s", code, msg)
}

// seconds renders d as whole seconds, rounded up, for a queue attribute.
func seconds(d time.Duration) string { return strconv.Itoa(int(secs32(d))) }

// secs32 rounds d up to whole seconds: SQS takes only those, and rounding
// down could turn a short timeout into 0 ("at once" or "the default").
func secs32(d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	return int32(min(math.Ceil(d.Seconds()), math.MaxInt32))
}

func orDefault(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// millis parses an epoch-milliseconds attribute; zero time if absent.
func millis(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}
