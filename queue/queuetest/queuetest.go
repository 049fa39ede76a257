// Package queuetest is the conformance suite of the queue port. Every
// adapter runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		queuetest.Run(t, func(t *testing.T) queue.Broker { … }, queuetest.Capabilities{…})
//	}
//
// The suite asserts only behaviour that Amazon SQS itself has, so that the
// SQS adapter passes it unchanged against moto_server; where SQS documents
// weaker guarantees than an embedded backend can give, the stronger check is
// behind a Capabilities flag. Every subtest uses its own randomly suffixed
// queue names (the suite can share one emulator), runs in parallel, and uses
// whole-second timeouts with generous slack: timing is asserted only as lower
// bounds, never as tight upper bounds.
package queuetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/queue"
)

// Capabilities declares what a backend guarantees beyond what SQS
// guarantees, in the manner of Watermill's pubsub test features. The zero
// value is what Amazon SQS (and moto_server) promise.
type Capabilities struct {
	// RejectsStaleHandles: DeleteBatch and ChangeVisibilityBatch fail, with
	// tally.ErrInvalidArgument and without touching the message, when given
	// a receipt handle from an earlier receive of a message that was
	// received again since. SQS documents that such a delete "will still
	// succeed, but the message might not be deleted", and moto accepts every
	// handle a message ever had, so the SQS adapter leaves this false.
	RejectsStaleHandles bool

	// MinRetention is the shortest Config.Retention the backend accepts.
	// Retention expiry is tested only when it is at most two seconds; SQS's
	// minimum is one minute (queue.MinRetention), too slow for the suite.
	MinRetention time.Duration

	// NoDuplicateDeliveries: a message is never delivered twice inside one
	// visibility window, even to concurrent receivers. SQS standard queues
	// promise at-least-once delivery only ("on rare occasions" a message
	// comes twice), and moto_server's receive is not atomic across its
	// threads, so the SQS adapter leaves this false and consumers stay
	// idempotent.
	NoDuplicateDeliveries bool

	// ReportsOldestAge: Stats.OldestAge is measured. SQS publishes the age
	// of the oldest message only as a CloudWatch metric, not as a queue
	// attribute, so an SQS adapter may report 0.
	ReportsOldestAge bool
}

// Run runs the conformance suite. newBroker is called once per subtest
// (subtests run in parallel); the suite closes each broker when its subtest
// ends.
func Run(t *testing.T, newBroker func(t *testing.T) queue.Broker, caps Capabilities) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"RoundTrip", testRoundTrip},
		{"SendBatchEntryErrors", testSendBatchEntryErrors},
		{"SendBatchRequestErrors", testSendBatchRequestErrors},
		{"MaxSizeMessage", testMaxSizeMessage},
		{"UnicodeBody", testUnicodeBody},
		{"ForbiddenBody", testForbiddenBody},
		{"DelayPerMessage", testDelayPerMessage},
		{"DelayQueueDefault", testDelayQueueDefault},
		{"ReceiveMax", testReceiveMax},
		{"BadReceiveOptions", testBadReceiveOptions},
		{"VisibilityTimeout", testVisibilityTimeout},
		{"ChangeVisibility", testChangeVisibility},
		{"BadHandles", testBadHandles},
		{"StaleHandle", testStaleHandle},
		{"LongPollArrival", testLongPollArrival},
		{"LongPollEmpty", testLongPollEmpty},
		{"LongPollCancel", testLongPollCancel},
		{"Redrive", testRedrive},
		{"Retention", testRetention},
		{"Purge", testPurge},
		{"Stats", testStats},
		{"Inspector", testInspector},
		{"ConcurrentReceivers", testConcurrentReceivers},
		{"CreateQueue", testCreateQueue},
		{"InvalidQueueNames", testInvalidQueueNames},
		{"InvalidConfig", testInvalidConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBroker(t)
			t.Cleanup(func() { b.Close() })
			tc.fn(t, &env{b: b, caps: caps})
		})
	}
}

// env is what one subtest works with.
type env struct {
	b    queue.Broker
	caps Capabilities
}

// waitBudget bounds every "eventually" in the suite. It is far above what
// any healthy backend needs, so it only decides how long a broken one takes
// to fail.
const waitBudget = 10 * time.Second

// uniqueName returns a queue name no other test (or earlier run against a
// shared emulator) uses.
func uniqueName(t *testing.T, tag string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "qt-" + tag + "-" + hex.EncodeToString(b[:])
}

func (e *env) create(t *testing.T, tag string, cfg queue.Config) queue.Queue {
	t.Helper()
	name := uniqueName(t, tag)
	q, err := e.b.CreateQueue(t.Context(), name, cfg)
	if err != nil {
		t.Fatalf("CreateQueue(%s): %v", name, err)
	}
	if q.Name() != name {
		t.Fatalf("Name() = %q, want %q", q.Name(), name)
	}
	return q
}

func send(t *testing.T, q queue.Queue, body string, attrs map[string]string) string {
	t.Helper()
	id, err := queue.Send(t.Context(), q, body, attrs)
	if err != nil {
		t.Fatalf("send to %s: %v", q.Name(), err)
	}
	if id == "" {
		t.Fatalf("send to %s: empty message id", q.Name())
	}
	return id
}

