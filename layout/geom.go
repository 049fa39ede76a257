package layout

import (
	"fmt"
	"math"
	"sort"
)

// pt is a position in pixel space (origin top-left, y down), where distances
// and angles mean what they look like; normalized coordinates are not
// isotropic unless the image is square.
type pt struct{ x, y float64 }

func (a pt) add(b pt) pt              { return pt{a.x + b.x, a.y + b.y} }
func (a pt) sub(b pt) pt              { return pt{a.x - b.x, a.y - b.y} }
func (a pt) scale(s float64) pt       { return pt{a.x * s, a.y * s} }
func (a pt) dot(b pt) float64         { return a.x*b.x + a.y*b.y }
func (a pt) cross(b pt) float64       { return a.x*b.y - a.y*b.x }
func (a pt) norm() float64            { return math.Hypot(a.x, a.y) }
func (a pt) dist(b pt) float64        { return a.sub(b).norm() }
func (a pt) finite() bool             { return !math.IsNaN(a.x+a.y) && !math.IsInf(a.x+a.y, 0) }
func orient(a, b, c pt) float64       { return b.sub(a).cross(c.sub(a)) }
func lerp(a, b pt, t float64) pt      { return a.add(b.sub(a).scale(t)) }
func mid(a, b pt) pt                  { return lerp(a, b, 0.5) }
func (a pt) String() string           { return fmt.Sprintf("(%.1f, %.1f)", a.x, a.y) }
func triangleArea(a, b, c pt) float64 { return math.Abs(orient(a, b, c)) / 2 }

// signedArea is the shoelace sum of a polygon. In pixel space (y down) it is
// positive when the polygon runs clockwise as seen on screen.
func signedArea(poly []pt) float64 {
	var s float64
	for i := range poly {
		j := (i + 1) % len(poly)
		s += poly[i].cross(poly[j])
	}
	return s / 2
}

// polygonArea is the unsigned area of a simple polygon.
func polygonArea(poly []pt) float64 { return math.Abs(signedArea(poly)) }

