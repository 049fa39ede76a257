package layout

import (
	"image"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tallyhq/tally/ocr"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		scene   scene
		noLines bool
		want    string
	}{
		{"photo on a table", photoScene(600, 800), false, ocr.TypePhoto},
		{"two receipts on a table", twoPhotoScene(800, 600), false, ocr.TypePhoto},
		{"scan", scanScene(), false, ocr.TypeScan},
		{"screenshot", nativeScene(), false, ocr.TypeNative},
		{"photo without lines", photoScene(300, 400), true, ocr.TypePhoto},
		{"scan without lines", scanScene(), true, ocr.TypeScan},
		// A screenshot with no text found is not NATIVE: nothing fills it.
		{"blank white image without lines", nativeScene(), true, ocr.TypeScan},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := tc.scene.render(t)
			var lines []ocr.Line
			if !tc.noLines {
				lines, _ = tc.scene.lines(t)
			}
			c := Classify(img, lines)
			if c.ImageType != tc.want {
				t.Errorf("type %s (scan %.3f, photo %.3f, margins %+v), want %s", c.ImageType, c.ScanDistance, c.PhotoDistance, c.Margins, tc.want)
			}
			if c.ImageWidth != tc.scene.w || c.ImageHeight != tc.scene.h {
				t.Errorf("size %d×%d, want %d×%d", c.ImageWidth, c.ImageHeight, tc.scene.w, tc.scene.h)
			}
			switch tc.want {
			case ocr.TypeScan:
				if c.ScanDistance >= c.PhotoDistance {
					t.Errorf("scan distance %.3f not below photo distance %.3f", c.ScanDistance, c.PhotoDistance)
				}
			case ocr.TypePhoto:
				if c.PhotoDistance >= c.ScanDistance {
					t.Errorf("photo distance %.3f not below scan distance %.3f", c.PhotoDistance, c.ScanDistance)
				}
			}
			t.Logf("%s: scan %.3f photo %.3f margins %+v", c.ImageType, c.ScanDistance, c.PhotoDistance, c.Margins)
		})
	}
}

// TestClassifyBorders: one receipt on backgrounds of every kind; the border
// alone decides between SCAN and PHOTO.
func TestClassifyBorders(t *testing.T) {
	t.Parallel()
	noisy := func(base float64, amp int, seed uint64, shade func(x, y int) float64) func(x, y int) uint8 {
		rng := rand.New(rand.NewPCG(seed, 9))
		return func(x, y int) uint8 {
			v := base + shade(x, y) + float64(rng.IntN(2*amp+1)-amp)
			return uint8(math.Max(0, math.Min(255, v)))
		}
	}
	none := func(x, y int) float64 { return 0 }
	tests := []struct {
		name string
		bg   func(x, y int) uint8
		want string
	}{
		{"white scanner lid", noisy(240, 2, 1, none), ocr.TypeScan},
		{"light-gray scanner lid", noisy(214, 2, 2, none), ocr.TypeScan},
		{"darker lid with JPEG noise", noisy(200, 4, 3, none), ocr.TypeScan},
		{"mid-gray wood", noisy(140, 5, 4, func(x, y int) float64 { return 15 * math.Sin(float64(x)*0.05) }), ocr.TypePhoto},
		{"smooth mid-gray table", noisy(140, 3, 5, func(x, y int) float64 { return 10 * math.Sin(float64(y)*0.02) }), ocr.TypePhoto},
		{"pale desk in uneven light", noisy(170, 2, 6, func(x, y int) float64 { return 60 * float64(x) / 300 }), ocr.TypePhoto},
		{"dark cloth", noisy(20, 2, 7, none), ocr.TypePhoto},
		{"dark noisy table", tableBackground(8), ocr.TypePhoto},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sc := photoScene(300, 400)
			sc.background = tc.bg
			img := sc.render(t)
			lines, _ := sc.lines(t)
			c := Classify(img, lines)
			if c.ImageType != tc.want {
				t.Errorf("type %s (scan %.3f, photo %.3f), want %s", c.ImageType, c.ScanDistance, c.PhotoDistance, tc.want)
			}
		})
	}
}

func TestTextMargins(t *testing.T) {
	t.Parallel()
	box := func(x0, y0, x1, y1 float64) ocr.Line {
		q := ocr.Quad{TopLeft: ocr.Point{X: x0, Y: y1}, TopRight: ocr.Point{X: x1, Y: y1}, BottomRight: ocr.Point{X: x1, Y: y0}, BottomLeft: ocr.Point{X: x0, Y: y0}}
		return ocr.Line{Geometry: ocr.NewGeometry(q, 1)}
	}
	tests := []struct {
		name  string
		lines []ocr.Line
		want  ocr.Margins
	}{
		{"none", nil, ocr.Margins{Left: 0.5, Right: 0.5, Top: 0.5, Bottom: 0.5}},
		{"two lines", []ocr.Line{box(0.2, 0.7, 0.6, 0.75), box(0.3, 0.1, 0.9, 0.15)}, ocr.Margins{Left: 0.2, Right: 0.1, Top: 0.25, Bottom: 0.1}},
		{"outside the image is clamped", []ocr.Line{box(-0.2, -0.1, 1.3, 1.2)}, ocr.Margins{}},
		{"NaN ignored", []ocr.Line{box(math.NaN(), 0, 1, 1), box(0.4, 0.4, 0.6, 0.6)}, ocr.Margins{Left: 0.4, Right: 0.4, Top: 0.4, Bottom: 0.4}},
	}
	for _, tc := range tests {
		got := textMargins(tc.lines)
		for _, d := range []float64{got.Left - tc.want.Left, got.Right - tc.want.Right, got.Top - tc.want.Top, got.Bottom - tc.want.Bottom} {
			if math.Abs(d) > 1e-9 {
				t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
				break
			}
		}
	}
}

func TestClassifyTinyAndEmpty(t *testing.T) {
	t.Parallel()
	one := image.NewGray(image.Rect(0, 0, 1, 1))
	one.Pix[0] = 250
	for name, img := range map[string]*image.Gray{"nil": nil, "0×0": image.NewGray(image.Rect(0, 0, 0, 0)), "1×1": one} {
		c := Classify(img, nil)
		if c.ImageType != ocr.TypeScan && c.ImageType != ocr.TypePhoto {
			t.Errorf("%s: type %q", name, c.ImageType)
		}
		if math.IsNaN(c.ScanDistance) || math.IsNaN(c.PhotoDistance) {
			t.Errorf("%s: distances %v %v", name, c.ScanDistance, c.PhotoDistance)
		}
	}
}