func sendBatch(t *testing.T, q queue.Queue, entries []queue.SendEntry) []queue.SendResult {
	t.Helper()
	res, err := q.SendBatch(t.Context(), entries)
	if err != nil {
		t.Fatalf("SendBatch to %s: %v", q.Name(), err)
	}
	if len(res) != len(entries) {
		t.Fatalf("SendBatch returned %d results for %d entries", len(res), len(entries))
	}
	return res
}

// sendN sends n messages "m0".."m{n-1}" in batches and returns their ids.
func sendN(t *testing.T, q queue.Queue, n int) []string {
	t.Helper()
	var ids []string
	for start := 0; start < n; start += queue.MaxBatch {
		var entries []queue.SendEntry
		for i := start; i < n && i < start+queue.MaxBatch; i++ {
			entries = append(entries, queue.SendEntry{ID: fmt.Sprintf("e%d", i), Body: fmt.Sprintf("m%d", i)})
		}
		for _, r := range sendBatch(t, q, entries) {
			if r.Err != nil {
				t.Fatalf("send entry %s: %v", r.ID, r.Err)
			}
			ids = append(ids, r.MessageID)
		}
	}
	return ids
}

func receive(t *testing.T, q queue.Queue, opts queue.ReceiveOptions) []queue.Message {
	t.Helper()
	msgs, err := q.Receive(t.Context(), opts)
	if err != nil {
		t.Fatalf("receive from %s: %v", q.Name(), err)
	}
	if limit := max(opts.Max, 1); len(msgs) > limit {
		t.Fatalf("receive from %s returned %d messages, asked for at most %d", q.Name(), len(msgs), limit)
	}
	return msgs
}

// receiveN receives until it has n messages, long polling a second at a
// time (SQS may return fewer messages than are available on any one call).
// It fails the test if they do not all arrive within waitBudget.
func receiveN(t *testing.T, q queue.Queue, n int, opts queue.ReceiveOptions) []queue.Message {
	t.Helper()
	if opts.Max == 0 {
		opts.Max = min(n, queue.MaxBatch)
	}
	opts.Wait = time.Second
	var got []queue.Message
	deadline := time.Now().Add(waitBudget)
	for len(got) < n && time.Now().Before(deadline) {
		got = append(got, receive(t, q, opts)...)
	}
	if len(got) != n {
		t.Fatalf("received %d messages from %s, want %d", len(got), q.Name(), n)
	}
	return got
}

// expectEmpty checks that an immediate receive finds nothing.
func expectEmpty(t *testing.T, q queue.Queue, why string) {
	t.Helper()
	if msgs := receive(t, q, queue.ReceiveOptions{Max: queue.MaxBatch}); len(msgs) != 0 {
		t.Fatalf("%s: received %d messages (first %q), want none", why, len(msgs), msgs[0].Body)
	}
}

