package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/compaction"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/awstest"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/upload"
	"github.com/tallyhq/tally/vector"
)

// envRunMain makes the test binary run as `tally` itself (see TestMain):
// tests that need real `tally worker` processes re-execute it rather than
// build the binary, which took minutes of a loaded machine's CPU.
const envRunMain = "TALLY_TEST_RUN_MAIN"

// tallyBinary is the path of a program that runs as `tally` when its
// environment holds envRunMain=1: this test binary.
func tallyBinary(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// workerEnv is the environment of a `tally worker` process on cfg's ports.
func workerEnv(cfg config.Config, dataDir string) []string {
	env := append(os.Environ(),
		config.EnvQueueURL+"="+cfg.QueueURL, config.EnvBlobURL+"="+cfg.BlobURL,
		config.EnvVectorBlobURL+"="+cfg.VectorBlobURL, config.EnvAssetsBlobURL+"="+cfg.AssetsBlobURL,
		config.EnvItemsURL+"="+cfg.ItemsURL, config.EnvAWSEndpoint+"="+cfg.AWSEndpoint,
		config.EnvDataDir+"="+dataDir, config.EnvRenditions+"=false", config.EnvLog+"=json", envRunMain+"=1",
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_REGION="+awstest.Region)
	return env
}

// progressLogs are the log messages of a worker that mark a step of work
// done: the test signal that a scale-out run is still moving.
var progressLogs = []string{`"record processed"`, `"vector version published"`, `"completed pending runs`}

// startWorkers starts n `tally worker -role role` processes and waits until
// each has logged that its worker started; every progressLogs line they log
// adds one to steps. They are stopped (SIGTERM, then killed) when the test
// ends.
func startWorkers(t testing.TB, cfg config.Config, role string, n int, steps *atomic.Int64) {
	t.Helper()
	bin := tallyBinary(t)
	for i := range n {
		cmd := exec.Command(bin, "worker", "-role", role)
		cmd.Env = workerEnv(cfg, filepath.Join(cfg.DataDir, fmt.Sprintf("%s-%d", role, i)))
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan struct{})
		var logTail bytes.Buffer
		var mu sync.Mutex
		go func() {
			sc := bufio.NewScanner(stderr)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			once := sync.Once{}
			for sc.Scan() {
				line := sc.Text()
				if testing.Verbose() {
					fmt.Fprintf(os.Stderr, "[%s-%d] %s\n", role, i, line)
				}
				mu.Lock()
				logTail.WriteString(line + "\n")
				if logTail.Len() > 64<<10 {
					logTail.Next(logTail.Len() - 32<<10)
				}
				mu.Unlock()
				if strings.Contains(line, `"worker started"`) {
					once.Do(func() { close(ready) })
				}
				for _, p := range progressLogs {
					if strings.Contains(line, p) {
						steps.Add(1)
					}
				}
			}
		}()
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		})
		select {
		case <-ready:
		case err := <-exited:
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("tally worker -role %s exited at start: %v\n%s", role, err, logTail.String())
		case <-time.After(waitfor.Stall):
			t.Fatalf("tally worker -role %s did not start within %v", role, waitfor.Stall)
		}
	}
}

