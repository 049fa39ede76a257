// Package geom is the plane geometry that receipt layout and the OCR engines
// share (hulls, rotated rectangles, point-in-polygon tests), so that both
// measure boxes the same way. It works in pixel space (origin top-left, y
// down), where distances and angles mean what they look like; normalized
// coordinates are not isotropic unless the image is square.
package geom

import (
	"fmt"
	"math"
	"sort"
)

// Pt is a position or a displacement in pixel space.
type Pt struct{ X, Y float64 }

func (a Pt) Add(b Pt) Pt        { return Pt{a.X + b.X, a.Y + b.Y} }
func (a Pt) Sub(b Pt) Pt        { return Pt{a.X - b.X, a.Y - b.Y} }
func (a Pt) Scale(s float64) Pt { return Pt{a.X * s, a.Y * s} }
func (a Pt) Dot(b Pt) float64   { return a.X*b.X + a.Y*b.Y }
func (a Pt) Cross(b Pt) float64 { return a.X*b.Y - a.Y*b.X }
func (a Pt) Norm() float64      { return math.Hypot(a.X, a.Y) }
func (a Pt) Dist(b Pt) float64  { return a.Sub(b).Norm() }
func (a Pt) Finite() bool       { return !math.IsNaN(a.X+a.Y) && !math.IsInf(a.X+a.Y, 0) }
func (a Pt) String() string     { return fmt.Sprintf("(%.1f, %.1f)", a.X, a.Y) }

// Orient is twice the signed area of the triangle abc: positive when a, b, c
// run clockwise on screen (y down), zero when they are collinear.
func Orient(a, b, c Pt) float64 { return b.Sub(a).Cross(c.Sub(a)) }

func Lerp(a, b Pt, t float64) Pt      { return a.Add(b.Sub(a).Scale(t)) }
func Mid(a, b Pt) Pt                  { return Lerp(a, b, 0.5) }
func TriangleArea(a, b, c Pt) float64 { return math.Abs(Orient(a, b, c)) / 2 }

// SignedArea is the shoelace sum of a polygon. In pixel space (y down) it is
// positive when the polygon runs clockwise as seen on screen.
func SignedArea(poly []Pt) float64 {
	var s float64
	for i := range poly {
		j := (i + 1) % len(poly)
		s += poly[i].Cross(poly[j])
	}
	return s / 2
}

// PolygonArea is the unsigned area of a simple polygon.
func PolygonArea(poly []Pt) float64 { return math.Abs(SignedArea(poly)) }