// eventuallyStats polls Stats until want(stats) holds: SQS's counts are
// approximate and may lag.
func eventuallyStats(t *testing.T, q queue.Queue, what string, want func(queue.Stats) bool) queue.Stats {
	t.Helper()
	deadline := time.Now().Add(waitBudget)
	for {
		st, err := q.Stats(t.Context())
		if err != nil {
			t.Fatalf("Stats(%s): %v", q.Name(), err)
		}
		if want(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("Stats(%s) = %+v, want %s", q.Name(), st, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func counts(visible, inFlight, delayed int) (string, func(queue.Stats) bool) {
	return fmt.Sprintf("visible %d, in flight %d, delayed %d", visible, inFlight, delayed),
		func(s queue.Stats) bool {
			return s.Visible == visible && s.InFlight == inFlight && s.Delayed == delayed
		}
}

func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("%s: error %v, want tally.ErrInvalidArgument", what, err)
	}
}

func del(t *testing.T, q queue.Queue, handle string) {
	t.Helper()
	if err := queue.Delete(t.Context(), q, handle); err != nil {
		t.Fatalf("delete from %s: %v", q.Name(), err)
	}
}

func ptr[T any](v T) *T { return &v }

func testRoundTrip(t *testing.T, e *env) {
	q := e.create(t, "rt", queue.Config{})
	attrs := map[string]string{"kind": "ocr-job", "image_id": "5b1c", "n.dotted-name_x": "1"}
	before := time.Now()
	id := send(t, q, `{"job_id":"j1","image_id":"5b1c"}`, attrs)
	idPlain := send(t, q, "no attributes", nil)
	after := time.Now()

	msgs := receiveN(t, q, 2, queue.ReceiveOptions{Max: 2, Visibility: 30 * time.Second})
	byID := map[string]queue.Message{}
	for _, m := range msgs {
		byID[m.ID] = m
	}
	m, ok := byID[id]
	if !ok {
		t.Fatalf("message %s not received; got %+v", id, msgs)
	}
	if m.Body != `{"job_id":"j1","image_id":"5b1c"}` {
		t.Errorf("Body = %q", m.Body)
	}
	if !maps.Equal(m.Attributes, attrs) {
		t.Errorf("Attributes = %v, want %v", m.Attributes, attrs)
	}
	if m.ReceiveCount != 1 {
		t.Errorf("ReceiveCount = %d, want 1", m.ReceiveCount)
	}
	if m.ReceiptHandle == "" {
		t.Error("empty ReceiptHandle")
	}
	// SentTimestamp has millisecond resolution on SQS; allow clock slack.
	if m.SentAt.Before(before.Add(-2*time.Second)) || m.SentAt.After(after.Add(2*time.Second)) {
		t.Errorf("SentAt = %v, want between %v and %v", m.SentAt, before, after)
	}
	if m.FirstReceivedAt.IsZero() || m.FirstReceivedAt.Before(m.SentAt.Add(-2*time.Second)) {
		t.Errorf("FirstReceivedAt = %v, SentAt %v", m.FirstReceivedAt, m.SentAt)
	}
	p, ok := byID[idPlain]
	if !ok {
		t.Fatalf("message %s not received", idPlain)
	}
	if p.Body != "no attributes" || len(p.Attributes) != 0 {
		t.Errorf("plain message = %q %v", p.Body, p.Attributes)
	}
	if p.ReceiptHandle == m.ReceiptHandle {
		t.Error("two messages share a receipt handle")
	}

	eventuallyStats(t, q, "2 in flight", func(s queue.Stats) bool { return s.InFlight == 2 && s.Visible == 0 })
	errs, err := q.DeleteBatch(t.Context(), []string{m.ReceiptHandle, p.ReceiptHandle})
	if err != nil {
		t.Fatalf("DeleteBatch: %v", err)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("DeleteBatch entry %d: %v", i, err)
		}
	}
	desc, ok2 := counts(0, 0, 0)
	eventuallyStats(t, q, desc, ok2)
	expectEmpty(t, q, "after delete")
}

func testSendBatchEntryErrors(t *testing.T, e *env) {
	q := e.create(t, "entry", queue.Config{})
	res := sendBatch(t, q, []queue.SendEntry{
		{ID: "good-1", Body: "one"},
		{ID: "nul", Body: "bad \x00 body"},
		{ID: "good_2", Body: "two", Attributes: map[string]string{"k": "v"}},
		{ID: "too-late", Body: "three", Delay: ptr(queue.MaxDelay + time.Second)},
		{ID: "empty", Body: ""},
		{ID: "bad-attr", Body: "four", Attributes: map[string]string{"AWS.reserved": "v"}},
	})
	wantIDs := []string{"good-1", "nul", "good_2", "too-late", "empty", "bad-attr"}
	sent := map[string]bool{}
	for i, r := range res {
		if r.ID != wantIDs[i] {
			t.Errorf("result %d has ID %q, want %q", i, r.ID, wantIDs[i])
		}
		good := strings.HasPrefix(r.ID, "good")
		switch {
		case good && r.Err != nil:
			t.Errorf("entry %s: %v", r.ID, r.Err)
		case good && r.MessageID == "":
			t.Errorf("entry %s: empty MessageID", r.ID)
		case good:
			sent[r.MessageID] = true
		default:
			wantInvalid(t, "entry "+r.ID, r.Err)
		}
	}
	if len(sent) != 2 {
		t.Fatalf("good entries got message ids %v, want 2 distinct", sent)
	}
	for _, m := range receiveN(t, q, 2, queue.ReceiveOptions{}) {
		if !sent[m.ID] {
			t.Errorf("received unexpected message %s %q", m.ID, m.Body)
		}
	}
	expectEmpty(t, q, "bad entries must not be sent")

	// Empty entry ids are filled with the entry's index.
	res = sendBatch(t, q, []queue.SendEntry{{Body: "a"}, {Body: "b"}})
	if res[0].ID != "0" || res[1].ID != "1" {
		t.Errorf("filled ids = %q, %q, want \"0\", \"1\"", res[0].ID, res[1].ID)
	}
}

func testSendBatchRequestErrors(t *testing.T, e *env) {
	q := e.create(t, "req", queue.Config{})
	many := func(n int) []queue.SendEntry {
		var es []queue.SendEntry
		for i := range n {
			es = append(es, queue.SendEntry{ID: fmt.Sprint("id", i), Body: "x"})
		}
		return es
	}
	big := strings.Repeat("b", 130*1024)
	tests := []struct {
		name    string
		entries []queue.SendEntry
	}{
		{"none", nil},
		{"eleven", many(queue.MaxBatch + 1)},
		{"duplicate ids", []queue.SendEntry{{ID: "a", Body: "1"}, {ID: "a", Body: "2"}}},
		{"bad id", []queue.SendEntry{{ID: "a b", Body: "1"}}},
		{"long id", []queue.SendEntry{{ID: strings.Repeat("i", 81), Body: "1"}}},
		{"oversized message", []queue.SendEntry{{ID: "a", Body: strings.Repeat("o", queue.MaxBodyBytes+1)}}},
		{"oversized with attributes", []queue.SendEntry{{ID: "a", Body: strings.Repeat("o", queue.MaxBodyBytes-8), Attributes: map[string]string{"key": "value"}}}},
		{"batch total", []queue.SendEntry{{ID: "a", Body: big}, {ID: "b", Body: big}}},
	}
	for _, tc := range tests {
		res, err := q.SendBatch(t.Context(), tc.entries)
		wantInvalid(t, tc.name, err)
		if err == nil {
			t.Errorf("%s: results %+v", tc.name, res)
		}
	}
	_, err := queue.Send(t.Context(), q, strings.Repeat("o", queue.MaxBodyBytes+1), nil)
	wantInvalid(t, "Send oversized", err)
	expectEmpty(t, q, "a rejected request must send nothing")
}

func testMaxSizeMessage(t *testing.T, e *env) {
	q := e.create(t, "maxsize", queue.Config{})
	body := strings.Repeat("z", queue.MaxBodyBytes)
	id := send(t, q, body, nil)
	m := receiveN(t, q, 1, queue.ReceiveOptions{})[0]
	if m.ID != id || m.Body != body {
		t.Fatalf("received %s (%d bytes), want %s (%d bytes)", m.ID, len(m.Body), id, len(body))
	}
}

func testUnicodeBody(t *testing.T, e *env) {
	q := e.create(t, "unicode", queue.Config{})
	body := "Grüße aus Köln 東京 🧾 — total 12,34 €\ttab\nnew line\r\nCRLF <xml attr=\"&amp;\"> \U0010FFFD"
	attrs := map[string]string{"merchant": "Café Ünïcödé 🍕"}
	id := send(t, q, body, attrs)
	m := receiveN(t, q, 1, queue.ReceiveOptions{})[0]
	if m.ID != id {
		t.Fatalf("received %s, want %s", m.ID, id)
	}
	if m.Body != body {
		t.Errorf("Body = %q, want %q", m.Body, body)
	}
	if !maps.Equal(m.Attributes, attrs) {
		t.Errorf("Attributes = %q, want %q", m.Attributes, attrs)
	}
}

func testForbiddenBody(t *testing.T, e *env) {
	q := e.create(t, "forbidden", queue.Config{})
	tests := []struct {
		name, body string
		attrs      map[string]string
	}{
		{"empty", "", nil},
		{"NUL", "a\x00b", nil},
		{"control", "a\x01b", nil},
		{"U+FFFE", "a\uFFFEb", nil},
		{"U+FFFF", "a\uFFFFb", nil},
		{"invalid UTF-8", "a\xffb", nil},
		{"control in attribute", "ok", map[string]string{"k": "\x02"}},
		{"empty attribute value", "ok", map[string]string{"k": ""}},
		{"attribute name with space", "ok", map[string]string{"a b": "v"}},
	}
	for _, tc := range tests {
		_, err := queue.Send(t.Context(), q, tc.body, tc.attrs)
		wantInvalid(t, tc.name, err)
	}
	expectEmpty(t, q, "rejected bodies must not be sent")
}

func testDelayPerMessage(t *testing.T, e *env) {
	q := e.create(t, "delay", queue.Config{})
	start := time.Now()
	res := sendBatch(t, q, []queue.SendEntry{{ID: "d", Body: "later", Delay: ptr(2 * time.Second)}})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	expectEmpty(t, q, "delayed message")
	eventuallyStats(t, q, "1 delayed", func(s queue.Stats) bool { return s.Delayed == 1 && s.Visible == 0 })
	m := receiveN(t, q, 1, queue.ReceiveOptions{})[0]
	if m.ID != res[0].MessageID {
		t.Fatalf("received %s, want %s", m.ID, res[0].MessageID)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("delayed message arrived after %v, want ≥ ~2s", waited)
	}
}

func testDelayQueueDefault(t *testing.T, e *env) {
	q := e.create(t, "delayq", queue.Config{Delay: 2 * time.Second})
	start := time.Now()
	id := send(t, q, "later", nil)
	expectEmpty(t, q, "message on a delay queue")
	eventuallyStats(t, q, "1 delayed", func(s queue.Stats) bool { return s.Delayed == 1 && s.Visible == 0 })
	m := receiveN(t, q, 1, queue.ReceiveOptions{})[0]
	if m.ID != id {
		t.Fatalf("received %s, want %s", m.ID, id)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("delayed message arrived after %v, want ≥ ~2s", waited)
	}
}

func testReceiveMax(t *testing.T, e *env) {
	q := e.create(t, "max", queue.Config{})
	ids := sendN(t, q, 15)
	// Max 0 means 1.
	first := receive(t, q, queue.ReceiveOptions{Wait: time.Second})
	if len(first) > 1 {
		t.Fatalf("Max 0 returned %d messages", len(first))
	}
	rest := receiveN(t, q, 15-len(first), queue.ReceiveOptions{Max: queue.MaxBatch})
	seen := map[string]bool{}
	for _, m := range append(first, rest...) {
		if seen[m.ID] {
			t.Errorf("message %s received twice", m.ID)
		}
		seen[m.ID] = true
	}
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("message %s never received", id)
		}
	}
}

