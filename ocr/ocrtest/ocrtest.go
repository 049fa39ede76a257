// Package ocrtest is the conformance suite of ocr.Engine: every backend's
// tests call RunEngine, so that what the rest of Tally relies on (geometry,
// reading order, errors, cancellation, concurrency) is checked once and holds
// for every engine alike.
package ocrtest

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/jpeg" // the SROIE scans
	_ "image/png"  // the portfolio receipts
	"math"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/sroie"
	"github.com/tallyhq/tally/ocr"
)

// Features says what a backend can do, so the suite checks only what applies.
type Features struct {
	// PositionTolerance is how far (fraction of image width/height) a
	// word's box may be from where it was drawn; 0 means 0.03.
	PositionTolerance float64
	// TextScale is how much the suite's bitmap-font text is enlarged
	// (nearest neighbour); 0 means 4, which Tesseract needs. PaddleOCR
	// reads the same words at 2, but misreads the blocky steps of 4×
	// pixels ("CHAHGE"), which no printer makes.
	TextScale int
	// ErrEmptyImage is the backend's error for an image without pixels.
	// Each backend has its own sentinel; when set, the suite checks that
	// empty input wraps it, so callers can rely on errors.Is.
	ErrEmptyImage error
}

// defaultPositionTolerance is a few pixels of a small receipt: engines pad
// or trim ink boxes differently.
const defaultPositionTolerance = 0.03

// defaultTextScale enlarges the suite's text enough for Tesseract.
const defaultTextScale = 4

// drawnLines is the synthetic receipt: separate rows of known words, with a
// blank row that must not become a line.
var drawnLines = []string{"TOTAL CASH", "", "VISA 1234", "CHANGE DUE"}

// RunEngine runs the suite against the engine newEngine makes. newEngine is
// called once, with t, and every subtest shares that engine, in parallel:
// an Engine must be safe for concurrent use, and loading models per subtest
// would be slow. newEngine should fail t if the engine cannot be made and
// release it with t.Cleanup, which runs after every subtest has finished.
// The real-receipt subtests skip when the shared fixtures are absent.
func RunEngine(t *testing.T, newEngine func(t *testing.T) ocr.Engine, f Features) {
	e := newEngine(t)
	if f.PositionTolerance == 0 {
		f.PositionTolerance = defaultPositionTolerance
	}
	if f.TextScale == 0 {
		f.TextScale = defaultTextScale
	}
	tests := []struct {
		name string
		run  func(*testing.T, ocr.Engine, Features)
	}{
		{"Name", testName},
		{"DrawnText", testDrawnText},
		{"TiltedText", testTiltedText},
		{"RealReceipts", testRealReceipts},
		{"NoText", testNoText},
		{"EmptyImage", testEmptyImage},
		{"DoneContext", testDoneContext},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, e, f)
		})
	}
}

// recognize runs e on img and fails t on an error.
func recognize(t *testing.T, e ocr.Engine, img image.Image) []ocr.Line {
	t.Helper()
	lines, err := e.Recognize(context.Background(), img)
	if err != nil {
		t.Fatalf("Recognize: %v", err)
	}
	return lines
}

// testName: results and logs record which engine produced them.
func testName(t *testing.T, e ocr.Engine, _ Features) {
	if strings.TrimSpace(e.Name()) == "" {
		t.Errorf("Name() = %q, want the engine and its version", e.Name())
	}
}

