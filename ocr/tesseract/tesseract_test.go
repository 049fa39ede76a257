package tesseract

import (
	"context"
	"errors"
	"image"
	"image/draw"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocr/ocrtest"
)

// newEngine returns an engine on the installed tesseract. Tesseract is a
// required test tool (make test installs it), so its absence fails.
func newEngine(tb testing.TB, opts Options) *Engine {
	tb.Helper()
	if _, err := exec.LookPath(DefaultBinary); err != nil {
		tb.Fatalf("tesseract not installed (make deps-ocr installs it): %v", err)
	}
	e, err := New(opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return e
}

func TestNew(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	if !strings.HasPrefix(e.Name(), "tesseract 5.") {
		t.Errorf("Name() = %q, want the tesseract version line", e.Name())
	}
	if e.opts.PSM != DefaultPSM || e.opts.Languages != "eng" || e.opts.Threads != 1 {
		t.Errorf("defaults = %+v", e.opts)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
	}{
		{"missing binary", Options{Binary: "/nonexistent/tesseract"}},
		{"binary that is not tesseract", Options{Binary: "false"}},
		{"language not installed", Options{Languages: "eng+xyz"}},
		{"page segmentation mode out of range", Options{PSM: 14}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.opts.Binary == "" {
				if _, err := exec.LookPath(DefaultBinary); err != nil {
					t.Fatal("tesseract not installed (make deps-ocr installs it)")
				}
			}
			e, err := New(tt.opts)
			if !errors.Is(err, ocr.ErrEngine) {
				t.Fatalf("New(%+v) = %v, %v; want an error wrapping ocr.ErrEngine", tt.opts, e, err)
			}
			t.Log(err)
		})
	}
}

// TestConformance runs the ocr.Engine suite that every backend passes.
func TestConformance(t *testing.T) {
	t.Parallel()
	ocrtest.RunEngine(t, func(t *testing.T) ocr.Engine { return newEngine(t, Options{}) },
		ocrtest.Features{ErrEmptyImage: ErrEmptyImage})
}

// TestRecognizeCancelledWhileRunning cancels a call once tesseract has
// started: the child is killed and the error is the context's, not an
// engine failure. (A context done before the call is in the suite.)
func TestRecognizeCancelledWhileRunning(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	img := fixtures.DecodeImage(t, fixtures.Path(t, "portfolio", "costco_wholesale.real.png"))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := e.Recognize(ctx, img)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Recognize = %v, want context.Canceled", err)
	}
	if errors.Is(err, ocr.ErrEngine) {
		t.Errorf("cancellation reported as an engine failure: %v", err)
	}
}

// fakeTesseract writes a shell script that answers the start-up probes like
// tesseract and does body for anything else.
func fakeTesseract(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tesseract")
	script := `#!/bin/sh
case "$1" in
--version) echo "tesseract 9.9.9"; exit 0;;
--list-langs) printf 'List of available languages in "/x/" (1):\neng\n'; exit 0;;
esac
` + body + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRecognizeEngineFailures(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh for the fake tesseract")
	}
	img := image.NewGray(image.Rect(0, 0, 10, 10))
	tests := []struct {
		name       string
		body       string
		wantInText string
	}{
		{"crash", `echo "Error opening data file eng.traineddata" >&2; exit 1`, "eng.traineddata"},
		{"garbage output", `cat >/dev/null; echo "<html><body <<<"`, "parse hOCR"},
		{"long stderr keeps the tail", `i=0; while [ $i -lt 500 ]; do echo "noise line $i" >&2; i=$((i+1)); done; echo "the real cause" >&2; exit 3`, "the real cause"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := New(Options{Binary: fakeTesseract(t, tt.body)})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if e.Name() != "tesseract 9.9.9" {
				t.Errorf("Name() = %q", e.Name())
			}
			_, err = e.Recognize(context.Background(), img)
			if !errors.Is(err, ocr.ErrEngine) || !strings.Contains(err.Error(), tt.wantInText) {
				t.Fatalf("Recognize = %v, want ocr.ErrEngine mentioning %q", err, tt.wantInText)
			}
			if len(err.Error()) > stderrTail+200 {
				t.Errorf("error message is %d bytes, want stderr capped", len(err.Error()))
			}
		})
	}
}

