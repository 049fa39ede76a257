package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/queue"
)

// TestRedriveAndRetryCommands: tally redrive moves a dead-lettered record
// back to ocr-results (a dry run first), and both commands refuse bad
// arguments and unknown images with the right exit status.
func TestRedriveAndRetryCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	cfg, err := config.Config{DataDir: dir}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	p, err := openPorts(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.EnsureQueues(ctx, p.Queue); err != nil {
		t.Fatal(err)
	}
	dlq, err := p.Queue.OpenQueue(ctx, pipeline.QueueOCRResults+pipeline.DeadLetterSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := queue.Send(ctx, dlq, `{"image_id":"img","job_id":"job"}`, map[string]string{"failure_reason": "OCR result ocr/x.json is missing"}); err != nil {
		t.Fatal(err)
	}
	p.Close()

	cmd := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(ctx, append(args, "-data", dir), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := cmd("redrive", "ocr-results", "-dry-run"); code != 0 || !strings.Contains(out, "would move 1") || !strings.Contains(out, "is missing") {
		t.Fatalf("dry run: %d %s", code, out)
	}
	if code, out := cmd("redrive", "ocr-results", "-reason", "timeout"); code != 0 || !strings.Contains(out, "moved 0") || !strings.Contains(out, "left 1") {
		t.Fatalf("filtered: %d %s", code, out)
	}
	if code, out := cmd("redrive", "ocr-results-dlq"); code != 0 || !strings.Contains(out, "moved 1") {
		t.Fatalf("redrive: %d %s", code, out)
	}
	p, err = openPorts(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	src, _ := p.Queue.OpenQueue(ctx, pipeline.QueueOCRResults)
	msgs, err := src.Receive(ctx, queue.ReceiveOptions{Max: 10, Visibility: time.Minute})
	if err != nil || len(msgs) != 1 || msgs[0].Body != `{"image_id":"img","job_id":"job"}` {
		t.Errorf("ocr-results after the redrive: %+v %v", msgs, err)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"redrive"}, 2}, {[]string{"redrive", "nope"}, 2}, {[]string{"redrive", "ocr-jobs", "-max", "-1"}, 2},
		{[]string{"retry"}, 2}, {[]string{"retry", "img-unknown"}, 1},
	} {
		if code, out := cmd(c.args...); code != c.code {
			t.Errorf("%v: exit %d, want %d: %s", c.args, code, c.code, out)
		}
	}
}