// testDrawnText reads text of known content and position once and checks
// the result from several sides.
func testDrawnText(t *testing.T, e ocr.Engine, f Features) {
	img, drawn := fixtures.TextImage(drawnLines, f.TextScale)
	lines := recognize(t, e, img)

	t.Run("Structure", func(t *testing.T) {
		t.Parallel()
		checkStructure(t, lines)
	})
	t.Run("Positions", func(t *testing.T) {
		t.Parallel()
		checkPositions(t, lines, drawn, img.Bounds(), f.PositionTolerance)
	})
	t.Run("TopToBottom", func(t *testing.T) {
		t.Parallel()
		var want []string
		for _, l := range drawnLines {
			if l != "" {
				want = append(want, l)
			}
		}
		if got := texts(lines); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("lines = %q, want %q, one per drawn row, top to bottom", got, want)
		}
		for i := 1; i < len(lines); i++ {
			if above, below := lines[i-1].Center().Y, lines[i].Center().Y; below >= above {
				t.Errorf("line %d %q (y %.3f) is not below line %d %q (y %.3f)",
					i+1, lines[i].Text, below, i, lines[i-1].Text, above)
			}
		}
	})
}

// checkPositions asserts that every drawn word was read, with its box
// within tol of its ink box (a fraction of the image's width or height).
func checkPositions(t *testing.T, lines []ocr.Line, drawn []fixtures.DrawnWord, bounds image.Rectangle, tol float64) {
	t.Helper()
	found := map[string]ocr.Word{}
	for _, l := range lines {
		for _, w := range l.Words {
			found[w.Text] = w
		}
	}
	w, h := bounds.Dx(), bounds.Dy()
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
			t.Errorf("word %q at %+v, drawn at %+v (tolerance %g)", d.Text, gb, want, tol)
		}
	}
}

// testTiltedText reads a line turned a few degrees either way, as on a
// receipt placed askew on a scanner: its angle, and its words', must follow
// the text, since layout analysis relies on them.
func testTiltedText(t *testing.T, e ocr.Engine, _ Features) {
	text, _ := fixtures.TextImage([]string{"SUBTOTAL 18.75 TAX 1.50 TOTAL 20.25"}, 3)
	// Pad to a square so normalized angles equal pixel angles.
	side := text.Bounds().Dx()
	square := image.NewGray(image.Rect(0, 0, side, side))
	draw.Draw(square, square.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(square, text.Bounds().Add(image.Pt(0, (side-text.Bounds().Dy())/2)), text, image.Point{}, draw.Src)

	const tol = 1.0 // degrees
	for _, deg := range []float64{3, -3} {
		t.Run(fmt.Sprintf("%+g°", deg), func(t *testing.T) {
			t.Parallel()
			lines := recognize(t, e, rotate(square, deg))
			checkStructure(t, lines)
			var longest ocr.Line
			for _, l := range lines {
				if len(l.Words) > len(longest.Words) {
					longest = l
				}
			}
			if len(longest.Words) < 3 {
				t.Fatalf("no line of several words in %q", allText(lines))
			}
			t.Logf("line %q at %.2f°", longest.Text, longest.AngleDegrees)
			if math.Abs(longest.AngleDegrees-deg) > tol {
				t.Errorf("line %q angle %.2f°, want %g°", longest.Text, longest.AngleDegrees, deg)
			}
			for _, w := range longest.Words {
				if math.Abs(w.AngleDegrees-deg) > tol {
					t.Errorf("word %q angle %.2f°, want %g°", w.Text, w.AngleDegrees, deg)
				}
			}
		})
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

// testRealReceipts reads real receipts, whose output exercises more of an
// engine than synthetic text: the printed total must be in the text, and
// the structure must hold.
func testRealReceipts(t *testing.T, e ocr.Engine, _ Features) {
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
			want: func(t *testing.T) string {
				rs, err := sroie.Load(fixtures.Path(t, "sroie"))
				if err != nil {
					t.Fatal(err)
				}
				return rs[0].Key.Total // 000
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			img := fixtures.DecodeImage(t, fixtures.Path(t, tt.path...))
			want := tt.want(t)
			lines := recognize(t, e, img)
			if text := allText(lines); !strings.Contains(text, want) {
				t.Errorf("text does not contain %q:\n%s", want, text)
			}
			checkStructure(t, lines)
		})
	}
}

// testNoText: a page without text is a result (no lines), not a failure, so
// that a blank upload is recorded as such rather than retried.
func testNoText(t *testing.T, e ocr.Engine, _ Features) {
	tests := []struct {
		name string
		img  image.Image
	}{
		{"white 800×1000", white(image.Rect(0, 0, 800, 1000))},
		{"white 1×1", white(image.Rect(0, 0, 1, 1))},
		{"transparent 1×1 off the origin", image.NewRGBA(image.Rect(5, 5, 6, 6))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lines, err := e.Recognize(context.Background(), tt.img)
			if err != nil || len(lines) != 0 {
				t.Errorf("Recognize = %d lines %q, %v; want none and no error", len(lines), allText(lines), err)
			}
		})
	}
}

