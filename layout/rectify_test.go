package layout

import (
	"errors"
	"image"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tallyhq/tally/ocr"
)

func TestTransformRoundTrip(t *testing.T) {
	t.Parallel()
	img := image.NewGray(image.Rect(0, 0, 800, 600))
	quads := map[string]ocr.Quad{
		"perspective":    {TopLeft: ocr.Point{X: 0.3, Y: 0.85}, TopRight: ocr.Point{X: 0.72, Y: 0.9}, BottomRight: ocr.Point{X: 0.75, Y: 0.1}, BottomLeft: ocr.Point{X: 0.25, Y: 0.12}},
		"whole image":    wholeImage(),
		"past the edges": {TopLeft: ocr.Point{X: -0.1, Y: 1.1}, TopRight: ocr.Point{X: 1.2, Y: 1.1}, BottomRight: ocr.Point{X: 1.2, Y: -0.3}, BottomLeft: ocr.Point{X: -0.1, Y: -0.3}},
	}
	for name, q := range quads {
		for _, typ := range []string{ocr.TypePhoto, ocr.TypeScan, ocr.TypeNative} {
			t.Run(name+"/"+typ, func(t *testing.T) {
				t.Parallel()
				_, tr, err := Rectify(img, Region{ClusterID: 1, Bounds: q}, typ)
				if err != nil {
					t.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(5, 6))
				for range 200 {
					p := ocr.Point{X: rng.Float64(), Y: rng.Float64()}
					if back := tr.ToImage(tr.ToReceipt(p)); math.Abs(back.X-p.X) > 1e-9 || math.Abs(back.Y-p.Y) > 1e-9 {
						t.Fatalf("ToImage(ToReceipt(%+v)) = %+v", p, back)
					}
					if back := tr.ToReceipt(tr.ToImage(p)); math.Abs(back.X-p.X) > 1e-9 || math.Abs(back.Y-p.Y) > 1e-9 {
						t.Fatalf("ToReceipt(ToImage(%+v)) = %+v", p, back)
					}
				}
			})
		}
	}
}

func TestIdentityRectify(t *testing.T) {
	t.Parallel()
	// Rectifying the whole image as a photo is the identity: same size, same
	// pixels, and the transform maps every point to itself.
	rng := rand.New(rand.NewPCG(7, 8))
	img := image.NewGray(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256))
	}
	for _, typ := range []string{ocr.TypePhoto, ocr.TypeScan, ocr.TypeNative} {
		crop, tr, err := Rectify(img, Region{Bounds: wholeImage()}, typ)
		if err != nil {
			t.Fatal(err)
		}
		if crop.Rect != img.Rect {
			t.Fatalf("%s: crop %v, want %v", typ, crop.Rect, img.Rect)
		}
		for i := range img.Pix {
			if crop.Pix[i] != img.Pix[i] {
				t.Fatalf("%s: pixel %d is %d, want %d", typ, i, crop.Pix[i], img.Pix[i])
			}
		}
		p := ocr.Point{X: 0.37, Y: 0.81}
		if q := tr.ToImage(p); math.Abs(q.X-p.X) > 1e-12 || math.Abs(q.Y-p.Y) > 1e-12 {
			t.Errorf("%s: ToImage(%+v) = %+v", typ, p, q)
		}
	}
	var zero Transform
	if p := (ocr.Point{X: 0.2, Y: 0.3}); zero.ToImage(p) != p || zero.ToReceipt(p) != p {
		t.Error("the zero Transform is not the identity")
	}
}

// TestRectifyRotation: a scan region rotated by 90° reads text that runs
// down the page left to right in the crop.
func TestRectifyRotation(t *testing.T) {
	t.Parallel()
	img := image.NewGray(image.Rect(0, 0, 40, 20))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	img.Pix[5*img.Stride+2] = 0 // a mark near the top-left
	img.Pix[5*img.Stride+3] = 0
	// The receipt's top edge is the image's right edge: TL at the image's
	// top-right corner.
	q := ocr.Quad{TopLeft: ocr.Point{X: 1, Y: 1}, TopRight: ocr.Point{X: 1, Y: 0}, BottomRight: ocr.Point{X: 0, Y: 0}, BottomLeft: ocr.Point{X: 0, Y: 1}}
	crop, _, err := Rectify(img, Region{Bounds: q}, ocr.TypeScan)
	if err != nil {
		t.Fatal(err)
	}
	if crop.Rect.Dx() != 20 || crop.Rect.Dy() != 40 {
		t.Fatalf("crop %v, want 20×40", crop.Rect)
	}
	// Image (2..3, 5) ends up in the crop's bottom rows (image x small =
	// receipt bottom), at crop column 5 (image y 5 from the receipt's
	// left edge, the image's top).
	if v := crop.GrayAt(5, 37).Y; v > 100 {
		t.Errorf("mark not found where expected: %d", v)
	}
}