func testBadReceiveOptions(t *testing.T, e *env) {
	q := e.create(t, "badrecv", queue.Config{})
	for _, opts := range []queue.ReceiveOptions{
		{Max: queue.MaxBatch + 1},
		{Max: -1},
		{Wait: queue.MaxWait + time.Second},
		{Wait: -time.Second},
		{Visibility: -time.Second},
		{Visibility: queue.MaxVisibility + time.Second},
	} {
		_, err := q.Receive(t.Context(), opts)
		wantInvalid(t, fmt.Sprintf("Receive(%+v)", opts), err)
	}
}

func testVisibilityTimeout(t *testing.T, e *env) {
	// The queue's default visibility timeout applies when the receive does
	// not override it.
	q := e.create(t, "vis", queue.Config{VisibilityTimeout: 2 * time.Second})
	id := send(t, q, "work", nil)
	m1 := receiveN(t, q, 1, queue.ReceiveOptions{})[0]
	received := time.Now()
	expectEmpty(t, q, "message inside its visibility timeout")
	m2 := receiveN(t, q, 1, queue.ReceiveOptions{})[0]
	if m1.ID != id || m2.ID != id {
		t.Fatalf("received %s then %s, want %s twice", m1.ID, m2.ID, id)
	}
	if m2.ReceiveCount != 2 {
		t.Errorf("ReceiveCount after timeout = %d, want 2", m2.ReceiveCount)
	}
	if m2.ReceiptHandle == m1.ReceiptHandle {
		t.Error("a second receive returned the same receipt handle")
	}
	if d := time.Since(received); d < time.Second {
		t.Errorf("message came back after %v, want ≥ ~2s", d)
	}
	del(t, q, m2.ReceiptHandle)
	desc, ok := counts(0, 0, 0)
	eventuallyStats(t, q, desc, ok)
}

