package layout

import (
	"errors"
	"image"
	"math"
	"sort"

	"github.com/tallyhq/tally/internal/geom"
	"github.com/tallyhq/tally/ocr"
)

// ErrDegenerate marks corners that span no area (collinear, coincident, not
// a number or not convex): no warp can straighten such a receipt.
var ErrDegenerate = errors.New("layout: degenerate geometry")

// ErrEmptyImage marks an image with no pixels.
var ErrEmptyImage = errors.New("layout: empty image")

// Clustering methods, as the contract names them.
const (
	MethodDBSCAN = "dbscan" // photos: lines linked by proximity in 2-D
	MethodXAxis  = "x_axis" // scans: receipts side by side, split by x gaps
	MethodSingle = "single" // native: the whole image is one receipt
)

// Tuning, in units of the median line height (the one length every receipt
// image carries with it, whatever its resolution).
const (
	// photoLinkHeights is DBSCAN's radius: two lines belong together when
	// the empty space between their quads is at most six line heights.
	// Lines of one receipt sit about a line height apart, and a price column
	// can stand ~5 heights right of its items (the bar receipt fixture needs
	// 5.4 to be one cluster), while receipts lying apart are separated by
	// both their margins and the gap between them.
	photoLinkHeights = 6.0
	// photoMinPts is DBSCAN's minimum neighbourhood (the line included): a
	// line with no other line within reach is noise.
	photoMinPts = 2
	// scanGapHeights splits a scan's receipts where no line covers an x gap
	// wider than two line heights.
	scanGapHeights = 2.0
	// fallbackMarginHeights is the margin added around the lines' rectangle
	// when the paper cannot be separated, in line heights. It is 0: the old
	// system's receipts hug their lines (its corners for the real scan and
	// photo fixtures are reproduced within 0.05–0.6 % with no margin, 1.2–1.5 %
	// with half a line height), and the process stage's parity with its data
	// needs the same crops.
	fallbackMarginHeights = 0
	// minBlobLines is the share of a cluster's lines a sheet must hold for
	// its outline to be the cluster's corners.
	minBlobLines = 0.8
	// minorClusterShare is the largest size, relative to the biggest
	// cluster on the same sheet, of a cluster that is merged into it (a stray
	// line or a detached column); bigger ones mean the "sheet" is really two
	// receipts touching, so none of them uses its outline.
	minorClusterShare = 0.25
)

// Region is one receipt found in an image.
type Region struct {
	// ClusterID numbers receipts from 1, left to right.
	ClusterID int
	// LineIndices are the 0-based indices of the receipt's lines, ascending.
	LineIndices []int
	// Bounds are the receipt's corners in normalized image coordinates (y
	// up), named as on the upright receipt.
	Bounds ocr.Quad
	// FromPaper says the corners follow the paper's outline (for NATIVE,
	// the image's own edges); false means they were derived from the lines
	// alone because the paper could not be told from the background.
	FromPaper bool
}

// lineGeom is one usable line in pixel space.
type lineGeom struct {
	index  int
	quad   [4]geom.Pt // TL, TR, BR, BL
	center geom.Pt
	height float64
	lo, hi geom.Pt // axis-aligned box
}

// prepareLines converts lines to pixel space, clamped into the image; lines
// with coordinates that are not numbers are returned as invalid indices.
func prepareLines(lines []ocr.Line, w, h int) (geoms []lineGeom, invalid []int) {
	for i, l := range lines {
		nq, ok := normQuad(l)
		if !ok {
			invalid = append(invalid, i)
			continue
		}
		var g lineGeom
		g.index = i
		g.lo, g.hi = geom.Pt{X: math.Inf(1), Y: math.Inf(1)}, geom.Pt{X: math.Inf(-1), Y: math.Inf(-1)}
		for k, p := range nq {
			x, y := p.Pixel(w, h)
			g.quad[k] = geom.Pt{X: x, Y: y}
			g.center = g.center.Add(g.quad[k].Scale(0.25))
			g.lo = geom.Pt{X: math.Min(g.lo.X, x), Y: math.Min(g.lo.Y, y)}
			g.hi = geom.Pt{X: math.Max(g.hi.X, x), Y: math.Max(g.hi.Y, y)}
		}
		g.height = (g.quad[0].Dist(g.quad[3]) + g.quad[1].Dist(g.quad[2])) / 2
		geoms = append(geoms, g)
	}
	return geoms, invalid
}

