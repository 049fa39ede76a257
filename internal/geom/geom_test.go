package geom

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func near(a, b Pt, tol float64) bool { return a.Dist(b) <= tol }

func TestOrient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		a, b, c Pt
		sign    int
	}{
		{"clockwise on screen", Pt{0, 0}, Pt{2, 0}, Pt{0, 3}, 1},
		{"counter-clockwise on screen", Pt{0, 0}, Pt{0, 1}, Pt{1, 0}, -1},
		{"collinear", Pt{0, 0}, Pt{1, 1}, Pt{3, 3}, 0},
	}
	for _, tc := range tests {
		if got := Orient(tc.a, tc.b, tc.c); cmp.Compare(got, 0) != tc.sign {
			t.Errorf("%s: Orient = %v, want sign %v", tc.name, got, tc.sign)
		}
	}
}

func TestConvexHull(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []Pt
		want int // hull size
	}{
		{"empty", nil, 0},
		{"one point", []Pt{{1, 1}}, 1},
		{"duplicates", []Pt{{1, 1}, {1, 1}, {1, 1}}, 1},
		{"collinear", []Pt{{0, 0}, {1, 1}, {2, 2}, {3, 3}}, 2},
		{"square with inner and edge points", []Pt{{0, 0}, {4, 0}, {4, 4}, {0, 4}, {2, 2}, {2, 0}, {1, 3}}, 4},
		{"NaN ignored", []Pt{{0, 0}, {4, 0}, {math.NaN(), 1}, {0, 4}}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := ConvexHull(tc.in)
			if len(h) != tc.want {
				t.Fatalf("hull %v: %d points, want %d", h, len(h), tc.want)
			}
			if len(h) >= 3 && SignedArea(h) <= 0 {
				t.Errorf("hull %v not clockwise on screen", h)
			}
		})
	}
}

func TestInsideConvex(t *testing.T) {
	t.Parallel()
	cw := []Pt{{0, 0}, {4, 0}, {4, 4}, {0, 4}}
	ccw := []Pt{{0, 0}, {0, 4}, {4, 4}, {4, 0}}
	tests := []struct {
		name string
		poly []Pt
		p    Pt
		want bool
	}{
		{"inside", cw, Pt{1, 2}, true},
		{"inside, other winding", ccw, Pt{1, 2}, true},
		{"on an edge", cw, Pt{4, 2}, true},
		{"on a corner", ccw, Pt{0, 0}, true},
		{"outside", cw, Pt{5, 2}, false},
		{"outside, other winding", ccw, Pt{-1, -1}, false},
		{"on the edge's line beyond the corner", cw, Pt{6, 0}, false},
		{"segment", []Pt{{0, 0}, {4, 0}}, Pt{2, 0}, false},
		{"no polygon", nil, Pt{}, false},
	}
	for _, tc := range tests {
		if got := InsideConvex(tc.poly, tc.p); got != tc.want {
			t.Errorf("%s: InsideConvex(%v, %v) = %v, want %v", tc.name, tc.poly, tc.p, got, tc.want)
		}
	}
}

func TestRotatedRect(t *testing.T) {
	t.Parallel()
	a := 30 * math.Pi / 180
	r := RotatedRect{Center: Pt{10, 20}, U: Pt{math.Cos(a), math.Sin(a)}, HalfU: 4, HalfV: 2}
	c := r.Corners()
	if got := SignedArea(c[:]); math.Abs(got-r.Area()) > 1e-9 {
		t.Errorf("corners %v: signed area %v, want %v", c, got, r.Area())
	}
	if got := c[0].Dist(c[1]); math.Abs(got-8) > 1e-9 {
		t.Errorf("side along U is %v, want 8", got)
	}
	if e := r.Expand(1); e.Area() != 4*5*3 || e.Center != r.Center || e.U != r.U {
		t.Errorf("Expand(1) = %+v", e)
	}
	b := BoundingRect(c[:], r.U)
	if !near(b.Center, r.Center, 1e-9) || math.Abs(b.HalfU-r.HalfU) > 1e-9 || math.Abs(b.HalfV-r.HalfV) > 1e-9 {
		t.Errorf("BoundingRect of the corners along U = %+v, want %+v", b, r)
	}
}