// convexHull returns the hull of points by Andrew's monotone chain, without
// collinear points, with positive signed area (clockwise on screen). Fewer
// than three distinct points give what there is.
func convexHull(points []pt) []pt {
	ps := make([]pt, 0, len(points))
	for _, p := range points {
		if p.finite() {
			ps = append(ps, p)
		}
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].x != ps[j].x {
			return ps[i].x < ps[j].x
		}
		return ps[i].y < ps[j].y
	})
	// Drop duplicates so that degenerate inputs give short hulls.
	uniq := ps[:0]
	for i, p := range ps {
		if i == 0 || p != ps[i-1] {
			uniq = append(uniq, p)
		}
	}
	ps = uniq
	if len(ps) < 3 {
		return append([]pt(nil), ps...)
	}
	hull := make([]pt, 0, 2*len(ps))
	for _, p := range ps { // lower chain
		for len(hull) >= 2 && orient(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	lower := len(hull) + 1
	for i := len(ps) - 2; i >= 0; i-- { // upper chain
		p := ps[i]
		for len(hull) >= lower && orient(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	return hull[:len(hull)-1]
}

// insideConvex reports whether p lies in the convex polygon (either winding),
// boundary included.
func insideConvex(poly []pt, p pt) bool {
	if len(poly) < 3 {
		return false
	}
	var pos, neg bool
	for i := range poly {
		c := orient(poly[i], poly[(i+1)%len(poly)], p)
		pos = pos || c > 0
		neg = neg || c < 0
		if pos && neg {
			return false
		}
	}
	return true
}

// rotatedRect is a rectangle of any orientation: centre, unit axis u (v is u
// turned 90°), and half extents along u and v.
type rotatedRect struct {
	center       pt
	u            pt
	halfU, halfV float64
}

func (r rotatedRect) area() float64 { return 4 * r.halfU * r.halfV }

// corners returns the four corners with positive signed area.
func (r rotatedRect) corners() [4]pt {
	v := pt{-r.u.y, r.u.x}
	a, b := r.u.scale(r.halfU), v.scale(r.halfV)
	return [4]pt{
		r.center.sub(a).sub(b), r.center.add(a).sub(b),
		r.center.add(a).add(b), r.center.sub(a).add(b),
	}
}

// expand grows the rectangle by m on every side.
func (r rotatedRect) expand(m float64) rotatedRect {
	r.halfU += m
	r.halfV += m
	return r
}

// boundingRect is the smallest rectangle around the points with one side
// along the unit vector u.
func boundingRect(ps []pt, u pt) rotatedRect {
	v := pt{-u.y, u.x}
	minU, maxU, minV, maxV := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, p := range ps {
		pu, pv := p.dot(u), p.dot(v)
		minU, maxU = math.Min(minU, pu), math.Max(maxU, pu)
		minV, maxV = math.Min(minV, pv), math.Max(maxV, pv)
	}
	c := u.scale((minU + maxU) / 2).add(v.scale((minV + maxV) / 2))
	return rotatedRect{center: c, u: u, halfU: (maxU - minU) / 2, halfV: (maxV - minV) / 2}
}

// minAreaRect is the smallest rectangle around the points, by rotating
// calipers: one side of the optimal rectangle lies on a hull edge, so it
// tries each edge direction. ok is false when the points span no area.
func minAreaRect(points []pt) (rotatedRect, bool) {
	hull := convexHull(points)
	if len(hull) == 0 {
		return rotatedRect{}, false
	}
	if len(hull) < 3 { // a point or a segment: a zero-width rectangle
		a, b := hull[0], hull[len(hull)-1]
		u := pt{1, 0}
		if d := b.sub(a); d.norm() > 0 {
			u = d.scale(1 / d.norm())
		}
		return rotatedRect{center: mid(a, b), u: u, halfU: a.dist(b) / 2}, false
	}
	best := rotatedRect{}
	bestArea := math.Inf(1)
	for i := range hull {
		e := hull[(i+1)%len(hull)].sub(hull[i])
		n := e.norm()
		if n == 0 {
			continue
		}
		r := boundingRect(hull, e.scale(1/n))
		if a := r.area(); a < bestArea {
			bestArea, best = a, r
		}
	}
	return best, bestArea > 0 && !math.IsInf(bestArea, 0)
}

// maxAreaQuad picks the four hull vertices that enclose the largest area: a
// photographed sheet's outline is a quadrilateral in perspective, and its
// corners are the hull points that span the most. The hull must be convex
// without collinear points (as convexHull gives); for fixed i the best j and
// l move forward as k does, so this runs in O(n²).
func maxAreaQuad(hull []pt) ([4]pt, bool) {
	n := len(hull)
	if n < 4 {
		return [4]pt{}, false
	}
	at := func(i int) pt { return hull[i%n] }
	tri := func(a, b, c int) float64 { return triangleArea(at(a), at(b), at(c)) }
	best, bestArea := [4]int{}, -1.0
	for i := 0; i < n; i++ {
		j, l := i+1, i+3
		for k := i + 2; k <= i+n-2; k++ {
			if j > k-1 {
				j = k - 1
			}
			for j+1 <= k-1 && tri(i, j+1, k) >= tri(i, j, k) {
				j++
			}
			if l < k+1 {
				l = k + 1
			}
			for l+1 <= i+n-1 && tri(k, l+1, i) >= tri(k, l, i) {
				l++
			}
			if a := tri(i, j, k) + tri(k, l, i); a > bestArea {
				bestArea, best = a, [4]int{i, j, k, l}
			}
		}
	}
	var q [4]pt
	for m, idx := range best {
		q[m] = at(idx)
	}
	return q, bestArea > 0
}

// segmentDist is the distance between segments ab and cd (0 when they cross).
func segmentDist(a, b, c, d pt) float64 {
	d1, d2 := orient(a, b, c), orient(a, b, d)
	d3, d4 := orient(c, d, a), orient(c, d, b)
	if ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0)) {
		return 0
	}
	return math.Min(math.Min(pointSegmentDist(a, c, d), pointSegmentDist(b, c, d)),
		math.Min(pointSegmentDist(c, a, b), pointSegmentDist(d, a, b)))
}

// pointSegmentDist is the distance from p to segment ab.
func pointSegmentDist(p, a, b pt) float64 {
	ab := b.sub(a)
	l2 := ab.dot(ab)
	if l2 == 0 {
		return p.dist(a)
	}
	t := math.Max(0, math.Min(1, p.sub(a).dot(ab)/l2))
	return p.dist(a.add(ab.scale(t)))
}

// quadGap is the empty space between two quads: 0 when they touch or one
// holds the other, else the shortest distance between their edges.
func quadGap(a, b [4]pt) float64 {
	for _, p := range a {
		if insideConvex(b[:], p) {
			return 0
		}
	}
	for _, p := range b {
		if insideConvex(a[:], p) {
			return 0
		}
	}
	best := math.Inf(1)
	for i := range 4 {
		for j := range 4 {
			best = math.Min(best, segmentDist(a[i], a[(i+1)%4], b[j], b[(j+1)%4]))
		}
	}
	return best
}

// orderCorners returns a convex quad's corners as TL, TR, BR, BL of the
// upright sheet: clockwise on screen, starting where the edge to the next
// corner runs most nearly along the text direction dir (pixel space). A zero
// dir means the image's own x axis.
func orderCorners(q [4]pt, dir pt) [4]pt {
	if signedArea(q[:]) < 0 {
		q[1], q[3] = q[3], q[1]
	}
	if dir.norm() == 0 || !dir.finite() {
		dir = pt{1, 0}
	}
	dir = dir.scale(1 / dir.norm())
	best, bestDot := 0, math.Inf(-1)
	for r := range 4 {
		e := q[(r+1)%4].sub(q[r])
		n := e.norm()
		if n == 0 {
			continue
		}
		if d := e.dot(dir) / n; d > bestDot {
			best, bestDot = r, d
		}
	}
	return [4]pt{q[best], q[(best+1)%4], q[(best+2)%4], q[(best+3)%4]}
}

// isConvexQuad reports whether q is a strictly convex quadrilateral (no three
// corners collinear, not self-intersecting), relative to its own size.
func isConvexQuad(q [4]pt) bool {
	scale := 0.0
	for i := range 4 {
		if !q[i].finite() {
			return false
		}
		scale = math.Max(scale, q[i].dist(q[(i+2)%4]))
	}
	if scale == 0 {
		return false
	}
	eps := 1e-9 * scale * scale
	var pos, neg bool
	for i := range 4 {
		c := orient(q[i], q[(i+1)%4], q[(i+2)%4])
		if math.Abs(c) <= eps {
			return false
		}
		pos = pos || c > 0
		neg = neg || c < 0
	}
	return pos != neg
}

// median returns the median of xs (0 for none); xs is reordered.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