// medianHeight is the median line height in pixels, or 1 % of the shorter
// side when the lines have none.
func medianHeight(geoms []lineGeom, w, h int) float64 {
	hs := make([]float64, len(geoms))
	for i, g := range geoms {
		hs[i] = g.height
	}
	if m := median(hs); m > 0 {
		return m
	}
	return math.Max(0.01*float64(min(w, h)), 1e-3)
}

// FindReceipts groups lines into receipts and finds each receipt's corners,
// because a photo or scan may hold several receipts and each one must be
// straightened and read on its own.
//
// PHOTO: DBSCAN over the lines (distance = empty space between two line
// quads, radius = photoLinkHeights median line heights); corners come from
// the bright sheet holding the cluster (Otsu threshold, connected component,
// convex hull, the four hull points spanning the largest area), and stray
// lines on that sheet join its receipt. SCAN: lines split where an x gap no
// line covers exceeds scanGapHeights line heights; corners are the
// minimum-area rectangle of the sheet when it differs from the scanner lid.
// When the paper cannot be separated, corners are the rectangle around the
// lines' corners (see linesRect) plus half a line height. NATIVE: one
// receipt, the whole image. Other image types are treated as photos.
//
// Clustering.Epsilon is the linking distance (DBSCAN radius or x gap) as a
// fraction of the image width. Lines whose coordinates are not numbers are
// noise; no lines give no regions.
func FindReceipts(g *image.Gray, lines []ocr.Line, c ocr.Classification) ([]Region, ocr.Clustering) {
	r := view(g)
	method := MethodDBSCAN
	switch c.ImageType {
	case ocr.TypeNative:
		method = MethodSingle
	case ocr.TypeScan:
		method = MethodXAxis
	}
	clustering := ocr.Clustering{Method: method}
	if r.empty() {
		for i := range lines {
			clustering.Noise = append(clustering.Noise, i)
		}
		return nil, clustering
	}
	geoms, invalid := prepareLines(lines, r.w, r.h)
	clustering.Noise = invalid
	if len(geoms) == 0 {
		return nil, clustering
	}
	lineHeight := medianHeight(geoms, r.w, r.h)

	var labels []int
	switch method {
	case MethodSingle:
		idx := make([]int, len(geoms))
		for i, g := range geoms {
			idx[i] = g.index
		}
		clustering.Clusters = 1
		return []Region{{ClusterID: 1, LineIndices: idx, Bounds: wholeImage(), FromPaper: true}}, clustering
	case MethodXAxis:
		gap := scanGapHeights * lineHeight
		lo, hi := make([]float64, len(geoms)), make([]float64, len(geoms))
		for i, g := range geoms {
			lo[i], hi[i] = g.lo.X, g.hi.X
		}
		labels = clusterIntervals(lo, hi, gap)
		clustering.Epsilon = round4(gap / float64(r.w))
	default:
		eps := photoLinkHeights * lineHeight
		labels = dbscan(len(geoms), photoMinPts, lineNeighbors(geoms, eps))
		clustering.Epsilon = round4(eps / float64(r.w))
	}

	clusters := groupLabels(labels)
	var noiseLines []int // positions in geoms
	for i, l := range labels {
		if l == noise {
			noiseLines = append(noiseLines, i)
		}
	}
	if len(clusters) == 0 { // every line alone: still one receipt, not none
		clusters = [][]int{noiseLines}
		noiseLines = nil
	}

	blobs := findPaper(r, c.ImageType)
	clusters, sheets := assignSheets(geoms, clusters, blobs, lineHeight)

	// Stray lines that lie on a cluster's sheet belong to that receipt.
	var stillNoise []int
	for _, i := range noiseLines {
		joined := false
		for k, s := range sheets {
			if s >= 0 && geom.InsideConvex(blobs[s].quad[:], geoms[i].center) {
				clusters[k] = append(clusters[k], i)
				joined = true
				break
			}
		}
		if !joined {
			stillNoise = append(stillNoise, i)
		}
	}
	for _, i := range stillNoise {
		clustering.Noise = append(clustering.Noise, geoms[i].index)
	}
	sort.Ints(clustering.Noise)

	regions := make([]Region, 0, len(clusters))
	for k, members := range clusters {
		if len(members) == 0 {
			continue
		}
		dir := textDirection(geoms, members)
		var q [4]geom.Pt
		fromPaper := sheets[k] >= 0
		if fromPaper {
			q = blobs[sheets[k]].quad
		} else {
			q = linesRect(geoms, members, lineHeight)
		}
		q = orderCorners(q, dir)
		idx := make([]int, len(members))
		for i, m := range members {
			idx[i] = geoms[m].index
		}
		sort.Ints(idx)
		regions = append(regions, Region{LineIndices: idx, Bounds: toNormQuad(q, r.w, r.h), FromPaper: fromPaper})
	}
	sort.SliceStable(regions, func(i, j int) bool {
		ci, cj := quadCenter(regions[i].Bounds), quadCenter(regions[j].Bounds)
		if math.Abs(ci.X-cj.X) > 1e-9 {
			return ci.X < cj.X
		}
		return ci.Y > cj.Y
	})
	for i := range regions {
		regions[i].ClusterID = i + 1
	}
	clustering.Clusters = len(regions)
	return regions, clustering
}