func white(r image.Rectangle) *image.Gray {
	g := image.NewGray(r)
	draw.Draw(g, r, image.White, image.Point{}, draw.Src)
	return g
}

// testEmptyImage: an image without pixels is the caller's mistake, so it
// must not wrap ocr.ErrEngine, which would report the engine as broken.
func testEmptyImage(t *testing.T, e ocr.Engine, f Features) {
	tests := []struct {
		name string
		img  image.Image
	}{
		{"nil", nil},
		{"0×0", image.NewGray(image.Rectangle{})},
		{"10×0", image.NewRGBA(image.Rect(0, 0, 10, 0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lines, err := e.Recognize(context.Background(), tt.img)
			switch {
			case err == nil:
				t.Fatalf("Recognize = %d lines, no error; want an error", len(lines))
			case errors.Is(err, ocr.ErrEngine):
				t.Errorf("Recognize = %v, reported as an engine failure", err)
			case f.ErrEmptyImage != nil && !errors.Is(err, f.ErrEmptyImage):
				t.Errorf("Recognize = %v, want it to wrap %v", err, f.ErrEmptyImage)
			}
			if len(lines) != 0 {
				t.Errorf("Recognize gave %d lines with its error", len(lines))
			}
		})
	}
}

// testDoneContext: a call whose context is already done returns the
// context's error, whatever the image, so that a worker shutting down does
// not record a receipt as blank, nor the engine as broken.
func testDoneContext(t *testing.T, e ocr.Engine, f Features) {
	text, _ := fixtures.TextImage(drawnLines, f.TextScale)
	blank := white(image.Rect(0, 0, 800, 1000))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	tests := []struct {
		name string
		ctx  context.Context
		img  image.Image
		want error
	}{
		{"cancelled/text", cancelled, text, context.Canceled},
		{"cancelled/blank", cancelled, blank, context.Canceled},
		{"deadline passed/text", expired, text, context.DeadlineExceeded},
		{"deadline passed/blank", expired, blank, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lines, err := e.Recognize(tt.ctx, tt.img)
			if !errors.Is(err, tt.want) {
				t.Errorf("Recognize = %d lines, %v; want %v", len(lines), err, tt.want)
			}
			if errors.Is(err, ocr.ErrEngine) {
				t.Errorf("Recognize = %v, reported as an engine failure", err)
			}
		})
	}
}

// testConcurrent: the worker recognizes several images at once with one
// engine; under -race this also catches an engine that writes to its input.
func testConcurrent(t *testing.T, e ocr.Engine, f Features) {
	img, _ := fixtures.TextImage(drawnLines, f.TextScale)
	const n = 3
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			lines, err := e.Recognize(context.Background(), img)
			if err != nil {
				t.Errorf("goroutine %d: Recognize: %v", i, err)
				return
			}
			got[i] = allText(lines)
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if got[0] == "" {
		t.Fatal("no text read")
	}
	for i := 1; i < n; i++ {
		if got[i] != got[0] {
			t.Errorf("goroutine %d read %q, goroutine 0 %q", i, got[i], got[0])
		}
	}
}

// nestTolerance allows a word or letter to stick out of its parent by a
// pixel or two of an engine's rounding.
const nestTolerance = 0.003

