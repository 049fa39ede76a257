package tesseract

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/ocr"
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

func decodeFile(tb testing.TB, path string) image.Image {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var img image.Image
	switch filepath.Ext(path) {
	case ".png":
		img, err = png.Decode(f)
	default:
		img, err = jpeg.Decode(f)
	}
	if err != nil {
		tb.Fatalf("decode %s: %v", path, err)
	}
	return img
}

func sroieTotal(t *testing.T, n string) string {
	t.Helper()
	data, err := os.ReadFile(fixtures.Path(t, "sroie", "key", n+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var key struct {
		Total string `json:"total"`
	}
	if err := json.Unmarshal(data, &key); err != nil || key.Total == "" {
		t.Fatalf("key %s.json: total %q, %v", n, key.Total, err)
	}
	return key.Total
}

func allText(lines []ocr.Line) string {
	var texts []string
	for _, l := range lines {
		texts = append(texts, l.Text)
	}
	return strings.Join(texts, "\n")
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

func TestRecognizeFixtures(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	tests := []struct {
		name string
		path []string
		want func(t *testing.T) string
	}{
		{
			name: "costco",
			path: []string{"portfolio", "costco_wholesale.real.png"},
			want: func(*testing.T) string { return "116.99" },
		},
		{
			name: "sroie 000",
			path: []string{"sroie", "img", "000.jpg"},
			want: func(t *testing.T) string { return sroieTotal(t, "000") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			img := decodeFile(t, fixtures.Path(t, tt.path...))
			want := tt.want(t)
			lines, err := e.Recognize(context.Background(), img)
			if err != nil {
				t.Fatalf("Recognize: %v", err)
			}
			if text := allText(lines); !strings.Contains(text, want) {
				t.Errorf("text does not contain %q:\n%s", want, text)
			}
			checkParsed(t, lines)
			checkNesting(t, lines)
		})
	}
}

// checkNesting asserts that words lie in their line's box and letters in
// their word's box, up to a pixel or two of tesseract's rounding.
func checkNesting(t *testing.T, lines []ocr.Line) {
	t.Helper()
	const tol = 0.003
	inside := func(in, out ocr.BoundingBox) bool {
		return in.X >= out.X-tol && in.Y >= out.Y-tol &&
			in.X+in.Width <= out.X+out.Width+tol && in.Y+in.Height <= out.Y+out.Height+tol
	}
	for i, l := range lines {
		for _, w := range l.Words {
			if !inside(w.BoundingBox, l.BoundingBox) {
				t.Errorf("line %d %q: word %q box %+v outside line box %+v", i+1, l.Text, w.Text, w.BoundingBox, l.BoundingBox)
			}
			for _, c := range w.Letters {
				if !inside(c.BoundingBox, w.BoundingBox) {
					t.Errorf("word %q: letter %q box %+v outside word box %+v", w.Text, c.Text, c.BoundingBox, w.BoundingBox)
				}
			}
		}
	}
}

func TestRecognizeSyntheticPositions(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	img, drawn := fixtures.TextImage([]string{"TOTAL CASH", "", "VISA 1234", "CHANGE DUE"}, 4)
	lines, err := e.Recognize(context.Background(), img)
	if err != nil {
		t.Fatalf("Recognize: %v", err)
	}
	checkParsed(t, lines)
	checkNesting(t, lines)

	found := map[string]ocr.Word{}
	for _, l := range lines {
		for _, w := range l.Words {
			found[w.Text] = w
		}
	}
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	const tol = 0.03 // of the image's width or height
	for _, d := range drawn {
		got, ok := found[d.Text]
		if !ok {
			t.Errorf("word %q not recognized; got %q", d.Text, allText(lines))
			continue
		}
		// The drawn box in normalized coordinates (y flipped).
		want := ocr.NewGeometry(ocr.Quad{
			TopLeft:     ocr.FromPixel(float64(d.Box.Min.X), float64(d.Box.Min.Y), w, h),
			TopRight:    ocr.FromPixel(float64(d.Box.Max.X), float64(d.Box.Min.Y), w, h),
			BottomRight: ocr.FromPixel(float64(d.Box.Max.X), float64(d.Box.Max.Y), w, h),
			BottomLeft:  ocr.FromPixel(float64(d.Box.Min.X), float64(d.Box.Max.Y), w, h),
		}, 1).BoundingBox
		gb := got.BoundingBox
		if math.Abs(gb.X-want.X) > tol || math.Abs(gb.Y-want.Y) > tol ||
			math.Abs(gb.Width-want.Width) > tol || math.Abs(gb.Height-want.Height) > tol {
			t.Errorf("word %q at %+v, drawn at %+v", d.Text, gb, want)
		}
	}
}

// rotate turns src by deg degrees counter-clockwise about its centre
// (nearest neighbour, white outside).
func rotate(src *image.Gray, deg float64) *image.Gray {
	b := src.Bounds()
	dst := image.NewGray(b)
	sin, cos := math.Sincos(deg * math.Pi / 180)
	cx, cy := float64(b.Dx())/2, float64(b.Dy())/2
	for y := range b.Dy() {
		for x := range b.Dx() {
			// Counter-clockwise on screen is clockwise in y-down pixel
			// space; invert it to find the source pixel.
			dx, dy := float64(x)-cx, float64(y)-cy
			sx, sy := int(math.Round(cx+dx*cos-dy*sin)), int(math.Round(cy+dx*sin+dy*cos))
			c := color.Gray{Y: 255}
			if image.Pt(sx, sy).In(b) {
				c = src.GrayAt(sx, sy)
			}
			dst.SetGray(x, y, c)
		}
	}
	return dst
}

func TestRecognizeTiltedLineAngle(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	text, _ := fixtures.TextImage([]string{"SUBTOTAL 18.75 TAX 1.50 TOTAL 20.25"}, 3)
	// Pad to a square so normalized angles equal pixel angles.
	side := text.Bounds().Dx()
	square := image.NewGray(image.Rect(0, 0, side, side))
	draw.Draw(square, square.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(square, text.Bounds().Add(image.Pt(0, (side-text.Bounds().Dy())/2)), text, image.Point{}, draw.Src)

	for _, deg := range []float64{3, -3} {
		lines, err := e.Recognize(context.Background(), rotate(square, deg))
		if err != nil {
			t.Fatalf("Recognize: %v", err)
		}
		checkParsed(t, lines)
		checkNesting(t, lines)
		var longest ocr.Line
		for _, l := range lines {
			if len(l.Words) > len(longest.Words) {
				longest = l
			}
		}
		if len(longest.Words) < 3 {
			t.Fatalf("rotated %g°: no line of several words in %q", deg, allText(lines))
		}
		t.Logf("rotated %g°: line %q at %.2f°", deg, longest.Text, longest.AngleDegrees)
		if math.Abs(longest.AngleDegrees-deg) > 1 {
			t.Errorf("rotated %g°: line %q angle %.2f°", deg, longest.Text, longest.AngleDegrees)
		}
		for _, w := range longest.Words {
			if math.Abs(w.AngleDegrees-deg) > 1 {
				t.Errorf("rotated %g°: word %q angle %.2f°", deg, w.Text, w.AngleDegrees)
			}
		}
	}
}

func TestRecognizeNoText(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	white := image.NewGray(image.Rect(0, 0, 300, 200))
	draw.Draw(white, white.Bounds(), image.White, image.Point{}, draw.Src)
	tiny := image.NewRGBA(image.Rect(5, 5, 6, 6)) // one transparent pixel
	for name, img := range map[string]image.Image{"blank white": white, "one pixel": tiny} {
		lines, err := e.Recognize(context.Background(), img)
		if err != nil || len(lines) != 0 {
			t.Errorf("%s: Recognize = %d lines, %v; want none and no error", name, len(lines), err)
		}
	}
}

func TestRecognizeEmptyImage(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	for name, img := range map[string]image.Image{
		"0×0":   image.NewGray(image.Rect(0, 0, 0, 0)),
		"10×0":  image.NewRGBA(image.Rect(0, 0, 10, 0)),
		"nil":   nil,
		"empty": image.NewGray(image.Rectangle{}),
	} {
		if _, err := e.Recognize(context.Background(), img); !errors.Is(err, ErrEmptyImage) {
			t.Errorf("%s: Recognize error = %v, want ErrEmptyImage", name, err)
		}
	}
}

func TestRecognizeCancelled(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	img := decodeFile(t, fixtures.Path(t, "portfolio", "costco_wholesale.real.png"))

	t.Run("before the call", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := e.Recognize(ctx, img); !errors.Is(err, context.Canceled) {
			t.Errorf("Recognize = %v, want context.Canceled", err)
		}
	})
	t.Run("while tesseract runs", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := e.Recognize(ctx, img)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Recognize = %v, want context.Canceled", err)
		}
		if errors.Is(err, ocr.ErrEngine) {
			t.Errorf("cancellation reported as an engine failure: %v", err)
		}
	})
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
	return path, decodeFile(b, path)
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
