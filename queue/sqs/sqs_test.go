package sqs_test

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/internal/awsenv"
	"github.com/tallyhq/tally/internal/awstest"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/queue/queuetest"
	"github.com/tallyhq/tally/queue/sqs"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// unique returns a short random tag for resource names.
func unique(t testing.TB) string {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

func TestConformance(t *testing.T) {
	srv := awstest.Shared(t)
	cfg := srv.Config(t)
	prefix := "ct" + unique(t) + "-"
	queuetest.Run(t, func(t *testing.T) queue.Broker {
		return sqs.New(cfg, sqs.Options{Prefix: prefix})
	}, queuetest.Capabilities{})
}

// TestConformanceAWS runs the suite against real SQS with the default
// credential chain, and deletes the queues it made.
func TestConformanceAWS(t *testing.T) {
	if os.Getenv("TALLY_TEST_AWS") != "1" {
		t.Skip("set TALLY_TEST_AWS=1 to run against real AWS")
	}
	cfg, err := awsenv.Load(t.Context(), awsenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	prefix := "tallytest-" + unique(t) + "-"
	client := awssqs.NewFromConfig(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p := awssqs.NewListQueuesPaginator(client, &awssqs.ListQueuesInput{QueueNamePrefix: aws.String(prefix)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Errorf("list test queues: %v", err)
				return
			}
			for _, u := range page.QueueUrls {
				if _, err := client.DeleteQueue(ctx, &awssqs.DeleteQueueInput{QueueUrl: aws.String(u)}); err != nil {
					t.Errorf("delete %s: %v", u, err)
				}
			}
		}
	})
	queuetest.Run(t, func(t *testing.T) queue.Broker {
		return sqs.New(cfg, sqs.Options{Prefix: prefix})
	}, queuetest.Capabilities{})
}

// attrs reads all attributes of the SQS queue at url.
func attrs(t *testing.T, c *awssqs.Client, url string) map[string]string {
	t.Helper()
	out, err := c.GetQueueAttributes(t.Context(), &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes(%s): %v", url, err)
	}
	return out.Attributes
}

func queueURL(t *testing.T, c *awssqs.Client, sqsName string) (string, error) {
	t.Helper()
	out, err := c.GetQueueUrl(t.Context(), &awssqs.GetQueueUrlInput{QueueName: aws.String(sqsName)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.QueueUrl), nil
}

func mustCreate(t *testing.T, b queue.Broker, name string, cfg queue.Config) queue.Queue {
	t.Helper()
	q, err := b.CreateQueue(t.Context(), name, cfg)
	if err != nil {
		t.Fatalf("CreateQueue(%s): %v", name, err)
	}
	return q
}

func TestPrefix(t *testing.T) {
	srv := awstest.Shared(t)
	cfg := srv.Config(t)
	prefix := "pfx" + unique(t) + "-"
	b := sqs.New(cfg, sqs.Options{Prefix: prefix})
	defer b.Close()
	c := b.Client()

	q := mustCreate(t, b, "ocr-jobs", queue.Config{})
	if q.Name() != "ocr-jobs" {
		t.Errorf("Name() = %q, want the logical name", q.Name())
	}
	u, err := queueURL(t, c, prefix+"ocr-jobs")
	if err != nil {
		t.Fatalf("SQS queue %s: %v", prefix+"ocr-jobs", err)
	}
	if got := q.(*sqs.Queue).URL(); got != u {
		t.Errorf("URL() = %q, want %q", got, u)
	}
	if _, err := queueURL(t, c, "ocr-jobs"); err == nil {
		t.Error("the unprefixed SQS queue exists")
	}
	// A message sent through the port is in the prefixed SQS queue.
	id, err := queue.Send(t.Context(), q, "hello", nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.ReceiveMessage(t.Context(), &awssqs.ReceiveMessageInput{QueueUrl: aws.String(u), WaitTimeSeconds: 1})
	if err != nil || len(out.Messages) != 1 || aws.ToString(out.Messages[0].MessageId) != id {
		t.Fatalf("SDK receive from %s = %+v, %v; want message %s", u, out, err, id)
	}

	// Another deployment (prefix) does not see it.
	other := sqs.New(cfg, sqs.Options{Prefix: "other" + unique(t) + "-"})
	if _, err := other.OpenQueue(t.Context(), "ocr-jobs"); !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("OpenQueue under another prefix: %v, want tally.ErrNotFound", err)
	}
	if q2, err := b.OpenQueue(t.Context(), "ocr-jobs"); err != nil || q2.(*sqs.Queue).URL() != u {
		t.Errorf("OpenQueue under the same prefix = %v, %v", q2, err)
	}

	// Names too long for SQS once prefixed are shortened, deterministically
	// and distinctly.
	long1 := "long-" + strings.Repeat("a", 70) + "-one"
	long2 := "long-" + strings.Repeat("a", 70) + "-two"
	n1, n2 := b.QueueName(long1), b.QueueName(long2)
	if len(n1) != queue.MaxNameLen || len(n2) != queue.MaxNameLen || n1 == n2 || !strings.HasPrefix(n1, prefix+"long-a") {
		t.Errorf("QueueName of long names = %q, %q", n1, n2)
	}
	if n := b.QueueName(long1); n != n1 {
		t.Errorf("QueueName is not deterministic: %q then %q", n1, n)
	}
	ql := mustCreate(t, b, long1, queue.Config{})
	if ql.Name() != long1 {
		t.Errorf("Name() = %q", ql.Name())
	}
	if _, err := queueURL(t, c, n1); err != nil {
		t.Errorf("shortened SQS queue %s: %v", n1, err)
	}
	if _, err := b.OpenQueue(t.Context(), long2); !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("OpenQueue of the other long name: %v, want tally.ErrNotFound", err)
	}
}

func TestBadOptions(t *testing.T) {
	cfg := awstest.Shared(t).Config(t)
	for _, opts := range []sqs.Options{
		{Prefix: "has space"},
		{Prefix: "dot."},
		{Prefix: strings.Repeat("p", sqs.MaxPrefixLen+1)},
		{QueueURLs: map[string]string{"bad name": "http://localhost/1/q"}},
		{QueueURLs: map[string]string{"q": "not a url"}},
	} {
		b := sqs.New(cfg, opts)
		if _, err := b.OpenQueue(t.Context(), "q"); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("OpenQueue with %+v: %v, want tally.ErrInvalidArgument", opts, err)
		}
		if _, err := b.CreateQueue(t.Context(), "q", queue.Config{}); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("CreateQueue with %+v: %v, want tally.ErrInvalidArgument", opts, err)
		}
	}
}

