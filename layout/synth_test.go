package layout

import (
	"image"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tallyhq/tally/internal/geom"
	"github.com/tallyhq/tally/ocr"
)

// Synthetic receipts for tests and benchmarks: sheets of paper with dark
// text-like bars, drawn in perspective on a background, and the OCR lines a
// perfect engine would report for those bars.

// bar is one text line on a sheet, in the sheet's own fractions (u right,
// v down, 0–1).
type bar struct{ u0, v0, u1, v1 float64 }

// sheet is a receipt in the picture.
type sheet struct {
	corners       [4]geom.Pt // TL, TR, BR, BL in pixels
	width, height float64    // physical size in pixels, before perspective
	bars          []bar
	paper         uint8
}

// scene is a whole image: a background and sheets on it.
type scene struct {
	w, h       int
	background func(x, y int) uint8
	sheets     []sheet
}

const ink = 25

// newSheet places a width×height sheet centred at (cx, cy), rotated by deg
// (clockwise on screen), with its top edge shortened by skew (a fraction of
// the width, for perspective), filled with n text bars.
func newSheet(cx, cy, width, height, deg, skew float64, n int, seed uint64) sheet {
	a := deg * math.Pi / 180
	u := geom.Pt{X: math.Cos(a), Y: math.Sin(a)}
	v := geom.Pt{X: -u.Y, Y: u.X}
	c := geom.Pt{X: cx, Y: cy}
	hw, hh := width/2, height/2
	topIn := skew * width / 2
	s := sheet{
		corners: [4]geom.Pt{
			c.Add(u.Scale(-hw + topIn)).Add(v.Scale(-hh)),
			c.Add(u.Scale(hw - topIn)).Add(v.Scale(-hh)),
			c.Add(u.Scale(hw)).Add(v.Scale(hh)),
			c.Add(u.Scale(-hw)).Add(v.Scale(hh)),
		},
		width: width, height: height, paper: 240,
	}
	s.bars = textBars(n, seed)
	return s
}

// textBars lays out n receipt-like lines: left-aligned text of varying
// length, some with a right-aligned price.
func textBars(n int, seed uint64) []bar {
	rng := rand.New(rand.NewPCG(seed, 7))
	top, bottom := 0.06, 0.94
	pitch := (bottom - top) / float64(n)
	var bars []bar
	for i := range n {
		v0 := top + float64(i)*pitch
		v1 := v0 + pitch*0.5
		if i%4 == 3 { // item line with a price on the right
			bars = append(bars, bar{0.08, v0, 0.08 + 0.25 + 0.2*rng.Float64(), v1}, bar{0.72, v0, 0.92, v1})
			continue
		}
		bars = append(bars, bar{0.08, v0, 0.08 + 0.4 + 0.44*rng.Float64(), v1})
	}
	return bars
}

// unitToPixel maps the sheet's fractions to image pixels.
func (s sheet) unitToPixel(tb testing.TB) mat3 {
	tb.Helper()
	m, err := solveHomography([4]geom.Pt{{X: 0, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 1}, {X: 0, Y: 1}}, s.corners)
	if err != nil {
		tb.Fatalf("sheet homography: %v", err)
	}
	return m
}

func (sc scene) render(tb testing.TB) *image.Gray {
	tb.Helper()
	img := image.NewGray(image.Rect(0, 0, sc.w, sc.h))
	for y := range sc.h {
		for x := range sc.w {
			img.Pix[y*img.Stride+x] = sc.background(x, y)
		}
	}
	for _, s := range sc.sheets {
		toUnit, err := s.unitToPixel(tb).inverse()
		if err != nil {
			tb.Fatal(err)
		}
		minX, minY, maxX, maxY := float64(sc.w), float64(sc.h), 0.0, 0.0
		for _, c := range s.corners {
			minX, maxX = math.Min(minX, c.X), math.Max(maxX, c.X)
			minY, maxY = math.Min(minY, c.Y), math.Max(maxY, c.Y)
		}
		for y := max(0, int(minY)); y < min(sc.h, int(maxY)+1); y++ {
			for x := max(0, int(minX)); x < min(sc.w, int(maxX)+1); x++ {
				p := toUnit.apply(geom.Pt{X: float64(x) + 0.5, Y: float64(y) + 0.5})
				if p.X < 0 || p.X > 1 || p.Y < 0 || p.Y > 1 {
					continue
				}
				v := s.paper
				for _, b := range s.bars {
					if p.X >= b.u0 && p.X <= b.u1 && p.Y >= b.v0 && p.Y <= b.v1 {
						v = ink
						break
					}
				}
				img.Pix[y*img.Stride+x] = v
			}
		}
	}
	return img
}