func TestRectifyDegenerate(t *testing.T) {
	t.Parallel()
	img := image.NewGray(image.Rect(0, 0, 100, 100))
	p := func(x, y float64) ocr.Point { return ocr.Point{X: x, Y: y} }
	tests := []struct {
		name string
		q    ocr.Quad
	}{
		{"collinear corners", ocr.Quad{TopLeft: p(0.1, 0.1), TopRight: p(0.5, 0.5), BottomRight: p(0.9, 0.9), BottomLeft: p(0.3, 0.3)}},
		{"three collinear", ocr.Quad{TopLeft: p(0.1, 0.9), TopRight: p(0.5, 0.9), BottomRight: p(0.9, 0.9), BottomLeft: p(0.1, 0.1)}},
		{"one point", ocr.Quad{TopLeft: p(0.5, 0.5), TopRight: p(0.5, 0.5), BottomRight: p(0.5, 0.5), BottomLeft: p(0.5, 0.5)}},
		{"self-intersecting", ocr.Quad{TopLeft: p(0.1, 0.9), TopRight: p(0.9, 0.1), BottomRight: p(0.9, 0.9), BottomLeft: p(0.1, 0.1)}},
		{"NaN", ocr.Quad{TopLeft: p(math.NaN(), 0.9), TopRight: p(0.9, 0.9), BottomRight: p(0.9, 0.1), BottomLeft: p(0.1, 0.1)}},
		{"zero value", ocr.Quad{}},
	}
	for _, tc := range tests {
		for _, typ := range []string{ocr.TypePhoto, ocr.TypeScan, ocr.TypeNative} {
			if _, _, err := Rectify(img, Region{Bounds: tc.q}, typ); !errors.Is(err, ErrDegenerate) {
				t.Errorf("%s/%s: err %v, want ErrDegenerate", tc.name, typ, err)
			}
		}
	}
	outside := ocr.Quad{TopLeft: p(1.5, 2), TopRight: p(2, 2), BottomRight: p(2, 1.5), BottomLeft: p(1.5, 1.5)}
	if _, _, err := Rectify(img, Region{Bounds: outside}, ocr.TypeNative); !errors.Is(err, ErrDegenerate) {
		t.Errorf("native crop outside the image: err %v, want ErrDegenerate", err)
	}
	if _, _, err := Rectify(nil, Region{Bounds: wholeImage()}, ocr.TypePhoto); !errors.Is(err, ErrEmptyImage) {
		t.Errorf("nil image: err %v, want ErrEmptyImage", err)
	}
	one := image.NewGray(image.Rect(0, 0, 1, 1))
	one.Pix[0] = 77
	for _, typ := range []string{ocr.TypePhoto, ocr.TypeScan, ocr.TypeNative} {
		crop, _, err := Rectify(one, Region{Bounds: wholeImage()}, typ)
		if err != nil || crop.Rect.Dx() != 1 || crop.Rect.Dy() != 1 || crop.Pix[0] != 77 {
			t.Errorf("1×1 %s: %v %v", typ, crop, err)
		}
	}
}

// TestRectifyCapsSize: a region larger than the image (its corners far
// outside) is scaled down so neither side exceeds the image's longer side.
func TestRectifyCapsSize(t *testing.T) {
	t.Parallel()
	img := image.NewGray(image.Rect(0, 0, 100, 50))
	q := ocr.Quad{TopLeft: ocr.Point{X: -2, Y: 1}, TopRight: ocr.Point{X: 3, Y: 1}, BottomRight: ocr.Point{X: 3, Y: 0}, BottomLeft: ocr.Point{X: -2, Y: 0}}
	crop, _, err := Rectify(img, Region{Bounds: q}, ocr.TypePhoto)
	if err != nil {
		t.Fatal(err)
	}
	if crop.Rect.Dx() != 100 || crop.Rect.Dy() != 10 {
		t.Errorf("crop %v, want 100×10 (500×50 scaled to the longer side)", crop.Rect)
	}
}
