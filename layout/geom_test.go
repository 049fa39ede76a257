package layout

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func near(a, b pt, tol float64) bool { return a.dist(b) <= tol }

func TestConvexHull(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []pt
		want int // hull size
	}{
		{"empty", nil, 0},
		{"one point", []pt{{1, 1}}, 1},
		{"duplicates", []pt{{1, 1}, {1, 1}, {1, 1}}, 1},
		{"collinear", []pt{{0, 0}, {1, 1}, {2, 2}, {3, 3}}, 2},
		{"square with inner and edge points", []pt{{0, 0}, {4, 0}, {4, 4}, {0, 4}, {2, 2}, {2, 0}, {1, 3}}, 4},
		{"NaN ignored", []pt{{0, 0}, {4, 0}, {math.NaN(), 1}, {0, 4}}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := convexHull(tc.in)
			if len(h) != tc.want {
				t.Fatalf("hull %v: %d points, want %d", h, len(h), tc.want)
			}
			if len(h) >= 3 && signedArea(h) <= 0 {
				t.Errorf("hull %v not clockwise on screen", h)
			}
		})
	}
}

func TestMinAreaRect(t *testing.T) {
	t.Parallel()
	for _, deg := range []float64{0, 5, 30, 45, 89, 120} {
		a := deg * math.Pi / 180
		want := rotatedRect{center: pt{100, 200}, u: pt{math.Cos(a), math.Sin(a)}, halfU: 40, halfV: 15}
		c := want.corners()
		// Corners, points inside and points on the edges.
		ps := append([]pt(nil), c[:]...)
		rng := rand.New(rand.NewPCG(uint64(deg), 0))
		for range 50 {
			ps = append(ps, lerp(lerp(c[0], c[1], rng.Float64()), lerp(c[3], c[2], rng.Float64()), rng.Float64()))
		}
		got, ok := minAreaRect(ps)
		if !ok || math.Abs(got.area()-want.area()) > 1e-6*want.area() || !near(got.center, want.center, 1e-6) {
			t.Errorf("%v°: got %+v (ok %v), want %+v", deg, got, ok, want)
		}
		gc := got.corners()
		for _, p := range c {
			if !slices.ContainsFunc(gc[:], func(q pt) bool { return near(p, q, 1e-6) }) {
				t.Errorf("%v°: corner %v not found in %v", deg, p, gc)
			}
		}
	}
	if _, ok := minAreaRect([]pt{{0, 0}, {1, 1}, {2, 2}}); ok {
		t.Error("collinear points gave a rectangle with area")
	}
	if _, ok := minAreaRect(nil); ok {
		t.Error("no points gave a rectangle")
	}
}

// TestMaxAreaQuad compares the O(n²) search with trying every four vertices.
func TestMaxAreaQuad(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := 4 + rng.IntN(30)
		var ps []pt
		for range n {
			a := rng.Float64() * 2 * math.Pi
			r := 50 + 50*rng.Float64()
			ps = append(ps, pt{r * math.Cos(a) * (1 + rng.Float64()), r * math.Sin(a)})
		}
		hull := convexHull(ps)
		if len(hull) < 4 {
			continue
		}
		brute := 0.0
		for i := range hull {
			for j := i + 1; j < len(hull); j++ {
				for k := j + 1; k < len(hull); k++ {
					for l := k + 1; l < len(hull); l++ {
						brute = math.Max(brute, polygonArea([]pt{hull[i], hull[j], hull[k], hull[l]}))
					}
				}
			}
		}
		q, ok := maxAreaQuad(hull)
		if got := polygonArea(q[:]); !ok || math.Abs(got-brute) > 1e-9*brute {
			t.Fatalf("trial %d (%d hull points): area %.6f, brute force %.6f", trial, len(hull), got, brute)
		}
	}
	if _, ok := maxAreaQuad([]pt{{0, 0}, {1, 0}, {0, 1}}); ok {
		t.Error("a triangle gave a quad")
	}
}