// ConvexHull returns the hull of points by Andrew's monotone chain, without
// collinear points, with positive signed area (clockwise on screen). Points
// that are not numbers are ignored; fewer than three distinct points give
// what there is.
func ConvexHull(points []Pt) []Pt {
	ps := make([]Pt, 0, len(points))
	for _, p := range points {
		if p.Finite() {
			ps = append(ps, p)
		}
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].X != ps[j].X {
			return ps[i].X < ps[j].X
		}
		return ps[i].Y < ps[j].Y
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
		return append([]Pt(nil), ps...)
	}
	hull := make([]Pt, 0, 2*len(ps))
	for _, p := range ps { // lower chain
		for len(hull) >= 2 && Orient(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	lower := len(hull) + 1
	for i := len(ps) - 2; i >= 0; i-- { // upper chain
		p := ps[i]
		for len(hull) >= lower && Orient(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	return hull[:len(hull)-1]
}

// InsideConvex reports whether p lies in the convex polygon (either winding),
// boundary included.
func InsideConvex(poly []Pt, p Pt) bool {
	if len(poly) < 3 {
		return false
	}
	var pos, neg bool
	for i := range poly {
		c := Orient(poly[i], poly[(i+1)%len(poly)], p)
		pos = pos || c > 0
		neg = neg || c < 0
		if pos && neg {
			return false
		}
	}
	return true
}

// RotatedRect is a rectangle of any orientation: Center, unit axis U (V is U
// turned 90°), and half extents along U and V.
type RotatedRect struct {
	Center, U    Pt
	HalfU, HalfV float64
}

func (r RotatedRect) Area() float64 { return 4 * r.HalfU * r.HalfV }

// Corners returns the four corners with positive signed area.
func (r RotatedRect) Corners() [4]Pt {
	v := Pt{-r.U.Y, r.U.X}
	a, b := r.U.Scale(r.HalfU), v.Scale(r.HalfV)
	return [4]Pt{
		r.Center.Sub(a).Sub(b), r.Center.Add(a).Sub(b),
		r.Center.Add(a).Add(b), r.Center.Sub(a).Add(b),
	}
}

// Expand grows the rectangle by m on every side.
func (r RotatedRect) Expand(m float64) RotatedRect {
	r.HalfU += m
	r.HalfV += m
	return r
}

// BoundingRect is the smallest rectangle around the points with one side
// along the unit vector u.
func BoundingRect(ps []Pt, u Pt) RotatedRect {
	v := Pt{-u.Y, u.X}
	minU, maxU, minV, maxV := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, p := range ps {
		pu, pv := p.Dot(u), p.Dot(v)
		minU, maxU = math.Min(minU, pu), math.Max(maxU, pu)
		minV, maxV = math.Min(minV, pv), math.Max(maxV, pv)
	}
	c := u.Scale((minU + maxU) / 2).Add(v.Scale((minV + maxV) / 2))
	return RotatedRect{Center: c, U: u, HalfU: (maxU - minU) / 2, HalfV: (maxV - minV) / 2}
}

// MinAreaRect is the smallest rectangle around the points, by rotating
// calipers: one side of the optimal rectangle lies on a hull edge, so it
// tries each edge direction. ok is false when the points span no area; a
// point or a segment then still gives its zero-width rectangle.
func MinAreaRect(points []Pt) (RotatedRect, bool) {
	hull := ConvexHull(points)
	if len(hull) == 0 {
		return RotatedRect{}, false
	}
	if len(hull) < 3 {
		a, b := hull[0], hull[len(hull)-1]
		u := Pt{1, 0}
		if d := b.Sub(a); d.Norm() > 0 {
			u = d.Scale(1 / d.Norm())
		}
		return RotatedRect{Center: Mid(a, b), U: u, HalfU: a.Dist(b) / 2}, false
	}
	best := RotatedRect{}
	bestArea := math.Inf(1)
	for i := range hull {
		e := hull[(i+1)%len(hull)].Sub(hull[i])
		n := e.Norm()
		if n == 0 {
			continue
		}
		r := BoundingRect(hull, e.Scale(1/n))
		if a := r.Area(); a < bestArea {
			bestArea, best = a, r
		}
	}
	return best, bestArea > 0 && !math.IsInf(bestArea, 0)
}

// MaxAreaQuad picks the four hull vertices that enclose the largest area: a
// photographed sheet's outline is a quadrilateral in perspective, and its
// corners are the hull points that span the most. The hull must be convex
// without collinear points (as ConvexHull gives); for fixed i the best j and
// l move forward as k does, so this runs in O(n²).
func MaxAreaQuad(hull []Pt) ([4]Pt, bool) {
	n := len(hull)
	if n < 4 {
		return [4]Pt{}, false
	}
	at := func(i int) Pt { return hull[i%n] }
	tri := func(a, b, c int) float64 { return TriangleArea(at(a), at(b), at(c)) }
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
	var q [4]Pt
	for m, idx := range best {
		q[m] = at(idx)
	}
	return q, bestArea > 0
}

// SegmentDist is the distance between segments ab and cd (0 when they cross).
func SegmentDist(a, b, c, d Pt) float64 {
	d1, d2 := Orient(a, b, c), Orient(a, b, d)
	d3, d4 := Orient(c, d, a), Orient(c, d, b)
	if ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0)) {
		return 0
	}
	return math.Min(math.Min(PointSegmentDist(a, c, d), PointSegmentDist(b, c, d)),
		math.Min(PointSegmentDist(c, a, b), PointSegmentDist(d, a, b)))
}

// PointSegmentDist is the distance from p to segment ab.
func PointSegmentDist(p, a, b Pt) float64 {
	ab := b.Sub(a)
	l2 := ab.Dot(ab)
	if l2 == 0 {
		return p.Dist(a)
	}
	t := math.Max(0, math.Min(1, p.Sub(a).Dot(ab)/l2))
	return p.Dist(a.Add(ab.Scale(t)))
}