func TestRecognizeKillsHungEngine(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep for the fake tesseract")
	}
	e, err := New(Options{Binary: fakeTesseract(t, "exec sleep 60")})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := e.Recognize(ctx, image.NewGray(image.Rect(0, 0, 10, 10))); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Recognize = %v, want context.DeadlineExceeded", err)
	}
}

func TestArgs(t *testing.T) {
	t.Parallel()
	e := &Engine{opts: Options{Languages: "eng+deu", PSM: 6, DPI: 300, TessdataDir: "/opt/tessdata"}}
	got := strings.Join(e.args(), " ")
	want := "stdin stdout --tessdata-dir /opt/tessdata -l eng+deu --psm 6 --dpi 300 -c tessedit_create_hocr=1 -c hocr_char_boxes=1"
	if got != want {
		t.Errorf("args = %q\nwant   %q", got, want)
	}
}

func TestTailBuffer(t *testing.T) {
	t.Parallel()
	tb := &tailBuffer{max: 8}
	for _, s := range []string{"abc", "defgh", "ij", "0123456789AB"} {
		if n, err := tb.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := tb.String(); got != "456789AB" {
		t.Errorf("tail = %q, want the last 8 bytes", got)
	}
	tb = &tailBuffer{max: 8}
	tb.Write([]byte("abc"))
	tb.Write([]byte("defghij"))
	if got := tb.String(); got != "cdefghij" {
		t.Errorf("tail = %q, want %q", got, "cdefghij")
	}
}

// sroieImage decodes SROIE receipt 000 for the benchmarks.
func sroieImage(b *testing.B) (string, image.Image) {
	path := fixtures.Path(b, "sroie", "img", "000.jpg")
	return path, fixtures.DecodeImage(b, path)
}

func BenchmarkRecognizeSROIE(b *testing.B) {
	e := newEngine(b, Options{})
	_, img := sroieImage(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Recognize(ctx, img); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareTesseract runs tesseract on the JPEG file directly, as a
// baseline for the adapter's overhead (PGM encoding, hOCR with letter boxes,
// parsing): "txt" is plain text output, "hocr" the adapter's output format.
func BenchmarkBareTesseract(b *testing.B) {
	if _, err := exec.LookPath(DefaultBinary); err != nil {
		b.Skip("tesseract not installed")
	}
	path, _ := sroieImage(b)
	for _, format := range []struct {
		name  string
		extra []string
	}{
		{"txt", nil},
		{"hocr", []string{"-c", "tessedit_create_hocr=1", "-c", "hocr_char_boxes=1"}},
	} {
		b.Run(format.name, func(b *testing.B) {
			args := append([]string{path, "stdout", "--psm", strconv.Itoa(DefaultPSM)}, format.extra...)
			for b.Loop() {
				cmd := exec.Command(DefaultBinary, args...)
				cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
				if out, err := cmd.Output(); err != nil || len(out) == 0 {
					b.Fatalf("tesseract: %v", err)
				}
			}
		})
	}
}

func BenchmarkEncodePGM(b *testing.B) {
	_, img := sroieImage(b)
	rgba := image.NewRGBA(img.Bounds())
	draw.Draw(rgba, rgba.Bounds(), img, img.Bounds().Min, draw.Src)
	cmyk := image.NewCMYK(img.Bounds())
	draw.Draw(cmyk, cmyk.Bounds(), img, img.Bounds().Min, draw.Src)
	for name, img := range map[string]image.Image{"ycbcr": img, "rgba": rgba, "generic": cmyk} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				encodePGM(img)
			}
		})
	}
}
