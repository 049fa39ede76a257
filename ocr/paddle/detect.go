package paddle

import (
	"image"
	"math"
	"sort"

	"github.com/tallyhq/tally/internal/geom"
	"github.com/tallyhq/tally/internal/onnxrt"
)

// PaddleOCR's DB post-processing defaults (db_postprocess.py), which the
// published models were tuned with.
const (
	detThreshold   = 0.3  // a pixel is text when its probability exceeds this
	detBoxScore    = 0.6  // a box is kept when its mean probability reaches this
	detUnclipRatio = 1.5  // how far a shrunk text kernel is grown back
	detMinSide     = 3    // boxes thinner than this (in detector pixels) are noise
	detCandidates  = 1000 // at most this many boxes per image
	detStride      = 32   // the detector's input sides must be multiples of this
	sameRowPixels  = 10   // boxes whose tops differ less than this read left to right
)

// ImageNet mean and standard deviation, per channel, as the detector was
// trained (BGR order in PaddleOCR; the engine feeds grey, so all three
// channels carry the same luminance).
var (
	detMean = [3]float32{0.485, 0.456, 0.406}
	detStd  = [3]float32{0.229, 0.224, 0.225}
)

// box is a detected text region in source pixels: top-left, top-right,
// bottom-right, bottom-left as read.
type box [4]geom.Pt

// detSize is the detector's input size for a w×h image: scaled down, keeping
// the aspect ratio, until the longer side is at most maxSide and the area at
// most maxPixels (0 means no limit), then each side rounded to a multiple of
// 32. Small images are not enlarged.
func detSize(w, h, maxSide, maxPixels int) (int, int) {
	scale := 1.0
	if maxSide > 0 && max(w, h) > maxSide {
		scale = float64(maxSide) / float64(max(w, h))
	}
	if maxPixels > 0 && float64(w)*float64(h)*scale*scale > float64(maxPixels) {
		scale = math.Sqrt(float64(maxPixels) / (float64(w) * float64(h)))
	}
	round := func(v int) int {
		return max(detStride, int(math.Round(float64(v)*scale/detStride))*detStride)
	}
	return round(w), round(h)
}

// detInput resizes g to dw×dh (bilinear) and normalizes it into a 1×3×dh×dw
// tensor.
func detInput(g *image.Gray, dw, dh int) onnxrt.Tensor {
	plane := dw * dh
	data := make([]float32, 3*plane)
	resizeGray(g, dw, dh, func(i int, v float32) {
		v /= 255
		for c := range 3 {
			data[c*plane+i] = (v - detMean[c]) / detStd[c]
		}
	})
	return onnxrt.Tensor{Shape: []int64{1, 3, int64(dh), int64(dw)}, Data: data}
}

// resizeGray samples g at dw×dh with bilinear interpolation (pixel centres
// aligned, as OpenCV's INTER_LINEAR) and hands each value, row-major, to put.
func resizeGray(g *image.Gray, dw, dh int, put func(i int, v float32)) {
	b := g.Bounds()
	sw, sh := b.Dx(), b.Dy()
	sx, sy := float64(sw)/float64(dw), float64(sh)/float64(dh)
	x0s := make([]int, dw)
	x1s := make([]int, dw)
	fxs := make([]float32, dw)
	for x := range dw {
		fx := (float64(x)+0.5)*sx - 0.5
		fx = math.Max(0, math.Min(fx, float64(sw-1)))
		x0 := int(fx)
		x0s[x], x1s[x], fxs[x] = x0, min(x0+1, sw-1), float32(fx-float64(x0))
	}
	for y := range dh {
		fy := (float64(y)+0.5)*sy - 0.5
		fy = math.Max(0, math.Min(fy, float64(sh-1)))
		y0 := int(fy)
		y1 := min(y0+1, sh-1)
		wy := float32(fy - float64(y0))
		r0 := g.Pix[y0*g.Stride : y0*g.Stride+sw]
		r1 := g.Pix[y1*g.Stride : y1*g.Stride+sw]
		for x := range dw {
			a := float32(r0[x0s[x]]) + (float32(r0[x1s[x]])-float32(r0[x0s[x]]))*fxs[x]
			c := float32(r1[x0s[x]]) + (float32(r1[x1s[x]])-float32(r1[x0s[x]]))*fxs[x]
			put(y*dw+x, a+(c-a)*wy)
		}
	}
}