func testChangeVisibility(t *testing.T, e *env) {
	q := e.create(t, "chvis", queue.Config{})
	id := send(t, q, "long work", nil)
	m := receiveN(t, q, 1, queue.ReceiveOptions{Visibility: time.Second})[0]
	// Heartbeat: extend before the one-second timeout runs out.
	if err := queue.ChangeVisibility(t.Context(), q, m.ReceiptHandle, 4*time.Second); err != nil {
		t.Fatalf("ChangeVisibility: %v", err)
	}
	if got := receive(t, q, queue.ReceiveOptions{Wait: 2 * time.Second}); len(got) != 0 {
		t.Fatalf("extended message was received again after %d receives", got[0].ReceiveCount)
	}
	// Zero releases it at once.
	errs, err := q.ChangeVisibilityBatch(t.Context(), []queue.VisibilityChange{{ReceiptHandle: m.ReceiptHandle, Timeout: 0}})
	if err != nil || len(errs) != 1 || errs[0] != nil {
		t.Fatalf("ChangeVisibilityBatch(0) = %v, %v", errs, err)
	}
	m2 := receiveN(t, q, 1, queue.ReceiveOptions{Visibility: 30 * time.Second})[0]
	if m2.ID != id || m2.ReceiveCount != 2 {
		t.Fatalf("after release received %s (count %d), want %s (count 2)", m2.ID, m2.ReceiveCount, id)
	}
	// Per-entry validation.
	errs, err = q.ChangeVisibilityBatch(t.Context(), []queue.VisibilityChange{
		{ReceiptHandle: m2.ReceiptHandle, Timeout: -time.Second},
		{ReceiptHandle: m2.ReceiptHandle, Timeout: queue.MaxVisibility + time.Second},
		{ReceiptHandle: m2.ReceiptHandle, Timeout: 30 * time.Second},
	})
	if err != nil || len(errs) != 3 {
		t.Fatalf("ChangeVisibilityBatch = %v, %v", errs, err)
	}
	wantInvalid(t, "negative timeout", errs[0])
	wantInvalid(t, "timeout over 12h", errs[1])
	if errs[2] != nil {
		t.Errorf("valid entry: %v", errs[2])
	}
	// Request-level validation.
	_, err = q.ChangeVisibilityBatch(t.Context(), nil)
	wantInvalid(t, "empty ChangeVisibilityBatch", err)
	eleven := make([]queue.VisibilityChange, queue.MaxBatch+1)
	for i := range eleven {
		eleven[i] = queue.VisibilityChange{ReceiptHandle: m2.ReceiptHandle}
	}
	_, err = q.ChangeVisibilityBatch(t.Context(), eleven)
	wantInvalid(t, "ChangeVisibilityBatch of 11", err)
	del(t, q, m2.ReceiptHandle)
}

func testBadHandles(t *testing.T, e *env) {
	q := e.create(t, "handles", queue.Config{})
	send(t, q, "one", nil)
	send(t, q, "two", nil)
	ms := receiveN(t, q, 2, queue.ReceiveOptions{Visibility: 30 * time.Second})

	errs, err := q.DeleteBatch(t.Context(), []string{ms[0].ReceiptHandle, "not-a-receipt-handle", ""})
	if err != nil || len(errs) != 3 {
		t.Fatalf("DeleteBatch = %v, %v", errs, err)
	}
	if errs[0] != nil {
		t.Errorf("valid handle: %v", errs[0])
	}
	wantInvalid(t, "garbage handle", errs[1])
	wantInvalid(t, "empty handle", errs[2])

	// Deleting an already deleted message again succeeds (as on SQS), so
	// an at-least-once consumer may retry its delete.
	if err := queue.Delete(t.Context(), q, ms[0].ReceiptHandle); err != nil {
		t.Errorf("second delete of the same handle: %v", err)
	}
	// Its visibility can no longer be changed.
	wantInvalid(t, "ChangeVisibility of a deleted message",
		queue.ChangeVisibility(t.Context(), q, ms[0].ReceiptHandle, time.Second))
	wantInvalid(t, "ChangeVisibility with a garbage handle",
		queue.ChangeVisibility(t.Context(), q, "not-a-receipt-handle", time.Second))

	_, err = q.DeleteBatch(t.Context(), nil)
	wantInvalid(t, "empty DeleteBatch", err)
	eleven := make([]string, queue.MaxBatch+1)
	for i := range eleven {
		eleven[i] = ms[1].ReceiptHandle
	}
	_, err = q.DeleteBatch(t.Context(), eleven)
	wantInvalid(t, "DeleteBatch of 11", err)

	del(t, q, ms[1].ReceiptHandle)
	desc, ok := counts(0, 0, 0)
	eventuallyStats(t, q, desc, ok)
}

