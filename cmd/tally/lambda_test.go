package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tallyhq/tally/auth"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/internal/awstest"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/lambdahost"
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/upload"
)

// awsConfig is a configuration with every port on its AWS adapter in the
// moto_server srv, under names unique to the test, created on first use.
// The credentials are TestMain's.
func awsConfig(t testing.TB, srv *awstest.Server) config.Config {
	t.Helper()
	id := fmt.Sprintf("t%08x", rand.Uint32()) // unique across parallel tests and runs
	cfg, err := config.Config{
		DataDir:       t.TempDir(),
		QueueURL:      "sqs://" + id + "-?create=true",
		BlobURL:       "s3://" + id + "-raw?create=true",
		VectorBlobURL: "s3://" + id + "-vectors/chroma?create=true",
		AssetsBlobURL: "s3://" + id + "-assets?create=true",
		ItemsURL:      "dynamodb://" + id + "-receipts?create=true",
		AWSEndpoint:   srv.Endpoint,
		Renditions:    true,
	}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// invoke calls a Lambda handler through aws-lambda-go's Handler interface
// with the event's JSON, as the Lambda runtime does, and decodes the reply.
func invoke[Resp any](t *testing.T, h lambda.Handler, ev any) Resp {
	t.Helper()
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	// Lambda's longest function timeout: a loaded test machine may be slow.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	out, err := h.Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	var resp Resp
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("decode response %s: %v", out, err)
	}
	return resp
}

// esm is what an SQS event source mapping does for one function: receive a
// batch, invoke the handler with it, delete the records not reported as
// failed, and (here, to save the visibility timeout) make failed ones
// visible again at once.
type esm struct {
	t       *testing.T
	q       queue.Queue
	handler lambda.Handler
}

// poll runs one batch; it returns how many records it delivered and the
// ids the handler reported failed.
func (m esm) poll() (int, []string) {
	m.t.Helper()
	ctx := context.Background()
	msgs, err := m.q.Receive(ctx, queue.ReceiveOptions{Max: queue.MaxBatch, Wait: time.Second, Visibility: 15 * time.Minute})
	if err != nil {
		m.t.Fatal(err)
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	ev := lambdahost.Event("arn:aws:sqs:"+awstest.Region+":123456789012:"+m.q.Name(), awstest.Region, msgs)
	resp := invoke[events.SQSEventResponse](m.t, m.handler, ev)
	failed := map[string]bool{}
	var ids []string
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
		ids = append(ids, f.ItemIdentifier)
	}
	var del []string
	var retry []queue.VisibilityChange
	for _, msg := range msgs {
		if failed[msg.ID] {
			retry = append(retry, queue.VisibilityChange{ReceiptHandle: msg.ReceiptHandle})
		} else {
			del = append(del, msg.ReceiptHandle)
		}
	}
	if len(del) > 0 {
		if _, err := m.q.DeleteBatch(ctx, del); err != nil {
			m.t.Fatal(err)
		}
	}
	if len(retry) > 0 {
		if _, err := m.q.ChangeVisibilityBatch(ctx, retry); err != nil {
			m.t.Fatal(err)
		}
	}
	return len(msgs), ids
}

// drain polls until the queue stays empty, failing only when no record
// has been delivered for waitfor.Stall.
func (m esm) drain() {
	m.t.Helper()
	delivered, empty := 0, 0
	waitfor.ProgressEvery(m.t, "queue "+m.q.Name()+" drained", 0, func() (int, bool) {
		n, _ := m.poll()
		delivered += n
		if n == 0 {
			empty++
		} else {
			empty = 0
		}
		return delivered, empty >= 2
	})
}

