package sroie

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocr/extract"
)

// ResultMargin is the blank border, in pixels, that Result leaves right of
// and below the boxes when it sizes the image: images are not read (most
// receipts have none), and the boxes must lie strictly inside the image.
const ResultMargin = 10

// Result is the single-pass OCR result an engine that read the ground truth
// perfectly would give: one line per box (confidence 1, original case),
// words split on spaces and letters one per rune, their quads cut from the
// line's quad in proportion to character offsets, and dates, phones,
// addresses and URLs annotated as the OCR stage does. It lets the stages
// after OCR (entities, field extraction, labelling) be measured on SROIE
// without OCR errors.
//
// The image is the boxes' extent plus ResultMargin and is itself the one
// receipt, as for a NATIVE image: bounds are the image's corners, the crop
// has the image's size, and the receipt's lines (in its own normalized
// space) equal the image's. It fails when r has no boxes or a box lies
// outside the image (negative coordinates).
func (r Receipt) Result() (*ocr.Result, error) {
	if len(r.Boxes) == 0 {
		return nil, fmt.Errorf("sroie %s: no boxes", r.Name)
	}
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, b := range r.Boxes {
		for _, p := range b.Quad {
			minX, maxX = math.Min(minX, p[0]), math.Max(maxX, p[0])
			minY, maxY = math.Min(minY, p[1]), math.Max(maxY, p[1])
		}
	}
	w, h := int(math.Ceil(maxX))+ResultMargin, int(math.Ceil(maxY))+ResultMargin
	lines := resultLines(r.Boxes, w, h)
	recLines := resultLines(r.Boxes, w, h)
	extract.Annotate(lines)
	extract.Annotate(recLines)
	idx := make([]int, len(lines))
	for i := range idx {
		idx[i] = i
	}
	round4 := func(v float64) float64 { return math.Round(v*1e4) / 1e4 }
	res := &ocr.Result{
		Lines: lines,
		Classification: &ocr.Classification{
			ImageType: ocr.TypeNative,
			Margins: ocr.Margins{
				Left: round4(minX / float64(w)), Right: round4(1 - maxX/float64(w)),
				Top: round4(minY / float64(h)), Bottom: round4(1 - maxY/float64(h)),
			},
			ImageWidth: w, ImageHeight: h,
		},
		Clustering: &ocr.Clustering{Method: "single", Clusters: 1},
		Receipts: []ocr.Receipt{{
			ClusterID: 1,
			Bounds: ocr.Quad{
				TopLeft: ocr.Point{X: 0, Y: 1}, TopRight: ocr.Point{X: 1, Y: 1},
				BottomRight: ocr.Point{X: 1, Y: 0}, BottomLeft: ocr.Point{X: 0, Y: 0},
			},
			WarpedWidth: w, WarpedHeight: h,
			LineIndices: idx,
			Lines:       recLines,
		}},
	}
	if err := res.Validate(); err != nil {
		return nil, fmt.Errorf("sroie %s: %w", r.Name, err)
	}
	return res, nil
}

// resultLines turns boxes into OCR lines of a w×h image.
func resultLines(boxes []Box, w, h int) []ocr.Line {
	lines := make([]ocr.Line, 0, len(boxes))
	for _, b := range boxes {
		n := utf8.RuneCountInString(b.Text)
		l := ocr.Line{Text: b.Text, Geometry: segment(b.Quad, 0, 1, 1, w, h)}
		off := 0 // rune offset of the current word in the line
		for _, wt := range strings.Split(b.Text, " ") {
			wn := utf8.RuneCountInString(wt)
			if wn > 0 {
				word := ocr.Word{Text: wt, Geometry: segment(b.Quad, off, off+wn, n, w, h), Letters: make([]ocr.Letter, 0, wn)}
				i := off
				for _, c := range wt {
					word.Letters = append(word.Letters, ocr.Letter{Text: string(c), Geometry: segment(b.Quad, i, i+1, n, w, h)})
					i++
				}
				l.Words = append(l.Words, word)
			}
			off += wn + 1
		}
		lines = append(lines, l)
	}
	return lines
}

// segment is the geometry of the runes [from, to) of a line of n runes
// whose pixel quad is q: its top and bottom edges cut at from/n and to/n.
func segment(q [4][2]float64, from, to, n, w, h int) ocr.Geometry {
	tl, tr, br, bl := q[0], q[1], q[2], q[3]
	at := func(a, b [2]float64, i int) ocr.Point {
		t := float64(i) / float64(n)
		return ocr.FromPixel(a[0]+(b[0]-a[0])*t, a[1]+(b[1]-a[1])*t, w, h)
	}
	return ocr.NewGeometry(ocr.Quad{
		TopLeft: at(tl, tr, from), TopRight: at(tl, tr, to),
		BottomRight: at(bl, br, to), BottomLeft: at(bl, br, from),
	}, 1)
}
