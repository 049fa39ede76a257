package ocrstage_test

import (
	"math"
	"testing"

	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocrstage"
)

// rotated returns the corners of a w×h pixel rectangle centred in a
// 1000×1000 image, rotated by deg, in normalized coordinates.
func rotated(w, h, deg float64) ocr.Quad {
	s, c := math.Sincos(deg * math.Pi / 180)
	pt := func(x, y float64) ocr.Point {
		return ocr.FromPixel(500+x*c-y*s, 500+x*s+y*c, 1000, 1000)
	}
	return ocr.Quad{TopLeft: pt(-w/2, -h/2), TopRight: pt(w/2, -h/2), BottomRight: pt(w/2, h/2), BottomLeft: pt(-w/2, h/2)}
}

func TestUpright(t *testing.T) {
	t.Parallel()
	skewed := rotated(400, 800, 0)
	skewed.TopRight.X -= 0.05 // a trapezoid: perspective
	tests := []struct {
		name string
		q    ocr.Quad
		want bool
	}{
		{"axis-aligned", rotated(400, 800, 0), true},
		{"1 degree", rotated(400, 800, 1), true},
		{"-1.5 degrees", rotated(400, 800, -1.5), true},
		{"5 degrees", rotated(400, 800, 5), false},
		{"-10 degrees", rotated(400, 800, -10), false},
		{"perspective", skewed, false},
	}
	for _, tt := range tests {
		if got := ocrstage.Upright(tt.q, 1000, 1000); got != tt.want {
			t.Errorf("%s: Upright = %v, want %v", tt.name, got, tt.want)
		}
	}
}
