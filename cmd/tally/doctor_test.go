package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/internal/awstest"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/queue"
)

// TestDoctorAndResetVisibilityEmbedded: on a healthy data directory doctor
// exits 0; a dead letter makes it exit 1 with the redrive command; a
// message held in flight is listed and released by reset-visibility.
func TestDoctorAndResetVisibilityEmbedded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	cmd := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(ctx, append(args, "-data", dir), &out, &errb)
		return code, out.String() + errb.String()
	}
	// Before anything created the queues, doctor says what to run.
	if code, out := cmd("doctor"); code != 1 || !strings.Contains(out, "fix: tally serve") {
		t.Fatalf("doctor on an empty directory: exit %d\n%s", code, out)
	}
	cfg, err := config.Config{DataDir: dir}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	p, err := openPorts(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := pipeline.EnsureQueues(ctx, p.Queue)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if code, out := cmd("doctor"); code != 0 || !strings.Contains(out, "ok: ") {
		t.Fatalf("doctor on a healthy directory: exit %d\n%s", code, out)
	}
	code, out := cmd("doctor", "-json")
	var rep struct {
		Status string `json:"status"`
		Checks []struct {
			Name   string `json:"name"`
			Status string `json:"status"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || rep.Status != "ok" || len(rep.Checks) < 15 {
		t.Fatalf("doctor -json: exit %d, %v\n%s", code, err, out)
	}

	dlq, err := p.Queue.OpenQueue(ctx, pipeline.QueueOCRJobs+pipeline.DeadLetterSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := queue.Send(ctx, dlq, `{"image_id":"i","job_id":"j"}`, map[string]string{"failure_reason": "raw image raw/i.png is missing"}); err != nil {
		t.Fatal(err)
	}
	if code, out := cmd("doctor"); code != 1 || !strings.Contains(out, "1 × raw image raw/i.png is missing") ||
		!strings.Contains(out, "fix: tally redrive ocr-jobs -reason 'raw image raw/i.png is missing'") {
		t.Fatalf("doctor with a dead letter: exit %d\n%s", code, out)
	}

	id, err := queue.Send(ctx, qs.OCRResults, `{"image_id":"i"}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	held, err := qs.OCRResults.Receive(ctx, queue.ReceiveOptions{Visibility: 12 * time.Hour})
	if err != nil || len(held) != 1 {
		t.Fatalf("receive: %v %v", held, err)
	}
	// Just received: not stuck by the default rule (2× the timeout).
	if code, out := cmd("reset-visibility", "ocr-results"); code != 0 || !strings.Contains(out, "released 0") {
		t.Fatalf("reset-visibility (nothing stuck): exit %d\n%s", code, out)
	}
	if code, out := cmd("reset-visibility", "ocr-results", "-older", "0", "-dry-run"); code != 0 || !strings.Contains(out, "would release 1") || !strings.Contains(out, id) {
		t.Fatalf("reset-visibility -dry-run: exit %d\n%s", code, out)
	}
	if code, out := cmd("reset-visibility", "ocr-results", "-older", "0"); code != 0 || !strings.Contains(out, "released 1") {
		t.Fatalf("reset-visibility -older 0: exit %d\n%s", code, out)
	}
	again, err := qs.OCRResults.Receive(ctx, queue.ReceiveOptions{Visibility: time.Minute})
	if err != nil || len(again) != 1 || again[0].ID != id || again[0].ReceiveCount != 2 {
		t.Fatalf("after reset-visibility the message is not back: %+v %v", again, err)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"reset-visibility"}, 2}, {[]string{"reset-visibility", "nope"}, 2},
		{[]string{"doctor", "extra"}, 2}, {[]string{"doctor", "-stuck-after", "soon"}, 2},
	} {
		if code, out := cmd(c.args...); code != c.code {
			t.Errorf("%v: exit %d, want %d: %s", c.args, code, c.code, out)
		}
	}
}

// TestDoctorOnAWS runs doctor against ports on moto_server: the queues are
// checked through SQS (which cannot list in-flight messages, so
// reset-visibility refuses with why), and functions that are not deployed
// are problems named as such.
func TestDoctorOnAWS(t *testing.T) {
	t.Parallel()
	srv := awstest.Shared(t)
	ctx := context.Background()
	id := fmt.Sprintf("d%08x", rand.Uint32())
	q := "?create=true&endpoint=" + srv.Endpoint
	c := config.Config{DataDir: t.TempDir(), QueueURL: "sqs://" + id + "-" + q, BlobURL: "s3://" + id + "-raw" + q, ItemsURL: "dynamodb://" + id + "-receipts" + q}
	args := []string{"-data", c.DataDir, "-queue", c.QueueURL, "-blob", c.BlobURL, "-items", c.ItemsURL}
	resolved, err := c.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	p, err := openPorts(ctx, resolved)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	qs, err := pipeline.EnsureQueues(ctx, p.Queue)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := queue.Send(ctx, qs.OCRJobs, "{}", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := qs.OCRJobs.Receive(ctx, queue.ReceiveOptions{Visibility: time.Hour, Wait: time.Second}); err != nil {
		t.Fatal(err)
	}
	cmd := func(extra ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(ctx, append(extra, args...), &out, &errb)
		return code, out.String() + errb.String()
	}
	code, out := cmd("doctor", "-functions", id+"-")
	if code != 1 || !strings.Contains(out, "function "+id+"-process") || !strings.Contains(out, "queue ocr-jobs: ") ||
		!strings.Contains(out, "cannot list them") {
		t.Fatalf("doctor on AWS: exit %d\n%s", code, out)
	}
	if code, out := cmd("reset-visibility", "ocr-jobs", "-older", "0"); code != 1 || !strings.Contains(out, "only the consumer that received a message holds its receipt handle") {
		t.Fatalf("reset-visibility on SQS: exit %d\n%s", code, out)
	}
}