func TestQueueURLs(t *testing.T) {
	srv := awstest.Shared(t)
	cfg := srv.Config(t)
	c := awssqs.NewFromConfig(cfg)
	// Queues made by "the infrastructure", under names the broker would
	// never derive.
	mk := func(name string) string {
		out, err := c.CreateQueue(t.Context(), &awssqs.CreateQueueInput{QueueName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.QueueUrl)
	}
	tag := unique(t)
	jobsURL := mk("infra-" + tag + "-OcrJobQueue")
	dlqURL := mk("infra-" + tag + "-OcrJobDLQ")
	missingURL := strings.Replace(jobsURL, "OcrJobQueue", "Deleted", 1)

	b := sqs.New(cfg, sqs.Options{
		Prefix:    "ignored" + tag + "-",
		QueueURLs: map[string]string{"ocr-jobs": jobsURL, "ocr-jobs-dlq": dlqURL, "gone": missingURL},
	})
	defer b.Close()

	q, err := b.OpenQueue(t.Context(), "ocr-jobs")
	if err != nil {
		t.Fatal(err)
	}
	if q.Name() != "ocr-jobs" || q.(*sqs.Queue).URL() != jobsURL {
		t.Errorf("queue = %q at %q", q.Name(), q.(*sqs.Queue).URL())
	}
	id, err := queue.Send(t.Context(), q, `{"job_id":"j","image_id":"i"}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.ReceiveMessage(t.Context(), &awssqs.ReceiveMessageInput{QueueUrl: aws.String(jobsURL), WaitTimeSeconds: 1, VisibilityTimeout: 1})
	if err != nil || len(out.Messages) != 1 || aws.ToString(out.Messages[0].MessageId) != id {
		t.Fatalf("SDK receive from the infrastructure queue = %+v, %v; want %s", out, err, id)
	}

	// CreateQueue of a mapped name leaves the queue's attributes alone.
	q2, err := b.CreateQueue(t.Context(), "ocr-jobs", queue.Config{VisibilityTimeout: 5 * time.Minute, DeadLetter: "ocr-jobs-dlq", MaxReceiveCount: 3})
	if err != nil {
		t.Fatal(err)
	}
	if q2.(*sqs.Queue).URL() != jobsURL {
		t.Errorf("CreateQueue URL = %q, want %q", q2.(*sqs.Queue).URL(), jobsURL)
	}
	a := attrs(t, c, jobsURL)
	if a["VisibilityTimeout"] != "30" || a["RedrivePolicy"] != "" {
		t.Errorf("infrastructure queue attributes changed: %v", a)
	}
	if _, err := queueURL(t, c, "ignored"+tag+"-ocr-jobs"); err == nil {
		t.Error("CreateQueue of a mapped name created a prefixed queue too")
	}
	// CreateQueue still validates its arguments.
	if _, err := b.CreateQueue(t.Context(), "ocr-jobs", queue.Config{VisibilityTimeout: -time.Second}); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("CreateQueue with a bad config: %v", err)
	}

	// A mapped dead-letter queue is found through its URL.
	src := mustCreate(t, b, "src", queue.Config{DeadLetter: "ocr-jobs-dlq", MaxReceiveCount: 2})
	var rp struct{ DeadLetterTargetArn string }
	if err := json.Unmarshal([]byte(attrs(t, c, src.(*sqs.Queue).URL())["RedrivePolicy"]), &rp); err != nil {
		t.Fatal(err)
	}
	if want := attrs(t, c, dlqURL)["QueueArn"]; rp.DeadLetterTargetArn != want {
		t.Errorf("deadLetterTargetArn = %q, want %q", rp.DeadLetterTargetArn, want)
	}

	// A URL naming no queue opens, and fails on use with ErrNotFound.
	gone, err := b.OpenQueue(t.Context(), "gone")
	if err != nil {
		t.Fatalf("OpenQueue of a mapped name made no SQS call, yet: %v", err)
	}
	if _, err := queue.Send(t.Context(), gone, "x", nil); !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("send to a missing mapped queue: %v, want tally.ErrNotFound", err)
	}
	if _, err := gone.Stats(t.Context()); !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("Stats of a missing mapped queue: %v, want tally.ErrNotFound", err)
	}
}

func TestCreateQueueConverges(t *testing.T) {
	srv := awstest.Shared(t)
	b := sqs.New(srv.Config(t), sqs.Options{Prefix: "cv" + unique(t) + "-"})
	defer b.Close()
	c := b.Client()
	dlq := mustCreate(t, b, "dlq", queue.Config{})
	dlqArn := attrs(t, c, dlq.(*sqs.Queue).URL())["QueueArn"]

	// One queue taken through a sequence of configs; after each CreateQueue
	// its SQS attributes must match the latest.
	steps := []struct {
		name string
		cfg  queue.Config
		want map[string]string
		dlq  int // maxReceiveCount in the redrive policy, 0 for none
	}{
		{"defaults", queue.Config{}, map[string]string{"VisibilityTimeout": "30", "MessageRetentionPeriod": "345600", "DelaySeconds": "0", "ReceiveMessageWaitTimeSeconds": "0"}, 0},
		{"same again", queue.Config{}, map[string]string{"VisibilityTimeout": "30"}, 0},
		{"changed", queue.Config{VisibilityTimeout: 90 * time.Second, Retention: 2 * time.Hour, Delay: 5 * time.Second}, map[string]string{"VisibilityTimeout": "90", "MessageRetentionPeriod": "7200", "DelaySeconds": "5"}, 0},
		{"rounded up", queue.Config{VisibilityTimeout: 1500 * time.Millisecond, Retention: 2 * time.Hour}, map[string]string{"VisibilityTimeout": "2", "DelaySeconds": "0"}, 0},
		{"dead letter added", queue.Config{DeadLetter: "dlq", MaxReceiveCount: 4}, map[string]string{"VisibilityTimeout": "30", "MessageRetentionPeriod": "345600"}, 4},
		{"max receives changed", queue.Config{DeadLetter: "dlq", MaxReceiveCount: 7}, nil, 7},
		{"dead letter removed", queue.Config{}, nil, 0},
	}
	for _, st := range steps {
		q, err := b.CreateQueue(t.Context(), "work", st.cfg)
		if err != nil {
			t.Fatalf("%s: CreateQueue: %v", st.name, err)
		}
		a := attrs(t, c, q.(*sqs.Queue).URL())
		for k, v := range st.want {
			if a[k] != v {
				t.Errorf("%s: %s = %q, want %q", st.name, k, a[k], v)
			}
		}
		if st.dlq == 0 {
			if a["RedrivePolicy"] != "" {
				t.Errorf("%s: RedrivePolicy = %q, want none", st.name, a["RedrivePolicy"])
			}
			continue
		}
		var rp struct {
			DeadLetterTargetArn string
			MaxReceiveCount     json.Number
		}
		if err := json.Unmarshal([]byte(a["RedrivePolicy"]), &rp); err != nil {
			t.Fatalf("%s: RedrivePolicy %q: %v", st.name, a["RedrivePolicy"], err)
		}
		if rp.DeadLetterTargetArn != dlqArn || rp.MaxReceiveCount.String() != fmt.Sprint(st.dlq) {
			t.Errorf("%s: RedrivePolicy = %+v, want %s after %d receives", st.name, rp, dlqArn, st.dlq)
		}
	}
}

func TestCreateQueueErrors(t *testing.T) {
	srv := awstest.Shared(t)
	b := sqs.New(srv.Config(t), sqs.Options{Prefix: "ce" + unique(t) + "-"})
	defer b.Close()
	tests := []struct {
		name  string
		queue string
		cfg   queue.Config
		want  error
	}{
		{"missing dead letter", "a", queue.Config{DeadLetter: "absent", MaxReceiveCount: 1}, tally.ErrNotFound},
		{"own dead letter", "b", queue.Config{DeadLetter: "b", MaxReceiveCount: 1}, tally.ErrInvalidArgument},
		{"retention under a minute", "c", queue.Config{Retention: 59 * time.Second}, tally.ErrInvalidArgument},
		{"bad name", "a.b", queue.Config{}, tally.ErrInvalidArgument},
	}
	for _, tc := range tests {
		if _, err := b.CreateQueue(t.Context(), tc.queue, tc.cfg); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := b.OpenQueue(t.Context(), "never-created"); !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("OpenQueue of a missing queue: %v, want tally.ErrNotFound", err)
	}
	// The minimum retention itself is accepted.
	mustCreate(t, b, "minute", queue.Config{Retention: queue.MinRetention})
}

func TestLongPollCancel(t *testing.T) {
	srv := awstest.Shared(t)
	b := sqs.New(srv.Config(t), sqs.Options{Prefix: "lp" + unique(t) + "-"})
	defer b.Close()
	q := mustCreate(t, b, "poll", queue.Config{})

	type result struct {
		msgs []queue.Message
		err  error
	}
	poll := func(ctx context.Context) <-chan result {
		ch := make(chan result, 1)
		go func() {
			msgs, err := q.Receive(ctx, queue.ReceiveOptions{Wait: queue.MaxWait})
			ch <- result{msgs, err}
		}()
		return ch
	}
	// Bound the wait far below MaxWait, so a receive that ignored its
	// context would fail here rather than return after 20 s.
	await := func(ch <-chan result) result {
		select {
		case r := <-ch:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("long poll did not return after it was stopped")
			return result{}
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	ch := poll(ctx)
	time.Sleep(300 * time.Millisecond)
	cancel()
	if r := await(ch); !errors.Is(r.err, context.Canceled) {
		t.Errorf("cancelled long poll = %v, %v; want context.Canceled", r.msgs, r.err)
	}

	dctx, dcancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer dcancel()
	if r := await(poll(dctx)); !errors.Is(r.err, context.DeadlineExceeded) {
		t.Errorf("long poll past its deadline = %v, %v; want context.DeadlineExceeded", r.msgs, r.err)
	}

	// Close ends a waiting receive too, and later calls fail.
	ch = poll(t.Context())
	time.Sleep(300 * time.Millisecond)
	b.Close()
	if r := await(ch); r.err == nil {
		t.Errorf("long poll after Close returned %v, want an error", r.msgs)
	}
	if _, err := queue.Send(t.Context(), q, "x", nil); err == nil {
		t.Error("send after Close succeeded")
	}
}

// faults is an HTTP transport that answers the first armed requests itself
// (errors, or a canned response) and passes the rest to moto.
type faults struct {
	base http.RoundTripper

	mu       sync.Mutex
	plan     []func(*http.Request) *http.Response
	requests int
}

func (f *faults) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.requests++
	var fn func(*http.Request) *http.Response
	if len(f.plan) > 0 {
		fn, f.plan = f.plan[0], f.plan[1:]
	}
	f.mu.Unlock()
	if fn != nil {
		if r.Body != nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		return fn(r), nil
	}
	return f.base.RoundTrip(r)
}

// arm makes the next requests get these answers, and resets the count.
func (f *faults) arm(plan ...func(*http.Request) *http.Response) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plan, f.requests = plan, 0
}

func (f *faults) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// jsonResponse is a response as the SQS JSON protocol sends it.
func jsonResponse(status int, body string, header map[string]string) func(*http.Request) *http.Response {
	return func(r *http.Request) *http.Response {
		h := http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amzn-Requestid": {"fault-injected"}}
		for k, v := range header {
			h.Set(k, v)
		}
		return &http.Response{
			StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
			Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
			Request: r, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		}
	}
}

func faultyBroker(t *testing.T) (*sqs.Broker, *faults) {
	t.Helper()
	srv := awstest.Shared(t)
	// The SDK refuses a custom HTTP client when AWS_CA_BUNDLE is set (it
	// can only add the bundle to its own client); moto is plain HTTP.
	t.Setenv("AWS_CA_BUNDLE", "")
	f := &faults{base: http.DefaultTransport.(*http.Transport).Clone()}
	opts := srv.Options()
	opts.HTTPClient = &http.Client{Transport: f}
	cfg, err := awsenv.Load(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	b := sqs.New(cfg, sqs.Options{Prefix: "ft" + unique(t) + "-"})
	t.Cleanup(func() { b.Close() })
	return b, f
}

func TestRetries(t *testing.T) {
	b, f := faultyBroker(t)
	q := mustCreate(t, b, "retry", queue.Config{})
	internal := jsonResponse(500, `{"__type":"com.amazonaws.sqs#InternalError","message":"We encountered an internal error."}`, nil)
	throttling := jsonResponse(400, `{"__type":"ThrottlingException","message":"Rate exceeded"}`, nil)
	throttled := jsonResponse(400, `{"__type":"com.amazonaws.sqs#RequestThrottled","message":"Request is throttled."}`,
		map[string]string{"X-Amzn-Query-Error": "RequestThrottled;Sender"})
	unavailable := jsonResponse(503, ``, nil)
	tests := []struct {
		name string
		plan []func(*http.Request) *http.Response
	}{
		{"500", []func(*http.Request) *http.Response{internal}},
		{"ThrottlingException", []func(*http.Request) *http.Response{throttling, throttling}},
		{"RequestThrottled", []func(*http.Request) *http.Response{throttled}},
		{"mixed", []func(*http.Request) *http.Response{unavailable, throttled, internal}},
	}
	for _, tc := range tests {
		f.arm(tc.plan...)
		id, err := queue.Send(t.Context(), q, "retry "+tc.name, nil)
		if err != nil {
			t.Errorf("%s: send: %v", tc.name, err)
			continue
		}
		if got, want := f.count(), len(tc.plan)+1; got != want {
			t.Errorf("%s: %d HTTP attempts, want %d", tc.name, got, want)
		}
		msgs, err := q.Receive(t.Context(), queue.ReceiveOptions{Wait: time.Second})
		if err != nil || len(msgs) != 1 || msgs[0].ID != id {
			t.Fatalf("%s: receive = %+v, %v; want %s once", tc.name, msgs, err, id)
		}
		if err := queue.Delete(t.Context(), q, msgs[0].ReceiptHandle); err != nil {
			t.Fatal(err)
		}
	}

	// A client error is not retried, and its code maps to a sentinel.
	f.arm(jsonResponse(400, `{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}`,
		map[string]string{"X-Amzn-Query-Error": "AWS.SimpleQueueService.NonExistentQueue;Sender"}))
	_, err := q.Stats(t.Context())
	if !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("QueueDoesNotExist: %v, want tally.ErrNotFound", err)
	}
	if n := f.count(); n != 1 {
		t.Errorf("QueueDoesNotExist took %d attempts, want 1", n)
	}
	if err != nil && !strings.Contains(err.Error(), "GetQueueAttributes") {
		t.Errorf("error %q does not name the API call", err)
	}
}

// TestBatchEntryFailures feeds SendMessageBatch, DeleteMessageBatch and
// ChangeMessageVisibilityBatch responses with per-entry failures, as SQS
// sends them, and checks how they are reported.
func TestBatchEntryFailures(t *testing.T) {
	b, f := faultyBroker(t)
	q := mustCreate(t, b, "entries", queue.Config{})
	md5hex := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }

	f.arm(jsonResponse(200, fmt.Sprintf(`{
		"Successful":[{"Id":"ok","MessageId":"11111111-2222-3333-4444-555555555555","MD5OfMessageBody":%q}],
		"Failed":[
			{"Id":"sender","Code":"InvalidParameterValue","SenderFault":true,"Message":"bad"},
			{"Id":"server","Code":"InternalError","SenderFault":false,"Message":"try again"}]}`, md5hex("a")), nil))
	res, err := q.SendBatch(t.Context(), []queue.SendEntry{
		{ID: "ok", Body: "a"},
		{ID: "local", Body: ""},
		{ID: "sender", Body: "b"},
		{ID: "server", Body: "c"},
		{ID: "silent", Body: "d"},
	})
	if err != nil || len(res) != 5 {
		t.Fatalf("SendBatch = %+v, %v", res, err)
	}
	if res[0].Err != nil || res[0].MessageID != "11111111-2222-3333-4444-555555555555" {
		t.Errorf("successful entry = %+v", res[0])
	}
	for _, i := range []int{1, 2} {
		if !errors.Is(res[i].Err, tally.ErrInvalidArgument) {
			t.Errorf("entry %s: %v, want tally.ErrInvalidArgument", res[i].ID, res[i].Err)
		}
	}
	for _, i := range []int{3, 4} {
		if res[i].Err == nil || errors.Is(res[i].Err, tally.ErrInvalidArgument) {
			t.Errorf("entry %s: %v, want a non-argument error", res[i].ID, res[i].Err)
		}
	}

	// Entry ids are positions in the caller's slice; an empty handle never
	// reaches SQS.
	f.arm(jsonResponse(200, `{"Successful":[{"Id":"0"}],"Failed":[{"Id":"2","Code":"ReceiptHandleIsInvalid","SenderFault":true,"Message":"no"}]}`, nil))
	errs, err := q.DeleteBatch(t.Context(), []string{"h0", "", "h2", "h3"})
	if err != nil || len(errs) != 4 {
		t.Fatalf("DeleteBatch = %v, %v", errs, err)
	}
	if errs[0] != nil || !errors.Is(errs[1], tally.ErrInvalidArgument) || !errors.Is(errs[2], tally.ErrInvalidArgument) || errs[3] == nil {
		t.Errorf("DeleteBatch errors = %v", errs)
	}

	f.arm(jsonResponse(200, `{"Successful":[{"Id":"1"}],"Failed":[{"Id":"2","Code":"AWS.SimpleQueueService.MessageNotInflight","SenderFault":true,"Message":"no"}]}`, nil))
	errs, err = q.ChangeVisibilityBatch(t.Context(), []queue.VisibilityChange{{ReceiptHandle: "h0", Timeout: -1}, {ReceiptHandle: "h1"}, {ReceiptHandle: "h2"}})
	if err != nil || len(errs) != 3 {
		t.Fatalf("ChangeVisibilityBatch = %v, %v", errs, err)
	}
	if !errors.Is(errs[0], tally.ErrInvalidArgument) || errs[1] != nil || !errors.Is(errs[2], tally.ErrInvalidArgument) {
		t.Errorf("ChangeVisibilityBatch errors = %v", errs)
	}

	// A purge refused because another is running.
	f.arm(jsonResponse(400, `{"__type":"com.amazonaws.sqs#PurgeQueueInProgress","message":"Only one PurgeQueue operation is allowed every 60 seconds."}`,
		map[string]string{"X-Amzn-Query-Error": "AWS.SimpleQueueService.PurgeQueueInProgress;Sender"}))
	if err := q.Purge(t.Context()); !errors.Is(err, sqs.ErrPurgeInProgress) {
		t.Errorf("Purge = %v, want sqs.ErrPurgeInProgress", err)
	}
}

// BenchmarkSendReceiveDelete measures one message's round trip through
// moto in batches of 10: send, receive, delete.
func BenchmarkSendReceiveDelete(b *testing.B) {
	srv := awstest.Shared(b)
	br := sqs.New(srv.Config(b), sqs.Options{Prefix: "bench" + unique(b) + "-"})
	defer br.Close()
	q, err := br.CreateQueue(b.Context(), "bench", queue.Config{})
	if err != nil {
		b.Fatal(err)
	}
	entries := make([]queue.SendEntry, queue.MaxBatch)
	for i := range entries {
		entries[i] = queue.SendEntry{ID: fmt.Sprint("e", i), Body: `{"job_id":"0b9f6c1e","image_id":"5b1c2d3e"}`}
	}
	b.ResetTimer()
	for b.Loop() {
		res, err := q.SendBatch(b.Context(), entries)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		for got := 0; got < len(entries); {
			msgs, err := q.Receive(b.Context(), queue.ReceiveOptions{Max: queue.MaxBatch, Wait: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			if len(msgs) == 0 {
				continue
			}
			handles := make([]string, len(msgs))
			for i, m := range msgs {
				handles[i] = m.ReceiptHandle
			}
			if _, err := q.DeleteBatch(b.Context(), handles); err != nil {
				b.Fatal(err)
			}
			got += len(msgs)
		}
	}
	b.ReportMetric(float64(b.N*len(entries))/b.Elapsed().Seconds(), "msgs/s")
}
