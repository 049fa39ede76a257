package layout

import (
	"math"
	"sort"

	"github.com/tallyhq/tally/internal/geom"
)

// quadGap is the empty space between two quads: 0 when they touch or one
// holds the other, else the shortest distance between their edges.
func quadGap(a, b [4]geom.Pt) float64 {
	for _, p := range a {
		if geom.InsideConvex(b[:], p) {
			return 0
		}
	}
	for _, p := range b {
		if geom.InsideConvex(a[:], p) {
			return 0
		}
	}
	best := math.Inf(1)
	for i := range 4 {
		for j := range 4 {
			best = math.Min(best, geom.SegmentDist(a[i], a[(i+1)%4], b[j], b[(j+1)%4]))
		}
	}
	return best
}

// orderCorners returns a convex quad's corners as TL, TR, BR, BL of the
// upright sheet: clockwise on screen, starting where the edge to the next
// corner runs most nearly along the text direction dir (pixel space). A zero
// dir means the image's own x axis.
func orderCorners(q [4]geom.Pt, dir geom.Pt) [4]geom.Pt {
	if geom.SignedArea(q[:]) < 0 {
		q[1], q[3] = q[3], q[1]
	}
	if dir.Norm() == 0 || !dir.Finite() {
		dir = geom.Pt{X: 1, Y: 0}
	}
	dir = dir.Scale(1 / dir.Norm())
	best, bestDot := 0, math.Inf(-1)
	for r := range 4 {
		e := q[(r+1)%4].Sub(q[r])
		n := e.Norm()
		if n == 0 {
			continue
		}
		if d := e.Dot(dir) / n; d > bestDot {
			best, bestDot = r, d
		}
	}
	return [4]geom.Pt{q[best], q[(best+1)%4], q[(best+2)%4], q[(best+3)%4]}
}

// isConvexQuad reports whether q is a strictly convex quadrilateral (no three
// corners collinear, not self-intersecting), relative to its own size.
func isConvexQuad(q [4]geom.Pt) bool {
	scale := 0.0
	for i := range 4 {
		if !q[i].Finite() {
			return false
		}
		scale = math.Max(scale, q[i].Dist(q[(i+2)%4]))
	}
	if scale == 0 {
		return false
	}
	eps := 1e-9 * scale * scale
	var pos, neg bool
	for i := range 4 {
		c := geom.Orient(q[i], q[(i+1)%4], q[(i+2)%4])
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
