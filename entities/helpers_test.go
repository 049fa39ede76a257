package entities_test

import (
	"context"
	"encoding/json"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocrstage"
)

const testImageID = "0cefbe98-9ddc-4673-bb27-520aba4d8b6c"

func openTable(t testing.TB) items.Table {
	t.Helper()
	tbl, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl
}

// textLine lays out one line of text in a w×h pixel space (y up): centred
// at (cx, cy), size width×height, turned deg degrees counter-clockwise
// about its centre. Words share the width by their length (a space counts
// as one letter), letters share their word's; everything is returned
// normalized.
func textLine(text string, cx, cy, width, height, deg float64, w, h int) ocr.Line {
	rad := deg * math.Pi / 180
	cos, sin := math.Cos(rad), math.Sin(rad)
	x0, y0 := cx-width/2, cy-height/2
	// quad maps the unturned rectangle [a, b] × [y0, y0+height] (pixels) to a
	// normalized quad turned about the line's centre.
	at := func(x, y float64) ocr.Point {
		dx, dy := x-cx, y-cy
		return ocr.Point{X: (cx + dx*cos - dy*sin) / float64(w), Y: (cy + dx*sin + dy*cos) / float64(h)}
	}
	quad := func(a, b float64) ocr.Quad {
		return ocr.Quad{TopLeft: at(a, y0+height), TopRight: at(b, y0+height), BottomRight: at(b, y0), BottomLeft: at(a, y0)}
	}
	unit := width / float64(max(utf8.RuneCountInString(text), 1))
	line := ocr.Line{Text: text, Geometry: ocr.NewGeometry(quad(x0, x0+width), 0.9)}
	pos := x0
	for _, word := range strings.Fields(text) {
		ww := ocr.Word{Text: word}
		start := pos
		for _, r := range word {
			ww.Letters = append(ww.Letters, ocr.Letter{Text: string(r), Geometry: ocr.NewGeometry(quad(pos, pos+unit), 1)})
			pos += unit
		}
		ww.Geometry = ocr.NewGeometry(quad(start, pos), 1)
		line.Words = append(line.Words, ww)
		pos += unit // the space
	}
	return line
}

// synthResult is a small single-pass result: four image lines, one receipt
// holding three of them, with a phone number annotated and a corner at
// exactly 0 and 1 (integral values, which the store returns as integers).
func synthResult() *ocr.Result {
	const w, h = 1000, 2000
	lines := []ocr.Line{
		textLine("CORNER STORE", 300, 1800, 300, 40, 0, w, h),
		textLine("MILK 2.49", 300, 1700, 240, 40, 1, w, h),
		textLine("TEL 555-0100", 300, 1600, 300, 40, 1, w, h),
		textLine("noise", 900, 100, 100, 30, 0, w, h),
	}
	lines[2].Words[1].ExtractedData = &ocr.ExtractedData{Type: ocr.ExtractPhone, Value: "5550100"}
	q := lines[0].Quad()
	q.TopLeft = ocr.Point{X: 0, Y: 1}
	lines[0].Geometry = ocr.NewGeometry(q, 1) // integral values
	const rw, rh = 400, 300
	recLines := []ocr.Line{
		textLine("CORNER STORE", 200, 250, 300, 40, 0, rw, rh),
		textLine("MILK", 100, 150, 100, 40, 0, rw, rh),
		textLine("2.49", 330, 150, 80, 40, 0, rw, rh),
		textLine("TEL 555-0100", 200, 50, 300, 40, 0, rw, rh),
	}
	recLines[3].Words[1].ExtractedData = &ocr.ExtractedData{Type: ocr.ExtractPhone, Value: "5550100"}
	return &ocr.Result{
		Lines:          lines,
		Classification: &ocr.Classification{ImageType: ocr.TypePhoto, ImageWidth: w, ImageHeight: h},
		Clustering:     &ocr.Clustering{Method: "dbscan", Clusters: 1, Noise: []int{3}},
		Receipts: []ocr.Receipt{{
			ClusterID: 1, WarpedWidth: rw, WarpedHeight: rh, LineIndices: []int{0, 1, 2},
			Bounds: ocr.Quad{TopLeft: ocr.Point{X: 0.1, Y: 0.95}, TopRight: ocr.Point{X: 0.5, Y: 0.95},
				BottomRight: ocr.Point{X: 0.5, Y: 0.75}, BottomLeft: ocr.Point{X: 0.1, Y: 0.75}},
			Lines: recLines,
		}},
	}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(fixtures.Path(t, "portfolio", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func readExport(t testing.TB, name string) entities.Export {
	t.Helper()
	var e entities.Export
	if err := json.Unmarshal(readFixture(t, name), &e); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return e
}

func blankGray(w, h int, level uint8) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = level
	}
	return g
}

// analyzeLegacy runs a legacy result through the OCR stage as an external
// submission does (upload.SubmitOCR), on a blank image of the given size
// and gray level (the real images are not in the fixtures).
func analyzeLegacy(t testing.TB, name string, w, h int, level uint8) *ocr.Result {
	t.Helper()
	res, err := ocr.Decode(readFixture(t, name))
	if err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	a, err := ocrstage.Analyze(context.Background(), blankGray(w, h, level), res.Lines, nil)
	if err != nil {
		t.Fatalf("analyze %s: %v", name, err)
	}
	return a.Result
}

// quadDiff is the largest per-axis difference between two quads' corners.
func quadDiff(a, b ocr.Quad) float64 {
	worst := 0.0
	pa, pb := a.Points(), b.Points()
	for i := range pa {
		worst = math.Max(worst, math.Max(math.Abs(pa[i].X-pb[i].X), math.Abs(pa[i].Y-pb[i].Y)))
	}
	return worst
}

// geometryDiff is the largest difference between two geometries' corners
// and bounding boxes.
func geometryDiff(a, b ocr.Geometry) float64 {
	worst := quadDiff(a.Quad(), b.Quad())
	ba, bb := a.BoundingBox, b.BoundingBox
	for _, d := range []float64{ba.X - bb.X, ba.Y - bb.Y, ba.Width - bb.Width, ba.Height - bb.Height} {
		worst = math.Max(worst, math.Abs(d))
	}
	return worst
}