// checkStructure asserts what every Recognize result promises: geometry in
// range; lines of words and words of letters, each nested in its parent;
// a line's text its words joined by single spaces and a word's its
// letters'; words and letters in reading order along their parent.
func checkStructure(t testing.TB, lines []ocr.Line) {
	t.Helper()
	if err := (&ocr.Result{Lines: lines}).Validate(); err != nil {
		t.Errorf("Result.Validate: %v", err)
	}
	for i, l := range lines {
		where := fmt.Sprintf("line %d %q", i+1, l.Text)
		if err := l.Geometry.Validate(); err != nil {
			t.Errorf("%s: %v", where, err)
		}
		if len(l.Words) == 0 {
			t.Errorf("%s has no words", where)
		}
		words := make([]string, len(l.Words))
		for j, w := range l.Words {
			words[j] = w.Text
			checkWord(t, fmt.Sprintf("%s word %d %q", where, j+1, w.Text), w)
			if !inside(w.BoundingBox, l.BoundingBox) {
				t.Errorf("%s: word %q box %+v outside line box %+v", where, w.Text, w.BoundingBox, l.BoundingBox)
			}
			if j > 0 && along(l.Geometry, w.Geometry) < along(l.Geometry, l.Words[j-1].Geometry) {
				t.Errorf("%s: word %q before word %q along the line", where, w.Text, l.Words[j-1].Text)
			}
		}
		if want := strings.Join(words, " "); l.Text != want {
			t.Errorf("%s: text is not its words joined by spaces, %q", where, want)
		}
	}
}

// checkWord checks one word and its letters.
func checkWord(t testing.TB, where string, w ocr.Word) {
	t.Helper()
	if err := w.Geometry.Validate(); err != nil {
		t.Errorf("%s: %v", where, err)
	}
	if w.Text == "" || strings.ContainsFunc(w.Text, unicode.IsSpace) {
		t.Errorf("%s: empty or contains white space", where)
	}
	if len(w.Letters) == 0 {
		t.Errorf("%s has no letters", where)
	}
	var text strings.Builder
	for k, c := range w.Letters {
		text.WriteString(c.Text)
		if c.Text == "" {
			t.Errorf("%s letter %d is empty", where, k+1)
		}
		if err := c.Geometry.Validate(); err != nil {
			t.Errorf("%s letter %d %q: %v", where, k+1, c.Text, err)
		}
		if !inside(c.BoundingBox, w.BoundingBox) {
			t.Errorf("%s: letter %q box %+v outside word box %+v", where, c.Text, c.BoundingBox, w.BoundingBox)
		}
		if k > 0 && along(w.Geometry, c.Geometry) < along(w.Geometry, w.Letters[k-1].Geometry) {
			t.Errorf("%s: letter %d %q before letter %d %q along the word", where, k+1, c.Text, k, w.Letters[k-1].Text)
		}
	}
	if len(w.Letters) > 0 && text.String() != w.Text {
		t.Errorf("%s: letters spell %q", where, text.String())
	}
}

// inside reports whether in lies within out, up to nestTolerance.
func inside(in, out ocr.BoundingBox) bool {
	return in.X >= out.X-nestTolerance && in.Y >= out.Y-nestTolerance &&
		in.X+in.Width <= out.X+out.Width+nestTolerance && in.Y+in.Height <= out.Y+out.Height+nestTolerance
}

// along is where child's centre lies along parent's top edge, so that
// reading order is checked in the text's direction, tilted or not.
func along(parent, child ocr.Geometry) float64 {
	dx, dy := parent.TopRight.X-parent.TopLeft.X, parent.TopRight.Y-parent.TopLeft.Y
	c := child.Center()
	return (c.X-parent.TopLeft.X)*dx + (c.Y-parent.TopLeft.Y)*dy
}

func texts(lines []ocr.Line) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return out
}

func allText(lines []ocr.Line) string { return strings.Join(texts(lines), "\n") }