// scaleOutResult is the old system's real scan result, cut to its first
// lines lines (with their words and letters) when lines > 0.
func scaleOutResult(t testing.TB, lines int) []byte {
	t.Helper()
	raw, err := os.ReadFile(fixtures.Path(t, "portfolio", "scan_2f05267d.vision.json"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := ocr.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if lines > 0 {
		res.Lines = res.Lines[:min(lines, len(res.Lines))]
	}
	out, err := ocr.Encode(res)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// scaleOut starts workers `tally worker` processes per role for process and
// compact, submits receipts (a real scan result, cut to lines lines when
// lines > 0, through the external-OCR path, each on an image of its own),
// waits until every receipt is
// processed and compacted, and returns how long that took from the first
// submission, and the driver's environment for counting. It fails only
// when the workers make no progress for waitfor.Stall.
func scaleOut(t testing.TB, srv *awstest.Server, workers, receipts, lines int) (time.Duration, *env, []string) {
	t.Helper()
	cfg := awsConfig(t, srv)
	cfg.Renditions = false
	// One DynamoDB request (and S3 conditional write) at a time: moto
	// loses concurrent writes there (see awstest.Serial); AWS does not.
	serial := srv.Serial(t)
	cfg.ItemsURL += "&endpoint=" + serial
	cfg.VectorBlobURL += "&endpoint=" + serial
	ctx := context.Background()
	drv, err := openEnv(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	up, err := upload.New(upload.Config{Store: drv.ocrStore(), Jobs: drv.queues.OCRJobs, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	result := scaleOutResult(t, lines)
	var steps atomic.Int64
	startWorkers(t, cfg, "process", workers, &steps)
	startWorkers(t, cfg, "compact", workers, &steps)
	// Submit while the workers run, as uploads arrive in production, so
	// each worker takes messages as they come rather than one taking a
	// whole batch.
	start := time.Now()
	var ids []string
	for i := range receipts {
		acc, err := up.SubmitOCR(ctx, "scan.png", fixtures.BlankPNG(t, 248, 350+i), result, false)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, acc.ImageID)
	}
	waitfor.ProgressEvery(t, "receipts processed and compacted", 200*time.Millisecond, func() (int, bool) {
		done := int(steps.Load())
		busy := 0
		for _, q := range []queue.Queue{drv.queues.OCRResults, drv.queues.Compaction} {
			st, err := q.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			busy += st.Visible + st.InFlight + st.Delayed
		}
		if busy > 0 {
			return done, false
		}
		pending, err := drv.ports.Items.Query(ctx, items.Query{Index: compaction.PendingIndex, PK: compaction.PendingPK, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		runs := 0
		for _, id := range ids {
			rs, err := items.QueryAll(ctx, drv.ports.Items, items.Query{PK: "IMAGE#" + id, SK: items.SKCond{Op: items.SKBeginsWith, Value: "RECEIPT#"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if r[items.AttrType] == compaction.TypeRun {
					runs++
				}
			}
		}
		return done, len(pending.Items) == 0 && runs >= len(ids)
	})
	return time.Since(start), drv, ids
}

// TestScaleOutLosesAndDuplicatesNothing runs two `tally worker` processes
// per role on one moto SQS/S3/DynamoDB and counts: every receipt is stored
// once with all its lines, words and letters, has exactly one compaction
// run, and every line and word vector is in the compacted collections
// exactly once; no dead letters. Three receipts are enough for two
// processes per role to take them concurrently.
func TestScaleOutLosesAndDuplicatesNothing(t *testing.T) {
	t.Parallel()
	srv := awstest.Shared(t)
	// Every entity kind, on the least data that still proves nothing is
	// lost or duplicated: moto's DynamoDB copies a whole table for each
	// transaction and scans it for each index query, so the table's size
	// sets the test's pace (4 whole receipts took 8 minutes).
	const receipts, lines = 3, 8
	d, drv, ids := scaleOut(t, srv, 2, receipts, lines)
	t.Logf("took %v", d)
	ctx := context.Background()

	var want *entities.Set
	perImage := map[string]int{}
	for _, id := range ids {
		set, err := entities.Load(ctx, drv.ports.Items, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(set.Receipts) == 0 || len(set.ReceiptLines) == 0 || len(set.ReceiptWords) == 0 || len(set.ReceiptLetters) == 0 {
			t.Fatalf("image %s: %d receipts, %d lines, %d words, %d letters", id, len(set.Receipts), len(set.ReceiptLines), len(set.ReceiptWords), len(set.ReceiptLetters))
		}
		if want == nil {
			want = &set
		} else if len(set.Receipts) != len(want.Receipts) || len(set.ReceiptLines) != len(want.ReceiptLines) || len(set.ReceiptWords) != len(want.ReceiptWords) || len(set.Letters) != len(want.Letters) || len(set.ReceiptLetters) != len(want.ReceiptLetters) {
			t.Errorf("image %s: %d receipts %d lines %d words %d letters; first image had %d %d %d %d", id,
				len(set.Receipts), len(set.ReceiptLines), len(set.ReceiptWords), len(set.Letters),
				len(want.Receipts), len(want.ReceiptLines), len(want.ReceiptWords), len(want.Letters))
		}
		runs, err := items.QueryAll(ctx, drv.ports.Items, items.Query{PK: "IMAGE#" + id, SK: items.SKCond{Op: items.SKBeginsWith, Value: "RECEIPT#"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if r[items.AttrType] == compaction.TypeRun {
				perImage[id]++
				if r["status"] != compaction.StatusCompleted {
					t.Errorf("image %s: run %v is %v", id, r[items.AttrSK], r["status"])
				}
			}
		}
		if perImage[id] != len(set.Receipts) {
			t.Errorf("image %s: %d compaction runs for %d receipts", id, perImage[id], len(set.Receipts))
		}
	}
	for _, coll := range []string{vector.CollectionLines, vector.CollectionWords} {
		r, err := drv.store.OpenReader(ctx, coll, drv.cache)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		perImg := map[string]int{}
		if err := r.Scan(ctx, func(rec vector.Record) bool {
			seen[rec.ID]++
			perImg[strings.Split(rec.ID, "#")[1]]++
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if r.PendingDeltas() != 0 {
			t.Errorf("%s: %d deltas still pending", coll, r.PendingDeltas())
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s: vector %s appears %d times", coll, id, n)
			}
		}
		if len(perImg) != len(ids) {
			t.Errorf("%s: vectors for %d images, want %d", coll, len(perImg), len(ids))
		}
		first := perImg[ids[0]]
		for _, id := range ids {
			if perImg[id] == 0 || perImg[id] != first {
				t.Errorf("%s: image %s has %d vectors, image %s has %d", coll, id, perImg[id], ids[0], first)
			}
		}
		t.Logf("%s: %d vectors, %d per image, %d images", coll, len(seen), first, len(perImg))
	}
	for _, name := range []string{pipeline.QueueOCRResults, pipeline.QueueCompaction} {
		dlq, err := drv.ports.Queue.OpenQueue(ctx, name+pipeline.DeadLetterSuffix)
		if err != nil {
			t.Fatal(err)
		}
		st, err := dlq.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Visible+st.InFlight+st.Delayed != 0 {
			t.Errorf("%s has %d dead letters", dlq.Name(), st.Visible+st.InFlight+st.Delayed)
		}
	}
}

// BenchmarkScaleOut measures receipts per second through process and
// compaction with 1, 2 and 4 `tally worker` processes per role on one
// moto_server (loopback; moto itself is one Python process, so it is the
// ceiling, not AWS).
func BenchmarkScaleOut(b *testing.B) {
	srv := awstest.Shared(b)
	for _, workers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			const receipts = 6
			var total time.Duration
			for range b.N {
				d, _, _ := scaleOut(b, srv, workers, receipts, 0)
				total += d
			}
			b.ReportMetric(float64(receipts*b.N)/total.Seconds(), "receipts/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
