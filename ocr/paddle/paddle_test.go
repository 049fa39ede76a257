package paddle_test

import (
	"context"
	"errors"
	"image"
	"image/draw"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/onnxrt"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocr/ocrtest"
	"github.com/tallyhq/tally/ocr/paddle"
)

// shared is one engine for the tests that only read: loading the models
// takes about a second.
var shared struct {
	once sync.Once
	e    *paddle.Engine
	err  error
}

func newEngine(t *testing.T) *paddle.Engine {
	t.Helper()
	dir := fixtures.PaddleDir(t)
	shared.once.Do(func() { shared.e, shared.err = paddle.New(paddle.Options{Dir: dir}) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.e
}

// modelDir is a copy of the model directory (links to its files) that a
// test may break.
func modelDir(t *testing.T) string {
	t.Helper()
	src := fixtures.PaddleDir(t)
	dst := t.TempDir()
	for _, f := range []string{paddle.LibraryFile, paddle.DetectorFile, paddle.RecognizerFile, paddle.ClassifierFile, paddle.DictionaryFile} {
		if err := os.Symlink(filepath.Join(src, f), filepath.Join(dst, f)); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// wrongArch copies a shared library of this machine with its ELF machine
// field changed, which is what a library built for another architecture
// looks like to the loader.
func wrongArch(t *testing.T, lib string) []byte {
	t.Helper()
	data, err := os.ReadFile(lib)
	if err != nil {
		t.Fatal(err)
	}
	machine := data[18]
	if machine == 183 { // EM_AARCH64 → EM_X86_64
		data[18] = 62
	} else {
		data[18] = 183
	}
	data[19] = 0
	return data
}

func TestNewRefusesBrokenInstallations(t *testing.T) {
	t.Parallel()
	libm := ""
	for _, p := range []string{"/lib/x86_64-linux-gnu/libm.so.6", "/lib/aarch64-linux-gnu/libm.so.6", "/usr/lib64/libm.so.6", "/lib64/libm.so.6"} {
		if _, err := os.Stat(p); err == nil {
			libm = p
			break
		}
	}
	tests := []struct {
		name    string
		breakIt func(t *testing.T, dir string)
		opts    func(o *paddle.Options)
		want    error
		says    string
	}{
		{name: "no directory", breakIt: func(t *testing.T, dir string) { os.RemoveAll(dir) }, says: "lacks " + paddle.LibraryFile},
		{name: "model missing", breakIt: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, paddle.RecognizerFile)) }, says: "lacks " + paddle.RecognizerFile},
		{name: "classifier missing when asked for", breakIt: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, paddle.ClassifierFile)) },
			opts: func(o *paddle.Options) { o.AngleClassifier = true }, says: paddle.ClassifierFile},
		{name: "corrupt detector", breakIt: func(t *testing.T, dir string) {
			replace(t, filepath.Join(dir, paddle.DetectorFile), []byte("this is not an ONNX model"))
		}, want: onnxrt.ErrModel, says: paddle.DetectorFile},
		{name: "truncated recognizer", breakIt: func(t *testing.T, dir string) {
			data, err := os.ReadFile(filepath.Join(fixtures.PaddleDir(t), paddle.RecognizerFile))
			if err != nil {
				t.Fatal(err)
			}
			replace(t, filepath.Join(dir, paddle.RecognizerFile), data[:len(data)/2])
		}, want: onnxrt.ErrModel, says: paddle.RecognizerFile},
		{name: "models swapped", breakIt: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, paddle.DetectorFile))
			os.Symlink(filepath.Join(fixtures.PaddleDir(t), paddle.RecognizerFile), filepath.Join(dir, paddle.DetectorFile))
		}, says: "detector"},
		{name: "dictionary of another model", breakIt: func(t *testing.T, dir string) {
			replace(t, filepath.Join(dir, paddle.DictionaryFile), []byte("a\nb\nc\n"))
		}, says: "dictionary of 3 characters"},
		{name: "empty dictionary", breakIt: func(t *testing.T, dir string) {
			replace(t, filepath.Join(dir, paddle.DictionaryFile), nil)
		}, says: "empty"},
		{name: "library of another architecture", breakIt: func(t *testing.T, dir string) {
			replace(t, filepath.Join(dir, paddle.LibraryFile), wrongArch(t, filepath.Join(fixtures.PaddleDir(t), paddle.LibraryFile)))
		}, want: onnxrt.ErrLibrary, says: paddle.LibraryFile},
		{name: "not ONNX Runtime", breakIt: func(t *testing.T, dir string) {
			if libm == "" {
				t.Fatal("no libm.so.6 found to stand in for a foreign library")
			}
			os.Remove(filepath.Join(dir, paddle.LibraryFile))
			os.Symlink(libm, filepath.Join(dir, paddle.LibraryFile))
		}, want: onnxrt.ErrLibrary, says: "OrtGetApiBase"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := modelDir(t)
			tt.breakIt(t, dir)
			opts := paddle.Options{Dir: dir}
			if tt.opts != nil {
				tt.opts(&opts)
			}
			e, err := paddle.New(opts)
			if err == nil {
				e.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, ocr.ErrEngine) {
				t.Errorf("error %v is not ocr.ErrEngine", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v is not %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not mention %q", err, tt.says)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	if err := paddle.Check(fixtures.PaddleDir(t), true); err != nil {
		t.Errorf("installed models: %v", err)
	}
	if err := paddle.Check("", false); !errors.Is(err, ocr.ErrEngine) {
		t.Errorf("no directory: %v", err)
	}
	err := paddle.Check(t.TempDir(), false)
	if !errors.Is(err, ocr.ErrEngine) || !strings.Contains(err.Error(), "make deps-ocr") {
		t.Errorf("empty directory: %v, want a hint to run make deps-ocr", err)
	}
}

// TestTallReceipt reads a 20,000-pixel-tall receipt: the detector's input
// is scaled to its bounds, so it neither fails nor fills memory, and the
// text at both ends is still found.
func TestTallReceipt(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	head, _ := fixtures.TextImage([]string{"TOTAL 12.50"}, 4)
	hb := head.Bounds()
	tall := image.NewGray(image.Rect(0, 0, hb.Dx(), 20_000))
	draw.Draw(tall, tall.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(tall, hb, head, image.Point{}, draw.Src)
	draw.Draw(tall, hb.Add(image.Pt(0, 20_000-hb.Dy())), head, image.Point{}, draw.Src)
	lines, err := e.Recognize(context.Background(), tall)
	if err != nil {
		t.Fatalf("Recognize: %v", err)
	}
	if err := (&ocr.Result{Lines: lines}).Validate(); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(texts(lines), "TOTAL 12.50") {
		t.Errorf("lines %q lack TOTAL 12.50", texts(lines))
	}
}

func TestReadsSROIEReceipt(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	img := fixtures.DecodeImage(t, fixtures.Path(t, "sroie", "img", "000.jpg"))
	lines, err := e.Recognize(context.Background(), img)
	if err != nil {
		t.Fatalf("Recognize: %v", err)
	}
	text := strings.Join(texts(lines), "\n")
	for _, want := range []string{"25/12/2018", "9.00", "TAMAN DAYA", "JOHOR", "CASH BILL"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if !strings.HasPrefix(e.Name(), "paddleocr PP-OCRv4 (onnxruntime 1.") {
		t.Errorf("Name() = %q", e.Name())
	}
	if tm := e.Times(); tm.Images == 0 || tm.Detect <= 0 || tm.Recognize <= 0 {
		t.Errorf("Times() = %+v after reading an image", tm)
	}
}

func texts(lines []ocr.Line) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Text)
	}
	return out
}

func TestConformance(t *testing.T) {
	t.Parallel()
	ocrtest.RunEngine(t, func(t *testing.T) ocr.Engine { return newEngine(t) }, ocrtest.Features{ErrEmptyImage: paddle.ErrEmptyImage, TextScale: 2})
}