// boxes turns the detector's probability map (pw×ph) into text boxes in the
// source image's pixels (sw×sh), as PaddleOCR's DB
// post-processing does: threshold, one candidate per connected region, its
// minimum-area rectangle, scored by the mean probability inside, grown back
// by the unclip ratio.
func boxes(prob []float32, pw, ph, sw, sh int) []box {
	var out []box
	for _, comp := range components(prob, pw, ph, detThreshold) {
		if len(out) >= detCandidates {
			break
		}
		r, ok := geom.MinAreaRect(comp)
		if !ok || 2*min(r.HalfU, r.HalfV) < detMinSide {
			continue
		}
		if boxScore(prob, pw, ph, r.Corners()) < detBoxScore {
			continue
		}
		w, h := 2*r.HalfU, 2*r.HalfV
		r = r.Expand(w * h * detUnclipRatio / (2 * (w + h)))
		if 2*min(r.HalfU, r.HalfV) < detMinSide+2 {
			continue
		}
		b := orderCorners(r.Corners())
		for i, p := range b {
			b[i] = geom.Pt{
				X: clamp(math.Round(p.X/float64(pw)*float64(sw)), 0, float64(sw)),
				Y: clamp(math.Round(p.Y/float64(ph)*float64(sh)), 0, float64(sh)),
			}
		}
		if b[0].Dist(b[1]) <= 3 || b[0].Dist(b[3]) <= 3 {
			continue
		}
		out = append(out, b)
	}
	return out
}

// components returns, for every 8-connected region of pixels above thresh,
// the leftmost and rightmost pixel of each of its rows: the same convex hull
// as all its pixels, at a fraction of the points.
func components(prob []float32, w, h int, thresh float32) [][]geom.Pt {
	label := make([]int32, w*h)
	var out [][]geom.Pt
	var stack []int
	for start, p := range prob {
		if p <= thresh || label[start] != 0 {
			continue
		}
		id := int32(len(out) + 1)
		label[start] = id
		stack = append(stack[:0], start)
		rows := map[int][2]int{}
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			x, y := i%w, i/w
			if r, ok := rows[y]; ok {
				rows[y] = [2]int{min(r[0], x), max(r[1], x)}
			} else {
				rows[y] = [2]int{x, x}
			}
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					nx, ny := x+dx, y+dy
					if nx < 0 || ny < 0 || nx >= w || ny >= h {
						continue
					}
					j := ny*w + nx
					if label[j] == 0 && prob[j] > thresh {
						label[j] = id
						stack = append(stack, j)
					}
				}
			}
		}
		pts := make([]geom.Pt, 0, 2*len(rows))
		for y, r := range rows {
			pts = append(pts, geom.Pt{X: float64(r[0]), Y: float64(y)}, geom.Pt{X: float64(r[1]), Y: float64(y)})
		}
		out = append(out, pts)
	}
	return out
}

