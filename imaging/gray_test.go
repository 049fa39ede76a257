package imaging

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"testing"
)

// genericGray is the reference: the pixel-by-pixel path with no fast path.
func genericGray(img image.Image) *image.Gray {
	dst := image.NewGray(img.Bounds())
	grayGeneric(dst, img)
	return dst
}

func TestGrayFastPathsMatchGeneric(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	r := image.Rect(0, 0, 37, 23)

	opaqueRGBA := image.NewRGBA(r)
	translucentRGBA := image.NewRGBA(r)
	nrgba := image.NewNRGBA(r)
	ycbcr444 := image.NewYCbCr(r, image.YCbCrSubsampleRatio444)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}
			opaqueRGBA.SetRGBA(x, y, c)
			nc := color.NRGBA{c.R, c.G, c.B, uint8(rng.IntN(256))}
			nrgba.SetNRGBA(x, y, nc)
			translucentRGBA.Set(x, y, nc)
			yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
			ycbcr444.Y[ycbcr444.YOffset(x, y)] = yy
			ycbcr444.Cb[ycbcr444.COffset(x, y)] = cb
			ycbcr444.Cr[ycbcr444.COffset(x, y)] = cr
		}
	}
	// A 4:2:0 image as the JPEG decoder produces it, from a smooth picture.
	smooth := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for y := range 48 {
		for x := range 64 {
			smooth.SetRGBA(x, y, color.RGBA{uint8(4 * x), uint8(5 * y), uint8(2*x + y), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, smooth, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	ycbcr420, err := jpeg.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ycbcr420.(*image.YCbCr); !ok {
		t.Fatalf("jpeg decoded to %T", ycbcr420)
	}
	gray := image.NewGray(r)
	gray16 := image.NewGray16(r)
	pal := image.NewPaletted(r, color.Palette{color.Black, color.White, color.NRGBA{200, 10, 10, 128}})
	for i := range gray.Pix {
		gray.Pix[i] = uint8(rng.IntN(256))
	}
	for i := range gray16.Pix {
		gray16.Pix[i] = uint8(rng.IntN(256))
	}
	for i := range pal.Pix {
		pal.Pix[i] = uint8(rng.IntN(3))
	}

	tests := []struct {
		name string
		img  image.Image
		tol  int
	}{
		{"ycbcr 4:4:4", ycbcr444, 1},
		{"ycbcr 4:2:0 from jpeg", ycbcr420, 1},
		{"ycbcr sub-image", ycbcr444.SubImage(image.Rect(3, 2, 30, 20)), 1},
		{"rgba opaque", opaqueRGBA, 0},
		{"rgba translucent", translucentRGBA, 0},
		{"rgba sub-image", opaqueRGBA.SubImage(image.Rect(5, 5, 20, 21)), 0},
		{"nrgba", nrgba, 0},
		{"gray", gray, 0},
		{"gray sub-image", gray.SubImage(image.Rect(1, 2, 9, 9)), 0},
		{"gray16", gray16, 0},
		{"paletted", pal, 0},
	}
	for _, tt := range tests {
		got, want := Gray(tt.img), genericGray(tt.img)
		if got.Rect != tt.img.Bounds() {
			t.Errorf("%s: bounds %v, want %v", tt.name, got.Rect, tt.img.Bounds())
			continue
		}
		worst := 0
		b := got.Rect
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				d := int(got.GrayAt(x, y).Y) - int(want.GrayAt(x, y).Y)
				worst = max(worst, d, -d)
			}
		}
		if worst > tt.tol {
			t.Errorf("%s: fast path differs from generic by %d (tolerance %d)", tt.name, worst, tt.tol)
		}
	}
}

func TestGrayOpaqueMatchesGrayModel(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(8, 9))
	img := image.NewRGBA(image.Rect(0, 0, 50, 50))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256))
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	g := Gray(img)
	for y := range 50 {
		for x := range 50 {
			want := color.GrayModel.Convert(img.At(x, y)).(color.Gray)
			if got := g.GrayAt(x, y); got != want {
				t.Fatalf("(%d,%d): %v, want %v", x, y, got, want)
			}
		}
	}
}

func TestGrayTransparentIsWhite(t *testing.T) {
	t.Parallel()
	img := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	img.SetNRGBA(0, 0, color.NRGBA{0, 0, 0, 0})   // transparent background
	img.SetNRGBA(1, 0, color.NRGBA{0, 0, 0, 255}) // black ink
	for _, src := range []image.Image{img, atOnly{img}} {
		g := Gray(src)
		if g.Pix[0] != 255 || g.Pix[1] != 0 {
			t.Errorf("%T: got %v, want [255 0]", src, g.Pix)
		}
	}
}

func TestGrayDoesNotAlias(t *testing.T) {
	t.Parallel()
	src := image.NewGray(image.Rect(0, 0, 4, 4))
	g := Gray(src)
	g.Pix[0] = 99
	if src.Pix[0] != 0 {
		t.Error("Gray shares memory with a *image.Gray input")
	}
	y := image.NewYCbCr(image.Rect(0, 0, 4, 4), image.YCbCrSubsampleRatio420)
	Gray(y).Pix[0] = 99
	if y.Y[0] != 0 {
		t.Error("Gray shares memory with a YCbCr input's Y plane")
	}
	// Paletted.At panics on an index past the palette; Gray must not.
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.White})
	pal.Pix[1] = 7
	if g := Gray(pal); g.Pix[0] != 255 || g.Pix[1] != 0 {
		t.Errorf("paletted with a bad index: %v, want [255 0]", g.Pix)
	}
	if e := Gray(image.NewRGBA(image.Rectangle{})); len(e.Pix) != 0 {
		t.Error("empty image should give an empty Gray")
	}
}
