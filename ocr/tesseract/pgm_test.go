package tesseract

import (
	"bytes"
	"image"
	"image/color"
	"testing"
)

func TestEncodePGM(t *testing.T) {
	t.Parallel()
	// A 3×2 sub-image of a larger image, so the stride and origin matter.
	gray := image.NewGray(image.Rect(0, 0, 5, 4))
	ycc := image.NewYCbCr(image.Rect(0, 0, 5, 4), image.YCbCrSubsampleRatio420)
	nrgba := image.NewNRGBA(image.Rect(0, 0, 5, 4))
	rgba := image.NewRGBA(image.Rect(0, 0, 5, 4))
	cmyk := image.NewCMYK(image.Rect(0, 0, 5, 4))
	for y := 0; y < 4; y++ {
		for x := 0; x < 5; x++ {
			v := uint8(10*y + x)
			gray.SetGray(x, y, color.Gray{Y: v})
			ycc.Y[ycc.YOffset(x, y)] = v
			nrgba.SetNRGBA(x, y, color.NRGBA{R: v, G: v, B: v, A: 255})
			rgba.SetRGBA(x, y, color.RGBA{R: v, G: v, B: v, A: 255})
			cmyk.SetCMYK(x, y, color.CMYK{K: 255 - v})
		}
	}
	// Fully transparent pixel: paper, not ink.
	nrgba.SetNRGBA(2, 1, color.NRGBA{A: 0})
	rgba.SetRGBA(2, 1, color.RGBA{A: 0})
	// Half-transparent black over white: mid gray.
	nrgba.SetNRGBA(3, 1, color.NRGBA{A: 128})
	rgba.SetRGBA(3, 1, color.RGBA{A: 128})

	sub := image.Rect(1, 1, 4, 3)
	tests := []struct {
		name string
		img  image.Image
		want []byte
	}{
		{"gray", gray.SubImage(sub), []byte{11, 12, 13, 21, 22, 23}},
		{"ycbcr", ycc.SubImage(sub), []byte{11, 12, 13, 21, 22, 23}},
		{"nrgba", nrgba.SubImage(sub), []byte{11, 255, 127, 21, 22, 23}},
		{"rgba", rgba.SubImage(sub), []byte{11, 255, 127, 21, 22, 23}},
		{"cmyk (any other model)", cmyk.SubImage(sub), []byte{11, 12, 13, 21, 22, 23}},
	}
	for _, tt := range tests {
		got := encodePGM(tt.img)
		header := []byte("P5\n3 2\n255\n")
		if !bytes.HasPrefix(got, header) {
			t.Fatalf("%s: header %q, want %q", tt.name, got[:min(len(got), len(header))], header)
		}
		if pix := got[len(header):]; !bytes.Equal(pix, tt.want) {
			t.Errorf("%s: pixels %v, want %v", tt.name, pix, tt.want)
		}
	}
}
