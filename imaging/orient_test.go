package imaging

import (
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"testing"
)

// referenceSource maps displayed pixel (x, y) to the stored pixel of a w×h
// image, one EXIF case per line.
func referenceSource(o, x, y, w, h int) (int, int) {
	switch o {
	case 2:
		return w - 1 - x, y
	case 3:
		return w - 1 - x, h - 1 - y
	case 4:
		return x, h - 1 - y
	case 5:
		return y, x
	case 6:
		return y, h - 1 - x
	case 7:
		return w - 1 - y, h - 1 - x
	case 8:
		return w - 1 - y, x
	}
	return x, y
}

// atOnly hides every method but those of image.Image, to reach the
// generic path.
type atOnly struct{ image.Image }

func randomYCbCr(rng *rand.Rand, r image.Rectangle, s image.YCbCrSubsampleRatio) *image.YCbCr {
	img := image.NewYCbCr(r, s)
	for _, p := range [][]byte{img.Y, img.Cb, img.Cr} {
		for i := range p {
			p[i] = byte(rng.IntN(256))
		}
	}
	return img
}

// testImages returns images of every pixel type a decoder produces, with
// random content, in sizes that exercise odd dimensions and sub-images.
func testImages() map[string]image.Image {
	rng := rand.New(rand.NewPCG(7, 11))
	fill := func(pix []byte) {
		for i := range pix {
			pix[i] = byte(rng.IntN(256))
		}
	}
	r := image.Rect(0, 0, 7, 5)
	gray := image.NewGray(r)
	fill(gray.Pix)
	gray16 := image.NewGray16(r)
	fill(gray16.Pix)
	rgba := image.NewRGBA(image.Rect(0, 0, 9, 6))
	fill(rgba.Pix)
	nrgba := image.NewNRGBA(r)
	fill(nrgba.Pix)
	cmyk := image.NewCMYK(r)
	fill(cmyk.Pix)
	rgba64 := image.NewRGBA64(r)
	fill(rgba64.Pix)
	pal := image.NewPaletted(r, color.Palette{color.Black, color.White, color.RGBA{200, 10, 10, 255}})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(rng.IntN(3))
	}
	// Larger than the transposing tile in both directions.
	bigGray := image.NewGray(image.Rect(0, 0, 70, 45))
	fill(bigGray.Pix)
	bigRGBA := image.NewRGBA(image.Rect(0, 0, 40, 67))
	fill(bigRGBA.Pix)
	nycbcra := image.NewNYCbCrA(r, image.YCbCrSubsampleRatio420)
	fill(nycbcra.Y)
	fill(nycbcra.Cb)
	fill(nycbcra.Cr)
	fill(nycbcra.A)
	images := map[string]image.Image{
		"gray": gray, "gray16": gray16, "rgba": rgba, "nrgba": nrgba, "cmyk": cmyk,
		"rgba64": rgba64, "paletted": pal, "nycbcra": nycbcra,
		"rgba sub-image": rgba.SubImage(image.Rect(2, 1, 8, 6)),
		"at only":        atOnly{nrgba},
		"big gray":       bigGray,
		"big rgba":       bigRGBA,
		"big ycbcr 420":  randomYCbCr(rng, image.Rect(0, 0, 80, 66), image.YCbCrSubsampleRatio420),
		"big ycbcr odd":  randomYCbCr(rng, image.Rect(0, 0, 71, 67), image.YCbCrSubsampleRatio420),
	}
	ratios := map[string]image.YCbCrSubsampleRatio{
		"444": image.YCbCrSubsampleRatio444, "422": image.YCbCrSubsampleRatio422,
		"420": image.YCbCrSubsampleRatio420, "440": image.YCbCrSubsampleRatio440,
		"411": image.YCbCrSubsampleRatio411, "410": image.YCbCrSubsampleRatio410,
	}
	for name, s := range ratios {
		images["ycbcr "+name+" even"] = randomYCbCr(rng, image.Rect(0, 0, 8, 4), s)
		images["ycbcr "+name+" odd"] = randomYCbCr(rng, image.Rect(0, 0, 7, 5), s)
		big := randomYCbCr(rng, image.Rect(0, 0, 16, 12), s)
		images["ycbcr "+name+" sub-image aligned"] = big.SubImage(image.Rect(4, 2, 12, 10))
		images["ycbcr "+name+" sub-image odd"] = big.SubImage(image.Rect(3, 1, 10, 8))
	}
	return images
}