func TestQuadGap(t *testing.T) {
	t.Parallel()
	sq := func(x, y, s float64) [4]pt { return [4]pt{{x, y}, {x + s, y}, {x + s, y + s}, {x, y + s}} }
	tests := []struct {
		name string
		a, b [4]pt
		want float64
	}{
		{"apart on x", sq(0, 0, 1), sq(3, 0, 1), 2},
		{"diagonal", sq(0, 0, 1), sq(4, 5, 1), 5},
		{"overlapping", sq(0, 0, 2), sq(1, 1, 2), 0},
		{"nested", sq(0, 0, 10), sq(4, 4, 1), 0},
		{"crossing without corners inside", [4]pt{{0, 1}, {3, 1}, {3, 2}, {0, 2}}, [4]pt{{1, 0}, {2, 0}, {2, 3}, {1, 3}}, 0},
	}
	for _, tc := range tests {
		if got := quadGap(tc.a, tc.b); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: gap %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOrderCorners(t *testing.T) {
	t.Parallel()
	rect := [4]pt{{0, 0}, {10, 0}, {10, 20}, {0, 20}} // TL TR BR BL on screen
	tests := []struct {
		name string
		in   [4]pt
		dir  pt
		want [4]pt
	}{
		{"already ordered", rect, pt{1, 0}, rect},
		{"counter-clockwise input", [4]pt{rect[0], rect[3], rect[2], rect[1]}, pt{1, 0}, rect},
		{"rotated start", [4]pt{rect[2], rect[3], rect[0], rect[1]}, pt{}, rect},
		{"text upside down", rect, pt{-1, 0}, [4]pt{rect[2], rect[3], rect[0], rect[1]}},
		{"text runs down the page", rect, pt{0, 1}, [4]pt{rect[1], rect[2], rect[3], rect[0]}},
	}
	for _, tc := range tests {
		if got := orderCorners(tc.in, tc.dir); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestHomography(t *testing.T) {
	t.Parallel()
	unit := [4]pt{{0, 0}, {1, 0}, {1, 1}, {0, 1}}
	t.Run("identity quad", func(t *testing.T) {
		t.Parallel()
		for _, q := range [][4]pt{unit, {{10, 20}, {3000, 25}, {2990, 4000}, {5, 3990}}} {
			h, err := solveHomography(q, q)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range identity3() {
				if math.Abs(h[i]-v) > 1e-9 {
					t.Fatalf("H of %v onto itself = %v, want identity", q, h)
				}
			}
		}
	})
	t.Run("maps corners and inverts", func(t *testing.T) {
		t.Parallel()
		src := [4]pt{{0, 0}, {1488, 0}, {1488, 3025}, {0, 3025}}
		dst := [4]pt{{709, 726}, {2197, 700}, {2240, 3800}, {650, 3760}}
		h, err := solveHomography(src, dst)
		if err != nil {
			t.Fatal(err)
		}
		inv, err := h.inverse()
		if err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			if p := h.apply(src[i]); !near(p, dst[i], 1e-6) {
				t.Errorf("H(%v) = %v, want %v", src[i], p, dst[i])
			}
		}
		rng := rand.New(rand.NewPCG(3, 4))
		for range 100 {
			p := pt{rng.Float64() * 1488, rng.Float64() * 3025}
			if q := inv.apply(h.apply(p)); !near(p, q, 1e-6) {
				t.Fatalf("round trip %v → %v", p, q)
			}
		}
		// Straight lines stay straight: the midpoint of an edge maps onto
		// the mapped edge.
		m := h.apply(mid(src[0], src[2]))
		if c := orient(dst[0], dst[2], m); math.Abs(c) > 1e-6*dst[0].dist(dst[2]) {
			t.Errorf("diagonal midpoint %v is off the mapped diagonal by %g", m, c)
		}
	})
	t.Run("degenerate", func(t *testing.T) {
		t.Parallel()
		for _, dst := range [][4]pt{
			{{0, 0}, {1, 1}, {2, 2}, {0, 5}},          // three collinear
			{{0, 0}, {1, 1}, {2, 2}, {3, 3}},          // all collinear
			{{5, 5}, {5, 5}, {5, 5}, {5, 5}},          // one point
			{{0, 0}, {math.NaN(), 1}, {1, 1}, {0, 1}}, // not a number
		} {
			if _, err := solveHomography(unit, dst); !errors.Is(err, ErrDegenerate) {
				t.Errorf("%v: err %v, want ErrDegenerate", dst, err)
			}
		}
		if _, err := solveAffine(unit, [4]pt{{0, 0}, {1, 1}, {5, 5}, {2, 2}}); !errors.Is(err, ErrDegenerate) {
			t.Errorf("affine onto collinear corners: err %v, want ErrDegenerate", err)
		}
	})
}

func TestOtsu(t *testing.T) {
	t.Parallel()
	var h histogram
	h[40], h[45], h[200], h[210] = 100, 80, 300, 50
	th, dark, bright, share, ok := otsu(&h)
	if !ok || th < 45 || th >= 200 || math.Abs(dark-(40*100+45*80)/180.0) > 1e-9 || bright < 200 || math.Abs(share-350.0/530) > 1e-9 {
		t.Errorf("otsu = %d %.1f %.1f %.2f %v", th, dark, bright, share, ok)
	}
	var flat histogram
	flat[128] = 1000
	if _, _, _, _, ok := otsu(&flat); ok {
		t.Error("a one-level histogram was split")
	}
	if p := h.percentile(0.5); p != 200 {
		t.Errorf("median level %d, want 200", p)
	}
}

func TestDBSCAN(t *testing.T) {
	t.Parallel()
	// Points on a line: 0,1,2 close; 10,11 close; 30 alone.
	xs := []float64{0, 1, 2, 10, 11, 30}
	nb := make([][]int, len(xs))
	for i := range xs {
		for j := range xs {
			if i != j && math.Abs(xs[i]-xs[j]) <= 1.5 {
				nb[i] = append(nb[i], j)
			}
		}
	}
	if got, want := dbscan(len(xs), 2, nb), []int{0, 0, 0, 1, 1, noise}; !slices.Equal(got, want) {
		t.Errorf("minPts 2: %v, want %v", got, want)
	}
	if got, want := dbscan(len(xs), 3, nb), []int{0, 0, 0, noise, noise, noise}; !slices.Equal(got, want) {
		t.Errorf("minPts 3: %v, want %v", got, want)
	}
}

func TestClusterIntervals(t *testing.T) {
	t.Parallel()
	lo := []float64{500, 0, 40, 520, 100, 900}
	hi := []float64{700, 50, 120, 560, 130, 1000}
	if got, want := clusterIntervals(lo, hi, 30), []int{1, 0, 0, 1, 0, 2}; !slices.Equal(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
	if got := clusterIntervals(nil, nil, 1); len(got) != 0 {
		t.Errorf("no intervals gave %v", got)
	}
}