// lineNeighbors lists, for each line, the lines whose quads lie within eps.
func lineNeighbors(geoms []lineGeom, eps float64) [][]int {
	nb := make([][]int, len(geoms))
	for i := range geoms {
		for j := i + 1; j < len(geoms); j++ {
			a, b := geoms[i], geoms[j]
			dx := math.Max(0, math.Max(a.lo.X, b.lo.X)-math.Min(a.hi.X, b.hi.X))
			dy := math.Max(0, math.Max(a.lo.Y, b.lo.Y)-math.Min(a.hi.Y, b.hi.Y))
			if math.Hypot(dx, dy) > eps || quadGap(a.quad, b.quad) > eps {
				continue
			}
			nb[i] = append(nb[i], j)
			nb[j] = append(nb[j], i)
		}
	}
	return nb
}

// groupLabels turns 0-based cluster labels into member lists (noise skipped).
func groupLabels(labels []int) [][]int {
	n := 0
	for _, l := range labels {
		n = max(n, l+1)
	}
	out := make([][]int, n)
	for i, l := range labels {
		if l >= 0 {
			out[l] = append(out[l], i)
		}
	}
	return out
}

// assignSheets gives each cluster the sheet (blob index) that holds it, or
// −1: a sheet holds a cluster when it is the smallest sheet under most
// (minBlobLines) of the cluster's line centres and its outline covers all
// the cluster's text (within a line height). When several clusters share a
// sheet, small ones (minorClusterShare) merge into the biggest; otherwise
// the sheet is really receipts touching and none of them uses it. It
// returns the clusters after merging and the sheet of each.
func assignSheets(geoms []lineGeom, clusters [][]int, blobs []paperBlob, lineHeight float64) ([][]int, []int) {
	sheets := make([]int, len(clusters))
	for k := range sheets {
		sheets[k] = -1
	}
	if len(blobs) == 0 {
		return clusters, sheets
	}
	sheetOf := func(p geom.Pt) int {
		for b := range blobs { // smallest first
			if geom.InsideConvex(blobs[b].hull, p) {
				return b
			}
		}
		return -1
	}
	for k, members := range clusters {
		count := map[int]int{}
		for _, m := range members {
			if b := sheetOf(geoms[m].center); b >= 0 {
				count[b]++
			}
		}
		best, bestN := -1, 0
		for b, n := range count {
			if n > bestN || (n == bestN && b < best) {
				best, bestN = b, n
			}
		}
		if best >= 0 && float64(bestN) >= minBlobLines*float64(len(members)) {
			sheets[k] = best
		}
	}
	// Resolve sheets claimed by several clusters.
	byBlob := map[int][]int{}
	for k, b := range sheets {
		if b >= 0 {
			byBlob[b] = append(byBlob[b], k)
		}
	}
	for _, ks := range byBlob {
		if len(ks) < 2 {
			continue
		}
		sort.Slice(ks, func(i, j int) bool {
			if len(clusters[ks[i]]) != len(clusters[ks[j]]) {
				return len(clusters[ks[i]]) > len(clusters[ks[j]])
			}
			return ks[i] < ks[j]
		})
		biggest := ks[0]
		allMinor := true
		for _, k := range ks[1:] {
			if float64(len(clusters[k])) > minorClusterShare*float64(len(clusters[biggest])) {
				allMinor = false
			}
		}
		for _, k := range ks[1:] {
			if allMinor {
				clusters[biggest] = append(clusters[biggest], clusters[k]...)
				clusters[k] = nil
			}
			sheets[k] = -1
		}
		if !allMinor {
			sheets[biggest] = -1
		}
	}
	// The outline must not cut off the cluster's text.
	for k, b := range sheets {
		if b < 0 {
			continue
		}
	check:
		for _, m := range clusters[k] {
			for _, p := range geoms[m].quad {
				if distToConvex(blobs[b].quad[:], p) > lineHeight {
					sheets[k] = -1
					break check
				}
			}
		}
	}
	return clusters, sheets
}

