package entities

import (
	"math"
	"sort"
	"strings"

	"github.com/tallyhq/tally/ocr"
)

// GroupingVersion names the row grouping below; rows carry it so that a
// later change of the rule can be told from rows already stored.
const GroupingVersion = "visual-rows-v1"

// GroupRows groups one receipt's lines (all with the same image and
// receipt id) into visual rows. The receipt's residual tilt is the median
// slope of its lines, measured in pixels of its w×h crop; after turning
// that away, lines whose centres lie within half the median line height of
// a row's mean centre belong to it. Rows are numbered top to bottom from 1
// and list their lines left to right. w or h of zero or less is taken as
// a square crop.
func GroupRows(lines []ReceiptLine, w, h int) []ReceiptRow {
	if len(lines) == 0 {
		return nil
	}
	sx, sy := float64(w), float64(h)
	if sx <= 0 || sy <= 0 {
		sx, sy = 1, 1
	}
	px := func(p ocr.Point) (float64, float64) { return p.X * sx, p.Y * sy } // y stays up

	var slopes, heights []float64
	for _, l := range lines {
		lx, ly := px(l.TopLeft)
		rx, ry := px(l.TopRight)
		if dx, dy := rx-lx, ry-ly; dx > 0 && !math.IsNaN(dx+dy) {
			slopes = append(slopes, math.Atan2(dy, dx))
		}
		if hh := lineHeight(l.Geometry, px); hh > 0 {
			heights = append(heights, hh)
		}
	}
	tilt := medianOf(slopes)
	reach := medianOf(heights) / 2
	cos, sin := math.Cos(tilt), math.Sin(tilt)

	type placed struct {
		index int
		x, y  float64 // centre, tilt turned away
	}
	ps := make([]placed, len(lines))
	for i, l := range lines {
		cx, cy := px(l.Center())
		ps[i] = placed{index: i, x: cx*cos + cy*sin, y: -cx*sin + cy*cos}
	}
	sort.SliceStable(ps, func(a, b int) bool {
		if ps[a].y != ps[b].y {
			return ps[a].y > ps[b].y // top first: y points up
		}
		return ps[a].x < ps[b].x
	})

	var groups [][]placed
	var meanY float64
	for _, p := range ps {
		if n := len(groups); n > 0 && math.Abs(p.y-meanY) <= reach {
			g := append(groups[n-1], p)
			groups[n-1] = g
			meanY += (p.y - meanY) / float64(len(g))
			continue
		}
		groups = append(groups, []placed{p})
		meanY = p.y
	}

	rows := make([]ReceiptRow, len(groups))
	for r, g := range groups {
		sort.SliceStable(g, func(a, b int) bool { return g[a].x < g[b].x })
		first := lines[g[0].index]
		row := ReceiptRow{ImageID: first.ImageID, ReceiptID: first.ReceiptID, RowID: r + 1,
			LineIDs: make([]int, len(g)), GroupingVersion: GroupingVersion}
		texts := make([]string, len(g))
		box := first.BoundingBox
		for i, p := range g {
			l := lines[p.index]
			row.LineIDs[i] = l.LineID
			texts[i] = l.Text
			box = unionBox(box, l.BoundingBox)
		}
		row.Text = strings.Join(texts, " ")
		row.BoundingBox = box
		rows[r] = row
	}
	return rows
}

// lineHeight is the distance between the midpoints of a line's top and
// bottom edges.
func lineHeight(g ocr.Geometry, px func(ocr.Point) (float64, float64)) float64 {
	tlx, tly := px(g.TopLeft)
	trx, try := px(g.TopRight)
	blx, bly := px(g.BottomLeft)
	brx, bry := px(g.BottomRight)
	h := math.Hypot((tlx+trx)/2-(blx+brx)/2, (tly+try)/2-(bly+bry)/2)
	if math.IsNaN(h) || math.IsInf(h, 0) {
		return 0
	}
	return h
}

func unionBox(a, b ocr.BoundingBox) ocr.BoundingBox {
	x0, y0 := math.Min(a.X, b.X), math.Min(a.Y, b.Y)
	x1, y1 := math.Max(a.X+a.Width, b.X+b.Width), math.Max(a.Y+a.Height, b.Y+b.Height)
	return ocr.BoundingBox{X: x0, Y: y0, Width: x1 - x0, Height: y1 - y0}
}

// medianOf returns the median of xs (reordering them), 0 when empty.
func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	m := len(xs) / 2
	if len(xs)%2 == 1 {
		return xs[m]
	}
	return (xs[m-1] + xs[m]) / 2
}