func TestTransformMatchesReference(t *testing.T) {
	t.Parallel()
	for name, img := range testImages() {
		for o := 1; o <= 8; o++ {
			t.Run(fmt.Sprintf("%s/%d", name, o), func(t *testing.T) {
				t.Parallel()
				b := img.Bounds()
				out := transform(img, o)
				ob := out.Bounds()
				w, h := b.Dx(), b.Dy()
				wantW, wantH := w, h
				if o >= 5 {
					wantW, wantH = h, w
				}
				if ob != image.Rect(0, 0, wantW, wantH) {
					t.Fatalf("bounds %v, want %dx%d", ob, wantW, wantH)
				}
				for y := range wantH {
					for x := range wantW {
						sx, sy := referenceSource(o, x, y, w, h)
						want := img.At(b.Min.X+sx, b.Min.Y+sy)
						got := out.At(x, y)
						wr, wg, wb, wa := want.RGBA()
						gr, gg, gb, ga := got.RGBA()
						if wr != gr || wg != gg || wb != gb || wa != ga {
							t.Fatalf("pixel (%d,%d) = %v, want %v from stored (%d,%d)", x, y, got, want, sx, sy)
						}
					}
				}
			})
		}
	}
}

func TestTransformKeepsLayout(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	tests := []struct {
		in   image.YCbCrSubsampleRatio
		size image.Point
		o    int
		want image.YCbCrSubsampleRatio
	}{
		{image.YCbCrSubsampleRatio420, image.Pt(8, 6), 6, image.YCbCrSubsampleRatio420},
		{image.YCbCrSubsampleRatio420, image.Pt(8, 6), 3, image.YCbCrSubsampleRatio420},
		{image.YCbCrSubsampleRatio422, image.Pt(8, 6), 8, image.YCbCrSubsampleRatio440},
		{image.YCbCrSubsampleRatio422, image.Pt(8, 6), 2, image.YCbCrSubsampleRatio422},
		{image.YCbCrSubsampleRatio420, image.Pt(7, 6), 6, image.YCbCrSubsampleRatio444},
		{image.YCbCrSubsampleRatio411, image.Pt(8, 6), 6, image.YCbCrSubsampleRatio444},
	}
	for _, tt := range tests {
		out, ok := transform(randomYCbCr(rng, image.Rectangle{Max: tt.size}, tt.in), tt.o).(*image.YCbCr)
		if !ok || out.SubsampleRatio != tt.want {
			t.Errorf("%v %v orientation %d: got %T %v, want YCbCr %v", tt.in, tt.size, tt.o, out, out.SubsampleRatio, tt.want)
		}
	}
	src := image.NewRGBA(image.Rect(0, 0, 3, 2))
	if orient(src, 1) != image.Image(src) || orient(src, 0) != image.Image(src) || orient(src, 9) != image.Image(src) {
		t.Error("orientation 1 or an invalid value must return the image itself")
	}
	if transform(src, 1) == image.Image(src) {
		t.Error("transform(…, 1) must copy")
	}
	if _, ok := transform(atOnly{src}, 6).(*image.RGBA64); !ok {
		t.Error("generic path should give RGBA64")
	}
	empty := transform(image.NewGray(image.Rect(0, 0, 0, 5)), 6)
	if empty.Bounds().Dx() != 5 || empty.Bounds().Dy() != 0 {
		t.Errorf("empty image transformed to %v", empty.Bounds())
	}
}