// textDirection is the summed reading direction (left to right along the
// lines) of a cluster, in pixel space.
func textDirection(geoms []lineGeom, members []int) geom.Pt {
	var d geom.Pt
	for _, m := range members {
		q := geoms[m].quad
		d = d.Add(q[1].Sub(q[0])).Add(q[2].Sub(q[3]))
	}
	return d
}

// linesRect is the rectangle around a cluster's line corners, grown by
// fallbackMarginHeights line heights. It is the minimum-area rectangle,
// unless the lines agree on their direction (textAngleAgreement) and the
// rectangle along that direction is nearly as small (textRectSlack): ragged
// line ends can tilt the minimum-area fit, while consistent OCR lines show
// the receipt's orientation directly.
func linesRect(geoms []lineGeom, members []int, lineHeight float64) [4]geom.Pt {
	var ps []geom.Pt
	for _, m := range members {
		ps = append(ps, geoms[m].quad[:]...)
	}
	rect, _ := geom.MinAreaRect(ps)
	if rect.U == (geom.Pt{}) {
		rect.U = geom.Pt{X: 1, Y: 0}
	}
	if u, ok := consistentTextAxis(geoms, members); ok {
		if along := geom.BoundingRect(ps, u); along.Area() <= textRectSlack*rect.Area() {
			rect = along
		}
	}
	return rect.Expand(math.Max(fallbackMarginHeights*lineHeight, 1)).Corners()
}

const (
	// textAngleAgreement: the lines agree on a direction when this share of
	// them lies within textAngleTolerance degrees of their median angle.
	textAngleAgreement = 0.8
	textAngleTolerance = 2.0
	// textRectSlack is how much larger than the minimum area a rectangle
	// along the text direction may be and still be preferred.
	textRectSlack = 1.05
)

// consistentTextAxis returns the lines' median reading direction (a unit
// vector in pixel space) when most lines agree with it.
func consistentTextAxis(geoms []lineGeom, members []int) (geom.Pt, bool) {
	var angles []float64
	for _, m := range members {
		d := geoms[m].quad[1].Sub(geoms[m].quad[0])
		if d.Norm() > 0 {
			angles = append(angles, math.Atan2(d.Y, d.X)*180/math.Pi)
		}
	}
	if len(angles) == 0 {
		return geom.Pt{}, false
	}
	med := median(append([]float64(nil), angles...))
	agree := 0
	for _, a := range angles {
		diff := math.Mod(math.Abs(a-med), 360)
		if math.Min(diff, 360-diff) <= textAngleTolerance {
			agree++
		}
	}
	if float64(agree) < textAngleAgreement*float64(len(angles)) {
		return geom.Pt{}, false
	}
	rad := med * math.Pi / 180
	return geom.Pt{X: math.Cos(rad), Y: math.Sin(rad)}, true
}

// toNormQuad converts pixel corners (TL, TR, BR, BL) to a normalized quad,
// clamped into the image.
func toNormQuad(q [4]geom.Pt, w, h int) ocr.Quad {
	n := func(p geom.Pt) ocr.Point {
		np := ocr.FromPixel(p.X, p.Y, w, h)
		return ocr.Point{X: clamp01(np.X), Y: clamp01(np.Y)}
	}
	return ocr.Quad{TopLeft: n(q[0]), TopRight: n(q[1]), BottomRight: n(q[2]), BottomLeft: n(q[3])}
}

// wholeImage is the quad of the entire image.
func wholeImage() ocr.Quad {
	return ocr.Quad{
		TopLeft: ocr.Point{X: 0, Y: 1}, TopRight: ocr.Point{X: 1, Y: 1},
		BottomRight: ocr.Point{X: 1, Y: 0}, BottomLeft: ocr.Point{X: 0, Y: 0},
	}
}

func quadCenter(q ocr.Quad) ocr.Point {
	var c ocr.Point
	for _, p := range q.Points() {
		c.X += p.X / 4
		c.Y += p.Y / 4
	}
	return c
}
