package layout

import (
	"math"
	"sort"

	"github.com/tallyhq/tally/internal/geom"
	"github.com/tallyhq/tally/ocr"
)

// Paper segmentation works on a copy of the image shrunk to at most
// workSide pixels on its longer side: corners land within a few source
// pixels (far below the 2 % that matters) at a fraction of the cost.
const (
	workSide = 1024
	// blurRadius smooths noise and texture before thresholding.
	blurRadius = 2
	// minPaperContrast is how much brighter (in gray levels) the paper class
	// of a photo must be than the background class to trust the split.
	minPaperContrast = 40
	// minScanContrast is the smallest difference from the scanner lid's
	// level that counts as paper (or print) on a scan.
	minScanContrast = 16
	// minBlobShare is the smallest blob worth a hull, as a share of the image.
	minBlobShare = 0.002
	// maxBlobShare is the largest hull that can still be one sheet rather
	// than the background itself.
	maxBlobShare = 0.9
	// minQuadFill is how much of a photo blob's hull its four-corner fit must
	// cover for the blob to be a sheet (not a cluttered shape).
	minQuadFill = 0.85
	// minRectFill is how much of its minimum-area rectangle a scan blob's
	// hull must cover.
	minRectFill = 0.75
)

// paperBlob is one connected region that may be a sheet of paper, in source
// pixel coordinates.
type paperBlob struct {
	hull     []geom.Pt
	hullArea float64
	quad     [4]geom.Pt // the sheet's corners: a perspective quad or a rectangle
}

// findPaper segments the image into candidate sheets. Photos: bright paper
// on a darker background, split by Otsu's threshold. Scans: anything that
// differs from the scanner lid's level (taken from the border). It returns
// only blobs whose outline fits a quadrilateral (PHOTO) or a rectangle
// (SCAN) and that are not the background, smallest first; none when the
// paper cannot be told from the background.
func findPaper(r raster, imageType string) []paperBlob {
	if r.w < 8 || r.h < 8 {
		return nil
	}
	small := boxBlur(shrink(r, workSide), blurRadius)
	m := mask{bits: make([]uint8, small.w*small.h), w: small.w, h: small.h}
	switch imageType {
	case ocr.TypeScan:
		b := measureBorder(small)
		lid, spread := b.median*255, b.spread*255
		delta := math.Max(minScanContrast, 2*spread)
		found := false
		for y := range small.h {
			for x, v := range small.row(y) {
				if math.Abs(float64(v)-lid) > delta {
					m.bits[y*m.w+x] = 1
					found = true
				}
			}
		}
		if !found {
			return nil
		}
	default:
		var h histogram
		for y := range small.h {
			for _, v := range small.row(y) {
				h[v]++
			}
		}
		t, dark, bright, _, ok := otsu(&h)
		if !ok || bright-dark < minPaperContrast {
			return nil
		}
		for y := range small.h {
			for x, v := range small.row(y) {
				if int(v) > t {
					m.bits[y*m.w+x] = 1
				}
			}
		}
	}
	m = open(m)
	labels, sizes := components(m)
	minSize := max(4, int(minBlobShare*float64(m.w*m.h)))
	outlines := componentOutlines(labels, sizes, m.w, m.h, minSize)
	sx, sy := float64(r.w)/float64(m.w), float64(r.h)/float64(m.h)
	imageArea := float64(r.w) * float64(r.h)
	labelsSorted := make([]int32, 0, len(outlines))
	for l := range outlines {
		labelsSorted = append(labelsSorted, l)
	}
	sort.Slice(labelsSorted, func(i, j int) bool { return labelsSorted[i] < labelsSorted[j] })
	var blobs []paperBlob
	for _, l := range labelsSorted {
		ps := outlines[l]
		for i := range ps {
			ps[i] = geom.Pt{X: ps[i].X * sx, Y: ps[i].Y * sy}
		}
		hull := geom.ConvexHull(ps)
		area := geom.PolygonArea(hull)
		if len(hull) < 4 || area <= 0 || area > maxBlobShare*imageArea {
			continue
		}
		b := paperBlob{hull: hull, hullArea: area}
		if imageType == ocr.TypeScan {
			rect, ok := geom.MinAreaRect(hull)
			if !ok || area < minRectFill*rect.Area() {
				continue
			}
			b.quad = rect.Corners()
		} else {
			q, ok := geom.MaxAreaQuad(hull)
			if !ok || geom.PolygonArea(q[:]) < minQuadFill*area {
				continue
			}
			b.quad = q
		}
		blobs = append(blobs, b)
	}
	sort.SliceStable(blobs, func(i, j int) bool { return blobs[i].hullArea < blobs[j].hullArea })
	return blobs
}

// distToConvex is 0 inside the convex polygon, else the distance to its edge.
func distToConvex(poly []geom.Pt, p geom.Pt) float64 {
	if geom.InsideConvex(poly, p) {
		return 0
	}
	best := math.Inf(1)
	for i := range poly {
		best = math.Min(best, geom.PointSegmentDist(p, poly[i], poly[(i+1)%len(poly)]))
	}
	return best
}