// lines returns the OCR lines of every bar, sheet by sheet, and for each
// sheet the indices of its lines.
func (sc scene) lines(tb testing.TB) ([]ocr.Line, [][]int) {
	tb.Helper()
	var lines []ocr.Line
	var owners [][]int
	for _, s := range sc.sheets {
		m := s.unitToPixel(tb)
		var mine []int
		for _, b := range s.bars {
			n := func(u, v float64) ocr.Point {
				p := m.apply(geom.Pt{X: u, Y: v})
				return ocr.FromPixel(p.X, p.Y, sc.w, sc.h)
			}
			q := ocr.Quad{TopLeft: n(b.u0, b.v0), TopRight: n(b.u1, b.v0), BottomRight: n(b.u1, b.v1), BottomLeft: n(b.u0, b.v1)}
			mine = append(mine, len(lines))
			lines = append(lines, ocr.Line{Text: "bar", Geometry: ocr.NewGeometry(q, 0.9)})
		}
		owners = append(owners, mine)
	}
	return lines, owners
}

// tableBackground is a dark, textured table: wood-like grain plus noise.
func tableBackground(seed uint64) func(x, y int) uint8 {
	rng := rand.New(rand.NewPCG(seed, 1))
	return func(x, y int) uint8 {
		grain := 18 * math.Sin(float64(x)*0.05+6*math.Sin(float64(y)*0.01))
		v := 80 + grain + float64(rng.IntN(61)-30)
		return uint8(math.Max(0, math.Min(255, v)))
	}
}

// scannerBackground is a flatbed's light-gray lid with faint noise.
func scannerBackground(seed uint64) func(x, y int) uint8 {
	rng := rand.New(rand.NewPCG(seed, 2))
	return func(x, y int) uint8 { return uint8(212 + rng.IntN(5)) }
}

func flatBackground(v uint8) func(x, y int) uint8 { return func(x, y int) uint8 { return v } }

// photoScene is one receipt (40 % × 70 % of the frame), rotated 10° and
// lightly skewed, on a dark table.
func photoScene(w, h int) scene {
	fw, fh := float64(w), float64(h)
	return scene{w: w, h: h, background: tableBackground(1), sheets: []sheet{
		newSheet(0.5*fw, 0.5*fh, 0.4*fw, 0.7*fh, 10, 0.06, 16, 11),
	}}
}

// twoPhotoScene is two receipts side by side on a table.
func twoPhotoScene(w, h int) scene {
	fw, fh := float64(w), float64(h)
	return scene{w: w, h: h, background: tableBackground(3), sheets: []sheet{
		newSheet(0.27*fw, 0.48*fh, 0.3*fw, 0.6*fh, -6, 0.04, 12, 21),
		newSheet(0.73*fw, 0.53*fh, 0.3*fw, 0.5*fh, 8, 0.04, 10, 22),
	}}
}

// scanScene is an A4-ratio scan with one receipt rotated 5°.
func scanScene() scene {
	w, h := 1240, 1754
	s := newSheet(600, 850, 420, 1100, 5, 0, 20, 31)
	s.paper = 250
	return scene{w: w, h: h, background: scannerBackground(4), sheets: []sheet{s}}
}

// twoScanScene is two receipts side by side on one scan.
func twoScanScene() scene {
	w, h := 1240, 1754
	a := newSheet(330, 800, 380, 1000, 3, 0, 18, 41)
	b := newSheet(900, 700, 380, 800, -4, 0, 14, 42)
	a.paper, b.paper = 250, 250
	return scene{w: w, h: h, background: scannerBackground(5), sheets: []sheet{a, b}}
}

// nativeScene is a screenshot: text from edge to edge on white.
func nativeScene() scene {
	w, h := 600, 1000
	s := sheet{corners: [4]geom.Pt{{X: 0, Y: 0}, {X: 600, Y: 0}, {X: 600, Y: 1000}, {X: 0, Y: 1000}}, width: 600, height: 1000, paper: 250}
	for i := range 25 {
		v0 := 0.02 + float64(i)*0.0385
		s.bars = append(s.bars, bar{0.02, v0, 0.6 + 0.38*float64(i%2), v0 + 0.02})
	}
	return scene{w: w, h: h, background: flatBackground(250), sheets: []sheet{s}}
}