func testStaleHandle(t *testing.T, e *env) {
	q := e.create(t, "stale", queue.Config{})
	id := send(t, q, "work", nil)
	m1 := receiveN(t, q, 1, queue.ReceiveOptions{Visibility: time.Second})[0]
	m2 := receiveN(t, q, 1, queue.ReceiveOptions{Visibility: 30 * time.Second})[0]
	if m1.ID != id || m2.ID != id || m2.ReceiveCount != 2 {
		t.Fatalf("received %s then %s (count %d), want %s twice", m1.ID, m2.ID, m2.ReceiveCount, id)
	}
	if !e.caps.RejectsStaleHandles {
		// SQS: "the request will still succeed, but the message might not
		// be deleted". Only the error kind is pinned down.
		if err := queue.Delete(t.Context(), q, m1.ReceiptHandle); err != nil {
			wantInvalid(t, "stale delete", err)
		}
		t.Log("stale receipt handles are not checked on this backend")
		return
	}
	wantInvalid(t, "ChangeVisibility with a stale handle",
		queue.ChangeVisibility(t.Context(), q, m1.ReceiptHandle, 0))
	wantInvalid(t, "Delete with a stale handle", queue.Delete(t.Context(), q, m1.ReceiptHandle))
	// The message is untouched: still in flight for the current holder.
	expectEmpty(t, q, "message held by the second receiver")
	eventuallyStats(t, q, "1 in flight", func(s queue.Stats) bool { return s.InFlight == 1 })
	del(t, q, m2.ReceiptHandle)
	desc, ok := counts(0, 0, 0)
	eventuallyStats(t, q, desc, ok)
}

func testLongPollArrival(t *testing.T, e *env) {
	q := e.create(t, "lparrive", queue.Config{})
	type result struct {
		msgs []queue.Message
		err  error
	}
	done := make(chan result, 1)
	go func() {
		msgs, err := q.Receive(t.Context(), queue.ReceiveOptions{Wait: queue.MaxWait})
		done <- result{msgs, err}
	}()
	// Give the receive a moment to start waiting. Correctness does not
	// depend on it: a message sent first is received all the same.
	time.Sleep(300 * time.Millisecond)
	id := send(t, q, "wake up", nil)
	r := <-done
	if r.err != nil {
		t.Fatalf("long-polling receive: %v", r.err)
	}
	if len(r.msgs) != 1 || r.msgs[0].ID != id {
		t.Fatalf("long-polling receive returned %+v, want message %s", r.msgs, id)
	}
}

func testLongPollEmpty(t *testing.T, e *env) {
	q := e.create(t, "lpempty", queue.Config{})
	start := time.Now()
	msgs, err := q.Receive(t.Context(), queue.ReceiveOptions{Max: queue.MaxBatch, Wait: time.Second})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if len(msgs) != 0 {
		t.Fatalf("received %d messages from an empty queue", len(msgs))
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("receive with Wait 1s returned after %v", d)
	}
}

func testLongPollCancel(t *testing.T, e *env) {
	q := e.create(t, "lpcancel", queue.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := q.Receive(ctx, queue.ReceiveOptions{Wait: queue.MaxWait})
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("canceled receive returned %v, want context.Canceled", err)
		}
	case <-time.After(waitBudget):
		t.Fatal("receive did not return after its context was canceled")
	}
}

func testRedrive(t *testing.T, e *env) {
	dlq := e.create(t, "dlq", queue.Config{})
	const maxReceives = 2
	q := e.create(t, "src", queue.Config{DeadLetter: dlq.Name(), MaxReceiveCount: maxReceives})
	attrs := map[string]string{"reason": "poison"}
	id := send(t, q, "poison pill", attrs)
	for i := 1; i <= maxReceives; i++ {
		m := receiveN(t, q, 1, queue.ReceiveOptions{Visibility: 30 * time.Second})[0]
		if m.ID != id || m.ReceiveCount != i {
			t.Fatalf("receive %d got %s (count %d), want %s (count %d)", i, m.ID, m.ReceiveCount, id, i)
		}
		// Fail fast: release it instead of waiting out the timeout.
		if err := queue.ChangeVisibility(t.Context(), q, m.ReceiptHandle, 0); err != nil {
			t.Fatalf("release after receive %d: %v", i, err)
		}
	}
	// The receive that would exceed maxReceiveCount moves it instead.
	if got := receive(t, q, queue.ReceiveOptions{Wait: time.Second}); len(got) != 0 {
		t.Fatalf("message received %d times from the source queue, want it in the dead-letter queue", got[0].ReceiveCount)
	}
	m := receiveN(t, dlq, 1, queue.ReceiveOptions{})[0]
	if m.ID != id || m.Body != "poison pill" || !maps.Equal(m.Attributes, attrs) {
		t.Fatalf("dead-letter message = %s %q %v, want %s %q %v", m.ID, m.Body, m.Attributes, id, "poison pill", attrs)
	}
	del(t, dlq, m.ReceiptHandle)
	desc, ok := counts(0, 0, 0)
	eventuallyStats(t, q, desc, ok)
}

