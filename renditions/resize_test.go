package renditions

import (
	"image"
	"image/color"
	"testing"

	"golang.org/x/image/draw"
)

func TestResize(t *testing.T) {
	t.Parallel()
	big := halves(400, 300)
	tests := []struct {
		name    string
		img     image.Image
		maxSide int
		want    image.Rectangle
		same    bool // Resize returns img itself
	}{
		{"landscape", big, 100, image.Rect(0, 0, 100, 75), false},
		{"portrait", halves(300, 400), 100, image.Rect(0, 0, 75, 100), false},
		{"rounds the short side", halves(1300, 40), 1200, image.Rect(0, 0, 1200, 37), false},
		{"keeps a 1 px short side", halves(1000, 1), 10, image.Rect(0, 0, 10, 1), false},
		{"sub-image moves to the origin", big.SubImage(image.Rect(100, 100, 300, 200)), 50, image.Rect(0, 0, 50, 25), false},
		{"never upscales", big, 1000, big.Rect, true},
		{"long side equal to maxSide", big, 400, big.Rect, true},
		{"zero is full size", big, 0, big.Rect, true},
		{"negative is full size", big, -3, big.Rect, true},
		{"empty", image.NewRGBA(image.Rect(0, 0, 0, 10)), 5, image.Rect(0, 0, 0, 10), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Resize(tt.img, tt.maxSide)
			if got.Bounds() != tt.want {
				t.Errorf("bounds %v, want %v", got.Bounds(), tt.want)
			}
			if same := got == tt.img; same != tt.same {
				t.Errorf("returned the input itself: %v, want %v", same, tt.same)
			}
		})
	}
	if Resize(nil, 10) != nil {
		t.Error("Resize(nil) is not nil")
	}
}

// TestResizeSubImageKeepsItsPixels guards against scaling the parent image
// instead of the crop (a receipt crop is a SubImage of the photo).
func TestResizeSubImageKeepsItsPixels(t *testing.T) {
	t.Parallel()
	crop := halves(400, 100).SubImage(image.Rect(200, 0, 400, 100)) // all blue
	got := Resize(crop, 50)
	for _, x := range []int{0, 25, 49} {
		if c := color.RGBAModel.Convert(got.At(x, 12)).(color.RGBA); c.B < 200 || c.R > 50 {
			t.Errorf("pixel %d: %v, want blue", x, c)
		}
	}
	packed := packedRGBA(crop)
	if packed.Rect.Min != (image.Point{}) || packed.Stride != 4*200 {
		t.Errorf("packed rect %v stride %d", packed.Rect, packed.Stride)
	}
	if c := packed.RGBAAt(0, 0); c.B < 200 {
		t.Errorf("packed pixel %v, want blue", c)
	}
}

// TestResizeFilterAgainstBoxAverage pins why Resize uses Catmull-Rom: on a
// 4:1 reduction of text-like detail it stays close to the exact average of
// each 4×4 block, where the cheaper approximate bilinear filter samples a
// few pixels and aliases.
func TestResizeFilterAgainstBoxAverage(t *testing.T) {
	t.Parallel()
	src := photoLike(400, 400)
	ref := image.NewRGBA(image.Rect(0, 0, 100, 100))
	for y := range 100 {
		for x := range 100 {
			var sum [3]int
			for dy := range 4 {
				for dx := range 4 {
					o := src.PixOffset(4*x+dx, 4*y+dy)
					for c := range 3 {
						sum[c] += int(src.Pix[o+c])
					}
				}
			}
			o := ref.PixOffset(x, y)
			for c := range 3 {
				ref.Pix[o+c] = uint8(sum[c] / 16)
			}
		}
	}
	mse := func(img image.Image) float64 {
		m := img.(*image.RGBA)
		var se float64
		for i := range m.Pix {
			if i%4 != 3 {
				d := float64(m.Pix[i]) - float64(ref.Pix[i])
				se += d * d
			}
		}
		return se / float64(100*100*3)
	}
	bilinear := image.NewRGBA(ref.Rect)
	draw.ApproxBiLinear.Scale(bilinear, bilinear.Rect, src, src.Rect, draw.Src, nil)
	got, cheap := mse(Resize(src, 100)), mse(bilinear)
	t.Logf("mean squared error against the box average: Resize %.1f, ApproxBiLinear %.1f", got, cheap)
	if got*4 > cheap {
		t.Errorf("Resize error %.1f is not well below ApproxBiLinear's %.1f", got, cheap)
	}
}
