package process_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"image/jpeg"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tallyhq/tally/blob"
	blobfile "github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/compaction"
	embedcache "github.com/tallyhq/tally/embed/cache"
	"github.com/tallyhq/tally/embed/coalesce"
	"github.com/tallyhq/tally/embed/hashed"
	"github.com/tallyhq/tally/embed/openai"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/fakes"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/merchant"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/ocrstage"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/places"
	"github.com/tallyhq/tally/places/google"
	"github.com/tallyhq/tally/process"
	"github.com/tallyhq/tally/queue"
	queuesqlite "github.com/tallyhq/tally/queue/sqlite"
	"github.com/tallyhq/tally/renditions"
	"github.com/tallyhq/tally/upload"
	"github.com/tallyhq/tally/vector"
)

// bundle is one test's process stage on embedded backends, fed through the
// real external-OCR path of the upload API.
type bundle struct {
	dir     string
	items   items.Table
	blob    *faultyBlob
	queues  pipeline.Queues
	dlq     queue.Queue
	vectors *vector.Store
	upload  *upload.Service
	worker  *process.Worker
}

// faultyBlob is the real file store with reads of chosen keys failing, to
// make a transient store error.
type faultyBlob struct {
	blob.Store
	mu   sync.Mutex
	fail map[string]bool
}

func (f *faultyBlob) Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error) {
	f.mu.Lock()
	bad := f.fail[key]
	f.mu.Unlock()
	if bad {
		return nil, blob.Info{}, errors.New("injected: connection reset by peer")
	}
	return f.Store.Get(ctx, key)
}

// tb is what setup needs of a test: testing.TB, or the child process of
// TestKilledWorker, which has no test.
type tb interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