func testRetention(t *testing.T, e *env) {
	if e.caps.MinRetention <= 0 || e.caps.MinRetention > 2*time.Second {
		t.Skipf("backend's minimum retention %v is too long to test here", e.caps.MinRetention)
	}
	retention := max(e.caps.MinRetention, time.Second)
	q := e.create(t, "retention", queue.Config{Retention: retention})
	send(t, q, "received, never deleted", nil)
	receiveN(t, q, 1, queue.ReceiveOptions{Visibility: time.Minute})
	send(t, q, "never received", nil)
	time.Sleep(retention + 500*time.Millisecond)
	expectEmpty(t, q, "after the retention period")
	desc, ok := counts(0, 0, 0)
	eventuallyStats(t, q, desc, ok)
}

func testPurge(t *testing.T, e *env) {
	q := e.create(t, "purge", queue.Config{})
	sendN(t, q, 3)
	receiveN(t, q, 1, queue.ReceiveOptions{Visibility: 30 * time.Second})
	if err := q.Purge(t.Context()); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	expectEmpty(t, q, "after purge")
	desc, ok := counts(0, 0, 0)
	eventuallyStats(t, q, desc, ok)
	// The queue still works.
	id := send(t, q, "after purge", nil)
	if m := receiveN(t, q, 1, queue.ReceiveOptions{})[0]; m.ID != id {
		t.Fatalf("received %s, want %s", m.ID, id)
	}
}

func testStats(t *testing.T, e *env) {
	q := e.create(t, "stats", queue.Config{VisibilityTimeout: 45 * time.Second})
	st, err := q.Stats(t.Context())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st != (queue.Stats{Visibility: 45 * time.Second}) {
		t.Errorf("empty queue Stats = %+v, want zero counts and the 45s visibility timeout", st)
	}
	sendN(t, q, 3)
	res := sendBatch(t, q, []queue.SendEntry{{ID: "d", Body: "delayed", Delay: ptr(time.Minute)}})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	receiveN(t, q, 1, queue.ReceiveOptions{Max: 1, Visibility: time.Minute})
	desc, ok := counts(2, 1, 1)
	st = eventuallyStats(t, q, desc, ok)
	if e.caps.ReportsOldestAge && (st.OldestAge <= 0 || st.OldestAge > time.Hour) {
		t.Errorf("OldestAge = %v, want a small positive age", st.OldestAge)
	}
}

func testConcurrentReceivers(t *testing.T, e *env) {
	q := e.create(t, "conc", queue.Config{})
	const n, workers = 40, 6
	ids := sendN(t, q, n)

	ctx, cancel := context.WithTimeout(t.Context(), 2*waitBudget)
	defer cancel()
	var (
		mu        sync.Mutex
		delivered = map[string]int{}
		total     atomic.Int64
		wg        sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for total.Load() < n && ctx.Err() == nil {
				// A visibility window far longer than the test: any
				// second delivery is a duplicate inside one window.
				msgs, err := q.Receive(ctx, queue.ReceiveOptions{Max: 4, Visibility: 5 * time.Minute, Wait: time.Second})
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("receive: %v", err)
					}
					return
				}
				fresh := 0
				mu.Lock()
				for _, m := range msgs {
					if delivered[m.ID] == 0 {
						fresh++
					}
					delivered[m.ID]++
				}
				mu.Unlock()
				if total.Add(int64(fresh)) >= n {
					cancel() // stop the others' long polls
				}
			}
		})
	}
	wg.Wait()
	for id, c := range delivered {
		switch {
		case c > 1 && e.caps.NoDuplicateDeliveries:
			t.Errorf("message %s delivered %d times inside one visibility window", id, c)
		case c > 1:
			t.Logf("message %s delivered %d times (at-least-once delivery)", id, c)
		}
	}
	for _, id := range ids {
		if delivered[id] == 0 {
			t.Errorf("message %s never delivered", id)
		}
	}
}

func testCreateQueue(t *testing.T, e *env) {
	name := uniqueName(t, "create")
	cfg := queue.Config{VisibilityTimeout: 45 * time.Second}
	q1, err := e.b.CreateQueue(t.Context(), name, cfg)
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	q2, err := e.b.CreateQueue(t.Context(), name, cfg)
	if err != nil {
		t.Fatalf("second CreateQueue with the same config: %v", err)
	}
	q3, err := e.b.OpenQueue(t.Context(), name)
	if err != nil {
		t.Fatalf("OpenQueue: %v", err)
	}
	if q2.Name() != name || q3.Name() != name {
		t.Errorf("names %q, %q, want %q", q2.Name(), q3.Name(), name)
	}
	id := send(t, q1, "shared", nil)
	m := receiveN(t, q3, 1, queue.ReceiveOptions{})[0]
	if m.ID != id {
		t.Fatalf("received %s through a second handle, want %s", m.ID, id)
	}
	del(t, q2, m.ReceiptHandle)

	_, err = e.b.OpenQueue(t.Context(), uniqueName(t, "missing"))
	if !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("OpenQueue of a missing queue: %v, want tally.ErrNotFound", err)
	}
}

