package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/pipeline"
)

func TestHelpListsSubcommands(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	for _, c := range commands() {
		if !strings.Contains(out.String(), "  "+c.name+" ") {
			t.Errorf("help does not list %q:\n%s", c.name, out.String())
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "tally ") {
		t.Errorf("version output %q", out.String())
	}
}

func TestBadInvocations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{args: nil, wantCode: 2, wantErr: "Usage"},
		{args: []string{"frobnicate"}, wantCode: 2, wantErr: `unknown command "frobnicate"`},
		{args: []string{"serve", "-no-such-flag"}, wantCode: 2, wantErr: "no-such-flag"},
		{args: []string{"serve", "extra"}, wantCode: 2, wantErr: "unexpected arguments"},
		{args: []string{"serve", "-log", "xml"}, wantCode: 2, wantErr: "log format"},
		{args: []string{"serve", "-rendition-sizes", "300,big"}, wantCode: 2, wantErr: `rendition size "big"`},
		{args: []string{"serve", "-rendition-sizes", "-300"}, wantCode: 2, wantErr: "rendition size"},
		{args: []string{"serve", "-data", "DATA", "-queue", "kafka://x", "-addr", "127.0.0.1:0"}, wantCode: 1, wantErr: "unknown scheme"},
		{args: []string{"serve", "-data", "DATA", "-embedder", "hashed://abc", "-addr", "127.0.0.1:0"}, wantCode: 1, wantErr: "dimensions"},
		{args: []string{"serve", "-data", "DATA", "-embedder", "hashed://3", "-addr", "127.0.0.1:0"}, wantCode: 1, wantErr: "dimensions"},
		{args: []string{"serve", "-data", "DATA", "-embedder", "openai://text-embedding-3-small?bogus=1", "-addr", "127.0.0.1:0"}, wantCode: 1, wantErr: "bogus"},
		{args: []string{"serve", "-data", "DATA", "-embedder", "openai://some-local-model?base=http%3A%2F%2F127.0.0.1%3A1%2Fv1", "-addr", "127.0.0.1:0"}, wantCode: 1, wantErr: "no known vector length"},
		{args: []string{"search", "-data", "DATA"}, wantCode: 2, wantErr: "no query text"},
		{args: []string{"search", "-data", "DATA", "-where", "novalue", "total"}, wantCode: 2, wantErr: "field=value"},
		{args: []string{"search", "-data", "DATA", "-k", "0", "total"}, wantCode: 2, wantErr: "k = 0"},
		{args: []string{"worker", "-data", "DATA", "-role", "frobnicate"}, wantCode: 2, wantErr: "-role"},
		{args: []string{"worker", "-data", "DATA", "-role", "ocr", "-ocr-engine", "tesseract", "-tesseract", "/nonexistent/tesseract"}, wantCode: 1, wantErr: "install tesseract-ocr"},
		{args: []string{"worker", "-data", "DATA", "-role", "ocr", "-ocr-engine", "paddle", "-paddle-dir", "/nonexistent"}, wantCode: 1, wantErr: "make deps-ocr"},
		// auto falls back to Tesseract; with neither, both reasons are given
		{args: []string{"worker", "-data", "DATA", "-role", "ocr", "-paddle-dir", "/nonexistent", "-tesseract", "/nonexistent/tesseract"}, wantCode: 1, wantErr: "PaddleOCR is not available either"},
		{args: []string{"worker", "-data", "DATA", "-role", "ocr", "-ocr-engine", "easyocr"}, wantCode: 2, wantErr: `OCR engine "easyocr"`},
		{args: []string{"worker", "-data", "DATA", "-role", "ocr", "-ocr-threads", "-1"}, wantCode: 2, wantErr: "OCR threads"},
		{args: []string{"upload", "-server", "http://127.0.0.1:1"}, wantCode: 2, wantErr: "no files"},
		{args: []string{"upload", "-server", "http://127.0.0.1:1", "/nonexistent/a.jpg"}, wantCode: 1, wantErr: "no such file"},
		{args: []string{"submit-ocr", "-server", "http://127.0.0.1:1", "a.jpg"}, wantCode: 2, wantErr: "IMAGE RESULT.json"},
	}
	for _, tt := range tests {
		args := make([]string, len(tt.args))
		for i, a := range tt.args {
			args[i] = strings.ReplaceAll(a, "DATA", t.TempDir())
		}
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb)
		if code != tt.wantCode || !strings.Contains(errb.String(), tt.wantErr) {
			t.Errorf("tally %q: exit %d stderr %q; want exit %d containing %q", tt.args, code, errb.String(), tt.wantCode, tt.wantErr)
		}
	}
}

// TestServeHealthz starts the real server on embedded backends in a temp
// directory and checks /healthz reports every port and queue.
func TestServeHealthz(t *testing.T) {
	t.Parallel()
	_, addr := startServe(t)

	code, h := getHealth(t, addr)
	if code != http.StatusOK || h.Status != "ok" {
		t.Fatalf("healthz %d %+v", code, h)
	}
	for _, q := range []string{pipeline.QueueOCRJobs, pipeline.QueueOCRResults, pipeline.QueueCompaction} {
		if _, ok := h.Queues[q]; !ok {
			t.Errorf("healthz does not report queue %s: %+v", q, h.Queues)
		}
	}
	for _, check := range []string{"blob", "items", "queue " + pipeline.QueueOCRJobs} {
		if h.Checks[check] != "ok" {
			t.Errorf("check %s = %q, want ok", check, h.Checks[check])
		}
	}
	if h.Vectors.Mode != "s3" || h.Vectors.Embedder == "" {
		t.Errorf("healthz vectors = %+v, want the storage mode and embedder", h.Vectors)
	}
	// The OCR worker starts beside the server and reports the engine auto
	// chose: PaddleOCR, which make test installs.
	fixtures.PaddleDir(t)
	waitfor.True(t, "healthz to report the OCR engine", func() bool {
		_, h = getHealth(t, addr)
		return h.OCR != nil
	})
	if !strings.HasPrefix(h.OCR.Engine, "paddleocr") || !strings.Contains(h.OCR.Reason, "auto: PaddleOCR found") {
		t.Errorf("healthz ocr = %+v, want PaddleOCR chosen by auto", h.OCR)
	}
}

// getHealth fetches /healthz: its status code and body.
func getHealth(t *testing.T, addr string) (int, health) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, h
}
