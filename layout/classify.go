package layout

import (
	"image"
	"math"

	"github.com/tallyhq/tally/ocr"
)

// nativeMargin is the largest empty margin, on every side, that still counts
// as text filling the frame: a screenshot or digital receipt leaves at most a
// few percent, while a photo or scan shows the background around the paper.
const nativeMargin = 0.07

// borderStats describes the outer band of an image: its median level, the
// spread between its 10th and 90th percentiles, and its texture (mean
// absolute difference of neighbouring pixels), all as fractions of 255.
type borderStats struct {
	median, spread, texture float64
}

// Signatures of a border. A scanner lid is one narrow thing (bright, even,
// clean), so its signature is tight and one-sided: only falling short of it
// (darker, less even, more textured) counts as distance. Photo backgrounds
// are anything from a dark noisy table to a pale desk in uneven light, so
// theirs is a broad centre. Each scale is how far along its feature counts
// as one unit of distance.
var (
	scanSignature  = borderStats{median: 0.90, spread: 0.03, texture: 0.01}
	scanScale      = borderStats{median: 0.10, spread: 0.03, texture: 0.01}
	photoSignature = borderStats{median: 0.45, spread: 0.20, texture: 0.03}
	photoScale     = borderStats{median: 0.30, spread: 0.15, texture: 0.03}
)

// scanDistance is how far b falls short of a scanner lid: the root mean
// square of the shortfalls, in units of scanScale (0 for a clean lid).
func (b borderStats) scanDistance() float64 {
	dm := math.Max(0, scanSignature.median-b.median) / scanScale.median
	ds := math.Max(0, b.spread-scanSignature.spread) / scanScale.spread
	dt := math.Max(0, b.texture-scanSignature.texture) / scanScale.texture
	return math.Sqrt((dm*dm + ds*ds + dt*dt) / 3)
}

// photoDistance is how far b lies from a typical photo background: the root
// mean square of the differences, in units of photoScale.
func (b borderStats) photoDistance() float64 {
	dm := (b.median - photoSignature.median) / photoScale.median
	ds := (b.spread - photoSignature.spread) / photoScale.spread
	dt := (b.texture - photoSignature.texture) / photoScale.texture
	return math.Sqrt((dm*dm + ds*ds + dt*dt) / 3)
}

// Classify decides whether an image is a screenshot (NATIVE), a photo or a
// scan, because each needs its own way of finding and straightening receipts.
// Text that fills the frame on every side means NATIVE; otherwise the image's
// outer band decides: whichever signature is closer, a scanner lid's
// (bright, uniform, clean: SCAN) or a table's (PHOTO). With no lines
// every margin is 0.5 and the border alone decides.
func Classify(g *image.Gray, lines []ocr.Line) ocr.Classification {
	r := view(g)
	c := ocr.Classification{Margins: textMargins(lines), ImageWidth: r.w, ImageHeight: r.h}
	stats := measureBorder(r)
	c.ScanDistance = round4(stats.scanDistance())
	c.PhotoDistance = round4(stats.photoDistance())
	m := c.Margins
	switch {
	case hasValidLine(lines) && m.Left < nativeMargin && m.Right < nativeMargin && m.Top < nativeMargin && m.Bottom < nativeMargin:
		c.ImageType = ocr.TypeNative
	case c.ScanDistance < c.PhotoDistance:
		c.ImageType = ocr.TypeScan
	default:
		c.ImageType = ocr.TypePhoto
	}
	return c
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// hasValidLine reports whether any line has finite coordinates.
func hasValidLine(lines []ocr.Line) bool {
	for _, l := range lines {
		if _, ok := normQuad(l); ok {
			return true
		}
	}
	return false
}

// textMargins measures the empty margins around all lines' corners (clamped
// to the image), as fractions of the image.
func textMargins(lines []ocr.Line) ocr.Margins {
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, l := range lines {
		q, ok := normQuad(l)
		if !ok {
			continue
		}
		for _, p := range q {
			minX, maxX = math.Min(minX, p.X), math.Max(maxX, p.X)
			minY, maxY = math.Min(minY, p.Y), math.Max(maxY, p.Y)
		}
	}
	if math.IsInf(minX, 1) {
		return ocr.Margins{Left: 0.5, Right: 0.5, Top: 0.5, Bottom: 0.5}
	}
	return ocr.Margins{Left: minX, Right: 1 - maxX, Top: 1 - maxY, Bottom: minY}
}

// normQuad returns a line's corners clamped into the image, or false when a
// coordinate is not a number.
func normQuad(l ocr.Line) ([4]ocr.Point, bool) {
	q := l.Quad().Points()
	for i, p := range q {
		if math.IsNaN(p.X) || math.IsNaN(p.Y) || math.IsInf(p.X, 0) || math.IsInf(p.Y, 0) {
			return q, false
		}
		q[i] = ocr.Point{X: clamp01(p.X), Y: clamp01(p.Y)}
	}
	return q, true
}

func clamp01(v float64) float64 { return math.Min(1, math.Max(0, v)) }

// borderBand is the thickness of the outer band, as a fraction of the
// shorter side: wide enough to average over, narrow enough to stay off the
// paper in most photos and scans.
const borderBand = 0.03

// measureBorder computes the border statistics of r's outer band.
func measureBorder(r raster) borderStats {
	if r.empty() {
		return borderStats{}
	}
	band := max(1, int(math.Round(borderBand*float64(min(r.w, r.h)))))
	var h histogram
	var diffSum, diffN int
	addRun := func(y, x0, x1 int) { // pixels x0..x1-1 of row y
		row := r.row(y)
		for x := x0; x < x1; x++ {
			h[row[x]]++
			if x > x0 {
				d := int(row[x]) - int(row[x-1])
				diffSum += max(d, -d)
				diffN++
			}
		}
	}
	for y := range r.h {
		if y < band || y >= r.h-band {
			addRun(y, 0, r.w)
			continue
		}
		addRun(y, 0, min(band, r.w))
		addRun(y, max(r.w-band, band), r.w)
	}
	s := borderStats{
		median: float64(h.percentile(0.5)) / 255,
		spread: float64(h.percentile(0.9)-h.percentile(0.1)) / 255,
	}
	if diffN > 0 {
		s.texture = float64(diffSum) / float64(diffN) / 255
	}
	return s
}