func testInvalidQueueNames(t *testing.T, e *env) {
	for _, name := range []string{
		"",
		strings.Repeat("q", 81),
		"has space",
		"has/slash",
		"has.dot",
		"ünïcode",
		"colon:name",
	} {
		_, err := e.b.CreateQueue(t.Context(), name, queue.Config{})
		wantInvalid(t, fmt.Sprintf("CreateQueue(%q)", name), err)
	}
	// 80 characters is the longest valid name.
	long := uniqueName(t, "long")
	long += strings.Repeat("x", 80-len(long))
	if _, err := e.b.CreateQueue(t.Context(), long, queue.Config{}); err != nil {
		t.Errorf("CreateQueue with an 80-character name: %v", err)
	}
}

func testInvalidConfig(t *testing.T, e *env) {
	for _, tc := range []struct {
		name string
		cfg  queue.Config
	}{
		{"negative visibility", queue.Config{VisibilityTimeout: -time.Second}},
		{"visibility over 12h", queue.Config{VisibilityTimeout: queue.MaxVisibility + time.Second}},
		{"delay over 15m", queue.Config{Delay: queue.MaxDelay + time.Second}},
		{"retention over 14d", queue.Config{Retention: queue.MaxRetention + time.Second}},
		{"negative retention", queue.Config{Retention: -time.Second}},
		{"dead letter without max receive count", queue.Config{DeadLetter: uniqueName(t, "dlq")}},
	} {
		_, err := e.b.CreateQueue(t.Context(), uniqueName(t, "badcfg"), tc.cfg)
		wantInvalid(t, tc.name, err)
	}
	_, err := e.b.CreateQueue(t.Context(), uniqueName(t, "nodlq"), queue.Config{DeadLetter: uniqueName(t, "absent"), MaxReceiveCount: 3})
	if !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("CreateQueue with a missing dead-letter queue: %v, want tally.ErrNotFound", err)
	}
}

// testInspector runs only for queues that can list and release in-flight
// messages without their receipt handles (queue.Inspector).
func testInspector(t *testing.T, e *env) {
	q := e.create(t, "inspect", queue.Config{})
	in, ok := q.(queue.Inspector)
	if !ok {
		t.Skipf("%T does not implement queue.Inspector", q)
	}
	ctx := t.Context()
	if _, err := in.InFlight(ctx, 0); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("InFlight(limit 0) = %v, want ErrInvalidArgument", err)
	}
	sendN(t, q, 3)
	before := time.Now()
	got := receiveN(t, q, 2, queue.ReceiveOptions{Max: 2, Visibility: time.Hour})
	list, err := in.InFlight(ctx, 10)
	if err != nil {
		t.Fatalf("InFlight: %v", err)
	}
	if len(list) != 2 {
		t.Fatalf("InFlight listed %d messages, want the 2 received", len(list))
	}
	for _, m := range list {
		if m.ID != got[0].ID && m.ID != got[1].ID {
			t.Errorf("InFlight listed %s, which was not received", m.ID)
		}
		if m.ReceiveCount != 1 || m.ReceivedAt.Before(before.Add(-time.Second)) || !m.VisibleAt.After(time.Now().Add(50*time.Minute)) {
			t.Errorf("InFlight entry %+v: want receive count 1, received just now, visible in about an hour", m)
		}
	}
	// Nothing was received before the test began: nothing to release.
	if n, err := in.Release(ctx, before.Add(-time.Minute)); err != nil || n != 0 {
		t.Fatalf("Release(before the receive) = %d, %v; want 0", n, err)
	}
	n, err := in.Release(ctx, time.Now().Add(time.Second))
	if err != nil || n != 2 {
		t.Fatalf("Release = %d, %v; want 2", n, err)
	}
	// The holder's handle no longer deletes; the messages come back.
	if errs, err := q.DeleteBatch(ctx, []string{got[0].ReceiptHandle}); err == nil && errs[0] == nil && e.caps.RejectsStaleHandles {
		t.Errorf("delete with a handle from before the release succeeded; want it refused so the message is delivered again")
	}
	again := receiveN(t, q, 3, queue.ReceiveOptions{Max: 3, Visibility: time.Hour})
	counts := map[int]int{}
	for _, m := range again {
		counts[m.ReceiveCount]++
	}
	if counts[2] != 2 || counts[1] != 1 {
		t.Errorf("after release, receive counts %v; want two released messages on their 2nd receive and one on its 1st", counts)
	}
	if list, err := in.InFlight(ctx, 1); err != nil || len(list) != 1 {
		t.Errorf("InFlight(limit 1) = %d entries, %v; want 1", len(list), err)
	}
}