func TestMinAreaRect(t *testing.T) {
	t.Parallel()
	for _, deg := range []float64{0, 5, 30, 45, 89, 120} {
		a := deg * math.Pi / 180
		want := RotatedRect{Center: Pt{100, 200}, U: Pt{math.Cos(a), math.Sin(a)}, HalfU: 40, HalfV: 15}
		c := want.Corners()
		// Corners, points inside and points on the edges.
		ps := append([]Pt(nil), c[:]...)
		rng := rand.New(rand.NewPCG(uint64(deg), 0))
		for range 50 {
			ps = append(ps, Lerp(Lerp(c[0], c[1], rng.Float64()), Lerp(c[3], c[2], rng.Float64()), rng.Float64()))
		}
		got, ok := MinAreaRect(ps)
		if !ok || math.Abs(got.Area()-want.Area()) > 1e-6*want.Area() || !near(got.Center, want.Center, 1e-6) {
			t.Errorf("%v°: got %+v (ok %v), want %+v", deg, got, ok, want)
		}
		gc := got.Corners()
		for _, p := range c {
			if !slices.ContainsFunc(gc[:], func(q Pt) bool { return near(p, q, 1e-6) }) {
				t.Errorf("%v°: corner %v not found in %v", deg, p, gc)
			}
		}
	}
	degenerate := []struct {
		name  string
		in    []Pt
		halfU float64
	}{
		{"no points", nil, 0},
		{"one point", []Pt{{3, 4}}, 0},
		{"collinear", []Pt{{0, 0}, {1, 1}, {2, 2}}, math.Sqrt2},
	}
	for _, tc := range degenerate {
		r, ok := MinAreaRect(tc.in)
		if ok || r.HalfV != 0 || math.Abs(r.HalfU-tc.halfU) > 1e-9 {
			t.Errorf("%s: %+v (ok %v), want a zero-width rectangle of half length %v and ok false", tc.name, r, ok, tc.halfU)
		}
	}
}

// TestMaxAreaQuad compares the O(n²) search with trying every four vertices.
func TestMaxAreaQuad(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := 4 + rng.IntN(30)
		var ps []Pt
		for range n {
			a := rng.Float64() * 2 * math.Pi
			r := 50 + 50*rng.Float64()
			ps = append(ps, Pt{r * math.Cos(a) * (1 + rng.Float64()), r * math.Sin(a)})
		}
		hull := ConvexHull(ps)
		if len(hull) < 4 {
			continue
		}
		brute := 0.0
		for i := range hull {
			for j := i + 1; j < len(hull); j++ {
				for k := j + 1; k < len(hull); k++ {
					for l := k + 1; l < len(hull); l++ {
						brute = math.Max(brute, PolygonArea([]Pt{hull[i], hull[j], hull[k], hull[l]}))
					}
				}
			}
		}
		q, ok := MaxAreaQuad(hull)
		if got := PolygonArea(q[:]); !ok || math.Abs(got-brute) > 1e-9*brute {
			t.Fatalf("trial %d (%d hull points): area %.6f, brute force %.6f", trial, len(hull), got, brute)
		}
	}
	if _, ok := MaxAreaQuad([]Pt{{0, 0}, {1, 0}, {0, 1}}); ok {
		t.Error("a triangle gave a quad")
	}
}

func TestSegmentDist(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		a, b, c, d Pt
		want       float64
	}{
		{"crossing", Pt{0, 0}, Pt{2, 2}, Pt{0, 2}, Pt{2, 0}, 0},
		{"parallel", Pt{0, 0}, Pt{4, 0}, Pt{1, 3}, Pt{3, 3}, 3},
		{"end to end", Pt{0, 0}, Pt{1, 0}, Pt{4, 4}, Pt{5, 5}, 5},
		{"touching at an end", Pt{0, 0}, Pt{2, 0}, Pt{1, 0}, Pt{1, 5}, 0},
		{"a point", Pt{3, 4}, Pt{3, 4}, Pt{0, 0}, Pt{0, 0}, 5},
	}
	for _, tc := range tests {
		if got := SegmentDist(tc.a, tc.b, tc.c, tc.d); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: SegmentDist = %v, want %v", tc.name, got, tc.want)
		}
	}
}