// boxScore is the mean probability inside the quad (PaddleOCR's
// box_score_fast: pixels of the bounding rectangle that fall in the quad).
func boxScore(prob []float32, w, h int, q [4]geom.Pt) float64 {
	minX, minY, maxX, maxY := q[0].X, q[0].Y, q[0].X, q[0].Y
	for _, p := range q[1:] {
		minX, maxX = math.Min(minX, p.X), math.Max(maxX, p.X)
		minY, maxY = math.Min(minY, p.Y), math.Max(maxY, p.Y)
	}
	x0, x1 := int(clamp(math.Floor(minX), 0, float64(w-1))), int(clamp(math.Ceil(maxX), 0, float64(w-1)))
	y0, y1 := int(clamp(math.Floor(minY), 0, float64(h-1))), int(clamp(math.Ceil(maxY), 0, float64(h-1)))
	poly := q[:]
	var sum float64
	n := 0
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			if geom.InsideConvex(poly, geom.Pt{X: float64(x), Y: float64(y)}) {
				sum += float64(prob[y*w+x])
				n++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// orderCorners orders a rectangle's corners as read: the two leftmost give
// top-left and bottom-left, the two rightmost top-right and bottom-right
// (PaddleOCR's get_mini_boxes).
func orderCorners(c [4]geom.Pt) box {
	pts := c
	sort.Slice(pts[:], func(i, j int) bool { return pts[i].X < pts[j].X })
	tl, bl := pts[0], pts[1]
	if bl.Y < tl.Y {
		tl, bl = bl, tl
	}
	tr, br := pts[2], pts[3]
	if br.Y < tr.Y {
		tr, br = br, tr
	}
	return box{tl, tr, br, bl}
}

// sortBoxes puts boxes in reading order: top to bottom, and left to right
// among boxes whose tops are within a few pixels (PaddleOCR's sorted_boxes).
func sortBoxes(bs []box) {
	sort.SliceStable(bs, func(i, j int) bool {
		if bs[i][0].Y != bs[j][0].Y {
			return bs[i][0].Y < bs[j][0].Y
		}
		return bs[i][0].X < bs[j][0].X
	})
	for i := 0; i+1 < len(bs); i++ {
		for j := i; j >= 0; j-- {
			if math.Abs(bs[j+1][0].Y-bs[j][0].Y) < sameRowPixels && bs[j+1][0].X < bs[j][0].X {
				bs[j], bs[j+1] = bs[j+1], bs[j]
			} else {
				break
			}
		}
	}
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// A long receipt scaled whole to the detector's bounds would leave its text
// a few pixels high, so an image whose shorter side would shrink below
// minDetShortSide is cut along its length into overlapping tiles, each
// tileAspect times as long as wide, that the detector reads one by one.
const (
	minDetShortSide = 160
	tileAspect      = 2
	tileOverlap     = 0.25 // of the shorter side: more than any line is high
)

// tile is one detector pass over part of the image: rect in source pixels,
// and the span along the image's length whose boxes this tile keeps (each
// box is kept by the one tile its centre falls in).
type tile struct {
	rect     image.Rectangle
	lo, hi   float64
	vertical bool
}

// detTiles cuts a w×h image into detector tiles (one, for most images).
func detTiles(w, h, maxSide int) []tile {
	short, long := min(w, h), max(w, h)
	whole := []tile{{rect: image.Rect(0, 0, w, h), lo: math.Inf(-1), hi: math.Inf(1), vertical: h >= w}}
	if maxSide <= 0 || long <= maxSide || float64(short)*float64(maxSide)/float64(long) >= minDetShortSide {
		return whole
	}
	size := tileAspect * short
	overlap := max(1, int(tileOverlap*float64(short)))
	step := size - overlap
	var out []tile
	for start := 0; ; start += step {
		end := min(start+size, long)
		t := tile{vertical: h >= w, lo: float64(start) + float64(overlap)/2, hi: float64(end) - float64(overlap)/2}
		if start == 0 {
			t.lo = math.Inf(-1)
		}
		if end == long {
			t.hi = math.Inf(1)
		}
		if t.vertical {
			t.rect = image.Rect(0, start, w, end)
		} else {
			t.rect = image.Rect(start, 0, end, h)
		}
		out = append(out, t)
		if end == long {
			return out
		}
	}
}

// keep moves the tile's boxes into image pixels and drops those another
// tile keeps.
func (t tile) keep(bs []box) []box {
	var out []box
	off := geom.Pt{X: float64(t.rect.Min.X), Y: float64(t.rect.Min.Y)}
	for _, b := range bs {
		var c float64
		for i := range b {
			b[i] = b[i].Add(off)
			if t.vertical {
				c += b[i].Y / 4
			} else {
				c += b[i].X / 4
			}
		}
		if c >= t.lo && c < t.hi {
			out = append(out, b)
		}
	}
	return out
}

// subGray is the part r of g as an image of its own, origin at 0, sharing
// g's pixels.
func subGray(g *image.Gray, r image.Rectangle) *image.Gray {
	if r == g.Rect {
		return g
	}
	return &image.Gray{Pix: g.Pix[r.Min.Y*g.Stride+r.Min.X:], Stride: g.Stride, Rect: image.Rect(0, 0, r.Dx(), r.Dy())}
}
