package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/blob"
	blobfile "github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/compaction"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/upload"
	"github.com/tallyhq/tally/vector"
)

// startServe runs serve on a temp data directory and returns its address.
func startServe(t *testing.T) (config.Config, string) {
	t.Helper()
	cfg, err := config.Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0"}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- serve(ctx, cfg, log, func(a string) { addrc <- a }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(waitfor.Stall):
			t.Errorf("serve did not stop within %v", waitfor.Stall)
		}
	})
	select {
	case addr := <-addrc:
		return cfg, addr
	case err := <-done:
		t.Fatalf("serve returned early: %v", err)
	case <-time.After(waitfor.Stall):
		t.Fatalf("serve did not start within %v", waitfor.Stall)
	}
	return cfg, ""
}

// TestServeCompactsAndSearches: deltas written by another process (here, the
// test through its own ports on the same data directory) are searchable at
// once, and serve's compactor merges them into version 1 on its message.
func TestServeCompactsAndSearches(t *testing.T) {
	t.Parallel()
	cfg, addr := startServe(t)
	ctx := context.Background()
	e, err := openEnv(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	texts := []string{"COSTCO WHOLESALE #1024", "GRAND TOTAL 41.07", "KIRKLAND SIGNATURE WATER"}
	vecs, err := e.ports.Embedder.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	var recs []vector.Record
	for i, text := range texts {
		recs = append(recs, vector.Record{
			ID:     fmt.Sprintf("IMAGE#img-1#RECEIPT#00001#LINE#%05d", i+1),
			Vector: vecs[i],
			Meta:   map[string]any{"text": text, "merchant_name": "COSTCO"},
		})
	}
	if _, err := e.store.WriteDelta(ctx, vector.CollectionLines, "run-1", recs, nil); err != nil {
		t.Fatal(err)
	}

	search := func(q string, where ...string) pipeline.SearchResponse {
		t.Helper()
		v := url.Values{"q": {q}, "k": {"2"}, "where": where}
		resp, err := http.Get("http://" + addr + "/search?" + v.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sr pipeline.SearchResponse
		if err := json.NewDecoder(resp.Body).Decode(&sr); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("search %q: %d %v", q, resp.StatusCode, err)
		}
		return sr
	}
	// The server's readers refresh at most once a second: wait until
	// search sees the delta.
	var sr pipeline.SearchResponse
	waitfor.True(t, "search to see the delta", func() bool {
		sr = search("grand total")
		return sr.PendingDeltas > 0
	})
	if sr.Version != 0 || sr.PendingDeltas != 1 || len(sr.Results) == 0 || sr.Results[0].Text != "GRAND TOTAL 41.07" {
		t.Fatalf("before compaction: %+v", sr)
	}

	run := compaction.Run{RunID: "run-1", ImageID: "img-1", ReceiptID: 1, Collections: []string{vector.CollectionLines}}
	if err := compaction.CreateRun(ctx, e.ports.Items, run); err != nil {
		t.Fatal(err)
	}
	if err := compaction.Enqueue(ctx, e.queues.Compaction, run.Message()); err != nil {
		t.Fatal(err)
	}
	waitfor.True(t, "serve's compactor to complete the run", func() bool {
		r, err := compaction.GetRun(ctx, e.ports.Items, "img-1", 1, "run-1")
		if err != nil {
			t.Fatal(err)
		}
		return r.Status == compaction.StatusCompleted
	})
	waitfor.True(t, "search to see the compacted version", func() bool {
		sr = search("grand total", "merchant_name=COSTCO")
		return sr.Version > 0
	})
	if sr.Version != 1 || sr.PendingDeltas != 0 || len(sr.Results) != 2 || sr.Results[0].Text != "GRAND TOTAL 41.07" {
		t.Fatalf("after compaction: %+v", sr)
	}
	if sr := search("grand total", "merchant_name=TARGET"); len(sr.Results) != 0 {
		t.Fatalf("filter ignored: %+v", sr)
	}
}

func TestSearchHTTPBadInput(t *testing.T) {
	t.Parallel()
	_, addr := startServe(t)
	for _, q := range []string{"q=", "q=x&k=0", "q=x&k=abc", "q=x&collection=Bad/Name", "q=x&where=novalue"} {
		resp, err := http.Get("http://" + addr + "/search?" + q)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || body["error"] == "" {
			t.Errorf("GET /search?%s: %d %v, want 400 with an error", q, resp.StatusCode, body)
		}
	}
}

// TestServeUploadOCR: a real receipt uploaded with `tally upload -wait`
// comes out of serve's OCR worker COMPLETED with its printed total in the
// result; a file that is not an image is refused while serve keeps serving.
func TestServeUploadOCR(t *testing.T) {
	t.Parallel()
	cfg, addr := startServe(t)
	img := fixtures.Path(t, "sroie", "img", "000.jpg")
	key, err := os.ReadFile(fixtures.Path(t, "sroie", "key", "000.json"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Total string `json:"total"`
	}
	if err := json.Unmarshal(key, &k); err != nil || k.Total == "" {
		t.Fatalf("key: %v", err)
	}
	server := "http://" + addr
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"upload", "-server", server, "-wait", "-timeout", waitfor.Stall.String(), img}, &out, &errb); code != 0 {
		t.Fatalf("tally upload = %d: %s %s", code, out.String(), errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("output = %q, want the image id then its status", out.String())
	}
	var st upload.Status
	if err := json.Unmarshal([]byte(lines[1]), &st); err != nil {
		t.Fatal(err)
	}
	if st.OCRStatus != "COMPLETED" || st.ReceiptCount < 1 || len(st.Receipts) != st.ReceiptCount || !strings.Contains(lines[0], st.ImageID) {
		t.Fatalf("status = %+v", st)
	}
	bs, err := blobfile.Open(filepath.Join(cfg.DataDir, "blobs"), blobfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := blob.ReadAll(context.Background(), bs, st.ResultKey)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), k.Total) {
		t.Errorf("OCR result lacks the total %s", k.Total)
	}

	// The process stage picks the result up: GET /images/{id} and tally
	// export return its entities, and search finds its text.
	var exp struct {
		Images       []map[string]any `json:"images"`
		Lines        []map[string]any `json:"lines"`
		Receipts     []map[string]any `json:"receipts"`
		ReceiptWords []map[string]any `json:"receipt_words"`
	}
	waitfor.True(t, "image "+st.ImageID+" processed", func() bool {
		resp, err := http.Get(server + "/images/" + st.ImageID)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return false
		}
		if err := json.Unmarshal(body, &exp); err != nil {
			t.Fatal(err)
		}
		return len(exp.Receipts) > 0
	})
	if len(exp.Images) != 1 || len(exp.Lines) == 0 || len(exp.ReceiptWords) == 0 {
		t.Errorf("export: %d images, %d lines, %d receipt words", len(exp.Images), len(exp.Lines), len(exp.ReceiptWords))
	}
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"export", "-data", cfg.DataDir, st.ImageID}, &out, &errb); code != 0 || !strings.Contains(out.String(), `"receipt_letters"`) {
		t.Errorf("tally export = %d: %s", code, errb.String())
	}
	// Search finds the receipt's row holding its total, restricted to it.
	var sr pipeline.SearchResponse
	q := url.Values{"q": {"TOTAL " + k.Total}, "collection": {"lines"}, "k": {"3"}, "where": {"image_id=" + st.ImageID}}
	sresp, err := http.Get(server + "/search?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(sresp.Body).Decode(&sr)
	sresp.Body.Close()
	if len(sr.Results) == 0 || !strings.Contains(sr.Results[0].ID, "IMAGE#"+st.ImageID+"#RECEIPT#00001#LINE#") {
		t.Errorf("search for the total: %+v", sr)
	}
	resp, err := http.Get(server + "/images/" + "no-such-image")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown image: %d, want 404", resp.StatusCode)
	}

	// Not an image: refused with the reason; the server still serves.
	bad := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(bad, []byte("just text"), 0o644)
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"upload", "-server", server, bad}, &out, &errb); code == 0 || !strings.Contains(out.String(), "refused") {
		t.Errorf("uploading text = %d: %s %s", code, out.String(), errb.String())
	}
	resp, err = http.Get(server + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz after bad upload = %d", resp.StatusCode)
	}
}