func setup(t tb, dir string, mod func(*process.Config)) *bundle {
	t.Helper()
	ctx := context.Background()
	tbl, err := itemssqlite.Open(ctx, filepath.Join(dir, "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	fs, err := blobfile.Open(filepath.Join(dir, "blobs"), blobfile.Options{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	bs := &faultyBlob{Store: fs, fail: map[string]bool{}}
	broker, err := queuesqlite.Open(ctx, filepath.Join(dir, "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	qs, err := pipeline.EnsureQueues(ctx, broker)
	if err != nil {
		t.Fatal(err)
	}
	dlq, err := broker.OpenQueue(ctx, pipeline.QueueOCRResults+pipeline.DeadLetterSuffix)
	if err != nil {
		t.Fatal(err)
	}
	emb, err := hashed.New(64)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := vector.New(vector.Options{Blob: bs, Items: tbl, Dims: emb.Dims()})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	up, err := upload.New(upload.Config{Store: ocrstage.Store{Items: tbl, Blob: bs, Bucket: "local", Results: qs.OCRResults}, Jobs: qs.OCRJobs, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	cfg := process.Config{Items: tbl, Blob: bs, Embedder: emb, Vectors: vs, Results: qs.OCRResults, DeadLetter: dlq,
		Compaction: qs.Compaction, Log: quiet}
	if mod != nil {
		mod(&cfg)
	}
	w, err := process.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{dir: dir, items: tbl, blob: bs, queues: qs, dlq: dlq, vectors: vs, upload: up, worker: w}
}

// The blank image paired with the scan's OCR result: a quarter of the scan's
// 2480×3508 on each side, the same aspect ratio. The result's coordinates
// are normalized, so the entities are the same as at full size (the same 40
// lines, 104 words and 28 rows, in one receipt), while decoding, analysing
// and cropping it cost a sixteenth.
const scanWidth, scanHeight = 620, 877

// submitScan feeds the old system's real scan result through the external
// OCR path (a blank image; seed varies the image bytes so each call is a new
// image).
func (b *bundle) submitScan(t testing.TB, seed int) upload.Accepted {
	t.Helper()
	result, err := os.ReadFile(fixtures.Path(t, "portfolio", "scan_2f05267d.vision.json"))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := b.upload.SubmitOCR(context.Background(), "scan.png", blankScan(t, seed), result, false)
	if err != nil {
		t.Fatal(err)
	}
	return acc
}

// blankScan is a white scanWidth×scanHeight PNG whose bytes differ with
// seed (a tEXt chunk after the header) and whose pixels and size do not, so
// that every seed is the same image to the pipeline yet a new upload.
func blankScan(t testing.TB, seed int) []byte {
	t.Helper()
	img := fixtures.BlankPNG(t, scanWidth, scanHeight)
	const afterIHDR = 8 + 4 + 4 + 13 + 4 // signature, IHDR length, type, data, CRC
	text := []byte("Comment\x00seed " + strconv.Itoa(seed))
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(text)))
	chunk = append(append(chunk, "tEXt"...), text...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	return slices.Concat(img[:afterIHDR], chunk, img[afterIHDR:])
}

func (b *bundle) receive(t testing.TB) []queue.Message {
	t.Helper()
	msgs, err := b.queues.OCRResults.Receive(context.Background(), queue.ReceiveOptions{Max: 10, Visibility: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// counts is what one image has in the table and the vector store.
type counts struct{ lines, words, receiptLines, receiptWords, rows, runs, lineDeltas, wordDeltas int }

func (b *bundle) count(t testing.TB, imageID string) counts {
	t.Helper()
	ctx := context.Background()
	set, err := entities.Load(ctx, b.items, imageID)
	if err != nil {
		t.Fatal(err)
	}
	c := counts{lines: len(set.Lines), words: len(set.Words), receiptLines: len(set.ReceiptLines), receiptWords: len(set.ReceiptWords), rows: len(set.ReceiptRows)}
	runs, err := items.QueryAll(ctx, b.items, items.Query{PK: "IMAGE#" + imageID, SK: items.SKCond{Op: items.SKBeginsWith, Value: "RECEIPT#00001#COMPACTION_RUN#"}})
	if err != nil {
		t.Fatal(err)
	}
	c.runs = len(runs)
	for _, coll := range []string{vector.CollectionLines, vector.CollectionWords} {
		ds, err := b.vectors.Deltas(ctx, coll, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range ds {
			if strings.Contains(d.RunID, "run-") {
				n++
			}
		}
		if coll == vector.CollectionLines {
			c.lineDeltas = n
		} else {
			c.wordDeltas = n
		}
	}
	return c
}

// TestBatchMixed: a good record, a malformed body, a record whose OCR JSON
// is missing and a duplicate of the good one, in one batch: the good one is
// processed once, the bad ones are in the dead-letter queue with their
// reasons, the duplicate changes nothing.
func TestBatchMixed(t *testing.T) {
	t.Parallel()
	b := setup(t, t.TempDir(), nil)
	ctx := context.Background()
	good := b.submitScan(t, 0)
	missing := b.submitScan(t, 1)
	msgs := b.receive(t)
	if len(msgs) != 2 {
		t.Fatalf("ocr-results has %d messages, want 2", len(msgs))
	}
	var goodMsg, missingMsg queue.Message
	for _, m := range msgs {
		rm, _ := ocrjob.DecodeResultMessage(m.Body)
		if rm.ImageID == good.ImageID {
			goodMsg = m
		} else {
			missingMsg = m
		}
	}
	rm, _ := ocrjob.DecodeResultMessage(missingMsg.Body)
	if err := b.blob.Delete(ctx, rm.S3Key); err != nil {
		t.Fatal(err)
	}
	batch := []queue.Message{goodMsg, {ID: "bad", Body: `{"image_id": 5`}, missingMsg, goodMsg}
	errs := b.worker.HandleBatch(ctx, batch)
	for i, err := range errs {
		if err != nil {
			t.Errorf("record %d: %v (bad records must be dead-lettered, not retried)", i, err)
		}
	}
	c := b.count(t, good.ImageID)
	want := counts{lines: 40, words: 104, receiptLines: 40, receiptWords: 104, rows: c.rows, runs: 1, lineDeltas: 1, wordDeltas: 1}
	if c != want || c.rows == 0 {
		t.Errorf("good image = %+v, want %+v", c, want)
	}
	dead, err := b.dlq.Receive(ctx, queue.ReceiveOptions{Max: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 2 {
		t.Fatalf("dead-letter queue has %d messages, want 2", len(dead))
	}
	for _, d := range dead {
		reason := d.Attributes["failure_reason"]
		if !strings.Contains(reason, "missing") && !strings.Contains(reason, "ocr result message") {
			t.Errorf("dead letter %q has reason %q", d.Body, reason)
		}
	}
	job, err := ocrjob.GetJob(ctx, b.items, missing.ImageID, missing.JobID)
	if err != nil {
		t.Fatal(err)
	}
	it, _ := b.items.Get(ctx, ocrjob.JobKey(missing.ImageID, missing.JobID))
	if it["process_status"] != "FAILED" || !strings.Contains(it["process_failure_reason"].(string), "missing") {
		t.Errorf("job of the missing result = %v (%s)", it, job.Status)
	}
	r, _ := ocrjob.GetRouting(ctx, b.items, good.ImageID, good.JobID)
	if r.Status != ocrjob.StatusCompleted {
		t.Errorf("routing of the good record = %s, want COMPLETED", r.Status)
	}
	// The good record again (a redelivery): nothing changes.
	if errs := b.worker.HandleBatch(ctx, []queue.Message{goodMsg}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if again := b.count(t, good.ImageID); again != c {
		t.Errorf("after redelivery %+v, before %+v", again, c)
	}
	run, err := compaction.GetRun(ctx, b.items, good.ImageID, 1, process.RunID(good.ImageID, 1, good.JobID))
	if err != nil || run.Status != compaction.StatusPending || len(run.Collections) != 2 {
		t.Errorf("compaction run = %+v, %v", run, err)
	}
}

// TestLambdaHandler calls the SQS handler with a real SQSEvent JSON (as the
// event source mapping sends it): exactly the failed record is reported.
func TestLambdaHandler(t *testing.T) {
	t.Parallel()
	b := setup(t, t.TempDir(), nil)
	ctx := context.Background()
	ok1 := b.submitScan(t, 0)
	flaky := b.submitScan(t, 1)
	msgs := b.receive(t)
	var records []map[string]any
	for _, m := range msgs {
		rm, _ := ocrjob.DecodeResultMessage(m.Body)
		if rm.ImageID == flaky.ImageID {
			b.blob.mu.Lock()
			b.blob.fail[rm.S3Key] = true
			b.blob.mu.Unlock()
		}
		records = append(records, map[string]any{
			"messageId": m.ID, "receiptHandle": m.ReceiptHandle, "body": m.Body,
			"attributes":        map[string]string{"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
			"messageAttributes": map[string]any{}, "md5OfBody": "", "eventSource": "aws:sqs",
			"eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:ocr-results", "awsRegion": "us-east-1",
		})
	}
	raw, _ := json.Marshal(map[string]any{"Records": records})
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	resp, err := b.worker.HandleSQSEvent(lctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	var failedID string
	for _, m := range msgs {
		if rm, _ := ocrjob.DecodeResultMessage(m.Body); rm.ImageID == flaky.ImageID {
			failedID = m.ID
		}
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != failedID {
		t.Errorf("batchItemFailures = %+v, want exactly %s", resp.BatchItemFailures, failedID)
	}
	if c := b.count(t, ok1.ImageID); c.lines != 40 {
		t.Errorf("good record: %+v", c)
	}
	// Too close to the deadline: nothing starts, everything is reported.
	short, cancel2 := context.WithTimeout(ctx, time.Second)
	defer cancel2()
	resp, _ = b.worker.HandleSQSEvent(short, ev)
	if len(resp.BatchItemFailures) != len(ev.Records) {
		t.Errorf("near the deadline %d failures, want all %d", len(resp.BatchItemFailures), len(ev.Records))
	}
}

// TestRenditions: with renditions on, the image and its receipt get JPEG,
// WebP and AVIF renditions, never upscaled, recorded on the entities. (The
// image is 620×877, its receipt crop 223×542: 1200 is above both.)
func TestRenditions(t *testing.T) {
	t.Parallel()
	b := setup(t, t.TempDir(), func(c *process.Config) {
		c.Renditions = &renditions.Options{Sizes: []int{300, 1200, 0}, AVIFMaxSide: 300}
	})
	ctx := context.Background()
	acc := b.submitScan(t, 0)
	if errs := b.worker.HandleBatch(ctx, b.receive(t)); errs[0] != nil {
		t.Fatal(errs[0])
	}
	set, err := entities.Load(ctx, b.items, acc.ImageID)
	if err != nil {
		t.Fatal(err)
	}
	im, rc := set.Images[0], set.Receipts[0]
	for _, key := range []string{im.CDNKey, im.CDNWebPKey, im.CDNSizes["300"].Key, im.CDNSizes["300"].WebPKey, im.CDNSizes["300"].AVIFKey,
		rc.CDNKey, rc.CDNWebPKey, rc.CDNSizes["300"].AVIFKey} {
		if !strings.HasPrefix(key, "assets/"+acc.ImageID+"/") {
			t.Errorf("rendition key %q not under assets/%s/", key, acc.ImageID)
			continue
		}
		if _, err := b.blob.Head(ctx, key); err != nil {
			t.Errorf("rendition %s: %v", key, err)
		}
	}
	if im.CDNAVIFKey != "" {
		t.Errorf("full-size AVIF %q made above AVIFMaxSide", im.CDNAVIFKey)
	}
	for name, sizes := range map[string]map[string]entities.Rendition{"image": im.CDNSizes, "receipt": rc.CDNSizes} {
		if r, ok := sizes["1200"]; ok {
			t.Errorf("%s upscaled to 1200: %+v", name, r)
		}
	}
	data, err := blob.ReadAll(ctx, b.blob, im.CDNSizes["300"].Key)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil || max(cfg.Width, cfg.Height) != 300 {
		t.Errorf("300 rendition = %+v, %v", cfg, err)
	}
}

// TestMerchantAndEmbeddingRequests runs ten receipts as one batch with the
// OpenAI adapter (against a local server speaking its format, behind the
// item-store cache and the coalescer, as serve wires it) and Google Places
// (local server): every receipt gets its ReceiptPlace by phone, the
// merchant name reaches the vectors' metadata, the ten receipts cost one
// embedding request, and a redelivered batch costs none, nor any Places
// request.
func TestMerchantAndEmbeddingRequests(t *testing.T) {
	t.Parallel()
	ai := fakes.NewOpenAI(t)
	pl := fakes.NewPlaces(t, []fakes.Place{{ID: "ChIJ-vons-westlake", Name: "Vons", Address: "2725 Agoura Rd, Westlake Village, CA 91361, USA",
		Phone: "+18054971921", Types: []string{"supermarket"}}})
	var oa *openai.Embedder
	b := setup(t, t.TempDir(), func(c *process.Config) {
		var err error
		if oa, err = openai.New(openai.Options{BaseURL: ai.URL, APIKey: "test", Dims: 64}); err != nil {
			t.Fatal(err)
		}
		cached, err := embedcache.New(oa, c.Items, embedcache.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// As serve wires it, a group goes as soon as a whole batch has
		// joined it; the long window (serve's is EmbedWindow, measured by
		// BenchmarkAPIRequests) keeps the assertion below independent of
		// machine load: only records that reach their embedding step more
		// than a window apart can cost a second request.
		c.Embedder = coalesce.New(cached, coalesce.Options{Window: 20 * time.Second, MaxCallers: queue.MaxBatch})
		gc, err := google.New(google.Options{APIKey: "test", BaseURL: pl.URL, LegacyBaseURL: pl.URL})
		if err != nil {
			t.Fatal(err)
		}
		c.Merchant = &merchant.Resolver{Places: places.NewCache(gc, c.Items, places.CacheOptions{}), Items: c.Items}
		c.Parallel = 10
	})
	ctx := context.Background()
	var accs []upload.Accepted
	for i := range 10 {
		accs = append(accs, b.submitScan(t, i))
	}
	var msgs []queue.Message
	for len(msgs) < 10 {
		got := b.receive(t)
		if len(got) == 0 {
			t.Fatalf("received %d of 10", len(msgs))
		}
		msgs = append(msgs, got...)
	}
	for i, err := range b.worker.HandleBatch(ctx, msgs) {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if n := ai.Requests(); n > 2 {
		t.Errorf("10 receipts cost %d embedding requests, want at most 2", n)
	}
	placesFirst := pl.Requests()
	for _, a := range accs {
		set, err := entities.Load(ctx, b.items, a.ImageID)
		if err != nil {
			t.Fatal(err)
		}
		if len(set.ReceiptPlaces) != 1 || set.ReceiptPlaces[0].PlaceID != "ChIJ-vons-westlake" || set.ReceiptPlaces[0].ValidationStatus != entities.PlaceMatched {
			t.Fatalf("receipt places of %s = %+v", a.ImageID, set.ReceiptPlaces)
		}
	}
	// The vectors carry the merchant name.
	ds, err := b.vectors.Deltas(ctx, vector.CollectionLines, false, 0)
	if err != nil || len(ds) != 10 {
		t.Fatalf("deltas = %d, %v", len(ds), err)
	}
	vc, err := vector.OpenCache(ctx, b.blob, vector.CacheOptions{Dir: filepath.Join(b.dir, "vcache")})
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	rd, err := b.vectors.OpenReader(ctx, vector.CollectionLines, vc)
	if err != nil {
		t.Fatal(err)
	}
	seen, named := 0, 0
	rd.Scan(ctx, func(r vector.Record) bool {
		seen++
		if r.Meta["merchant_name"] == "Vons" {
			named++
		}
		return true
	})
	if seen == 0 || named != seen {
		t.Errorf("%d of %d row vectors carry merchant_name", named, seen)
	}
	// Redelivery: no embedding request (cache), no Places request (cache).
	aiFirst := ai.Requests()
	if errs := b.worker.HandleBatch(ctx, msgs); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if ai.Requests() != aiFirst || pl.Requests() != placesFirst {
		t.Errorf("redelivery cost %d embedding and %d Places requests", ai.Requests()-aiFirst, pl.Requests()-placesFirst)
	}
}