func httpEvent(method, path, query, contentType string, body []byte) events.APIGatewayV2HTTPRequest {
	var ev events.APIGatewayV2HTTPRequest
	ev.Version = "2.0"
	ev.RouteKey = "$default"
	ev.RequestContext.HTTP.Method = method
	ev.RequestContext.HTTP.Path = path
	ev.RequestContext.DomainName = "api.example.com"
	ev.RawPath, ev.RawQueryString = path, query
	ev.Headers = map[string]string{}
	if contentType != "" {
		ev.Headers["content-type"] = contentType
	}
	if body != nil {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return ev
}

// TestLambdaPipelineOnMoto runs the whole pipeline with every port on its
// AWS adapter (SQS, S3, DynamoDB in moto_server) and every stage as the
// Lambda handler the one binary serves: a direct upload and a presigned one
// through the upload API (API Gateway payload v2), OCR, process and
// compaction handlers invoked with SQSEvents built from received messages;
// a poisoned compaction message fails alone (partial batch response) until
// SQS redrives it to the dead-letter queue, and a malformed OCR result goes
// to its dead-letter queue with the reason.
func TestLambdaPipelineOnMoto(t *testing.T) {
	t.Parallel()
	srv := awstest.Shared(t)
	cfg := awsConfig(t, srv)
	// Renditions are checked below in every format, at one size: each
	// size is another JPEG, WebP and AVIF encode of image and receipt.
	cfg.RenditionSizes = []int{300}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	handlers := map[string]lambda.Handler{}
	for _, role := range lambdaRoles {
		h, closeFn, err := lambdaHandler(ctx, cfg, role, log.With("fn", role))
		if err != nil {
			t.Fatalf("%s handler: %v", role, err)
		}
		t.Cleanup(func() { closeFn() })
		handlers[role] = h
	}
	drv, err := openEnv(ctx, cfg, log) // the test's own view, as an operator's
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()

	// Behind API Gateway anyone may call, so the API wants a token: with no
	// account at all it refuses, then takes the token from the item store.
	if resp := invoke[events.APIGatewayV2HTTPResponse](t, handlers["upload"], httpEvent("GET", "/receipts", "", "", nil)); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("GET /receipts with no accounts on Lambda: %d %s", resp.StatusCode, resp.Body)
	}
	accounts := auth.New(drv.ports.Items, auth.Options{FastHashForTests: true})
	if err := accounts.AddUser(ctx, "ops", "a long enough password"); err != nil {
		t.Fatal(err)
	}
	token, err := accounts.CreateToken(ctx, "ops", "lambda-test", auth.ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	httpEvent := func(method, path, query, contentType string, body []byte) events.APIGatewayV2HTTPRequest {
		ev := httpEvent(method, path, query, contentType, body)
		ev.Headers["authorization"] = "Bearer " + token
		return ev
	}
	waitfor.True(t, "the upload API to see the first account", func() bool {
		resp := invoke[events.APIGatewayV2HTTPResponse](t, handlers["upload"], httpEvent("GET", "/receipts", "", "", nil))
		return resp.StatusCode == http.StatusOK
	})
	if resp := invoke[events.APIGatewayV2HTTPResponse](t, handlers["upload"], events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: "/receipts",
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/receipts"}},
		Headers:        map[string]string{"authorization": "Bearer tally_t_forged"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a forged token on Lambda: %d", resp.StatusCode)
	}

	// 1. A direct upload (multipart through API Gateway) ...
	img0, err := os.ReadFile(fixtures.Path(t, "sroie", "img", "000.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "000.jpg")
	fw.Write(img0)
	mw.Close()
	resp := invoke[events.APIGatewayV2HTTPResponse](t, handlers["upload"], httpEvent("POST", "/receipts", "", mw.FormDataContentType(), body.Bytes()))
	var rr upload.ReceiptsResponse
	if err := json.Unmarshal([]byte(resp.Body), &rr); err != nil || resp.StatusCode != http.StatusOK || len(rr.Receipts) != 1 {
		t.Fatalf("POST /receipts: %d %s", resp.StatusCode, resp.Body)
	}
	direct := rr.Receipts[0].ImageID

	// ... and a presigned one: the client PUTs the image to S3 itself.
	img1, err := os.ReadFile(fixtures.Path(t, "sroie", "img", "001.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := json.Marshal(upload.CreateRequest{Filename: "001.jpg", ContentType: "image/jpeg"})
	resp = invoke[events.APIGatewayV2HTTPResponse](t, handlers["upload"], httpEvent("POST", "/upload-receipt", "", "application/json", req))
	var cr upload.CreateResponse
	if err := json.Unmarshal([]byte(resp.Body), &cr); err != nil || resp.StatusCode != http.StatusOK || cr.UploadURL == "" {
		t.Fatalf("POST /upload-receipt: %d %s", resp.StatusCode, resp.Body)
	}
	put, _ := http.NewRequest(http.MethodPut, cr.UploadURL, bytes.NewReader(img1))
	put.Header.Set("Content-Type", "image/jpeg")
	pr, err := http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	pr.Body.Close()
	if pr.StatusCode != http.StatusOK {
		t.Fatalf("presigned PUT: %s", pr.Status)
	}
	presigned := cr.ImageID

	// 2. OCR. The presigned job may wait for its image (it is queued with a
	// delay), so drain until both jobs are done.
	ocrESM := esm{t, drv.queues.OCRJobs, handlers["ocr"]}
	resultsESM := esm{t, drv.queues.OCRResults, handlers["process"]}
	compactESM := esm{t, drv.queues.Compaction, handlers["compact"]}

	// A malformed OCR result: permanent, so the process handler sends it to
	// the dead-letter queue with its reason and reports success.
	if _, err := queue.Send(ctx, drv.queues.OCRResults, `{"image_id": 42}`, nil); err != nil {
		t.Fatal(err)
	}
	status := func(id string) upload.Status {
		resp := invoke[events.APIGatewayV2HTTPResponse](t, handlers["upload"], httpEvent("GET", "/upload-status", "image_id="+url.QueryEscape(id), "", nil))
		var st upload.Status
		if err := json.Unmarshal([]byte(resp.Body), &st); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /upload-status: %d %s", resp.StatusCode, resp.Body)
		}
		return st
	}
	delivered := 0
	waitfor.ProgressEvery(t, "both uploads processed", 0, func() (int, bool) {
		n, _ := ocrESM.poll()
		m, _ := resultsESM.poll()
		delivered += n + m
		a, b := status(direct), status(presigned)
		if a.FailureReason != "" || b.FailureReason != "" {
			t.Fatalf("failed: %+v %+v", a, b)
		}
		return delivered, a.ProcessingStage == "COMPLETED" && b.ProcessingStage == "COMPLETED"
	})
	resultsESM.drain()
	dead, err := drv.ports.Queue.OpenQueue(ctx, pipeline.QueueOCRResults+pipeline.DeadLetterSuffix)
	if err != nil {
		t.Fatal(err)
	}
	dl, err := dead.Receive(ctx, queue.ReceiveOptions{Max: 10, Wait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 || dl[0].Body != `{"image_id": 42}` || dl[0].Attributes["failure_reason"] == "" {
		t.Fatalf("ocr-results dead letters: %+v", dl)
	}

	// 3. Compaction, with a poisoned message in the same batches: it fails
	// alone every time until SQS moves it to the dead-letter queue.
	poison := `not a compaction message`
	if _, err := queue.Send(ctx, drv.queues.Compaction, poison, nil); err != nil {
		t.Fatal(err)
	}
	poisonFailures, delivered := 0, 0
	waitfor.ProgressEvery(t, "compaction queue drained", 0, func() (int, bool) {
		n, failed := compactESM.poll()
		poisonFailures += len(failed)
		delivered += n
		if len(failed) > 1 {
			t.Fatalf("%d records failed in one batch, want only the poisoned one", len(failed))
		}
		return delivered, n == 0
	})
	if poisonFailures != pipeline.MaxReceiveCount {
		t.Errorf("poisoned message failed %d times, want %d (maxReceiveCount) before redrive", poisonFailures, pipeline.MaxReceiveCount)
	}
	cdead, err := drv.ports.Queue.OpenQueue(ctx, pipeline.QueueCompaction+pipeline.DeadLetterSuffix)
	if err != nil {
		t.Fatal(err)
	}
	dl, err = cdead.Receive(ctx, queue.ReceiveOptions{Max: 10, Wait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 || dl[0].Body != poison {
		t.Fatalf("compaction dead letters: %+v", dl)
	}

	// 4. Search through the upload API's /search: the receipts' lines are
	// found in the compacted collection on S3.
	var sr pipeline.SearchResponse
	waitfor.True(t, "search to see the compacted version", func() bool {
		resp = invoke[events.APIGatewayV2HTTPResponse](t, handlers["upload"], httpEvent("GET", "/search", "q=total&collection=lines&k=5", "", nil))
		if err := json.Unmarshal([]byte(resp.Body), &sr); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /search: %d %s", resp.StatusCode, resp.Body)
		}
		return sr.Version > 0 && sr.PendingDeltas == 0 && len(sr.Results) > 0
	})
	if sr.Version == 0 || sr.PendingDeltas != 0 || len(sr.Results) == 0 {
		t.Fatalf("search after compaction: %+v", sr)
	}
	images := map[string]bool{}
	for _, r := range sr.Results {
		images[strings.Split(r.ID, "#")[1]] = true
	}
	if !images[direct] && !images[presigned] {
		t.Errorf("search results %v name neither image", sr.Results)
	}
	// Renditions landed in the assets bucket, in every format.
	page, err := drv.ports.AssetsBlob.List(ctx, blob.ListOptions{Prefix: "assets/" + direct + "/"})
	if err != nil {
		t.Fatal(err)
	}
	formats := map[string]int{}
	for _, o := range page.Objects {
		formats[path.Ext(o.Key)]++
	}
	for _, ext := range []string{".jpg", ".webp", ".avif"} {
		if formats[ext] == 0 {
			t.Errorf("no %s rendition in the assets bucket (have %v)", ext, formats)
		}
	}
}

// TestMain runs the tests, or, with envRunMain=1 in the environment, runs
// as `tally` itself for the tests that start worker processes. The tests
// on moto share one set of test credentials, set here once so that they
// can run in parallel (t.Setenv forbids that).
func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
	}
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": awstest.Region} {
		os.Setenv(k, v)
	}
	awstest.Main(m)
}

// TestAWSStartupErrors: a worker on AWS ports that cannot work stops at
// start-up with one clear error, instead of hanging on its first poll.
func TestAWSStartupErrors(t *testing.T) {
	srv := awstest.Shared(t)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{
			name: "no credentials",
			env:  map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_SERVICE_ENDPOINT": hang.URL},
			args: []string{"-items", "dynamodb://receipts?endpoint=" + srv.Endpoint},
			want: "no AWS credentials",
		},
		{
			name: "not a region",
			env:  map[string]string{"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "useast1"},
			args: []string{"-items", "dynamodb://receipts?endpoint=" + srv.Endpoint},
			want: `"useast1" is not an AWS region`,
		},
		{
			name: "table missing in this region",
			env:  map[string]string{"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "eu-west-3"},
			args: []string{"-items", "dynamodb://no-such-table?endpoint=" + srv.Endpoint},
			want: "no-such-table",
		},
		{
			name: "queues not deployed",
			env:  map[string]string{"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"},
			args: []string{"-queue", "sqs://not-deployed-?endpoint=" + srv.Endpoint},
			want: "not-deployed-ocr-jobs",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
			t.Setenv("AWS_PROFILE", "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := append([]string{"worker", "-role", "compact", "-data", t.TempDir()}, tc.args...)
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			code := run(ctx, args, &out, &errb)
			if code == 0 || ctx.Err() != nil {
				t.Fatalf("exit %d (ctx %v), want a start-up failure; stderr %s", code, ctx.Err(), errb.String())
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q does not say %q", errb.String(), tc.want)
			}
		})
	}
}
