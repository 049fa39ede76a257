package layout

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tallyhq/tally/internal/geom"
)

func near(a, b geom.Pt, tol float64) bool { return a.Dist(b) <= tol }

func TestQuadGap(t *testing.T) {
	t.Parallel()
	sq := func(x, y, s float64) [4]geom.Pt {
		return [4]geom.Pt{{X: x, Y: y}, {X: x + s, Y: y}, {X: x + s, Y: y + s}, {X: x, Y: y + s}}
	}
	tests := []struct {
		name string
		a, b [4]geom.Pt
		want float64
	}{
		{"apart on x", sq(0, 0, 1), sq(3, 0, 1), 2},
		{"diagonal", sq(0, 0, 1), sq(4, 5, 1), 5},
		{"overlapping", sq(0, 0, 2), sq(1, 1, 2), 0},
		{"nested", sq(0, 0, 10), sq(4, 4, 1), 0},
		{"crossing without corners inside", [4]geom.Pt{{X: 0, Y: 1}, {X: 3, Y: 1}, {X: 3, Y: 2}, {X: 0, Y: 2}}, [4]geom.Pt{{X: 1, Y: 0}, {X: 2, Y: 0}, {X: 2, Y: 3}, {X: 1, Y: 3}}, 0},
	}
	for _, tc := range tests {
		if got := quadGap(tc.a, tc.b); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: gap %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOrderCorners(t *testing.T) {
	t.Parallel()
	rect := [4]geom.Pt{{X: 0, Y: 0}, {X: 10, Y: 0}, {X: 10, Y: 20}, {X: 0, Y: 20}} // TL TR BR BL on screen
	tests := []struct {
		name string
		in   [4]geom.Pt
		dir  geom.Pt
		want [4]geom.Pt
	}{
		{"already ordered", rect, geom.Pt{X: 1, Y: 0}, rect},
		{"counter-clockwise input", [4]geom.Pt{rect[0], rect[3], rect[2], rect[1]}, geom.Pt{X: 1, Y: 0}, rect},
		{"rotated start", [4]geom.Pt{rect[2], rect[3], rect[0], rect[1]}, geom.Pt{}, rect},
		{"text upside down", rect, geom.Pt{X: -1, Y: 0}, [4]geom.Pt{rect[2], rect[3], rect[0], rect[1]}},
		{"text runs down the page", rect, geom.Pt{X: 0, Y: 1}, [4]geom.Pt{rect[1], rect[2], rect[3], rect[0]}},
	}
	for _, tc := range tests {
		if got := orderCorners(tc.in, tc.dir); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestHomography(t *testing.T) {
	t.Parallel()
	unit := [4]geom.Pt{{X: 0, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 1}, {X: 0, Y: 1}}
	t.Run("identity quad", func(t *testing.T) {
		t.Parallel()
		for _, q := range [][4]geom.Pt{unit, {{X: 10, Y: 20}, {X: 3000, Y: 25}, {X: 2990, Y: 4000}, {X: 5, Y: 3990}}} {
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
		src := [4]geom.Pt{{X: 0, Y: 0}, {X: 1488, Y: 0}, {X: 1488, Y: 3025}, {X: 0, Y: 3025}}
		dst := [4]geom.Pt{{X: 709, Y: 726}, {X: 2197, Y: 700}, {X: 2240, Y: 3800}, {X: 650, Y: 3760}}
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
			p := geom.Pt{X: rng.Float64() * 1488, Y: rng.Float64() * 3025}
			if q := inv.apply(h.apply(p)); !near(p, q, 1e-6) {
				t.Fatalf("round trip %v → %v", p, q)
			}
		}
		// Straight lines stay straight: the midpoint of an edge maps onto
		// the mapped edge.
		m := h.apply(geom.Mid(src[0], src[2]))
		if c := geom.Orient(dst[0], dst[2], m); math.Abs(c) > 1e-6*dst[0].Dist(dst[2]) {
			t.Errorf("diagonal midpoint %v is off the mapped diagonal by %g", m, c)
		}
	})
	t.Run("degenerate", func(t *testing.T) {
		t.Parallel()
		for _, dst := range [][4]geom.Pt{
			{{X: 0, Y: 0}, {X: 1, Y: 1}, {X: 2, Y: 2}, {X: 0, Y: 5}},          // three collinear
			{{X: 0, Y: 0}, {X: 1, Y: 1}, {X: 2, Y: 2}, {X: 3, Y: 3}},          // all collinear
			{{X: 5, Y: 5}, {X: 5, Y: 5}, {X: 5, Y: 5}, {X: 5, Y: 5}},          // one point
			{{X: 0, Y: 0}, {X: math.NaN(), Y: 1}, {X: 1, Y: 1}, {X: 0, Y: 1}}, // not a number
		} {
			if _, err := solveHomography(unit, dst); !errors.Is(err, ErrDegenerate) {
				t.Errorf("%v: err %v, want ErrDegenerate", dst, err)
			}
		}
		if _, err := solveAffine(unit, [4]geom.Pt{{X: 0, Y: 0}, {X: 1, Y: 1}, {X: 5, Y: 5}, {X: 2, Y: 2}}); !errors.Is(err, ErrDegenerate) {
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
